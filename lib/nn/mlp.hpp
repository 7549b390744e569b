// A stack of Linear layers, each followed by the same activation.
#pragma once

#include <vector>

#include "nn/params.hpp"
#include "tensor/activation.hpp"
#include "tensor/linear.hpp"

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

  // Activations of one batch: pre- and post-activation of each layer, and the
  // gradient w.r.t. each post-activation (reused for the pre-activation).
  struct Work {
    std::vector<Activation2<T>> pre, post, grad;
  };
  void reserve(Work& w, std::size_t max_batch) const {
    w.pre.resize(layers.size());
    w.post.resize(layers.size());
    w.grad.resize(layers.size());
    for (std::size_t i = 0; i < layers.size(); ++i) {
      w.pre[i].reserve(max_batch, layers[i].out);
      w.post[i].reserve(max_batch, layers[i].out);
      w.grad[i].reserve(max_batch, layers[i].out);
    }
  }

  // in [B, in] -> w.post.back() [B, out]
  void forward(Work& w, const MatView<T>& in, T* params, std::size_t B) const {
    for (std::size_t i = 0; i < layers.size(); ++i) {
      auto pre = w.pre[i].view(B);
      auto post = w.post[i].view(B);
      auto W = layers[i].W(params);
      auto b = layers[i].bias(params);
      if (i == 0) linear_forward(pre, in, W, b);
      else linear_forward(pre, w.post[i - 1].view(B), W, b);
      activation_forward(post, pre, act);
    }
  }

  // Expects dL/d(post.back()) in w.grad.back(); accumulates parameter gradients and
  // writes dL/d(in) into din when given; tells sink (when given) of each layer once done.
  void backward(Work& w, MatView<T>* din, const MatView<T>& in, T* params, T* grads, std::size_t B,
                const VecView<T>& ones, GradSink<T>* sink = nullptr) const {
    for (std::size_t i = layers.size(); i-- > 0;) {
      auto g = w.grad[i].view(B);
      activation_backward(g, g, w.pre[i].view(B), w.post[i].view(B), act);
      auto dW = layers[i].W(grads);
      auto db = layers[i].bias(grads);
      if (i > 0) {
        auto dprev = w.grad[i - 1].view(B);
        linear_backward(&dprev, dW, db, g, w.post[i - 1].view(B), layers[i].W(params), ones);
      } else {
        linear_backward(din, dW, db, g, in, layers[i].W(params), ones);
      }
      if (sink) sink->ready(layers[i].w, layers[i].size());
    }
  }
};

}  // namespace vae
