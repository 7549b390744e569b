// Elementwise activations. Forward keeps the pre-activation (in) and output (out);
// backward uses whichever makes the derivative cheapest.
#pragma once

#include <stdexcept>
#include <string>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include <xtensor/xoperation.hpp>

#include "tensor/view.hpp"

namespace vae {

enum class Activation { Identity, ReLU, Tanh, Softplus, Sigmoid, ELU };

inline Activation parse_activation(const std::string& name) {
  if (name == "identity") return Activation::Identity;
  if (name == "relu") return Activation::ReLU;
  if (name == "tanh") return Activation::Tanh;
  if (name == "softplus") return Activation::Softplus;
  if (name == "sigmoid") return Activation::Sigmoid;
  if (name == "elu") return Activation::ELU;
  throw std::invalid_argument("unknown activation '" + name + "'");
}

// max(x, 0) as (x + |x|) / 2, exact in floating point. Inside a larger expression,
// xt::maximum with a scalar makes xtensor 0.24 fall back to scalar code (4x slower).
template <class E>
auto relu_expr(const E& x) {
  using T = typename std::decay_t<E>::value_type;
  return T(0.5) * (x + xt::abs(x));
}

// log(1 + exp(x)) without overflow. log(1 + y) rather than log1p(y): xsimd vectorizes
// log but not log1p, and with y = exp(-|x|) <= 1 the absolute error stays at one ulp of 1.
template <class E>
auto softplus_expr(const E& x) {
  using T = typename std::decay_t<E>::value_type;
  return xt::log(T(1) + xt::exp(-xt::abs(x))) + relu_expr(x);
}
template <class E>
auto sigmoid_expr(const E& x) {
  using T = typename std::decay_t<E>::value_type;
  return T(1) / (T(1) + xt::exp(-x));
}

// out = f(in), elementwise; in and out have the same shape. [B,N]
template <class T>
void activation_forward(MatView<T>& out, const MatView<T>& in, Activation a) {
  switch (a) {
    case Activation::Identity: xt::noalias(out) = in; break;
    case Activation::ReLU: xt::noalias(out) = xt::maximum(in, T(0)); break;
    case Activation::Tanh: xt::noalias(out) = xt::tanh(in); break;
    case Activation::Softplus: xt::noalias(out) = softplus_expr(in); break;
    case Activation::Sigmoid: xt::noalias(out) = sigmoid_expr(in); break;
    case Activation::ELU: xt::noalias(out) = xt::where(in > T(0), in, xt::expm1(in)); break;
  }
}

// din = dout * f'(in); din may alias dout. [B,N]
template <class T>
void activation_backward(MatView<T>& din, const MatView<T>& dout, const MatView<T>& in, const MatView<T>& out,
                         Activation a) {
  switch (a) {
    case Activation::Identity: xt::noalias(din) = dout; break;
    case Activation::ReLU: xt::noalias(din) = xt::where(in > T(0), dout, T(0)); break;
    case Activation::Tanh: xt::noalias(din) = dout * (T(1) - out * out); break;
    case Activation::Softplus: xt::noalias(din) = dout * sigmoid_expr(in); break;
    case Activation::Sigmoid: xt::noalias(din) = dout * out * (T(1) - out); break;
    case Activation::ELU: xt::noalias(din) = dout * xt::where(in > T(0), T(1), out + T(1)); break;
  }
}

}  // namespace vae
