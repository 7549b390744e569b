// Optimizers as small policy classes over the flat parameter and gradient buffers.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/view.hpp"

namespace vae {

// The learning rate of an epoch (0-based) under a schedule:
//   constant:    lr
//   exponential: lr * decay^epoch
//   iwae:        stage i = 0, 1, ... lasts 3^i epochs at lr * 10^(-i/7) (Burda et al. 2016,
//                section 5: epochs 0 | 1-3 | 4-12 | ...; stages 0..7 are 3280 epochs)
//   iwae-rounded: the same stages at lr * round(10^(1-i/7), 1) / 10, the factor rounded to
//                one decimal as the paper's code does (yburda/iwae, experiments.py:
//                1e-4 * round(10^(1-(i-1)/7), 1)): 1, 0.72, 0.52, 0.37, 0.27, 0.19, 0.14, 0.1
inline double scheduled_lr(const std::string& schedule, double lr, double decay, int64_t epoch) {
  if (schedule == "exponential") return lr * std::pow(decay, double(epoch));
  if (schedule != "iwae" && schedule != "iwae-rounded") return lr;
  int stage = 0;
  for (int64_t end = 1, len = 1; epoch >= end; ++stage) end += (len *= 3);  // end = (3^(i+1) - 1) / 2
  const double factor = std::pow(10.0, -double(stage) / 7.0);
  return schedule == "iwae" ? lr * factor : lr * std::round(100.0 * factor) / 100.0;
}

// Weight decay: the term (lambda / 2) |p|^2 added to the per-example loss, so its gradient
// lambda p is added to g before the optimizer reads it ("coupled" L2, as torch.optim's
// weight_decay). A N(0, I) prior on the parameters (Kingma & Welling 2013, section 5: the
// MAP objective sum_i L(x_i) + log p(theta) over N training examples) is lambda = 1/N.
template <class T>
double weight_decay_penalty(const T* p, std::size_t n, double lambda) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += double(p[i]) * double(p[i]);
  return 0.5 * lambda * s;
}
template <class T>
void add_weight_decay_grad(T* __restrict g, const T* __restrict p, std::size_t n, double lambda) {
  const T l = T(lambda);
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) g[i] += l * p[i];
}

// Both optimizers update elementwise, so a step may be applied range by range: begin_step
// once, then apply() on each range of the flat buffers (a fused training step applies each
// layer as soon as backward() has its gradient, while it is in cache, models/algorithms.hpp).
// The numbers are those of step() over the whole buffer, bit for bit. apply<true> also
// zeroes the gradient it read, so the next step's backward starts from zero without a pass
// (apply<false> only reads g).

// Adam (Kingma & Ba 2015), as torch.optim.Adam:
//   m = b1 m + (1-b1) g ; v = b2 v + (1-b2) g^2
//   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// m starts at 0 and v at v0: 0 as torch.optim, or 1 as the IWAE paper's code (yburda/iwae,
// optimizers.py: shared_ones_like) with the same bias corrections. With v0 = 1, sqrt(v) stays
// near 1 until the b2^t of the start has decayed (v = b2^t + ...): the first thousands of
// steps are scaled down by it, a warm-up built into the optimizer.
// delayed (--adam-update iwae-code): the step of that code as Theano evaluates it, every
// update read from the values before the call, so the parameter moves with the moments
// before this step's gradient, and eps is added to the uncorrected sqrt(v):
//   p -= lr sqrt(1 - b2^t) / (1 - b1^t) * m_{t-1} / (sqrt(v_{t-1}) + eps)
// (its first step does not move p: m_0 = 0).
template <class T>
struct Adam {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, v0 = 0;
  bool delayed = false;
  int64_t t = 0;
  Buffer<T> m, v;
  T step_size = 0, inv_c2 = 0;  // of the current step (begin_step)
  void reset(std::size_t n) {
    m.assign(n, T(0));
    v.assign(n, T(v0));
    t = 0;
  }
  void begin_step(double lr) {
    ++t;
    step_size = T(lr / (1.0 - std::pow(beta1, double(t))));
    inv_c2 = T(1.0 / std::sqrt(1.0 - std::pow(beta2, double(t))));
  }
  // One fused pass over the four buffers: the step is memory-bound, and three separate
  // array expressions would stream them through memory twice as often.
  template <bool Clear>
  void apply(T* __restrict p, T* __restrict g, std::size_t offset, std::size_t n) {
    if (delayed) apply_form<Clear, true>(p, g, offset, n);
    else apply_form<Clear, false>(p, g, offset, n);
  }
  template <bool Clear, bool Delayed>
  void apply_form(T* __restrict p, T* __restrict g, std::size_t offset, std::size_t n) {
    const T b1 = T(beta1), b2 = T(beta2), c1 = T(1) - b1, c2 = T(1) - b2;
    const T step = step_size, ic2 = inv_c2, e = T(eps);
    T* __restrict M = m.data() + offset;
    T* __restrict V = v.data() + offset;
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) {
      const T gi = g[i];
      const T mi = b1 * M[i] + c1 * gi;
      const T vi = b2 * V[i] + c2 * gi * gi;
      if constexpr (Delayed)
        p[i] -= step * M[i] / ((std::sqrt(V[i]) + e) * ic2);  // step / ic2: the code's alpha
      else p[i] -= step * mi / (std::sqrt(vi) * ic2 + e);
      M[i] = mi;
      V[i] = vi;
      if constexpr (Clear) g[i] = T(0);
    }
  }
  void step(Buffer<T>& params, const Buffer<T>& grads, double lr) {
    begin_step(lr);
    apply<false>(params.data(), const_cast<T*>(grads.data()), 0, params.size());  // g only read
  }
};

// Adagrad (Duchi et al. 2011), as torch.optim.Adagrad: G += g^2 ; p -= lr g / (sqrt(G) + eps)
template <class T>
struct Adagrad {
  double eps = 1e-10;
  Buffer<T> sum_sq;
  T rate = 0;  // of the current step
  void reset(std::size_t n) { sum_sq.assign(n, T(0)); }
  void begin_step(double lr) { rate = T(lr); }
  template <bool Clear>
  void apply(T* __restrict p, T* __restrict g, std::size_t offset, std::size_t n) {
    const T r = rate, e = T(eps);
    T* __restrict G = sum_sq.data() + offset;
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) {
      const T gi = g[i];
      G[i] += gi * gi;
      p[i] -= r * gi / (std::sqrt(G[i]) + e);
      if constexpr (Clear) g[i] = T(0);
    }
  }
  void step(Buffer<T>& params, const Buffer<T>& grads, double lr) {
    begin_step(lr);
    apply<false>(params.data(), const_cast<T*>(grads.data()), 0, params.size());  // g only read
  }
};

// The optimizer a run chose, behind one interface.
template <class T>
struct Optimizer {
  std::string kind;  // adam | adagrad
  bool is_adam = true;
  double weight_decay = 0;  // lambda: the gradient read is g + lambda p (g itself is changed)
  Adam<T> adam;
  Adagrad<T> adagrad;
  // adam_v0 and adam_delayed: Adam's start and step form above (--adam-v0, --adam-update).
  void configure(const std::string& k, double beta1, double beta2, double adam_eps, double adagrad_eps,
                 std::size_t n, double adam_v0 = 0, bool adam_delayed = false) {
    kind = k;
    is_adam = kind == "adam";
    adam.beta1 = beta1;
    adam.beta2 = beta2;
    adam.eps = adam_eps;
    adam.v0 = adam_v0;
    adam.delayed = adam_delayed;
    adagrad.eps = adagrad_eps;
    if (kind == "adam") adam.reset(n);
    else adagrad.reset(n);
  }
  void step(Buffer<T>& p, const Buffer<T>& g, double lr) {
    if (weight_decay != 0) add_weight_decay_grad(const_cast<T*>(g.data()), p.data(), p.size(), weight_decay);
    if (is_adam) adam.step(p, g, lr);
    else adagrad.step(p, g, lr);
  }
  void begin_step(double lr) {
    if (is_adam) adam.begin_step(lr);
    else adagrad.begin_step(lr);
  }
  // The current step on values [offset, offset + n) of the parameters p and gradients g
  // (the whole buffers' bases); zeroes those gradients.
  void apply_and_clear(T* p, T* g, std::size_t offset, std::size_t n) {
    if (weight_decay != 0) add_weight_decay_grad(g + offset, p + offset, n, weight_decay);
    if (is_adam) adam.template apply<true>(p + offset, g + offset, offset, n);
    else adagrad.template apply<true>(p + offset, g + offset, offset, n);
  }
  // The same with the gradient of [offset, offset + n) given apart, in g[0..n) (a kernel's
  // strip, tensor/weight_grad.hpp): the same numbers as apply_and_clear on a buffer holding
  // it. Weight decay is added into g.
  void apply_given(T* p, T* g, std::size_t offset, std::size_t n) {
    if (weight_decay != 0) add_weight_decay_grad(g, p + offset, n, weight_decay);
    if (is_adam) adam.template apply<false>(p + offset, g, offset, n);
    else adagrad.template apply<false>(p + offset, g, offset, n);
  }
};

}  // namespace vae
