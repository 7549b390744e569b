// vae encode: the posterior means E_q[z|x] of a run's test (or training) images as CSV,
// one row per image: index, label (empty when the set has none), z0, z1, ...
// `vae plot latents` draws them.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "command.hpp"
#include "trained_source.hpp"

namespace vae::cli {
namespace {

namespace po = boost::program_options;
using namespace vae::cli::results;

int run_encode(const std::vector<std::string>& args) {
  po::options_description desc("vae encode options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("out,o", po::value<std::string>(), "the CSV file to write")
      ("split", po::value<std::string>()->default_value("test"), "test or train")
      ("n", po::value<std::size_t>()->default_value(0), "the first N images (0: all)");
  // clang-format on
  add_source_options(desc);
  po::variables_map vm;
  if (auto rc = parse("vae encode", "vae encode (--run ID | --checkpoint PATH) --out FILE.csv [options]", desc,
                      {}, args, vm))
    return *rc;
  if (!vm.count("out")) throw report::UsageError("--out FILE.csv is needed");
  const std::string split = vm["split"].as<std::string>();
  if (split != "test" && split != "train")
    throw report::UsageError("--split '" + split + "': expected test or train");
  Source src = load_source(vm);
  const data::Images& images = split == "test" ? src.trained.data.test : src.trained.data.train;
  const std::size_t n = vm["n"].as<std::size_t>() == 0 ? images.n
                                                       : std::min(images.n, vm["n"].as<std::size_t>());
  const std::vector<float> mu = src.trained.model->encode_mean(images, n);
  const std::size_t L = src.trained.model->latent_dim();
  const std::string path = vm["out"].as<std::string>();
  std::ofstream out(path);
  if (!out) throw std::runtime_error(path + ": cannot write");
  out << "index,label";
  for (std::size_t u = 0; u < L; ++u) out << ",z" << u;
  out << "\n";
  char buf[32];
  for (std::size_t i = 0; i < n; ++i) {
    out << i << ",";
    if (!images.labels.empty()) out << int(images.labels[i]);
    for (std::size_t u = 0; u < L; ++u) {
      std::snprintf(buf, sizeof buf, ",%.7g", double(mu[i * L + u]));
      out << buf;
    }
    out << "\n";
  }
  if (!out.flush()) throw std::runtime_error(path + ": write failed");
  std::cerr << "vae encode: " << n << " " << split << " images x " << L << " latent units -> " << path << "\n";
  return kExitOk;
}

Register reg({"encode", "posterior means of a run's test images as CSV (for plots)", &run_encode});

}  // namespace
}  // namespace vae::cli
