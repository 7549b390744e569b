// Conv2d and ConvTranspose2d as im2col/col2im around one BLAS product per batch, with
// PyTorch's geometry (stride, padding, output padding) and initialisation.
//
// Activations are channels-last: an image is [H, W, C] row-major, a batch [B, H*W*C], which
// the kernels see as the matrix [B*H*W, C]. Then a convolution is one gemm of the whole
// batch's patches against the weights, BatchNorm2d is nn/batchnorm.hpp's BatchNorm1d on
// that matrix (statistics over batch and pixels, as PyTorch), and a one-channel image is
// simply the [B, H*W] row of the data. Weights are PyTorch's, permuted channels-last:
//   Conv2d           W [cout, k, k, cin]  (PyTorch [cout, cin, k, k] .permute(0, 2, 3, 1))
//   ConvTranspose2d  W [cin, k, k, cout]  (PyTorch [cin, cout, k, k] .permute(0, 2, 3, 1))
// so that a patch row (ki, kj, c) is contiguous in memory for every c.
//
// Both layers share one index map between a "big" map and a "small" one: small pixel
// (y, x) and kernel tap (ki, kj) meet big pixel (y*s - p + ki, x*s - p + kj). For Conv2d
// the big map is the input and the small one the output; a transposed convolution is the
// same map read the other way (its forward is Conv2d's input gradient).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>
#include "tensor/blas.hpp"

#include "nn/params.hpp"
#include "tensor/linear.hpp"

namespace vae {

// Output size of a convolution along one axis (PyTorch's formula, dilation 1).
inline std::size_t conv_out_size(std::size_t in, std::size_t k, std::size_t s, std::size_t p) {
  if (in + 2 * p < k) throw std::invalid_argument("convolution: kernel larger than the padded input");
  return (in + 2 * p - k) / s + 1;
}
// Output size of a transposed convolution: (in - 1) s - 2 p + k + output_padding.
inline std::size_t conv_transpose_out_size(std::size_t in, std::size_t k, std::size_t s, std::size_t p,
                                           std::size_t out_pad) {
  const long n = long(in - 1) * long(s) - 2 * long(p) + long(k) + long(out_pad);
  if (n < 1) throw std::invalid_argument("transposed convolution: empty output");
  return std::size_t(n);
}

struct ConvGeom {
  std::size_t k = 0, stride = 1, pad = 0;
  std::size_t hs = 0, ws = 0;  // small map: Conv2d output, ConvTranspose2d input
  std::size_t hb = 0, wb = 0;  // big map: Conv2d input, ConvTranspose2d output
  std::vector<int32_t> map;    // [hs*ws, k*k]: big pixel y*wb + x, or -1 in the padding
  // map read the other way: big pixel p meets the patch entries (s*k*k + t) of
  // from[from_at[p] .. from_at[p+1]), in increasing order
  std::vector<int32_t> from_at, from;

  // k x k taps with stride and padding between a small map hs x ws and a big one hb x wb.
  static ConvGeom make(std::size_t k, std::size_t stride, std::size_t pad, std::size_t hs, std::size_t ws,
                       std::size_t hb, std::size_t wb) {
    ConvGeom g;
    g.k = k;
    g.stride = stride;
    g.pad = pad;
    g.hs = hs;
    g.ws = ws;
    g.hb = hb;
    g.wb = wb;
    g.build_map();
    return g;
  }
  std::size_t small_pixels() const { return hs * ws; }
  std::size_t big_pixels() const { return hb * wb; }
  std::size_t taps() const { return k * k; }
  void build_map() {
    map.assign(small_pixels() * taps(), -1);
    for (std::size_t y = 0; y < hs; ++y)
      for (std::size_t x = 0; x < ws; ++x)
        for (std::size_t ki = 0; ki < k; ++ki)
          for (std::size_t kj = 0; kj < k; ++kj) {
            const long by = long(y * stride + ki) - long(pad), bx = long(x * stride + kj) - long(pad);
            if (by < 0 || bx < 0 || by >= long(hb) || bx >= long(wb)) continue;
            map[(y * ws + x) * taps() + ki * k + kj] = int32_t(by * long(wb) + bx);
          }
    build_inverse();
  }
  void build_inverse() {
    from_at.assign(big_pixels() + 1, 0);
    for (int32_t p : map)
      if (p >= 0) ++from_at[std::size_t(p) + 1];
    for (std::size_t p = 0; p < big_pixels(); ++p) from_at[p + 1] += from_at[p];
    from.resize(std::size_t(from_at.back()));
    std::vector<int32_t> next(from_at.begin(), from_at.end() - 1);
    for (std::size_t e = 0; e < map.size(); ++e)
      if (map[e] >= 0) from[std::size_t(next[std::size_t(map[e])]++)] = int32_t(e);
  }
};

// col [B*hs*ws, k*k*C] = the patches of big [B, hb*wb*C] (zeros in the padding); with relu,
// of max(big, 0) (a ReLU before the convolution, applied while copying instead of in a pass
// of its own).
template <class T>
void im2col(T* col, const T* big, const ConvGeom& g, std::size_t B, std::size_t C, bool relu = false) {
  const std::size_t S = g.small_pixels(), KK = g.taps(), HB = g.big_pixels();
  for (std::size_t b = 0; b < B; ++b) {
    const T* img = big + b * HB * C;
    for (std::size_t s = 0; s < S; ++s) {
      T* row = col + (b * S + s) * KK * C;
      const int32_t* m = g.map.data() + s * KK;
      if (C == 1) {  // an image's first layer, a last transposed layer's gradient: a gather
        for (std::size_t t = 0; t < KK; ++t) {
          const T x = m[t] < 0 ? T(0) : img[m[t]];
          row[t] = relu && !(x > T(0)) ? T(0) : x;
        }
        continue;
      }
      // Loops rather than std::fill and std::copy: a row is C values, too short for a call of
      // memset or memmove to pay.
      for (std::size_t t = 0; t < KK; ++t, row += C) {
        if (m[t] < 0) {
#pragma omp simd
          for (std::size_t c = 0; c < C; ++c) row[c] = T(0);
          continue;
        }
        const T* src = img + std::size_t(m[t]) * C;
        if (!relu) {
#pragma omp simd
          for (std::size_t c = 0; c < C; ++c) row[c] = src[c];
          continue;
        }
#pragma omp simd
        for (std::size_t c = 0; c < C; ++c) row[c] = src[c] > T(0) ? src[c] : T(0);
      }
    }
  }
}

// big [B, hb*wb*C] += the patches col [B*hs*ws, k*k*C] added back at their pixels.
template <class T>
void col2im(T* big, const T* col, const ConvGeom& g, std::size_t B, std::size_t C) {
  const std::size_t S = g.small_pixels(), KK = g.taps(), HB = g.big_pixels();
  for (std::size_t b = 0; b < B; ++b) {
    T* img = big + b * HB * C;
    for (std::size_t s = 0; s < S; ++s) {
      const T* row = col + (b * S + s) * KK * C;
      const int32_t* m = g.map.data() + s * KK;
      if (C == 1) {  // one value per tap: a scatter
        for (std::size_t t = 0; t < KK; ++t)
          if (m[t] >= 0) img[m[t]] += row[t];
        continue;
      }
      for (std::size_t t = 0; t < KK; ++t, row += C) {
        if (m[t] < 0) continue;
        T* dst = img + std::size_t(m[t]) * C;
#pragma omp simd
        for (std::size_t c = 0; c < C; ++c) dst[c] += row[c];
      }
    }
  }
}

// big [B, hb*wb*C] = init + the patches col [B*hs*ws, k*k*C] summed at their pixels (init:
// C values for every pixel, such as a bias; zeros when null). col2im into a map holding init,
// the same sums in the same order, but as a gather: each pixel is written once, and there is
// no pass to set the map first.
template <class T>
void col2im_set(T* big, const T* col, const ConvGeom& g, std::size_t B, std::size_t C,
                const T* init = nullptr) {
  const std::size_t S = g.small_pixels(), KK = g.taps(), HB = g.big_pixels();
  const int32_t* from = g.from.data();
  for (std::size_t b = 0; b < B; ++b) {
    T* img = big + b * HB * C;
    const T* patches = col + b * S * KK * C;
    for (std::size_t p = 0; p < HB; ++p) {
      const int32_t *e = from + g.from_at[p], *end = from + g.from_at[p + 1];
      T* dst = img + p * C;
      if (C == 1) {  // one value per tap: a sum in a register
        T sum = init ? init[0] : T(0);
        for (; e < end; ++e) sum += patches[*e];
        *dst = sum;
        continue;
      }
#pragma omp simd
      for (std::size_t c = 0; c < C; ++c) dst[c] = init ? init[c] : T(0);
      for (; e < end; ++e) {
        const T* src = patches + std::size_t(*e) * C;
#pragma omp simd
        for (std::size_t c = 0; c < C; ++c) dst[c] += src[c];
      }
    }
  }
}

// in [B, H, W, cin] -> out [B, Ho, Wo, cout]; W [cout, k*k*cin] at offset w, b [cout].
struct Conv2d {
  std::size_t cin = 0, cout = 0, w = 0, b = 0;
  ConvGeom g;
  static Conv2d make(ParamLayout& layout, std::size_t cin, std::size_t cout, std::size_t k, std::size_t stride,
                     std::size_t pad, std::size_t h, std::size_t wd) {
    Conv2d c;
    c.cin = cin;
    c.cout = cout;
    c.g = ConvGeom::make(k, stride, pad, conv_out_size(h, k, stride, pad), conv_out_size(wd, k, stride, pad), h,
                         wd);
    c.w = layout.take(cout * k * k * cin);
    c.b = layout.take(cout);
    return c;
  }
  std::size_t patch() const { return g.taps() * cin; }
  // A 1x1 convolution of stride 1 without padding: its patches are its input (no im2col).
  bool pointwise() const { return g.k == 1 && g.stride == 1 && g.pad == 0; }
  std::size_t in_size() const { return g.big_pixels() * cin; }      // per image
  std::size_t out_size() const { return g.small_pixels() * cout; }  // per image
  std::size_t col_size() const { return g.small_pixels() * patch(); }
  std::size_t out_pixels() const { return g.small_pixels(); }
  template <class T>
  MatView<T> W(T* base) const {
    return mat(base + w, cout, patch());
  }
  template <class T>
  VecView<T> bias(T* base) const {
    return vec(base + b, cout);
  }
  template <class T>
  void initialize(T* base, Init init, double std_dev, std::mt19937_64& rng) const {
    // fans as PyTorch counts them for a Conv2d weight [cout, cin, k, k]: cin k^2 and cout k^2
    init_weights(base + w, cout * patch(), base + b, cout, patch(), cout * g.taps(), init, std_dev, rng);
  }
};

// in [B, H, W, cin] -> out [B, Ho, Wo, cout], Ho = (H - 1) s - 2 p + k + out_pad_h (Wo
// likewise with out_pad_w); W [cin, k*k*cout] at offset w, b [cout].
struct ConvTranspose2d {
  std::size_t cin = 0, cout = 0, out_pad_h = 0, out_pad_w = 0, w = 0, b = 0;
  ConvGeom g;
  static ConvTranspose2d make(ParamLayout& layout, std::size_t cin, std::size_t cout, std::size_t k,
                              std::size_t stride, std::size_t pad, std::size_t out_pad_h, std::size_t out_pad_w,
                              std::size_t h, std::size_t wd) {
    if (out_pad_h >= stride || out_pad_w >= stride)
      throw std::invalid_argument("transposed convolution: output padding must be < stride");
    ConvTranspose2d c;
    c.cin = cin;
    c.cout = cout;
    c.out_pad_h = out_pad_h;
    c.out_pad_w = out_pad_w;
    c.g = ConvGeom::make(k, stride, pad, h, wd, conv_transpose_out_size(h, k, stride, pad, out_pad_h),
                         conv_transpose_out_size(wd, k, stride, pad, out_pad_w));
    c.w = layout.take(cin * k * k * cout);
    c.b = layout.take(cout);
    return c;
  }
  std::size_t patch() const { return g.taps() * cout; }
  std::size_t in_size() const { return g.small_pixels() * cin; }
  std::size_t out_size() const { return g.big_pixels() * cout; }
  std::size_t col_size() const { return g.small_pixels() * patch(); }
  std::size_t out_pixels() const { return g.big_pixels(); }
  template <class T>
  MatView<T> W(T* base) const {
    return mat(base + w, cin, patch());
  }
  template <class T>
  VecView<T> bias(T* base) const {
    return vec(base + b, cout);
  }
  template <class T>
  void initialize(T* base, Init init, double std_dev, std::mt19937_64& rng) const {
    // PyTorch reads dimension 1 of a ConvTranspose2d weight [cin, cout, k, k] as the fan-in
    init_weights(base + w, cin * patch(), base + b, cout, patch(), cin * g.taps(), init, std_dev, rng);
  }
};

// out [B*Ho*Wo, cout] = col . W^T + b for patches col [B*Ho*Wo, k*k*cin].
template <class T>
void conv2d_forward_patches(T* out, const T* col, const Conv2d& l, T* P, std::size_t B) {
  const std::size_t rows = B * l.out_pixels();
  auto o = mat(out, rows, l.cout);
  auto c = mat(const_cast<T*>(col), rows, l.patch());
  linear_forward(o, c, l.W(P), l.bias(P));
}

// out [B*Ho*Wo, cout] = im2col(in) . W^T + b; col [B*Ho*Wo, k*k*cin] is kept for backward
// (relu: of max(in, 0)).
template <class T>
void conv2d_forward(T* out, T* col, const T* in, const Conv2d& l, T* P, std::size_t B, bool relu = false) {
  im2col(col, in, l.g, B, l.cin, relu);
  conv2d_forward_patches(out, col, l, P, B);
}

// dW += dout^T . col ; db += column sums of dout ; din = col2im(dout . W) when din is given
// (dcol [B*Ho*Wo, k*k*cin] is scratch). ones: at least B*Ho*Wo ones.
template <class T>
void conv2d_backward(T* din, T* dcol, T* G, const T* dout, const T* col, const Conv2d& l, T* P, std::size_t B,
                     const T* ones) {
  const std::size_t rows = B * l.out_pixels();
  auto d = mat(const_cast<T*>(dout), rows, l.cout);
  auto c = mat(const_cast<T*>(col), rows, l.patch());
  auto dW = l.W(G);
  auto db = l.bias(G);
  auto one = vec(const_cast<T*>(ones), rows);
  if (!din) {
    linear_backward<T>(nullptr, dW, db, d, c, l.W(P), one);
    return;
  }
  if (l.pointwise()) {  // col2im would copy dcol: the product goes straight to din
    auto dx = mat(din, rows, l.cin);
    linear_backward(&dx, dW, db, d, c, l.W(P), one);
    return;
  }
  auto dc = mat(dcol, rows, l.patch());
  linear_backward(&dc, dW, db, d, c, l.W(P), one);
  col2im_set(din, dcol, l.g, B, l.cin);
}

// out [B*Ho*Wo, cout] = b + col2im(in . W), with col [B*H*W, k*k*cout] as scratch.
template <class T>
void conv_transpose2d_forward(T* out, T* col, const T* in, const ConvTranspose2d& l, T* P, std::size_t B) {
  const std::size_t rows = B * l.g.small_pixels();
  auto x = mat(const_cast<T*>(in), rows, l.cin);
  auto c = mat(col, rows, l.patch());
  blas_gemm(x, l.W(P), c, false, false, T(1), T(0));
  col2im_set(out, col, l.g, B, l.cout, P + l.b);
}

// dcol = im2col(dout) ; dW += in^T . dcol ; db += column sums of dout ;
// din = dcol . W^T + din_beta * din when din is given. ones: at least B*Ho*Wo ones.
template <class T>
void conv_transpose2d_backward(T* din, T* dcol, T* G, const T* dout, const T* in, const ConvTranspose2d& l,
                               T* P, std::size_t B, const T* ones, T din_beta = T(0)) {
  const std::size_t rows = B * l.g.small_pixels(), out_rows = B * l.out_pixels();
  im2col(dcol, dout, l.g, B, l.cout);
  auto dc = mat(dcol, rows, l.patch());
  auto x = mat(const_cast<T*>(in), rows, l.cin);
  auto dW = l.W(G);
  auto db = l.bias(G);
  blas_gemm(x, dc, dW, true, false, T(1), T(1));
  auto d = mat(const_cast<T*>(dout), out_rows, l.cout);
  blas_gemv(d, vec(const_cast<T*>(ones), out_rows), db, true, T(1), T(1));
  if (din) {
    auto dx = mat(din, rows, l.cin);
    blas_gemm(dc, l.W(P), dx, false, true, T(1), din_beta);
  }
}

}  // namespace vae
