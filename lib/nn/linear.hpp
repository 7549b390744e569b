// A Linear layer (nn/params.hpp: offsets into the flat buffers) on the kernels of
// tensor/linear.hpp: the one place a layer's forward and backward are spelled out, with the
// gradient sink told when the layer's range is final.
#pragma once

#include "nn/params.hpp"
#include "tensor/linear.hpp"
#include "tensor/weight_grad.hpp"

namespace vae {

// in [B, l.in] -> out [B, l.out] = in W^T + b.
template <class T>
void linear_layer_forward(MatView<T>& out, const MatView<T>& in, const Linear& l, T* P) {
  linear_forward(out, in, l.W(P), l.bias(P));
}

// dout [B, l.out] -> l's gradients added into G; din = dout W + din_beta * din when din is
// given (din_beta = 1: an input read by two layers); sink, when given, told that l's range
// is final. ones: [B] ones (the bias gradient as a gemv).
// Where the weight-gradient kernel runs (kWeightGradKernel and weight_grad_fits), dW is made strip by strip
// and, in a fused step, each strip goes to the sink from L1 (G's W range stays zero): din
// is computed first, as the sink updates W.
template <class T>
void linear_layer_backward(MatView<T>* din, const MatView<T>& dout, const MatView<T>& in, const Linear& l, T* P,
                           T* G, const VecView<T>& ones, T din_beta = T(0), GradSink<T>* sink = nullptr) {
  auto dW = l.W(G);
  auto db = l.bias(G);
  if constexpr (kWeightGradKernel<T>) {
    if (weight_grad_fits(in)) {
      blas_gemv(dout, ones, db, true, T(1), T(1));
      if (din) blas_gemm(dout, l.W(P), *din, false, false, T(1), din_beta);
      if (!sink) return weight_grad_add(dout, in, dW);
      sink->ready(l.b, l.out);
      weight_grad_strips(dout, in,
                         [&](std::size_t start, std::size_t n, T* g) { sink->ready_given(l.w + start, n, g); });
      return;
    }
  }
  linear_backward(din, dW, db, dout, in, l.W(P), ones, din_beta);
  if (sink) sink->ready(l.w, l.size());
}

}  // namespace vae
