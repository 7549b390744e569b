// One training run from a resolved configuration to its final metrics: the
// function `vae train` and every sweep worker call.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "data/data_file.hpp"
#include "data/dataset.hpp"

namespace vae {

// Observers of a run (the terminal, the results database). All optional.
class RunHooks {
 public:
  virtual ~RunHooks() = default;
  // After each epoch: train_loss, valid_elbo (if a validation split), test_elbo (on
  // eval epochs), lr, beta_eff, samples_per_s, epoch_s, samples_seen (training examples so far).
  virtual void on_epoch(int64_t /*epoch*/, const std::map<std::string, double>& /*metrics*/) {}
  // After a checkpoint was written atomically (kind: "last" or "best").
  virtual void on_checkpoint(const std::string& /*path*/, const std::string& /*kind*/, int64_t /*epoch*/) {}
};

struct RunOptions {
  std::string out_dir;  // checkpoints (last.ckpt, best.ckpt) go here; "" = none
  bool resume = false;  // continue from out_dir/last.ckpt if it exists
  bool quiet = false;   // no progress on stderr
  // Set (e.g. by a SIGTERM handler) to stop after the current epoch's checkpoint.
  const std::atomic<bool>* stop = nullptr;
  // Fault injection for tests: the loss of this epoch's first step (1-based) is NaN.
  int64_t fault_nan_epoch = 0;
};

struct RunResult {
  std::string status;   // done | diverged | stopped
  std::string message;  // why it diverged or stopped
  int64_t epochs_done = 0;
  // test_elbo, test_rec, test_kl, test_nll, test_bpd (Gaussian), active_units,
  // samples_per_s, train_s, eval_s, sigma_eval (optimal sigma), and for dsprites
  // beta_vae_metric, factor_vae_metric, mig (eval/disentangle.hpp), ...
  std::map<std::string, double> metrics;
  // Named per-unit vectors of the test set (models/model.hpp ElboReport::vectors):
  // kl_per_dim, mu_variance, or a family's own (code_usage).
  std::map<std::string, std::vector<double>> unit_vectors;
  std::vector<double> train_loss_curve;  // mean training loss of each epoch (this process's)
  std::vector<DataFile> data_files;
  std::string binarize;  // resolved protocol
};

// What to load for a run: its data settings.
data::DataSpec data_spec(const TrainConfig& tc);

// The part of a configuration that determines the training trajectory: a checkpoint
// is resumed only under the same one (epochs and evaluation settings may change). As a
// run's id, it hashes a setting added after the first recipe only when it is not at its
// default, so a checkpoint stays resumable by a build that knows more settings.
std::string training_identity(const ConfigMap& config);
// The identity checkpoints were written with before that rule (every identity setting
// hashed): accepted when resuming them.
std::string legacy_training_identity(const ConfigMap& config);

// An epoch's order of the N training images (order.size() = N): a fresh permutation drawn
// from rng, or with shuffle false the file's order 0..N-1 and rng untouched (--shuffle).
void epoch_order(std::vector<uint32_t>& order, bool shuffle, std::mt19937_64& rng);

// The data files a configuration reads, with their checksums (for run identity).
std::vector<DataFile> data_files_for(const ConfigMap& config);

// The disentanglement metrics' protocol of a configuration (dsprites runs).
namespace eval {
struct DisentangleOptions;
}
eval::DisentangleOptions disentangle_options(const TrainConfig& tc);

// Trains and evaluates. Throws ConfigError on bad settings, std::runtime_error on
// data or I/O problems; a NaN/Inf loss returns status "diverged".
RunResult train_and_evaluate(const ConfigMap& config, const RunOptions& options, RunHooks* hooks);

}  // namespace vae
