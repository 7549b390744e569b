#include "train/run.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <sstream>

#include "data/dataset.hpp"
#include "eval/disentangle.hpp"
#include "train/checkpoint.hpp"
#include "train/optimizer.hpp"
#include "models/model.hpp"
#include "util/blas.hpp"
#include "util/hash.hpp"

namespace vae {

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}


// Independent random streams of a run, each a function of the seed alone.
std::mt19937_64 stream(int64_t seed, uint64_t purpose) {
  std::seed_seq seq{uint64_t(seed), purpose};
  return std::mt19937_64(seq);
}
enum : uint64_t { kInitStream = 1, kTrainStream = 2, kEvalStream = 3, kIwStream = 4, kSigmaStream = 5 };

std::string rng_to_string(const std::mt19937_64& rng) {
  std::ostringstream s;
  s << rng;
  return s.str();
}
void rng_from_string(std::mt19937_64& rng, const std::string& text) {
  std::istringstream s(text);
  s >> rng;
}

std::string format_duration(double s) {
  char buf[32];
  const long t = long(s + 0.5);
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
  for (const char* k : {"epochs", "iw-samples", "iw-examples", "iw-chunk", "eval-every"}) c.erase(k);
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

std::vector<DataFile> data_files_for(const ConfigMap& config) {
  const TrainConfig tc = to_train_config(config);
  std::vector<DataFile> files;
  for (const auto& path : data::data_file_paths(data_spec(tc))) files.push_back({path, sha256_file(path)});
  return files;
}

RunResult train_and_evaluate(const ConfigMap& config, const RunOptions& options, RunHooks* hooks) {
  const TrainConfig tc = to_train_config(config);
  set_blas_threads(int(tc.threads));
  const bool progress = !options.quiet;
  const std::string identity = training_identity(config);
  ConfigMap resolved = config;
  resolved["binarize"] = tc.binarize;
  const std::string config_json = to_json(resolved, false);

  RunResult result;
  result.binarize = tc.binarize;
  const auto t_load = Clock::now();
  data::Splits data = data::load(data_spec(tc));
  for (const auto& [path, sum] : data.files) result.data_files.push_back({path, sum});
  result.metrics["load_s"] = seconds_since(t_load);

  std::unique_ptr<Model> model;
  {
    auto init_rng = stream(tc.seed, kInitStream);
    model = make_model(tc, data.train.rows, data.train.cols, init_rng);
  }
  result.metrics["n_params"] = double(model->num_params());

  const std::size_t N = data.train.n, B = std::size_t(tc.batch);
  if (N == 0) throw std::runtime_error("the training set is empty");
  model->reserve(std::min(B, N), std::max<std::size_t>(500, std::size_t(tc.iw_chunk)));

  Optimizer<float> opt;
  opt.configure(tc.optimizer, tc.adam_beta1, tc.adam_beta2, tc.adam_eps, tc.adagrad_eps, model->num_params());
  auto train_rng = stream(tc.seed, kTrainStream);
  std::vector<uint32_t> order(N);
  std::iota(order.begin(), order.end(), 0u);

  int64_t start_epoch = 0;
  double best_valid = -1e300, last_loss = 0;
  int64_t best_epoch = -1;
  // Training time and samples of the earlier attempts of a resumed run.
  double train_seconds = 0, samples_done = 0, best_epoch_s = 0;
  const std::string last_path = options.out_dir.empty() ? "" : options.out_dir + "/last.ckpt";
  const std::string best_path = options.out_dir.empty() ? "" : options.out_dir + "/best.ckpt";
  if (!options.out_dir.empty()) std::filesystem::create_directories(options.out_dir);
  if (options.resume && !last_path.empty() && std::filesystem::exists(last_path)) {
    Checkpoint c = load_checkpoint(last_path);
    if (c.identity != identity && c.identity != legacy_training_identity(config))
      throw std::runtime_error(last_path + ": checkpoint of a different configuration");
    if (c.params.size() != model->num_params())
      throw std::runtime_error(last_path + ": parameter count does not match the model");
    model->params().assign(c.params.begin(), c.params.end());
    model->load_state(c.model_state);
    if (opt.kind == "adam") {
      opt.adam.m.assign(c.opt_a.begin(), c.opt_a.end());
      opt.adam.v.assign(c.opt_b.begin(), c.opt_b.end());
      opt.adam.t = c.opt_t;
    } else {
      opt.adagrad.sum_sq.assign(c.opt_a.begin(), c.opt_a.end());
    }
    rng_from_string(train_rng, c.rng_state);
    start_epoch = c.epoch;
    // epochs done so far, also when none is left to train (stopped after the last one)
    result.epochs_done = start_epoch;
    best_valid = c.best_valid_elbo;
    best_epoch = c.best_epoch;
    last_loss = c.last_loss;
    train_seconds = c.train_seconds;
    samples_done = c.samples_done;
    best_epoch_s = c.best_epoch_seconds;
    if (progress) std::fprintf(stderr, "resumed from %s at epoch %lld\n", last_path.c_str(), (long long)start_epoch);
  }

  auto make_checkpoint = [&](int64_t epochs_done) {
    Checkpoint c;
    c.identity = identity;
    c.config_json = config_json;
    c.epoch = epochs_done;
    c.params.assign(model->params().begin(), model->params().end());
    c.model_state = model->state();
    if (opt.kind == "adam") {
      c.opt_a.assign(opt.adam.m.begin(), opt.adam.m.end());
      c.opt_b.assign(opt.adam.v.begin(), opt.adam.v.end());
      c.opt_t = opt.adam.t;
    } else {
      c.opt_a.assign(opt.adagrad.sum_sq.begin(), opt.adagrad.sum_sq.end());
    }
    c.rng_state = rng_to_string(train_rng);
    c.best_valid_elbo = best_valid;
    c.best_epoch = best_epoch;
    c.last_loss = last_loss;
    c.train_seconds = train_seconds;
    c.samples_done = samples_done;
    c.best_epoch_seconds = best_epoch_s;
    return c;
  };

  const bool dynamic = tc.binarize == "dynamic";
  const std::size_t steps_per_epoch = (N + B - 1) / B;
  const bool tty = progress && ::isatty(STDERR_FILENO);
  const double resumed_train_seconds = train_seconds;
  result.status = "done";

  for (int64_t epoch = start_epoch; epoch < tc.epochs; ++epoch) {
    const double lr = scheduled_lr(tc.lr_schedule, tc.lr, tc.lr_decay, epoch);
    // Each epoch's order is a function of the RNG state alone, so a resumed run sees the same.
    std::iota(order.begin(), order.end(), 0u);
    std::shuffle(order.begin(), order.end(), train_rng);
    const auto t_epoch = Clock::now();
    auto t_report = t_epoch;
    double loss_sum = 0, rec_sum = 0, kl_sum = 0, beta_eff = tc.beta;
    for (std::size_t step = 0; step < steps_per_epoch; ++step) {
      const std::size_t start = step * B, rows = std::min(B, N - start);
      // Linear KL warm-up from 0 to beta over tc.warmup epochs, updated every step.
      const double progress_epochs = double(epoch) + double(step + 1) / double(steps_per_epoch);
      beta_eff = tc.warmup > 0 ? tc.beta * std::min(1.0, progress_epochs / double(tc.warmup)) : tc.beta;
      BatchLoss l = model->train_step(data.train, order.data() + start, rows, dynamic, train_rng,
                                      ObjectiveParams{beta_eff, tc.free_bits});
      if (epoch + 1 == options.fault_nan_epoch && step == 0) l.loss = std::nan("");
      if (!std::isfinite(l.loss)) {
        std::ostringstream m;
        m << "loss is " << l.loss << " at epoch " << epoch + 1 << ", step " << step + 1
          << "; last finite epoch loss " << last_loss;
        result.status = "diverged";
        result.message = m.str();
        result.epochs_done = epoch;
        if (progress) std::fprintf(stderr, "%sdiverged: %s\n", tty ? "\n" : "", m.str().c_str());
        return result;
      }
      opt.step(model->params(), model->grads(), lr);
      loss_sum += l.loss * double(rows);
      rec_sum += l.rec * double(rows);
      kl_sum += l.kl * double(rows);
      if (tty && seconds_since(t_report) > 0.5) {
        t_report = Clock::now();
        const double frac = double(step + 1) / double(steps_per_epoch);
        const double el = seconds_since(t_epoch);
        std::fprintf(stderr, "\repoch %lld/%lld %5.1f%%  loss %.3f  %.0f samples/s  epoch ETA %s   ",
                     (long long)epoch + 1, (long long)tc.epochs, 100 * frac, loss_sum / double(start + rows),
                     double(start + rows) / el, format_duration(el / frac - el).c_str());
      }
    }
    const double epoch_s = seconds_since(t_epoch);
    train_seconds += epoch_s;
    samples_done += double(N);
    if (best_epoch_s == 0 || epoch_s < best_epoch_s) best_epoch_s = epoch_s;
    last_loss = loss_sum / double(N);
    result.train_loss_curve.push_back(last_loss);

    std::map<std::string, double> m{{"train_loss", last_loss},
                                    {"train_rec", rec_sum / double(N)},
                                    {"train_kl", kl_sum / double(N)},
                                    {"lr", lr},
                                    {"beta_eff", beta_eff},
                                    {"epoch_s", epoch_s},
                                    {"samples_per_s", double(N) / epoch_s}};
    if (data.valid.n > 0) {
      auto rng = stream(tc.seed, kEvalStream);
      const ElboReport v = model->evaluate(data.valid, rng);
      m["valid_elbo"] = v.elbo;
      if (v.elbo > best_valid) {
        best_valid = v.elbo;
        best_epoch = epoch + 1;
        m["best"] = 1;
      }
    }
    const bool eval_now = tc.eval_every > 0 && (epoch + 1) % tc.eval_every == 0;
    if (eval_now) {
      auto rng = stream(tc.seed, kEvalStream);
      const ElboReport t = model->evaluate(data.test, rng);
      m["test_elbo"] = t.elbo;
    }
    if (!last_path.empty()) {
      const Checkpoint c = make_checkpoint(epoch + 1);
      save_checkpoint(last_path, c);
      if (hooks) hooks->on_checkpoint(last_path, "last", epoch + 1);
      if (m.count("best")) {
        save_checkpoint(best_path, c);
        if (hooks) hooks->on_checkpoint(best_path, "best", epoch + 1);
      }
    }
    m.erase("best");
    if (hooks) hooks->on_epoch(epoch + 1, m);
    result.epochs_done = epoch + 1;
    if (progress) {
      const double eta = (train_seconds - resumed_train_seconds) / double(epoch + 1 - start_epoch) * double(tc.epochs - epoch - 1);
      std::fprintf(stderr, "%sepoch %lld/%lld  loss %.3f  (rec %.3f, kl %.3f)", tty ? "\r" : "",
                   (long long)epoch + 1, (long long)tc.epochs, last_loss, rec_sum / double(N), kl_sum / double(N));
      if (m.count("valid_elbo")) std::fprintf(stderr, "  valid_elbo %.3f", m["valid_elbo"]);
      if (m.count("test_elbo")) std::fprintf(stderr, "  test_elbo %.3f", m["test_elbo"]);
      std::fprintf(stderr, "  %.0f samples/s  ETA %s        \n", double(N) / epoch_s, format_duration(eta).c_str());
    }
    if (options.stop && options.stop->load()) {
      result.status = "stopped";
      result.message = "stopped after epoch " + std::to_string(epoch + 1) + " (checkpoint written)";
      return result;
    }
  }

  // Final evaluation on the test set.
  const auto t_eval = Clock::now();
  {
    auto rng = stream(tc.seed, kSigmaStream);
    model->finish_training(data.train, rng, result.metrics);
  }
  model->describe(result.metrics);
  {
    auto rng = stream(tc.seed, kEvalStream);
    const ElboReport t = model->evaluate(data.test, rng);
    result.metrics["test_elbo"] = t.elbo;
    result.metrics["test_rec"] = t.rec;
    result.metrics["test_kl"] = t.kl;
    result.metrics["active_units"] = double(t.active_units);
    result.kl_per_dim = t.kl_per_dim;
    for (const auto& [k, v] : t.extra) result.metrics[k] = v;
  }
  const double D = double(data.train.dim());
  if (tc.iw_samples > 0) {
    auto rng = stream(tc.seed, kIwStream);
    const auto t_iw = Clock::now();
    const double nll = model->iw_nll(data.test, std::size_t(tc.iw_examples), std::size_t(tc.iw_samples),
                                     std::size_t(tc.iw_chunk), rng);
    result.metrics["iw_s"] = seconds_since(t_iw);
    result.metrics["test_nll"] = nll;
    result.metrics["iw_samples"] = double(tc.iw_samples);
    result.metrics["iw_examples"] = double(tc.iw_examples == 0 ? data.test.n
                                                             : std::min<std::size_t>(tc.iw_examples, data.test.n));
    if (tc.likelihood == "gaussian") result.metrics["test_bpd"] = nll / (D * std::log(2.0));
  }
  if (tc.dataset == "dsprites" && tc.disent_eval > 0) {
    // Disentanglement of the encoder's means against the known factors.
    const auto t_dis = Clock::now();
    for (const auto& [k, v] : eval::dsprites_metrics(*model, disentangle_options(tc))) result.metrics[k] = v;
    result.metrics["disent_s"] = seconds_since(t_dis);
  }
  if (tc.likelihood == "gaussian")
    result.metrics["test_elbo_bpd"] = -result.metrics["test_elbo"] / (D * std::log(2.0));
  result.metrics["eval_s"] = seconds_since(t_eval);
  result.metrics["train_s"] = train_seconds;
  if (train_seconds > 0) result.metrics["samples_per_s"] = samples_done / train_seconds;
  // The fastest epoch, as the PyTorch peer reports it (bench/run.sh compares the two).
  if (best_epoch_s > 0) result.metrics["best_epoch_samples_per_s"] = double(N) / best_epoch_s;
  result.metrics["epochs"] = double(result.epochs_done);
  if (best_epoch > 0) {
    result.metrics["best_valid_elbo"] = best_valid;
    result.metrics["best_epoch"] = double(best_epoch);
  }
  return result;
}

}  // namespace vae
