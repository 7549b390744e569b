// Batch normalization (Ioffe & Szegedy 2015) of [B,N] activations over the batch, with
// the conventions of torch.nn.BatchNorm1d so that its numbers are the reference:
//   training:   y = gamma * (x - mean_B) / sqrt(var_B + eps) + beta, var_B biased (/ B);
//               afterwards running = (1 - momentum) * running + momentum * batch, where
//               the running variance takes the unbiased var_B * B / (B - 1);
//   evaluation: the same with the running mean and variance (starting at 0 and 1).
// eps = 1e-5 and momentum = 0.1, PyTorch's defaults: the running averages forget a batch
// after ~10 steps, so they follow the parameters as training moves them.
// gamma, beta live in the parameter buffer; the running statistics in a separate state
// buffer (no gradient; saved in checkpoints by Model::state()).
#pragma once

#include <cmath>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>
#include "tensor/blas.hpp"

#include "nn/params.hpp"
#include "tensor/view.hpp"

namespace vae {

constexpr double kBatchNormEps = 1e-5;
constexpr double kBatchNormMomentum = 0.1;

struct BatchNorm {
  std::size_t n = 0;
  std::size_t gamma = 0, beta = 0;  // offsets in the parameter buffer
  std::size_t mean = 0, var = 0;    // offsets in the state buffer
  static BatchNorm make(ParamLayout& params, ParamLayout& state, std::size_t n) {
    BatchNorm bn;
    bn.n = n;
    bn.gamma = params.take(n);
    bn.beta = params.take(n);
    bn.mean = state.take(n);
    bn.var = state.take(n);
    return bn;
  }
  template <class T>
  void initialize(T* params, T* state) const {
    for (std::size_t i = 0; i < n; ++i) {
      params[gamma + i] = T(1);
      params[beta + i] = T(0);
      state[mean + i] = T(0);
      state[var + i] = T(1);
    }
  }
};

// Training mode. out[B,N] = gamma * xhat + beta with xhat = (in - mean) * inv_std from the
// batch's statistics; keeps xhat, mean, var (biased) and inv_std [N] for backward and
// for the running update. ones is a [B] vector of ones (column sums by gemv).
template <class T>
void batchnorm_forward_train(MatView<T>& out, MatView<T>& xhat, VecView<T>& mean, VecView<T>& var,
                             VecView<T>& inv_std, const MatView<T>& in, const VecView<T>& gamma,
                             const VecView<T>& beta, const VecView<T>& ones) {
  const T inv_b = T(1) / T(in.shape()[0]);
  blas_gemv(in, ones, mean, true, inv_b, T(0));
  xt::noalias(xhat) = in - mean;
  xt::noalias(out) = xhat * xhat;  // out as scratch: two passes, no cancellation
  blas_gemv(out, ones, var, true, inv_b, T(0));
  xt::noalias(inv_std) = T(1) / xt::sqrt(var + T(kBatchNormEps));
  xt::noalias(xhat) = xhat * inv_std;
  xt::noalias(out) = gamma * xhat + beta;
}

// Evaluation mode: the running statistics instead of the batch's. Keeps xhat and
// inv_std so that a backward pass in this mode is possible too.
template <class T>
void batchnorm_forward_eval(MatView<T>& out, MatView<T>& xhat, VecView<T>& inv_std, const MatView<T>& in,
                            const VecView<T>& gamma, const VecView<T>& beta, const VecView<T>& running_mean,
                            const VecView<T>& running_var) {
  xt::noalias(inv_std) = T(1) / xt::sqrt(running_var + T(kBatchNormEps));
  xt::noalias(xhat) = (in - running_mean) * inv_std;
  xt::noalias(out) = gamma * xhat + beta;
}

// Training mode: dgamma += sum_b dout * xhat ; dbeta += sum_b dout ;
//   din = gamma * inv_std * (dout - mean_b(dout) - xhat * mean_b(dout * xhat))
// (the batch statistics depend on every row). din may alias dout; scratch is [B,N],
// s1 and s2 are [N].
template <class T>
void batchnorm_backward_train(MatView<T>& din, VecView<T>& dgamma, VecView<T>& dbeta, const MatView<T>& dout,
                              const MatView<T>& xhat, const VecView<T>& inv_std, const VecView<T>& gamma,
                              const VecView<T>& ones, MatView<T>& scratch, VecView<T>& s1, VecView<T>& s2) {
  const T inv_b = T(1) / T(dout.shape()[0]);
  xt::noalias(scratch) = dout * xhat;
  blas_gemv(scratch, ones, s2, true, T(1), T(0));
  blas_gemv(dout, ones, s1, true, T(1), T(0));
  xt::noalias(dgamma) += s2;
  xt::noalias(dbeta) += s1;
  xt::noalias(s1) = s1 * inv_b;
  xt::noalias(s2) = s2 * inv_b;
  xt::noalias(din) = (gamma * inv_std) * (dout - s1 - xhat * s2);
}

// Evaluation mode: the statistics are constants, so din = dout * gamma * inv_std.
template <class T>
void batchnorm_backward_eval(MatView<T>& din, VecView<T>& dgamma, VecView<T>& dbeta, const MatView<T>& dout,
                             const MatView<T>& xhat, const VecView<T>& inv_std, const VecView<T>& gamma,
                             const VecView<T>& ones, MatView<T>& scratch) {
  xt::noalias(scratch) = dout * xhat;
  blas_gemv(scratch, ones, dgamma, true, T(1), T(1));
  blas_gemv(dout, ones, dbeta, true, T(1), T(1));
  xt::noalias(din) = dout * (gamma * inv_std);
}

// After a training-mode forward of B rows: fold the batch statistics into the running ones
// (momentum: PyTorch's 0.1 unless a model says otherwise; NVAE uses 0.05).
template <class T>
void batchnorm_update_running(VecView<T>& running_mean, VecView<T>& running_var, const VecView<T>& mean,
                              const VecView<T>& var, std::size_t B, double momentum = kBatchNormMomentum) {
  const T m = T(momentum);
  const T unbias = B > 1 ? T(double(B) / double(B - 1)) : T(1);
  xt::noalias(running_mean) = (T(1) - m) * running_mean + m * mean;
  xt::noalias(running_var) = (T(1) - m) * running_var + (m * unbias) * var;
}

}  // namespace vae
