// The encoder of the VAE family: x -> features h -> the Gaussian posterior's parameters
// (mu, logvar) by two Linear heads. The scale head a is the log-variance, or with a
// log-sigma head (set_log_sigma_head, --posterior-head log-sigma) the log standard
// deviation, logvar = 2a: the IWAE paper's code (yburda/iwae: sigma = exp(a)). Both give the
// same family; with Adam, whose steps in a do not scale with the gradient, the log-sigma
// head moves logvar twice as far per step. The body is an MLP (MlpEncoder) or the convolutional
// stack of nn/conv_net.hpp (ConvVaeEncoder); the heads and their backward are shared.
// A posterior that reads h too (the IAF's context head, vae/posterior.hpp) adds its
// gradient into dh between backward_heads() and backward_body().
#pragma once

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>
#include <xtensor/xnoalias.hpp>

#include "models/vae/part.hpp"
#include "nn/conv_net.hpp"
#include "nn/mlp.hpp"

namespace vae {

template <class T>
class VaeEncoder : public VaePart<T> {
 public:
  // Rows of a training step with k samples per example that share one encoding: k (the
  // example is encoded once, its outputs copied to its k rows) or 1 (every row encoded:
  // batch statistics run over all rows).
  virtual std::size_t rows_per_code(std::size_t k) const = 0;

  // x rows 0, stride, 2 stride, ... (E of them) -> mu, logvar [E, L]; h(E) keeps the
  // features. stride > 1 only where rows_per_code() says so.
  void forward(MatView<T>& mu, MatView<T>& logvar, PartWork& pw, const MatView<T>& x, T* P, T* S, std::size_t E,
               std::size_t stride, bool training) const {
    Work& w = work_of<Work>(pw);
    auto h = w.h.view(E);
    body_forward(h, pw, gather(w, x, E, stride), P, S, E, training);
    linear_layer_forward(mu, h, mu_head, P);
    linear_layer_forward(logvar, h, logvar_head, P);
    if (log_sigma_) logvar *= T(2);
  }
  void set_log_sigma_head(bool on) { log_sigma_ = on; }
  std::size_t h_size() const { return mu_head.in; }
  MatView<T> h(PartWork& pw, std::size_t E) const { return work_of<Work>(pw).h.view(E); }
  MatView<T> dh(PartWork& pw, std::size_t E) const { return work_of<Work>(pw).dh.view(E); }

  // dmu, dlogvar [E, L] -> dh (written) and the heads' gradients.
  void backward_heads(PartWork& pw, const MatView<T>& dmu, const MatView<T>& dlogvar, T* P, T* G, std::size_t E,
                      GradSink<T>* sink) const {
    Work& w = work_of<Work>(pw);
    auto ones = vec(w.ones.data(), E);
    auto h = w.h.view(E), dh = w.dh.view(E);
    linear_layer_backward(&dh, dmu, h, mu_head, P, G, ones, T(0), sink);
    if (log_sigma_) {  // d/da = 2 d/dlogvar
      auto da = w.da.view(E);
      xt::noalias(da) = T(2) * dlogvar;
      linear_layer_backward(&dh, da, h, logvar_head, P, G, ones, T(1), sink);
    } else {
      linear_layer_backward(&dh, dlogvar, h, logvar_head, P, G, ones, T(1), sink);
    }
  }
  // dh [E, H] (overwritten) -> the body's gradients; x, E, stride and the mode of the forward.
  void backward_body(PartWork& pw, const MatView<T>& x, T* P, T* G, std::size_t E, std::size_t stride,
                     bool training, GradSink<T>* sink) const {
    Work& w = work_of<Work>(pw);
    auto h = w.h.view(E), dh = w.dh.view(E);
    const MatView<T> in = stride > 1 ? w.x_once.view(E) : x;  // what forward encoded
    body_backward(pw, dh, h, in, P, G, E, training, sink);
  }

  void add_groups(std::vector<ParamRange>& g) const override {
    add_body_groups(g);
    add_linear_groups(g, "enc_mu", mu_head);
    add_linear_groups(g, "enc_logvar", logvar_head);
  }

 protected:
  Linear mu_head, logvar_head;
  bool log_sigma_ = false;

  struct Work : PartWork {
    Activation2<T> h, dh;   // [B, H]
    Activation2<T> x_once;  // stride > 1: the encoded rows of x, [B, D] (D = 0: never)
    Activation2<T> da;      // a log-sigma head's gradient, [B, L]
    Buffer<T> ones;         // [B]
  };
  void reserve_heads(Work& w, std::size_t B, std::size_t D) const {
    w.h.reserve(B, mu_head.in);
    w.dh.reserve(B, mu_head.in);
    w.da.reserve(log_sigma_ ? B : 0, logvar_head.out);
    w.x_once.reserve(B, D);
    w.ones.assign(B, T(1));
  }
  void make_heads(ParamLayout& layout, std::size_t H, std::size_t L) {
    mu_head = Linear::make(layout, H, L);
    logvar_head = Linear::make(layout, H, L);
  }

  virtual void add_body_groups(std::vector<ParamRange>& g) const = 0;
  virtual void body_forward(MatView<T>& h, PartWork& pw, const MatView<T>& x, T* P, T* S, std::size_t E,
                            bool training) const = 0;
  virtual void body_backward(PartWork& pw, MatView<T>& dh, const MatView<T>& h, const MatView<T>& x, T* P, T* G,
                             std::size_t E, bool training, GradSink<T>* sink) const = 0;

 private:
  // x rows 0, stride, 2 stride, ... side by side (x itself when stride = 1).
  static MatView<T> gather(Work& w, const MatView<T>& x, std::size_t E, std::size_t stride) {
    if (stride == 1) return x;
    const std::size_t D = x.shape()[1];
    for (std::size_t b = 0; b < E; ++b) std::copy_n(x.data() + b * stride * D, D, w.x_once.ptr() + b * D);
    return w.x_once.view(E);
  }
};

// x -> MLP (sizes {D, hidden...}) -> heads. Encodes each example once per k samples.
template <class T>
class MlpEncoder final : public VaeEncoder<T> {
  using Base = VaeEncoder<T>;

 public:
  MlpEncoder(ParamLayout& layout, std::size_t D, const std::vector<std::size_t>& hidden, std::size_t L,
             Activation act)
      : D_(D) {
    std::vector<std::size_t> sizes{D};
    sizes.insert(sizes.end(), hidden.begin(), hidden.end());
    body_.build(layout, sizes, act);
    this->make_heads(layout, body_.out_size(), L);
  }
  std::size_t rows_per_code(std::size_t k) const override { return k; }
  bool streams_grads() const override { return true; }
  std::unique_ptr<PartWork> make_work(std::size_t B) const override {
    auto w = std::make_unique<Work>();
    this->reserve_heads(*w, B, D_);
    body_.reserve(w->mlp, B);
    return w;
  }
  void init_linear_layers(T* P, Init init, double std_dev, std::mt19937_64& rng) const override {
    for (const Linear& l : body_.layers) init_linear(P, l, init, std_dev, rng);
    init_linear(P, this->mu_head, init, std_dev, rng);
    init_linear(P, this->logvar_head, init, std_dev, rng);
  }
  void init_other_layers(T*, T*, Init, double, std::mt19937_64&) const override {}

 private:
  struct Work : Base::Work {
    typename Mlp<T>::Work mlp;
  };
  Mlp<T> body_;
  std::size_t D_;

  void add_body_groups(std::vector<ParamRange>& g) const override {
    for (std::size_t i = 0; i < body_.layers.size(); ++i)
      add_linear_groups(g, "enc" + std::to_string(i), body_.layers[i]);
  }
  void body_forward(MatView<T>& h, PartWork& pw, const MatView<T>& x, T* P, T*, std::size_t E,
                    bool) const override {
    body_.forward(h, work_of<Work>(pw).mlp, x, P, E);
  }
  void body_backward(PartWork& pw, MatView<T>& dh, const MatView<T>& h, const MatView<T>& x, T* P, T* G,
                     std::size_t E, bool, GradSink<T>* sink) const override {
    body_.backward(nullptr, work_of<Work>(pw).mlp, dh, h, x, P, G, E, sink);
  }
};

// x [B, rows*cols] -> convolutions with batch norm (nn/conv_net.hpp) -> heads.
template <class T>
class ConvVaeEncoder final : public VaeEncoder<T> {
  using Base = VaeEncoder<T>;

 public:
  ConvVaeEncoder(ParamLayout& layout, ParamLayout& state, std::size_t D, const ConvShape& s, std::size_t L,
                 Activation act) {
    if (s.rows * s.cols != D)
      throw std::invalid_argument("conv VAE: image size does not match the data dimension");
    body_.build(layout, state, s, act);
    this->make_heads(layout, body_.out_size(), L);
  }
  const ConvEncoder<T>& body() const { return body_; }
  std::size_t rows_per_code(std::size_t) const override { return 1; }
  bool streams_grads() const override { return false; }
  std::unique_ptr<PartWork> make_work(std::size_t B) const override {
    auto w = std::make_unique<Work>();
    this->reserve_heads(*w, B, 0);  // rows_per_code() = 1: x is never gathered
    body_.reserve(w->conv, B);
    return w;
  }
  void init_linear_layers(T* P, Init init, double std_dev, std::mt19937_64& rng) const override {
    init_linear(P, this->mu_head, init, std_dev, rng);
    init_linear(P, this->logvar_head, init, std_dev, rng);
  }
  void init_other_layers(T* P, T* S, Init init, double std_dev, std::mt19937_64& rng) const override {
    body_.initialize(P, S, init, std_dev, rng);
  }

 private:
  struct Work : Base::Work {
    typename ConvEncoder<T>::Work conv;
  };
  ConvEncoder<T> body_;

  void add_body_groups(std::vector<ParamRange>& g) const override {
    for (std::size_t i = 0; i < body_.convs.size(); ++i) {
      const Conv2d& c = body_.convs[i];
      g.push_back({"conv" + std::to_string(i) + ".W", c.w, c.cout * c.patch()});
      g.push_back({"conv" + std::to_string(i) + ".b", c.b, c.cout});
      const BatchNorm& n = body_.norms[i];
      g.push_back({"bn" + std::to_string(i) + ".gamma", n.gamma, n.n});
      g.push_back({"bn" + std::to_string(i) + ".beta", n.beta, n.n});
    }
  }
  void body_forward(MatView<T>& h, PartWork& pw, const MatView<T>& x, T* P, T* S, std::size_t E,
                    bool training) const override {
    body_.forward(h, work_of<Work>(pw).conv, x, P, S, E, training);
  }
  void body_backward(PartWork& pw, MatView<T>& dh, const MatView<T>& h, const MatView<T>&, T* P, T* G,
                     std::size_t E, bool training, GradSink<T>*) const override {
    body_.backward(work_of<Work>(pw).conv, dh, h, P, G, E, training);
  }
};

}  // namespace vae
