// Evaluation of a VAE whose posterior is a flow (IAF), in nats per example. What differs
// from train/evaluate.hpp (the Gaussian's):
//  - ELBO: the single-sample -rec - (log q(z_T|x) - log p(z_T)) with the full flow log q
//    (Vae::forward leaves it in kl); kl_per_dim holds its split over the coordinates of
//    z_T, which sums to the KL but is not a KL per dimension.
//  - Active units (Burda et al. 2015), read in the decoder's space: the code of x is the
//    flow applied to the base mean, z_T at eps = 0 (deterministic and cheap; the flow is
//    nonlinear, so it is not exactly E_q[z_T|x]). extra["active_units_base"] counts the
//    same from the base Gaussian's mu.
//  - Importance-weighted log-likelihood: log (1/K) sum_k p(x, z_k) / q(z_k|x) with
//    z_k = flow(mu + sigma eps_k) and q the full flow density.
// With T = 0 steps both functions give the Gaussian's numbers (tests/test_iaf.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "data/dataset.hpp"
#include "models/model.hpp"
#include "models/vae.hpp"
#include "train/batch.hpp"
#include "train/evaluate.hpp"

namespace vae {

// z_T at eps = 0 for the rows already encoded in w (the code encode_mean reports).
template <class T>
void flow_mean_code(Vae<T>& model, typename Vae<T>::Work& w, std::size_t B) {
  std::fill(w.eps.ptr(), w.eps.ptr() + B * model.shape.latent, T(0));
  model.posterior_forward(w, B);
}

template <class T>
ElboReport evaluate_elbo_flow(Vae<T>& model, typename Vae<T>::Work& w, const data::Images& images,
                              std::mt19937_64& rng) {
  const std::size_t L = model.shape.latent, N = images.n, B = w.max_batch;
  const auto idx = first_indices(images, 0);
  ElboReport r;
  r.kl_per_dim.assign(L, 0.0);
  UnitStats codes(L), base(L);
  for (std::size_t start = 0; start < N; start += B) {
    const std::size_t rows = std::min(B, N - start);
    gather_batch(w.x.ptr(), images, idx.data() + start, rows);
    fill_normal(w.eps.ptr(), rows * L, rng);  // the same draws as evaluate_elbo
    model.forward(w, rows);
    for (std::size_t b = 0; b < rows; ++b) r.rec += double(w.rec[b]);
    for (std::size_t i = 0; i < rows * L; ++i) r.kl_per_dim[i % L] += double(w.kl.data[i]);
    base.add(w.mu.ptr(), rows);
    flow_mean_code(model, w, rows);
    codes.add(w.z.ptr(), rows);
  }
  r.rec /= double(N);
  for (std::size_t l = 0; l < L; ++l) {
    r.kl_per_dim[l] /= double(N);
    r.kl += r.kl_per_dim[l];
  }
  r.active_units = codes.active(N, r.mu_variance);
  std::vector<double> base_variance;
  const int64_t active_base = base.active(N, base_variance);
  r.elbo = -(r.rec + r.kl);
  r.extra["active_units_base"] = double(active_base);
  return r;
}

// Mean over the first n_examples images of -log p(x) by K importance samples from the flow
// posterior. Each example is encoded once; its mu, logvar and context are copied to every
// row of a chunk. Draws the same noise as iw_nll.
template <class T>
double iw_nll_flow(Vae<T>& model, typename Vae<T>::Work& w, const data::Images& images,
                   std::size_t n_examples, std::size_t K, std::size_t chunk, std::mt19937_64& rng) {
  const std::size_t L = model.shape.latent, D = model.shape.data_dim;
  const std::size_t C = model.has_context() ? model.shape.iaf.context : 0;
  const std::size_t N = n_examples == 0 ? images.n : std::min(n_examples, images.n);
  chunk = std::min(chunk, w.max_batch);
  std::vector<double> log_w(K);
  double total = 0;
  for (std::size_t i = 0; i < N; ++i) {
    const uint32_t index = uint32_t(i);
    gather_batch(w.x.ptr(), images, &index, 1);
    model.encode(w, 1);
    const std::size_t rows = std::min(chunk, K);  // later chunks are no longer than the first
    auto replicate = [&](T* p, std::size_t n) {
      for (std::size_t r = 1; r < rows; ++r) std::memcpy(p + r * n, p, n * sizeof(T));
    };
    replicate(w.x.ptr(), D);
    replicate(w.mu.ptr(), L);
    replicate(w.logvar.ptr(), L);
    if (C > 0) replicate(w.ctx.ptr(), C);
    for (std::size_t done = 0; done < K; done += chunk) {
      const std::size_t m = std::min(chunk, K - done);
      fill_normal(w.eps.ptr(), m * L, rng);
      model.posterior_forward(w, m);
      model.decode(w, m);
      model.log_weights(log_w.data() + done, w, m);
    }
    total += log_sum_exp(log_w.data(), K) - std::log(double(K));
  }
  return -total / double(N);
}

}  // namespace vae
