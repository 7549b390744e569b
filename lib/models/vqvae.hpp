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
//
// Two levels (VQ-VAE-2, Razavi et al. 2019; shape.levels = 2): the encoder above without its
// 1x1 conv gives features h on the bottom grid; enc_t (ReLU, 4x4 stride-2 conv, ReLU, 3x3 conv,
// R residual blocks, ReLU, 1x1 conv to D) takes h to a top grid of half the size, quantised with
// its own codebook; dec_t (3x3 conv, R residual blocks, ReLU, 4x4 stride-2 transposed conv to D)
// brings the top z_q to the bottom grid, and the bottom z_e is a 1x1 conv (quant_b) of
// [dec_t output, ReLU(h)]; the decoder reads [up_t(top z_q), bottom z_q], up_t a 4x4 stride-2
// transposed conv. Straight through at both levels, each with its codebook and commitment terms
// (or EMA update, restart). A row's codes (units) are the bottom grid's P then the top grid's
// Pt, and the KL is -log p(bottom codes | top codes) - log p(top codes): uniform, or in stage 2
// a PixelCNN per level, the bottom one conditioned on the top codes (nn/pixelcnn.hpp), as the
// paper's.
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
  // Two levels (VQ-VAE-2): a top grid of top_codebook codes (of dimension code_dim), half
  // the bottom grid's size, conditioning the bottom one.
  std::size_t levels = 1, top_codebook = 64;
  // The PixelCNN prior (nn/pixelcnn.hpp), trained in a second stage of prior_epochs epochs on
  // the frozen autoencoder's codes (0: no prior, the uniform one throughout); with two levels
  // one PixelCNN per level.
  std::size_t prior_epochs = 0, prior_layers = 4, prior_features = 32;
};

// One level's codes: its codebook's size K, its grid's P positions, and where its codebook
// and statistics live (the codebook in params, or with EMA in state, beside N_k and m_k).
struct VqLevel {
  std::size_t K = 0, P = 0;
  std::size_t codebook_off = 0, ema_n_off = 0, ema_m_off = 0, usage_off = 0;
};

// One level's quantiser buffers for up to B examples (B P rows of D).
template <class T>
struct VqLevelWork {
  Activation2<T> zq, dzq;
  Buffer<T> sq, scores, enorm, dcodebook, batch_sum, batch_count, pos_scale;
  // The straight-through check (tests): with st_check, forward keeps the codes and the base
  // point's z_e and e_k (st_ze, st_e) and computes z_q = z_e + (st_e - st_ze), the codebook
  // term ||st_ze - e_k||^2 (sq_code) and the commitment term beta ||z_e - st_e||^2: a loss
  // whose exact gradient is the straight-through one, for finite differences.
  Buffer<T> st_ze, st_e, sq_code;
  std::vector<int32_t> idx;
  std::vector<uint32_t> pick;       // dead-code restart: a batch row per code
  Buffer<T> prior_scale;            // [B P]: the weight of each position's -log p in backward
  std::vector<int32_t> sample_idx;  // prior sampling
  void reserve(const VqLevel& l, std::size_t B, std::size_t D, bool prior) {
    const std::size_t N = B * l.P;
    zq.reserve(B, l.P * D);
    dzq.reserve(B, l.P * D);
    for (Buffer<T>* b : {&sq, &sq_code, &pos_scale}) b->assign(N, T(0));
    for (Buffer<T>* b : {&st_ze, &st_e}) b->assign(N * D, T(0));
    scores.assign(N * l.K, T(0));
    for (Buffer<T>* b : {&enorm, &batch_count}) b->assign(l.K, T(0));
    for (Buffer<T>* b : {&dcodebook, &batch_sum}) b->assign(l.K * D, T(0));
    idx.assign(N, 0);
    pick.assign(l.K, 0);
    prior_scale.assign(prior ? N : 0, T(0));
    sample_idx.assign(prior ? N : 0, 0);
  }
};

template <class T>
class VqVae {
 public:
  static constexpr bool kDiscreteCodes = true;
  VqShape shape;
  // One level: enc -> z_e; dec. Two levels (VQ-VAE-2): enc (bottom features h), enc_t (h ->
  // the top z_e), dec_t (top z_q -> the bottom grid), quant_b ([dec_t, ReLU(h)] -> the bottom
  // z_e), up_t (top z_q -> the bottom grid), dec ([up_t, bottom z_q] -> x).
  ConvStack enc, dec, enc_t, dec_t, quant_b, up_t;
  PixelCnn prior, prior_t;     // over the bottom codes, over the top codes
  int stage = 1;               // 1: the autoencoder (uniform prior); 2: the PixelCNN prior on frozen codes
  std::size_t P = 0, Pt = 0;   // bottom and top grid positions (Pt = 0 with one level)
  std::vector<VqLevel> level;  // [0]: the bottom (the only one with one level), [1]: the top
  Buffer<T> params, grads, state;
  Likelihood<T> lik;

  VqVae(const VqShape& s, const Likelihood<T>& l) : shape(s), lik(l) {
    if (lik.per_pixel()) throw std::invalid_argument("the VQ-VAE has no per-pixel sigma head");
    if (s.levels != 1 && s.levels != 2) throw std::invalid_argument("the VQ-VAE has one or two levels");
    ParamLayout layout, st;
    const std::size_t C = s.channels, D = s.code_dim;
    enc.start(s.rows, s.cols, 1);
    enc.conv(layout, C, 4, 2, 1, false);
    const std::size_t h1 = enc.h, w1 = enc.w;
    enc.conv(layout, C, 4, 2, 1, true);
    enc.conv(layout, C, 3, 1, 1, true);
    for (std::size_t r = 0; r < s.res_blocks; ++r) enc.residual_block(layout, s.res_hidden, 3);
    const std::size_t hb = enc.h, wb = enc.w;
    P = hb * wb;
    if (two_levels()) {
      enc_t.start(hb, wb, C);  // a stride-2 encoder of the bottom features, as the paper's
      enc_t.conv(layout, C, 4, 2, 1, true);
      enc_t.conv(layout, C, 3, 1, 1, true);
      for (std::size_t r = 0; r < s.res_blocks; ++r) enc_t.residual_block(layout, s.res_hidden, 3);
      enc_t.conv(layout, D, 1, 1, 0, true);
      Pt = enc_t.h * enc_t.w;
      dec_t.start(enc_t.h, enc_t.w, D);
      dec_t.conv(layout, C, 3, 1, 1, false);
      for (std::size_t r = 0; r < s.res_blocks; ++r) dec_t.residual_block(layout, s.res_hidden, 3);
      dec_t.conv_transpose(layout, D, 4, 2, 1, hb, wb, true);
      quant_b.start(hb, wb, D + C);  // ReLU(h) is applied to h's part of the concatenation only
      quant_b.conv(layout, D, 1, 1, 0, false);
      up_t.start(enc_t.h, enc_t.w, D);
      up_t.conv_transpose(layout, D, 4, 2, 1, hb, wb, false);
    } else {
      enc.conv(layout, D, 1, 1, 0, true);
    }
    dec.start(hb, wb, two_levels() ? 2 * D : D);
    dec.conv(layout, C, 3, 1, 1, false);
    for (std::size_t r = 0; r < s.res_blocks; ++r) dec.residual_block(layout, s.res_hidden, 3);
    dec.conv_transpose(layout, C, 4, 2, 1, h1, w1, true);
    dec.conv_transpose(layout, 1, 4, 2, 1, s.rows, s.cols, true);
    level.resize(s.levels);
    level[0].K = s.codebook;
    level[0].P = P;
    if (two_levels()) {
      level[1].K = s.top_codebook;
      level[1].P = Pt;
    }
    for (VqLevel& v : level) {
      if (ema()) {
        v.codebook_off = st.take(v.K * D);
        v.ema_n_off = st.take(v.K);
        v.ema_m_off = st.take(v.K * D);
      } else {
        v.codebook_off = layout.take(v.K * D);
      }
    }
    for (VqLevel& v : level)
      if (s.restart > 0) v.usage_off = st.take(v.K);
    lik.take_param(layout);
    if (has_prior())  // with two levels the bottom prior is conditioned on the top codes
      prior.build(layout, hb, wb, K(), s.prior_features, s.prior_layers, 3, two_levels() ? s.top_codebook : 0,
                  enc_t.h, enc_t.w);
    if (has_prior() && two_levels())
      prior_t.build(layout, enc_t.h, enc_t.w, level[1].K, s.prior_features, s.prior_layers, 3);
    params.assign(layout.size, T(0));
    grads.assign(layout.size, T(0));
    state.assign(st.size, T(0));
  }

  bool ema() const { return shape.update == VqUpdate::Ema; }
  bool two_levels() const { return shape.levels == 2; }
  bool has_prior() const { return shape.prior_epochs > 0; }
  bool prior_active() const { return has_prior() && stage >= 2; }
  // Training stages: the trainer runs stage2_epochs() more epochs after the configured ones,
  // switching with set_stage(2) (and a fresh optimizer).
  int64_t stage2_epochs() const { return int64_t(shape.prior_epochs); }
  void set_stage(int s) { stage = s; }
  T* codebook(std::size_t lv = 0) { return (ema() ? state.data() : params.data()) + level[lv].codebook_off; }
  const T* codebook(std::size_t lv = 0) const {
    return (ema() ? state.data() : params.data()) + level[lv].codebook_off;
  }
  std::size_t K() const { return shape.codebook; }  // the bottom level's
  std::size_t Dc() const { return shape.code_dim; }

  struct Work : LossWeights<T> {
    std::size_t max_batch = 0;
    bool training = true;
    Activation2<T> x, out, dout, raw, kl, u;
    LikelihoodWork<T> lw;
    ConvStackWork<T> enc, dec, enc_t, dec_t, quant_b, up_t;
    std::vector<VqLevelWork<T>> lv;  // per level
    // Two levels: the bottom quantiser's input [dec_t, ReLU(h)] and the decoder's [up_t, z_q],
    // their gradients, and the gradients of h and of the top z_q that meet two paths.
    Activation2<T> cat_b, dcat_b, cat_d, dcat_d, dh, dh_t, dzq_t;
    Buffer<T> rec;
    bool st_check = false;     // the straight-through check (VqLevelWork)
    PixelCnnWork<T> pw, pw_t;  // the priors' buffers (bottom, top)
  };

  std::size_t data_dim() const { return shape.rows * shape.cols; }
  // The codes of a row: the bottom grid's P, then the top grid's Pt.
  std::size_t units() const { return P + Pt; }
  std::vector<std::size_t> unit_layers() const {
    return two_levels() ? std::vector<std::size_t>{P, Pt} : std::vector<std::size_t>{};
  }

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
    add("enc_t", enc_t);
    add("dec_t", dec_t);
    add("quant_b", quant_b);
    add("up_t", up_t);
    add("dec", dec);
    if (!ema()) {
      g.push_back({"codebook", level[0].codebook_off, K() * Dc()});
      if (two_levels()) g.push_back({"codebook_t", level[1].codebook_off, level[1].K * Dc()});
    }
    lik.add_group(g);
    auto add_prior = [&](const std::string& name, const PixelCnn& net) {
      g.push_back({name + ".embedding", net.emb, net.K * net.F});
      auto conv = [&](const std::string& n, const Conv2d& c) {
        g.push_back({n + ".W", c.w, c.cout * c.patch()});
        g.push_back({n + ".b", c.b, c.cout});
      };
      conv(name + ".first", net.first);
      for (std::size_t l = 0; l < net.layers; ++l) {
        conv(name + ".masked" + std::to_string(l), net.masked[l]);
        conv(name + ".proj" + std::to_string(l), net.proj[l]);
      }
      conv(name + ".out", net.out);
      if (!net.conditioned()) return;
      g.push_back({name + ".cond_embedding", net.cond_emb, net.cond_K * net.F});
      for (std::size_t l = 0; l < net.cond.size(); ++l) conv(name + ".cond" + std::to_string(l), net.cond[l]);
    };
    if (has_prior()) add_prior("prior", prior);
    if (has_prior() && two_levels()) add_prior("prior_t", prior_t);
    return g;
  }
  // Convolutions as PyTorch initialises them; the codebook U(-1/K, 1/K) as the reference
  // implementations; with EMA, m_k = e_k and N_k = 1, so that m_k / N_k starts at e_k (with
  // N_k = 0 an unused code's smoothed count would be ~eps and its e_k blow up at the first step).
  void initialize(Init init, double std_dev, std::mt19937_64& rng) {
    for (const ConvStack* s : {&enc, &enc_t, &dec_t, &quant_b, &up_t, &dec})
      s->initialize(params.data(), init, std_dev, rng);
    for (std::size_t i = 0; i < level.size(); ++i) {
      const VqLevel& v = level[i];
      std::uniform_real_distribution<double> u(-1.0 / double(v.K), 1.0 / double(v.K));
      T* E = codebook(i);
      for (std::size_t j = 0; j < v.K * Dc(); ++j) E[j] = T(u(rng));
      if (ema()) {
        std::copy(E, E + v.K * Dc(), state.data() + v.ema_m_off);
        std::fill(state.begin() + long(v.ema_n_off), state.begin() + long(v.ema_n_off + v.K), T(1));
      }
      if (shape.restart > 0)
        std::fill(state.begin() + long(v.usage_off), state.begin() + long(v.usage_off + v.K), T(1));
    }
    lik.initialize(params.data());
    if (has_prior()) prior.initialize(params.data(), init, std_dev, rng);
    if (has_prior() && two_levels()) prior_t.initialize(params.data(), init, std_dev, rng);
  }

  void reserve(Work& w, std::size_t B) const {
    const std::size_t D = data_dim(), C = shape.channels;
    w.max_batch = B;
    for (Activation2<T>* a : {&w.x, &w.out, &w.dout}) a->reserve(B, D);
    w.raw.reserve(0, 0);
    w.kl.reserve(B, units());
    w.u.reserve(B, units());
    w.lw.reserve(B, D);
    w.enc.reserve(enc, B);
    w.dec.reserve(dec, B);
    w.lv.resize(level.size());
    for (std::size_t i = 0; i < level.size(); ++i) w.lv[i].reserve(level[i], B, Dc(), has_prior());
    if (two_levels()) {
      w.enc_t.reserve(enc_t, B);
      w.dec_t.reserve(dec_t, B);
      w.quant_b.reserve(quant_b, B);
      w.up_t.reserve(up_t, B);
      for (Activation2<T>* a : {&w.cat_b, &w.dcat_b}) a->reserve(B, P * (Dc() + C));
      for (Activation2<T>* a : {&w.cat_d, &w.dcat_d}) a->reserve(B, P * 2 * Dc());
      for (Activation2<T>* a : {&w.dh, &w.dh_t}) a->reserve(B, P * C);
      w.dzq_t.reserve(B, Pt * Dc());
    }
    w.rec.assign(B, T(0));
    w.reserve_weights(B, units());
    if (has_prior()) w.pw.reserve(prior, B, params.size());
    if (has_prior() && two_levels()) w.pw_t.reserve(prior_t, B, params.size());
  }

  // Uniforms for prior sampling (one per code) and, for dead-code restart, a batch position
  // per code of each level. Forward itself is deterministic.
  void draw_noise(Work& w, std::size_t rows, std::mt19937_64& rng) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (std::size_t i = 0; i < rows * units(); ++i) w.u.data[i] = T(u(rng));
    if (shape.restart > 0)
      for (std::size_t i = 0; i < level.size(); ++i) {
        std::uniform_int_distribution<uint32_t> pick(0, uint32_t(rows * level[i].P - 1));
        for (uint32_t& p : w.lv[i].pick) p = pick(rng);
      }
  }

  // A level's encoder output z_e [B P, D] and its gradient.
  T* ze(Work& w, std::size_t lv) {
    if (lv == 1) return w.enc_t.output();
    return two_levels() ? w.quant_b.output() : w.enc.output();
  }
  T* dze(Work& w, std::size_t lv) {
    if (lv == 1) return w.enc_t.output_grad();
    return two_levels() ? w.quant_b.output_grad() : w.enc.output_grad();
  }
  // x -> the codes of every level and their z_q. Two levels: the top first; the bottom
  // quantiser reads the top decoder's output beside the bottom features.
  void encode(Work& w, std::size_t B) {
    conv_stack_forward(w.enc, enc, w.x.ptr(), params.data(), B);
    if (two_levels()) {
      conv_stack_forward(w.enc_t, enc_t, w.enc.output(), params.data(), B);
      quantise(w, 1, B);
      conv_stack_forward(w.dec_t, dec_t, w.lv[1].zq.ptr(), params.data(), B);
      const std::size_t C = shape.channels, N = B * P;
      concat_channels(w.cat_b.ptr(), w.dec_t.output(), Dc(), w.enc.output(), C, N);
      T* c = w.cat_b.ptr();
      for (std::size_t n = 0; n < N; ++n)
        for (std::size_t j = Dc(); j < Dc() + C; ++j)
          c[n * (Dc() + C) + j] = std::max(c[n * (Dc() + C) + j], T(0));
      conv_stack_forward(w.quant_b, quant_b, w.cat_b.ptr(), params.data(), B);
    }
    quantise(w, 0, B);
  }
  void quantise(Work& w, std::size_t lv, std::size_t B) {
    if (w.st_check) return st_quantise(w, lv, B);
    VqLevelWork<T>& q = w.lv[lv];
    vq_assign(q.idx.data(), q.zq.ptr(), q.sq.data(), q.scores.data(), q.enorm.data(), ze(w, lv), codebook(lv),
              B * level[lv].P, level[lv].K, Dc());
  }
  // Quantisation in the straight-through check (see VqLevelWork): codes fixed.
  void st_quantise(Work& w, std::size_t lv, std::size_t B) {
    VqLevelWork<T>& q = w.lv[lv];
    const T* z = ze(w, lv);
    const T* E = codebook(lv);
    for (std::size_t n = 0; n < B * level[lv].P; ++n) {
      const T* e = E + std::size_t(q.idx[n]) * Dc();
      T code = 0, commit = 0;
      for (std::size_t d = 0; d < Dc(); ++d) {
        const std::size_t i = n * Dc() + d;
        q.zq.data[i] = z[i] + (q.st_e[i] - q.st_ze[i]);
        code += (q.st_ze[i] - e[d]) * (q.st_ze[i] - e[d]);
        commit += (z[i] - q.st_e[i]) * (z[i] - q.st_e[i]);
      }
      q.sq_code[n] = code;
      q.sq[n] = commit;
    }
  }
  // Fixes the last forward's codes, z_e and e_k of every level for the straight-through check.
  void st_freeze(Work& w, std::size_t B) {
    for (std::size_t lv = 0; lv < level.size(); ++lv) {
      VqLevelWork<T>& q = w.lv[lv];
      const std::size_t n = B * level[lv].P * Dc();
      std::copy(ze(w, lv), ze(w, lv) + n, q.st_ze.data());
      std::copy(q.zq.ptr(), q.zq.ptr() + n, q.st_e.data());
    }
    w.st_check = true;
  }
  // z_q (every level's) -> out (the likelihood's parameters).
  void decode(Work& w, std::size_t B) {
    const T* in = w.lv[0].zq.ptr();
    if (two_levels()) {
      conv_stack_forward(w.up_t, up_t, w.lv[1].zq.ptr(), params.data(), B);
      concat_channels(w.cat_d.ptr(), w.up_t.output(), Dc(), w.lv[0].zq.ptr(), Dc(), B * P);
      in = w.cat_d.ptr();
    }
    conv_stack_forward(w.dec, dec, in, params.data(), B);
    std::copy(w.dec.output(), w.dec.output() + B * data_dim(), w.out.ptr());
  }
  // -log p_prior of each code, kl [B, P + Pt]: the uniform prior's log K of its level, or
  // (stage 2) each level's PixelCNN's -log p(k_i | k_<i), the bottom one's conditioned on
  // the top codes with two levels: -log p(k_b,i | k_b,<i, k_t).
  void prior_terms(Work& w, std::size_t B) {
    const std::size_t U = units();
    for (std::size_t lv = 0, u0 = 0; lv < level.size(); u0 += level[lv++].P) {
      const std::size_t Pl = level[lv].P;
      if (!prior_active()) {
        for (std::size_t b = 0; b < B; ++b)
          std::fill(w.kl.ptr() + b * U + u0, w.kl.ptr() + b * U + u0 + Pl, T(std::log(double(level[lv].K))));
        continue;
      }
      PixelCnnWork<T>& pw = lv == 0 ? w.pw : w.pw_t;
      const PixelCnn& net = lv == 0 ? prior : prior_t;
      pixelcnn_mask(pw, net, params.data());
      pixelcnn_forward(pw, net, w.lv[lv].idx.data(), B, cond_codes(w, lv, false));
      for (std::size_t b = 0; b < B; ++b)
        std::copy(pw.nll.begin() + long(b * Pl), pw.nll.begin() + long((b + 1) * Pl), w.kl.ptr() + b * U + u0);
    }
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
    const std::size_t U = units();
    for (std::size_t i = 0; i < B * U; ++i) acc[i % U] += double(w.kl.data[i]);
  }
  // The codebook and commitment terms of the last forward, summed over its rows and levels:
  // added to the training loss (not to the bound). With EMA there is no codebook term.
  double extra_loss(Work& w, std::size_t B) const {
    double code = 0, commit = 0;
    for (std::size_t lv = 0; lv < level.size(); ++lv) {
      const VqLevelWork<T>& q = w.lv[lv];
      for (std::size_t n = 0; n < B * level[lv].P; ++n) {
        commit += double(q.sq[n]);
        code += double(w.st_check ? q.sq_code[n] : q.sq[n]);
      }
    }
    return (ema() ? 0.0 : code) + shape.beta * commit;
  }
  void log_weights(Work& w, std::size_t B, double* out) {
    for (std::size_t b = 0; b < B; ++b) {
      double lp = 0;
      for (std::size_t p = 0; p < units(); ++p) lp -= double(w.kl.data[b * units() + p]);
      out[b] = -double(w.rec[b]) + lp;  // log q(z|x) = 0: a point mass
    }
  }

  // grads += the gradient of sum_b c_b (rec_scale rec_b + rec_scale vq_b) with the
  // straight-through estimator at every level; the prior terms have none (the uniform prior
  // is fixed).
  void backward(Work& w, std::size_t B, T rec_scale) {
    if (prior_active()) return prior_backward(w, B);
    T* G = grads.data();
    auto dout = w.dout.view(B), draw = mat(w.raw.ptr(), 0, 0), raw = mat(w.raw.ptr(), 0, 0);
    const T* rows = w.row_weighted ? w.row_weight.data() : nullptr;
    likelihood_backward(dout, draw, w.lw, lik, w.out.view(B), raw, w.x.view(B), params.data(), G, rec_scale,
                        rows);
    std::copy(w.dout.ptr(), w.dout.ptr() + B * data_dim(), w.dec.output_grad());
    if (!two_levels()) {
      conv_stack_backward(w.dec, dec, w.lv[0].zq.ptr(), w.lv[0].dzq.ptr(), params.data(), G, B);
      quantiser_backward(w, 0, B, rec_scale);
      conv_stack_backward(w.enc, enc, w.x.ptr(), static_cast<T*>(nullptr), params.data(), G, B);
      return;
    }
    two_level_backward(w, B, rec_scale);
  }
  // A level's quantiser: the gradient of its z_e (straight through plus the commitment term)
  // and of its codebook (the codebook term, unless EMA).
  void quantiser_backward(Work& w, std::size_t lv, std::size_t B, T rec_scale) {
    VqLevelWork<T>& q = w.lv[lv];
    const std::size_t N = B * level[lv].P;
    const T* rows = w.row_weighted ? w.row_weight.data() : nullptr;
    if (rows)
      for (std::size_t n = 0; n < N; ++n) q.pos_scale[n] = rec_scale * rows[n / level[lv].P];
    T* dE = ema() ? q.dcodebook.data() : grads.data() + level[lv].codebook_off;
    vq_backward(dze(w, lv), dE, q.dzq.ptr(), ze(w, lv), q.zq.ptr(), q.idx.data(), N, Dc(), T(shape.beta),
                rec_scale, rows ? q.pos_scale.data() : static_cast<const T*>(nullptr), !ema());
  }
  // Two levels, from the decoder's output gradient: the decoder splits into the bottom z_q and
  // up_t; the bottom quantiser's input into dec_t and ReLU(h); the top z_q collects up_t's and
  // dec_t's gradients, h the top encoder's and the bottom quantiser's.
  void two_level_backward(Work& w, std::size_t B, T rec_scale) {
    T* G = grads.data();
    T* Pm = params.data();
    const std::size_t C = shape.channels, N = B * P, D = Dc();
    conv_stack_backward(w.dec, dec, w.cat_d.ptr(), w.dcat_d.ptr(), Pm, G, B);
    split_channels(w.up_t.output_grad(), D, w.lv[0].dzq.ptr(), D, w.dcat_d.ptr(), N);
    conv_stack_backward(w.up_t, up_t, w.lv[1].zq.ptr(), w.lv[1].dzq.ptr(), Pm, G, B);
    quantiser_backward(w, 0, B, rec_scale);
    conv_stack_backward(w.quant_b, quant_b, w.cat_b.ptr(), w.dcat_b.ptr(), Pm, G, B);
    split_channels(w.dec_t.output_grad(), D, w.dh.ptr(), C, w.dcat_b.ptr(), N);
    const T* h = w.enc.output();
    T* dh = w.dh.ptr();
    for (std::size_t i = 0; i < N * C; ++i) dh[i] = h[i] > T(0) ? dh[i] : T(0);
    conv_stack_backward(w.dec_t, dec_t, w.lv[1].zq.ptr(), w.dzq_t.ptr(), Pm, G, B);
    add_to(w.lv[1].dzq.ptr(), w.dzq_t.ptr(), B * Pt * D);
    quantiser_backward(w, 1, B, rec_scale);
    conv_stack_backward(w.enc_t, enc_t, w.enc.output(), w.dh_t.ptr(), Pm, G, B);
    T* dout = w.enc.output_grad();
    for (std::size_t i = 0; i < N * C; ++i) dout[i] = dh[i] + w.dh_t.data[i];
    conv_stack_backward(w.enc, enc, w.x.ptr(), static_cast<T*>(nullptr), Pm, G, B);
  }

  // The codes level lv's prior is conditioned on: the top codes for the bottom prior of two
  // levels (those of the last forward, or when sampling the top codes just drawn), else none.
  const int32_t* cond_codes(Work& w, std::size_t lv, bool sampled) const {
    if (lv != 0 || !two_levels()) return nullptr;
    return sampled ? w.lv[1].sample_idx.data() : w.lv[1].idx.data();
  }

  // Stage 2: the priors' gradient of sum_b c_b sum_i unit_weight[i] (-log p(k_bi | k_b<i));
  // the autoencoder is frozen.
  void prior_backward(Work& w, std::size_t B) {
    for (std::size_t lv = 0, u0 = 0; lv < level.size(); u0 += level[lv++].P) {
      const std::size_t Pl = level[lv].P;
      VqLevelWork<T>& q = w.lv[lv];
      for (std::size_t n = 0; n < B * Pl; ++n)
        q.prior_scale[n] = w.unit_weight[u0 + n % Pl] * (w.row_weighted ? w.row_weight[n / Pl] : T(1));
      pixelcnn_backward(lv == 0 ? w.pw : w.pw_t, lv == 0 ? prior : prior_t, q.idx.data(), B,
                        q.prior_scale.data(), grads.data(), cond_codes(w, lv, false));
    }
  }

  // After a training step: the EMA codebook update, dead-code restart (stage 1 only), level
  // by level.
  void after_step(Work& w, std::size_t B) {
    if (!w.training || stage >= 2) return;
    for (std::size_t lv = 0; lv < level.size(); ++lv) level_after_step(w, lv, B);
  }
  void level_after_step(Work& w, std::size_t lv, std::size_t B) {
    const VqLevel& v = level[lv];
    VqLevelWork<T>& q = w.lv[lv];
    const std::size_t N = B * v.P;
    T* S = state.data();
    if (ema())
      vq_ema_update(codebook(lv), S + v.ema_n_off, S + v.ema_m_off, q.batch_sum.data(), q.batch_count.data(),
                    ze(w, lv), q.idx.data(), N, v.K, Dc(), T(shape.decay), T(shape.eps));
    if (shape.restart <= 0) return;
    if (!ema()) {
      std::fill(q.batch_count.begin(), q.batch_count.end(), T(0));
      vq_count(q.batch_count.data(), q.idx.data(), N);
    }
    for (uint32_t& p : q.pick) p = std::min<uint32_t>(p, uint32_t(N - 1));  // a short last batch
    vq_restart_dead(codebook(lv), S + v.usage_off, ema() ? S + v.ema_n_off : nullptr,
                    ema() ? S + v.ema_m_off : nullptr, q.batch_count.data(), ze(w, lv), q.pick.data(), v.K,
                    Dc(), T(shape.decay), T(shape.restart));
  }

  bool has_base_codes() const { return false; }
  // The code index of each position, as T: [B, P + Pt], the bottom grid's then the top's.
  void mean_codes(Work& w, std::size_t B, T* codes, T*) {
    encode(w, B);
    for (std::size_t lv = 0, u0 = 0; lv < level.size(); u0 += level[lv++].P)
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t p = 0; p < level[lv].P; ++p)
          codes[b * units() + u0 + p] = T(w.lv[lv].idx[b * level[lv].P + p]);
  }
  void iw_prepare(Work& w, std::size_t m) {
    encode(w, 1);
    for (std::size_t r = 1; r < m; ++r) {
      std::copy(w.x.ptr(), w.x.ptr() + data_dim(), w.x.ptr() + r * data_dim());
      for (std::size_t lv = 0; lv < level.size(); ++lv) {
        VqLevelWork<T>& q = w.lv[lv];
        const std::size_t Pl = level[lv].P;
        std::copy(q.zq.ptr(), q.zq.ptr() + Pl * Dc(), q.zq.ptr() + r * Pl * Dc());
        std::copy(q.idx.begin(), q.idx.begin() + long(Pl), q.idx.begin() + long(r * Pl));
      }
    }
    prior_terms(w, m);
  }
  void iw_samples(Work& w, std::size_t m) {
    decode(w, m);
    score(w, m);
  }
  void set_codes(Work& w, std::size_t B, const T* codes) {
    for (std::size_t lv = 0, u0 = 0; lv < level.size(); u0 += level[lv++].P) {
      const T* E = codebook(lv);
      VqLevelWork<T>& q = w.lv[lv];
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t p = 0; p < level[lv].P; ++p) {
          const long k = std::lround(double(codes[b * units() + u0 + p]));
          if (k < 0 || k >= long(level[lv].K))
            throw std::invalid_argument("VQ-VAE: a code index outside the codebook");
          const std::size_t n = b * level[lv].P + p;
          q.idx[n] = int32_t(k);
          std::copy(E + std::size_t(k) * Dc(), E + (std::size_t(k) + 1) * Dc(), q.zq.ptr() + n * Dc());
        }
    }
  }
  bool standard_prior() const { return false; }
  // Codes from the prior (after draw_noise), [B, P + Pt]: uniform, or ancestral sampling
  // from each level's PixelCNN (the top first) in raster order.
  void prior_codes(Work& w, std::size_t B, T* codes) {
    const std::size_t U = units();
    for (std::size_t lv = level.size(), u0 = U; lv-- > 0;) {
      u0 -= level[lv].P;
      const std::size_t Pl = level[lv].P, Kl = level[lv].K;
      if (!prior_active()) {
        for (std::size_t b = 0; b < B; ++b)
          for (std::size_t p = 0; p < Pl; ++p) {
            const std::size_t i = b * U + u0 + p;
            codes[i] = T(std::min<std::size_t>(Kl - 1, std::size_t(double(w.u.data[i]) * double(Kl))));
          }
        continue;
      }
      int32_t* idx = w.lv[lv].sample_idx.data();
      pixelcnn_sample(lv == 0 ? w.pw : w.pw_t, lv == 0 ? prior : prior_t, idx, w.u.ptr() + u0, U, B,
                      cond_codes(w, lv, true));
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t p = 0; p < Pl; ++p) codes[b * U + u0 + p] = T(idx[b * Pl + p]);
    }
  }
  // idx [B, net's positions] <- ancestral samples of the PixelCNN (one forward pass per
  // position; the inverse CDF of the uniform u[b * u_stride + p] at each).
  void pixelcnn_sample(PixelCnnWork<T>& pw, const PixelCnn& net, int32_t* idx, const T* u, std::size_t u_stride,
                       std::size_t B, const int32_t* cond) {
    const std::size_t Pl = net.positions(), Kl = net.K;
    std::fill(idx, idx + B * Pl, 0);
    pixelcnn_mask(pw, net, params.data());
    for (std::size_t p = 0; p < Pl; ++p) {
      pixelcnn_forward(pw, net, idx, B, cond);
      for (std::size_t b = 0; b < B; ++b) {
        const T* z = pw.logits.ptr() + (b * Pl + p) * Kl;
        const double m = double(*std::max_element(z, z + Kl));
        double total = 0;
        for (std::size_t k = 0; k < Kl; ++k) total += std::exp(double(z[k]) - m);
        const double target = double(u[b * u_stride + p]) * total;
        std::size_t k = 0;
        for (double acc = std::exp(double(z[0]) - m); acc < target && k + 1 < Kl;)
          acc += std::exp(double(z[++k]) - m);
        idx[b * Pl + p] = int32_t(k);
      }
    }
  }
  void describe(std::map<std::string, double>& m) const {
    m["codebook_size"] = double(K());
    m["code_positions"] = double(P);
    if (two_levels()) {
      m["codebook_size_top"] = double(level[1].K);
      m["code_positions_top"] = double(Pt);
    }
    if (has_prior()) m["prior_params"] = double(prior.end - prior.begin + prior_t.end - prior_t.begin);
  }

  // Evaluation: code counts per level, the squared error of the decoder's mean, the
  // quantisation error (all levels).
  void eval_sums(Work& w, std::size_t B, EvalSums& sums) const {
    for (std::size_t lv = 0; lv < level.size(); ++lv) {
      std::vector<double>& count = sums[lv == 0 ? "code_count" : "code_count_top"];
      count.resize(level[lv].K, 0.0);
      for (std::size_t n = 0; n < B * level[lv].P; ++n) count[std::size_t(w.lv[lv].idx[n])] += 1;
    }
    std::vector<double>& se = sums["sq_error"];
    se.resize(2, 0.0);
    const bool logits = lik.kind == LikelihoodKind::Bernoulli || lik.sigmoid_mean;
    for (std::size_t i = 0; i < B * data_dim(); ++i) {
      const double o = double(w.out.data[i]);
      const double mean = logits ? 1.0 / (1.0 + std::exp(-o)) : o;
      const double r = double(w.x.data[i]) - mean;
      se[0] += r * r;
    }
    for (std::size_t lv = 0; lv < level.size(); ++lv)
      for (std::size_t n = 0; n < B * level[lv].P; ++n) se[1] += double(w.lv[lv].sq[n]);
  }
  void eval_report(const EvalSums& sums, std::size_t n, ElboReport& r) const {
    for (std::size_t lv = 0; lv < level.size(); ++lv) {
      const std::string suffix = lv == 0 ? "" : "_top";
      std::vector<double> usage = sums.at("code_count" + suffix);
      r.metrics["codebook_perplexity" + suffix] = vq_perplexity(usage);
      double used = 0;
      for (double& c : usage) {
        used += c > 0;
        c /= double(n * level[lv].P);
      }
      r.metrics["codes_used" + suffix] = used;
      r.vectors["code_usage" + suffix] = usage;
    }
    r.metrics["rec_mse"] = sums.at("sq_error")[0] / double(n * data_dim());
    r.metrics["vq_distance"] = sums.at("sq_error")[1] / double(n);
    r.metrics["bound_bpd"] = -r.elbo / (double(data_dim()) * std::log(2.0));  // the bound in bits/dim
    // the uniform prior's -log p(z) (the same codes): what the PixelCNN prior improves on
    if (prior_active()) {
      double uniform = 0;
      for (const VqLevel& v : level) uniform += double(v.P) * std::log(double(v.K));
      r.metrics["kl_uniform"] = uniform;
    }
  }
};

// The shape --model vqvae asks for, for images of rows x cols (checked settings;
// models/vqvae.cpp, where the family is registered with its settings and factory).
VqShape vq_shape(const ConfigMap& config, std::size_t rows, std::size_t cols);

}  // namespace vae
