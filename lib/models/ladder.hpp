// The Ladder VAE and the hierarchical VAE it is compared with (Sonderby et al. 2016,
// "Ladder Variational Autoencoders"). Both have the same generative model over L
// stochastic layers (layer 1 at the bottom, next to x):
//   p(z_L) = N(0, I),  p(z_i | z_{i+1}) = N(mu_p, var_p)  from an MLP of z_{i+1},
//   p(x | z_1)         from an MLP of z_1 (any likelihood of prob/likelihood.hpp),
// and differ in inference:
//  - bottom-up (--model hierarchical): q(z_1|x) q(z_2|z_1) ... q(z_L|z_{L-1}), each a
//    Gaussian from an MLP of the layer below, sampled bottom-up. The KL of layer i < L is
//    the single-sample log q(z_i|z_{i-1}) - log p(z_i|z_{i+1}): p's parameters depend on
//    z_{i+1}, which is sampled after z_i, so no analytic form applies; the top layer's KL
//    to N(0, I) is analytic.
//  - ladder (--model ladder): a deterministic bottom-up pass d_i = MLP(d_{i-1}), d_0 = x,
//    gives (mu_hat_i, var_hat_i) per layer; then top-down q(z_L|x) = N(mu_hat_L, var_hat_L)
//    and q(z_i | z_{i+1}, x) = the precision-weighted merge of (mu_hat_i, var_hat_i) with
//    p(z_i | z_{i+1}) -- the generative model's own top-down pass. q and p of a layer are
//    then conditioned on the same z_{i+1}, so each layer's KL is the analytic KL between
//    the two Gaussians (to N(0, I) at the top).
// Every Gaussian has mu = Linear(h) and var = softplus(Linear(h)) + 1e-6, as the paper's
// equations and code, or var = exp(Linear(h)) with --variance exp (the IWAE paper's
// Gaussians; its 2-layer model is the hierarchical VAE with tanh blocks of depth 2).
// Each deterministic block is an MLP of `depth` layers (2 in the paper) of Linear ->
// [batch norm] -> nonlinearity; block i has width hidden[i], both in the inference network
// and in the generative MLP that leaves z_{i+1} (mirrored), and the decoder leaves z_1
// through width hidden[0].
//
// Noise is an input: eps of every layer lives in the Work and is drawn by the caller, so a
// forward pass is a pure function of (parameters, running statistics, x, eps, mode).
// Training mode normalizes with batch statistics, evaluation mode with the running ones.
#pragma once

#include <algorithm>
#include <cstddef>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "models/contract.hpp"
#include "models/model.hpp"
#include "nn/bn_mlp.hpp"
#include "prob/ladder_gaussian.hpp"
#include "prob/likelihood.hpp"
#include "prob/noise.hpp"

namespace vae {

enum class Inference { Ladder, BottomUp };

struct LadderShape {
  std::size_t data_dim = 784;
  std::vector<std::size_t> latent{64, 32, 16, 8, 4};       // stochastic sizes, layer 1 first
  std::vector<std::size_t> hidden{512, 256, 128, 64, 32};  // deterministic sizes, layer 1 first
  std::size_t depth = 2;                                   // Linear layers per deterministic block
  Nonlinearity act;
  bool batchnorm = false;
  Inference inference = Inference::Ladder;
  VarianceHead variance = VarianceHead::Softplus;  // every var head (prob/ladder_gaussian.hpp)
};

template <class T>
class LadderVae {
 public:
  LadderShape shape;
  Likelihood<T> lik;
  std::vector<BnMlp<T>> up;           // up[i]: the block below layer i+1's heads
  std::vector<Linear> up_mu, up_var;  // ladder: (mu_hat, var_hat); bottom-up: q's (mu, var)
  std::vector<BnMlp<T>> down;         // down[i]: z_{i+2} -> p(z_{i+1} | z_{i+2}), i < L-1
  std::vector<Linear> down_mu, down_var;
  BnMlp<T> dec;                // z_1 -> p(x | z_1)
  Linear dec_out, dec_logsig;  // dec_logsig: per-pixel sigma only
  Buffer<T> params, grads;
  Buffer<T> state;  // batch-norm running means and variances

  LadderVae(const LadderShape& s, const Likelihood<T>& likelihood) : shape(s), lik(likelihood) {
    const std::size_t L = s.latent.size();
    if (L == 0 || s.hidden.size() != L || s.depth == 0)
      throw std::invalid_argument(
          "ladder: need as many deterministic as stochastic sizes (at least one), depth >= 1");
    ParamLayout P, S;
    auto block = [&](std::size_t in, std::size_t width) {
      std::vector<std::size_t> sizes{in};
      sizes.insert(sizes.end(), s.depth, width);
      return sizes;
    };
    const bool ladder = s.inference == Inference::Ladder;
    up.resize(L);
    for (std::size_t i = 0; i < L; ++i) {
      const std::size_t in = i == 0 ? s.data_dim : (ladder ? s.hidden[i - 1] : s.latent[i - 1]);
      up[i].build(P, S, block(in, s.hidden[i]), s.act, s.batchnorm);
      up_mu.push_back(Linear::make(P, s.hidden[i], s.latent[i]));
      up_var.push_back(Linear::make(P, s.hidden[i], s.latent[i]));
    }
    down.resize(L - 1);
    for (std::size_t i = 0; i + 1 < L; ++i) {
      down[i].build(P, S, block(s.latent[i + 1], s.hidden[i + 1]), s.act, s.batchnorm);
      down_mu.push_back(Linear::make(P, s.hidden[i + 1], s.latent[i]));
      down_var.push_back(Linear::make(P, s.hidden[i + 1], s.latent[i]));
    }
    dec.build(P, S, block(s.latent[0], s.hidden[0]), s.act, s.batchnorm);
    dec_out = Linear::make(P, s.hidden[0], s.data_dim);
    if (lik.per_pixel()) dec_logsig = Linear::make(P, s.hidden[0], s.data_dim);
    lik.take_param(P);
    params.assign(P.size, T(0));
    grads.assign(P.size, T(0));
    state.assign(S.size, T(0));
  }

  std::size_t layers() const { return shape.latent.size(); }
  // The first unit of layer i among all units side by side (layer 1 first).
  std::size_t unit_offset(std::size_t i) const {
    std::size_t u = 0;
    for (std::size_t j = 0; j < i; ++j) u += shape.latent[j];
    return u;
  }
  std::size_t num_params() const { return params.size(); }
  bool ladder() const { return shape.inference == Inference::Ladder; }

  // Every parameter range by name, in layout order (gradient checks, golden tests).
  std::vector<ParamRange> param_groups() const {
    std::vector<ParamRange> g;
    auto mlp = [&](const std::string& name, const BnMlp<T>& m) {
      for (std::size_t k = 0; k < m.layers.size(); ++k) {
        const std::string n = name + "." + std::to_string(k);
        g.push_back({n + ".W", m.layers[k].w, m.layers[k].in * m.layers[k].out});
        if (m.batchnorm) {
          g.push_back({n + ".gamma", m.norms[k].gamma, m.norms[k].n});
          g.push_back({n + ".beta", m.norms[k].beta, m.norms[k].n});
        } else {
          g.push_back({n + ".b", m.layers[k].b, m.layers[k].out});
        }
      }
    };
    auto lin = [&](const std::string& n, const Linear& l) {
      g.push_back({n + ".W", l.w, l.in * l.out});
      g.push_back({n + ".b", l.b, l.out});
    };
    for (std::size_t i = 0; i < layers(); ++i) {
      const std::string n = std::to_string(i + 1);
      mlp("up" + n, up[i]);
      lin("up" + n + ".mu", up_mu[i]);
      lin("up" + n + ".var", up_var[i]);
    }
    for (std::size_t i = 0; i + 1 < layers(); ++i) {
      const std::string n = std::to_string(i + 1);
      mlp("down" + n, down[i]);
      lin("down" + n + ".mu", down_mu[i]);
      lin("down" + n + ".var", down_var[i]);
    }
    mlp("dec", dec);
    lin("dec.out", dec_out);
    if (lik.per_pixel()) lin("dec.logsig", dec_logsig);
    lik.add_group(g);
    return sorted_by_offset(std::move(g));
  }

  void initialize(Init init, double std_dev, std::mt19937_64& rng) {
    T* P = params.data();
    T* S = state.data();
    for (std::size_t i = 0; i < layers(); ++i) {
      up[i].initialize(P, S, init, std_dev, rng);
      init_linear(P, up_mu[i], init, std_dev, rng);
      init_linear(P, up_var[i], init, std_dev, rng);
    }
    for (std::size_t i = 0; i + 1 < layers(); ++i) {
      down[i].initialize(P, S, init, std_dev, rng);
      init_linear(P, down_mu[i], init, std_dev, rng);
      init_linear(P, down_var[i], init, std_dev, rng);
    }
    dec.initialize(P, S, init, std_dev, rng);
    init_linear(P, dec_out, init, std_dev, rng);
    if (lik.per_pixel()) init_linear(P, dec_logsig, init, std_dev, rng);
    lik.initialize(P);
  }

  // Buffers of stochastic layer i, all [B, S_i]. The *_hat heads are the bottom-up estimate
  // (ladder) or q's own parameters (bottom-up); *_p the top-down prior (i < L-1 only);
  // *_q the posterior actually sampled; a_* the pre-softplus variance heads; h_up, h_down
  // the outputs of the blocks below the heads ([B, hidden[i]], [B, hidden[i+1]]).
  struct Layer {
    Activation2<T> eps, mu_hat, a_hat, var_hat, mu_p, a_p, var_p, mu_q, var_q, z, kl;
    Activation2<T> dz, dmu_q, dvar_q, dmu_hat, dvar_hat, dmu_p, dvar_p;
    Activation2<T> h_up, dh_up, h_down, dh_down;
    Activation2<T> kw_rows;  // row-weighted backward: row_weight[b] * unit_weight[u0 + j]
    typename BnMlp<T>::Work up, down;
  };
  struct Work : LossWeights<T>, LikelihoodBuffers<T> {
    std::size_t max_batch = 0;
    bool training = true;  // the mode of the last forward; backward uses the same
    std::vector<Layer> layer;
    typename BnMlp<T>::Work dec;
    Activation2<T> h_dec, dh_dec;  // the decoder block's output [B, hidden[0]] and its gradient
    Buffer<T> ones_b;              // [B]
    std::vector<double> log_q;     // [B], log_weights' scratch
  };

  void reserve(Work& w, std::size_t max_batch) const {
    const std::size_t B = max_batch, D = shape.data_dim, L = layers();
    w.max_batch = B;
    w.layer.resize(L);
    for (std::size_t i = 0; i < L; ++i) {
      Layer& l = w.layer[i];
      const std::size_t S = shape.latent[i], SP = i + 1 < L ? S : 0;  // no prior buffers at the top
      for (Activation2<T>* a : {&l.eps, &l.mu_hat, &l.a_hat, &l.var_hat, &l.mu_q, &l.var_q, &l.z, &l.kl, &l.dz,
                                &l.dmu_q, &l.dvar_q, &l.dmu_hat, &l.dvar_hat, &l.kw_rows})
        a->reserve(B, S);
      for (Activation2<T>* a : {&l.mu_p, &l.a_p, &l.var_p, &l.dmu_p, &l.dvar_p}) a->reserve(B, SP);
      up[i].reserve(l.up, B);
      l.h_up.reserve(B, up[i].out_size());
      l.dh_up.reserve(B, up[i].out_size());
      if (i + 1 < L) {
        down[i].reserve(l.down, B);
        l.h_down.reserve(B, down[i].out_size());
        l.dh_down.reserve(B, down[i].out_size());
      }
    }
    dec.reserve(w.dec, B);
    w.h_dec.reserve(B, dec.out_size());
    w.dh_dec.reserve(B, dec.out_size());
    w.reserve_likelihood(lik, B, D);
    w.ones_b.assign(B, T(1));
    w.reserve_weights(B, units());
    w.log_q.assign(B, 0.0);
  }

  // x -> everything that does not depend on the noise: ladder, the whole bottom-up pass
  // (d_i, mu_hat_i, var_hat_i of every layer); bottom-up inference, q(z_1|x).
  void forward_up(Work& w, std::size_t B, bool training) {
    w.training = training;
    const std::size_t n = ladder() ? layers() : 1;
    for (std::size_t i = 0; i < n; ++i) up_block(w, i, i == 0 ? w.x.view(B) : w.layer[i - 1].h_up.view(B), B);
  }

  // eps -> z of every layer, the top-down priors, the KL per element and, when decode,
  // rec[b] = -log p(x_b | z_1). Needs forward_up's results for the same rows. With
  // w.sampled_kl every layer's KL is the single-sample log q - log p (the terms of log w).
  void forward_down(Work& w, std::size_t B, bool decode = true) {
    const std::size_t L = layers();
    if (ladder()) {
      posterior_is_up(w.layer[L - 1], B);
      top_kl(w, B);
      for (std::size_t i = L - 1; i-- > 0;) {
        Layer& l = w.layer[i];
        prior(w, i, B);
        auto mu_q = l.mu_q.view(B), var_q = l.var_q.view(B), z = l.z.view(B), kli = l.kl.view(B);
        merge_forward(mu_q, var_q, l.mu_hat.view(B), l.var_hat.view(B), l.mu_p.view(B), l.var_p.view(B));
        sample_forward(z, mu_q, var_q, l.eps.view(B));
        if (w.sampled_kl) kl_sampled_forward(kli, z, l.eps.view(B), var_q, l.mu_p.view(B), l.var_p.view(B));
        else kl_gaussians_forward(kli, mu_q, var_q, l.mu_p.view(B), l.var_p.view(B));
      }
    } else {
      for (std::size_t i = 0; i < L; ++i) {
        if (i > 0) up_block(w, i, w.layer[i - 1].z.view(B), B);
        posterior_is_up(w.layer[i], B);
      }
      top_kl(w, B);
      for (std::size_t i = 0; i + 1 < L; ++i) {
        Layer& l = w.layer[i];
        prior(w, i, B);
        auto kli = l.kl.view(B);
        kl_sampled_forward(kli, l.z.view(B), l.eps.view(B), l.var_q.view(B), l.mu_p.view(B), l.var_p.view(B));
      }
    }
    if (decode) decode_z1(w, B);
  }

  void forward(Work& w, std::size_t B, bool training) {
    forward_up(w, B, training);
    forward_down(w, B);
  }

  // Ancestral sampling from the generative model, eps of every layer -> z of every layer:
  // z_L = eps_L (the N(0, I) prior), then z_i = mu_p + sqrt(var_p) * eps_i for i < L.
  void forward_prior(Work& w, std::size_t B) {
    const std::size_t L = layers();
    auto zt = w.layer[L - 1].z.view(B);
    xt::noalias(zt) = w.layer[L - 1].eps.view(B);
    for (std::size_t i = L - 1; i-- > 0;) {
      Layer& l = w.layer[i];
      prior(w, i, B);
      auto z = l.z.view(B);
      sample_forward(z, l.mu_p.view(B), l.var_p.view(B), l.eps.view(B));
    }
  }

  // Copies forward_up's per-example results of row 0 to rows 1..m-1: the importance
  // samples of one example share its bottom-up pass (evaluation mode only).
  void broadcast_up(Work& w, std::size_t m) {
    const std::size_t n = ladder() ? layers() : 1;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t S = shape.latent[i];
      for (Activation2<T>* a : {&w.layer[i].mu_hat, &w.layer[i].var_hat})
        for (std::size_t r = 1; r < m; ++r) std::copy(a->ptr(), a->ptr() + S, a->ptr() + r * S);
    }
  }

  // z_1 [B,S_1] and x [B,D] -> rec[b] = -log p(x_b | z_1,b)
  void decode_z1(Work& w, std::size_t B) {
    T* P = params.data();
    auto g = w.h_dec.view(B);
    dec.forward(g, w.dec, w.layer[0].z.view(B), P, state.data(), B, w.training);
    auto out = w.out.view(B);
    linear_layer_forward(out, g, dec_out, P);
    auto raw = raw_logsig_view(w, B);
    if (lik.per_pixel()) linear_layer_forward(raw, g, dec_logsig, P);
    auto rec = vec(w.rec.data(), B);
    likelihood_forward(rec, w.lw, lik, out, raw, w.x.view(B), P);
  }

  // Accumulates into grads the gradient of
  //   sum_b c_b (rec_scale * rec[b] + sum_{i,j} unit_weight[u0_i + j] * kl_i[b,j])
  // for the last forward, c_b = row_weight[b] when w.row_weighted (IWAE), else 1
  // (models/contract.hpp; the ELBO objective sets rec_scale = 1/B and unit_weight = beta/B).
  // Row weights need the single-sample KL of every layer (w.sampled_kl): then the IWAE
  // objective's weights wtilde_b / B make this sum_b wtilde_b / B * grad(-log w_b).
  // Batch norm in training mode: every row's log w depends on all R = B k rows through the
  // batch statistics, and the backward pass through batch norm is its full Jacobian, so this
  // is the exact gradient of the IWAE objective of the batch as computed (statistics over all
  // its rows, the k copies of each example included), with wtilde held fixed as in the
  // objective's own gradient: sum_b wtilde_b grad log w_b is grad log mean_j w_j whatever
  // log w_b depends on. The contract tests check it against finite differences in that mode.
  void backward(Work& w, std::size_t B, T rec_scale) {
    T* P = params.data();
    T* G = grads.data();
    if (w.row_weighted && !w.sampled_kl)
      throw std::logic_error("LadderVae::backward: row weights need the sampled KL");
    auto ones = vec(w.ones_b.data(), B);
    // likelihood -> decoder -> dz_1
    {
      auto x = w.x.view(B), out = w.out.view(B), dout = w.dout.view(B);
      auto raw = raw_logsig_view(w, B), draw = draw_logsig_view(w, B);
      likelihood_backward(dout, draw, w.lw, lik, out, raw, x, P, G, rec_scale,
                          w.row_weighted ? w.row_weight.data() : static_cast<const T*>(nullptr));
      auto g = w.h_dec.view(B), dg = w.dh_dec.view(B);
      linear_layer_backward(&dg, dout, g, dec_out, P, G, ones);
      if (lik.per_pixel()) linear_layer_backward(&dg, draw, g, dec_logsig, P, G, ones, T(1));
      auto dz = w.layer[0].dz.view(B);
      dec.backward(&dz, w.dec, dg, g, w.layer[0].z.view(B), P, G, B, w.training);
    }
    if (!w.row_weighted) {
      latent_backward(w, B, [&](std::size_t i) {
        return vec(w.unit_weight.data() + unit_offset(i), shape.latent[i]);
      });
      return;
    }
    for (std::size_t i = 0; i < layers(); ++i) {
      const std::size_t S = shape.latent[i], u0 = unit_offset(i);
      T* kw = w.layer[i].kw_rows.ptr();
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t j = 0; j < S; ++j) kw[b * S + j] = w.row_weight[b] * w.unit_weight[u0 + j];
    }
    latent_backward(w, B, [&](std::size_t i) { return w.layer[i].kw_rows.view(B); });
  }

  // dz_1 (from the decoder) and the KL weights of layer i, kw(i) ([S_i] per unit or [B,S_i]
  // per row and unit) -> the gradients of every stochastic layer and deterministic block.
  template <class KW>
  void latent_backward(Work& w, std::size_t B, KW kw_of) {
    T* P = params.data();
    T* G = grads.data();
    const std::size_t L = layers();
    const bool tr = w.training;
    if (ladder()) {
      // Top-down pass in reverse: layer i's merge, then its prior's MLP into dz_{i+1}.
      for (std::size_t i = 0; i + 1 < L; ++i) {
        Layer& l = w.layer[i];
        const auto kw = kw_of(i);
        auto dmu_q = l.dmu_q.view(B), dvar_q = l.dvar_q.view(B), dmu_p = l.dmu_p.view(B),
             dvar_p = l.dvar_p.view(B);
        auto dmu_hat = l.dmu_hat.view(B), dvar_hat = l.dvar_hat.view(B);
        if (w.sampled_kl) {
          auto dz = l.dz.view(B);
          kl_sampled_backward_p(dz, dmu_p, dvar_p, l.z.view(B), l.mu_p.view(B), l.var_p.view(B), kw);
          kl_sampled_backward_q(dmu_q, dvar_q, dz, l.eps.view(B), l.var_q.view(B), kw);
        } else {
          kl_gaussians_backward(dmu_q, dvar_q, dmu_p, dvar_p, l.dz.view(B), l.eps.view(B), l.mu_q.view(B),
                                l.var_q.view(B), l.mu_p.view(B), l.var_p.view(B), kw);
        }
        merge_backward(dmu_hat, dvar_hat, dmu_p, dvar_p, dmu_q, dvar_q, l.mu_hat.view(B), l.var_hat.view(B),
                       l.mu_p.view(B), l.var_p.view(B), l.mu_q.view(B));
        auto dz_above = w.layer[i + 1].dz.view(B);
        prior_backward(w, i, &dz_above, B, T(0));
      }
      top_backward(w, B, kw_of(L - 1));
      // The deterministic bottom-up pass, top to bottom: d_i feeds its heads and block i+1.
      for (std::size_t i = L; i-- > 0;) {
        Layer& l = w.layer[i];
        up_heads_backward(w, i, B, i + 1 == L ? T(0) : T(1));
        auto dh = l.dh_up.view(B), h = l.h_up.view(B);
        if (i > 0) {
          auto dd = w.layer[i - 1].dh_up.view(B);
          up[i].backward(&dd, l.up, dh, h, w.layer[i - 1].h_up.view(B), P, G, B, tr);
        } else {
          up[0].backward(nullptr, l.up, dh, h, w.x.view(B), P, G, B, tr);
        }
      }
    } else {
      // Each KL estimate's direct gradient on z_i and on its prior, whose MLP reads z_{i+1}.
      for (std::size_t i = 0; i + 1 < L; ++i) {
        Layer& l = w.layer[i];
        auto dz = l.dz.view(B), dmu_p = l.dmu_p.view(B), dvar_p = l.dvar_p.view(B);
        kl_sampled_backward_p(dz, dmu_p, dvar_p, l.z.view(B), l.mu_p.view(B), l.var_p.view(B), kw_of(i));
        auto dz_above = w.layer[i + 1].dz.view(B);
        prior_backward(w, i, &dz_above, B, T(0));
      }
      // q's blocks top to bottom: dz_i is complete once block i+1 (which reads z_i) is done.
      top_backward(w, B, kw_of(L - 1));
      for (std::size_t i = L; i-- > 0;) {
        Layer& l = w.layer[i];
        if (i + 1 < L) {
          auto dmu = l.dmu_hat.view(B), dvar = l.dvar_hat.view(B);
          kl_sampled_backward_q(dmu, dvar, l.dz.view(B), l.eps.view(B), l.var_q.view(B), kw_of(i));
        }
        up_heads_backward(w, i, B, T(0));
        auto dh = l.dh_up.view(B), h = l.h_up.view(B);
        if (i > 0) {
          auto dz_below = w.layer[i - 1].dz.view(B);
          up[i].backward(&dz_below, l.up, dh, h, w.layer[i - 1].z.view(B), P, G, B, tr, T(1));
        } else {
          up[0].backward(nullptr, l.up, dh, h, w.x.view(B), P, G, B, tr);
        }
      }
    }
  }

  // ---- the rest of the model contract (models/contract.hpp) ----
  std::size_t data_dim() const { return shape.data_dim; }
  std::size_t units() const { return unit_offset(layers()); }
  std::vector<std::size_t> unit_layers() const { return shape.latent; }
  void forward(Work& w, std::size_t B) { forward(w, B, w.training); }
  // eps of every layer, layer 1 first: the order is part of a run's determinism.
  void draw_noise(Work& w, std::size_t B, std::mt19937_64& rng) {
    for (std::size_t i = 0; i < layers(); ++i) fill_normal(w.layer[i].eps.ptr(), B * shape.latent[i], rng);
  }
  void add_kl_columns(Work& w, std::size_t B, double* acc) const {
    for (std::size_t i = 0, u0 = 0; i < layers(); u0 += shape.latent[i++]) {
      const std::size_t S = shape.latent[i];
      const T* kl = w.layer[i].kl.ptr();
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t j = 0; j < S; ++j) acc[u0 + j] += double(kl[b * S + j]);
    }
  }
  void after_step(Work& w, std::size_t B) { update_running(w, B); }
  bool streams_grads() const { return false; }  // the optimizer runs after backward()

  // After forward_down: out[b] = log p(x_b|z_1) p(z_L) prod_{i<L} p(z_i|z_{i+1}) - log q(z_1..z_L|x_b).
  void log_weights(Work& w, std::size_t B, double* out) {
    const std::size_t L = layers();
    double* log_p = out;
    double* log_q = w.log_q.data();
    std::fill(log_p, log_p + B, 0.0);
    std::fill(log_q, log_q + B, 0.0);
    add_log_standard_rows(log_p, w.layer[L - 1].z.view(B));
    for (std::size_t i = 0; i + 1 < L; ++i) {
      auto& l = w.layer[i];
      add_log_normal_rows(log_p, l.z.view(B), l.mu_p.view(B), l.var_p.view(B));
    }
    for (std::size_t i = 0; i < L; ++i) add_log_q_rows(log_q, w.layer[i].eps.view(B), w.layer[i].var_q.view(B));
    for (std::size_t r = 0; r < B; ++r) out[r] = -double(w.rec[r]) + log_p[r] - log_q[r];
  }

  // Posterior means along the mean path (eps = 0), all layers side by side, layer 1 first:
  // for layers above the first, the mean of q given the mean path (exact for the ladder's top
  // layer and the hierarchical VAE's first; cheap, noise-free, the same rule for both).
  bool has_base_codes() const { return false; }
  void mean_codes(Work& w, std::size_t B, T* codes, T* /*base*/) {
    for (auto& l : w.layer) std::fill(l.eps.data.begin(), l.eps.data.end(), T(0));
    forward_up(w, B, w.training);
    forward_down(w, B, false);
    copy_layers(w, B, codes, [](Layer& l) { return l.mu_q.ptr(); });
  }

  // x row 0 -> what does not depend on the noise, on rows 0..m-1 (evaluation mode).
  void iw_prepare(Work& w, std::size_t m) {
    forward_up(w, 1, false);
    const std::size_t D = shape.data_dim;
    for (std::size_t r = 1; r < m; ++r) std::copy(w.x.ptr(), w.x.ptr() + D, w.x.ptr() + r * D);
    broadcast_up(w, m);
  }
  void iw_samples(Work& w, std::size_t m) { forward_down(w, m); }

  // p(x|z_1) reads only z_1: the first S_1 columns of each code (the rest are ignored), so
  // decoding encode_mean's codes is a reconstruction. x is zeroed: decode_z1 also scores it.
  void set_codes(Work& w, std::size_t B, const T* codes) {
    const std::size_t U = units(), S1 = shape.latent[0];
    T* z1 = w.layer[0].z.ptr();
    for (std::size_t r = 0; r < B; ++r) std::copy(codes + r * U, codes + r * U + S1, z1 + r * S1);
    std::fill(w.x.ptr(), w.x.ptr() + B * shape.data_dim, T(0));
  }
  void decode(Work& w, std::size_t B) { decode_z1(w, B); }

  // Codes [z_1 | ... | z_L] drawn top-down from p(z_L) prod p(z_i | z_{i+1}), after draw_noise.
  bool standard_prior() const { return false; }
  void prior_codes(Work& w, std::size_t B, T* codes) {
    forward_prior(w, B);
    copy_layers(w, B, codes, [](Layer& l) { return l.z.ptr(); });
  }
  void describe(std::map<std::string, double>& metrics) const {
    metrics["stochastic_layers"] = double(layers());
  }

  // After a training-mode forward of B rows: fold its batch statistics into the running ones.
  void update_running(Work& w, std::size_t B) {
    T* S = state.data();
    for (std::size_t i = 0; i < layers(); ++i) {
      up[i].update_running(w.layer[i].up, S, B);
      if (i + 1 < layers()) down[i].update_running(w.layer[i].down, S, B);
    }
    dec.update_running(w.dec, S, B);
  }

 private:
  // Each layer's [B,S_i] buffer (chosen by `of`) into codes [B,U], layers side by side.
  template <class Of>
  void copy_layers(Work& w, std::size_t B, T* codes, Of of) {
    const std::size_t U = units();
    for (std::size_t i = 0, u0 = 0; i < layers(); u0 += shape.latent[i++]) {
      const std::size_t S = shape.latent[i];
      const T* src = of(w.layer[i]);
      for (std::size_t r = 0; r < B; ++r) std::copy(src + r * S, src + (r + 1) * S, codes + r * U + u0);
    }
  }
  // Block i on its input, then the heads: (mu_hat_i, var_hat_i).
  void up_block(Work& w, std::size_t i, const MatView<T>& in, std::size_t B) {
    Layer& l = w.layer[i];
    auto h = l.h_up.view(B);
    up[i].forward(h, l.up, in, params.data(), state.data(), B, w.training);
    heads_forward(l.mu_hat, l.a_hat, l.var_hat, h, up_mu[i], up_var[i], B);
  }
  // p(z_{i+1} | z_{i+2}) in 1-based terms: down block i on z of the layer above.
  void prior(Work& w, std::size_t i, std::size_t B) {
    Layer& l = w.layer[i];
    auto h = l.h_down.view(B);
    down[i].forward(h, l.down, w.layer[i + 1].z.view(B), params.data(), state.data(), B, w.training);
    heads_forward(l.mu_p, l.a_p, l.var_p, h, down_mu[i], down_var[i], B);
  }
  // A block's output h [B, *] -> a Gaussian's (mu, var) [B, S] by two Linear heads; a: the
  // variance head before its positive map.
  void heads_forward(Activation2<T>& mu, Activation2<T>& a, Activation2<T>& var, const MatView<T>& h,
                     const Linear& mu_head, const Linear& var_head, std::size_t B) {
    T* P = params.data();
    auto mu_v = mu.view(B), a_v = a.view(B), var_v = var.view(B);
    linear_layer_forward(mu_v, h, mu_head, P);
    linear_layer_forward(a_v, h, var_head, P);
    variance_forward(shape.variance, var_v, a_v);
  }
  // dmu, dvar [B, S] (dvar overwritten) -> the heads' gradients and dh = d/dh (+ beta * dh).
  void heads_backward(MatView<T>& dh, Activation2<T>& dmu, Activation2<T>& dvar, Activation2<T>& a,
                      Activation2<T>& var, const MatView<T>& h, const Linear& mu_head, const Linear& var_head,
                      const VecView<T>& ones, std::size_t B, T beta) {
    T* P = params.data();
    T* G = grads.data();
    auto dvar_v = dvar.view(B);
    variance_backward(shape.variance, dvar_v, dvar_v, a.view(B), var.view(B));
    linear_layer_backward(&dh, dmu.view(B), h, mu_head, P, G, ones, beta);
    linear_layer_backward(&dh, dvar_v, h, var_head, P, G, ones, T(1));
  }
  // Top layer of the ladder and every layer of bottom-up inference: q = the up heads.
  void posterior_is_up(Layer& l, std::size_t B) {
    auto mu_q = l.mu_q.view(B), var_q = l.var_q.view(B), z = l.z.view(B);
    xt::noalias(mu_q) = l.mu_hat.view(B);
    xt::noalias(var_q) = l.var_hat.view(B);
    sample_forward(z, mu_q, var_q, l.eps.view(B));
  }
  // The top layer's KL to N(0, I): analytic, or the single-sample estimate (w.sampled_kl).
  void top_kl(Work& w, std::size_t B) {
    Layer& t = w.layer[layers() - 1];
    auto kl = t.kl.view(B);
    if (w.sampled_kl) kl_standard_sampled_forward(kl, t.z.view(B), t.eps.view(B), t.var_q.view(B));
    else kl_standard_forward(kl, t.mu_q.view(B), t.var_q.view(B));
  }
  // The top layer: z_L and its KL to N(0, I), weighted by kw -> dmu_hat, dvar_hat.
  template <class KW>
  void top_backward(Work& w, std::size_t B, const KW& kw) {
    Layer& t = w.layer[layers() - 1];
    auto dmu = t.dmu_hat.view(B), dvar = t.dvar_hat.view(B);
    if (w.sampled_kl)
      kl_standard_sampled_backward(dmu, dvar, t.dz.view(B), t.z.view(B), t.eps.view(B), t.var_q.view(B), kw);
    else kl_standard_backward(dmu, dvar, t.dz.view(B), t.eps.view(B), t.mu_q.view(B), t.var_q.view(B), kw);
  }
  // dmu_hat, dvar_hat of layer i -> its heads -> dh_up (+ beta * what is there).
  void up_heads_backward(Work& w, std::size_t i, std::size_t B, T beta) {
    Layer& l = w.layer[i];
    auto dh = l.dh_up.view(B);
    heads_backward(dh, l.dmu_hat, l.dvar_hat, l.a_hat, l.var_hat, l.h_up.view(B), up_mu[i], up_var[i],
                   vec(w.ones_b.data(), B), B, beta);
  }
  // dmu_p, dvar_p of layer i -> the prior's heads and block -> din (z of the layer above).
  void prior_backward(Work& w, std::size_t i, MatView<T>* din, std::size_t B, T din_beta) {
    Layer& l = w.layer[i];
    auto dh = l.dh_down.view(B), h = l.h_down.view(B);
    heads_backward(dh, l.dmu_p, l.dvar_p, l.a_p, l.var_p, h, down_mu[i], down_var[i], vec(w.ones_b.data(), B),
                   B, T(0));
    down[i].backward(din, l.down, dh, h, w.layer[i + 1].z.view(B), params.data(), grads.data(), B, w.training,
                     din_beta);
  }
  MatView<T> raw_logsig_view(Work& w, std::size_t B) {
    return lik.per_pixel() ? w.raw_logsig.view(B) : mat(w.raw_logsig.ptr(), 0, 0);
  }
  MatView<T> draw_logsig_view(Work& w, std::size_t B) {
    return lik.per_pixel() ? w.draw_logsig.view(B) : mat(w.draw_logsig.ptr(), 0, 0);
  }
};

// The shape --model ladder | hierarchical asks for (checked settings; models/ladder.cpp,
// where the family is registered with its settings and factory).
LadderShape ladder_shape(const ConfigMap& config, std::size_t data_dim);

}  // namespace vae
