// The settings of one training run: one schema read by the command line, by
// TOML run files and by sweep files, so the three can never disagree.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
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

// Every `vae train` setting, in the order `--help` lists them.
const std::vector<OptionSpec>& train_options();
const OptionSpec* find_option(const std::string& key);

// Checks a value against its spec (type, range, choice) and converts where it is
// lossless (an integer written for a float). Throws ConfigError naming the key.
Value check_value(const OptionSpec& spec, const Value& v);

// Parses a command-line string ("500,500", "1e-3", "true") into the spec's kind.
Value parse_value(const OptionSpec& spec, const std::string& text);

std::string value_to_string(const Value& v);

// A resolved configuration: every key present, every value checked.
using ConfigMap = std::map<std::string, Value>;

ConfigMap default_config();

// Applies settings onto a config; unknown keys and bad values throw ConfigError.
void apply(ConfigMap& config, const std::map<std::string, Value>& settings);

// Reads a run TOML file (flat table of settings). Errors name file, line and key.
std::map<std::string, Value> read_settings_toml(const std::string& path);

// Checks relations between settings (e.g. sigma only with a Gaussian likelihood).
void validate(const ConfigMap& config);

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
  std::string model;  // vae | ladder | hierarchical | nvae | vqvae
  // vqvae (models/vqvae.hpp): codebook size and code dimension, conv widths, commitment weight,
  // codebook update (loss | ema), EMA decay, dead-code restart threshold (0: off)
  int64_t vq_codebook, vq_dim, vq_channels, vq_res_blocks, vq_res_hidden;
  double vq_beta;
  std::string vq_update;
  double vq_decay, vq_restart;
  int64_t vq_prior_epochs, vq_prior_layers, vq_prior_features;  // the PixelCNN prior's second stage
  int64_t latent;
  std::vector<int64_t> hidden;
  std::string arch;                    // mlp | conv (model = vae)
  std::vector<int64_t> conv_channels;  // conv: encoder channels (stride 2 each)
  int64_t conv_kernel;
  std::vector<int64_t> layers,
      det_layers;     // ladder/hierarchical: stochastic and deterministic sizes, bottom first
  int64_t det_depth;  // dense layers per deterministic block
  bool batchnorm;
  std::string variance;    // softplus | exp: the variance heads of ladder/hierarchical
  std::string activation;  // relu | tanh | softplus | sigmoid | elu | leaky-relu (ladder/hierarchical)
  std::string posterior;   // gaussian | iaf
  int64_t iaf_steps, iaf_hidden, iaf_made_layers, iaf_context;  // IAF flow (prob/iaf.hpp)
  double iaf_forget_bias;
  std::string iaf_kl;         // sample | stl
  std::string likelihood;     // bernoulli | gaussian
  std::string sigma;          // fixed | learned | optimal | per-pixel
  double sigma_value;         // sigma for --sigma fixed
  double min_log_sigma;       // soft lower bound of log sigma
  std::string gaussian_mean;  // sigmoid | identity
  std::string init;           // uniform (PyTorch's default) | normal | glorot
  double init_std;
  // objective
  double beta;
  int64_t warmup;       // epochs of linear KL warm-up (0: none)
  double free_bits;     // nats per latent dimension (0: off)
  Objective objective;  // elbo | iwae
  int64_t k;            // samples of z per example
  // optimisation
  std::string optimizer;  // adam | adagrad
  double lr;
  std::string lr_schedule;  // constant | exponential | iwae
  double lr_decay;          // factor per epoch for exponential
  double adam_beta1, adam_beta2, adam_eps, adagrad_eps;
  int64_t batch, epochs, seed, threads;
  // evaluation
  int64_t iw_samples, iw_examples, iw_chunk, eval_every;
  // disentanglement metrics (dsprites): points per batch, classifier train/eval points
  int64_t disent_batch, disent_train, disent_eval;
  // model = nvae (models/nvae.hpp)
  int64_t nvae_scales, nvae_groups, nvae_latent_channels, nvae_channels;
  bool nvae_kl_balance;
  double nvae_spectral, nvae_bn_momentum, nvae_temperature;
};

TrainConfig to_train_config(const ConfigMap& config);

// The configuration as canonical JSON (sorted keys), identity keys only or all.
std::string to_json(const ConfigMap& config, bool identity_only);

// The identity settings of the first recipe: always part of an identity, whatever their value.
const std::vector<std::string>& baseline_identity_keys();

// What identifies a configuration (a run's id, a checkpoint's), as canonical JSON: the
// baseline settings always, a setting added later only when it differs from its default,
// so that adding a setting whose default keeps the old behaviour changes no identity, and
// a changed default of a baseline setting can never make two different runs one.
std::string identity_settings_json(const ConfigMap& config);

}  // namespace vae
