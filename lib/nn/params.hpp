// All parameters of a model live in one flat buffer (and their gradients in a
// second of the same layout); layers hold offsets into it.
#pragma once

#include <cmath>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "tensor/view.hpp"

namespace vae {

// Hands out consecutive ranges of the flat buffer.
struct ParamLayout {
  std::size_t size = 0;
  std::size_t take(std::size_t n) {
    std::size_t off = size;
    size += n;
    return off;
  }
};

// y = x W^T + b with W [out, in] at offset w and b [out] at offset b.
struct Linear {
  std::size_t in = 0, out = 0, w = 0, b = 0;
  static Linear make(ParamLayout& layout, std::size_t in, std::size_t out) {
    Linear l{in, out, 0, 0};
    l.w = layout.take(out * in);
    l.b = layout.take(out);
    return l;
  }
  template <class T>
  MatView<T> W(T* base) const { return mat(base + w, out, in); }
  template <class T>
  VecView<T> bias(T* base) const { return vec(base + b, out); }
};

// Initialisation, documented because results depend on it:
//   uniform: W, b ~ U(-1/sqrt(in), 1/sqrt(in)), as PyTorch's nn.Linear default
//   normal:  W ~ N(0, std^2), b = 0, as Kingma & Welling (2013) with std 0.01
enum class Init { Uniform, Normal };

template <class T>
void init_linear(T* base, const Linear& l, Init init, double std_dev, std::mt19937_64& rng) {
  if (init == Init::Uniform) {
    double bound = 1.0 / std::sqrt(double(l.in));
    std::uniform_real_distribution<double> u(-bound, bound);
    for (std::size_t i = 0; i < l.out * l.in; ++i) base[l.w + i] = T(u(rng));
    for (std::size_t i = 0; i < l.out; ++i) base[l.b + i] = T(u(rng));
  } else {
    std::normal_distribution<double> n(0.0, std_dev);
    for (std::size_t i = 0; i < l.out * l.in; ++i) base[l.w + i] = T(n(rng));
    for (std::size_t i = 0; i < l.out; ++i) base[l.b + i] = T(0);
  }
}

}  // namespace vae
