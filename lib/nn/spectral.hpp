// Spectral regularisation (NVAE, Vahdat & Kautz 2020, Sec. 3.2; Yoshida & Miyato 2017): the
// loss adds lambda * sum_i sigma_max(W_i) over the convolution weights, each W_i read as a
// matrix [rows, cols] (a Conv2d's [cout, k*k*cin]; a depthwise conv's [k*k, C], the
// transpose of PyTorch's [C, k*k]: the same singular values). sigma_max is estimated by
// power iteration with persistent vectors u [rows], v [cols] (model state, so a resumed run
// continues the same estimate): v <- W^T u / |W^T u|, u <- W v / |W v|, sigma = u^T W v.
// As in NVAE's code, u and v are constants of the gradient: d sigma / dW = u v^T.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <random>

namespace vae {

struct SpectralWeight {
  std::size_t w = 0, rows = 0, cols = 0;  // the weight in the parameter buffer
  std::size_t u = 0, v = 0;               // its vectors in the state buffer
};

template <class T>
void normalize_unit(T* x, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += double(x[i]) * double(x[i]);
  const T inv = T(1.0 / std::max(std::sqrt(s), 1e-12));
  for (std::size_t i = 0; i < n; ++i) x[i] *= inv;
}

template <class T>
void power_iteration(const SpectralWeight& sw, const T* P, T* S, int iterations) {
  const T* W = P + sw.w;
  T *u = S + sw.u, *v = S + sw.v;
  for (int it = 0; it < iterations; ++it) {
    for (std::size_t j = 0; j < sw.cols; ++j) v[j] = T(0);
    for (std::size_t i = 0; i < sw.rows; ++i)
      for (std::size_t j = 0; j < sw.cols; ++j) v[j] += W[i * sw.cols + j] * u[i];
    normalize_unit(v, sw.cols);
    for (std::size_t i = 0; i < sw.rows; ++i) {
      T s = 0;
      for (std::size_t j = 0; j < sw.cols; ++j) s += W[i * sw.cols + j] * v[j];
      u[i] = s;
    }
    normalize_unit(u, sw.rows);
  }
}

// Random unit u and v, then `iterations` steps (NVAE runs 10 at the start).
template <class T>
void spectral_init(const SpectralWeight& sw, const T* P, T* S, std::mt19937_64& rng, int iterations = 10) {
  std::normal_distribution<double> n(0.0, 1.0);
  for (std::size_t i = 0; i < sw.rows; ++i) S[sw.u + i] = T(n(rng));
  for (std::size_t j = 0; j < sw.cols; ++j) S[sw.v + j] = T(n(rng));
  normalize_unit(S + sw.u, sw.rows);
  normalize_unit(S + sw.v, sw.cols);
  power_iteration(sw, P, S, iterations);
}

// The estimate u^T W v.
template <class T>
double spectral_sigma(const SpectralWeight& sw, const T* P, const T* S) {
  double s = 0;
  for (std::size_t i = 0; i < sw.rows; ++i)
    for (std::size_t j = 0; j < sw.cols; ++j)
      s += double(S[sw.u + i]) * double(P[sw.w + i * sw.cols + j]) * double(S[sw.v + j]);
  return s;
}

// G += coeff u v^T, the gradient of coeff * u^T W v with u, v held fixed.
template <class T>
void spectral_backward(const SpectralWeight& sw, T* G, const T* S, T coeff) {
  for (std::size_t i = 0; i < sw.rows; ++i) {
    const T cu = coeff * S[sw.u + i];
    for (std::size_t j = 0; j < sw.cols; ++j) G[sw.w + i * sw.cols + j] += cu * S[sw.v + j];
  }
}

}  // namespace vae
