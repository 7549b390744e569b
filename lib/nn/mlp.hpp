// A stack of Linear layers, each followed by the same activation.
// Call convention of the nn blocks (nn/conv_net.hpp, nn/made.hpp alike): outputs first,
// then the block's work, the inputs, the parameters (and gradients), the state, the batch
// size and the mode; an optional GradSink last.
#pragma once

#include <vector>

#include "nn/linear.hpp"
#include "tensor/activation.hpp"

namespace vae {

template <class T>
struct Mlp {
  std::vector<Linear> layers;
  Activation act = Activation::ReLU;

  // sizes = {in, h1, ..., hk}: k layers.
  void build(ParamLayout& layout, const std::vector<std::size_t>& sizes, Activation a) {
    act = a;
    layers.clear();
    for (std::size_t i = 0; i + 1 < sizes.size(); ++i)
      layers.push_back(Linear::make(layout, sizes[i], sizes[i + 1]));
  }
  std::size_t out_size() const { return layers.back().out; }

  // Activations of one batch: the pre-activation of each layer; the post-activation of
  // each layer but the last (that one is the caller's `out`) and the gradient w.r.t. it
  // (reused for the pre-activation).
  struct Work {
    std::vector<Activation2<T>> pre, post, grad;
    Buffer<T> ones;  // [B]: bias gradients as a gemv
  };
  void reserve(Work& w, std::size_t max_batch) const {
    const std::size_t n = layers.size();
    w.pre.resize(n);
    w.post.resize(n - 1);
    w.grad.resize(n - 1);
    for (std::size_t i = 0; i < n; ++i) w.pre[i].reserve(max_batch, layers[i].out);
    for (std::size_t i = 0; i + 1 < n; ++i) {
      w.post[i].reserve(max_batch, layers[i].out);
      w.grad[i].reserve(max_batch, layers[i].out);
    }
    w.ones.assign(max_batch, T(1));
  }

  // in [B, in] -> out [B, out_size()] (backward reads both again)
  void forward(MatView<T>& out, Work& w, const MatView<T>& in, T* P, std::size_t B) const {
    const std::size_t n = layers.size();
    for (std::size_t i = 0; i < n; ++i) {
      auto pre = w.pre[i].view(B);
      auto post = i + 1 < n ? w.post[i].view(B) : out;
      if (i == 0) linear_layer_forward(pre, in, layers[i], P);
      else linear_layer_forward(pre, w.post[i - 1].view(B), layers[i], P);
      activation_forward(post, pre, act);
    }
  }

  // dout = dL/d(out) [B, out_size()] (overwritten: it becomes dL/d(pre) of the last layer)
  // -> din = dL/d(in) when given; accumulates the parameter gradients into G; tells sink
  // (when given) of each layer once its gradient is final.
  void backward(MatView<T>* din, Work& w, MatView<T>& dout, const MatView<T>& out, const MatView<T>& in, T* P,
                T* G, std::size_t B, GradSink<T>* sink = nullptr) const {
    const std::size_t n = layers.size();
    auto ones = vec(w.ones.data(), B);
    for (std::size_t i = n; i-- > 0;) {
      auto g = i + 1 < n ? w.grad[i].view(B) : dout;
      auto post = i + 1 < n ? w.post[i].view(B) : out;
      activation_backward(g, g, w.pre[i].view(B), post, act);
      if (i > 0) {
        auto dprev = w.grad[i - 1].view(B);
        linear_layer_backward(&dprev, g, w.post[i - 1].view(B), layers[i], P, G, ones, T(0), sink);
      } else {
        linear_layer_backward(din, g, in, layers[i], P, G, ones, T(0), sink);
      }
    }
  }
};

}  // namespace vae
