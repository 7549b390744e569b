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
// Conditioning (optional, for the bottom prior of a two-level VQ-VAE, Razavi et al. 2019): a
// second code grid c (cond_K codes on a coarser cond_h x cond_w grid, the top codes) is embedded
// in F channels, each position of this grid reads the embedding at its coarse position
// (i cond_h / h, j cond_w / w), and every gated layer adds a 1x1 conv of that map (F -> 2F) to
// its pre-activation: the conditional gated PixelCNN's V s term with a spatial s (van den Oord
// et al. 2016, eq. 5). It reads the other grid only, never this grid's codes, so the masks and
// the autoregressive order are untouched: p(k | c) = prod_i p(k_i | k_<i, c).
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
  // conditioning (cond_K = 0: none): its embedding [cond_K, F], each position's coarse position,
  // and a 1x1 conv F -> 2F per gated layer (the first, then each residual one)
  std::size_t cond_K = 0, cond_emb = 0, cond_pos = 0;
  std::vector<std::size_t> parent;
  std::vector<Conv2d> cond;
  std::size_t begin = 0, end = 0;  // the prior's range of the flat parameter buffer

  // cond_codes > 0: conditioned on a grid of cond_codes codes of cond_h x cond_w positions.
  void build(ParamLayout& layout, std::size_t height, std::size_t width, std::size_t codes,
             std::size_t features, std::size_t residual_layers, std::size_t kernel, std::size_t cond_codes = 0,
             std::size_t cond_h = 0, std::size_t cond_w = 0) {
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
    cond_K = cond_codes;
    cond.clear();
    parent.clear();
    if (conditioned()) {
      cond_emb = layout.take(cond_K * F);
      cond_pos = cond_h * cond_w;
      for (std::size_t l = 0; l <= layers; ++l) cond.push_back(Conv2d::make(layout, F, 2 * F, 1, 1, 0, h, w));
      for (std::size_t i = 0; i < h; ++i)
        for (std::size_t j = 0; j < w; ++j) parent.push_back(i * cond_h / h * cond_w + j * cond_w / w);
    }
    end = layout.size;
  }
  bool conditioned() const { return cond_K > 0; }
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
    if (conditioned()) {
      for (std::size_t i = 0; i < cond_K * F; ++i) P[cond_emb + i] = T(n(rng));
      for (const Conv2d& c : cond) c.initialize(P, init, std_dev, rng);
    }
    apply_masks(P);
  }
};

template <class T>
struct PixelCnnWork {
  Buffer<T> masked;                           // the parameters with masks applied (the prior's range)
  std::vector<Activation2<T>> hs, pre, gate;  // per layer (0: the first): input h, conv output, gate
  std::vector<Activation2<T>> col;            // patches of each masked conv
  Activation2<T> proj_col, relu, logits, dlogits, dh, dpre, dgate, dtmp, dcol;
  Activation2<T> s, ds, cpre;  // conditioning: the map s [N, F], its gradient, a layer's V s [N, 2F]
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
    const std::size_t Nc = net.conditioned() ? N : 0;
    s.reserve(Nc, F);
    ds.reserve(Nc, F);
    cpre.reserve(Nc, 2 * F);
  }
};

// The masked copy of the prior's parameters (before forward passes with new parameters).
template <class T>
void pixelcnn_mask(PixelCnnWork<T>& w, const PixelCnn& net, const T* P) {
  std::copy(P + net.begin, P + net.end, w.masked.data() + net.begin);
  net.apply_masks(w.masked.data());
}

// The code of the conditioning grid at position n of this grid (B * h * w of them).
inline std::size_t cond_code(const PixelCnn& net, const int32_t* cond_codes, std::size_t n) {
  const std::size_t b = n / net.positions(), p = n % net.positions();
  return std::size_t(cond_codes[b * net.cond_pos + net.parent[p]]);
}

// codes [B * h * w] (raster order per example) -> w.nll [B * h * w]: -log p(k_i | k_<i), or
// for a conditioned net -log p(k_i | k_<i, c) with c = cond_codes [B * cond_h * cond_w].
template <class T>
void pixelcnn_forward(PixelCnnWork<T>& w, const PixelCnn& net, const int32_t* codes, std::size_t B,
                      const int32_t* cond_codes = nullptr) {
  const std::size_t N = B * net.positions(), F = net.F, K = net.K;
  T* P = w.masked.data();
  for (std::size_t n = 0; n < N; ++n)
    std::copy(P + net.emb + std::size_t(codes[n]) * F, P + net.emb + (std::size_t(codes[n]) + 1) * F,
              w.hs[0].ptr() + n * F);
  if (net.conditioned())
    for (std::size_t n = 0; n < N; ++n) {
      const T* e = P + net.cond_emb + cond_code(net, cond_codes, n) * F;
      std::copy(e, e + F, w.s.ptr() + n * F);
    }
  for (std::size_t l = 0; l <= net.layers; ++l) {
    const Conv2d& c = l == 0 ? net.first : net.masked[l - 1];
    conv2d_forward(w.pre[l].ptr(), w.col[l].ptr(), w.hs[l].ptr(), c, P, B);
    if (net.conditioned()) {
      conv2d_forward_patches(w.cpre.ptr(), w.s.ptr(), net.cond[l], P, B);  // 1x1: the patches are s
      T* pre = w.pre[l].ptr();
      for (std::size_t i = 0; i < N * 2 * F; ++i) pre[i] += w.cpre.data[i];
    }
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

// G += the gradient of sum_n scale[n] nll[n] (scale per position) for the last forward (with
// its cond_codes).
template <class T>
void pixelcnn_backward(PixelCnnWork<T>& w, const PixelCnn& net, const int32_t* codes, std::size_t B,
                       const T* scale, T* G, const int32_t* cond_codes = nullptr) {
  const std::size_t N = B * net.positions(), F = net.F, K = net.K;
  T* P = w.masked.data();
  if (net.conditioned()) std::fill(w.ds.data.begin(), w.ds.data.begin() + long(N * F), T(0));
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
    if (net.conditioned()) {  // V s: its weights' gradient, and s's (added up over the layers)
      conv2d_backward(w.dtmp.ptr(), w.dcol.ptr(), G, dp, w.s.ptr(), net.cond[l], P, B, w.ones.data());
      for (std::size_t i = 0; i < N * F; ++i) w.ds.data[i] += w.dtmp.data[i];
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
  if (net.conditioned())
    for (std::size_t n = 0; n < N; ++n) {
      T* de = G + net.cond_emb + cond_code(net, cond_codes, n) * F;
      for (std::size_t f = 0; f < F; ++f) de[f] += w.ds.data[n * F + f];
    }
  net.apply_masks(G);
}

}  // namespace vae
