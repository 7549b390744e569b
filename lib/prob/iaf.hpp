// Inverse autoregressive flow (Kingma et al. 2016, "Improved Variational Inference with
// Inverse Autoregressive Flow"), the numerically stable LSTM-like step of their eq. (11-14):
//   [m, s] = MADE_t(z, h);  sigma = sigmoid(s + forget_bias);
//   z <- sigma * z + (1 - sigma) * m;  log q(z|x) -= sum log sigma.
// The Jacobian dz_out/dz_in is triangular in the step's order with diagonal sigma, so
// log |det J| = sum log sigma. Step t uses the natural order for even t and the reversed
// one for odd t (the paper's "reverse the ordering between steps"), done by building each
// MADE's masks from its order rather than by permuting z.
#pragma once

#include <algorithm>
#include <cstddef>
#include <numeric>
#include <vector>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "nn/made.hpp"
#include "prob/gaussian.hpp"
#include "tensor/activation.hpp"

namespace vae {

// The gradient of the single-sample KL log q(z_T|x) - log p(z_T) in training (--iaf-kl):
//  Sample: its exact gradient, as in the paper;
//  Stl:    "sticking the landing" (Roeder et al. 2017) for the base Gaussian: the score term
//          d log q_0(z_0; mu, logvar) / d(mu, logvar) at fixed z_0 is dropped. It has mean zero
//          (so the expected gradient is unchanged) but is pure noise where q matches the prior:
//          there the Gaussian VAE's analytic KL has zero gradient, the sampled KL's is
//          O(1) per latent dimension. The loss value is the same.
// Evaluation always reports the single-sample log q - log p (models/algorithms.hpp).
enum class FlowKl { Sample, Stl };

// The flow's hyper-parameters (--iaf-steps, --iaf-hidden, --iaf-made-layers,
// --iaf-context, --iaf-forget-bias, --iaf-kl).
struct IafShape {
  std::size_t steps = 2;     // T; 0 is the diagonal Gaussian itself
  std::size_t hidden = 320;  // MADE width
  std::size_t layers = 2;    // MADE hidden layers
  std::size_t context = 64;  // size of the encoder's extra output h (0: no context)
  double forget_bias = 1.0;  // sigma = sigmoid(s + forget_bias): starts near "keep z"
  FlowKl kl = FlowKl::Sample;
};

// The order of step t: 0..L-1, reversed for odd t.
inline std::vector<std::size_t> iaf_order(std::size_t L, std::size_t t) {
  std::vector<std::size_t> order(L);
  std::iota(order.begin(), order.end(), std::size_t(0));
  if (t % 2 == 1) std::reverse(order.begin(), order.end());
  return order;
}

// Buffers of one step, all [B, L] except the MADE's.
template <class T>
struct IafStepWork {
  typename Made<T>::Work made;
  Activation2<T> m, s, sig, logsig, dm, ds;
  void reserve(const Made<T>& made_net, std::size_t B) {
    made_net.reserve(made, B);
    for (Activation2<T>* a : {&m, &s, &sig, &logsig, &dm, &ds}) a->reserve(B, made_net.nin);
  }
};

// z_out [B,L] from z_in [B,L] and context h [B,C]; keeps sigma and log sigma in w.
template <class T>
void iaf_step_forward(MatView<T>& z_out, IafStepWork<T>& w, const Made<T>& made, const MatView<T>& z_in,
                      const MatView<T>& h, T forget_bias, T* params, std::size_t B) {
  auto m = w.m.view(B), s = w.s.view(B), sig = w.sig.view(B), logsig = w.logsig.view(B);
  made.forward(m, s, w.made, z_in, h, params, B);
  xt::noalias(sig) = sigmoid_expr(s + forget_bias);
  // log sigmoid(u) = -softplus(-u): no log of a rounded-to-zero sigma
  xt::noalias(logsig) = -softplus_expr(-(s + forget_bias));
  xt::noalias(z_out) = sig * z_in + (T(1) - sig) * m;
}

// Backward of one step for the loss  L(z_out) - sum_{b,l} kw[l] * log sigma[b,l]
// (kw: the weight of log q in the loss, per latent coordinate). Given dz_out = dL/dz_out:
//   dm = dz_out (1 - sigma);  ds = (dz_out (z_in - m) sigma - kw) (1 - sigma);
//   dz_in = dz_out sigma + MADE's input gradient;  dh += MADE's context gradient.
// (kw may also be [B,L]: a weight per row and coordinate.)
template <class T, class KW>
void iaf_step_backward(MatView<T>& dz_in, MatView<T>* dh, IafStepWork<T>& w, const Made<T>& made,
                       const MatView<T>& dz_out, const KW& kw, const MatView<T>& z_in, const MatView<T>& h,
                       T* params, T* grads, std::size_t B) {
  auto m = w.m.view(B), sig = w.sig.view(B), dm = w.dm.view(B), ds = w.ds.view(B);
  xt::noalias(dm) = dz_out * (T(1) - sig);
  xt::noalias(ds) = (dz_out * (z_in - m) * sig - kw) * (T(1) - sig);
  xt::noalias(dz_in) = dz_out * sig;
  made.backward(&dz_in, dh, w.made, dm, ds, z_in, h, params, grads, B);
}

// The single-sample KL of the flow posterior, per latent coordinate (the log(2 pi) terms
// cancel): kl[b,l] = log N(eps) - logvar/2 - sum_t log sigma_t - log N(z_T) + const
//                  = -eps^2/2 - logvar/2 - sum_t log sigma_t + z_T^2/2.
// Its row sums are log q(z_T|x) - log p(z_T); a coordinate is not the KL of a marginal.
template <class T>
void flow_kl_begin(MatView<T>& kl, const MatView<T>& eps, const MatView<T>& logvar) {
  xt::noalias(kl) = T(-0.5) * (eps * eps + logvar);
}
template <class T>
void flow_kl_end(MatView<T>& kl, const MatView<T>& z) {
  xt::noalias(kl) += T(0.5) * z * z;
}

// Gradient into the base Gaussian: z0 = mu + exp(logvar/2) eps, and through
// kw[l] * (-logvar/2) of the sampled KL (eps is an input, fixed):
//   dmu = dz0 ;  dlogvar = dz0 eps exp(logvar/2) / 2 - kw / 2
template <class T, class KW>
void flow_base_backward(MatView<T>& dmu, MatView<T>& dlogvar, const MatView<T>& dz0, const MatView<T>& logvar,
                        const MatView<T>& eps, const KW& kw) {
  xt::noalias(dmu) = dz0;
  xt::noalias(dlogvar) = T(0.5) * dz0 * eps * xt::exp(T(0.5) * logvar) - T(0.5) * kw;
}
// The same without the score term kw * d log N(z_0; mu, exp(logvar)) / d(mu, logvar) at fixed
// z_0 = (eps / sigma, (eps^2 - 1) / 2) (FlowKl::Stl):
//   dmu = dz0 - kw eps exp(-logvar/2) ;  dlogvar = dz0 eps exp(logvar/2) / 2 - kw eps^2 / 2
template <class T, class KW>
void flow_base_backward_stl(MatView<T>& dmu, MatView<T>& dlogvar, const MatView<T>& dz0,
                            const MatView<T>& logvar, const MatView<T>& eps, const KW& kw) {
  xt::noalias(dmu) = dz0 - kw * eps * xt::exp(T(-0.5) * logvar);
  xt::noalias(dlogvar) = T(0.5) * (dz0 * eps * xt::exp(T(0.5) * logvar) - kw * eps * eps);
}

}  // namespace vae
