// The decoder of the VAE family: z -> the likelihood's parameters, out [B, D] and, for a
// per-pixel sigma, raw [B, D] (the raw log sigma; [B, 0] and unused otherwise). An MLP with
// Linear heads (MlpDecoder) or the transposed convolutions of nn/conv_net.hpp
// (ConvVaeDecoder), which retrace the convolutional encoder's sizes.
#pragma once

#include <string>
#include <vector>

#include "models/vae/part.hpp"
#include "nn/conv_net.hpp"
#include "nn/mlp.hpp"

namespace vae {

template <class T>
class VaeDecoder : public VaePart<T> {
 public:
  // z [B, L] -> out, raw [B, *]
  virtual void forward(MatView<T>& out, MatView<T>& raw, PartWork& pw, const MatView<T>& z, T* P, T* S,
                       std::size_t B, bool training) const = 0;
  // dout, draw [B, *] -> dz [B, L] (written) and the parameter gradients; sink told of each
  // range once final (when streams_grads()).
  virtual void backward(MatView<T>& dz, PartWork& pw, const MatView<T>& dout, const MatView<T>& draw,
                        const MatView<T>& z, T* P, T* G, std::size_t B, bool training,
                        GradSink<T>* sink) const = 0;
};

// z -> MLP (sizes {L, hidden reversed...}) -> dec_out (and dec_logsig for a per-pixel sigma).
template <class T>
class MlpDecoder final : public VaeDecoder<T> {
 public:
  MlpDecoder(ParamLayout& layout, std::size_t L, const std::vector<std::size_t>& hidden, std::size_t D,
             bool per_pixel_sigma, Activation act)
      : has_logsig_(per_pixel_sigma) {
    std::vector<std::size_t> sizes{L};
    sizes.insert(sizes.end(), hidden.rbegin(), hidden.rend());
    body_.build(layout, sizes, act);
    out_ = Linear::make(layout, body_.out_size(), D);
    if (has_logsig_) logsig_ = Linear::make(layout, body_.out_size(), D);
  }
  bool streams_grads() const override { return true; }
  std::unique_ptr<PartWork> make_work(std::size_t B) const override {
    auto w = std::make_unique<Work>();
    body_.reserve(w->mlp, B);
    w->g.reserve(B, body_.out_size());
    w->dg.reserve(B, body_.out_size());
    w->ones.assign(B, T(1));
    return w;
  }
  void add_groups(std::vector<ParamRange>& g) const override {
    for (std::size_t i = 0; i < body_.layers.size(); ++i)
      add_linear_groups(g, "dec" + std::to_string(i), body_.layers[i]);
    add_linear_groups(g, "dec_out", out_);
    if (has_logsig_) add_linear_groups(g, "dec_logsig", logsig_);
  }
  void init_linear_layers(T* P, Init init, double std_dev, std::mt19937_64& rng) const override {
    for (const Linear& l : body_.layers) init_linear(P, l, init, std_dev, rng);
    init_linear(P, out_, init, std_dev, rng);
    if (has_logsig_) init_linear(P, logsig_, init, std_dev, rng);
  }
  void init_other_layers(T*, T*, Init, double, std::mt19937_64&) const override {}

  void forward(MatView<T>& out, MatView<T>& raw, PartWork& pw, const MatView<T>& z, T* P, T*, std::size_t B,
               bool) const override {
    Work& w = work_of<Work>(pw);
    auto g = w.g.view(B);
    body_.forward(g, w.mlp, z, P, B);
    linear_layer_forward(out, g, out_, P);
    if (has_logsig_) linear_layer_forward(raw, g, logsig_, P);
  }
  void backward(MatView<T>& dz, PartWork& pw, const MatView<T>& dout, const MatView<T>& draw,
                const MatView<T>& z, T* P, T* G, std::size_t B, bool, GradSink<T>* sink) const override {
    Work& w = work_of<Work>(pw);
    auto ones = vec(w.ones.data(), B);
    auto g = w.g.view(B), dg = w.dg.view(B);
    linear_layer_backward(&dg, dout, g, out_, P, G, ones, T(0), sink);
    if (has_logsig_) linear_layer_backward(&dg, draw, g, logsig_, P, G, ones, T(1), sink);
    body_.backward(&dz, w.mlp, dg, g, z, P, G, B, sink);
  }

 private:
  struct Work : PartWork {
    typename Mlp<T>::Work mlp;
    Activation2<T> g, dg;  // the MLP's output and its gradient, [B, H]
    Buffer<T> ones;        // [B]
  };
  Mlp<T> body_;
  Linear out_, logsig_;
  bool has_logsig_;
};

// z -> Linear -> transposed convolutions with batch norm -> out (and a per-pixel log sigma
// head beside the last), retracing the sizes of the encoder built from the same shape.
template <class T>
class ConvVaeDecoder final : public VaeDecoder<T> {
 public:
  ConvVaeDecoder(ParamLayout& layout, ParamLayout& state, const ConvEncoder<T>& enc, const ConvShape& s,
                 std::size_t L, bool per_pixel_sigma, Activation act) {
    body_.build(layout, state, s, enc, L, per_pixel_sigma, act);
  }
  const ConvDecoder<T>& body() const { return body_; }
  bool streams_grads() const override { return false; }
  std::unique_ptr<PartWork> make_work(std::size_t B) const override {
    auto w = std::make_unique<Work>();
    body_.reserve(w->conv, B);
    return w;
  }
  void add_groups(std::vector<ParamRange>& g) const override {
    add_linear_groups(g, "dec_fc", body_.fc);
    auto conv_layer = [&](const std::string& n, const ConvTranspose2d& c) {
      g.push_back({n + ".W", c.w, c.cin * c.patch()});
      g.push_back({n + ".b", c.b, c.cout});
    };
    for (std::size_t i = 0; i < body_.deconvs.size(); ++i) {
      conv_layer("deconv" + std::to_string(i), body_.deconvs[i]);
      if (i < body_.norms.size()) {
        const BatchNorm& n = body_.norms[i];
        g.push_back({"dbn" + std::to_string(i) + ".gamma", n.gamma, n.n});
        g.push_back({"dbn" + std::to_string(i) + ".beta", n.beta, n.n});
      }
    }
    if (body_.has_logsig) conv_layer("deconv_logsig", body_.logsig);
  }
  // The Linear layer is drawn in both passes: the second draw is the one kept (the order of
  // the draws is part of a run's determinism, vae/part.hpp).
  void init_linear_layers(T* P, Init init, double std_dev, std::mt19937_64& rng) const override {
    init_linear(P, body_.fc, init, std_dev, rng);
  }
  void init_other_layers(T* P, T* S, Init init, double std_dev, std::mt19937_64& rng) const override {
    body_.initialize(P, S, init, std_dev, rng);
  }

  void forward(MatView<T>& out, MatView<T>& raw, PartWork& pw, const MatView<T>& z, T* P, T* S, std::size_t B,
               bool training) const override {
    body_.forward(out, raw, work_of<Work>(pw).conv, z, P, S, B, training);
  }
  void backward(MatView<T>& dz, PartWork& pw, const MatView<T>& dout, const MatView<T>& draw,
                const MatView<T>& z, T* P, T* G, std::size_t B, bool training, GradSink<T>*) const override {
    body_.backward(dz, work_of<Work>(pw).conv, dout, draw, z, P, G, B, training);
  }

 private:
  struct Work : PartWork {
    typename ConvDecoder<T>::Work conv;
  };
  ConvDecoder<T> body_;
};

}  // namespace vae
