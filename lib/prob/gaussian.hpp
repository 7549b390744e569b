// Diagonal Gaussian posterior q(z|x) = N(mu, diag(exp(logvar))) and its KL to N(0, I).
#pragma once

#include <algorithm>
#include <cmath>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "tensor/view.hpp"

namespace vae {

constexpr double kLog2Pi = 1.8378770664093454835606594728112;  // log(2 pi)

// Reparametrization (Kingma & Welling 2013): z = mu + exp(logvar / 2) * eps. [B,L]
template <class T>
void reparam_forward(MatView<T>& z, const MatView<T>& mu, const MatView<T>& logvar, const MatView<T>& eps) {
  xt::noalias(z) = mu + xt::exp(T(0.5) * logvar) * eps;
}

// Analytic KL(q || N(0, I)) per element: (mu^2 + exp(logvar) - 1 - logvar) / 2. [B,L]
template <class T>
void kl_forward(MatView<T>& kl, const MatView<T>& mu, const MatView<T>& logvar) {
  xt::noalias(kl) = T(0.5) * (mu * mu + xt::exp(logvar) - T(1) - logvar);
}

// Gradients of a loss through z and through w[l]-weighted KL elements:
//   dmu = dz + w * mu ; dlogvar = dz * eps * exp(logvar / 2) / 2 + w * (exp(logvar) - 1) / 2
// w [L] holds the weight of each latent dimension's KL in the loss (beta / B, 0 under free bits).
// (w may also be [B,L]: a weight per row and dimension.)
template <class T, class W>
void gaussian_backward(MatView<T>& dmu, MatView<T>& dlogvar, const MatView<T>& dz, const MatView<T>& mu,
                       const MatView<T>& logvar, const MatView<T>& eps, const W& w) {
  xt::noalias(dmu) = dz + w * mu;
  xt::noalias(dlogvar) = T(0.5) * dz * eps * xt::exp(T(0.5) * logvar) + T(0.5) * w * (xt::exp(logvar) - T(1));
}

// log N(z; 0, I) and log q(z|x) for each row, in double: they feed a log-sum-exp.
// out[b] += log N(z_b; 0, I)
template <class T>
void add_log_standard_rows(double* out, const MatView<T>& z) {
  const std::size_t B = z.shape()[0], L = z.shape()[1];
  for (std::size_t b = 0; b < B; ++b) {
    double s = 0;
    for (std::size_t l = 0; l < L; ++l) s += double(z(b, l)) * double(z(b, l));
    out[b] += -0.5 * s - 0.5 * double(L) * kLog2Pi;
  }
}
// out[b] = log N(z_b; 0, I)
template <class T>
void log_prior_rows(double* out, const MatView<T>& z) {
  std::fill(out, out + z.shape()[0], 0.0);
  add_log_standard_rows(out, z);
}
// log q(z|x) with z = mu + sigma * eps: sum -eps^2/2 - logvar/2 - log(2 pi)/2.
// logvar has B rows, or one row shared by all (importance samples of one example).
template <class T>
void log_posterior_rows(double* out, const MatView<T>& eps, const MatView<T>& logvar) {
  const std::size_t B = eps.shape()[0], L = eps.shape()[1];
  const bool shared = logvar.shape()[0] == 1;
  for (std::size_t b = 0; b < B; ++b) {
    double s = 0;
    for (std::size_t l = 0; l < L; ++l)
      s += double(eps(b, l)) * double(eps(b, l)) + double(logvar(shared ? 0 : b, l));
    out[b] = -0.5 * s - 0.5 * double(L) * kLog2Pi;
  }
}

}  // namespace vae
