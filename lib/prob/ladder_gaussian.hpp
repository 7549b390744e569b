// The Gaussian algebra of the Ladder VAE and the hierarchical VAE (Sonderby et al. 2016),
// elementwise over [B,S] (one stochastic layer of S units), forward and backward:
//  - variances from a linear head a, by --variance: softplus, as the LVAE paper and its code do,
//      var = softplus(a) + kVarFloor
//    (the floor keeps 1/var and log var finite in float when softplus underflows), or exp,
//      var = exp(a)
//    ("diagonal Gaussians with exp on the variances", the IWAE paper's text, Burda et al. 2016),
//    or exp-sigma, sigma = exp(a), var = exp(2a) (the IWAE paper's code, yburda/iwae);
//  - sampling z = mu + sqrt(var) * eps, eps given by the caller;
//  - the precision-weighted merge of a bottom-up estimate (mu_hat, var_hat) with the
//    top-down prior (mu_p, var_p):
//      var_q = 1 / (1/var_hat + 1/var_p),  mu_q = (mu_hat/var_hat + mu_p/var_p) * var_q,
//    computed as var_q = var_hat var_p / S, mu_q = (mu_hat var_p + mu_p var_hat) / S with
//    S = var_hat + var_p (the same numbers, without 1/var overflowing for tiny variances);
//  - KL(N(mu_q, var_q) || N(mu_p, var_p)) and KL(N(mu, var) || N(0, 1)), analytic;
//  - the single-sample KL estimate log q(z) - log p(z), for conditionals that are not
//    sampled in the same order (the bottom-up hierarchical VAE), and log densities in double.
// Backward functions take w, the weight of each KL element in the loss: [S] per unit (beta / B,
// or 0 under free bits), broadcast over the batch, or [B,S] per row and unit (the IWAE
// objective's row weights times the unit weights).
#pragma once

#include <cmath>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "prob/gaussian.hpp"
#include "tensor/activation.hpp"
#include "tensor/view.hpp"

namespace vae {

constexpr double kVarFloor = 1e-6;

// var = softplus(a) + floor
template <class T>
void softplus_var_forward(MatView<T>& var, const MatView<T>& a) {
  xt::noalias(var) = softplus_expr(a) + T(kVarFloor);
}
// da = dvar * sigmoid(a); da may alias dvar.
template <class T>
void softplus_var_backward(MatView<T>& da, const MatView<T>& dvar, const MatView<T>& a) {
  xt::noalias(da) = dvar * sigmoid_expr(a);
}

// var = exp(a)
template <class T>
void exp_var_forward(MatView<T>& var, const MatView<T>& a) {
  xt::noalias(var) = xt::exp(a);
}
// da = dvar * exp(a) = dvar * var (var: the forward's output); da may alias dvar.
template <class T>
void exp_var_backward(MatView<T>& da, const MatView<T>& dvar, const MatView<T>& var) {
  xt::noalias(da) = dvar * var;
}

// var = exp(2a): a is log sigma
template <class T>
void exp_sigma_var_forward(MatView<T>& var, const MatView<T>& a) {
  xt::noalias(var) = xt::exp(T(2) * a);
}
// da = dvar * 2 exp(2a) = 2 dvar var; da may alias dvar.
template <class T>
void exp_sigma_var_backward(MatView<T>& da, const MatView<T>& dvar, const MatView<T>& var) {
  xt::noalias(da) = T(2) * dvar * var;
}

// The variance head of the ladder and hierarchical families (--variance).
enum class VarianceHead { Softplus, Exp, ExpSigma };
template <class T>
void variance_forward(VarianceHead h, MatView<T>& var, const MatView<T>& a) {
  if (h == VarianceHead::Exp) exp_var_forward(var, a);
  else if (h == VarianceHead::ExpSigma) exp_sigma_var_forward(var, a);
  else softplus_var_forward(var, a);
}
// da from dvar, given the head's input a and output var; da may alias dvar.
template <class T>
void variance_backward(VarianceHead h, MatView<T>& da, const MatView<T>& dvar, const MatView<T>& a,
                       const MatView<T>& var) {
  if (h == VarianceHead::Exp) exp_var_backward(da, dvar, var);
  else if (h == VarianceHead::ExpSigma) exp_sigma_var_backward(da, dvar, var);
  else softplus_var_backward(da, dvar, a);
}

// z = mu + sqrt(var) * eps
template <class T>
void sample_forward(MatView<T>& z, const MatView<T>& mu, const MatView<T>& var, const MatView<T>& eps) {
  xt::noalias(z) = mu + xt::sqrt(var) * eps;
}

// Precision-weighted merge (the formula above).
template <class T>
void merge_forward(MatView<T>& mu_q, MatView<T>& var_q, const MatView<T>& mu_hat, const MatView<T>& var_hat,
                   const MatView<T>& mu_p, const MatView<T>& var_p) {
  xt::noalias(mu_q) = (mu_hat * var_p + mu_p * var_hat) / (var_hat + var_p);
  xt::noalias(var_q) = var_hat * var_p / (var_hat + var_p);
}
// With r_hat = var_p / S and r_p = var_hat / S (the weights of mu_hat and mu_p):
//   dmu_hat = dmu_q r_hat               dvar_hat = dmu_q (mu_p - mu_q) / S + dvar_q r_hat^2
//   dmu_p  += dmu_q r_p                 dvar_p  += dmu_q (mu_hat - mu_q) / S + dvar_q r_p^2
// (dmu_p, dvar_p accumulate: they also carry the KL's direct gradient).
template <class T>
void merge_backward(MatView<T>& dmu_hat, MatView<T>& dvar_hat, MatView<T>& dmu_p, MatView<T>& dvar_p,
                    const MatView<T>& dmu_q, const MatView<T>& dvar_q, const MatView<T>& mu_hat,
                    const MatView<T>& var_hat, const MatView<T>& mu_p, const MatView<T>& var_p,
                    const MatView<T>& mu_q) {
  xt::noalias(dmu_hat) = dmu_q * var_p / (var_hat + var_p);
  xt::noalias(dvar_hat) = (dmu_q * (mu_p - mu_q) + dvar_q * var_p * var_p / (var_hat + var_p)) /
                          (var_hat + var_p);
  xt::noalias(dmu_p) += dmu_q * var_hat / (var_hat + var_p);
  xt::noalias(dvar_p) += (dmu_q * (mu_hat - mu_q) + dvar_q * var_hat * var_hat / (var_hat + var_p)) /
                         (var_hat + var_p);
}

// kl = KL(N(mu_q, var_q) || N(mu_p, var_p)) per element
//    = (log var_p - log var_q + (var_q + (mu_q - mu_p)^2) / var_p - 1) / 2
template <class T>
void kl_gaussians_forward(MatView<T>& kl, const MatView<T>& mu_q, const MatView<T>& var_q,
                          const MatView<T>& mu_p, const MatView<T>& var_p) {
  xt::noalias(kl) = T(0.5) * (xt::log(var_p / var_q) + (var_q + xt::square(mu_q - mu_p)) / var_p - T(1));
}
// Gradients of a loss through z = mu_q + sqrt(var_q) eps (dz) and through w-weighted KL elements:
//   dmu_q = dz + w (mu_q - mu_p) / var_p      dvar_q = dz eps / (2 sqrt(var_q)) + w (1/var_p - 1/var_q) / 2
//   dmu_p = -w (mu_q - mu_p) / var_p          dvar_p = w (1/var_p - (var_q + (mu_q - mu_p)^2) / var_p^2) / 2
template <class T, class W>
void kl_gaussians_backward(MatView<T>& dmu_q, MatView<T>& dvar_q, MatView<T>& dmu_p, MatView<T>& dvar_p,
                           const MatView<T>& dz, const MatView<T>& eps, const MatView<T>& mu_q,
                           const MatView<T>& var_q, const MatView<T>& mu_p, const MatView<T>& var_p,
                           const W& w) {
  xt::noalias(dmu_p) = -w * (mu_q - mu_p) / var_p;
  xt::noalias(dmu_q) = dz - dmu_p;
  xt::noalias(dvar_q) = T(0.5) * (dz * eps / xt::sqrt(var_q) + w * (T(1) / var_p - T(1) / var_q));
  xt::noalias(dvar_p) = T(0.5) * w * (T(1) - (var_q + xt::square(mu_q - mu_p)) / var_p) / var_p;
}

// kl = KL(N(mu, var) || N(0, 1)) per element = (mu^2 + var - 1 - log var) / 2
template <class T>
void kl_standard_forward(MatView<T>& kl, const MatView<T>& mu, const MatView<T>& var) {
  xt::noalias(kl) = T(0.5) * (mu * mu + var - T(1) - xt::log(var));
}
//   dmu = dz + w mu ;  dvar = dz eps / (2 sqrt(var)) + w (1 - 1/var) / 2
template <class T, class W>
void kl_standard_backward(MatView<T>& dmu, MatView<T>& dvar, const MatView<T>& dz, const MatView<T>& eps,
                          const MatView<T>& mu, const MatView<T>& var, const W& w) {
  xt::noalias(dmu) = dz + w * mu;
  xt::noalias(dvar) = T(0.5) * (dz * eps / xt::sqrt(var) + w * (T(1) - T(1) / var));
}

// The single-sample estimate of KL(q || N(0, I)) for z = mu + sqrt(var) eps:
//   kl = log q(z) - log N(z; 0, I) = (z^2 - eps^2 - log var) / 2
// (the top layer's term of log w under the IWAE objective, models/contract.hpp sampled_kl).
template <class T>
void kl_standard_sampled_forward(MatView<T>& kl, const MatView<T>& z, const MatView<T>& eps,
                                 const MatView<T>& var) {
  xt::noalias(kl) = T(0.5) * (z * z - eps * eps - xt::log(var));
}
// dz from above plus the estimate's own w z on z; then through z = mu + sqrt(var) eps:
//   dmu = dz + w z ;  dvar = dmu eps / (2 sqrt(var)) - w / (2 var)
template <class T, class W>
void kl_standard_sampled_backward(MatView<T>& dmu, MatView<T>& dvar, const MatView<T>& dz, const MatView<T>& z,
                                  const MatView<T>& eps, const MatView<T>& var, const W& w) {
  xt::noalias(dmu) = dz + w * z;
  xt::noalias(dvar) = T(0.5) * (dmu * eps / xt::sqrt(var) - w / var);
}

// Single-sample estimate for z = mu_q + sqrt(var_q) eps drawn from q and scored under p:
//   kl = log q(z) - log p(z) = (-eps^2 - log var_q + (z - mu_p)^2 / var_p + log var_p) / 2
// (log 2 pi cancels). Its expectation over eps is the analytic KL, but the estimate is the
// only option when p's parameters depend on a variable sampled after z.
template <class T>
void kl_sampled_forward(MatView<T>& kl, const MatView<T>& z, const MatView<T>& eps, const MatView<T>& var_q,
                        const MatView<T>& mu_p, const MatView<T>& var_p) {
  xt::noalias(kl) = T(0.5) * (xt::square(z - mu_p) / var_p - eps * eps + xt::log(var_p / var_q));
}
// The parts of its gradient that do not go through z's parameters:
//   dz += w (z - mu_p) / var_p ; dmu_p = -w (z - mu_p) / var_p ;
//   dvar_p = w (1/var_p - (z - mu_p)^2 / var_p^2) / 2
// and q's own: dmu_q = dz ; dvar_q = dz eps / (2 sqrt(var_q)) - w / (2 var_q), by q_backward
// once dz is complete.
template <class T, class W>
void kl_sampled_backward_p(MatView<T>& dz, MatView<T>& dmu_p, MatView<T>& dvar_p, const MatView<T>& z,
                           const MatView<T>& mu_p, const MatView<T>& var_p, const W& w) {
  xt::noalias(dmu_p) = -w * (z - mu_p) / var_p;
  xt::noalias(dz) -= dmu_p;
  xt::noalias(dvar_p) = T(0.5) * w * (T(1) - xt::square(z - mu_p) / var_p) / var_p;
}
template <class T, class W>
void kl_sampled_backward_q(MatView<T>& dmu_q, MatView<T>& dvar_q, const MatView<T>& dz, const MatView<T>& eps,
                           const MatView<T>& var_q, const W& w) {
  xt::noalias(dmu_q) = dz;
  xt::noalias(dvar_q) = T(0.5) * (dz * eps / xt::sqrt(var_q) - w / var_q);
}

// out[b] += log N(z_b; mu_b, diag(var_b)), in double: these feed a log-sum-exp.
template <class T>
void add_log_normal_rows(double* out, const MatView<T>& z, const MatView<T>& mu, const MatView<T>& var) {
  const std::size_t B = z.shape()[0], S = z.shape()[1];
  for (std::size_t b = 0; b < B; ++b) {
    double s = 0;
    for (std::size_t j = 0; j < S; ++j) {
      const double d = double(z(b, j)) - double(mu(b, j)), v = double(var(b, j));
      s += d * d / v + std::log(v);
    }
    out[b] += -0.5 * s - 0.5 * double(S) * kLog2Pi;
  }
}
// out[b] += log q(z_b) for z = mu + sqrt(var) eps: -(eps^2 + log var + log 2 pi) / 2 summed
// (exactly, without the rounding of z - mu).
template <class T>
void add_log_q_rows(double* out, const MatView<T>& eps, const MatView<T>& var) {
  const std::size_t B = eps.shape()[0], S = eps.shape()[1];
  for (std::size_t b = 0; b < B; ++b) {
    double s = 0;
    for (std::size_t j = 0; j < S; ++j)
      s += double(eps(b, j)) * double(eps(b, j)) + std::log(double(var(b, j)));
    out[b] += -0.5 * s - 0.5 * double(S) * kLog2Pi;
  }
}

}  // namespace vae
