// All parameters of a model live in one flat buffer (and their gradients in a
// second of the same layout); layers hold offsets into it.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "tensor/view.hpp"

namespace vae {

// A named range of the flat parameter buffer (gradient-check groups, golden tests).
struct ParamRange {
  std::string name;
  std::size_t offset, size;
};

// Groups collected part by part, in layout order (gradient checks and golden tests list them so).
inline std::vector<ParamRange> sorted_by_offset(std::vector<ParamRange> groups) {
  std::sort(groups.begin(), groups.end(),
            [](const ParamRange& a, const ParamRange& b) { return a.offset < b.offset; });
  return groups;
}

// Hands out consecutive ranges of the flat buffer.
struct ParamLayout {
  std::size_t size = 0;
  std::size_t take(std::size_t n) {
    std::size_t off = size;
    size += n;
    return off;
  }
};

// Told by backward() that the gradient of params[offset, offset + n) is final and that
// the rest of backward reads neither it nor those parameters (the optimizer may apply
// them now, while they are in cache: models/algorithms.hpp, train_step_update).
// ready_given: the same, with the gradient of [offset, offset + n) in g instead of in the
// gradient buffer, which holds zeros there and keeps them (a kernel's strip, made in
// registers: tensor/weight_grad.hpp); the sink may change g.
template <class T>
struct GradSink {
  virtual void ready(std::size_t offset, std::size_t n) = 0;
  virtual void ready_given(std::size_t offset, std::size_t n, T* g) = 0;

 protected:
  ~GradSink() = default;
};

// y = x W^T + b with W [out, in] at offset w and b [out] at offset b = w + out * in: one
// range of size() values from w.
struct Linear {
  std::size_t in = 0, out = 0, w = 0, b = 0;
  static Linear make(ParamLayout& layout, std::size_t in, std::size_t out) {
    Linear l{in, out, 0, 0};
    l.w = layout.take(out * in);
    l.b = layout.take(out);
    return l;
  }
  std::size_t size() const { return out * in + out; }
  template <class T>
  MatView<T> W(T* base) const {
    return mat(base + w, out, in);
  }
  template <class T>
  VecView<T> bias(T* base) const {
    return vec(base + b, out);
  }
};

// Initialisation, documented because results depend on it. For a weight with fan-in and
// fan-out (a Linear's in and out; a convolution's channels times k^2, as PyTorch counts):
//   uniform: W, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as PyTorch's nn.Linear and Conv default
//   normal:  W ~ N(0, std^2), b = 0, as Kingma & Welling (2013) with std 0.01
//   glorot:  W ~ U(-a, a) with a = sqrt(6 / (fan_in + fan_out)), b = 0 (Glorot & Bengio 2010,
//            "Xavier uniform"), as Burda et al. (2016) train the IWAE
// The weights are drawn first, then the biases: the order is part of a run's determinism.
enum class Init { Uniform, Normal, Glorot };

// "uniform" | "normal" | "glorot" (the choices of the init setting).
inline Init parse_init(const std::string& name) {
  if (name == "normal") return Init::Normal;
  if (name == "glorot") return Init::Glorot;
  return Init::Uniform;
}

// The one place every layer's weights (n_w values at w) and biases (n_b at b; none for a
// layer followed by batch norm) are drawn.
template <class T>
void init_weights(T* w, std::size_t n_w, T* b, std::size_t n_b, std::size_t fan_in, std::size_t fan_out,
                  Init init, double std_dev, std::mt19937_64& rng) {
  if (init == Init::Normal) {
    std::normal_distribution<double> n(0.0, std_dev);
    for (std::size_t i = 0; i < n_w; ++i) w[i] = T(n(rng));
    for (std::size_t i = 0; i < n_b; ++i) b[i] = T(0);
    return;
  }
  const double bound = init == Init::Glorot ? std::sqrt(6.0 / double(fan_in + fan_out))
                                            : 1.0 / std::sqrt(double(fan_in));
  std::uniform_real_distribution<double> u(-bound, bound);
  for (std::size_t i = 0; i < n_w; ++i) w[i] = T(u(rng));
  for (std::size_t i = 0; i < n_b; ++i) b[i] = init == Init::Glorot ? T(0) : T(u(rng));
}

template <class T>
void init_linear(T* base, const Linear& l, Init init, double std_dev, std::mt19937_64& rng) {
  init_weights(base + l.w, l.out * l.in, base + l.b, l.out, l.in, l.out, init, std_dev, rng);
}

}  // namespace vae
