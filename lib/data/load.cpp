// Data set layout on disk, splits and protocols: from a DataSpec to Splits.
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "data/dataset.hpp"
#include "data/detail.hpp"
#include "data/dsprites.hpp"
#include "util/hash.hpp"

namespace vae::data {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMnistRows = 28, kMnistCols = 28, kMnistClasses = 10;

bool is_mnist_like(const std::string& dataset) { return dataset == "mnist" || dataset == "fashion-mnist"; }

// The folder name under $VAE_DATA_DIR (and ../shared/data) of each data set.
std::string subdir(const std::string& dataset) {
  if (dataset == "mnist") return "mnist";
  if (dataset == "fashion-mnist") return "fashion_mnist";
  if (dataset == "binarized-mnist") return "binarized_mnist";
  if (dataset == "frey-face") return "freyface";
  throw std::invalid_argument("unknown dataset '" + dataset +
                              "' (expected mnist, fashion-mnist, binarized-mnist or frey-face)");
}

void check_spec(const DataSpec& spec) {
  subdir(spec.dataset);
  if (spec.binarize != "dynamic" && spec.binarize != "none" && spec.binarize != "fixed")
    throw std::invalid_argument("unknown binarize protocol '" + spec.binarize +
                                "' (expected dynamic, none or fixed)");
  if (spec.binarize == "fixed" && spec.dataset != "binarized-mnist")
    throw std::invalid_argument("binarize = fixed needs dataset binarized-mnist (found " + spec.dataset +
                                "); use dynamic or none");
  for (auto [name, value] : {std::pair{"train_size", spec.train_size}, std::pair{"valid_size", spec.valid_size},
                             std::pair{"test_size", spec.test_size}})
    if (value < 0)
      throw std::invalid_argument(std::string(name) + " must be 0 or more (found " + std::to_string(value) +
                                  ")");
}

// "stem.gz" if present, else "stem"; neither is a DataError naming both.
std::string resolve(const DataSpec& spec, const std::string& dir, const std::string& stem) {
  const fs::path gz = fs::path(dir) / (stem + ".gz"), raw = fs::path(dir) / stem;
  std::error_code ec;
  if (fs::is_regular_file(gz, ec)) return gz.string();
  if (fs::is_regular_file(raw, ec)) return raw.string();
  std::string found = fs::is_directory(dir, ec) ? "neither" : "no folder " + dir;
  if (spec.dataset == "fashion-mnist" && spec.data_dir.empty() && !std::getenv("VAE_DATA_DIR"))
    found += "; install the Debian package dataset-fashion-mnist or set data_dir";
  else found += "; data_dir or $VAE_DATA_DIR sets the folder";
  detail::fail(raw.string(), "missing data file", stem + ".gz or " + stem + " in " + dir, found);
}

struct Plan {
  std::string train, train_labels, valid, test, test_labels;  // "" = not read
  std::vector<std::string> in_order() const {
    std::vector<std::string> out;
    for (const std::string* p : {&train, &train_labels, &valid, &test, &test_labels})
      if (!p->empty()) out.push_back(*p);
    return out;
  }
};

Plan make_plan(const DataSpec& spec) {
  check_spec(spec);
  const std::string dir = spec.data_dir.empty() ? default_data_dir(spec.dataset) : spec.data_dir;
  Plan plan;
  if (is_mnist_like(spec.dataset)) {
    plan.train = resolve(spec, dir, "train-images-idx3-ubyte");
    plan.train_labels = resolve(spec, dir, "train-labels-idx1-ubyte");
    plan.test = resolve(spec, dir, "t10k-images-idx3-ubyte");
    plan.test_labels = resolve(spec, dir, "t10k-labels-idx1-ubyte");
  } else if (spec.dataset == "binarized-mnist") {
    plan.train = resolve(spec, dir, "binarized_mnist_train.amat");
    if (spec.valid_size == 0) plan.valid = resolve(spec, dir, "binarized_mnist_valid.amat");
    plan.test = resolve(spec, dir, "binarized_mnist_test.amat");
  } else {
    plan.train = resolve(spec, dir, "frey_rawface.mat");  // test comes from the same file
  }
  return plan;
}

// MNIST-format images plus labels, checked against each other and the 28x28 layout.
Images read_mnist_like(const std::string& images_path, const std::string& labels_path) {
  Images images = read_idx_images(images_path);
  if (images.rows != kMnistRows || images.cols != kMnistCols)
    detail::fail(images_path, "wrong image size", "28x28",
                 std::to_string(images.rows) + "x" + std::to_string(images.cols));
  images.labels = read_idx_labels(labels_path);
  if (images.labels.size() != images.n)
    detail::fail(labels_path, "label count does not match the images",
                 std::to_string(images.n) + " labels, one per image in " + images_path,
                 std::to_string(images.labels.size()));
  for (size_t i = 0; i < images.labels.size(); ++i)
    if (images.labels[i] >= kMnistClasses)
      detail::fail(labels_path, "label out of range at index " + std::to_string(i), "0..9",
                   std::to_string(images.labels[i]));
  return images;
}

// Moves the last `count` images of `from` into a new set.
Images split_off_last(Images& from, size_t count) {
  Images tail;
  tail.rows = from.rows;
  tail.cols = from.cols;
  tail.scale = from.scale;
  tail.n = count;
  const size_t keep = from.n - count;
  tail.pixels.assign(from.pixels.begin() + static_cast<ptrdiff_t>(keep * from.dim()), from.pixels.end());
  from.pixels.resize(keep * from.dim());
  if (!from.labels.empty()) {
    tail.labels.assign(from.labels.begin() + static_cast<ptrdiff_t>(keep), from.labels.end());
    from.labels.resize(keep);
  }
  from.n = keep;
  return tail;
}

void keep_first(Images& images, size_t count) {
  images.n = count;
  images.pixels.resize(count * images.dim());
  images.pixels.shrink_to_fit();
  if (!images.labels.empty()) images.labels.resize(count);
}

void check_size(const std::string& dataset, const char* name, int64_t wanted, size_t available,
                const char* what) {
  if (static_cast<uint64_t>(wanted) > available)
    throw std::invalid_argument(dataset + ": " + name + " " + std::to_string(wanted) + " exceeds the " +
                                std::to_string(available) + " " + what + " available");
}

}  // namespace

std::string default_data_dir(const std::string& dataset) {
  const std::string sub = subdir(dataset);
  if (const char* env = std::getenv("VAE_DATA_DIR"); env && *env)
    return (fs::path(env) / sub).lexically_normal().string();
  if (dataset == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  return (fs::path(VAE_SOURCE_DIR) / ".." / "shared" / "data" / sub).lexically_normal().string();
}

std::vector<std::string> data_file_paths(const DataSpec& spec) {
  if (spec.dataset == "dsprites") {
    if (spec.dsprites_cache.empty()) return {};  // rendered on the fly: no file
    dsprites::ensure_cache(spec.dsprites_cache);
    return {spec.dsprites_cache};
  }
  return make_plan(spec).in_order();
}

Splits load(const DataSpec& spec) {
  if (spec.dataset == "dsprites") return dsprites::load(spec);
  const Plan plan = make_plan(spec);
  Splits s;
  if (is_mnist_like(spec.dataset)) {
    s.train = read_mnist_like(plan.train, plan.train_labels);
    s.test = read_mnist_like(plan.test, plan.test_labels);
  } else if (spec.dataset == "binarized-mnist") {
    s.train = read_amat(plan.train);
    if (!plan.valid.empty()) s.valid = read_amat(plan.valid);
    s.test = read_amat(plan.test);
  } else {
    // Consecutive video frames: a contiguous tail as test keeps near-duplicates apart.
    s.train = read_frey_face(plan.train);
    s.test = split_off_last(s.train, s.train.n / 10);
  }

  if (spec.valid_size > 0) {
    if (static_cast<uint64_t>(spec.valid_size) >= s.train.n)
      throw std::invalid_argument(spec.dataset + ": valid_size " + std::to_string(spec.valid_size) +
                                  " leaves no training images (" + std::to_string(s.train.n) + " available)");
    s.valid = split_off_last(s.train, static_cast<size_t>(spec.valid_size));
  }
  if (spec.train_size > 0) {
    check_size(spec.dataset, "train_size", spec.train_size, s.train.n, "training images");
    keep_first(s.train, static_cast<size_t>(spec.train_size));
  }
  if (spec.test_size > 0) {
    check_size(spec.dataset, "test_size", spec.test_size, s.test.n, "test images");
    keep_first(s.test, static_cast<size_t>(spec.test_size));
  }
  s.train.source = spec.dataset + "/train";
  s.valid.source = s.valid.n > 0 ? spec.dataset + "/valid" : "";
  s.test.source = spec.dataset + "/test";

  if (spec.binarize == "dynamic") {
    binarize_once(s.test, kTestBinarizationSeed);
    if (s.valid.n > 0) binarize_once(s.valid, kValidBinarizationSeed);
  }
  for (const std::string& path : plan.in_order()) s.files.emplace_back(path, sha256_file(path));
  return s;
}

}  // namespace vae::data
