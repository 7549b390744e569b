// The latent-variable-model contract: what a model family (a class template over the
// scalar type T, e.g. Vae<T>, LadderVae<T>) provides so that the algorithms of
// models/algorithms.hpp -- the training objective (ELBO with beta / warm-up / free bits,
// k-sample ELBO, IWAE), ELBO evaluation with its parts, the importance-weighted NLL,
// optimal sigma, active units, decoding, prior sampling -- are written once, and so that
// models/adapter.hpp turns it into the program-level Model. lib/models/README.md is the
// page-long version; the contract tests (tests/test_contract.cpp) check it on every family.
//
// A family F<T> has, with U = its latent units (all stochastic layers side by side):
//   Buffer<T> params, grads, state;      flat parameters, gradients, model state (batch norm)
//   Likelihood<T> lik;                   p(x|z) (prob/likelihood.hpp)
//   struct Work : LossWeights<T>         its buffers for up to max_batch rows, with
//     { max_batch, training, x [B,D], out [B,D], rec [B], lw, ... };   (training: batch-norm mode;
//                                        x .. lw: e.g. by deriving from LikelihoodBuffers<T>)
//   size_t data_dim() const, units() const;
//   std::vector<std::size_t> unit_layers() const;   stochastic layers' sizes to report one by one
//                                                   (empty: one layer, no per-layer metrics)
//   std::vector<ParamRange> param_groups() const;
//   void initialize(Init, double std, rng);
//   void reserve(Work&, rows) const;
//   void draw_noise(Work&, rows, rng);      all the noise of `rows` rows, in a fixed order
//   void forward(Work&, rows);              x, noise -> rec[b] = -log p(x_b|z_b), per-unit KL terms
//                                           (analytic, or single-sample log q - log p where no
//                                           closed form exists or w.sampled_kl is set)
//   void add_kl_columns(Work&, rows, double* acc);   acc[u] += sum_b kl[b,u], rows in order
//   void log_weights(Work&, rows, double* out);      log p(x_b, z_b) - log q(z_b|x_b)
//   void backward(Work&, rows, T rec_scale);
//       grads += d/dparams of sum_b c_b (rec_scale rec_b + sum_u unit_weight[u] kl[b,u]) with
//       c_b = row_weight[b] when w.row_weighted, else 1 (row weights need w.sampled_kl);
//       a family whose streams_grads() is true reports each parameter range to w.grad_sink
//       (when set) once its gradient is final and backward reads its values no more
//   bool streams_grads() const;             backward reports every parameter to w.grad_sink
//   void after_step(Work&, rows);           after a training step (batch-norm running statistics)
//   void mean_codes(Work&, rows, T* codes, T* base);   E_q[z|x] of the rows of x [rows,U];
//                                           base (may be null): a second code set, see has_base_codes
//   bool has_base_codes() const;
//   void iw_prepare(Work&, m);              x row 0 -> what its m importance samples share
//   void iw_samples(Work&, m);              after draw_noise: z and rec of m samples of row 0
//   void set_codes(Work&, rows, const T* codes);   codes [rows,U] -> the decoder's input
//   void decode(Work&, rows);               -> out [rows,D]: the likelihood's parameters
//   bool standard_prior() const;            p(z) = N(0, I) over all U units
//   void prior_codes(Work&, rows, T* codes);   after draw_noise: ancestral samples [rows,U]
//   void describe(std::map<std::string, double>&);   family facts worth recording
// Optional (detected at compile time; models/algorithms.hpp):
//   void eval_sums(Work&, rows, EvalSums&);   after each evaluation chunk's forward: add the
//                                             chunk's sums of the family's own quantities
//   void eval_report(const EvalSums&, n, ElboReport&);   n examples: name the family's metrics
//                                             and per-unit vectors (store/unit_vectors.hpp)
//   static constexpr bool kDiscreteCodes = true;   codes are category indices (a VQ-VAE's
//                                             codebook entries), not E_q[z|x]: no active units;
//                                             the posterior is a point mass (IW estimate = ELBO)
//   int64_t stage2_epochs() const; void set_stage(int);   a second training stage (the
//                                             VQ-VAE's prior on frozen codes), models/model.hpp
//   double extra_loss(Work&, rows);           the sum over the rows of training-loss terms that
//                                             are not part of the bound (a VQ-VAE's codebook and
//                                             commitment terms); the ELBO objective adds it / rows
//                                             and backward() includes its gradient
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "nn/params.hpp"
#include "prob/likelihood.hpp"
#include "tensor/view.hpp"

namespace vae {

// The loss weights the objective sets before backward(), part of every family's Work:
// unit_weight[u] multiplies unit u's KL term (beta / rows, 0 under free bits; 1 under
// IWAE), row_weight[b] every term of row b when row_weighted (IWAE: the self-normalised
// importance weight / B). log_w, kl_sums: the objective's scratch.
template <class T>
struct LossWeights {
  Buffer<T> unit_weight, row_weight;
  bool row_weighted = false;
  bool sampled_kl = false;  // forward's KL: the single-sample log q - log p, even where analytic
  double warmup = 1.0;      // the objective's KL warm-up factor (< 1: warming up); families may read it
  std::vector<double> log_w, kl_sums;  // [rows], [units]
  GradSink<T>* grad_sink = nullptr;    // set for one backward() by a fused step
  // Rows per example of a training step's forward() and backward(): rows b k .. b k + k - 1
  // are k samples of example b and share its x (set by the objective; 1 elsewhere).
  std::size_t k = 1;
  bool grads_zeroed = false;  // the last fused step left every gradient at zero
  void grad_ready(std::size_t offset, std::size_t n) {
    if (grad_sink) grad_sink->ready(offset, n);
  }
  void reserve_weights(std::size_t rows, std::size_t units) {
    unit_weight.assign(units, T(0));
    row_weight.assign(rows, T(0));
    log_w.assign(rows, 0.0);
    kl_sums.assign(units, 0.0);
  }
};

// The likelihood's side of a family's Work: x [B,D], the decoder's output out [B,D] (the
// likelihood's parameters) and, for a per-pixel sigma, raw_logsig [B,D] ([B,0] otherwise),
// their gradients dout and draw_logsig, rec [B] (-log p(x_b|z_b)) and the likelihood's own
// buffers lw.
template <class T>
struct LikelihoodBuffers {
  Activation2<T> x, out, raw_logsig, dout, draw_logsig;
  LikelihoodWork<T> lw;
  Buffer<T> rec;
  void reserve_likelihood(const Likelihood<T>& lik, std::size_t rows, std::size_t D) {
    for (Activation2<T>* a : {&x, &out, &dout}) a->reserve(rows, D);
    const std::size_t DS = lik.per_pixel() ? D : 0;
    raw_logsig.reserve(rows, DS);
    draw_logsig.reserve(rows, DS);
    lw.reserve(rows, D);
    rec.assign(rows, T(0));
  }
};

// A family's own sums over an evaluation, by name (eval_sums / eval_report above).
using EvalSums = std::map<std::string, std::vector<double>>;

template <class M, class = void>
struct has_eval_metrics : std::false_type {};
template <class M>
struct has_eval_metrics<M, std::void_t<decltype(&M::eval_report)>> : std::true_type {};

template <class M, class = void>
struct has_extra_loss : std::false_type {};
template <class M>
struct has_extra_loss<M, std::void_t<decltype(&M::extra_loss)>> : std::true_type {};

// streams_grads() is optional: a family without it gets the optimizer's separate pass.
template <class M, class = void>
struct has_streams_grads : std::false_type {};
template <class M>
struct has_streams_grads<M, std::void_t<decltype(&M::streams_grads)>> : std::true_type {};
template <class M>
bool streams_grads(const M& model) {
  if constexpr (has_streams_grads<M>::value) return model.streams_grads();
  else return false;
}

template <class M, class = void>
struct has_stages : std::false_type {};
template <class M>
struct has_stages<M, std::void_t<decltype(&M::set_stage)>> : std::true_type {};

template <class M, class = void>
struct has_discrete_codes : std::false_type {};
template <class M>
struct has_discrete_codes<M, std::void_t<decltype(M::kDiscreteCodes)>> : std::bool_constant<M::kDiscreteCodes> {
};

}  // namespace vae
