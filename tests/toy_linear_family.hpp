// A toy model family, added the way lib/models/README.md says a family is added: this one
// file implements the contract (models/contract.hpp) and declares the family to the model
// registry (toy_linear_family(): its --model name, its settings, their check, its factory);
// one line in tests/contract_families.hpp puts it under every contract test, and one
// ScopedFamily line (tests/test_contract.cpp) registers it with the program's settings.
// The model: q(z|x) = N(mu, diag(exp(logvar))) with mu, logvar linear in x (the learned
// parameters), p(z) = N(0, I), and a FIXED linear decoder p(x|z) = Bernoulli(sigmoid(A z + c))
// (A, c are constants of the family, not parameters).
#pragma once

#include <map>
#include <random>
#include <string>
#include <vector>

#include "models/adapter.hpp"
#include "models/contract.hpp"
#include "models/registry.hpp"
#include "nn/params.hpp"
#include "prob/gaussian.hpp"
#include "prob/iaf.hpp"
#include "prob/likelihood.hpp"
#include "prob/noise.hpp"
#include "tensor/linear.hpp"

namespace vae::test {

template <class T>
class ToyLinearVae {
 public:
  std::size_t D, L;
  Linear enc_mu, enc_logvar;
  Buffer<T> params, grads, state;  // no state
  Buffer<T> A, c;                  // the fixed decoder, [D,L] and [D]
  Likelihood<T> lik;               // Bernoulli

  ToyLinearVae(std::size_t data_dim, std::size_t latent, uint64_t seed) : D(data_dim), L(latent) {
    ParamLayout layout;
    enc_mu = Linear::make(layout, D, L);
    enc_logvar = Linear::make(layout, D, L);
    params.assign(layout.size, T(0));
    grads.assign(layout.size, T(0));
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> n(0.0, 1.0);
    A.resize(D * L);
    c.resize(D);
    for (T& a : A) a = T(n(rng));
    for (T& b : c) b = T(0.3 * n(rng));
  }

  struct Work : LossWeights<T> {
    std::size_t max_batch = 0;
    bool training = true;
    Activation2<T> x, out, dout, raw, eps, mu, logvar, z, kl, dz, dmu, dlogvar, kw_rows;
    LikelihoodWork<T> lw;
    Buffer<T> rec, ones_b;
    std::vector<double> log_p, log_q;  // [B], log_weights' scratch
  };

  std::vector<ParamRange> param_groups() const {
    return {{"enc_mu.W", enc_mu.w, L * D},
            {"enc_mu.b", enc_mu.b, L},
            {"enc_logvar.W", enc_logvar.w, L * D},
            {"enc_logvar.b", enc_logvar.b, L}};
  }
  void initialize(Init init, double std_dev, std::mt19937_64& rng) {
    init_linear(params.data(), enc_mu, init, std_dev, rng);
    init_linear(params.data(), enc_logvar, init, std_dev, rng);
  }
  std::size_t data_dim() const { return D; }
  std::size_t units() const { return L; }
  std::vector<std::size_t> unit_layers() const { return {}; }
  void reserve(Work& w, std::size_t B) const {
    w.max_batch = B;
    for (Activation2<T>* a : {&w.x, &w.out, &w.dout}) a->reserve(B, D);
    for (Activation2<T>* a : {&w.eps, &w.mu, &w.logvar, &w.z, &w.kl, &w.dz, &w.dmu, &w.dlogvar, &w.kw_rows})
      a->reserve(B, L);
    w.raw.reserve(0, 0);
    w.lw.reserve(B, D);
    w.rec.assign(B, T(0));
    w.ones_b.assign(B, T(1));
    w.reserve_weights(B, L);
    w.log_p.assign(B, 0.0);
    w.log_q.assign(B, 0.0);
  }
  void draw_noise(Work& w, std::size_t B, std::mt19937_64& rng) { fill_normal(w.eps.ptr(), B * L, rng); }

  void encode(Work& w, std::size_t B) {
    auto x = w.x.view(B), mu = w.mu.view(B), lv = w.logvar.view(B);
    linear_forward(mu, x, enc_mu.W(params.data()), enc_mu.bias(params.data()));
    linear_forward(lv, x, enc_logvar.W(params.data()), enc_logvar.bias(params.data()));
  }
  void decode(Work& w, std::size_t B) {
    auto z = w.z.view(B), out = w.out.view(B);
    auto Av = mat(A.data(), D, L);
    linear_forward(out, z, Av, vec(c.data(), D));
    auto rec = vec(w.rec.data(), B);
    auto raw = mat(w.raw.ptr(), 0, 0);
    likelihood_forward(rec, w.lw, lik, out, raw, w.x.view(B), params.data());
  }
  void forward(Work& w, std::size_t B) {
    encode(w, B);
    auto z = w.z.view(B), kl = w.kl.view(B), mu = w.mu.view(B), lv = w.logvar.view(B), eps = w.eps.view(B);
    reparam_forward(z, mu, lv, eps);
    if (w.sampled_kl) {
      flow_kl_begin(kl, eps, lv);
      flow_kl_end(kl, z);
    } else {
      kl_forward(kl, mu, lv);
    }
    decode(w, B);
  }
  void add_kl_columns(Work& w, std::size_t B, double* acc) const {
    for (std::size_t i = 0; i < B * L; ++i) acc[i % L] += double(w.kl.data[i]);
  }
  void log_weights(Work& w, std::size_t B, double* out) {
    log_prior_rows(w.log_p.data(), w.z.view(B));
    log_posterior_rows(w.log_q.data(), w.eps.view(B), w.logvar.view(B));
    for (std::size_t b = 0; b < B; ++b) out[b] = -double(w.rec[b]) + w.log_p[b] - w.log_q[b];
  }
  void backward(Work& w, std::size_t B, T rec_scale) {
    T* G = grads.data();
    auto ones = vec(w.ones_b.data(), B);
    auto x = w.x.view(B), out = w.out.view(B), dout = w.dout.view(B);
    auto raw = mat(w.raw.ptr(), 0, 0), draw = mat(w.raw.ptr(), 0, 0);
    likelihood_backward(dout, draw, w.lw, lik, out, raw, x, params.data(), G, rec_scale,
                        w.row_weighted ? w.row_weight.data() : static_cast<const T*>(nullptr));
    auto dz = w.dz.view(B);
    dz.fill(T(0));
    blas_gemm(dout, mat(A.data(), D, L), dz, false, false, T(1), T(0));  // the decoder is fixed
    auto dmu = w.dmu.view(B), dlv = w.dlogvar.view(B);
    auto mu = w.mu.view(B), lv = w.logvar.view(B), eps = w.eps.view(B), z = w.z.view(B);
    auto kl_part = [&](const auto& kw) {
      if (!w.sampled_kl) {
        gaussian_backward(dmu, dlv, dz, mu, lv, eps, kw);
        return;
      }
      xt::noalias(dz) += kw * z;
      flow_base_backward(dmu, dlv, dz, lv, eps, kw);
    };
    if (w.row_weighted) {
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t l = 0; l < L; ++l) w.kw_rows.data[b * L + l] = w.row_weight[b] * w.unit_weight[l];
      kl_part(w.kw_rows.view(B));
    } else {
      kl_part(vec(w.unit_weight.data(), L));
    }
    auto dWm = enc_mu.W(G), dbm = enc_mu.bias(G), dWl = enc_logvar.W(G), dbl = enc_logvar.bias(G);
    linear_backward<T>(nullptr, dWm, dbm, dmu, x, enc_mu.W(params.data()), ones);
    linear_backward<T>(nullptr, dWl, dbl, dlv, x, enc_logvar.W(params.data()), ones);
  }
  void after_step(Work&, std::size_t) {}
  bool streams_grads() const { return false; }
  bool has_base_codes() const { return false; }
  void mean_codes(Work& w, std::size_t B, T* codes, T*) {
    encode(w, B);
    std::copy(w.mu.ptr(), w.mu.ptr() + B * L, codes);
  }
  void iw_prepare(Work& w, std::size_t m) {
    encode(w, 1);
    for (std::size_t r = 1; r < m; ++r) {
      std::copy(w.x.ptr(), w.x.ptr() + D, w.x.ptr() + r * D);
      std::copy(w.mu.ptr(), w.mu.ptr() + L, w.mu.ptr() + r * L);
      std::copy(w.logvar.ptr(), w.logvar.ptr() + L, w.logvar.ptr() + r * L);
    }
  }
  void iw_samples(Work& w, std::size_t m) {
    auto z = w.z.view(m);
    reparam_forward(z, w.mu.view(m), w.logvar.view(m), w.eps.view(m));
    decode(w, m);
  }
  void set_codes(Work& w, std::size_t B, const T* codes) {
    std::copy(codes, codes + B * L, w.z.ptr());
    std::fill(w.x.ptr(), w.x.ptr() + B * D, T(0));
  }
  bool standard_prior() const { return true; }
  void prior_codes(Work& w, std::size_t B, T* codes) { std::copy(w.eps.ptr(), w.eps.ptr() + B * L, codes); }
  void describe(std::map<std::string, double>&) const {}
};

// --model toy-linear: its settings (each one entry here: spec, and where the factory reads
// it), their check and its factory (in the training precision T), as the library's families
// declare theirs. A template so that only the test that registers it compiles its factory.
template <class T = float>
const ModelFamily& toy_linear_family() {
  static const ModelFamily family(
      {{"toy-linear", "a test's toy: linear Gaussian encoder, fixed random linear decoder"}},
      {option("toy-latent", ValueKind::Int, int64_t(3), "toy-linear: latent dimension", {}, 1.0, 64.0),
       option("toy-decoder-seed", ValueKind::Int, int64_t(8), "toy-linear: seed of the fixed decoder", {},
              0.0)},
      [](const TrainConfig& tc, std::size_t rows, std::size_t cols, std::mt19937_64& init_rng) {
        return make_family_model<ToyLinearVae<T>>(tc, init_rng, rows * cols,
                                                  std::size_t(setting<int64_t>(tc.settings, "toy-latent")),
                                                  uint64_t(setting<int64_t>(tc.settings, "toy-decoder-seed")));
      },
      [](const ConfigMap& c) {
        if (setting<std::string>(c, "likelihood") != "bernoulli")
          throw ConfigError("key 'likelihood': model = toy-linear has a Bernoulli decoder only");
      });
  return family;
}

}  // namespace vae::test
