// A Linear layer (nn/params.hpp: offsets into the flat buffers) on the kernels of
// tensor/linear.hpp: the one place a layer's forward and backward are spelled out, with the
// gradient sink told when the layer's range is final.
#pragma once

#include "nn/params.hpp"
#include "tensor/linear.hpp"

namespace vae {

// in [B, l.in] -> out [B, l.out] = in W^T + b.
template <class T>
void linear_layer_forward(MatView<T>& out, const MatView<T>& in, const Linear& l, T* P) {
  linear_forward(out, in, l.W(P), l.bias(P));
}

// dout [B, l.out] -> l's gradients added into G; din = dout W + din_beta * din when din is
// given (din_beta = 1: an input read by two layers); sink, when given, told that l's range
// is final. ones: [B] ones (the bias gradient as a gemv).
template <class T>
void linear_layer_backward(MatView<T>* din, const MatView<T>& dout, const MatView<T>& in, const Linear& l, T* P,
                           T* G, const VecView<T>& ones, T din_beta = T(0), GradSink<T>* sink = nullptr) {
  auto dW = l.W(G);
  auto db = l.bias(G);
  linear_backward(din, dW, db, dout, in, l.W(P), ones, din_beta);
  if (sink) sink->ready(l.w, l.size());
}

}  // namespace vae
