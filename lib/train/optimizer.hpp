// Optimizers as small policy classes over the flat parameter and gradient buffers.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "tensor/view.hpp"

namespace vae {

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
  void step(Buffer<T>& params, const Buffer<T>& grads, double lr) {
    ++t;
    const std::size_t n = params.size();
    auto p = vec(params.data(), n);
    auto g = vec(const_cast<T*>(grads.data()), n);
    auto M = vec(m.data(), n), V = vec(v.data(), n);
    const T b1 = T(beta1), b2 = T(beta2);
    xt::noalias(M) = b1 * M + (T(1) - b1) * g;
    xt::noalias(V) = b2 * V + (T(1) - b2) * g * g;
    const T step = T(lr / (1.0 - std::pow(beta1, double(t))));
    const T inv_c2 = T(1.0 / std::sqrt(1.0 - std::pow(beta2, double(t))));
    xt::noalias(p) = p - step * M / (xt::sqrt(V) * inv_c2 + T(eps));
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
    auto p = vec(params.data(), n);
    auto g = vec(const_cast<T*>(grads.data()), n);
    auto G = vec(sum_sq.data(), n);
    xt::noalias(G) += g * g;
    xt::noalias(p) = p - T(lr) * g / (xt::sqrt(G) + T(eps));
  }
};

}  // namespace vae
