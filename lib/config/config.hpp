// The settings of one training run, the vocabulary: a setting's spec (name, type, default,
// range, help, identity), its checked value, and the core settings that are no model
// family's own. The whole schema -- these and each registered family's settings -- is
// models/settings.hpp, read by the command line, TOML run files, sweep files and the run
// identity alike, so they can never disagree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace vae {

// A bad setting; what() is one line that names the key (and file/line if known).
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ValueKind { Int, Float, String, IntList, Bool };

// A setting's value as written by the user, before it is checked.
using Value = std::variant<int64_t, double, std::string, std::vector<int64_t>, bool>;

struct OptionSpec {
  std::string key;  // "latent", as in --latent and TOML
  ValueKind kind;
  Value default_value;
  std::string help;
  std::vector<std::string> choices;  // for strings: the allowed values (empty: any)
  std::optional<double> min, max;    // for numbers (each element of a list)
  bool identity = true;              // part of a run's identity hash (false: output paths, verbosity)
};

// A spec, with the defaults most settings take (no choices, no range, part of the identity).
OptionSpec option(std::string key, ValueKind kind, Value default_value, std::string help,
                  std::vector<std::string> choices = {}, std::optional<double> min = {},
                  std::optional<double> max = {}, bool identity = true);

// The settings that are not a model family's own (data, the model-independent parts of the
// model, objective, optimisation, evaluation), in the order `--help` lists them. The whole
// list, with each family's settings, is models/settings.hpp's train_options().
const std::vector<OptionSpec>& core_options();

// Checks a value against its spec (type, range, choice) and converts where it is
// lossless (an integer written for a float). Throws ConfigError naming the key.
Value check_value(const OptionSpec& spec, const Value& v);

// Parses a command-line string ("500,500", "1e-3", "true") into the spec's kind.
Value parse_value(const OptionSpec& spec, const std::string& text);

std::string value_to_string(const Value& v);

// A resolved configuration: every key present, every value checked.
using ConfigMap = std::map<std::string, Value>;

// A setting's value as its type (the config holds every key, checked): throws ConfigError
// naming the key when it is missing.
template <class V>
const V& setting(const ConfigMap& config, const std::string& key) {
  const auto it = config.find(key);
  if (it == config.end()) throw ConfigError("key '" + key + "': missing from the configuration");
  return std::get<V>(it->second);
}

// A string setting's allowed values and the enum each one means, in one table: the option's
// choices (OptionSpec::choices) and its typed reading come from it, so a choice is compared
// as a string once, where the configuration is read.
template <class E>
struct Choices {
  std::vector<std::pair<std::string, E>> table;
  std::vector<std::string> names() const {
    std::vector<std::string> n;
    for (const auto& [name, value] : table) n.push_back(name);
    return n;
  }
  E of(const ConfigMap& config, const std::string& key) const {
    const std::string& v = setting<std::string>(config, key);
    for (const auto& [name, value] : table)
      if (name == v) return value;
    throw ConfigError("key '" + key + "': '" + v + "' is not a known value");
  }
};

// An integer setting that is a size (checked: >= its minimum, at least 0) as a size.
inline std::size_t size_setting(const ConfigMap& config, const std::string& key) {
  return std::size_t(setting<int64_t>(config, key));
}

// A list-of-sizes setting (checked: every element >= its minimum) as sizes.
inline std::vector<std::size_t> size_list(const ConfigMap& config, const std::string& key) {
  const auto& list = setting<std::vector<int64_t>>(config, key);
  return std::vector<std::size_t>(list.begin(), list.end());
}

// Checks the relations between the core settings (e.g. sigma only with a Gaussian likelihood).
void validate_core(const ConfigMap& config);

// --objective: the ELBO (averaged over k samples per example) or the IWAE bound
// log (1/k) sum_j w_j (Burda et al. 2016); models/algorithms.hpp.
enum class Objective { Elbo, Iwae };

// The typed view the library uses.
struct TrainConfig {
  // data
  std::string dataset;   // mnist | fashion-mnist | binarized-mnist | frey-face | dsprites
  std::string data_dir;  // "" = the dataset's default folder
  std::string binarize;  // dynamic | none | fixed (resolved from "auto")
  int64_t train_size, valid_size, test_size;
  std::string dsprites_cache;  // dsprites: bit-packed grid file ("" = render on the fly)
  // model
  std::string model;          // --model: a registered family's name (models/registry.hpp)
  std::string activation;     // relu | tanh | softplus | sigmoid | elu | leaky-relu (ladder/hierarchical)
  std::string likelihood;     // bernoulli | gaussian
  std::string sigma;          // fixed | learned | optimal | per-pixel
  double sigma_value;         // sigma for --sigma fixed
  double min_log_sigma;       // soft lower bound of log sigma
  std::string gaussian_mean;  // sigmoid | identity
  std::string init;           // uniform (PyTorch's default) | normal | glorot
  std::string output_bias;    // init | data-logit (models/model.hpp)
  double init_std;
  // objective
  double beta;
  int64_t warmup;           // epochs of linear KL warm-up (0: none)
  double free_bits;         // nats per latent dimension (0: off)
  Objective objective;      // elbo | iwae
  bool kl_sampled = false;  // kl-estimate = sampled, or objective = iwae
  int64_t k;                // samples of z per example
  // optimisation
  std::string optimizer;  // adam | adagrad
  double lr;
  std::string lr_schedule;  // constant | exponential | iwae | iwae-rounded
  double lr_decay;          // factor per epoch for exponential
  double adam_beta1, adam_beta2, adam_eps, adagrad_eps;
  double adam_v0;           // start of Adam's v (nn/optimizer.hpp)
  std::string adam_update;  // torch | iwae-code (nn/optimizer.hpp)
  bool shuffle = true;      // a fresh order of the training images each epoch
  double weight_decay = 0;  // lambda of (lambda / 2) |theta|^2 per example
  int64_t batch, epochs, seed, threads;
  double time_budget;    // seconds of training steps; 0: train all epochs
  bool time_budget_cpu;  // the budget counts the process's CPU time, not elapsed time
  // evaluation
  int64_t iw_samples, iw_examples, iw_chunk, eval_every;
  // disentanglement metrics (dsprites): points per batch, classifier train/eval points
  int64_t disent_batch, disent_train, disent_eval;
  // Every setting, checked: what a model family reads its own settings from (models/registry.hpp).
  ConfigMap settings;
};

// The typed view of the core settings of a checked configuration (binarize = auto resolved);
// models/settings.hpp's to_train_config validates first, including the family's settings.
TrainConfig core_train_config(const ConfigMap& config);

// The identity settings of the first recipe: always part of an identity, whatever their value.
const std::vector<std::string>& baseline_identity_keys();

}  // namespace vae
