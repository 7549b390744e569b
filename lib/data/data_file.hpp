// A data file a run read, with its checksum: part of a run's identity and provenance.
// Here, below the training loop, so that the results store can record it without it.
#pragma once

#include <string>

namespace vae {

struct DataFile {
  std::string path, sha256;
};

}  // namespace vae
