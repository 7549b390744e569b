// A stack of dense layers Linear -> [BatchNorm] -> nonlinearity: the deterministic blocks
// of the Ladder VAE and the hierarchical VAE (Sonderby et al. 2016 put batch norm on every
// deterministic layer). With batch norm the Linear has no bias: BN's beta is the bias, and a
// bias before BN would get an exactly-zero gradient (Adam would turn its rounding noise into
// a random walk that the running mean then lags behind). The call convention is the nn
// blocks' (nn/mlp.hpp): outputs, work, inputs, parameters, state, batch size, mode.
#pragma once

#include <string>
#include <vector>
#include <xtensor/xoperation.hpp>

#include "nn/batchnorm.hpp"
#include "nn/linear.hpp"
#include "tensor/activation.hpp"

namespace vae {

// The hidden nonlinearity: one of tensor/activation.hpp's, or leaky ReLU max(x, leak * x),
// the nonlinearity of the LVAE reference code (Lasagne's leaky_rectify, leak 0.01).
struct Nonlinearity {
  Activation act = Activation::ReLU;
  double leak = 0;  // > 0: leaky ReLU (act is then ignored)
};

inline Nonlinearity parse_nonlinearity(const std::string& name) {
  if (name == "leaky-relu") return Nonlinearity{Activation::ReLU, 0.01};
  return Nonlinearity{parse_activation(name), 0};
}

template <class T>
void nonlinearity_forward(MatView<T>& out, const MatView<T>& in, const Nonlinearity& f) {
  if (f.leak > 0) xt::noalias(out) = xt::where(in > T(0), in, T(f.leak) * in);
  else activation_forward(out, in, f.act);
}
// din = dout * f'(in); din may alias dout.
template <class T>
void nonlinearity_backward(MatView<T>& din, const MatView<T>& dout, const MatView<T>& in, const MatView<T>& out,
                           const Nonlinearity& f) {
  if (f.leak > 0) xt::noalias(din) = xt::where(in > T(0), dout, T(f.leak) * dout);
  else activation_backward(din, dout, in, out, f.act);
}

template <class T>
struct BnMlp {
  std::vector<Linear> layers;  // with batch norm: b unused (no bias parameters)
  std::vector<BatchNorm> norms;
  Nonlinearity act;
  bool batchnorm = false;

  // sizes = {in, h1, ..., hk}: k layers.
  void build(ParamLayout& params, ParamLayout& state, const std::vector<std::size_t>& sizes,
             const Nonlinearity& f, bool bn) {
    act = f;
    batchnorm = bn;
    layers.clear();
    norms.clear();
    for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
      if (bn) {
        Linear l;
        l.in = sizes[i];
        l.out = sizes[i + 1];
        l.w = params.take(l.in * l.out);
        l.b = std::size_t(-1);
        layers.push_back(l);
        norms.push_back(BatchNorm::make(params, state, l.out));
      } else {
        layers.push_back(Linear::make(params, sizes[i], sizes[i + 1]));
      }
    }
  }
  std::size_t out_size() const { return layers.back().out; }

  // Weights as init_linear draws them; biases (no batch norm) likewise; gamma 1, beta 0.
  void initialize(T* params, T* state, Init init, double std_dev, std::mt19937_64& rng) const {
    for (const Linear& l : layers) {
      if (!batchnorm) {
        init_linear(params, l, init, std_dev, rng);
        continue;
      }
      init_weights(params + l.w, l.out * l.in, static_cast<T*>(nullptr), 0, l.in, l.out, init, std_dev, rng);
    }
    for (const BatchNorm& n : norms) n.initialize(params, state);
  }

  // Activations of one batch per layer: the Linear output (pre), the normalized value (bn),
  // the output (post; the last layer's is the caller's `out`) and the gradient w.r.t. post
  // (reused down to pre; the last layer's is the caller's `dout`); batch statistics.
  struct Work {
    std::vector<Activation2<T>> pre, bn, post, grad, xhat, scratch;
    std::vector<Buffer<T>> mean, var, inv_std, s1, s2;
    Buffer<T> ones;  // [B]: bias gradients and batch sums as a gemv
  };
  void reserve(Work& w, std::size_t max_batch) const {
    const std::size_t k = layers.size();
    for (auto* v : {&w.pre, &w.bn, &w.xhat, &w.scratch}) v->resize(k);
    for (auto* v : {&w.post, &w.grad}) v->resize(k - 1);
    for (auto* v : {&w.mean, &w.var, &w.inv_std, &w.s1, &w.s2}) v->resize(k);
    for (std::size_t i = 0; i < k; ++i) {
      const std::size_t o = layers[i].out, rows = batchnorm ? max_batch : 0;
      w.pre[i].reserve(max_batch, o);
      if (i + 1 < k) {
        w.post[i].reserve(max_batch, o);
        w.grad[i].reserve(max_batch, o);
      }
      for (auto* a : {&w.bn[i], &w.xhat[i], &w.scratch[i]}) a->reserve(rows, o);
      for (auto* v : {&w.mean[i], &w.var[i], &w.inv_std[i], &w.s1[i], &w.s2[i]})
        v->assign(batchnorm ? o : 0, T(0));
    }
    w.ones.assign(max_batch, T(1));
  }

  // in [B, in] -> out [B, out_size()] (backward reads both again). training: batch
  // statistics; else the running ones in S.
  void forward(MatView<T>& out, Work& w, const MatView<T>& in, T* P, T* S, std::size_t B, bool training) const {
    const std::size_t k = layers.size();
    auto ones = vec(w.ones.data(), B);
    for (std::size_t i = 0; i < k; ++i) {
      const Linear& l = layers[i];
      auto pre = w.pre[i].view(B);
      auto post = i + 1 < k ? w.post[i].view(B) : out;
      auto x = i == 0 ? in : w.post[i - 1].view(B);
      if (!batchnorm) {
        linear_layer_forward(pre, x, l, P);
        nonlinearity_forward(post, pre, act);
        continue;
      }
      blas_gemm(x, l.W(P), pre, false, true, T(1), T(0));
      const BatchNorm& n = norms[i];
      auto y = w.bn[i].view(B), xhat = w.xhat[i].view(B);
      auto inv_std = vec(w.inv_std[i].data(), l.out);
      auto gamma = vec(P + n.gamma, n.n), beta = vec(P + n.beta, n.n);
      if (training) {
        auto mean = vec(w.mean[i].data(), l.out), var = vec(w.var[i].data(), l.out);
        batchnorm_forward_train(y, xhat, mean, var, inv_std, pre, gamma, beta, ones);
      } else {
        batchnorm_forward_eval(y, xhat, inv_std, pre, gamma, beta, vec(S + n.mean, n.n), vec(S + n.var, n.n));
      }
      nonlinearity_forward(post, y, act);
    }
  }

  // dout = dL/d(out) [B, out_size()] (overwritten) -> the parameter gradients added into G
  // and, when din is given, din = dL/d(in) + din_beta * din (din_beta = 1: an input read by
  // two blocks). out, in and the mode must be the forward's.
  void backward(MatView<T>* din, Work& w, MatView<T>& dout, const MatView<T>& out, const MatView<T>& in, T* P,
                T* G, std::size_t B, bool training, T din_beta = T(0)) const {
    const std::size_t k = layers.size();
    auto ones = vec(w.ones.data(), B);
    for (std::size_t i = k; i-- > 0;) {
      const Linear& l = layers[i];
      auto g = i + 1 < k ? w.grad[i].view(B) : dout;
      auto post = i + 1 < k ? w.post[i].view(B) : out;
      auto x = i == 0 ? in : w.post[i - 1].view(B);
      if (!batchnorm) {
        nonlinearity_backward(g, g, w.pre[i].view(B), post, act);
        if (i > 0) {
          auto dprev = w.grad[i - 1].view(B);
          linear_layer_backward(&dprev, g, x, l, P, G, ones);
        } else {
          linear_layer_backward(din, g, x, l, P, G, ones, din_beta);
        }
        continue;
      }
      nonlinearity_backward(g, g, w.bn[i].view(B), post, act);
      const BatchNorm& n = norms[i];
      auto dgamma = vec(G + n.gamma, n.n), dbeta = vec(G + n.beta, n.n);
      auto xhat = w.xhat[i].view(B), scratch = w.scratch[i].view(B);
      auto inv_std = vec(w.inv_std[i].data(), l.out);
      auto gamma = vec(P + n.gamma, n.n);
      if (training) {
        auto s1 = vec(w.s1[i].data(), l.out), s2 = vec(w.s2[i].data(), l.out);
        batchnorm_backward_train(g, dgamma, dbeta, g, xhat, inv_std, gamma, ones, scratch, s1, s2);
      } else {
        batchnorm_backward_eval(g, dgamma, dbeta, g, xhat, inv_std, gamma, ones, scratch);
      }
      auto dW = l.W(G);
      blas_gemm(g, x, dW, true, false, T(1), T(1));
      if (i > 0) {
        auto dprev = w.grad[i - 1].view(B);
        blas_gemm(g, l.W(P), dprev, false, false, T(1), T(0));
      } else if (din) {
        blas_gemm(g, l.W(P), *din, false, false, T(1), din_beta);
      }
    }
  }

  // After a training-mode forward of B rows: fold its batch statistics into the running ones.
  void update_running(Work& w, T* state, std::size_t B) const {
    for (std::size_t i = 0; i < norms.size(); ++i) {
      const BatchNorm& n = norms[i];
      auto rm = vec(state + n.mean, n.n), rv = vec(state + n.var, n.n);
      batchnorm_update_running(rm, rv, vec(w.mean[i].data(), n.n), vec(w.var[i].data(), n.n), B);
    }
  }
};

}  // namespace vae
