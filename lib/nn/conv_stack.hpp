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
  // The layer whose backward pass reaches the gradient of this layer's input a(i) first
  // (backward runs from the last layer down): it sets that gradient, the others add to it.
  // Layer i itself, or the last residual that reads a(i).
  std::size_t grad_in_first = 0;
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
    l.grad_in_first = layers.size();
    if (l.res_from >= 0) layers[std::size_t(l.res_from)].grad_in_first = layers.size();
    layers.push_back(l);
    return layers.size() - 1;
  }
};

// Images per chunk of a stack's forward and backward passes (ConvStackWork).
constexpr std::size_t kConvStackChunk = 8;

// The buffers of a stack for up to B images. Forward and backward go through the batch in
// chunks of `chunk` images, each chunk through every layer while its activations are in
// cache; a layer's patches (im2col) and ReLU'd input are made again in backward instead of
// being kept: at B = 128 they would be megabytes per layer, written once and read back from
// memory. Only the layers' outputs and their gradients are batch-sized.
template <class T>
struct ConvStackWork {
  std::vector<Activation2<T>> out, grad;  // per layer: output [B, out_size] and its gradient
  Activation2<T> col, rin, dtmp, dcol;    // a chunk's patches, ReLU'd input, input gradient, patch gradient
  Buffer<T> ones;
  std::size_t chunk = 1;
  void reserve(const ConvStack& s, std::size_t B, std::size_t chunk_images = kConvStackChunk) {
    const std::size_t n = s.layers.size();
    chunk = std::max<std::size_t>(1, std::min(B, chunk_images));
    out.resize(n);
    grad.resize(n);
    std::size_t max_in = 0, max_col = 0, max_pix = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const ConvLayer& l = s.layers[i];
      out[i].reserve(B, l.out_size());
      grad[i].reserve(B, l.out_size());
      max_in = std::max(max_in, l.in_size());
      max_col = std::max(max_col, l.col_size());
      max_pix = std::max({max_pix, l.out_pixels(), l.in_pixels()});
    }
    col.reserve(chunk, max_col);
    rin.reserve(chunk, max_in);
    dtmp.reserve(chunk, max_in);
    dcol.reserve(chunk, max_col);
    ones.assign(chunk * max_pix, T(1));
  }
  T* output() { return out.back().ptr(); }
  T* output_grad() { return grad.back().ptr(); }
};

// out [N] = max(in, 0).
template <class T>
void relu(T* out, const T* in, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out[i] = in[i] > T(0) ? in[i] : T(0);
}
// x [n] += y [n].
template <class T>
void add_to(T* x, const T* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) x[i] += y[i];
}
// x [n] += y [n] where a [n] > 0: the gradient y of max(a, 0) added into x's. Written with the
// condition alone in the loop and `omp simd` (x, y and a never overlap), it vectorizes; the
// form with the layer's relu flag inside the loop ran one element at a time (9% of a VQ-VAE
// training step).
template <class T>
void add_relu_grad(T* x, const T* y, const T* a, std::size_t n) {
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) x[i] += a[i] > T(0) ? y[i] : T(0);
}
// x = y where a > 0, else 0: add_relu_grad into a zero x, without the zeroing pass.
template <class T>
void set_relu_grad(T* x, const T* y, const T* a, std::size_t n) {
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) x[i] = a[i] > T(0) ? y[i] : T(0);
}
// Two channels-last maps side by side: out [N, Ca + Cb] = [a [N, Ca], b [N, Cb]] per pixel
// (PyTorch's torch.cat along the channels), and its adjoint, which splits d [N, Ca + Cb].
template <class T>
void concat_channels(T* out, const T* a, std::size_t Ca, const T* b, std::size_t Cb, std::size_t N) {
  for (std::size_t n = 0; n < N; ++n) {
    std::copy(a + n * Ca, a + (n + 1) * Ca, out + n * (Ca + Cb));
    std::copy(b + n * Cb, b + (n + 1) * Cb, out + n * (Ca + Cb) + Ca);
  }
}
template <class T>
void split_channels(T* da, std::size_t Ca, T* db, std::size_t Cb, const T* d, std::size_t N) {
  for (std::size_t n = 0; n < N; ++n) {
    std::copy(d + n * (Ca + Cb), d + n * (Ca + Cb) + Ca, da + n * Ca);
    std::copy(d + n * (Ca + Cb) + Ca, d + (n + 1) * (Ca + Cb), db + n * Cb);
  }
}

// Layer i's input a(i).
template <class T>
const T* stack_input(ConvStackWork<T>& w, const T* in, std::size_t i) {
  return i == 0 ? in : w.out[i - 1].ptr();
}

// The patches conv layer l reads from the n images at a: im2col into w.col (the ReLU applied
// while copying), or for a 1x1 layer its input itself (ReLU'd into w.col when relu_in).
template <class T>
const T* layer_patches(ConvStackWork<T>& w, const ConvLayer& l, const T* a, std::size_t n) {
  if (!l.conv.pointwise()) im2col(w.col.ptr(), a, l.conv.g, n, l.conv.cin, l.relu_in);
  else if (l.relu_in) relu(w.col.ptr(), a, n * l.in_size());
  else return a;
  return w.col.ptr();
}
// A transposed layer's input for the n images at a: a, or its ReLU in w.rin.
template <class T>
const T* transposed_input(ConvStackWork<T>& w, const ConvLayer& l, const T* a, std::size_t n) {
  if (!l.relu_in) return a;
  relu(w.rin.ptr(), a, n * l.in_size());
  return w.rin.ptr();
}

// Layer i's forward pass over images b0 .. b0 + n - 1.
template <class T>
void layer_forward(ConvStackWork<T>& w, const ConvStack& s, const T* in, T* P, std::size_t i, std::size_t b0,
                   std::size_t n) {
  const ConvLayer& l = s.layers[i];
  const T* a = stack_input(w, in, i) + b0 * l.in_size();
  T* o = w.out[i].ptr() + b0 * l.out_size();
  if (l.transposed) conv_transpose2d_forward(o, w.dcol.ptr(), transposed_input(w, l, a, n), l.convt, P, n);
  else conv2d_forward_patches(o, layer_patches(w, l, a, n), l.conv, P, n);
  if (l.res_from >= 0)
    add_to(o, stack_input(w, in, std::size_t(l.res_from)) + b0 * l.out_size(), n * l.out_size());
}

// Layer i's backward pass over images b0 .. b0 + n - 1: G += its parameters' gradient; the
// gradient of its input (and of a residual's source) gets what reaches it: set by the layer
// that reaches it first (ConvLayer::grad_in_first), added by the others.
template <class T>
void layer_backward(ConvStackWork<T>& w, const ConvStack& s, const T* in, T* din, T* P, T* G, std::size_t i,
                    std::size_t b0, std::size_t n) {
  const ConvLayer& l = s.layers[i];
  const T* g = w.grad[i].ptr() + b0 * l.out_size();
  T* g_in = i == 0 ? din : w.grad[i - 1].ptr();  // d a(i)
  if (g_in) g_in += b0 * l.in_size();
  if (l.res_from >= 0) {
    const auto r = std::size_t(l.res_from);
    T* g_res = r == 0 ? din : w.grad[r - 1].ptr();
    if (g_res && s.layers[r].grad_in_first == i) std::copy(g, g + n * l.out_size(), g_res + b0 * l.out_size());
    else if (g_res) add_to(g_res + b0 * l.out_size(), g, n * l.out_size());
  }
  const T* a = stack_input(w, in, i) + b0 * l.in_size();
  const bool first = l.grad_in_first == i;
  // the input gradient straight into g_in when nothing is there yet and no ReLU masks it
  T* dt = !g_in ? nullptr : first && !l.relu_in ? g_in : w.dtmp.ptr();
  if (l.transposed)
    conv_transpose2d_backward(dt, w.dcol.ptr(), G, g, transposed_input(w, l, a, n), l.convt, P, n,
                              w.ones.data());
  else conv2d_backward(dt, w.dcol.ptr(), G, g, layer_patches(w, l, a, n), l.conv, P, n, w.ones.data());
  if (!g_in || dt == g_in) return;
  if (l.relu_in && first) set_relu_grad(g_in, dt, a, n * l.in_size());
  else if (l.relu_in) add_relu_grad(g_in, dt, a, n * l.in_size());
  else add_to(g_in, dt, n * l.in_size());
}

// in [B, in_size] -> w.output() [B, out_size], chunk by chunk.
template <class T>
void conv_stack_forward(ConvStackWork<T>& w, const ConvStack& s, const T* in, T* P, std::size_t B) {
  for (std::size_t b0 = 0; b0 < B; b0 += w.chunk)
    for (std::size_t i = 0; i < s.layers.size(); ++i)
      layer_forward(w, s, in, P, i, b0, std::min(w.chunk, B - b0));
}

// Given w.output_grad(): grads G += d/dparams, and din (when not null) = d/d(in), chunk by
// chunk (the parameters' gradients add up over the chunks). An inner gradient may have two
// sources (a layer's input feeds it and maybe a residual): the first sets it, the other adds.
template <class T>
void conv_stack_backward(ConvStackWork<T>& w, const ConvStack& s, const T* in, T* din, T* P, T* G,
                         std::size_t B) {
  const std::size_t n = s.layers.size();
  for (std::size_t b0 = 0; b0 < B; b0 += w.chunk)
    for (std::size_t i = n; i-- > 0;) layer_backward(w, s, in, din, P, G, i, b0, std::min(w.chunk, B - b0));
}

}  // namespace vae
