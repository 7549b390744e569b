// NVAE's residual normal distributions (Vahdat & Kautz 2020, Sec. 3.2). Group l's prior is
// p(z_l | z_<l) = N(mu_p, sigma_p^2) from the decoder state; its approximate posterior is
// parameterised relative to that prior,
//   q(z_l | z_<l, x) = N(mu_p + dmu, (sigma_p dsigma)^2),
// so that the KL between the two depends on the encoder's relative parameters only:
//   KL(q || p) = 1/2 (dmu^2 / sigma_p^2 + dsigma^2 - 1) - log dsigma     (the paper's Eq. 2).
// With s = log sigma_p and r = log dsigma: KL = 1/2 (dmu^2 e^{-2s} + e^{2r} - 1) - r, and
// z = mu_p + dmu + e^{s + r} eps. The top group has the standard prior (mu_p = 0, s = 0),
// where this is the usual KL to N(0, I).
// Every mean and log scale is NVAE's soft clamp 5 tanh(a / 5) of its network output a, as in
// their code (utils.soft_clamp5), which keeps every sigma within e^{+-5} (the posterior's
// within e^{+-10}).
// The single-sample KL log q(z) - log p(z) (the IWAE objective's terms), in the same terms:
//   a = dmu e^{-s} + e^r eps = (z - mu_p) / sigma_p,  log q - log p = 1/2 a^2 - 1/2 eps^2 - r.
#pragma once

#include <cmath>
#include <cstddef>

namespace vae {

constexpr double kSoftClamp = 5.0;

template <class T>
T soft_clamp(T a) {
  return T(kSoftClamp) * std::tanh(a / T(kSoftClamp));
}
// d soft_clamp / da from its value y
template <class T>
T soft_clamp_grad(T y) {
  const T t = y / T(kSoftClamp);
  return T(1) - t * t;
}

template <class T>
T residual_kl(T dmu, T s, T r) {
  return T(0.5) * (dmu * dmu * std::exp(-2 * s) + std::exp(2 * r) - T(1)) - r;
}
// (d/d dmu, d/ds, d/dr) of residual_kl times kw, added.
template <class T>
void residual_kl_grad(T dmu, T s, T r, T kw, T& d_dmu, T& d_s, T& d_r) {
  const T e = std::exp(-2 * s);
  d_dmu += kw * dmu * e;
  d_s -= kw * dmu * dmu * e;
  d_r += kw * (std::exp(2 * r) - T(1));
}
template <class T>
T residual_kl_sampled(T dmu, T s, T r, T eps) {
  const T a = dmu * std::exp(-s) + std::exp(r) * eps;
  return T(0.5) * (a * a - eps * eps) - r;
}
template <class T>
void residual_kl_sampled_grad(T dmu, T s, T r, T eps, T kw, T& d_dmu, T& d_s, T& d_r) {
  const T es = std::exp(-s), a = dmu * es + std::exp(r) * eps;
  d_dmu += kw * a * es;
  d_s -= kw * a * dmu * es;
  d_r += kw * (a * std::exp(r) * eps - T(1));
}

// One latent group over n positions (images x pixels) of Z channels. The sampler outputs
// are channels-last maps of 2Z channels per position: the mean part first, then the log
// scale part (torch.chunk's order). q_raw: the encoder's (dmu, log dsigma); p_raw: the
// prior's (mu_p, log sigma_p), or null for the standard prior. Every output is [n, Z].
template <class T>
struct GroupTensors {
  T *mp, *sp, *dm, *r, *eps, *z, *kl;
};

template <class T>
void residual_group_forward(const GroupTensors<T>& g, const T* q_raw, const T* p_raw, std::size_t n,
                            std::size_t Z, bool sampled_kl) {
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < Z; ++j) {
      const std::size_t u = i * Z + j, m = i * 2 * Z + j;
      const T dm = soft_clamp(q_raw[m]), r = soft_clamp(q_raw[m + Z]);
      const T mp = p_raw ? soft_clamp(p_raw[m]) : T(0), sp = p_raw ? soft_clamp(p_raw[m + Z]) : T(0);
      g.dm[u] = dm;
      g.r[u] = r;
      g.mp[u] = mp;
      g.sp[u] = sp;
      g.z[u] = mp + dm + std::exp(sp + r) * g.eps[u];
      g.kl[u] = sampled_kl ? residual_kl_sampled(dm, sp, r, g.eps[u]) : residual_kl(dm, sp, r);
    }
}

// dz (dL/dz) and the KL weight kw(position, u) -> dq_raw (written) and dp_raw (written; may be
// null for the standard prior).
template <class T, class KW>
void residual_group_backward(T* dq_raw, T* dp_raw, const GroupTensors<T>& g, const T* dz, std::size_t n,
                             std::size_t Z, bool sampled_kl, KW kw) {
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < Z; ++j) {
      const std::size_t u = i * Z + j, m = i * 2 * Z + j;
      const T dm = g.dm[u], r = g.r[u], sp = g.sp[u], eps = g.eps[u];
      const T sig_eps = std::exp(sp + r) * eps;
      T d_dm = dz[u], d_mp = dz[u], d_s = dz[u] * sig_eps, d_r = dz[u] * sig_eps;
      const T w = kw(i, u);
      if (sampled_kl) residual_kl_sampled_grad(dm, sp, r, eps, w, d_dm, d_s, d_r);
      else residual_kl_grad(dm, sp, r, w, d_dm, d_s, d_r);
      dq_raw[m] = d_dm * soft_clamp_grad(dm);
      dq_raw[m + Z] = d_r * soft_clamp_grad(r);
      if (dp_raw) {
        dp_raw[m] = d_mp * soft_clamp_grad(g.mp[u]);
        dp_raw[m + Z] = d_s * soft_clamp_grad(sp);
      }
    }
}

// Ancestral sampling at temperature t: z = mu_p + t sigma_p eps (t = 1: the prior itself).
template <class T>
void residual_prior_sample(T* z, const T* p_raw, const T* eps, std::size_t n, std::size_t Z, T t) {
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < Z; ++j) {
      const std::size_t u = i * Z + j, m = i * 2 * Z + j;
      const T mp = p_raw ? soft_clamp(p_raw[m]) : T(0), sp = p_raw ? soft_clamp(p_raw[m + Z]) : T(0);
      z[u] = mp + t * std::exp(sp) * eps[u];
    }
}

// log N(z; mu_p, sigma_p^2) - log q(z) summed into out[row] for n/rows positions per row:
// what log_weights adds per group (the single-sample -KL of the group).
template <class T>
void residual_group_log_ratio(double* out, const GroupTensors<T>& g, std::size_t rows, std::size_t per_row) {
  for (std::size_t b = 0; b < rows; ++b) {
    double s = 0;
    for (std::size_t u = b * per_row; u < (b + 1) * per_row; ++u)
      s -= double(residual_kl_sampled(g.dm[u], g.sp[u], g.r[u], g.eps[u]));
    out[b] += s;
  }
}

}  // namespace vae
