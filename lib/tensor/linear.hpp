// Fully connected kernels on BLAS. Shapes: in [B,I], W [O,I], b [O], out [B,O].
#pragma once

#include <xtensor-blas/xblas.hpp>

#include "tensor/view.hpp"

namespace vae {

// out[B,O] = in[B,I] . W[O,I]^T + b[O]
template <class T>
void linear_forward(MatView<T>& out, const MatView<T>& in, const MatView<T>& W, const VecView<T>& b) {
  xt::blas::gemm(in, W, out, false, true, T(1), T(0));
  xt::noalias(out) += b;
}

// dW += dout^T . in ; db += sum over the batch of dout ; din = dout . W + din_beta * din
// (din may be null: the first layer needs no input gradient; din_beta = 1 adds to it,
// for an input read by two layers). ones is a [B] vector of ones.
template <class T>
void linear_backward(MatView<T>* din, MatView<T>& dW, VecView<T>& db, const MatView<T>& dout,
                     const MatView<T>& in, const MatView<T>& W, const VecView<T>& ones,
                     T din_beta = T(0)) {
  xt::blas::gemm(dout, in, dW, true, false, T(1), T(1));
  xt::blas::gemv(dout, ones, db, true, T(1), T(1));
  if (din) xt::blas::gemm(dout, W, *din, false, false, T(1), din_beta);
}

}  // namespace vae
