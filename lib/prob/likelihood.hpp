// Decoder distributions p(x|z): Bernoulli on logits, and the Gaussian with the
// sigma modes of Rybkin et al. (2020), "Simple and Effective VAE Training with
// Calibrated Decoders". Per pixel, with s = log sigma:
//   -log N(x; m, sigma^2) = (x - m)^2 / (2 exp(2 s)) + s + log(2 pi) / 2
// (DESIGN.md: the poster's exp((s*)^2) is a typo for exp(s*)^2.)
#pragma once

#include <cmath>
#include <string>
#include <vector>
#include <xsimd/xsimd.hpp>
#include "tensor/blas.hpp"

#include "nn/params.hpp"
#include "prob/gaussian.hpp"
#include "tensor/activation.hpp"

namespace vae {

enum class LikelihoodKind { Bernoulli, Gaussian };
enum class SigmaMode { Fixed, Learned, Optimal, PerPixel };

inline SigmaMode parse_sigma_mode(const std::string& s) {
  if (s == "fixed") return SigmaMode::Fixed;
  if (s == "learned") return SigmaMode::Learned;
  if (s == "optimal") return SigmaMode::Optimal;
  if (s == "per-pixel") return SigmaMode::PerPixel;
  throw std::invalid_argument("unknown sigma mode '" + s + "'");
}

// Soft lower bound used by the sigma-VAE reference code: s -> lb + softplus(s - lb),
// so sigma never collapses to 0 while staying smooth.
template <class T>
T softclip(T s, T lb) {
  T u = s - lb;
  return lb + (std::log1p(std::exp(-std::abs(u))) + std::max(u, T(0)));
}
template <class T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <class T>
struct Likelihood {
  LikelihoodKind kind = LikelihoodKind::Bernoulli;
  SigmaMode sigma = SigmaMode::Fixed;
  T fixed_log_sigma = 0;          // --sigma fixed: log(sigma-value)
  T min_log_sigma = -6;           // soft lower bound (learned, optimal, per-pixel)
  bool sigmoid_mean = true;       // Gaussian mean = sigmoid(decoder output)
  std::size_t shared_offset = 0;  // learned: the raw log sigma in the flat parameter buffer
  // At evaluation the optimal mode uses the sigma* measured on the training set.
  bool eval_sigma_set = false;
  T eval_log_sigma = 0;

  bool per_pixel() const { return kind == LikelihoodKind::Gaussian && sigma == SigmaMode::PerPixel; }
  bool has_shared_param() const { return kind == LikelihoodKind::Gaussian && sigma == SigmaMode::Learned; }

  // Its own parameter, the learned shared log sigma (none in the other modes): its place in
  // a model's flat layout, its group ("log_sigma") and its initial value (sigma = 1).
  void take_param(ParamLayout& layout) {
    if (has_shared_param()) shared_offset = layout.take(1);
  }
  void add_group(std::vector<ParamRange>& groups) const {
    if (has_shared_param()) groups.push_back({"log_sigma", shared_offset, 1});
  }
  void initialize(T* params) const {
    if (has_shared_param()) params[shared_offset] = T(0);
  }
};

// Buffers of one batch; all [B,D] except where noted.
template <class T>
struct LikelihoodWork {
  // Gaussian mean (Bernoulli: exp(-|logit|)), log sigma per pixel, -log p per pixel
  Activation2<T> mean, logsig, elem;
  Buffer<T> ones_d;        // [D], for row sums by gemv
  T shared_log_sigma = 0;  // the shared s of this batch
  void reserve(std::size_t B, std::size_t D) {
    mean.reserve(B, D);
    logsig.reserve(B, D);
    elem.reserve(B, D);
    ones_d.assign(D, T(1));
  }
};

// Bernoulli on logits a, row sums of -log p = softplus(a) - x a, with
// softplus(a) = max(a, 0) + log(1 + e), e = exp(-|a|). One fused pass per row: e is kept
// (in the caller's buffer) for the backward pass, whose sigmoid needs only a division.
// sum_i log(1 + e_i) = log prod_i (1 + e_i), and every factor is in [1, 2], so a SIMD lane
// multiplies 64 of them without overflow and takes one log per 64 pixels instead of one
// per pixel (the float product's relative error, ~64 ulp, is below the sum's own rounding).
// Explicit xsimd: xtensor 0.24 cannot fuse a row reduction with a second output.
// a [B,D]; x: row b at x + b * x_stride (0: one image scored against every row, as the
// importance samples of one example); e [B,D] may be null when no backward pass follows.
template <class T>
void bernoulli_nll_rows(T* nll, T* e, const T* a, const T* x, std::size_t x_stride, std::size_t B,
                        std::size_t D) {
  using V = xsimd::batch<T>;
  constexpr std::size_t W = V::size, kFlush = 64;
  for (std::size_t b = 0; b < B; ++b) {
    const T* ar = a + b * D;
    const T* xr = x + b * x_stride;
    T* er = e ? e + b * D : nullptr;
    V lin(T(0)), logs(T(0)), prod(T(1));
    std::size_t i = 0, since_log = 0;
    for (; i + W <= D; i += W) {
      const V av = V::load_unaligned(ar + i), xv = V::load_unaligned(xr + i);
      const V ev = xsimd::exp(-xsimd::abs(av));
      if (er) ev.store_unaligned(er + i);
      lin += xsimd::max(av, V(T(0))) - xv * av;
      prod *= V(T(1)) + ev;
      if (++since_log == kFlush) {
        logs += xsimd::log(prod);
        prod = V(T(1));
        since_log = 0;
      }
    }
    T s = xsimd::hadd(lin + logs + xsimd::log(prod));
    for (; i < D; ++i) {
      const T ei = std::exp(-std::abs(ar[i]));
      if (er) er[i] = ei;
      s += std::max(ar[i], T(0)) - xr[i] * ar[i] + std::log(T(1) + ei);
    }
    nll[b] = s;
  }
}

// nll[b] = -log p(x_b | z_b). out: logits (Bernoulli) or pre-mean (Gaussian);
// raw_logsig: per-pixel decoder output (ignored otherwise). params: flat buffer.
// Leaves in w what likelihood_backward reads for the same batch.
template <class T>
void likelihood_forward(VecView<T>& nll, LikelihoodWork<T>& w, const Likelihood<T>& lik, const MatView<T>& out,
                        const MatView<T>& raw_logsig, const MatView<T>& x, const T* params) {
  const std::size_t B = out.shape()[0], D = out.shape()[1];
  if (lik.kind == LikelihoodKind::Bernoulli) {
    bernoulli_nll_rows(nll.data(), w.mean.ptr(), out.data(), x.data(), D, B, D);
    return;
  }
  auto elem = w.elem.view(B);
  auto ones = vec(w.ones_d.data(), D);
  auto mean = w.mean.view(B);
  if (lik.sigmoid_mean) xt::noalias(mean) = sigmoid_expr(out);
  else xt::noalias(mean) = out;
  const T half_log2pi = T(0.5 * kLog2Pi);
  if (lik.sigma == SigmaMode::PerPixel && !lik.eval_sigma_set) {
    auto ls = w.logsig.view(B);
    const T lb = lik.min_log_sigma;
    xt::noalias(ls) = lb + softplus_expr(raw_logsig - lb);
    xt::noalias(elem) = T(0.5) * xt::square(x - mean) * xt::exp(T(-2) * ls) + ls + half_log2pi;
  } else {
    T s;
    if (lik.eval_sigma_set) s = lik.eval_log_sigma;
    else if (lik.sigma == SigmaMode::Fixed) s = lik.fixed_log_sigma;
    else if (lik.sigma == SigmaMode::Learned) s = softclip(params[lik.shared_offset], lik.min_log_sigma);
    else {
      // sigma*^2 = MSE over the minibatch (Rybkin et al. 2020); no gradient flows
      // through it: it minimises the loss, so the envelope theorem makes that exact.
      double sse = 0;
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t i = 0; i < D; ++i) {
          double r = double(x(b, i)) - double(mean(b, i));
          sse += r * r;
        }
      s = softclip(T(0.5 * std::log(sse / double(B * D))), lik.min_log_sigma);
    }
    w.shared_log_sigma = s;
    const T inv_var = std::exp(T(-2) * s);
    xt::noalias(elem) = T(0.5) * inv_var * xt::square(x - mean) + (s + half_log2pi);
  }
  blas_gemv(elem, ones, nll, false, T(1), T(0));
}

// d(scale * sum_b c_b nll[b]) w.r.t. out, raw_logsig and the shared log sigma parameter,
// c_b = row_scale[b] (the IWAE objective's row weights), or 1 when row_scale is null.
template <class T>
void likelihood_backward(MatView<T>& dout, MatView<T>& draw_logsig, LikelihoodWork<T>& w,
                         const Likelihood<T>& lik, const MatView<T>& out, const MatView<T>& raw_logsig,
                         const MatView<T>& x, const T* params, T* grads, T scale,
                         const T* row_scale = nullptr) {
  const std::size_t B = out.shape()[0], D = out.shape()[1];
  if (lik.kind == LikelihoodKind::Bernoulli) {
    // sigmoid(a) from the forward pass's e = exp(-|a|): no transcendental here.
    const std::size_t n = row_scale ? D : B * D;
    for (std::size_t b = 0; b < (row_scale ? B : 1); ++b) {
      const T s = row_scale ? scale * row_scale[b] : scale;
      const T* __restrict a = out.data() + b * D;
      const T* __restrict e = w.mean.ptr() + b * D;
      const T* __restrict xs = x.data() + b * D;
      T* __restrict d = dout.data() + b * D;
#pragma omp simd
      for (std::size_t i = 0; i < n; ++i) d[i] = s * ((a[i] >= T(0) ? T(1) : e[i]) / (T(1) + e[i]) - xs[i]);
    }
    return;
  }
  auto mean = w.mean.view(B);
  auto elem = w.elem.view(B);  // reused as a scratch buffer below
  if (lik.sigma == SigmaMode::PerPixel) {
    auto ls = w.logsig.view(B);
    // elem <- (x - m)^2 / sigma^2
    xt::noalias(elem) = xt::square(x - mean) * xt::exp(T(-2) * ls);
    xt::noalias(draw_logsig) = scale * (T(1) - elem) * sigmoid_expr(raw_logsig - lik.min_log_sigma);
    xt::noalias(dout) = scale * (mean - x) * xt::exp(T(-2) * ls);
  } else {
    const T s = w.shared_log_sigma;
    const T inv_var = std::exp(T(-2) * s);
    xt::noalias(dout) = (scale * inv_var) * (mean - x);
    if (lik.sigma == SigmaMode::Learned) {
      // d/ds sum_b c_b sum_i (r^2 e^{-2s}/2 + s) = sum_b c_b (D - sum_i r^2 e^{-2s}); chain
      // through the soft clip.
      double total = 0;  // without row weights: n - sum r^2 e^{-2s} over the batch
      if (!row_scale) {
        double sum_r2 = 0;
        for (std::size_t b = 0; b < B; ++b)
          for (std::size_t i = 0; i < D; ++i) {
            double r = double(x(b, i)) - double(mean(b, i));
            sum_r2 += r * r;
          }
        total = double(B * D) - sum_r2 * double(inv_var);
      } else {
        for (std::size_t b = 0; b < B; ++b) {
          double sum_r2 = 0;
          for (std::size_t i = 0; i < D; ++i) {
            double r = double(x(b, i)) - double(mean(b, i));
            sum_r2 += r * r;
          }
          total += double(row_scale[b]) * (double(D) - sum_r2 * double(inv_var));
        }
      }
      const T raw = params[lik.shared_offset];
      grads[lik.shared_offset] += T(double(scale) * total * double(sigmoid(raw - lik.min_log_sigma)));
    }
  }
  if (row_scale)
    for (std::size_t b = 0; b < B; ++b) {
      for (std::size_t i = 0; i < D; ++i) dout(b, i) *= row_scale[b];
      if (lik.sigma == SigmaMode::PerPixel)
        for (std::size_t i = 0; i < D; ++i) draw_logsig(b, i) *= row_scale[b];
    }
  if (lik.sigmoid_mean) xt::noalias(dout) = dout * mean * (T(1) - mean);
}

}  // namespace vae
