// vae train: one training run from options and/or a TOML file, then its test metrics.
#include <boost/program_options.hpp>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.hpp"
#include "config/config.hpp"
#include "errors.hpp"
#include "models/settings.hpp"
#include "report/selection.hpp"
#include "train/run.hpp"

namespace po = boost::program_options;

namespace vae::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

std::string default_text(const OptionSpec& o) {
  std::string d = value_to_string(o.default_value);
  return d.empty() ? "\"\"" : d;
}

po::options_description train_options_description() {
  po::options_description desc("vae train options (every setting is also a key of --config TOML files)");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("config", po::value<std::string>(), "TOML file of settings (flat table); options given here override it")
      ("out", po::value<std::string>()->default_value(""),
       "folder for checkpoints: last.ckpt after each epoch, best.ckpt at the best validation ELBO")
      ("resume", po::bool_switch(), "continue from --out/last.ckpt when it exists")
      ("json", po::bool_switch(), "print the final metrics and resolved configuration as one JSON line on stdout")
      ("quiet,q", po::bool_switch(), "no progress output");
  // clang-format on
  for (const auto& o : train_options()) {
    std::string help = o.help + " [default: " + default_text(o) + "]";
    desc.add_options()(o.key.c_str(), po::value<std::string>(), help.c_str());
  }
  return desc;
}

void print_summary(std::ostream& out, const RunResult& r, const TrainConfig& tc) {
  auto get = [&](const char* k) { return r.metrics.count(k) ? r.metrics.at(k) : NAN; };
  char line[256];
  out << "\n"
      << tc.dataset << " (" << tc.binarize << "), " << tc.likelihood
      << (tc.likelihood == "gaussian" ? " sigma=" + tc.sigma : "") << ", " << model_summary(tc.settings)
      << ", beta " << tc.beta << ", " << r.epochs_done << " epochs: test set, nats per example\n";
  std::snprintf(line, sizeof line, "  %-22s %12.3f\n", "ELBO", get("test_elbo"));
  out << line;
  std::snprintf(line, sizeof line, "  %-22s %12.3f\n", "  reconstruction", -get("test_rec"));
  out << line;
  std::snprintf(line, sizeof line, "  %-22s %12.3f\n", "  KL", get("test_kl"));
  out << line;
  if (r.metrics.count("test_nll")) {
    std::snprintf(line, sizeof line, "  %-22s %12.3f   (K = %.0f, %.0f examples)\n", "log p(x) (IWAE)",
                  -get("test_nll"), get("iw_samples"), get("iw_examples"));
    out << line;
  }
  if (r.metrics.count("test_bpd")) {
    std::snprintf(line, sizeof line, "  %-22s %12.4f\n", "bits/dim (NLL)", get("test_bpd"));
    out << line;
  }
  if (r.metrics.count("codebook_perplexity")) {  // a VQ-VAE: its own metrics
    std::snprintf(line, sizeof line, "  %-22s %12.4f\n", "bound, bits/dim", get("bound_bpd"));
    out << line;
    if (r.metrics.count("kl_uniform")) {
      std::snprintf(line, sizeof line, "  %-22s %12.3f\n", "  KL, uniform prior", get("kl_uniform"));
      out << line;
    }
    std::snprintf(line, sizeof line, "  %-22s %12.5f\n", "reconstruction MSE", get("rec_mse"));
    out << line;
    std::snprintf(line, sizeof line, "  %-22s %12.2f   (%.0f of %lld codes used)\n", "codebook perplexity",
                  get("codebook_perplexity"), get("codes_used"),
                  (long long)setting<int64_t>(tc.settings, "vq-codebook"));
    out << line;
  }
  const auto kl = r.unit_vectors.find("kl_per_dim");
  if (r.metrics.count("active_units")) {
    // Of all latent units: with several stochastic layers kl_per_dim lists every layer's.
    const std::size_t units = kl == r.unit_vectors.end() ? std::size_t(setting<int64_t>(tc.settings, "latent"))
                                                         : kl->second.size();
    std::snprintf(line, sizeof line, "  %-22s %12.0f of %zu\n", "active units", get("active_units"), units);
    out << line;
  }
  if (r.metrics.count("sigma_eval")) {
    std::snprintf(line, sizeof line, "  %-22s %12.5f\n", "sigma* (train MSE)", get("sigma_eval"));
    out << line;
  }
  if (r.metrics.count("sigma_learned")) {
    std::snprintf(line, sizeof line, "  %-22s %12.5f\n", "sigma (learned)", get("sigma_learned"));
    out << line;
  }
  if (r.metrics.count("mig")) {
    std::snprintf(line, sizeof line, "  %-22s %12.4f   (FactorVAE %.4f, beta-VAE %.4f)\n", "MIG", get("mig"),
                  get("factor_vae_metric"), get("beta_vae_metric"));
    out << line;
  }
  std::snprintf(line, sizeof line, "  %-22s %12.0f\n", "train samples/s", get("samples_per_s"));
  out << line;
  if (kl == r.unit_vectors.end() || tc.model == "vqvae") return;  // (49 grid positions: in --json)
  out << "  KL per dimension:";
  for (double k : kl->second) {
    std::snprintf(line, sizeof line, " %.2f", k);
    out << line;
  }
  out << "\n";
}

int run_train(const std::vector<std::string>& args) {
  auto desc = train_options_description();
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "vae train: " << option_error(e, desc) << " (vae train --help lists the options)\n";
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << "usage: vae train [options]\n\n" << desc << "\n";
    return kExitOk;
  }
  // A bad setting (ConfigError) exits 2, a missing or damaged data file 1 (errors.hpp).
  ConfigMap config = default_config();
  if (vm.count("config")) vae::apply(config, read_settings_toml(vm["config"].as<std::string>()));
  std::map<std::string, Value> given;
  for (const auto& o : train_options())
    if (vm.count(o.key)) given[o.key] = parse_value(o, vm[o.key].as<std::string>());
  vae::apply(config, given);
  const TrainConfig tc = to_train_config(config);
  RunOptions ro;
  ro.out_dir = vm["out"].as<std::string>();
  ro.resume = vm["resume"].as<bool>();
  ro.quiet = vm["quiet"].as<bool>();
  ro.stop = &g_stop;
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  const bool json = vm["json"].as<bool>();

  RunResult r;
  try {
    r = train_and_evaluate(config, ro, nullptr);
  } catch (const std::invalid_argument& e) {  // settings the data loaders or a model reject (sizes, protocols)
    throw report::UsageError(e.what());
  }
  if (r.status == "diverged") {
    std::cerr << "vae train: run diverged: " << r.message << "\n";
    if (json) {
      nlohmann::json j = {{"status", r.status}, {"message", r.message}, {"epochs", r.epochs_done}};
      std::cout << j.dump() << std::endl;
    }
    return kExitDiverged;
  }
  if (r.status == "stopped") {
    std::cerr << "vae train: " << r.message << "\n";
    return kExitError;
  }
  if (json) {
    nlohmann::json j = nlohmann::json::object();
    j["status"] = r.status;
    for (const auto& [k, v] : r.metrics) j[k] = v;
    j["unit_vectors"] = r.unit_vectors;  // every named per-unit vector
    if (r.unit_vectors.count("kl_per_dim")) j["kl_per_dim"] = r.unit_vectors.at("kl_per_dim");
    j["train_loss_curve"] = r.train_loss_curve;
    j["binarize"] = r.binarize;
    j["config"] = nlohmann::json::parse(to_json(config, false));
    j["config"]["binarize"] = r.binarize;
    nlohmann::json files = nlohmann::json::array();
    for (const auto& f : r.data_files) files.push_back({{"path", f.path}, {"sha256", f.sha256}});
    j["data_files"] = files;
    std::cout << j.dump() << std::endl;
  }
  if (!ro.quiet || !json) print_summary(json ? std::cerr : std::cout, r, tc);
  return kExitOk;
}

Register reg{{"train", "train and evaluate one VAE (Gaussian, beta-VAE, sigma-VAE)", run_train}};

}  // namespace
}  // namespace vae::cli
