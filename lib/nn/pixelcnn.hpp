// A gated PixelCNN over a grid of discrete codes (van den Oord et al. 2016, "Conditional
// Image Generation with PixelCNN Decoders", class-free): the autoregressive prior of the
// VQ-VAE, p(k) = prod_i p(k_i | k_<i) in raster order over the h x w grid.
//
//   k [B, h, w] -> embedding e[k] [B, h, w, F]
//   -> masked k x k conv, type A (a position sees only the positions before it), F -> 2F,
//      gate tanh(a) * sigmoid(b)                                             -> h_1 [.., F]
//   -> L residual layers: h <- h + conv1x1(gate(masked k x k conv type B (F -> 2F) of h))
//   -> ReLU -> conv1x1 F -> K: logits; -log p(k_i | k_<i) = logsumexp(logits_i) - logits_i[k_i].
// Type B masks see the position itself too, which after a type-A layer holds only what came
// before it. This is the single-stack masked PixelCNN with gated units; it has the blind
// spot of masked convolutions (the two-stack version removes it), which costs context, never
// correctness: no output depends on its own or a later position (tests/test_pixelcnn.cpp
// checks that by perturbation).
//
// Masks: the weights [cout, k, k, cin] are used through a masked copy (the `masked` buffer of
// the work, refreshed by pixelcnn_mask before a forward pass), and backward zeroes the masked
// entries' gradients, so they never move and finite differences see the same function.
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "nn/conv.hpp"

namespace vae {

struct PixelCnn {
  std::size_t h = 0, w = 0, K = 0, F = 0, layers = 0, k = 3;
  std::size_t emb = 0;               // embedding [K, F]
  Conv2d first;                      // type A, F -> 2F
  std::vector<Conv2d> masked, proj;  // type B F -> 2F, and 1x1 F -> F, per residual layer
  Conv2d out;                        // 1x1 F -> K
  std::size_t begin = 0, end = 0;    // the prior's range of the flat parameter buffer

  void build(ParamLayout& layout, std::size_t height, std::size_t width, std::size_t codes,
             std::size_t features, std::size_t residual_layers, std::size_t kernel) {
    h = height;
    w = width;
    K = codes;
    F = features;
    layers = residual_layers;
    k = kernel;
    begin = layout.size;
    emb = layout.take(K * F);
    const std::size_t p = (k - 1) / 2;
    first = Conv2d::make(layout, F, 2 * F, k, 1, p, h, w);
    masked.clear();
    proj.clear();
    for (std::size_t l = 0; l < layers; ++l) {
      masked.push_back(Conv2d::make(layout, F, 2 * F, k, 1, p, h, w));
      proj.push_back(Conv2d::make(layout, F, F, 1, 1, 0, h, w));
    }
    out = Conv2d::make(layout, F, K, 1, 1, 0, h, w);
    end = layout.size;
  }
  std::size_t positions() const { return h * w; }

  // Whether weight tap (ki, kj) of a masked conv may be nonzero.
  bool tap_allowed(std::size_t ki, std::size_t kj, bool type_a) const {
    const std::size_t c = (k - 1) / 2;
    if (ki != c) return ki < c;
    return type_a ? kj < c : kj <= c;
  }
  // Zeroes the masked taps of the weights at P (a masked copy, or gradients).
  template <class T>
  void apply_masks(T* P) const {
    auto mask = [&](const Conv2d& l, bool type_a) {
      T* W = P + l.w;
      for (std::size_t o = 0; o < l.cout; ++o)
        for (std::size_t ki = 0; ki < k; ++ki)
          for (std::size_t kj = 0; kj < k; ++kj)
            if (!tap_allowed(ki, kj, type_a))
              std::fill(W + ((o * k + ki) * k + kj) * l.cin, W + ((o * k + ki) * k + kj + 1) * l.cin, T(0));
    };
    mask(first, true);
    for (const Conv2d& l : masked) mask(l, false);
  }
  template <class T>
  void initialize(T* P, Init init, double std_dev, std::mt19937_64& rng) const {
    std::normal_distribution<double> n(0.0, 1.0);
    for (std::size_t i = 0; i < K * F; ++i) P[emb + i] = T(n(rng));  // as nn.Embedding
    first.initialize(P, init, std_dev, rng);
    for (std::size_t l = 0; l < layers; ++l) {
      masked[l].initialize(P, init, std_dev, rng);
      proj[l].initialize(P, init, std_dev, rng);
    }
    out.initialize(P, init, std_dev, rng);
    apply_masks(P);
  }
};

template <class T>
struct PixelCnnWork {
  Buffer<T> masked;                           // the parameters with masks applied (the prior's range)
  std::vector<Activation2<T>> hs, pre, gate;  // per layer (0: the first): input h, conv output, gate
  std::vector<Activation2<T>> col;            // patches of each masked conv
  Activation2<T> proj_col, relu, logits, dlogits, dh, dpre, dgate, dtmp, dcol;
  Buffer<T> ones, nll;
  void reserve(const PixelCnn& net, std::size_t B, std::size_t n_params) {
    const std::size_t N = B * net.positions(), F = net.F, n = net.layers + 1;
    masked.assign(n_params, T(0));
    hs.resize(n + 1);
    pre.resize(n);
    gate.resize(n);
    col.resize(n);
    for (std::size_t i = 0; i <= n; ++i) hs[i].reserve(N, F);
    for (std::size_t i = 0; i < n; ++i) {
      pre[i].reserve(N, 2 * F);
      gate[i].reserve(N, F);
      col[i].reserve(B, net.first.col_size());
    }
    proj_col.reserve(N, F);
    relu.reserve(N, F);
    logits.reserve(N, net.K);
    dlogits.reserve(N, net.K);
    dh.reserve(N, F);
    dpre.reserve(N, 2 * F);
    dgate.reserve(N, F);
    dtmp.reserve(N, F);
    dcol.reserve(B, net.first.col_size());
    ones.assign(N, T(1));
    nll.assign(N, T(0));
  }
};

// The masked copy of the prior's parameters (before forward passes with new parameters).
template <class T>
void pixelcnn_mask(PixelCnnWork<T>& w, const PixelCnn& net, const T* P) {
  std::copy(P + net.begin, P + net.end, w.masked.data() + net.begin);
  net.apply_masks(w.masked.data());
}

// codes [B * h * w] (raster order per example) -> w.nll [B * h * w]: -log p(k_i | k_<i).
template <class T>
void pixelcnn_forward(PixelCnnWork<T>& w, const PixelCnn& net, const int32_t* codes, std::size_t B) {
  const std::size_t N = B * net.positions(), F = net.F, K = net.K;
  T* P = w.masked.data();
  for (std::size_t n = 0; n < N; ++n)
    std::copy(P + net.emb + std::size_t(codes[n]) * F, P + net.emb + (std::size_t(codes[n]) + 1) * F,
              w.hs[0].ptr() + n * F);
  for (std::size_t l = 0; l <= net.layers; ++l) {
    const Conv2d& c = l == 0 ? net.first : net.masked[l - 1];
    conv2d_forward(w.pre[l].ptr(), w.col[l].ptr(), w.hs[l].ptr(), c, P, B);
    const T* a = w.pre[l].ptr();
    T* g = w.gate[l].ptr();
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t f = 0; f < F; ++f)
        g[n * F + f] = std::tanh(a[n * 2 * F + f]) / (T(1) + std::exp(-a[n * 2 * F + F + f]));
    T* next = w.hs[l + 1].ptr();
    if (l == 0) {
      std::copy(g, g + N * F, next);
    } else {
      conv2d_forward(next, w.proj_col.ptr(), g, net.proj[l - 1], P, B);
      const T* prev = w.hs[l].ptr();
      for (std::size_t i = 0; i < N * F; ++i) next[i] += prev[i];
    }
  }
  const T* top = w.hs[net.layers + 1].ptr();
  T* r = w.relu.ptr();
  for (std::size_t i = 0; i < N * F; ++i) r[i] = top[i] > T(0) ? top[i] : T(0);
  conv2d_forward(w.logits.ptr(), w.proj_col.ptr(), r, net.out, P, B);
  for (std::size_t n = 0; n < N; ++n) {
    const T* z = w.logits.ptr() + n * K;
    const T m = *std::max_element(z, z + K);
    T s = 0;
    for (std::size_t j = 0; j < K; ++j) s += std::exp(z[j] - m);
    w.nll[n] = m + std::log(s) - z[codes[n]];
  }
}

// G += the gradient of sum_n scale[n] nll[n] (scale per position) for the last forward.
template <class T>
void pixelcnn_backward(PixelCnnWork<T>& w, const PixelCnn& net, const int32_t* codes, std::size_t B,
                       const T* scale, T* G) {
  const std::size_t N = B * net.positions(), F = net.F, K = net.K;
  T* P = w.masked.data();
  for (std::size_t n = 0; n < N; ++n) {  // softmax - one-hot
    const T* z = w.logits.ptr() + n * K;
    T* d = w.dlogits.ptr() + n * K;
    const T m = *std::max_element(z, z + K);
    T s = 0;
    for (std::size_t j = 0; j < K; ++j) s += (d[j] = std::exp(z[j] - m));
    for (std::size_t j = 0; j < K; ++j) d[j] *= scale[n] / s;
    d[codes[n]] -= scale[n];
  }
  // the 1x1 output conv; col = its input (the ReLU'd top), so conv2d_backward reads it as patches
  conv2d_backward(w.dh.ptr(), w.dcol.ptr(), G, w.dlogits.ptr(), w.relu.ptr(), net.out, P, B, w.ones.data());
  const T* top = w.hs[net.layers + 1].ptr();
  T* dh = w.dh.ptr();
  for (std::size_t i = 0; i < N * F; ++i) dh[i] = top[i] > T(0) ? dh[i] : T(0);
  for (std::size_t l = net.layers + 1; l-- > 0;) {
    // dh: the gradient of hs[l + 1]; on return, of hs[l]
    T* dg = w.dgate.ptr();
    if (l == 0) {
      std::copy(dh, dh + N * F, dg);
    } else {
      conv2d_backward(dg, w.dcol.ptr(), G, dh, w.gate[l].ptr(), net.proj[l - 1], P, B, w.ones.data());
    }
    const T* a = w.pre[l].ptr();
    T* dp = w.dpre.ptr();
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t f = 0; f < F; ++f) {
        const T t = std::tanh(a[n * 2 * F + f]), s = T(1) / (T(1) + std::exp(-a[n * 2 * F + F + f]));
        const T d = dg[n * F + f];
        dp[n * 2 * F + f] = d * s * (T(1) - t * t);
        dp[n * 2 * F + F + f] = d * t * s * (T(1) - s);
      }
    const Conv2d& c = l == 0 ? net.first : net.masked[l - 1];
    conv2d_backward(w.dtmp.ptr(), w.dcol.ptr(), G, dp, w.col[l].ptr(), c, P, B, w.ones.data());
    const T* dt = w.dtmp.ptr();
    if (l == 0) {
      for (std::size_t n = 0; n < N; ++n) {
        T* de = G + net.emb + std::size_t(codes[n]) * F;
        for (std::size_t f = 0; f < F; ++f) de[f] += dt[n * F + f];
      }
    } else {
      for (std::size_t i = 0; i < N * F; ++i) dh[i] += dt[i];  // the residual path plus the conv's
    }
  }
  net.apply_masks(G);
}

}  // namespace vae
