// vae plot: plots of the results database (PNG), drawn by the matplotlib scripts
// analysis/plot_<what>.py run with /usr/bin/python3 (or $VAE_PYTHON). Options other
// than the ones below go to the script (vae plot WHAT --help lists them). For
// `latents` this program first writes the run's test encodings (as `vae encode`).

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "command.hpp"
#include "process.hpp"
#include "trained_source.hpp"

namespace vae::cli {
namespace {

namespace po = boost::program_options;
using namespace vae::cli::results;

const char* kUsage =
    "vae plot WHAT [options]   (vae plot WHAT --help: the options of each)\n\n"
    "WHAT:\n"
    "  metric   a final metric against a parameter, one line per value of another, mean and\n"
    "           standard error over seeds: --metric test_nll --x latent --line beta [--sweep NAME]\n"
    "  curves   learning curves: --run ID (repeatable) or --sweep NAME, --metric train_loss\n"
    "  kl       the KL of each latent dimension of --run ID, sorted; --vector NAME: another of\n"
    "           the run's per-unit vectors (code_usage: a VQ-VAE's codebook usage)\n"
    "  latents  the test set's posterior means of --run ID (or --checkpoint PATH) in two latent\n"
    "           dimensions (--dims 0,1), coloured by class\n"
    "all: --out FILE.png, --width/--height pixels (640 x 480), --title, --db (default\n"
    "$VAE_DB, else results/results.db). Needs python3 with matplotlib (python3-matplotlib).";

bool has_option(const std::vector<std::string>& args, const std::string& name) {
  for (const auto& a : args)
    if (a == name || a.rfind(name + "=", 0) == 0) return true;
  return false;
}

// latents: the run's encodings go to a temporary CSV the script reads.
int plot_latents(const std::string& script, const std::vector<std::string>& args) {
  po::options_description desc("vae plot latents options (with --out, --dims, --width, --height, --title)");
  // clang-format off
  desc.add_options()("help,h", "show this help")("n", po::value<std::size_t>()->default_value(0),
                                                 "the first N test images (0: all)");
  // clang-format on
  add_source_options(desc);
  po::variables_map vm;
  std::vector<std::string> rest;
  try {
    auto parsed = po::command_line_parser(args).options(desc).allow_unregistered().run();
    po::store(parsed, vm);
    rest = po::collect_unrecognized(parsed.options, po::include_positional);
    if (vm.count("help")) {
      std::cout << "usage: vae plot latents (--run ID | --checkpoint PATH) --out FILE.png [options]\n\n"
                << desc << "\n";
      return kExitOk;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw report::UsageError(std::string(e.what()));
  }
  Source src = load_source(vm);
  const data::Images& test = src.trained.data.test;
  const std::size_t n = vm["n"].as<std::size_t>() == 0 ? test.n : std::min(test.n, vm["n"].as<std::size_t>());
  const std::vector<float> mu = src.trained.model->encode_mean(test, n);
  const std::size_t L = src.trained.model->latent_dim();
  const std::filesystem::path csv = std::filesystem::temp_directory_path() /
                                    ("vae-encodings-" + std::to_string(::getpid()) + ".csv");
  {
    std::ofstream out(csv);
    if (!out) throw std::runtime_error(csv.string() + ": cannot write");
    out << "index,label";
    for (std::size_t u = 0; u < L; ++u) out << ",z" << u;
    out << "\n";
    for (std::size_t i = 0; i < n; ++i) {
      out << i << ",";
      if (!test.labels.empty()) out << int(test.labels[i]);
      for (std::size_t u = 0; u < L; ++u) out << "," << mu[i * L + u];
      out << "\n";
    }
  }
  rest.insert(rest.end(), {"--encodings", csv.string()});
  if (!has_option(rest, "--title"))
    rest.insert(rest.end(),
                {"--title", "posterior means of " + std::to_string(n) + " test images, " +
                                (src.run_id ? "run " + src.run_id->substr(0, 12) : src.trained.checkpoint)});
  int rc = kExitError;
  try {
    rc = run_python_script(script, rest, "vae plot");
  } catch (...) {
    std::filesystem::remove(csv);
    throw;
  }
  std::filesystem::remove(csv);
  return rc;
}

int run_plot(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? std::cerr : std::cout) << "usage: " << kUsage << "\n";
    return args.empty() ? kExitUsage : kExitOk;
  }
  const std::string& what = args[0];
  if (what != "metric" && what != "curves" && what != "kl" && what != "latents")
    throw report::UsageError("'" + what + "' is not one of metric, curves, kl, latents");
  const std::string script = analysis_script("plot_" + what + ".py");
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (what == "latents") return plot_latents(script, rest);
  if (!has_option(rest, "--db")) rest.insert(rest.end(), {"--db", default_db_path()});
  return run_python_script(script, rest, "vae plot");
}

Register reg({"plot", "plots of the results database (metric, curves, kl, latents) via matplotlib", &run_plot});

}  // namespace
}  // namespace vae::cli
