// The training objective: the negative ELBO with a weighted KL,
//   loss = mean_b [ -log p(x_b|z_b) ] + beta_eff * sum_l KL_l,
// KL_l = mean_b KL(q(z_l|x_b) || N(0,1)); beta_eff = beta * warm-up factor.
// Free bits (Kingma et al. 2016): KL_l is replaced by max(KL_l, lambda), so a
// latent dimension below lambda nats gets no KL gradient.
#pragma once

#include <algorithm>

#include "models/model.hpp"
#include "models/vae.hpp"

namespace vae {

// Reduces the forward pass's rec and kl, and sets the KL weights backward() uses.
template <class T>
BatchLoss objective(Vae<T>& model, typename Vae<T>::Work& w, std::size_t B, const ObjectiveParams& p) {
  const std::size_t L = model.shape.latent;
  BatchLoss out;
  for (std::size_t b = 0; b < B; ++b) out.rec += double(w.rec[b]);
  out.rec /= double(B);
  const T* kl = w.kl.ptr();
  double kl_term = 0;
  for (std::size_t l = 0; l < L; ++l) {
    double kl_l = 0;
    for (std::size_t b = 0; b < B; ++b) kl_l += double(kl[b * L + l]);
    kl_l /= double(B);
    out.kl += kl_l;
    const bool clamped = p.free_bits > 0 && kl_l < p.free_bits;
    kl_term += clamped ? p.free_bits : kl_l;
    w.kl_weight[l] = clamped ? T(0) : T(p.beta / double(B));
  }
  out.loss = out.rec + p.beta * kl_term;
  return out;
}

// One forward and backward pass: grads += d loss / d params.
template <class T>
BatchLoss loss_and_grad(Vae<T>& model, typename Vae<T>::Work& w, std::size_t B, const ObjectiveParams& p) {
  model.forward(w, B);
  BatchLoss l = objective(model, w, B, p);
  model.backward(w, B, T(1) / T(B));
  return l;
}

}  // namespace vae
