// Fully connected kernels on BLAS. Shapes: in [B,I], W [O,I], b [O], out [B,O].
#pragma once

#include <algorithm>
#include "tensor/blas.hpp"

#include "tensor/view.hpp"

namespace vae {

// out[B,O] = in[B,I] . W[O,I]^T + b[O]
// The bias is copied into out and gemm adds the product (beta = 1): one pass over out,
// where beta = 0 (OpenBLAS zeroes C) and then a broadcast add would take two.
template <class T>
void linear_forward(MatView<T>& out, const MatView<T>& in, const MatView<T>& W, const VecView<T>& b) {
  const std::size_t B = out.shape()[0], O = out.shape()[1];
  const T* bias = b.data();
  for (std::size_t r = 0; r < B; ++r) {
    T* row = out.data() + r * O;
#pragma omp simd  // a loop, not std::copy: a conv layer's rows are too short for a memmove call to pay
    for (std::size_t j = 0; j < O; ++j) row[j] = bias[j];
  }
  blas_gemm(in, W, out, false, true, T(1), T(1));
}

// dW += dout^T . in ; db += sum over the batch of dout ; din = dout . W + din_beta * din
// (din may be null: the first layer needs no input gradient; din_beta = 1 adds to it,
// for an input read by two layers). ones is a [B] vector of ones.
template <class T>
void linear_backward(MatView<T>* din, MatView<T>& dW, VecView<T>& db, const MatView<T>& dout,
                     const MatView<T>& in, const MatView<T>& W, const VecView<T>& ones, T din_beta = T(0)) {
  blas_gemm(dout, in, dW, true, false, T(1), T(1));
  blas_gemv(dout, ones, db, true, T(1), T(1));
  if (din) blas_gemm(dout, W, *din, false, false, T(1), din_beta);
}

}  // namespace vae
