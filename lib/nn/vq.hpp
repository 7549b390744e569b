// The vector quantiser of the VQ-VAE (van den Oord et al. 2017) and its exponential-moving-
// average codebook update (VQ-VAE-2, Razavi et al. 2019; the paper's appendix A.1).
//
// A codebook E [K, D] of K vectors; each of N encoder outputs z_e [N, D] (a batch's grid
// positions, channels-last) is replaced by its nearest code:
//   k_n = argmin_k ||z_e,n - e_k||^2   (the first one on a tie, as torch.argmin),  z_q,n = e_{k_n}.
// The decoder reads z_q; its gradient reaches the encoder straight through (dz_e = dz_q,
// the gradient of z_e + sg(z_q - z_e)). The two loss terms of the paper, per row n:
//   codebook    ||sg(z_e,n) - e_{k_n}||^2     gradient to the code only: 2 (e_k - z_e)
//   commitment  beta ||z_e,n - sg(e_{k_n})||^2   gradient to the encoder only: 2 beta (z_e - e_k)
// (squared distances summed over the D components: a row's terms are nats-free penalties
// added to the example's loss, as the paper's L = log p(x|z_q) + ||..||^2 + beta ||..||^2).
// With the EMA update the codebook is not a parameter (no codebook term, no gradient): after
// each training step, with n_k the batch's count of code k and s_k the sum of its z_e,
//   N_k <- d N_k + (1 - d) n_k,   m_k <- d m_k + (1 - d) s_k,   e_k = m_k / N~_k,
// where N~_k = (N_k + eps) / (sum_j N_j + K eps) sum_j N_j is N_k Laplace-smoothed (as the
// Sonnet implementation of the paper's authors does), so an unused code never divides by 0.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "tensor/blas.hpp"
#include "tensor/view.hpp"

namespace vae {

// Nearest codes: idx [N], z_q [N, D]; scores [N, K] and enorm [K] are scratch.
// ||z - e_k||^2 = ||z||^2 - 2 z.e_k + ||e_k||^2: the argmin needs only ||e_k||^2 - 2 z.e_k,
// one gemm for the batch. sq [N] gets each row's ||z_e - z_q||^2, computed
// from the difference itself (not the expansion, which cancels badly when z_e is near e_k).
template <class T>
void vq_assign(int32_t* idx, T* zq, T* sq, T* scores, T* enorm, const T* ze, const T* E, std::size_t N,
               std::size_t K, std::size_t D) {
  for (std::size_t k = 0; k < K; ++k) {
    T s = 0;
    for (std::size_t d = 0; d < D; ++d) s += E[k * D + d] * E[k * D + d];
    enorm[k] = s;
  }
  auto z = mat(const_cast<T*>(ze), N, D);
  auto e = mat(const_cast<T*>(E), K, D);
  auto sc = mat(scores, N, K);
  blas_gemm(z, e, sc, false, true, T(-2), T(0));
  for (std::size_t n = 0; n < N; ++n) {
    const T* row = scores + n * K;
    std::size_t best = 0;
    T best_score = row[0] + enorm[0];
    for (std::size_t k = 1; k < K; ++k)
      if (row[k] + enorm[k] < best_score) {
        best_score = row[k] + enorm[k];
        best = k;
      }
    idx[n] = int32_t(best);
    T s = 0;
    for (std::size_t d = 0; d < D; ++d) {
      const T v = E[best * D + d];
      zq[n * D + d] = v;
      s += (ze[n * D + d] - v) * (ze[n * D + d] - v);
    }
    sq[n] = s;
  }
}

// Backward of a row weight c_n times [decoder loss(z_q) + codebook + beta commitment]:
//   dze [N, D] = dzq (straight through) + c_n 2 beta (z_e - z_q)
//   dE[k_n]   += c_n 2 (z_q - z_e)   (only when codebook_grad: the loss update, not EMA)
// dzq already holds the weighted decoder gradient; row_scale (may be null: every c_n = scale).
template <class T>
void vq_backward(T* dze, T* dE, const T* dzq, const T* ze, const T* zq, const int32_t* idx, std::size_t N,
                 std::size_t D, T beta, T scale, const T* row_scale, bool codebook_grad) {
  for (std::size_t n = 0; n < N; ++n) {
    const T c = row_scale ? row_scale[n] : scale;
    T* dcode = dE + std::size_t(idx[n]) * D;
    for (std::size_t d = 0; d < D; ++d) {
      const T diff = ze[n * D + d] - zq[n * D + d];
      dze[n * D + d] = dzq[n * D + d] + c * T(2) * beta * diff;
      if (codebook_grad) dcode[d] -= c * T(2) * diff;
    }
  }
}

// Per-code counts of a batch's assignments: counts [K] += how many rows took each code.
template <class T>
void vq_count(T* counts, const int32_t* idx, std::size_t N) {
  for (std::size_t n = 0; n < N; ++n) counts[idx[n]] += T(1);
}

// The EMA codebook update after a training step. ema_n [K] and ema_m [K, D] are the running
// N_k and m_k (model state), batch_sum [K, D] and batch_count [K] scratch. E [K, D] is
// overwritten with m_k / N~_k.
template <class T>
void vq_ema_update(T* E, T* ema_n, T* ema_m, T* batch_sum, T* batch_count, const T* ze, const int32_t* idx,
                   std::size_t N, std::size_t K, std::size_t D, T decay, T eps) {
  std::fill(batch_count, batch_count + K, T(0));
  std::fill(batch_sum, batch_sum + K * D, T(0));
  for (std::size_t n = 0; n < N; ++n) {
    const std::size_t k = std::size_t(idx[n]);
    batch_count[k] += T(1);
    for (std::size_t d = 0; d < D; ++d) batch_sum[k * D + d] += ze[n * D + d];
  }
  T total = 0;
  for (std::size_t k = 0; k < K; ++k) {
    ema_n[k] = decay * ema_n[k] + (T(1) - decay) * batch_count[k];
    total += ema_n[k];
  }
  for (std::size_t k = 0; k < K; ++k) {
    const T smoothed = (ema_n[k] + eps) / (total + T(K) * eps) * total;
    for (std::size_t d = 0; d < D; ++d) {
      T& m = ema_m[k * D + d];
      m = decay * m + (T(1) - decay) * batch_sum[k * D + d];
      E[k * D + d] = m / smoothed;
    }
  }
}

// Dead-code restart: every code whose running usage (a count per step, decayed like N_k and
// kept in usage [K]) fell below `threshold` takes the encoder output row pick[k] of the batch
// (pick: uniform row draws, part of the step's noise) as its new value; with the EMA update
// its running statistics restart there too (N_k = 1, m_k = z_e). usage is then reset to 1.
// Returns how many codes were restarted.
template <class T>
std::size_t vq_restart_dead(T* E, T* usage, T* ema_n, T* ema_m, const T* batch_count, const T* ze,
                            const uint32_t* pick, std::size_t K, std::size_t D, T decay, T threshold) {
  std::size_t restarted = 0;
  for (std::size_t k = 0; k < K; ++k) {
    usage[k] = decay * usage[k] + (T(1) - decay) * batch_count[k];
    if (usage[k] >= threshold) continue;
    const T* src = ze + std::size_t(pick[k]) * D;
    std::copy(src, src + D, E + k * D);
    if (ema_n) {
      ema_n[k] = T(1);
      std::copy(src, src + D, ema_m + k * D);
    }
    usage[k] = T(1);
    ++restarted;
  }
  return restarted;
}

// Codebook statistics of an evaluation from the counts of each code over n assignments:
// the perplexity exp(-sum_k p_k log p_k), p_k = counts_k / n (K when every code is used
// equally, 1 when one code takes all), and the number of codes used at least once.
inline double vq_perplexity(const std::vector<double>& counts) {
  double n = 0, h = 0;
  for (double c : counts) n += c;
  if (n <= 0) return 0.0;
  for (double c : counts)
    if (c > 0) h -= c / n * std::log(c / n);
  return std::exp(h);
}

}  // namespace vae
