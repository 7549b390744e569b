// The operations NVAE's cells are made of (Vahdat & Kautz 2020), on channels-last feature
// maps as nn/conv.hpp: an image [H, W, C] row-major, a batch [B, H*W*C] = the matrix
// [B*H*W, C]. Each operation is a pair of plain functions over an Op (its shapes and its
// parameter offsets) and an OpWork (its buffers, reserved once):
//   op_forward:  in [B, in.size()] -> w.out [B, out.size()]
//   op_backward: dout (dL/d out; may be overwritten) -> din += dL/d in (accumulated; din may
//                be null), and the parameter gradients accumulated in G.
//   Swish      y = x sigmoid(x)
//   ELU        y = x (x > 0), exp(x) - 1 otherwise
//   BatchNorm  BatchNorm2d over batch and pixels (nn/batchnorm.hpp); the running statistics
//              are folded in after the step (op_update_running) with the model's momentum
//   Conv       Conv2d (nn/conv.hpp); a 1x1 stride-1 convolution is one gemm on the map itself
//   DwConv     depthwise k x k convolution, stride 1, padding k/2: W [k*k, C] (PyTorch's
//              [C, 1, k, k] transposed), b [C]
//   Se         squeeze and excitation (Hu et al. 2018), as NVAE's: y = x * sigmoid(W2 relu(W1
//              mean_pixels(x) + b1) + b2), hidden width max(C/16, 4)
//   Upsample   nearest neighbour, x2 in both directions
// A Chain is a sequence of ops, each reading the previous one's output; their gradients pass
// through two buffers in turn (only two are alive at a time), which keeps the memory of an
// evaluation batch of 500 rows within reach at 32x32 with NVAE's x6 expansion.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "nn/batchnorm.hpp"
#include "nn/conv.hpp"
#include "nn/params.hpp"
#include "tensor/linear.hpp"
#include "tensor/view.hpp"

namespace vae {

// The shape of one image's feature map.
struct FMap {
  std::size_t h = 0, w = 0, c = 0;
  std::size_t pixels() const { return h * w; }
  std::size_t size() const { return h * w * c; }
};

enum class OpKind { Swish, Elu, BatchNorm, Conv, DwConv, Se, Upsample };

// Depthwise convolution geometry and offsets: W [k*k, C] at w, b [C] at b.
struct DwConv {
  std::size_t c = 0, w = 0, b = 0;
  ConvGeom g;
};

struct Op {
  OpKind kind = OpKind::Swish;
  FMap in, out;
  BatchNorm bn;
  Conv2d conv;
  DwConv dw;
  Linear se1, se2;
  bool pointwise() const {
    return kind == OpKind::Conv && conv.g.k == 1 && conv.g.stride == 1 && conv.g.pad == 0;
  }
};

inline Op op_swish(FMap in) { return Op{OpKind::Swish, in, in, {}, {}, {}, {}, {}}; }
inline Op op_elu(FMap in) { return Op{OpKind::Elu, in, in, {}, {}, {}, {}, {}}; }
inline Op op_batchnorm(ParamLayout& P, ParamLayout& S, FMap in) {
  Op o{OpKind::BatchNorm, in, in, {}, {}, {}, {}, {}};
  o.bn = BatchNorm::make(P, S, in.c);
  return o;
}
// k x k convolution to cout channels with stride s and padding p.
inline Op op_conv(ParamLayout& P, FMap in, std::size_t cout, std::size_t k, std::size_t s, std::size_t p) {
  Op o{OpKind::Conv, in, {}, {}, {}, {}, {}, {}};
  o.conv = Conv2d::make(P, in.c, cout, k, s, p, in.h, in.w);
  o.out = FMap{o.conv.g.hs, o.conv.g.ws, cout};
  return o;
}
inline Op op_dwconv(ParamLayout& P, FMap in, std::size_t k) {
  Op o{OpKind::DwConv, in, in, {}, {}, {}, {}, {}};
  o.dw.c = in.c;
  o.dw.g = ConvGeom::make(k, 1, k / 2, in.h, in.w, in.h, in.w);  // "same" padding
  o.dw.w = P.take(k * k * in.c);
  o.dw.b = P.take(in.c);
  return o;
}
inline std::size_t se_hidden(std::size_t c) { return std::max<std::size_t>(c / 16, 4); }
inline Op op_se(ParamLayout& P, FMap in) {
  Op o{OpKind::Se, in, in, {}, {}, {}, {}, {}};
  o.se1 = Linear::make(P, in.c, se_hidden(in.c));
  o.se2 = Linear::make(P, se_hidden(in.c), in.c);
  return o;
}
inline Op op_upsample(FMap in) {
  return Op{OpKind::Upsample, in, FMap{2 * in.h, 2 * in.w, in.c}, {}, {}, {}, {}, {}};
}

// Every parameter range of an op, named prefix.W etc. (gradient checks, golden tests).
inline void op_param_groups(const Op& o, const std::string& prefix, std::vector<ParamRange>& g) {
  switch (o.kind) {
    case OpKind::BatchNorm:
      g.push_back({prefix + ".gamma", o.bn.gamma, o.bn.n});
      g.push_back({prefix + ".beta", o.bn.beta, o.bn.n});
      break;
    case OpKind::Conv:
      g.push_back({prefix + ".W", o.conv.w, o.conv.cout * o.conv.patch()});
      g.push_back({prefix + ".b", o.conv.b, o.conv.cout});
      break;
    case OpKind::DwConv:
      g.push_back({prefix + ".W", o.dw.w, o.dw.g.taps() * o.dw.c});
      g.push_back({prefix + ".b", o.dw.b, o.dw.c});
      break;
    case OpKind::Se:
      g.push_back({prefix + ".W1", o.se1.w, o.se1.in * o.se1.out});
      g.push_back({prefix + ".b1", o.se1.b, o.se1.out});
      g.push_back({prefix + ".W2", o.se2.w, o.se2.in * o.se2.out});
      g.push_back({prefix + ".b2", o.se2.b, o.se2.out});
      break;
    default: break;
  }
}

// PyTorch's default initialisation (or the --init rule) for the weights; batch norm gamma = 1,
// beta = 0, running mean 0 and variance 1.
template <class T>
void op_initialize(const Op& o, T* P, T* S, Init init, double std_dev, std::mt19937_64& rng) {
  switch (o.kind) {
    case OpKind::BatchNorm: o.bn.initialize(P, S); break;
    case OpKind::Conv: o.conv.initialize(P, init, std_dev, rng); break;
    case OpKind::DwConv: {
      const std::size_t kk = o.dw.g.taps();  // PyTorch's fans for [C, 1, k, k]: k^2 and k^2
      init_weights(P + o.dw.w, kk * o.dw.c, P + o.dw.b, o.dw.c, kk, kk, init, std_dev, rng);
      break;
    }
    case OpKind::Se:
      init_linear(P, o.se1, init, std_dev, rng);
      init_linear(P, o.se2, init, std_dev, rng);
      break;
    default: break;
  }
}

template <class T>
struct OpWork {
  Buffer<T> out;                              // [B, out.size()]
  Buffer<T> col;                              // Conv: the patches (not for 1x1)
  Buffer<T> xhat;                             // BatchNorm: [B, size]
  Buffer<T> mean, var, inv_std, s1, s2;       // BatchNorm: [C]
  Buffer<T> pool, hid_pre, hid, gate, dgate;  // Se: [B, C], [B, h], [B, h], [B, C], [B, C]
  const T* in = nullptr;                      // the input of the last forward
};

// Shared by every op of a model: parameters, gradients, state, ones (at least as many as
// the largest B * pixels) and scratch (the largest conv's B * col size, or B * map size).
template <class T>
struct OpContext {
  T* P = nullptr;
  T* G = nullptr;
  T* S = nullptr;
  const T* ones = nullptr;
  T* scratch = nullptr;
  bool training = true;
};

template <class T>
void op_reserve(const Op& o, OpWork<T>& w, std::size_t B) {
  w.out.assign(B * o.out.size(), T(0));
  if (o.kind == OpKind::Conv && !o.pointwise()) w.col.assign(B * o.conv.col_size(), T(0));
  if (o.kind == OpKind::BatchNorm) {
    w.xhat.assign(B * o.in.size(), T(0));
    for (Buffer<T>* v : {&w.mean, &w.var, &w.inv_std, &w.s1, &w.s2}) v->assign(o.in.c, T(0));
  }
  if (o.kind == OpKind::Se) {
    const std::size_t h = o.se1.out;
    w.pool.assign(B * o.in.c, T(0));
    w.gate.assign(B * o.in.c, T(0));
    w.dgate.assign(B * o.in.c, T(0));
    w.hid_pre.assign(B * h, T(0));
    w.hid.assign(B * h, T(0));
  }
}
// What op_backward needs of OpContext::scratch, per batch row.
inline std::size_t op_scratch_size(const Op& o) {
  if (o.kind == OpKind::Conv) return o.conv.col_size();  // dcol
  if (o.kind == OpKind::Se) return o.in.c + o.se1.out;   // d pool, d hid
  if (o.kind == OpKind::BatchNorm) return o.in.size();
  return 0;
}
inline std::size_t op_max_pixels(const Op& o) { return std::max(o.in.pixels(), o.out.pixels()); }

// ---- the plain functions, one pair per kind ----

template <class T>
inline T sigmoid_scalar(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

// Swish runs on the largest maps of the model (the decoder cells' x6 expansion at 32x32),
// so it is written on xsimd batches: xsimd's exp (FreeBSD's algorithm, within an ulp of
// std::exp) on 4 doubles at a time with AVX2, the same formulas as sigmoid_scalar on the
// tail. A scalar std::exp per element was the largest single cost of an NVAE step.
template <class T>
void swish_forward(T* out, const T* in, std::size_t n) {
  using V = xsimd::batch<T>;
  std::size_t i = 0;
  for (; i + V::size <= n; i += V::size) {
    const V x = V::load_unaligned(in + i);
    (x * (V(T(1)) / (V(T(1)) + xsimd::exp(-x)))).store_unaligned(out + i);
  }
  for (; i < n; ++i) out[i] = in[i] * sigmoid_scalar(in[i]);
}
// din += dout * (s + x s (1 - s)), s = sigmoid(x)
template <class T>
void swish_backward(T* din, const T* dout, const T* in, std::size_t n) {
  using V = xsimd::batch<T>;
  const V one(T(1));
  std::size_t i = 0;
  for (; i + V::size <= n; i += V::size) {
    const V x = V::load_unaligned(in + i);
    const V s = one / (one + xsimd::exp(-x));
    const V d = V::load_unaligned(din + i) + V::load_unaligned(dout + i) * s * (one + x * (one - s));
    d.store_unaligned(din + i);
  }
  for (; i < n; ++i) {
    const T s = sigmoid_scalar(in[i]);
    din[i] += dout[i] * s * (T(1) + in[i] * (T(1) - s));
  }
}
template <class T>
void elu_forward(T* out, const T* in, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = in[i] > T(0) ? in[i] : std::expm1(in[i]);
}
// din += dout * (1 if x > 0, else y + 1)
template <class T>
void elu_backward(T* din, const T* dout, const T* in, const T* out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) din[i] += dout[i] * (in[i] > T(0) ? T(1) : out[i] + T(1));
}

// out[b, s, c] = b[c] + sum_t in[b, map(s, t), c] W[t, c]
template <class T>
void dwconv_forward(T* out, const T* in, const DwConv& d, const T* P, std::size_t B) {
  const std::size_t S = d.g.small_pixels(), KK = d.g.taps(), C = d.c;
  const T* W = P + d.w;
  const T* bias = P + d.b;
  for (std::size_t b = 0; b < B; ++b) {
    const T* img = in + b * S * C;
    for (std::size_t s = 0; s < S; ++s) {
      T* o = out + (b * S + s) * C;
      std::copy(bias, bias + C, o);
      const int32_t* m = d.g.map.data() + s * KK;
      for (std::size_t t = 0; t < KK; ++t) {
        if (m[t] < 0) continue;
        const T* x = img + std::size_t(m[t]) * C;
        const T* wt = W + t * C;
#pragma omp simd
        for (std::size_t c = 0; c < C; ++c) o[c] += x[c] * wt[c];
      }
    }
  }
}
template <class T>
void dwconv_backward(T* din, T* G, const T* dout, const T* in, const DwConv& d, const T* P, std::size_t B) {
  const std::size_t S = d.g.small_pixels(), KK = d.g.taps(), C = d.c;
  const T* W = P + d.w;
  T* dW = G + d.w;
  T* db = G + d.b;
  for (std::size_t b = 0; b < B; ++b) {
    const T* img = in + b * S * C;
    T* dimg = din ? din + b * S * C : nullptr;
    for (std::size_t s = 0; s < S; ++s) {
      const T* g = dout + (b * S + s) * C;
#pragma omp simd
      for (std::size_t c = 0; c < C; ++c) db[c] += g[c];
      const int32_t* m = d.g.map.data() + s * KK;
      for (std::size_t t = 0; t < KK; ++t) {
        if (m[t] < 0) continue;
        const T* x = img + std::size_t(m[t]) * C;
        T* dwt = dW + t * C;
#pragma omp simd
        for (std::size_t c = 0; c < C; ++c) dwt[c] += g[c] * x[c];
        if (!dimg) continue;
        T* dx = dimg + std::size_t(m[t]) * C;
        const T* wt = W + t * C;
#pragma omp simd
        for (std::size_t c = 0; c < C; ++c) dx[c] += g[c] * wt[c];
      }
    }
  }
}

// Squeeze and excitation: pool [B,C] = pixel means, hid = relu(pool W1^T + b1),
// gate = sigmoid(hid W2^T + b2), out[b, s, c] = in[b, s, c] gate[b, c].
template <class T>
void se_forward(OpWork<T>& w, T* out, const T* in, const Op& o, T* P, std::size_t B) {
  const std::size_t S = o.in.pixels(), C = o.in.c, H = o.se1.out;
  const T inv_s = T(1) / T(S);
  for (std::size_t b = 0; b < B; ++b) {
    T* pool = w.pool.data() + b * C;
    std::fill(pool, pool + C, T(0));
    for (std::size_t s = 0; s < S; ++s) {
      const T* x = in + (b * S + s) * C;
      for (std::size_t c = 0; c < C; ++c) pool[c] += x[c];
    }
    for (std::size_t c = 0; c < C; ++c) pool[c] *= inv_s;
  }
  auto pool = mat(w.pool.data(), B, C), hp = mat(w.hid_pre.data(), B, H), h = mat(w.hid.data(), B, H);
  auto gate = mat(w.gate.data(), B, C);
  linear_forward(hp, pool, o.se1.W(P), o.se1.bias(P));
  for (std::size_t i = 0; i < B * H; ++i) w.hid[i] = std::max(w.hid_pre[i], T(0));
  linear_forward(gate, h, o.se2.W(P), o.se2.bias(P));
  for (std::size_t i = 0; i < B * C; ++i) w.gate[i] = sigmoid_scalar(w.gate[i]);
  for (std::size_t b = 0; b < B; ++b) {
    const T* g = w.gate.data() + b * C;
    for (std::size_t s = 0; s < S; ++s) {
      const T* x = in + (b * S + s) * C;
      T* y = out + (b * S + s) * C;
      for (std::size_t c = 0; c < C; ++c) y[c] = x[c] * g[c];
    }
  }
}
// din += dout * gate + (d pool) / S; scratch holds [B, C + H] (d pool, d hid).
template <class T>
void se_backward(OpWork<T>& w, T* din, T* G, const T* dout, const T* in, const Op& o, T* P, std::size_t B,
                 const T* ones, T* scratch) {
  const std::size_t S = o.in.pixels(), C = o.in.c, H = o.se1.out;
  for (std::size_t b = 0; b < B; ++b) {
    T* dg = w.dgate.data() + b * C;
    const T* g = w.gate.data() + b * C;
    std::fill(dg, dg + C, T(0));
    for (std::size_t s = 0; s < S; ++s) {
      const T* x = in + (b * S + s) * C;
      const T* dy = dout + (b * S + s) * C;
      for (std::size_t c = 0; c < C; ++c) dg[c] += dy[c] * x[c];
    }
    for (std::size_t c = 0; c < C; ++c) dg[c] *= g[c] * (T(1) - g[c]);  // through the sigmoid
  }
  auto one = vec(const_cast<T*>(ones), B);
  auto dgate = mat(w.dgate.data(), B, C), h = mat(w.hid.data(), B, H), pool = mat(w.pool.data(), B, C);
  auto dh = mat(scratch + B * C, B, H), dpool = mat(scratch, B, C);
  auto dW2 = o.se2.W(G), dW1 = o.se1.W(G);
  auto db2 = o.se2.bias(G), db1 = o.se1.bias(G);
  linear_backward(&dh, dW2, db2, dgate, h, o.se2.W(P), one);
  for (std::size_t i = 0; i < B * H; ++i)
    if (w.hid_pre[i] <= T(0)) dh.data()[i] = T(0);
  linear_backward(din ? &dpool : nullptr, dW1, db1, dh, pool, o.se1.W(P), one);
  if (!din) return;
  const T inv_s = T(1) / T(S);
  for (std::size_t b = 0; b < B; ++b) {
    const T* g = w.gate.data() + b * C;
    const T* dp = scratch + b * C;
    for (std::size_t s = 0; s < S; ++s) {
      const T* dy = dout + (b * S + s) * C;
      T* dx = din + (b * S + s) * C;
      for (std::size_t c = 0; c < C; ++c) dx[c] += dy[c] * g[c] + dp[c] * inv_s;
    }
  }
}

// Nearest-neighbour 2x upsampling of f [B, h, w, c]: pixel(s, big) for each of the
// [B, 2h, 2w] pixels, s and big the offsets of its source pixel and of itself (c values each).
template <class Pixel>
void for_each_upsampled(FMap f, std::size_t B, Pixel pixel) {
  const std::size_t C = f.c, Wo = 2 * f.w;
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t y = 0; y < 2 * f.h; ++y)
      for (std::size_t x = 0; x < Wo; ++x)
        pixel(((b * f.h + y / 2) * f.w + x / 2) * C, ((b * 2 * f.h + y) * Wo + x) * C);
}
template <class T>
void upsample_forward(T* out, const T* in, FMap f, std::size_t B) {
  for_each_upsampled(f, B, [&](std::size_t s, std::size_t big) { std::copy(in + s, in + s + f.c, out + big); });
}
// din += the sum of dout over each source pixel's four copies
template <class T>
void upsample_backward(T* din, const T* dout, FMap f, std::size_t B) {
  for_each_upsampled(f, B, [&](std::size_t s, std::size_t big) {
    for (std::size_t c = 0; c < f.c; ++c) din[s + c] += dout[big + c];
  });
}

// ---- dispatch ----

template <class T>
void op_forward(const Op& o, OpWork<T>& w, const T* in, const OpContext<T>& ctx, std::size_t B) {
  w.in = in;
  const std::size_t n = B * o.out.size(), rows = B * o.in.pixels(), C = o.in.c;
  T* P = ctx.P;
  switch (o.kind) {
    case OpKind::Swish: swish_forward(w.out.data(), in, n); break;
    case OpKind::Elu: elu_forward(w.out.data(), in, n); break;
    case OpKind::BatchNorm: {
      auto x = mat(const_cast<T*>(in), rows, C), y = mat(w.out.data(), rows, C),
           xh = mat(w.xhat.data(), rows, C);
      auto inv = vec(w.inv_std.data(), C), gamma = vec(P + o.bn.gamma, C), beta = vec(P + o.bn.beta, C);
      if (ctx.training) {
        auto mean = vec(w.mean.data(), C), var = vec(w.var.data(), C);
        batchnorm_forward_train(y, xh, mean, var, inv, x, gamma, beta, vec(const_cast<T*>(ctx.ones), rows));
      } else {
        auto rm = vec(ctx.S + o.bn.mean, C), rv = vec(ctx.S + o.bn.var, C);
        batchnorm_forward_eval(y, xh, inv, x, gamma, beta, rm, rv);
      }
      break;
    }
    case OpKind::Conv:
      if (o.pointwise()) {
        auto y = mat(w.out.data(), rows, o.conv.cout), x = mat(const_cast<T*>(in), rows, C);
        linear_forward(y, x, o.conv.W(P), o.conv.bias(P));
      } else {
        conv2d_forward(w.out.data(), w.col.data(), in, o.conv, P, B);
      }
      break;
    case OpKind::DwConv: dwconv_forward(w.out.data(), in, o.dw, P, B); break;
    case OpKind::Se: se_forward(w, w.out.data(), in, o, P, B); break;
    case OpKind::Upsample: upsample_forward(w.out.data(), in, o.in, B); break;
  }
}

// dout (dL/d out) -> din += dL/d in (din may be null: no input gradient); G += the
// parameter gradients. The mode must be the forward's. dout may be overwritten.
template <class T>
void op_backward(const Op& o, OpWork<T>& w, T* dout, T* din, const OpContext<T>& ctx, std::size_t B) {
  const std::size_t n = B * o.out.size(), rows = B * o.in.pixels(), C = o.in.c;
  T *P = ctx.P, *G = ctx.G;
  const T* in = w.in;
  switch (o.kind) {
    case OpKind::Swish:
      if (din) swish_backward(din, dout, in, n);
      break;
    case OpKind::Elu:
      if (din) elu_backward(din, dout, in, w.out.data(), n);
      break;
    case OpKind::BatchNorm: {
      auto dy = mat(dout, rows, C), xh = mat(w.xhat.data(), rows, C), sc = mat(ctx.scratch, rows, C);
      auto inv = vec(w.inv_std.data(), C), gamma = vec(P + o.bn.gamma, C);
      auto dgamma = vec(G + o.bn.gamma, C), dbeta = vec(G + o.bn.beta, C),
           one = vec(const_cast<T*>(ctx.ones), rows);
      if (ctx.training) {
        auto s1 = vec(w.s1.data(), C), s2 = vec(w.s2.data(), C);
        batchnorm_backward_train(dy, dgamma, dbeta, dy, xh, inv, gamma, one, sc, s1, s2);
      } else {
        batchnorm_backward_eval(dy, dgamma, dbeta, dy, xh, inv, gamma, one, sc);
      }
      if (din)
        for (std::size_t i = 0; i < n; ++i) din[i] += dout[i];
      break;
    }
    case OpKind::Conv: {
      const std::size_t orows = B * o.out.pixels();
      auto dy = mat(dout, orows, o.conv.cout);
      auto dW = o.conv.W(G);
      auto db = o.conv.bias(G);
      auto one = vec(const_cast<T*>(ctx.ones), orows);
      if (o.pointwise()) {
        auto x = mat(const_cast<T*>(in), rows, C);
        if (din) {
          auto dx = mat(din, rows, C);
          linear_backward(&dx, dW, db, dy, x, o.conv.W(P), one, T(1));
        } else {
          linear_backward<T>(nullptr, dW, db, dy, x, o.conv.W(P), one);
        }
      } else {
        auto col = mat(w.col.data(), orows, o.conv.patch());
        if (din) {
          auto dcol = mat(ctx.scratch, orows, o.conv.patch());
          linear_backward(&dcol, dW, db, dy, col, o.conv.W(P), one);
          col2im(din, ctx.scratch, o.conv.g, B, C);
        } else {
          linear_backward<T>(nullptr, dW, db, dy, col, o.conv.W(P), one);
        }
      }
      break;
    }
    case OpKind::DwConv: dwconv_backward(din, G, dout, in, o.dw, P, B); break;
    case OpKind::Se: se_backward(w, din, G, dout, in, o, P, B, ctx.ones, ctx.scratch); break;
    case OpKind::Upsample:
      if (din) upsample_backward(din, dout, o.in, B);
      break;
  }
}

// After a training-mode forward of B images: batch norm's running statistics.
template <class T>
void op_update_running(const Op& o, OpWork<T>& w, T* S, std::size_t B, double momentum) {
  if (o.kind != OpKind::BatchNorm) return;
  const std::size_t C = o.in.c;
  auto rm = vec(S + o.bn.mean, C), rv = vec(S + o.bn.var, C);
  auto mean = vec(w.mean.data(), C), var = vec(w.var.data(), C);
  batchnorm_update_running(rm, rv, mean, var, B * o.in.pixels(), momentum);
}

// A sequence of ops, each reading the previous one's output.
struct Chain {
  std::vector<Op> ops;
  FMap in, out;

  explicit Chain(FMap f = {}) : in(f), out(f) {}
  Chain& add(const Op& o) {
    ops.push_back(o);
    out = o.out;
    return *this;
  }
  bool empty() const { return ops.empty(); }

  template <class T>
  struct Work {
    std::vector<OpWork<T>> ops;
    Buffer<T> grad[2];  // op i's output gradient is grad[(n - 1 - i) % 2]
  };
  template <class T>
  void reserve(Work<T>& w, std::size_t B) const {
    w.ops.resize(ops.size());
    std::size_t m = 0;
    for (std::size_t i = 0; i < ops.size(); ++i) {
      op_reserve(ops[i], w.ops[i], B);
      m = std::max(m, ops[i].out.size());
    }
    for (Buffer<T>& g : w.grad) g.assign(B * m, T(0));
  }
  template <class T>
  T* output(Work<T>& w) const {
    return w.ops.back().out.data();
  }
  template <class T>
  T* output_grad(Work<T>& w) const {
    return w.grad[0].data();
  }
  template <class T>
  void forward(Work<T>& w, const T* x, const OpContext<T>& ctx, std::size_t B) const {
    for (std::size_t i = 0; i < ops.size(); ++i)
      op_forward(ops[i], w.ops[i], i == 0 ? x : w.ops[i - 1].out.data(), ctx, B);
  }
  // output_grad() -> din += dL/d x (din may be null).
  template <class T>
  void backward(Work<T>& w, T* din, const OpContext<T>& ctx, std::size_t B) const {
    const std::size_t n = ops.size();
    for (std::size_t i = n; i-- > 0;) {
      T* d = din;
      if (i > 0) {
        d = w.grad[(n - i) % 2].data();
        std::fill(d, d + B * ops[i - 1].out.size(), T(0));
      }
      op_backward(ops[i], w.ops[i], w.grad[(n - 1 - i) % 2].data(), d, ctx, B);
    }
  }
  template <class T>
  void update_running(Work<T>& w, T* S, std::size_t B, double momentum) const {
    for (std::size_t i = 0; i < ops.size(); ++i) op_update_running(ops[i], w.ops[i], S, B, momentum);
  }
  void param_groups(const std::string& prefix, std::vector<ParamRange>& g) const {
    for (std::size_t i = 0; i < ops.size(); ++i) op_param_groups(ops[i], prefix + "." + std::to_string(i), g);
  }
  template <class T>
  void initialize(T* P, T* S, Init init, double std_dev, std::mt19937_64& rng) const {
    for (const Op& o : ops) op_initialize(o, P, S, init, std_dev, rng);
  }
  std::size_t scratch_size() const {
    std::size_t m = 0;
    for (const Op& o : ops) m = std::max(m, op_scratch_size(o));
    return m;
  }
  std::size_t max_pixels() const {
    std::size_t m = in.pixels();
    for (const Op& o : ops) m = std::max(m, op_max_pixels(o));
    return m;
  }
};

}  // namespace vae
