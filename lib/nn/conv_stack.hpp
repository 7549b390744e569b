// A plain stack of convolutions (nn/conv.hpp, channels-last) with optional ReLU on each
// layer's input and residual connections: what the VQ-VAE's encoder and decoder are made of
// (van den Oord et al. 2017: strided convolutions, then residual blocks
// ReLU -> 3x3 conv -> ReLU -> 1x1 conv, added to the block's input).
//
// Layer i reads a(i) (a(0) = the stack's input, a(i) = layer i-1's output), applies ReLU to it
// when relu_in, convolves, and adds a(res_from) when res_from >= 0 (same size). No batch norm,
// so no state and one mode.
#pragma once

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "nn/conv.hpp"

namespace vae {

struct ConvLayer {
  bool transposed = false, relu_in = false;
  int res_from = -1;  // a(res_from) is added to the output
  Conv2d conv;
  ConvTranspose2d convt;
  std::size_t h_out = 0, w_out = 0, c_out = 0;
  std::size_t in_size() const { return transposed ? convt.in_size() : conv.in_size(); }
  std::size_t out_size() const { return transposed ? convt.out_size() : conv.out_size(); }
  std::size_t col_size() const { return transposed ? convt.col_size() : conv.col_size(); }
  std::size_t out_pixels() const { return transposed ? convt.out_pixels() : conv.out_pixels(); }
  std::size_t in_pixels() const { return transposed ? convt.g.small_pixels() : conv.g.big_pixels(); }
};

struct ConvStack {
  std::vector<ConvLayer> layers;
  std::size_t h = 0, w = 0, c = 0;  // the current output's geometry while building

  void start(std::size_t height, std::size_t width, std::size_t channels) {
    layers.clear();
    h = height;
    w = width;
    c = channels;
  }
  // Appends a convolution of the current output; returns its index.
  std::size_t conv(ParamLayout& layout, std::size_t cout, std::size_t k, std::size_t stride, std::size_t pad,
                   bool relu_in, int res_from = -1) {
    ConvLayer l;
    l.relu_in = relu_in;
    l.res_from = res_from;
    l.conv = Conv2d::make(layout, c, cout, k, stride, pad, h, w);
    return push(l, l.conv.g.hs, l.conv.g.ws, cout);
  }
  std::size_t conv_transpose(ParamLayout& layout, std::size_t cout, std::size_t k, std::size_t stride,
                             std::size_t pad, std::size_t h_target, std::size_t w_target, bool relu_in) {
    ConvLayer l;
    l.transposed = true;
    l.relu_in = relu_in;
    const long nat_h = long(h - 1) * long(stride) - 2 * long(pad) + long(k);
    const long nat_w = long(w - 1) * long(stride) - 2 * long(pad) + long(k);
    if (long(h_target) < nat_h || long(w_target) < nat_w)
      throw std::invalid_argument("conv stack: a transposed convolution cannot reach the target size");
    l.convt = ConvTranspose2d::make(layout, c, cout, k, stride, pad, std::size_t(long(h_target) - nat_h),
                                    std::size_t(long(w_target) - nat_w), h, w);
    return push(l, l.convt.g.hb, l.convt.g.wb, cout);
  }
  // A residual block on the current output: ReLU -> kxk conv (c -> hidden) -> ReLU -> 1x1 conv
  // (hidden -> c), plus the block's input.
  void residual_block(ParamLayout& layout, std::size_t hidden, std::size_t k) {
    const int input = int(layers.size());  // a(input) is the block's input
    const std::size_t channels = c;
    conv(layout, hidden, k, 1, (k - 1) / 2, true);
    conv(layout, channels, 1, 1, 0, true, input);
  }
  std::size_t in_size() const { return layers.front().in_size(); }
  std::size_t out_size() const { return layers.back().out_size(); }

  template <class T>
  void initialize(T* P, Init init, double std_dev, std::mt19937_64& rng) const {
    for (const ConvLayer& l : layers) {
      if (l.transposed) l.convt.initialize(P, init, std_dev, rng);
      else l.conv.initialize(P, init, std_dev, rng);
    }
  }

 private:
  std::size_t push(ConvLayer& l, std::size_t ho, std::size_t wo, std::size_t cout) {
    if (l.res_from >= 0 && layers[std::size_t(l.res_from)].in_size() != ho * wo * cout)
      throw std::invalid_argument("conv stack: residual of another size");
    l.h_out = ho;
    l.w_out = wo;
    l.c_out = cout;
    h = ho;
    w = wo;
    c = cout;
    layers.push_back(l);
    return layers.size() - 1;
  }
};

// The buffers of a stack for up to B images.
template <class T>
struct ConvStackWork {
  std::vector<Activation2<T>> out, grad, rin, col;  // per layer: output, its gradient, ReLU'd input, patches
  Activation2<T> dtmp, dcol;
  Buffer<T> ones;
  void reserve(const ConvStack& s, std::size_t B) {
    const std::size_t n = s.layers.size();
    out.resize(n);
    grad.resize(n);
    rin.resize(n);
    col.resize(n);
    std::size_t max_in = 0, max_col = 0, max_pix = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const ConvLayer& l = s.layers[i];
      out[i].reserve(B, l.out_size());
      grad[i].reserve(B, l.out_size());
      rin[i].reserve(l.relu_in ? B : 0, l.in_size());
      col[i].reserve(l.transposed ? 0 : B, l.transposed ? 0 : l.col_size());
      max_in = std::max(max_in, l.in_size());
      max_col = std::max(max_col, l.col_size());
      max_pix = std::max({max_pix, l.out_pixels(), l.in_pixels()});
    }
    dtmp.reserve(B, max_in);
    dcol.reserve(B, max_col);
    ones.assign(B * max_pix, T(1));
  }
  T* output() { return out.back().ptr(); }
  T* output_grad() { return grad.back().ptr(); }
};

// Layer i's input a(i).
template <class T>
const T* stack_input(ConvStackWork<T>& w, const T* in, std::size_t i) {
  return i == 0 ? in : w.out[i - 1].ptr();
}

// in [B, in_size] -> w.output() [B, out_size].
template <class T>
void conv_stack_forward(ConvStackWork<T>& w, const ConvStack& s, const T* in, T* P, std::size_t B) {
  for (std::size_t i = 0; i < s.layers.size(); ++i) {
    const ConvLayer& l = s.layers[i];
    const T* a = stack_input(w, in, i);
    if (l.relu_in) {
      T* r = w.rin[i].ptr();
      for (std::size_t j = 0; j < B * l.in_size(); ++j) r[j] = a[j] > T(0) ? a[j] : T(0);
      a = r;
    }
    T* o = w.out[i].ptr();
    if (l.transposed) conv_transpose2d_forward(o, w.dcol.ptr(), a, l.convt, P, B);
    else conv2d_forward(o, w.col[i].ptr(), a, l.conv, P, B);
    if (l.res_from >= 0) {
      const T* r = stack_input(w, in, std::size_t(l.res_from));
      for (std::size_t j = 0; j < B * l.out_size(); ++j) o[j] += r[j];
    }
  }
}

// Given w.output_grad(): grads G += d/dparams, and din (when not null) = d/d(in).
// The inner gradients are accumulated (a layer's input feeds it and maybe a residual).
template <class T>
void conv_stack_backward(ConvStackWork<T>& w, const ConvStack& s, const T* in, T* din, T* P, T* G,
                         std::size_t B) {
  const std::size_t n = s.layers.size();
  for (std::size_t i = 0; i + 1 < n; ++i) std::fill(w.grad[i].data.begin(), w.grad[i].data.end(), T(0));
  if (din) std::fill(din, din + B * s.in_size(), T(0));
  for (std::size_t i = n; i-- > 0;) {
    const ConvLayer& l = s.layers[i];
    const T* g = w.grad[i].ptr();
    T* g_in = i == 0 ? din : w.grad[i - 1].ptr();  // d a(i)
    if (l.res_from >= 0) {
      T* g_res = l.res_from == 0 ? din : w.grad[std::size_t(l.res_from) - 1].ptr();
      if (g_res)
        for (std::size_t j = 0; j < B * l.out_size(); ++j) g_res[j] += g[j];
    }
    const T* a = stack_input(w, in, i);
    const T* used = l.relu_in ? w.rin[i].ptr() : a;
    T* dt = g_in ? w.dtmp.ptr() : nullptr;
    if (l.transposed) conv_transpose2d_backward(dt, w.dcol.ptr(), G, g, used, l.convt, P, B, w.ones.data());
    else conv2d_backward(dt, w.dcol.ptr(), G, g, w.col[i].ptr(), l.conv, P, B, w.ones.data());
    if (!g_in) continue;
    for (std::size_t j = 0; j < B * l.in_size(); ++j) g_in[j] += l.relu_in && !(a[j] > T(0)) ? T(0) : dt[j];
  }
}

}  // namespace vae
