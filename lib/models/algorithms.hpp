// The algorithms over the model contract (models/contract.hpp), written once for every
// family, in nats per example:
//  - the training objective: the negative ELBO with a weighted KL,
//      loss = mean_b [ -log p(x_b|z_b) ] + beta_eff * sum_u KL_u,
//    KL_u the batch mean of unit u's KL term, beta_eff = beta * warm-up factor; free bits
//    (Kingma et al. 2016) replace KL_u by max(KL_u, lambda), so a unit below lambda nats gets
//    no KL gradient. With k > 1 samples per example the mean runs over the B k rows (the
//    k-sample ELBO, the "VAE" columns of Burda et al. 2016). The IWAE objective (Burda et al.
//    2016) is loss = -(1/B) sum_b log (1/k) sum_j w_bj, w = p(x, z) / q(z|x) with the
//    single-sample log q - log p; its gradient is -(1/B) sum_b sum_j wtilde_bj grad log w_bj
//    with the self-normalised weights wtilde, so backward() gets row weights wtilde / B.
//  - the single-sample ELBO and its parts (reconstruction, KL per unit and per layer),
//  - active units (Burda et al. 2015): unit u is active when Cov_x(E_q[z_u|x]) > 0.01,
//  - the importance-weighted marginal log-likelihood (Burda et al. 2015)
//      log p(x) ~ log (1/K) sum_k p(x, z_k) / q(z_k|x),  z_k ~ q(z|x),
//    in chunks, the log-sum-exp taken in double,
//  - the optimal sigma of the sigma-VAE for evaluation, decoding, prior sampling.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <stdexcept>
#include <vector>

#include "data/dataset.hpp"
#include "models/batch.hpp"
#include "models/contract.hpp"
#include "models/model.hpp"
#include "nn/optimizer.hpp"
#include "prob/likelihood.hpp"

namespace vae {

constexpr double kActiveUnitThreshold = 0.01;

// The scalar type of a family (float, or double in gradient checks).
template <class M>
using ParamType = typename decltype(M::params)::value_type;

// The first n images of a split (n = 0: all), as a batch-index list.
inline std::vector<uint32_t> first_indices(const data::Images& images, std::size_t n) {
  std::vector<uint32_t> idx(n == 0 ? images.n : std::min(n, images.n));
  std::iota(idx.begin(), idx.end(), 0u);
  return idx;
}

inline double log_sum_exp(const double* v, std::size_t n) {
  const double m = *std::max_element(v, v + n);
  if (!std::isfinite(m)) return m;
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += std::exp(v[i] - m);
  return m + std::log(s);
}

// Per-unit mean and variance over a data set of the codes E_q[z_u|x], for the
// active-unit count (Burda et al. 2015): unit u is active when its variance > 0.01.
struct UnitStats {
  std::vector<double> sum, sq;
  explicit UnitStats(std::size_t L) : sum(L, 0.0), sq(L, 0.0) {}
  template <class T>
  void add(const T* codes, std::size_t rows) {  // codes [rows, L], row-major
    const std::size_t L = sum.size();
    for (std::size_t i = 0; i < rows * L; ++i) {
      const double z = double(codes[i]);
      sum[i % L] += z;
      sq[i % L] += z * z;
    }
  }
  // Fills variance[u] for n codes and returns the number of active units.
  int64_t active(std::size_t n, std::vector<double>& variance) const {
    variance.assign(sum.size(), 0.0);
    int64_t count = 0;
    for (std::size_t l = 0; l < sum.size(); ++l) {
      const double mean = sum[l] / double(n);
      variance[l] = std::max(0.0, sq[l] / double(n) - mean * mean);
      if (variance[l] > kActiveUnitThreshold) ++count;
    }
    return count;
  }
};

// The ELBO objective over the R = B k rows of the last forward; sets the loss weights.
template <class M>
BatchLoss elbo_objective(M& model, typename M::Work& w, std::size_t R, const ObjectiveParams& p) {
  using T = typename std::remove_reference_t<decltype(model.params)>::value_type;
  const std::size_t U = model.units();
  BatchLoss out;
  for (std::size_t b = 0; b < R; ++b) out.rec += double(w.rec[b]);
  out.rec /= double(R);
  std::vector<double>& sums = w.kl_sums;
  std::fill(sums.begin(), sums.end(), 0.0);
  model.add_kl_columns(w, R, sums.data());
  double kl_term = 0;
  for (std::size_t u = 0; u < U; ++u) {
    const double kl_u = sums[u] / double(R);
    out.kl += kl_u;
    const bool clamped = p.free_bits > 0 && kl_u < p.free_bits;
    kl_term += clamped ? p.free_bits : kl_u;
    w.unit_weight[u] = clamped ? T(0) : T(p.beta / double(R));
  }
  out.loss = out.rec + p.beta * kl_term;
  if constexpr (has_extra_loss<M>::value) out.loss += model.extra_loss(w, R) / double(R);
  w.row_weighted = false;
  w.warmup = p.warmup;
  return out;
}

// The IWAE objective over B examples of k rows each; sets row weights wtilde / B.
template <class M>
BatchLoss iwae_objective(M& model, typename M::Work& w, std::size_t B, std::size_t k) {
  using T = typename std::remove_reference_t<decltype(model.params)>::value_type;
  const std::size_t R = B * k, U = model.units();
  BatchLoss out;
  model.log_weights(w, R, w.log_w.data());
  const double log_k = std::log(double(k));
  for (std::size_t b = 0; b < B; ++b) {
    const double* lw = w.log_w.data() + b * k;
    const double lse = log_sum_exp(lw, k);
    out.loss -= lse - log_k;
    for (std::size_t j = 0; j < k; ++j) w.row_weight[b * k + j] = T(std::exp(lw[j] - lse) / double(B));
  }
  out.loss /= double(B);
  for (std::size_t r = 0; r < R; ++r) out.rec += double(w.rec[r]);
  out.rec /= double(R);
  std::vector<double>& sums = w.kl_sums;
  std::fill(sums.begin(), sums.end(), 0.0);
  model.add_kl_columns(w, R, sums.data());
  for (std::size_t u = 0; u < U; ++u) {
    out.kl += sums[u] / double(R);
    w.unit_weight[u] = T(1);
  }
  w.row_weighted = true;
  return out;
}

// One forward and backward pass over the B examples whose x and noise fill the first
// B * p.k rows of w (k rows per example): grads += d loss / d params. With a sink (a fused
// step, train_step_update), backward() reports each range to it; a non-finite loss then
// skips backward, so that the sink never sees the diverged step.
template <class M>
BatchLoss loss_and_grad(M& model, typename M::Work& w, std::size_t B, const ObjectiveParams& p,
                        GradSink<ParamType<M>>* sink = nullptr) {
  using T = typename std::remove_reference_t<decltype(model.params)>::value_type;
  const std::size_t R = B * p.k;
  const bool iwae = p.objective == Objective::Iwae && p.k > 1;
  w.sampled_kl = iwae || p.sampled_kl;
  w.k = p.k;
  model.forward(w, R);
  const BatchLoss l = iwae ? iwae_objective(model, w, B, p.k) : elbo_objective(model, w, R, p);
  if (sink && !std::isfinite(l.loss)) {
    w.k = 1;
    return l;
  }
  w.grad_sink = sink;
  model.backward(w, R, iwae ? T(1) : T(1) / T(R));
  w.grad_sink = nullptr;
  w.k = 1;
  w.grads_zeroed = sink != nullptr;  // a sink zeroes what it is given (OptimizerSink)
  return l;
}

// The batch of a training step: a fresh Bernoulli draw when dynamic, then k copies of each
// image, and its noise from rng.
template <class M>
void fill_batch(M& model, typename M::Work& w, const data::Images& images, const uint32_t* index, std::size_t B,
                bool dynamic, std::mt19937_64& rng, const ObjectiveParams& p) {
  if (dynamic) gather_batch_binarized(w.x.ptr(), images, index, B, rng);
  else gather_batch(w.x.ptr(), images, index, B);
  replicate_rows(w.x.ptr(), B, p.k, model.data_dim());
  model.draw_noise(w, B * p.k, rng);
}

// One training step: fills the batch (a fresh Bernoulli draw when dynamic, then k copies
// of each image) and its noise from rng, zeroes the gradients and accumulates
// d loss / d params. The caller applies the optimizer. Allocates nothing.
template <class M>
BatchLoss train_step(M& model, typename M::Work& w, const data::Images& images, const uint32_t* index,
                     std::size_t B, bool dynamic, std::mt19937_64& rng, const ObjectiveParams& p) {
  using T = typename std::remove_reference_t<decltype(model.params)>::value_type;
  fill_batch(model, w, images, index, B, dynamic, rng, p);
  std::fill(model.grads.begin(), model.grads.end(), T(0));
  const BatchLoss l = loss_and_grad(model, w, B, p);
  model.after_step(w, B * p.k);
  return l;
}

// The optimizer as a gradient sink: applies the step at lr to each range backward()
// reports, while its gradient and parameters are still in cache, and zeroes that gradient.
// The step begins (Adam's t advances) with the first range.
template <class T>
struct OptimizerSink final : GradSink<T> {
  Optimizer<T>& opt;
  T* params;
  T* grads;
  double lr;
  bool begun = false;
  OptimizerSink(Optimizer<T>& o, T* p, T* g, double rate) : opt(o), params(p), grads(g), lr(rate) {}
  void ready(std::size_t offset, std::size_t n) override {
    begin();
    opt.apply_and_clear(params, grads, offset, n);
  }
  void ready_given(std::size_t offset, std::size_t n, T* g) override {
    begin();
    opt.apply_given(params, g, offset, n);
  }
  void begin() {
    if (!begun) opt.begin_step(lr);
    begun = true;
  }
};

// A training step and the optimizer's step at lr, with the numbers of train_step followed
// by opt.step(params, grads, lr), bit for bit. A family whose backward() streams its
// gradients (streams_grads()) has each layer updated as soon as its gradient is final,
// which saves a pass over parameters, gradients and optimizer state, and the zeroing
// pass (the step leaves the gradients at zero); the others get the two passes. With a
// non-finite loss the parameters are not updated (the run stops as diverged).
template <class M>
BatchLoss train_step_update(M& model, typename M::Work& w, const data::Images& images, const uint32_t* index,
                            std::size_t B, bool dynamic, std::mt19937_64& rng, const ObjectiveParams& p,
                            Optimizer<ParamType<M>>& opt, double lr) {
  using T = typename std::remove_reference_t<decltype(model.params)>::value_type;
  if (!streams_grads(model)) {
    const BatchLoss l = train_step(model, w, images, index, B, dynamic, rng, p);
    if (std::isfinite(l.loss)) opt.step(model.params, model.grads, lr);
    return l;
  }
  fill_batch(model, w, images, index, B, dynamic, rng, p);
  if (!w.grads_zeroed) std::fill(model.grads.begin(), model.grads.end(), T(0));
  OptimizerSink<T> sink(opt, model.params.data(), model.grads.data(), lr);
  const BatchLoss l = loss_and_grad(model, w, B, p, &sink);
  model.after_step(w, B * p.k);
  return l;
}

// Chunks of up to `chunk` rows of n, in order: f(start, rows).
template <class F>
void for_each_chunk(std::size_t n, std::size_t chunk, F f) {
  for (std::size_t start = 0; start < n; start += chunk) f(start, std::min(chunk, n - start));
}

// A split in order, batch by batch (w.max_batch rows): x gathered, the noise drawn, the
// single-sample forward pass (analytic KL where it exists), then seen(rows).
template <class M, class Seen>
void forward_batches(M& model, typename M::Work& w, const data::Images& images, std::mt19937_64& rng,
                     Seen seen) {
  const auto idx = first_indices(images, 0);
  w.sampled_kl = false;
  for_each_chunk(images.n, w.max_batch, [&](std::size_t start, std::size_t rows) {
    gather_batch(w.x.ptr(), images, idx.data() + start, rows);
    model.draw_noise(w, rows, rng);
    model.forward(w, rows);
    seen(rows);
  });
}

// The single-sample ELBO over a split (stored as it is: test sets are binarized once), its
// KL per unit and per layer, the active units of the codes mean_codes reports (unless the
// codes are discrete), and the family's own named metrics and vectors (eval_report).
template <class M>
ElboReport evaluate_elbo(M& model, typename M::Work& w, const data::Images& images, std::mt19937_64& rng) {
  using T = typename std::remove_reference_t<decltype(model.params)>::value_type;
  constexpr bool continuous = !has_discrete_codes<M>::value;
  const std::size_t U = model.units(), N = images.n, B = w.max_batch;
  ElboReport r;
  std::vector<double>& kl_per_dim = r.vectors["kl_per_dim"];
  kl_per_dim.assign(U, 0.0);
  UnitStats codes(continuous ? U : 0), base(U);
  std::vector<T> code(continuous ? B * U : 0), base_code(model.has_base_codes() ? B * U : 0);
  EvalSums sums;
  forward_batches(model, w, images, rng, [&](std::size_t rows) {
    for (std::size_t b = 0; b < rows; ++b) r.rec += double(w.rec[b]);
    model.add_kl_columns(w, rows, kl_per_dim.data());
    if constexpr (has_eval_metrics<M>::value) model.eval_sums(w, rows, sums);
    if (!continuous) return;
    model.mean_codes(w, rows, code.data(), base_code.empty() ? nullptr : base_code.data());
    codes.add(code.data(), rows);
    if (!base_code.empty()) base.add(base_code.data(), rows);
  });
  r.rec /= double(N);
  for (double& k : kl_per_dim) k /= double(N);
  std::vector<double> variance;
  if (continuous) r.metrics["active_units"] = double(codes.active(N, variance));
  else variance.assign(U, 0.0);
  std::vector<std::size_t> layers = model.unit_layers();
  const bool per_layer = !layers.empty();
  if (!per_layer) layers.assign(1, U);
  for (std::size_t i = 0, u0 = 0; i < layers.size(); u0 += layers[i++]) {
    double kl = 0;
    int64_t active = 0;
    for (std::size_t j = 0; j < layers[i]; ++j) {
      kl += kl_per_dim[u0 + j];
      if (variance[u0 + j] > kActiveUnitThreshold) ++active;
    }
    r.kl += kl;
    if (per_layer) {
      r.metrics["kl_layer" + std::to_string(i + 1)] = kl;
      if (continuous) r.metrics["active_units_layer" + std::to_string(i + 1)] = double(active);
    }
  }
  if (!base_code.empty()) {
    std::vector<double> base_variance;
    r.metrics["active_units_base"] = double(base.active(N, base_variance));
  }
  if (continuous) r.vectors["mu_variance"] = std::move(variance);
  r.elbo = -(r.rec + r.kl);
  if constexpr (has_eval_metrics<M>::value) model.eval_report(sums, N, r);
  return r;
}

// Mean over the first n_examples images of -log p(x), estimated with K importance samples
// from q(z|x): each example's shared part once (iw_prepare), then chunks of samples. w must
// hold at least `chunk` rows.
template <class M>
double iw_nll(M& model, typename M::Work& w, const data::Images& images, std::size_t n_examples, std::size_t K,
              std::size_t chunk, std::mt19937_64& rng) {
  const std::size_t N = n_examples == 0 ? images.n : std::min(n_examples, images.n);
  // A point-mass posterior (discrete codes): every sample is the same code, so the estimate
  // is log w of one sample, whatever K.
  if constexpr (has_discrete_codes<M>::value) K = 1;
  chunk = std::min(chunk, w.max_batch);
  std::vector<double> log_w(K);
  double total = 0;
  w.sampled_kl = false;
  for (std::size_t i = 0; i < N; ++i) {
    const uint32_t index = uint32_t(i);
    gather_batch(w.x.ptr(), images, &index, 1);
    model.iw_prepare(w, std::min(chunk, K));  // later chunks are no longer than the first
    for (std::size_t done = 0; done < K; done += chunk) {
      const std::size_t m = std::min(chunk, K - done);
      model.draw_noise(w, m, rng);
      model.iw_samples(w, m);
      model.log_weights(w, m, log_w.data() + done);
    }
    total += log_sum_exp(log_w.data(), K) - std::log(double(K));
  }
  return -total / double(N);
}

// sigma* for evaluation (the optimal-sigma mode): log sqrt of the MSE of the decoder mean
// over the whole training set, one posterior sample per image, soft-clipped as in training.
template <class M>
double optimal_log_sigma(M& model, typename M::Work& w, const data::Images& images, std::mt19937_64& rng) {
  using T = typename std::remove_reference_t<decltype(model.params)>::value_type;
  const std::size_t D = model.data_dim(), N = images.n;
  double sse = 0;
  forward_batches(model, w, images, rng, [&](std::size_t rows) {
    const T* mean = w.lw.mean.ptr();
    const T* x = w.x.ptr();
    for (std::size_t i = 0; i < rows * D; ++i) sse += double(x[i] - mean[i]) * double(x[i] - mean[i]);
  });
  return double(softclip(T(0.5 * std::log(sse / double(N * D))), model.lik.min_log_sigma));
}

// E_q[z|x] of the first n images (0: all), [n, U] row-major.
template <class M>
std::vector<float> encode_mean(M& model, typename M::Work& w, const data::Images& images, std::size_t n) {
  using T = typename std::remove_reference_t<decltype(model.params)>::value_type;
  const std::size_t U = model.units(), N = n == 0 ? images.n : std::min(n, images.n);
  const auto idx = first_indices(images, N);
  std::vector<float> mu(N * U);
  std::vector<T> code(w.max_batch * U);
  for_each_chunk(N, w.max_batch, [&](std::size_t start, std::size_t rows) {
    gather_batch(w.x.ptr(), images, idx.data() + start, rows);
    model.mean_codes(w, rows, code.data(), nullptr);
    std::copy(code.begin(), code.begin() + std::ptrdiff_t(rows * U), mu.begin() + std::ptrdiff_t(start * U));
  });
  return mu;
}

// The decoder's mean for n codes z [n, U]: [n, D] in [0,1] (Bernoulli probabilities or
// Gaussian means).
template <class M>
std::vector<float> decode_mean(M& model, typename M::Work& w, const std::vector<float>& z, std::size_t n) {
  using T = typename std::remove_reference_t<decltype(model.params)>::value_type;
  const std::size_t U = model.units(), D = model.data_dim();
  std::vector<float> out(n * D);
  std::vector<T> code(w.max_batch * U);
  const bool sigmoid = model.lik.kind == LikelihoodKind::Bernoulli || model.lik.sigmoid_mean;
  for_each_chunk(n, w.max_batch, [&](std::size_t start, std::size_t rows) {
    std::copy(z.begin() + std::ptrdiff_t(start * U), z.begin() + std::ptrdiff_t((start + rows) * U),
              code.begin());
    model.set_codes(w, rows, code.data());
    model.decode(w, rows);
    const T* o = w.out.ptr();
    for (std::size_t i = 0; i < rows * D; ++i)
      out[start * D + i] = sigmoid ? 1.0f / (1.0f + std::exp(-float(o[i]))) : float(o[i]);
  });
  return out;
}

// n codes [n, U] drawn from the family's prior by ancestral sampling.
template <class M>
std::vector<float> sample_prior_codes(M& model, typename M::Work& w, std::size_t n, std::mt19937_64& rng) {
  using T = typename std::remove_reference_t<decltype(model.params)>::value_type;
  const std::size_t U = model.units();
  std::vector<float> out(n * U);
  std::vector<T> code(w.max_batch * U);
  for_each_chunk(n, w.max_batch, [&](std::size_t start, std::size_t rows) {
    model.draw_noise(w, rows, rng);
    model.prior_codes(w, rows, code.data());
    std::copy(code.begin(), code.begin() + std::ptrdiff_t(rows * U), out.begin() + std::ptrdiff_t(start * U));
  });
  return out;
}

}  // namespace vae
