// Checkpoints: everything needed to continue a run exactly where it stopped
// (parameters, optimizer state, RNG state, epoch), written atomically.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "nn/optimizer.hpp"

namespace vae {

struct Checkpoint {
  std::string identity;     // the run's configuration hash: a checkpoint of another run is refused
  std::string config_json;  // the full resolved configuration, to rebuild the model from the file alone
  int64_t epoch = 0;        // epochs completed
  std::vector<float> params;
  std::vector<float> model_state;   // e.g. batch-norm running statistics
  std::vector<float> opt_a, opt_b;  // Adam m and v, or Adagrad's sum of squares in opt_a
  int64_t opt_t = 0;
  std::string rng_state;  // std::mt19937_64 as text
  double best_valid_elbo = -1e300;
  int64_t best_epoch = -1;
  double last_loss = 0;
  // Training time so far, so a resumed run reports its whole training time
  // (absent in older checkpoints: 0).
  double train_seconds = 0, samples_done = 0, best_epoch_seconds = 0;
  double train_cpu_seconds = 0;  // the process's CPU time in training steps (--time-budget-clock cpu)
};

// Writes to path.tmp, fsyncs, then renames over path: a crash leaves the old file or the new.
void save_checkpoint(const std::string& path, const Checkpoint& c);
// Throws std::runtime_error naming the file when it is missing, truncated or not a checkpoint.
Checkpoint load_checkpoint(const std::string& path);

// The optimizer's part of a checkpoint -- Adam's moments m, v and step count t, or Adagrad's
// sums of squares -- and back into an optimizer configured for the run: the one mapping
// training (train/run.cpp) and the stop+resume contract test (tests/test_contract.cpp) use.
template <class T>
void save_optimizer(Checkpoint& c, const Optimizer<T>& opt) {
  if (opt.kind == "adam") {
    c.opt_a.assign(opt.adam.m.begin(), opt.adam.m.end());
    c.opt_b.assign(opt.adam.v.begin(), opt.adam.v.end());
    c.opt_t = opt.adam.t;
  } else {
    c.opt_a.assign(opt.adagrad.sum_sq.begin(), opt.adagrad.sum_sq.end());
  }
}
template <class T>
void restore_optimizer(const Checkpoint& c, Optimizer<T>& opt) {
  if (opt.kind == "adam") {
    opt.adam.m.assign(c.opt_a.begin(), c.opt_a.end());
    opt.adam.v.assign(c.opt_b.begin(), c.opt_b.end());
    opt.adam.t = c.opt_t;
  } else {
    opt.adagrad.sum_sq.assign(c.opt_a.begin(), c.opt_a.end());
  }
}

// A random stream's state as text (Checkpoint::rng_state), and back.
std::string rng_to_string(const std::mt19937_64& rng);
void rng_from_string(std::mt19937_64& rng, const std::string& text);

}  // namespace vae
