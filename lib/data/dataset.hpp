// The image data sets the suite trains on, read from local files only.
//
// Formats: MNIST and Fashion-MNIST as IDX (gzipped or raw), the Larochelle
// statically binarized MNIST as .amat text (gzipped or raw), Frey Face as a
// MATLAB v5 MAT-file. Every problem with a data file is a DataError whose
// message is one line naming the file and what was expected versus found.
//
// Splits, all deterministic:
//  - mnist, fashion-mnist: the official 60000 train / 10000 test files. A
//    validation split, when valid_size > 0, is the LAST valid_size training images.
//  - binarized-mnist: the official 50000 / 10000 / 10000 files. With valid_size > 0
//    the valid file is not read; the last valid_size training images are held out.
//  - frey-face: the 1965 frames are consecutive video frames, so a random split
//    would put near-duplicates on both sides. Test = the LAST n/10 frames
//    (196 of 1965: frames 1769..1964), train = the first n - n/10 (1769). A
//    validation split, when valid_size > 0, is the last valid_size train frames.
//  - dsprites: rendered, not read; its own split (data/dsprites.hpp).
//  Then train_size keeps the first train_size training images (after the
//  hold-out) and test_size the first test_size test images; 0 = all.
//
// Binarization protocols (DataSpec::binarize, resolved by the caller):
//  - "dynamic": train stays as intensities (the trainer draws a fresh Bernoulli
//    sample each epoch); test and valid are binarized once here with the fixed
//    seeds below, so every run evaluates on the same 0/1 images.
//  - "none": all splits stay as intensities.
//  - "fixed": binarized-mnist only; its files are already 0/1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace vae::data {

// A bad or missing data file. what() is ONE line:
// "<path>: <problem> (expected X, found Y)".
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Images {
  std::string source;  // "mnist/train" from load(); the file path from the readers
  size_t n = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // n * rows * cols, row-major per image
  float scale = 1.0f / 255.0f;  // intensity in [0,1] = pixels[i] * scale (1.0 for 0/1 data)
  std::vector<uint8_t> labels;  // n labels, or empty when the set has none
  size_t dim() const { return rows * cols; }
};

// IDX images (magic 2051, unsigned bytes), gzipped or raw. Any image size.
Images read_idx_images(const std::string& path);
// IDX labels (magic 2049, unsigned bytes), gzipped or raw.
std::vector<uint8_t> read_idx_labels(const std::string& path);
// .amat text, gzipped or raw: one 28x28 image per line, 784 tokens each exactly
// "0" or "1", separated by spaces or tabs (a trailing '\r' is tolerated). scale 1.
Images read_amat(const std::string& path);
// MATLAB v5 MAT-file (plain or zlib-compressed elements, either byte order)
// holding variable ff: uint8, 560 x N, one 28x20 image per column. The real
// file has N = 1965. scale 1/255.
Images read_frey_face(const std::string& path);

struct DataSpec {
  std::string dataset;         // "mnist" | "fashion-mnist" | "binarized-mnist" | "frey-face" | "dsprites"
  std::string data_dir;        // "" = default_data_dir(dataset)
  std::string binarize;        // "dynamic" | "none" | "fixed" (already resolved by the caller)
  std::string dsprites_cache;  // dsprites: bit-packed grid file ("" = render on the fly)
  int64_t train_size = 0, valid_size = 0, test_size = 0;  // 0 = all / none
};

struct Splits {
  Images train, valid, test;                               // valid.n == 0 when no validation split
  std::vector<std::pair<std::string, std::string>> files;  // (path, sha256 hex) of every file read
};

// $VAE_DATA_DIR/<sub> when that variable is set and not empty, with <sub> one of
// mnist, fashion_mnist, binarized_mnist, freyface. Otherwise the repository's
// ../shared/data/<sub>, except fashion-mnist: /usr/share/datasets/fashion-mnist
// (Debian package dataset-fashion-mnist). Unknown dataset: std::invalid_argument.
std::string default_data_dir(const std::string& dataset);

// The files load(spec) would read, in reading order. For each file stem the
// gzipped "stem.gz" is preferred over the raw "stem". A missing file is a
// DataError naming both names tried.
// dsprites: the cache file (written first when missing), or none when rendered on the fly.
std::vector<std::string> data_file_paths(const DataSpec& spec);

// Reads and splits a data set (see the top of this file). Bad files: DataError.
// Bad settings (unknown dataset or protocol, negative sizes, sizes larger than
// the data, "fixed" on a set that is not binarized-mnist): std::invalid_argument.
Splits load(const DataSpec& spec);

// Replaces each pixel by a Bernoulli draw with p = its intensity, from
// std::mt19937_64 seeded with `seed`; the result has scale 1 and pixels 0/1.
// Each 64-bit draw serves two pixels (high 32 bits, then low 32 bits): pixel
// is 1 iff the 32-bit value < round(p * 2^32). Same seed, same result everywhere.
void binarize_once(Images& images, uint64_t seed);

// The dynamic protocol's fixed evaluation binarization, the same for every run:
// the test set uses kTestBinarizationSeed, a validation split kValidBinarizationSeed.
// Keeping the first test_size images does not change how they are binarized.
constexpr uint64_t kTestBinarizationSeed = 20240601;
constexpr uint64_t kValidBinarizationSeed = kTestBinarizationSeed + 1;

}  // namespace vae::data
