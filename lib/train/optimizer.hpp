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
inline double scheduled_lr(const std::string& schedule, double lr, double decay, int64_t epoch) {
  if (schedule == "exponential") return lr * std::pow(decay, double(epoch));
  if (schedule != "iwae") return lr;
  int stage = 0;
  for (int64_t end = 1, len = 1; epoch >= end; ++stage) end += (len *= 3);  // end = (3^(i+1) - 1) / 2
  return lr * std::pow(10.0, -double(stage) / 7.0);
}

// Adam (Kingma & Ba 2015), as torch.optim.Adam:
//   m = b1 m + (1-b1) g ; v = b2 v + (1-b2) g^2
//   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
template <class T>
struct Adam {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  int64_t t = 0;
  Buffer<T> m, v;
  void reset(std::size_t n) {
    m.assign(n, T(0));
    v.assign(n, T(0));
    t = 0;
  }
  // One fused pass over the four buffers: the step is memory-bound, and three separate
  // array expressions would stream them through memory twice as often.
  void step(Buffer<T>& params, const Buffer<T>& grads, double lr) {
    ++t;
    const std::size_t n = params.size();
    const T b1 = T(beta1), b2 = T(beta2), c1 = T(1) - b1, c2 = T(1) - b2;
    const T step = T(lr / (1.0 - std::pow(beta1, double(t))));
    const T inv_c2 = T(1.0 / std::sqrt(1.0 - std::pow(beta2, double(t))));
    const T e = T(eps);
    T* __restrict p = params.data();
    const T* __restrict g = grads.data();
    T* __restrict M = m.data();
    T* __restrict V = v.data();
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) {
      const T mi = b1 * M[i] + c1 * g[i];
      const T vi = b2 * V[i] + c2 * g[i] * g[i];
      M[i] = mi;
      V[i] = vi;
      p[i] -= step * mi / (std::sqrt(vi) * inv_c2 + e);
    }
  }
};

// Adagrad (Duchi et al. 2011), as torch.optim.Adagrad: G += g^2 ; p -= lr g / (sqrt(G) + eps)
template <class T>
struct Adagrad {
  double eps = 1e-10;
  Buffer<T> sum_sq;
  void reset(std::size_t n) { sum_sq.assign(n, T(0)); }
  void step(Buffer<T>& params, const Buffer<T>& grads, double lr) {
    const std::size_t n = params.size();
    const T rate = T(lr), e = T(eps);
    T* __restrict p = params.data();
    const T* __restrict g = grads.data();
    T* __restrict G = sum_sq.data();
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) {
      G[i] += g[i] * g[i];
      p[i] -= rate * g[i] / (std::sqrt(G[i]) + e);
    }
  }
};

// The optimizer a run chose, behind one interface.
template <class T>
struct Optimizer {
  std::string kind;  // adam | adagrad
  Adam<T> adam;
  Adagrad<T> adagrad;
  void configure(const std::string& k, double beta1, double beta2, double adam_eps, double adagrad_eps,
                 std::size_t n) {
    kind = k;
    adam.beta1 = beta1;
    adam.beta2 = beta2;
    adam.eps = adam_eps;
    adagrad.eps = adagrad_eps;
    if (kind == "adam") adam.reset(n);
    else adagrad.reset(n);
  }
  void step(Buffer<T>& p, const Buffer<T>& g, double lr) {
    if (kind == "adam") adam.step(p, g, lr);
    else adagrad.step(p, g, lr);
  }
};

}  // namespace vae
