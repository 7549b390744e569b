// The convolutional encoder and decoder of the conv VAE (--arch conv), channels-last as
// nn/conv.hpp. With channels {c1, ..., cn}, kernel k, stride 2 and padding (k-1)/2:
//   encoder  x [B, H, W, 1] -> n x (Conv2d -> BatchNorm2d -> act) -> h [B, Hn*Wn*cn]
//   decoder  z -> Linear(latent, Hn*Wn*cn) -> n-1 x (ConvTranspose2d -> BatchNorm2d -> act)
//            -> ConvTranspose2d(c1, 1): the likelihood's mean (and a second such head for a
//            per-pixel log sigma), with the output padding of each transposed convolution
//            chosen so that the decoder retraces the encoder's sizes exactly.
// For MNIST and the preset {32, 64, 128, 256}, k = 3 this is the model of
// ../shared/bench/torch_vae_baseline.py --arch conv: 28 -> 14 -> 7 -> 4 -> 2, heads from
// 1024 features, and back 2 -> 4 -> 7 -> 14 -> 28 with output padding 1, 0, 1, 1.
// (Its flatten is channels-first, ours channels-last: the heads' weight columns are a
// permutation of PyTorch's, the same function and the same initial distribution.)
// Batch norm (nn/batchnorm.hpp, BatchNorm2d semantics): batch and pixel statistics in
// training, updating the running ones as PyTorch does in the forward pass; the running
// statistics in evaluation. The conv before it keeps its bias, as PyTorch's, so the
// parameter counts agree.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "nn/batchnorm.hpp"
#include "nn/conv.hpp"
#include "nn/linear.hpp"
#include "tensor/activation.hpp"

namespace vae {

// The output padding that makes a stride-s transposed convolution of `in` give `target`.
inline std::size_t output_padding_for(std::size_t in, std::size_t target, std::size_t k, std::size_t s,
                                      std::size_t p) {
  const long natural = long(in - 1) * long(s) - 2 * long(p) + long(k);
  const long op = long(target) - natural;
  if (op < 0 || op >= long(s))
    throw std::invalid_argument("conv decoder: no output padding maps " + std::to_string(in) + " to " +
                                std::to_string(target) + " with kernel " + std::to_string(k));
  return std::size_t(op);
}

// Batch norm + activation over a [B*pixels, C] matrix, and the buffers one layer keeps.
template <class T>
struct ConvBlockWork {
  Activation2<T> col, pre, bn, post, grad, xhat;  // per image rows: [B, size]
  Buffer<T> mean, var, inv_std, s1, s2;
  void reserve(std::size_t B, std::size_t col_size, std::size_t out_size, std::size_t C, bool norm) {
    col.reserve(B, col_size);
    pre.reserve(B, out_size);
    post.reserve(B, out_size);
    grad.reserve(B, out_size);
    bn.reserve(norm ? B : 0, out_size);
    xhat.reserve(norm ? B : 0, out_size);
    for (Buffer<T>* v : {&mean, &var, &inv_std, &s1, &s2}) v->assign(norm ? C : 0, T(0));
  }
};

// w.pre [rows, C] -> post [rows, C] (w.post, or the caller's buffer for a block's last layer):
// batch norm (training: batch statistics, running ones updated) and act.
template <class T>
void norm_act_forward(T* post_out, ConvBlockWork<T>& w, const BatchNorm& n, Activation act, T* P, T* S,
                      std::size_t rows, std::size_t C, bool training, const T* ones) {
  auto pre = mat(w.pre.ptr(), rows, C), y = mat(w.bn.ptr(), rows, C), xhat = mat(w.xhat.ptr(), rows, C);
  auto post = mat(post_out, rows, C);
  auto inv_std = vec(w.inv_std.data(), C);
  auto gamma = vec(P + n.gamma, C), beta = vec(P + n.beta, C);
  auto rm = vec(S + n.mean, C), rv = vec(S + n.var, C);
  if (training) {
    auto mean = vec(w.mean.data(), C), var = vec(w.var.data(), C);
    batchnorm_forward_train(y, xhat, mean, var, inv_std, pre, gamma, beta, vec(const_cast<T*>(ones), rows));
    batchnorm_update_running(rm, rv, mean, var, rows);
  } else {
    batchnorm_forward_eval(y, xhat, inv_std, pre, gamma, beta, rm, rv);
  }
  activation_forward(post, y, act);
}

// grad = dL/d(post) [rows, C] -> dL/d(pre) (in place); gamma and beta gradients. post: the
// forward's output. The layer's bn buffer serves as scratch once act is differentiated.
template <class T>
void norm_act_backward(T* grad, ConvBlockWork<T>& w, const T* post, const BatchNorm& n, Activation act, T* P,
                       T* G, std::size_t rows, std::size_t C, bool training, const T* ones) {
  auto g = mat(grad, rows, C), y = mat(w.bn.ptr(), rows, C), xhat = mat(w.xhat.ptr(), rows, C);
  activation_backward(g, g, y, mat(const_cast<T*>(post), rows, C), act);
  auto dgamma = vec(G + n.gamma, C), dbeta = vec(G + n.beta, C);
  auto inv_std = vec(w.inv_std.data(), C);
  auto gamma = vec(P + n.gamma, C);
  auto one = vec(const_cast<T*>(ones), rows);
  if (training) {
    auto s1 = vec(w.s1.data(), C), s2 = vec(w.s2.data(), C);
    batchnorm_backward_train(g, dgamma, dbeta, g, xhat, inv_std, gamma, one, y, s1, s2);
  } else {
    batchnorm_backward_eval(g, dgamma, dbeta, g, xhat, inv_std, gamma, one, y);
  }
}

struct ConvShape {
  std::size_t rows = 28, cols = 28;  // image size (one channel)
  std::vector<std::size_t> channels{32, 64, 128, 256};
  std::size_t kernel = 3;
  std::size_t stride() const { return 2; }
  std::size_t pad() const { return (kernel - 1) / 2; }
};

template <class T>
struct ConvEncoder {
  std::vector<Conv2d> convs;
  std::vector<BatchNorm> norms;
  Activation act = Activation::ReLU;

  void build(ParamLayout& params, ParamLayout& state, const ConvShape& s, Activation a) {
    act = a;
    convs.clear();
    norms.clear();
    std::size_t h = s.rows, wd = s.cols, cin = 1;
    for (std::size_t c : s.channels) {
      convs.push_back(Conv2d::make(params, cin, c, s.kernel, s.stride(), s.pad(), h, wd));
      norms.push_back(BatchNorm::make(params, state, c));
      h = convs.back().g.hs;
      wd = convs.back().g.ws;
      cin = c;
    }
  }
  std::size_t out_size() const { return convs.back().out_size(); }
  std::size_t max_rows_per_image() const {
    std::size_t m = 0;
    for (const Conv2d& c : convs) m = std::max(m, c.out_pixels());
    return m;
  }
  void initialize(T* P, T* S, Init init, double std_dev, std::mt19937_64& rng) const {
    for (const Conv2d& c : convs) c.initialize(P, init, std_dev, rng);
    for (const BatchNorm& n : norms) n.initialize(P, S);
  }

  struct Work {
    std::vector<ConvBlockWork<T>> layers;
    Buffer<T> dcol, ones;
  };
  void reserve(Work& w, std::size_t B) const {
    w.layers.resize(convs.size());
    std::size_t dcol = 0;
    for (std::size_t i = 0; i < convs.size(); ++i) {
      w.layers[i].reserve(B, convs[i].col_size(), convs[i].out_size(), convs[i].cout, true);
      dcol = std::max(dcol, convs[i].col_size());
    }
    w.dcol.assign(B * dcol, T(0));
    w.ones.assign(B * max_rows_per_image(), T(1));
  }
  // x [B, H*W] -> out [B, out_size()] (backward reads it again). training: batch statistics
  // (running ones updated), else the running ones.
  void forward(MatView<T>& out, Work& w, const MatView<T>& x, T* P, T* S, std::size_t B, bool training) const {
    const std::size_t n = convs.size();
    for (std::size_t i = 0; i < n; ++i) {
      ConvBlockWork<T>& L = w.layers[i];
      const T* in = i == 0 ? x.data() : w.layers[i - 1].post.ptr();
      conv2d_forward(L.pre.ptr(), L.col.ptr(), in, convs[i], P, B);
      norm_act_forward(i + 1 < n ? L.post.ptr() : out.data(), L, norms[i], act, P, S, B * convs[i].out_pixels(),
                       convs[i].cout, training, w.ones.data());
    }
  }

  // dout = dL/d(out) (overwritten) -> the parameter gradients (the input is data: no
  // gradient). The mode must be the forward's.
  void backward(Work& w, MatView<T>& dout, const MatView<T>& out, T* P, T* G, std::size_t B,
                bool training) const {
    const std::size_t n = convs.size();
    for (std::size_t i = n; i-- > 0;) {
      ConvBlockWork<T>& L = w.layers[i];
      T* g = i + 1 < n ? L.grad.ptr() : dout.data();
      const T* post = i + 1 < n ? L.post.ptr() : out.data();
      norm_act_backward(g, L, post, norms[i], act, P, G, B * convs[i].out_pixels(), convs[i].cout, training,
                        w.ones.data());
      T* din = i > 0 ? w.layers[i - 1].grad.ptr() : nullptr;
      conv2d_backward(din, w.dcol.data(), G, g, L.col.ptr(), convs[i], P, B, w.ones.data());
    }
  }
};

template <class T>
struct ConvDecoder {
  Linear fc;                             // latent -> Hn*Wn*cn
  std::vector<ConvTranspose2d> deconvs;  // the last one is the mean head (1 channel)
  std::vector<BatchNorm> norms;          // after all but the last
  ConvTranspose2d logsig;                // per-pixel log sigma head, beside the mean head
  bool has_logsig = false;
  Activation act = Activation::ReLU;

  // enc: the encoder of the same shape (its sizes are retraced).
  void build(ParamLayout& params, ParamLayout& state, const ConvShape& s, const ConvEncoder<T>& enc,
             std::size_t latent, bool per_pixel_sigma, Activation a) {
    act = a;
    deconvs.clear();
    norms.clear();
    has_logsig = per_pixel_sigma;
    const std::size_t n = enc.convs.size();
    fc = Linear::make(params, latent, enc.out_size());
    for (std::size_t i = n; i-- > 0;) {
      const Conv2d& e = enc.convs[i];  // maps (hb, wb, cin) -> (hs, ws, cout); we go back
      const std::size_t op_h = output_padding_for(e.g.hs, e.g.hb, s.kernel, s.stride(), s.pad());
      const std::size_t op_w = output_padding_for(e.g.ws, e.g.wb, s.kernel, s.stride(), s.pad());
      auto make = [&](std::size_t cout) {
        return ConvTranspose2d::make(params, e.cout, cout, s.kernel, s.stride(), s.pad(), op_h, op_w, e.g.hs,
                                     e.g.ws);
      };
      deconvs.push_back(make(e.cin));
      if (i > 0) norms.push_back(BatchNorm::make(params, state, e.cin));
      else if (per_pixel_sigma) logsig = make(1);
    }
  }
  const ConvTranspose2d& last() const { return deconvs.back(); }
  std::size_t max_rows_per_image() const {
    std::size_t m = 0;
    for (const ConvTranspose2d& c : deconvs) m = std::max(m, c.out_pixels());
    return m;
  }
  void initialize(T* P, T* S, Init init, double std_dev, std::mt19937_64& rng) const {
    init_linear(P, fc, init, std_dev, rng);
    for (const ConvTranspose2d& c : deconvs) c.initialize(P, init, std_dev, rng);
    if (has_logsig) logsig.initialize(P, init, std_dev, rng);
    for (const BatchNorm& n : norms) n.initialize(P, S);
  }

  // layers[i] for the hidden deconvolutions (i < n-1); fc output and its gradient.
  struct Work {
    Activation2<T> h0, dh0;
    std::vector<ConvBlockWork<T>> layers;
    Activation2<T> col_out, col_logsig;  // the heads' (col2im) scratch
    Buffer<T> dcol, ones, ones_b;
  };
  void reserve(Work& w, std::size_t B) const {
    w.h0.reserve(B, fc.out);
    w.dh0.reserve(B, fc.out);
    w.layers.resize(deconvs.size() - 1);
    std::size_t dcol = 0;
    for (std::size_t i = 0; i < deconvs.size(); ++i) {
      dcol = std::max(dcol, deconvs[i].col_size());
      if (i + 1 < deconvs.size())
        w.layers[i].reserve(B, deconvs[i].col_size(), deconvs[i].out_size(), deconvs[i].cout, true);
    }
    w.col_out.reserve(B, last().col_size());
    w.col_logsig.reserve(has_logsig ? B : 0, logsig.col_size());
    w.dcol.assign(B * dcol, T(0));
    w.ones.assign(B * max_rows_per_image(), T(1));
    w.ones_b.assign(B, T(1));
  }

  // z [B, latent] -> out [B, H*W] (the mean head) and, with a per-pixel sigma, raw [B, H*W].
  void forward(MatView<T>& out_v, MatView<T>& raw_v, Work& w, const MatView<T>& z, T* P, T* S, std::size_t B,
               bool training) const {
    T* out = out_v.data();
    T* raw = raw_v.data();
    auto h0 = w.h0.view(B);
    linear_layer_forward(h0, z, fc, P);
    const T* in = w.h0.ptr();
    for (std::size_t i = 0; i + 1 < deconvs.size(); ++i) {
      ConvBlockWork<T>& L = w.layers[i];
      conv_transpose2d_forward(L.pre.ptr(), L.col.ptr(), in, deconvs[i], P, B);
      norm_act_forward(L.post.ptr(), L, norms[i], act, P, S, B * deconvs[i].out_pixels(), deconvs[i].cout,
                       training, w.ones.data());
      in = L.post.ptr();
    }
    conv_transpose2d_forward(out, w.col_out.ptr(), in, last(), P, B);
    if (has_logsig) conv_transpose2d_forward(raw, w.col_logsig.ptr(), in, logsig, P, B);
  }

  // dout (and draw with a per-pixel sigma) [B, H*W] -> dz [B, latent] and the parameter gradients.
  void backward(MatView<T>& dz, Work& w, const MatView<T>& dout_v, const MatView<T>& draw_v,
                const MatView<T>& z, T* P, T* G, std::size_t B, bool training) const {
    const T* dout = dout_v.data();
    const T* draw = draw_v.data();
    const std::size_t n = deconvs.size();
    auto in_of = [&](std::size_t i) { return i == 0 ? w.h0.ptr() : w.layers[i - 1].post.ptr(); };
    auto din_of = [&](std::size_t i) { return i == 0 ? w.dh0.ptr() : w.layers[i - 1].grad.ptr(); };
    conv_transpose2d_backward(din_of(n - 1), w.dcol.data(), G, dout, in_of(n - 1), last(), P, B, w.ones.data());
    if (has_logsig)
      conv_transpose2d_backward(din_of(n - 1), w.dcol.data(), G, draw, in_of(n - 1), logsig, P, B,
                                w.ones.data(), T(1));
    for (std::size_t i = n - 1; i-- > 0;) {
      ConvBlockWork<T>& L = w.layers[i];
      norm_act_backward(L.grad.ptr(), L, L.post.ptr(), norms[i], act, P, G, B * deconvs[i].out_pixels(),
                        deconvs[i].cout, training, w.ones.data());
      conv_transpose2d_backward(din_of(i), w.dcol.data(), G, L.grad.ptr(), in_of(i), deconvs[i], P, B,
                                w.ones.data());
    }
    linear_layer_backward(&dz, w.dh0.view(B), z, fc, P, G, vec(w.ones_b.data(), B));
  }
};

}  // namespace vae
