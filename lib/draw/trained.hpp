// A trained model rebuilt from a checkpoint alone: checkpoints carry the run's resolved
// configuration (train/checkpoint.hpp), which names the model and its data.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "data/dataset.hpp"
#include "models/model.hpp"

namespace vae::draw {

struct TrainedModel {
  std::string checkpoint;        // the file it was read from
  int64_t epoch = 0;             // epochs the parameters were trained
  ConfigMap config;              // the run's resolved configuration
  data::Splits data;             // as the run saw it (dynamic: the test set binarized once)
  std::unique_ptr<Model> model;  // ready for encode_mean / decode_mean / sample_prior
};

// With config, the model and data are those of config (the run's configuration as the
// results database stores it) instead of the checkpoint's own. Throws
// std::runtime_error naming the file when it is missing, damaged, or its parameters do
// not fit the configuration; data problems are DataErrors.
TrainedModel load_trained(const std::string& checkpoint_path, const ConfigMap* config = nullptr);

}  // namespace vae::draw
