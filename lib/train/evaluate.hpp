// Evaluation on a data split, in nats per example:
//  - the single-sample ELBO and its parts (reconstruction, analytic KL, KL per dimension),
//  - active units (Burda et al. 2015): unit u is active when Cov_x(E_q[z_u|x]) > 0.01,
//  - the importance-weighted marginal log-likelihood (Burda et al. 2015)
//      log p(x) ~ log (1/K) sum_k p(x, z_k) / q(z_k|x),  z_k ~ q(z|x),
//    decoded in chunks, the log-sum-exp taken in double.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "data/dataset.hpp"
#include "models/model.hpp"
#include "models/vae.hpp"
#include "train/batch.hpp"

namespace vae {

constexpr double kActiveUnitThreshold = 0.01;

// The first n images of a split (n = 0: all), as a batch-index list.
inline std::vector<uint32_t> first_indices(const data::Images& images, std::size_t n) {
  std::vector<uint32_t> idx(n == 0 ? images.n : std::min(n, images.n));
  std::iota(idx.begin(), idx.end(), 0u);
  return idx;
}

// Per-unit mean and variance over a data set of the codes E_q[z_u|x], for the
// active-unit count (Burda et al. 2015): unit u is active when its variance > 0.01.
struct UnitStats {
  std::vector<double> sum, sq;
  explicit UnitStats(std::size_t L) : sum(L, 0.0), sq(L, 0.0) {}
  template <class T>
  void add(const T* codes, std::size_t rows) {  // codes [rows, L], row-major
    const std::size_t L = sum.size();
    for (std::size_t i = 0; i < rows * L; ++i) {
      const double z = double(codes[i]);
      sum[i % L] += z;
      sq[i % L] += z * z;
    }
  }
  // Fills variance[u] for n codes and returns the number of active units.
  int64_t active(std::size_t n, std::vector<double>& variance) const {
    variance.assign(sum.size(), 0.0);
    int64_t count = 0;
    for (std::size_t l = 0; l < sum.size(); ++l) {
      const double mean = sum[l] / double(n);
      variance[l] = std::max(0.0, sq[l] / double(n) - mean * mean);
      if (variance[l] > kActiveUnitThreshold) ++count;
    }
    return count;
  }
};

// Test and valid splits are stored already binarized (or as intensities) by the loader,
// so evaluation reads them as they are.
template <class T>
ElboReport evaluate_elbo(Vae<T>& model, typename Vae<T>::Work& w, const data::Images& images,
                         std::mt19937_64& rng) {
  const std::size_t L = model.shape.latent, N = images.n, B = w.max_batch;
  const auto idx = first_indices(images, 0);
  ElboReport r;
  r.kl_per_dim.assign(L, 0.0);
  UnitStats codes(L);
  for (std::size_t start = 0; start < N; start += B) {
    const std::size_t rows = std::min(B, N - start);
    gather_batch(w.x.ptr(), images, idx.data() + start, rows);
    fill_normal(w.eps.ptr(), rows * L, rng);
    model.forward(w, rows);
    for (std::size_t b = 0; b < rows; ++b) r.rec += double(w.rec[b]);
    for (std::size_t i = 0; i < rows * L; ++i) r.kl_per_dim[i % L] += double(w.kl.data[i]);
    codes.add(w.mu.ptr(), rows);
  }
  r.rec /= double(N);
  for (std::size_t l = 0; l < L; ++l) {
    r.kl_per_dim[l] /= double(N);
    r.kl += r.kl_per_dim[l];
  }
  r.active_units = codes.active(N, r.mu_variance);
  r.elbo = -(r.rec + r.kl);
  return r;
}

inline double log_sum_exp(const double* v, std::size_t n) {
  const double m = *std::max_element(v, v + n);
  if (!std::isfinite(m)) return m;
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += std::exp(v[i] - m);
  return m + std::log(s);
}

// rec[r] = -log p(x | z_r) for the m latent samples in w.z of one example x_row. With a
// Bernoulli decoder the image is one row read by every sample (model.decode would score
// w.x, m copies of it, and keep exp(-|logit|) for a backward pass: two [m,D] streams that
// evict the weights the next chunk's gemm reads); otherwise w.x must hold the m copies.
template <class T>
void decode_samples(Vae<T>& model, typename Vae<T>::Work& w, const T* x_row, std::size_t m) {
  if (model.lik.kind != LikelihoodKind::Bernoulli) {
    model.decode(w, m);
    return;
  }
  model.decode_params(w, m);
  bernoulli_nll_rows(w.rec.data(), static_cast<T*>(nullptr), w.out.ptr(), x_row, 0, m, model.shape.data_dim);
}

// Mean over the first n_examples images of -log p(x), estimated with K importance samples
// from q(z|x). w must hold at least `chunk` rows.
template <class T>
double iw_nll(Vae<T>& model, typename Vae<T>::Work& w, const data::Images& images,
              std::size_t n_examples, std::size_t K, std::size_t chunk, std::mt19937_64& rng) {
  const std::size_t L = model.shape.latent, D = model.shape.data_dim;
  const std::size_t N = n_examples == 0 ? images.n : std::min(n_examples, images.n);
  chunk = std::min(chunk, w.max_batch);
  std::vector<double> log_w(K), log_pz(chunk), log_qz(chunk);
  Buffer<T> x_row(D), mu(L), logvar(L), sigma(L);
  double total = 0;
  for (std::size_t i = 0; i < N; ++i) {
    const uint32_t index = uint32_t(i);
    gather_batch(x_row.data(), images, &index, 1);
    std::memcpy(w.x.ptr(), x_row.data(), D * sizeof(T));
    model.encode(w, 1);
    std::copy(w.mu.ptr(), w.mu.ptr() + L, mu.begin());
    std::copy(w.logvar.ptr(), w.logvar.ptr() + L, logvar.begin());
    for (std::size_t l = 0; l < L; ++l) sigma[l] = std::exp(T(0.5) * logvar[l]);
    for (std::size_t done = 0; done < K; done += chunk) {
      const std::size_t m = std::min(chunk, K - done);
      const bool rows_needed = model.lik.kind != LikelihoodKind::Bernoulli;  // see decode_samples
      if (done == 0 && rows_needed)  // later chunks are no longer than the first
        for (std::size_t r = 1; r < m; ++r) std::memcpy(w.x.ptr() + r * D, x_row.data(), D * sizeof(T));
      fill_normal(w.eps.ptr(), m * L, rng);
      T* z = w.z.ptr();
      const T* eps = w.eps.ptr();
      for (std::size_t r = 0; r < m; ++r)
        for (std::size_t l = 0; l < L; ++l) z[r * L + l] = mu[l] + sigma[l] * eps[r * L + l];
      decode_samples(model, w, x_row.data(), m);
      log_prior_rows(log_pz.data(), w.z.view(m));
      auto lv = mat(logvar.data(), 1, L);
      log_posterior_rows(log_qz.data(), w.eps.view(m), lv);
      for (std::size_t r = 0; r < m; ++r)
        log_w[done + r] = -double(w.rec[r]) + log_pz[r] - log_qz[r];
    }
    total += log_sum_exp(log_w.data(), K) - std::log(double(K));
  }
  return -total / double(N);
}

// sigma* for evaluation (the optimal-sigma mode): log sqrt of the MSE of the decoder mean
// over the whole training set, one posterior sample per image, soft-clipped as in training.
template <class T>
double optimal_log_sigma(Vae<T>& model, typename Vae<T>::Work& w, const data::Images& images,
                         std::mt19937_64& rng) {
  const std::size_t L = model.shape.latent, D = model.shape.data_dim, N = images.n, B = w.max_batch;
  const auto idx = first_indices(images, 0);
  double sse = 0;
  for (std::size_t start = 0; start < N; start += B) {
    const std::size_t rows = std::min(B, N - start);
    gather_batch(w.x.ptr(), images, idx.data() + start, rows);
    fill_normal(w.eps.ptr(), rows * L, rng);
    model.forward(w, rows);
    const T* mean = w.lw.mean.ptr();
    const T* x = w.x.ptr();
    for (std::size_t i = 0; i < rows * D; ++i) sse += double(x[i] - mean[i]) * double(x[i] - mean[i]);
  }
  return double(softclip(T(0.5 * std::log(sse / double(N * D))), model.lik.min_log_sigma));
}

}  // namespace vae
