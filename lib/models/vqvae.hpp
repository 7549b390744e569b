// The VQ-VAE family (van den Oord et al. 2017), under the model contract (models/contract.hpp).
//
//   x [B, H, W, 1] -> encoder (nn/conv_stack.hpp): 4x4 stride-2 conv, ReLU, 4x4 stride-2 conv,
//     ReLU, 3x3 conv, R residual blocks, ReLU, 1x1 conv to D channels: z_e on an h x w grid
//   -> nearest code of a codebook of K vectors (nn/vq.hpp), at each of the P = h w positions
//   -> decoder: 3x3 conv from D channels, R residual blocks, ReLU, two 4x4 stride-2 transposed
//     convolutions (ReLU between) back to H x W: the likelihood's parameters.
//
// How it fits a contract written for Gaussian latents: the posterior is a point mass on the
// codes k(x), so it is deterministic (draw_noise draws nothing that forward uses) and its KL
// to the prior is -log p_prior(k(x)): the contract's per-unit KL is that term per grid
// position (units() = P), under the uniform prior log K each. The bound
//   log p(x) >= log p(x | z_q) + log p_prior(z_q)
// is then the contract's ELBO (test_elbo; test_rec and test_kl its parts), so the VQ-VAE
// stands in the same tables as the VAEs; the importance-weighted estimate equals it (every
// sample is the same code). The codebook and commitment terms are not part of the bound: they
// are the family's extra_loss (added to the training loss, not to the ELBO), and the
// straight-through gradient is not the gradient of any loss, so gradient checks cover the
// decoder and codebook exactly and the encoder through the surrogate z_e + sg(z_q - z_e)
// (tests/test_vqvae.cpp). Codes are category indices (kDiscreteCodes): mean_codes and
// set_codes speak indices as floats, and no active units are counted. Its own metrics:
// reconstruction MSE, codebook usage (a vector over the K codes) and perplexity.
// With the EMA update the codebook lives in the model state (with N_k and m_k); with dead-code
// restart the running usage per code too.
#pragma once

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/contract.hpp"
#include "models/model.hpp"
#include "nn/conv_stack.hpp"
#include "nn/params.hpp"
#include "nn/pixelcnn.hpp"
#include "nn/vq.hpp"
#include "prob/likelihood.hpp"

namespace vae {

enum class VqUpdate { Loss, Ema };

struct VqShape {
  std::size_t rows = 28, cols = 28;  // image size (one channel)
  std::size_t channels = 64, res_blocks = 2, res_hidden = 32;
  std::size_t codebook = 64, code_dim = 16;
  double beta = 0.25;  // commitment weight
  VqUpdate update = VqUpdate::Loss;
  double decay = 0.99, eps = 1e-5;  // EMA
  double restart = 0;               // dead-code restart under this running usage per step (0: off)
  // The PixelCNN prior (nn/pixelcnn.hpp), trained in a second stage of prior_epochs epochs on
  // the frozen autoencoder's codes (0: no prior, the uniform one throughout).
  std::size_t prior_epochs = 0, prior_layers = 4, prior_features = 32;
};

template <class T>
class VqVae {
 public:
  static constexpr bool kDiscreteCodes = true;
  VqShape shape;
  ConvStack enc, dec;
  PixelCnn prior;
  int stage = 1;  // 1: the autoencoder (uniform prior); 2: the PixelCNN prior on frozen codes
  std::size_t P = 0, codebook_off = 0;  // positions; the codebook's offset (params or state)
  std::size_t ema_n_off = 0, ema_m_off = 0, usage_off = 0;
  Buffer<T> params, grads, state;
  Likelihood<T> lik;

  VqVae(const VqShape& s, const Likelihood<T>& l) : shape(s), lik(l) {
    if (lik.per_pixel()) throw std::invalid_argument("the VQ-VAE has no per-pixel sigma head");
    ParamLayout layout, st;
    const std::size_t C = s.channels, D = s.code_dim, K = s.codebook;
    enc.start(s.rows, s.cols, 1);
    enc.conv(layout, C, 4, 2, 1, false);
    const std::size_t h1 = enc.h, w1 = enc.w;
    enc.conv(layout, C, 4, 2, 1, true);
    enc.conv(layout, C, 3, 1, 1, true);
    for (std::size_t r = 0; r < s.res_blocks; ++r) enc.residual_block(layout, s.res_hidden, 3);
    enc.conv(layout, D, 1, 1, 0, true);
    P = enc.h * enc.w;
    dec.start(enc.h, enc.w, D);
    dec.conv(layout, C, 3, 1, 1, false);
    for (std::size_t r = 0; r < s.res_blocks; ++r) dec.residual_block(layout, s.res_hidden, 3);
    dec.conv_transpose(layout, C, 4, 2, 1, h1, w1, true);
    dec.conv_transpose(layout, 1, 4, 2, 1, s.rows, s.cols, true);
    if (ema()) {
      codebook_off = st.take(K * D);
      ema_n_off = st.take(K);
      ema_m_off = st.take(K * D);
    } else {
      codebook_off = layout.take(K * D);
    }
    if (s.restart > 0) usage_off = st.take(K);
    lik.take_param(layout);
    if (has_prior()) prior.build(layout, enc.h, enc.w, K, s.prior_features, s.prior_layers, 3);
    params.assign(layout.size, T(0));
    grads.assign(layout.size, T(0));
    state.assign(st.size, T(0));
  }

  bool ema() const { return shape.update == VqUpdate::Ema; }
  bool has_prior() const { return shape.prior_epochs > 0; }
  bool prior_active() const { return has_prior() && stage >= 2; }
  // Training stages: the trainer runs stage2_epochs() more epochs after the configured ones,
  // switching with set_stage(2) (and a fresh optimizer).
  int64_t stage2_epochs() const { return int64_t(shape.prior_epochs); }
  void set_stage(int s) { stage = s; }
  T* codebook() { return (ema() ? state.data() : params.data()) + codebook_off; }
  const T* codebook() const { return (ema() ? state.data() : params.data()) + codebook_off; }
  std::size_t K() const { return shape.codebook; }
  std::size_t Dc() const { return shape.code_dim; }

  struct Work : LossWeights<T> {
    std::size_t max_batch = 0;
    bool training = true;
    Activation2<T> x, out, dout, raw, zq, dzq, kl, u;
    LikelihoodWork<T> lw;
    ConvStackWork<T> enc, dec;
    Buffer<T> rec, sq, scores, enorm, dcodebook, batch_sum, batch_count, pos_scale;
    // The straight-through check (tests): with st_check, forward keeps the codes and the base
    // point's z_e and e_k (st_ze, st_e) and computes z_q = z_e + (st_e - st_ze), the codebook
    // term ||st_ze - e_k||^2 and the commitment term beta ||z_e - st_e||^2: a loss whose exact
    // gradient is the straight-through one, for finite differences.
    bool st_check = false;
    Buffer<T> st_ze, st_e, sq_code;
    std::vector<int32_t> idx;
    std::vector<uint32_t> pick;       // dead-code restart: a batch row per code
    PixelCnnWork<T> pw;               // the prior's buffers
    Buffer<T> prior_scale;            // [B*P]: the weight of each position's -log p in backward
    std::vector<int32_t> sample_idx;  // prior sampling
  };

  std::size_t data_dim() const { return shape.rows * shape.cols; }
  std::size_t units() const { return P; }
  std::vector<std::size_t> unit_layers() const { return {}; }

  std::vector<ParamRange> param_groups() const {
    std::vector<ParamRange> g;
    auto add = [&](const std::string& name, const ConvStack& s) {
      for (std::size_t i = 0; i < s.layers.size(); ++i) {
        const ConvLayer& l = s.layers[i];
        const std::string n = name + std::to_string(i);
        if (l.transposed) {
          g.push_back({n + ".W", l.convt.w, l.convt.cin * l.convt.patch()});
          g.push_back({n + ".b", l.convt.b, l.convt.cout});
        } else {
          g.push_back({n + ".W", l.conv.w, l.conv.cout * l.conv.patch()});
          g.push_back({n + ".b", l.conv.b, l.conv.cout});
        }
      }
    };
    add("enc", enc);
    add("dec", dec);
    if (!ema()) g.push_back({"codebook", codebook_off, K() * Dc()});
    lik.add_group(g);
    if (has_prior()) {
      g.push_back({"prior.embedding", prior.emb, K() * prior.F});
      auto conv = [&](const std::string& n, const Conv2d& c) {
        g.push_back({n + ".W", c.w, c.cout * c.patch()});
        g.push_back({n + ".b", c.b, c.cout});
      };
      conv("prior.first", prior.first);
      for (std::size_t l = 0; l < prior.layers; ++l) {
        conv("prior.masked" + std::to_string(l), prior.masked[l]);
        conv("prior.proj" + std::to_string(l), prior.proj[l]);
      }
      conv("prior.out", prior.out);
    }
    return g;
  }
  // Convolutions as PyTorch initialises them; the codebook U(-1/K, 1/K) as the reference
  // implementations; with EMA, m_k = e_k and N_k = 1, so that m_k / N_k starts at e_k (with
  // N_k = 0 an unused code's smoothed count would be ~eps and its e_k blow up at the first step).
  void initialize(Init init, double std_dev, std::mt19937_64& rng) {
    enc.initialize(params.data(), init, std_dev, rng);
    dec.initialize(params.data(), init, std_dev, rng);
    std::uniform_real_distribution<double> u(-1.0 / double(K()), 1.0 / double(K()));
    T* E = codebook();
    for (std::size_t i = 0; i < K() * Dc(); ++i) E[i] = T(u(rng));
    if (ema()) {
      std::copy(E, E + K() * Dc(), state.data() + ema_m_off);
      std::fill(state.begin() + long(ema_n_off), state.begin() + long(ema_n_off + K()), T(1));
    }
    if (shape.restart > 0)
      std::fill(state.begin() + long(usage_off), state.begin() + long(usage_off + K()), T(1));
    lik.initialize(params.data());
    if (has_prior()) prior.initialize(params.data(), init, std_dev, rng);
  }

  void reserve(Work& w, std::size_t B) const {
    const std::size_t D = data_dim(), N = B * P;
    w.max_batch = B;
    for (Activation2<T>* a : {&w.x, &w.out, &w.dout}) a->reserve(B, D);
    w.raw.reserve(0, 0);
    w.zq.reserve(B, P * Dc());
    w.dzq.reserve(B, P * Dc());
    w.kl.reserve(B, P);
    w.u.reserve(B, P);
    w.lw.reserve(B, D);
    w.enc.reserve(enc, B);
    w.dec.reserve(dec, B);
    w.rec.assign(B, T(0));
    w.sq.assign(N, T(0));
    w.sq_code.assign(N, T(0));
    w.st_ze.assign(N * Dc(), T(0));
    w.st_e.assign(N * Dc(), T(0));
    w.pos_scale.assign(N, T(0));
    w.scores.assign(N * K(), T(0));
    w.enorm.assign(K(), T(0));
    w.dcodebook.assign(K() * Dc(), T(0));
    w.batch_sum.assign(K() * Dc(), T(0));
    w.batch_count.assign(K(), T(0));
    w.idx.assign(N, 0);
    w.pick.assign(K(), 0);
    w.reserve_weights(B, P);
    if (has_prior()) w.pw.reserve(prior, B, params.size());
    w.prior_scale.assign(has_prior() ? N : 0, T(0));
    w.sample_idx.assign(has_prior() ? N : 0, 0);
  }

  // Uniforms for prior sampling (one per position) and, for dead-code restart, a batch
  // position per code. Forward itself is deterministic.
  void draw_noise(Work& w, std::size_t rows, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (std::size_t i = 0; i < rows * P; ++i) w.u.data[i] = T(u(rng));
    if (shape.restart > 0) {
      std::uniform_int_distribution<uint32_t> pick(0, uint32_t(rows * P - 1));
      for (uint32_t& p : w.pick) p = pick(rng);
    }
  }

  void encode(Work& w, std::size_t B) {
    conv_stack_forward(w.enc, enc, w.x.ptr(), params.data(), B);
    if (w.st_check) return st_quantise(w, B);
    vq_assign(w.idx.data(), w.zq.ptr(), w.sq.data(), w.scores.data(), w.enorm.data(), w.enc.output(),
              codebook(), B * P, K(), Dc());
  }
  // Quantisation in the straight-through check (see Work): codes fixed.
  void st_quantise(Work& w, std::size_t B) {
    const T* ze = w.enc.output();
    const T* E = codebook();
    for (std::size_t n = 0; n < B * P; ++n) {
      const T* e = E + std::size_t(w.idx[n]) * Dc();
      T code = 0, commit = 0;
      for (std::size_t d = 0; d < Dc(); ++d) {
        const std::size_t i = n * Dc() + d;
        w.zq.data[i] = ze[i] + (w.st_e[i] - w.st_ze[i]);
        code += (w.st_ze[i] - e[d]) * (w.st_ze[i] - e[d]);
        commit += (ze[i] - w.st_e[i]) * (ze[i] - w.st_e[i]);
      }
      w.sq_code[n] = code;
      w.sq[n] = commit;
    }
  }
  // Fixes the last forward's codes, z_e and e_k for the straight-through check.
  void st_freeze(Work& w, std::size_t B) {
    std::copy(w.enc.output(), w.enc.output() + B * P * Dc(), w.st_ze.data());
    std::copy(w.zq.ptr(), w.zq.ptr() + B * P * Dc(), w.st_e.data());
    w.st_check = true;
  }
  // z_q -> out (the likelihood's parameters).
  void decode(Work& w, std::size_t B) {
    conv_stack_forward(w.dec, dec, w.zq.ptr(), params.data(), B);
    std::copy(w.dec.output(), w.dec.output() + B * data_dim(), w.out.ptr());
  }
  // -log p_prior of each position's code: the uniform prior's log K, or (stage 2) the
  // PixelCNN's -log p(k_i | k_<i).
  void prior_terms(Work& w, std::size_t B) {
    if (!prior_active()) {
      std::fill(w.kl.ptr(), w.kl.ptr() + B * P, T(std::log(double(K()))));
      return;
    }
    pixelcnn_mask(w.pw, prior, params.data());
    pixelcnn_forward(w.pw, prior, w.idx.data(), B);
    std::copy(w.pw.nll.begin(), w.pw.nll.begin() + long(B * P), w.kl.ptr());
  }
  void score(Work& w, std::size_t B) {
    auto rec = vec(w.rec.data(), B);
    auto raw = mat(w.raw.ptr(), 0, 0);
    likelihood_forward(rec, w.lw, lik, w.out.view(B), raw, w.x.view(B), params.data());
  }
  void forward(Work& w, std::size_t B) {
    encode(w, B);
    prior_terms(w, B);
    decode(w, B);
    score(w, B);
  }
  void add_kl_columns(Work& w, std::size_t B, double* acc) const {
    for (std::size_t i = 0; i < B * P; ++i) acc[i % P] += double(w.kl.data[i]);
  }
  // The codebook and commitment terms of the last forward, summed over its rows: added to
  // the training loss (not to the bound). With EMA there is no codebook term.
  double extra_loss(Work& w, std::size_t B) const {
    double code = 0, commit = 0;
    for (std::size_t n = 0; n < B * P; ++n) {
      commit += double(w.sq[n]);
      code += double(w.st_check ? w.sq_code[n] : w.sq[n]);
    }
    return (ema() ? 0.0 : code) + shape.beta * commit;
  }
  void log_weights(Work& w, std::size_t B, double* out) {
    for (std::size_t b = 0; b < B; ++b) {
      double lp = 0;
      for (std::size_t p = 0; p < P; ++p) lp -= double(w.kl.data[b * P + p]);
      out[b] = -double(w.rec[b]) + lp;  // log q(z|x) = 0: a point mass
    }
  }

  // grads += the gradient of sum_b c_b (rec_scale rec_b + rec_scale vq_b) with the
  // straight-through estimator; the prior terms have none (the uniform prior is fixed).
  void backward(Work& w, std::size_t B, T rec_scale) {
    if (prior_active()) return prior_backward(w, B);
    T* G = grads.data();
    auto dout = w.dout.view(B), draw = mat(w.raw.ptr(), 0, 0), raw = mat(w.raw.ptr(), 0, 0);
    const T* rows = w.row_weighted ? w.row_weight.data() : nullptr;
    likelihood_backward(dout, draw, w.lw, lik, w.out.view(B), raw, w.x.view(B), params.data(), G, rec_scale,
                        rows);
    std::copy(w.dout.ptr(), w.dout.ptr() + B * data_dim(), w.dec.output_grad());
    conv_stack_backward(w.dec, dec, w.zq.ptr(), w.dzq.ptr(), params.data(), G, B);
    if (rows)
      for (std::size_t n = 0; n < B * P; ++n) w.pos_scale[n] = rec_scale * rows[n / P];
    T* dE = ema() ? w.dcodebook.data() : G + codebook_off;
    vq_backward(w.enc.output_grad(), dE, w.dzq.ptr(), w.enc.output(), w.zq.ptr(), w.idx.data(), B * P, Dc(),
                T(shape.beta), rec_scale, rows ? w.pos_scale.data() : static_cast<const T*>(nullptr), !ema());
    conv_stack_backward(w.enc, enc, w.x.ptr(), static_cast<T*>(nullptr), params.data(), G, B);
  }

  // Stage 2: the prior's gradient of sum_b c_b sum_i unit_weight[i] (-log p(k_bi | k_b<i));
  // the autoencoder is frozen.
  void prior_backward(Work& w, std::size_t B) {
    for (std::size_t n = 0; n < B * P; ++n)
      w.prior_scale[n] = w.unit_weight[n % P] * (w.row_weighted ? w.row_weight[n / P] : T(1));
    pixelcnn_backward(w.pw, prior, w.idx.data(), B, w.prior_scale.data(), grads.data());
  }

  // After a training step: the EMA codebook update, dead-code restart (stage 1 only).
  void after_step(Work& w, std::size_t B) {
    if (!w.training || stage >= 2) return;
    const std::size_t N = B * P;
    T* S = state.data();
    if (ema())
      vq_ema_update(codebook(), S + ema_n_off, S + ema_m_off, w.batch_sum.data(), w.batch_count.data(),
                    w.enc.output(), w.idx.data(), N, K(), Dc(), T(shape.decay), T(shape.eps));
    if (shape.restart <= 0) return;
    if (!ema()) {
      std::fill(w.batch_count.begin(), w.batch_count.end(), T(0));
      vq_count(w.batch_count.data(), w.idx.data(), N);
    }
    for (uint32_t& p : w.pick) p = std::min<uint32_t>(p, uint32_t(N - 1));  // a short last batch
    vq_restart_dead(codebook(), S + usage_off, ema() ? S + ema_n_off : nullptr, ema() ? S + ema_m_off : nullptr,
                    w.batch_count.data(), w.enc.output(), w.pick.data(), K(), Dc(), T(shape.decay),
                    T(shape.restart));
  }

  bool has_base_codes() const { return false; }
  // The code index of each position, as T.
  void mean_codes(Work& w, std::size_t B, T* codes, T*) {
    encode(w, B);
    for (std::size_t n = 0; n < B * P; ++n) codes[n] = T(w.idx[n]);
  }
  void iw_prepare(Work& w, std::size_t m) {
    encode(w, 1);
    for (std::size_t r = 1; r < m; ++r) {
      std::copy(w.x.ptr(), w.x.ptr() + data_dim(), w.x.ptr() + r * data_dim());
      std::copy(w.zq.ptr(), w.zq.ptr() + P * Dc(), w.zq.ptr() + r * P * Dc());
      std::copy(w.idx.begin(), w.idx.begin() + long(P), w.idx.begin() + long(r * P));
    }
    prior_terms(w, m);
  }
  void iw_samples(Work& w, std::size_t m) {
    decode(w, m);
    score(w, m);
  }
  void set_codes(Work& w, std::size_t B, const T* codes) {
    const T* E = codebook();
    for (std::size_t n = 0; n < B * P; ++n) {
      const long k = std::lround(double(codes[n]));
      if (k < 0 || k >= long(K())) throw std::invalid_argument("VQ-VAE: a code index outside the codebook");
      w.idx[n] = int32_t(k);
      std::copy(E + std::size_t(k) * Dc(), E + (std::size_t(k) + 1) * Dc(), w.zq.ptr() + n * Dc());
    }
  }
  bool standard_prior() const { return false; }
  // Codes from the prior (after draw_noise): uniform, or ancestral sampling from the PixelCNN
  // in raster order (one forward pass per position; the inverse CDF of u at each).
  void prior_codes(Work& w, std::size_t B, T* codes) {
    if (!prior_active()) {
      for (std::size_t n = 0; n < B * P; ++n)
        codes[n] = T(std::min<std::size_t>(K() - 1, std::size_t(double(w.u.data[n]) * double(K()))));
      return;
    }
    std::fill(w.sample_idx.begin(), w.sample_idx.end(), 0);
    pixelcnn_mask(w.pw, prior, params.data());
    for (std::size_t p = 0; p < P; ++p) {
      pixelcnn_forward(w.pw, prior, w.sample_idx.data(), B);
      for (std::size_t b = 0; b < B; ++b) {
        const T* z = w.pw.logits.ptr() + (b * P + p) * K();
        const double m = double(*std::max_element(z, z + K()));
        double total = 0;
        for (std::size_t k = 0; k < K(); ++k) total += std::exp(double(z[k]) - m);
        const double target = double(w.u.data[b * P + p]) * total;
        std::size_t k = 0;
        for (double acc = std::exp(double(z[0]) - m); acc < target && k + 1 < K();)
          acc += std::exp(double(z[++k]) - m);
        w.sample_idx[b * P + p] = int32_t(k);
      }
    }
    for (std::size_t n = 0; n < B * P; ++n) codes[n] = T(w.sample_idx[n]);
  }
  void describe(std::map<std::string, double>& m) const {
    m["codebook_size"] = double(K());
    m["code_positions"] = double(P);
    if (has_prior()) m["prior_params"] = double(prior.end - prior.begin);
  }

  // Evaluation: code counts, the squared error of the decoder's mean, the quantisation error.
  void eval_sums(Work& w, std::size_t B, EvalSums& sums) const {
    std::vector<double>& count = sums["code_count"];
    count.resize(K(), 0.0);
    for (std::size_t n = 0; n < B * P; ++n) count[std::size_t(w.idx[n])] += 1;
    std::vector<double>& se = sums["sq_error"];
    se.resize(2, 0.0);
    const bool logits = lik.kind == LikelihoodKind::Bernoulli || lik.sigmoid_mean;
    for (std::size_t i = 0; i < B * data_dim(); ++i) {
      const double o = double(w.out.data[i]);
      const double mean = logits ? 1.0 / (1.0 + std::exp(-o)) : o;
      const double r = double(w.x.data[i]) - mean;
      se[0] += r * r;
    }
    for (std::size_t n = 0; n < B * P; ++n) se[1] += double(w.sq[n]);
  }
  void eval_report(const EvalSums& sums, std::size_t n, ElboReport& r) const {
    std::vector<double> usage = sums.at("code_count");
    r.metrics["codebook_perplexity"] = vq_perplexity(usage);
    double used = 0;
    for (double& c : usage) {
      used += c > 0;
      c /= double(n * P);
    }
    r.metrics["codes_used"] = used;
    r.vectors["code_usage"] = usage;
    r.metrics["rec_mse"] = sums.at("sq_error")[0] / double(n * data_dim());
    r.metrics["vq_distance"] = sums.at("sq_error")[1] / double(n);
    r.metrics["bound_bpd"] = -r.elbo / (double(data_dim()) * std::log(2.0));  // the bound in bits/dim
    // the uniform prior's -log p(z) (the same codes): what the PixelCNN prior improves on
    if (prior_active()) r.metrics["kl_uniform"] = double(P) * std::log(double(K()));
  }
};

// The shape --model vqvae asks for, for images of rows x cols (checked settings;
// models/vqvae.cpp, where the family is registered with its settings and factory).
VqShape vq_shape(const ConfigMap& config, std::size_t rows, std::size_t cols);

}  // namespace vae
