#include "train/run.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "data/dataset.hpp"
#include "eval/disentangle.hpp"
#include "models/model.hpp"
#include "models/settings.hpp"
#include "nn/optimizer.hpp"
#include "train/checkpoint.hpp"
#include "train/evaluators.hpp"
#include "util/blas.hpp"
#include "util/hash.hpp"

namespace vae {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }
// The process's CPU time, all its threads (std::clock on Linux).
double cpu_seconds() { return double(std::clock()) / CLOCKS_PER_SEC; }

// Independent random streams of a run, each a function of the seed alone.
std::mt19937_64 stream(int64_t seed, uint64_t purpose) {
  std::seed_seq seq{uint64_t(seed), purpose};
  return std::mt19937_64(seq);
}
enum : uint64_t { kInitStream = 1, kTrainStream = 2, kEvalStream = 3, kIwStream = 4, kSigmaStream = 5 };

std::string format_duration(double s) {
  char buf[32];
  const long t = std::lround(s);
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  return buf;
}

}  // namespace

data::DataSpec data_spec(const TrainConfig& tc) {
  data::DataSpec spec;
  spec.dataset = tc.dataset;
  spec.data_dir = tc.data_dir;
  spec.binarize = tc.binarize;
  spec.train_size = tc.train_size;
  spec.valid_size = tc.valid_size;
  spec.test_size = tc.test_size;
  spec.dsprites_cache = tc.dsprites_cache;
  return spec;
}

namespace {
ConfigMap trajectory_settings(const ConfigMap& config) {
  ConfigMap c = config;
  // when to stop and what to evaluate at the end: a checkpoint goes on under other values
  for (const char* k :
       {"epochs", "time-budget", "time-budget-clock", "iw-samples", "iw-examples", "iw-chunk", "eval-every"})
    c.erase(k);
  return c;
}
}  // namespace

std::string training_identity(const ConfigMap& config) {
  return sha256_hex(identity_settings_json(trajectory_settings(config)));
}

std::string legacy_training_identity(const ConfigMap& config) {
  return sha256_hex(to_json(trajectory_settings(config), true));
}

eval::DisentangleOptions disentangle_options(const TrainConfig& tc) {
  eval::DisentangleOptions o;
  o.batch = std::size_t(tc.disent_batch);
  o.num_train = std::size_t(tc.disent_train);
  o.num_variance = std::size_t(tc.disent_train);
  o.num_eval = std::size_t(tc.disent_eval);
  return o;
}

void epoch_order(std::vector<uint32_t>& order, bool shuffle, std::mt19937_64& rng) {
  std::iota(order.begin(), order.end(), 0u);
  if (shuffle) std::shuffle(order.begin(), order.end(), rng);
}

std::vector<DataFile> data_files_for(const ConfigMap& config) {
  const TrainConfig tc = to_train_config(config);
  std::vector<DataFile> files;
  for (const auto& path : data::data_file_paths(data_spec(tc))) files.push_back({path, sha256_file(path)});
  return files;
}

namespace {

// Everything one run's training loop reads and writes; what a checkpoint carries is
// saved from and restored into it.
struct Trainer {
  Trainer(const TrainConfig& config, const RunOptions& run_options, RunHooks* run_hooks)
      : tc(config), options(run_options), hooks(run_hooks) {}
  const TrainConfig& tc;
  const RunOptions& options;
  RunHooks* hooks;
  std::string identity, legacy_identity, config_json, last_path, best_path;
  data::Splits data;
  std::unique_ptr<Model> model;
  Optimizer<float> opt;
  std::mt19937_64 train_rng;
  std::vector<uint32_t> order;
  std::size_t N = 0, B = 0, steps_per_epoch = 0;
  int64_t start_epoch = 0, best_epoch = -1, total_epochs = 0;  // total: with a second stage
  double best_valid = -1e300, last_loss = 0;
  // Training time and samples, including the earlier attempts of a resumed run
  // (resumed_seconds: theirs alone, for the ETA).
  double train_seconds = 0, samples_done = 0, best_epoch_s = 0, resumed_seconds = 0;
  double train_cpu_seconds = 0;
  bool progress = false, tty = false;
};

// A fresh optimizer of the run's settings for the model's parameters (the run's start, and
// a second stage's).
void configure_optimizer(Trainer& t) {
  const TrainConfig& tc = t.tc;
  t.opt.configure(tc.optimizer, tc.adam_beta1, tc.adam_beta2, tc.adam_eps, tc.adagrad_eps,
                  t.model->num_params(), tc.adam_v0, tc.adam_update == "iwae-code");
}

// Data, model (from the init stream), optimizer and paths; no training state yet.
void set_up(Trainer& t, const ConfigMap& config, RunResult& result) {
  const TrainConfig& tc = t.tc;
  t.identity = training_identity(config);
  t.legacy_identity = legacy_training_identity(config);
  ConfigMap resolved = config;
  resolved["binarize"] = tc.binarize;
  t.config_json = to_json(resolved, false);
  result.binarize = tc.binarize;
  const auto t_load = Clock::now();
  t.data = data::load(data_spec(tc));
  for (const auto& [path, sum] : t.data.files) result.data_files.push_back({path, sum});
  result.metrics["load_s"] = seconds_since(t_load);
  {
    auto init_rng = stream(tc.seed, kInitStream);
    t.model = make_model(tc, t.data.train.rows, t.data.train.cols, init_rng);
  }
  if (tc.output_bias == "data-logit") set_output_bias_to_data_logit(*t.model, t.data.train);
  result.metrics["n_params"] = double(t.model->num_params());
  t.total_epochs = tc.epochs + t.model->stage2_epochs();
  t.N = t.data.train.n;
  t.B = std::size_t(tc.batch);
  if (t.N == 0) throw std::runtime_error("the training set is empty");
  t.steps_per_epoch = (t.N + t.B - 1) / t.B;
  const std::size_t k = std::size_t(tc.k);  // rows per example in training
  t.model->reserve(std::min(t.B, t.N) * k, std::max<std::size_t>(500, std::size_t(tc.iw_chunk)));
  configure_optimizer(t);
  t.opt.weight_decay = tc.weight_decay;
  t.train_rng = stream(tc.seed, kTrainStream);
  t.order.resize(t.N);
  std::iota(t.order.begin(), t.order.end(), 0u);
  t.last_path = t.options.out_dir.empty() ? "" : t.options.out_dir + "/last.ckpt";
  t.best_path = t.options.out_dir.empty() ? "" : t.options.out_dir + "/best.ckpt";
  if (!t.options.out_dir.empty()) std::filesystem::create_directories(t.options.out_dir);
  t.progress = !t.options.quiet;
  t.tty = t.progress && ::isatty(STDERR_FILENO);
}

// Continues from out_dir/last.ckpt when asked to and it exists.
void resume(Trainer& t, RunResult& result) {
  if (!t.options.resume || t.last_path.empty() || !std::filesystem::exists(t.last_path)) return;
  Checkpoint c = load_checkpoint(t.last_path);
  if (c.identity != t.identity && c.identity != t.legacy_identity)
    throw std::runtime_error(t.last_path + ": checkpoint of a different configuration");
  if (c.params.size() != t.model->num_params())
    throw std::runtime_error(t.last_path + ": parameter count does not match the model");
  t.model->params().assign(c.params.begin(), c.params.end());
  t.model->load_state(c.model_state);
  restore_optimizer(c, t.opt);
  rng_from_string(t.train_rng, c.rng_state);
  t.start_epoch = c.epoch;
  // a checkpoint inside the second stage holds that stage's optimizer state
  if (t.start_epoch > t.tc.epochs && t.model->stage2_epochs() > 0) t.model->set_stage(2);
  // epochs done so far, also when none is left to train (stopped after the last one)
  result.epochs_done = t.start_epoch;
  t.best_valid = c.best_valid_elbo;
  t.best_epoch = c.best_epoch;
  t.last_loss = c.last_loss;
  t.train_seconds = c.train_seconds;
  t.train_cpu_seconds = c.train_cpu_seconds;
  t.samples_done = c.samples_done;
  t.best_epoch_s = c.best_epoch_seconds;
  t.resumed_seconds = c.train_seconds;
  if (t.progress)
    std::fprintf(stderr, "resumed from %s at epoch %lld\n", t.last_path.c_str(), (long long)t.start_epoch);
}

Checkpoint make_checkpoint(const Trainer& t, int64_t epochs_done) {
  Checkpoint c;
  c.identity = t.identity;
  c.config_json = t.config_json;
  c.epoch = epochs_done;
  c.params.assign(t.model->params().begin(), t.model->params().end());
  c.model_state = t.model->state();
  save_optimizer(c, t.opt);
  c.rng_state = rng_to_string(t.train_rng);
  c.best_valid_elbo = t.best_valid;
  c.best_epoch = t.best_epoch;
  c.last_loss = t.last_loss;
  c.train_seconds = t.train_seconds;
  c.train_cpu_seconds = t.train_cpu_seconds;
  c.samples_done = t.samples_done;
  c.best_epoch_seconds = t.best_epoch_s;
  return c;
}

struct EpochSums {
  double loss = 0, rec = 0, kl = 0, beta_eff = 0;
  double rows = 0;   // examples trained on: N, or fewer when the time budget ends the epoch
  double cpu_s = 0;  // the process's CPU time in the epoch's steps
  bool diverged = false;
};

// --time-budget: the training steps so far (this epoch's wall and CPU seconds included) have
// used it up, on the clock --time-budget-clock names.
bool budget_spent(const Trainer& t, double epoch_seconds, double epoch_cpu_seconds) {
  if (t.tc.time_budget <= 0) return false;
  const double spent = t.tc.time_budget_cpu ? t.train_cpu_seconds + epoch_cpu_seconds
                                            : t.train_seconds + epoch_seconds;
  return spent >= t.tc.time_budget;
}

// One pass over the training set (shuffled unless --shuffle false), cut short when the
// time budget is spent; on a NaN/Inf loss, fills result and stops.
EpochSums train_epoch(Trainer& t, int64_t epoch, double lr, RunResult& result) {
  const TrainConfig& tc = t.tc;
  const bool dynamic = tc.binarize == "dynamic";
  // Each epoch's order is a function of the RNG state alone, so a resumed run sees the same.
  epoch_order(t.order, tc.shuffle, t.train_rng);
  const auto t_epoch = Clock::now();
  const double cpu_epoch = cpu_seconds();
  auto t_report = t_epoch;
  EpochSums s;
  s.beta_eff = tc.beta;
  for (std::size_t step = 0; step < t.steps_per_epoch; ++step) {
    const std::size_t start = step * t.B, rows = std::min(t.B, t.N - start);
    // Linear KL warm-up from 0 to beta over tc.warmup epochs, updated every step.
    const double progress_epochs = double(epoch) + double(step + 1) / double(t.steps_per_epoch);
    const double warmup = tc.warmup > 0 ? std::min(1.0, progress_epochs / double(tc.warmup)) : 1.0;
    s.beta_eff = tc.beta * warmup;
    BatchLoss l = t.model->train_step_update(t.data.train, t.order.data() + start, rows, dynamic, t.train_rng,
                                             ObjectiveParams{s.beta_eff, tc.free_bits, tc.objective,
                                                             std::size_t(tc.k), warmup, tc.kl_sampled},
                                             t.opt, lr);
    if (epoch + 1 == t.options.fault_nan_epoch && step == 0) l.loss = std::nan("");
    if (!std::isfinite(l.loss)) {
      std::ostringstream m;
      m << "loss is " << l.loss << " at epoch " << epoch + 1 << ", step " << step + 1
        << "; last finite epoch loss " << t.last_loss;
      result.status = "diverged";
      result.message = m.str();
      result.epochs_done = epoch;
      if (t.progress) std::fprintf(stderr, "%sdiverged: %s\n", t.tty ? "\n" : "", m.str().c_str());
      s.diverged = true;
      return s;
    }
    s.loss += l.loss * double(rows);
    s.rec += l.rec * double(rows);
    s.kl += l.kl * double(rows);
    s.rows += double(rows);
    // (the clocks only read under a budget: std::clock is a system call on every step)
    if (tc.time_budget > 0 && budget_spent(t, seconds_since(t_epoch), cpu_seconds() - cpu_epoch)) break;
    if (t.tty && seconds_since(t_report) > 0.5) {
      t_report = Clock::now();
      const double frac = double(step + 1) / double(t.steps_per_epoch);
      const double el = seconds_since(t_epoch);
      std::fprintf(stderr, "\repoch %lld/%lld %5.1f%%  loss %.3f  %.0f samples/s  epoch ETA %s   ",
                   (long long)epoch + 1, (long long)t.total_epochs, 100 * frac, s.loss / double(start + rows),
                   double(start + rows) / el, format_duration(el / frac - el).c_str());
    }
  }
  s.cpu_s = cpu_seconds() - cpu_epoch;
  return s;
}

// After an epoch's steps: its metrics, the validation and test ELBO when due, checkpoints,
// hooks and the progress line.
void end_epoch(Trainer& t, int64_t epoch, double lr, double epoch_s, const EpochSums& s, RunResult& result) {
  const TrainConfig& tc = t.tc;
  const double N = s.rows;  // the averages are over the examples this epoch trained on
  t.train_seconds += epoch_s;
  t.train_cpu_seconds += s.cpu_s;
  t.samples_done += N;
  const bool whole = s.rows == double(t.N);  // a partial last epoch says nothing of the speed
  if (whole && (t.best_epoch_s == 0 || epoch_s < t.best_epoch_s)) t.best_epoch_s = epoch_s;
  t.last_loss = s.loss / N;
  result.train_loss_curve.push_back(t.last_loss);
  std::map<std::string, double> m{{"train_loss", t.last_loss},    {"train_rec", s.rec / N},
                                  {"train_kl", s.kl / N},         {"lr", lr},
                                  {"beta_eff", s.beta_eff},       {"epoch_s", epoch_s},
                                  {"samples_per_s", N / epoch_s}, {"samples_seen", t.samples_done}};
  bool best = false;
  if (t.data.valid.n > 0) {
    auto rng = stream(tc.seed, kEvalStream);
    const ElboReport v = t.model->evaluate(t.data.valid, rng);
    m["valid_elbo"] = v.elbo;
    if (v.elbo > t.best_valid) {
      t.best_valid = v.elbo;
      t.best_epoch = epoch + 1;
      best = true;
    }
  }
  if (tc.eval_every > 0 && (epoch + 1) % tc.eval_every == 0) {
    auto rng = stream(tc.seed, kEvalStream);
    m["test_elbo"] = t.model->evaluate(t.data.test, rng).elbo;
  }
  if (!t.last_path.empty()) {
    const Checkpoint c = make_checkpoint(t, epoch + 1);
    save_checkpoint(t.last_path, c);
    if (t.hooks) t.hooks->on_checkpoint(t.last_path, "last", epoch + 1);
    if (best) {
      save_checkpoint(t.best_path, c);
      if (t.hooks) t.hooks->on_checkpoint(t.best_path, "best", epoch + 1);
    }
  }
  if (t.hooks) t.hooks->on_epoch(epoch + 1, m);
  result.epochs_done = epoch + 1;
  if (!t.progress) return;
  const double eta = (t.train_seconds - t.resumed_seconds) / double(epoch + 1 - t.start_epoch) *
                     double(t.total_epochs - epoch - 1);
  std::fprintf(stderr, "%sepoch %lld/%lld  loss %.3f  (rec %.3f, kl %.3f)", t.tty ? "\r" : "",
               (long long)epoch + 1, (long long)t.total_epochs, t.last_loss, s.rec / N, s.kl / N);
  if (m.count("valid_elbo")) std::fprintf(stderr, "  valid_elbo %.3f", m["valid_elbo"]);
  if (m.count("test_elbo")) std::fprintf(stderr, "  test_elbo %.3f", m["test_elbo"]);
  std::fprintf(stderr, "  %.0f samples/s  ETA %s        \n", N / epoch_s, format_duration(eta).c_str());
}

// After the last epoch: sigma*, the test ELBO and its parts, the importance-weighted NLL,
// the evaluators that apply (train/evaluators.hpp), timings.
void final_evaluation(Trainer& t, RunResult& result) {
  const TrainConfig& tc = t.tc;
  Model& model = *t.model;
  const auto t_eval = Clock::now();
  {
    auto rng = stream(tc.seed, kSigmaStream);
    model.finish_training(t.data.train, rng, result.metrics);
  }
  model.describe(result.metrics);
  {
    auto rng = stream(tc.seed, kEvalStream);
    const ElboReport r = model.evaluate(t.data.test, rng);
    result.metrics["test_elbo"] = r.elbo;
    result.metrics["test_rec"] = r.rec;
    result.metrics["test_kl"] = r.kl;
    result.unit_vectors = r.vectors;
    for (const auto& [k, v] : r.metrics) result.metrics[k] = v;
  }
  const double D = double(t.data.train.dim());
  if (tc.iw_samples > 0) {
    auto rng = stream(tc.seed, kIwStream);
    const auto t_iw = Clock::now();
    const double nll = model.iw_nll(t.data.test, std::size_t(tc.iw_examples), std::size_t(tc.iw_samples),
                                    std::size_t(tc.iw_chunk), rng);
    result.metrics["iw_s"] = seconds_since(t_iw);
    result.metrics["test_nll"] = nll;
    result.metrics["iw_samples"] = double(tc.iw_samples);
    result.metrics["iw_examples"] = double(
        tc.iw_examples == 0 ? t.data.test.n : std::min<std::size_t>(tc.iw_examples, t.data.test.n));
    if (tc.likelihood == "gaussian") result.metrics["test_bpd"] = nll / (D * std::log(2.0));
  }
  for (const Evaluator& e : evaluators())
    if (e.applies(tc)) e.run(model, t.data, tc, result.metrics);
  if (tc.likelihood == "gaussian")
    result.metrics["test_elbo_bpd"] = -result.metrics["test_elbo"] / (D * std::log(2.0));
  result.metrics["eval_s"] = seconds_since(t_eval);
}

}  // namespace

RunResult train_and_evaluate(const ConfigMap& config, const RunOptions& options, RunHooks* hooks) {
  const TrainConfig tc = to_train_config(config);
  set_blas_threads(int(tc.threads));
  Trainer t(tc, options, hooks);
  RunResult result;
  set_up(t, config, result);
  resume(t, result);
  result.status = "done";
  // A second stage (Model::stage2_epochs, e.g. the VQ-VAE's prior) runs after the configured
  // epochs with a fresh optimizer and its own learning-rate schedule.
  const int64_t total_epochs = t.total_epochs;
  for (int64_t epoch = t.start_epoch; epoch < total_epochs && !budget_spent(t, 0, 0); ++epoch) {
    if (epoch == tc.epochs && total_epochs > tc.epochs) {
      t.model->set_stage(2);
      configure_optimizer(t);
    }
    const int64_t stage_epoch = epoch < tc.epochs ? epoch : epoch - tc.epochs;
    const double lr = scheduled_lr(tc.lr_schedule, tc.lr, tc.lr_decay, stage_epoch);
    const auto t_epoch = Clock::now();
    const EpochSums s = train_epoch(t, epoch, lr, result);
    if (s.diverged) return result;
    end_epoch(t, epoch, lr, seconds_since(t_epoch), s, result);
    if (options.stop && options.stop->load()) {
      result.status = "stopped";
      result.message = "stopped after epoch " + std::to_string(epoch + 1) + " (checkpoint written)";
      return result;
    }
  }
  final_evaluation(t, result);
  result.metrics["train_s"] = t.train_seconds;
  result.metrics["train_cpu_s"] = t.train_cpu_seconds;
  if (t.train_seconds > 0) result.metrics["samples_per_s"] = t.samples_done / t.train_seconds;
  // The fastest epoch, as the PyTorch peer reports it (bench/run.sh compares the two).
  if (t.best_epoch_s > 0) result.metrics["best_epoch_samples_per_s"] = double(t.N) / t.best_epoch_s;
  result.metrics["epochs"] = double(result.epochs_done);
  // passes over the training set, fractional when the time budget ended the last one
  result.metrics["epochs_trained"] = t.samples_done / double(t.N);
  if (t.best_epoch > 0) {
    result.metrics["best_valid_elbo"] = t.best_valid;
    result.metrics["best_epoch"] = double(t.best_epoch);
  }
  return result;
}

}  // namespace vae
