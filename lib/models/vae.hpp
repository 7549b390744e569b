// The VAE of Kingma & Welling (2013), composed as data flows:
//   x --encoder MLP--> h --heads--> (mu, logvar) --reparam(eps)--> z
//   z --decoder MLP--> g --heads--> likelihood parameters --> -log p(x|z)
// with the analytic KL(q(z|x) || N(0, I)). eps is an input, so forward is a pure
// function of (parameters, x, eps) and gradient checks are exact.
#pragma once

#include <cstddef>
#include <random>
#include <vector>

#include "nn/mlp.hpp"
#include "prob/gaussian.hpp"
#include "prob/likelihood.hpp"

namespace vae {

struct VaeShape {
  std::size_t data_dim = 784, latent = 20;
  std::vector<std::size_t> hidden{400};  // encoder sizes; the decoder mirrors them
  Activation activation = Activation::ReLU;
};

template <class T>
class Vae {
 public:
  VaeShape shape;
  Mlp<T> encoder, decoder;
  Linear enc_mu, enc_logvar, dec_out, dec_logsig;  // dec_logsig: per-pixel sigma only
  Likelihood<T> lik;
  Buffer<T> params, grads;

  Vae(const VaeShape& s, const Likelihood<T>& likelihood) : shape(s), lik(likelihood) {
    ParamLayout layout;
    std::vector<std::size_t> enc_sizes{s.data_dim};
    enc_sizes.insert(enc_sizes.end(), s.hidden.begin(), s.hidden.end());
    encoder.build(layout, enc_sizes, s.activation);
    enc_mu = Linear::make(layout, encoder.out_size(), s.latent);
    enc_logvar = Linear::make(layout, encoder.out_size(), s.latent);
    std::vector<std::size_t> dec_sizes{s.latent};
    dec_sizes.insert(dec_sizes.end(), s.hidden.rbegin(), s.hidden.rend());
    decoder.build(layout, dec_sizes, s.activation);
    dec_out = Linear::make(layout, decoder.out_size(), s.data_dim);
    if (lik.per_pixel()) dec_logsig = Linear::make(layout, decoder.out_size(), s.data_dim);
    if (lik.has_shared_param()) lik.shared_offset = layout.take(1);
    params.assign(layout.size, T(0));
    grads.assign(layout.size, T(0));
  }

  std::size_t num_params() const { return params.size(); }

  std::vector<const Linear*> linears() const {
    std::vector<const Linear*> all;
    for (const auto& l : encoder.layers) all.push_back(&l);
    all.push_back(&enc_mu);
    all.push_back(&enc_logvar);
    for (const auto& l : decoder.layers) all.push_back(&l);
    all.push_back(&dec_out);
    if (lik.per_pixel()) all.push_back(&dec_logsig);
    return all;
  }

  void initialize(Init init, double std_dev, std::mt19937_64& rng) {
    for (const Linear* l : linears()) init_linear(params.data(), *l, init, std_dev, rng);
    if (lik.has_shared_param()) params[lik.shared_offset] = T(0);  // sigma = 1
  }

  // Everything one batch needs, allocated once for batches of up to max_batch rows.
  struct Work {
    std::size_t max_batch = 0;
    Activation2<T> x, eps, mu, logvar, z, kl, dmu, dlogvar, dz;
    Activation2<T> out, raw_logsig, dout, draw_logsig;
    typename Mlp<T>::Work enc, dec;
    LikelihoodWork<T> lw;
    Buffer<T> rec, ones_b, kl_weight;  // [B], [B], [L]
  };

  void reserve(Work& w, std::size_t max_batch) const {
    const std::size_t D = shape.data_dim, L = shape.latent, B = max_batch;
    w.max_batch = B;
    for (Activation2<T>* a : {&w.mu, &w.logvar, &w.z, &w.kl, &w.dmu, &w.dlogvar, &w.dz, &w.eps})
      a->reserve(B, L);
    for (Activation2<T>* a : {&w.x, &w.out, &w.dout}) a->reserve(B, D);
    const std::size_t DS = lik.per_pixel() ? D : 1;  // unused buffers stay tiny
    w.raw_logsig.reserve(B, DS);
    w.draw_logsig.reserve(B, DS);
    encoder.reserve(w.enc, B);
    decoder.reserve(w.dec, B);
    w.lw.reserve(B, D);
    w.rec.assign(B, T(0));
    w.ones_b.assign(B, T(1));
    w.kl_weight.assign(L, T(0));
  }

  // x [B,D] -> mu, logvar [B,L]
  void encode(Work& w, std::size_t B) {
    auto x = w.x.view(B);
    encoder.forward(w.enc, x, params.data(), B);
    auto h = w.enc.post.back().view(B);
    auto mu = w.mu.view(B), logvar = w.logvar.view(B);
    linear_forward(mu, h, enc_mu.W(params.data()), enc_mu.bias(params.data()));
    linear_forward(logvar, h, enc_logvar.W(params.data()), enc_logvar.bias(params.data()));
  }

  // z [B,L] and x [B,D] -> rec[b] = -log p(x_b | z_b)
  void decode(Work& w, std::size_t B) {
    auto z = w.z.view(B);
    decoder.forward(w.dec, z, params.data(), B);
    auto g = w.dec.post.back().view(B);
    auto out = w.out.view(B);
    linear_forward(out, g, dec_out.W(params.data()), dec_out.bias(params.data()));
    auto raw = raw_logsig_view(w, B);
    if (lik.per_pixel())
      linear_forward(raw, g, dec_logsig.W(params.data()), dec_logsig.bias(params.data()));
    auto rec = vec(w.rec.data(), B);
    auto x = w.x.view(B);
    likelihood_forward(rec, w.lw, lik, out, raw, x, params.data());
  }

  // Full pass: x, eps -> z, kl [B,L], rec [B].
  void forward(Work& w, std::size_t B) {
    encode(w, B);
    auto z = w.z.view(B), mu = w.mu.view(B), logvar = w.logvar.view(B), eps = w.eps.view(B);
    reparam_forward(z, mu, logvar, eps);
    auto kl = w.kl.view(B);
    kl_forward(kl, mu, logvar);
    decode(w, B);
  }

  // Accumulates into grads the gradient of
  //   rec_scale * sum_b rec[b] + sum_{b,l} kl_weight[l] * kl[b,l]
  // (the objective sets rec_scale = 1/B and kl_weight = beta/B, or 0 under free bits).
  void backward(Work& w, std::size_t B, T rec_scale) {
    T* P = params.data();
    T* G = grads.data();
    auto ones = vec(w.ones_b.data(), B);
    auto x = w.x.view(B), out = w.out.view(B), dout = w.dout.view(B);
    auto raw = raw_logsig_view(w, B), draw = draw_logsig_view(w, B);
    likelihood_backward(dout, draw, w.lw, lik, out, raw, x, P, G, rec_scale);
    // decoder heads -> decoder MLP -> dz
    auto g = w.dec.post.back().view(B);
    auto dg = w.dec.grad.back().view(B);
    auto dW = dec_out.W(G);
    auto db = dec_out.bias(G);
    linear_backward(&dg, dW, db, dout, g, dec_out.W(P), ones);
    if (lik.per_pixel()) {
      auto dWs = dec_logsig.W(G);
      auto dbs = dec_logsig.bias(G);
      linear_backward(&dg, dWs, dbs, draw, g, dec_logsig.W(P), ones, T(1));
    }
    auto z = w.z.view(B), dz = w.dz.view(B);
    decoder.backward(w.dec, &dz, z, P, G, B, ones);
    // reparametrization and KL -> mu, logvar
    auto dmu = w.dmu.view(B), dlogvar = w.dlogvar.view(B);
    auto kw = vec(w.kl_weight.data(), shape.latent);
    gaussian_backward(dmu, dlogvar, dz, w.mu.view(B), w.logvar.view(B), w.eps.view(B), kw);
    // encoder heads -> encoder MLP
    auto h = w.enc.post.back().view(B);
    auto dh = w.enc.grad.back().view(B);
    auto dWm = enc_mu.W(G);
    auto dbm = enc_mu.bias(G);
    linear_backward(&dh, dWm, dbm, dmu, h, enc_mu.W(P), ones);
    auto dWl = enc_logvar.W(G);
    auto dbl = enc_logvar.bias(G);
    linear_backward(&dh, dWl, dbl, dlogvar, h, enc_logvar.W(P), ones, T(1));
    encoder.backward(w.enc, nullptr, x, P, G, B, ones);
  }

 private:
  MatView<T> raw_logsig_view(Work& w, std::size_t B) {
    return lik.per_pixel() ? w.raw_logsig.view(B) : mat(w.raw_logsig.ptr(), 0, 0);
  }
  MatView<T> draw_logsig_view(Work& w, std::size_t B) {
    return lik.per_pixel() ? w.draw_logsig.view(B) : mat(w.draw_logsig.ptr(), 0, 0);
  }
};

}  // namespace vae
