// NVAE-small: the deep hierarchical convolutional VAE of Vahdat & Kautz (2020), "NVAE: A Deep
// Hierarchical Variational Autoencoder", at a size that trains on a CPU, as a family under
// the model contract (models/contract.hpp).
//
// The image (H x W, one channel) is padded to a multiple of 2^(pre + scales - 1) with zeros
// (MNIST: 28 -> 32, as the paper does), scaled to 2x - 1, and the likelihood scores the
// centre H x W crop of the decoder's output (the padding is no data).
//
//   encoder  stem Conv3x3(1 -> C) -> `pre` down-sampling encoder cells (C -> 4C at 8x8 for
//            MNIST with pre = 2) -> for each scale (finest first): per group `cells` encoder
//            cells, the features after each group recorded for the combiner; a down-sampling
//            cell between scales -> enc0 = ELU - Conv1x1 - ELU (the top group's features).
//   decoder  s = a learned input h_top x w_top x C_top (NVAE's prior_ftr0, not a function of
//            anything), then for each group l = 0 .. K-1 (coarsest scale first, top group 0):
//              l > 0: `cells` decoder cells on s; prior p(z_l | z_<l) = N(mu_p, sigma_p) from
//                     ELU - Conv3x3(s); encoder features f = e_l + Conv1x1(s) (the encoder
//                     combiner) -> Conv3x3 -> (dmu, log dsigma): the residual normal posterior
//                     q = N(mu_p + dmu, sigma_p dsigma) (prob/residual_normal.hpp);
//              l = 0: p = N(0, I), q = N(dmu, dsigma) from Conv3x3(enc0);
//              s <- Conv1x1(s) + Conv1x1(z_l) (the decoder combiner: a 1x1 convolution of the
//                   concatenation [s, z_l], written as two);
//            an up-sampling decoder cell after each scale but the last, `pre` up-sampling cells
//            after the last, then ELU - Conv3x3 -> the likelihood's parameters (1 channel;
//            2 with a per-pixel sigma).
// Cells (nn/nvae_cells.hpp): encoder BN-Swish-Conv3x3-BN-Swish-Conv3x3-SE, decoder
// BN-Conv1x1(x6)-BN-Swish-dwConv5x5-BN-Swish-Conv1x1-BN-SE, residual with a 0.1 scale.
// Batch norm with momentum `bn_momentum` (the paper's 0.05), running statistics folded in by
// after_step; spectral regularisation lambda * sum sigma_max(W) over every convolution
// (nn/spectral.hpp), its gradient added by backward in training mode and its power
// iteration run by after_step; KL balancing (below) during the KL warm-up.
//
// Latent units: group l's z is a [h_l, w_l, Z] map (channels-last); all groups side by side,
// the top group first, so that `kl_layer1` / `active_units_layer1` are the top group's.
//
// Not in this small version (see the README's NVAE section): weight normalisation and its
// data-dependent initialisation, normalising flows, the BN-scale penalty, the Adamax optimizer
// and NVAE's mixed precision; the encoder's FactorizedReduce skip is a full 2x2 stride-2 conv.
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
#include "nn/nvae_cells.hpp"
#include "nn/spectral.hpp"
#include "prob/likelihood.hpp"
#include "prob/noise.hpp"
#include "prob/residual_normal.hpp"

namespace vae {

struct NvaeShape {
  std::size_t rows = 28, cols = 28;  // the image
  std::size_t channels = 16;         // C, the stem's; every down-sampling cell doubles them
  std::size_t scales = 2, groups = 2, latent_channels = 8;
  std::size_t pre = 2;     // down-sampling cells before the latent scales (and up-sampling after)
  std::size_t cells = 1;   // encoder and decoder cells per group (NVAE's MNIST model: 2)
  std::size_t expand = 6;  // decoder cells' expansion
  double bn_momentum = 0.05;
  double spectral = 0.0;  // lambda
  bool kl_balance = true;
  double temperature = 1.0;  // prior samples
};

// NVAE's feature maps are large (32x32 with the decoder's x6 expansion: ~10 MB per row at 8
// channels, ~40 MB at 16), so a work holds at most this many rows, whatever is asked: the
// algorithms evaluate in chunks of w.max_batch, and validation keeps a training batch
// (batch x k rows) within it.
constexpr std::size_t kNvaeMaxRows = 64;

template <class T>
class Nvae {
 public:
  NvaeShape shape;
  Likelihood<T> lik;
  std::size_t D = 0, Hp = 0, Wp = 0, top = 0, left = 0, K = 0, Z = 0;
  Chain stem, enc0, head;
  std::vector<Cell> enc;            // pre cells, then the tower's
  std::vector<std::size_t> record;  // record[r]: the encoder cell whose output group K-1-r reads
  std::size_t prior_ftr = 0;        // offset of the learned decoder input
  FMap top_map;
  struct Group {
    FMap map;                                                  // s at this group's scale
    std::size_t scale = 0, unit0 = 0;                          // decoder scale (0: coarsest), first unit
    Chain enc_sampler, dec_sampler, enc_comb, comb_s, comb_z;  // dec_sampler, enc_comb: l > 0
    std::size_t units() const { return map.pixels(); }         // times Z
  };
  std::vector<Group> grp;
  struct Node {
    bool group;
    std::size_t index;  // into grp or dec
  };
  std::vector<Cell> dec;    // decoder cells, in node order
  std::vector<Node> nodes;  // the decoder: each node reads the previous one's output
  std::size_t last_group_node = 0;
  std::vector<SpectralWeight> spectral;
  Buffer<T> params, grads, state;

  Nvae(const NvaeShape& s, const Likelihood<T>& likelihood) : shape(s), lik(likelihood) {
    if (s.scales == 0 || s.groups == 0 || s.latent_channels == 0 || s.channels == 0 || s.cells == 0)
      throw std::invalid_argument("nvae: scales, groups, latent channels, channels and cells must be >= 1");
    D = s.rows * s.cols;
    Z = s.latent_channels;
    K = s.scales * s.groups;
    const std::size_t m = std::size_t(1) << (s.pre + s.scales - 1);
    Hp = (s.rows + m - 1) / m * m;
    Wp = (s.cols + m - 1) / m * m;
    top = (Hp - s.rows) / 2;
    left = (Wp - s.cols) / 2;
    ParamLayout P, S;
    build_encoder(P, S);
    build_decoder(P, S);
    lik.take_param(P);
    for_each_op([&](const Op& o) {
      if (o.kind == OpKind::Conv) spectral.push_back({o.conv.w, o.conv.cout, o.conv.patch(), 0, 0});
      if (o.kind == OpKind::DwConv) spectral.push_back({o.dw.w, o.dw.g.taps(), o.dw.c, 0, 0});
    });
    for (SpectralWeight& sw : spectral) {
      sw.u = S.take(sw.rows);
      sw.v = S.take(sw.cols);
    }
    params.assign(P.size, T(0));
    grads.assign(P.size, T(0));
    state.assign(S.size, T(0));
  }

  // ---- building ----
  void build_encoder(ParamLayout& P, ParamLayout& S) {
    stem = Chain(FMap{Hp, Wp, 1});
    stem.add(op_conv(P, stem.out, shape.channels, 3, 1, 1));
    FMap f = stem.out;
    auto add_cell = [&](bool down) {
      enc.push_back(encoder_cell(P, S, f, down));
      f = enc.back().out;
    };
    for (std::size_t i = 0; i < shape.pre; ++i) add_cell(true);
    for (std::size_t sc = 0; sc < shape.scales; ++sc) {
      for (std::size_t g = 0; g < shape.groups; ++g) {
        for (std::size_t c = 0; c < shape.cells; ++c) add_cell(false);
        if (!(sc + 1 == shape.scales && g + 1 == shape.groups)) record.push_back(enc.size() - 1);
      }
      if (sc + 1 < shape.scales) add_cell(true);
    }
    top_map = f;
    enc0 = Chain(f);
    enc0.add(op_elu(f));
    enc0.add(op_conv(P, f, f.c, 1, 1, 0));
    enc0.add(op_elu(f));
  }

  void build_decoder(ParamLayout& P, ParamLayout& S) {
    prior_ftr = P.take(top_map.size());
    FMap f = top_map;
    for (std::size_t sc = 0; sc < shape.scales; ++sc) {
      for (std::size_t g = 0; g < shape.groups; ++g) {
        const std::size_t l = grp.size();
        if (l > 0)
          for (std::size_t c = 0; c < shape.cells; ++c) {
            dec.push_back(decoder_cell(P, S, f, false, shape.expand));
            nodes.push_back({false, dec.size() - 1});
          }
        Group gr;
        gr.map = f;
        gr.scale = sc;
        gr.unit0 = l == 0 ? 0 : grp.back().unit0 + grp.back().units() * Z;
        const FMap lat{f.h, f.w, Z};
        if (l > 0) {
          gr.dec_sampler = Chain(f);
          gr.dec_sampler.add(op_elu(f));
          gr.dec_sampler.add(op_conv(P, f, 2 * Z, 3, 1, 1));
          gr.enc_comb = Chain(f);
          gr.enc_comb.add(op_conv(P, f, f.c, 1, 1, 0));
        }
        gr.enc_sampler = Chain(f);
        gr.enc_sampler.add(op_conv(P, f, 2 * Z, 3, 1, 1));
        gr.comb_s = Chain(f);
        gr.comb_s.add(op_conv(P, f, f.c, 1, 1, 0));
        gr.comb_z = Chain(lat);
        gr.comb_z.add(op_conv(P, lat, f.c, 1, 1, 0));
        grp.push_back(gr);
        nodes.push_back({true, l});
        last_group_node = nodes.size() - 1;
      }
      if (sc + 1 < shape.scales) add_up(P, S, f);
    }
    for (std::size_t i = 0; i < shape.pre; ++i) add_up(P, S, f);
    head = Chain(f);
    head.add(op_elu(f));
    head.add(op_conv(P, f, lik.per_pixel() ? 2 : 1, 3, 1, 1));
  }
  void add_up(ParamLayout& P, ParamLayout& S, FMap& f) {
    dec.push_back(decoder_cell(P, S, f, true, shape.expand));
    nodes.push_back({false, dec.size() - 1});
    f = dec.back().out;
  }

  template <class F>
  void for_each_chain(F f) const {
    f("stem", stem);
    for (std::size_t i = 0; i < enc.size(); ++i) {
      f("enc" + std::to_string(i) + ".main", enc[i].main);
      f("enc" + std::to_string(i) + ".skip", enc[i].skip);
    }
    f("enc_top", enc0);
    for (std::size_t l = 0; l < grp.size(); ++l) {
      const std::string n = "g" + std::to_string(l);
      f(n + ".enc_sampler", grp[l].enc_sampler);
      f(n + ".dec_sampler", grp[l].dec_sampler);
      f(n + ".enc_comb", grp[l].enc_comb);
      f(n + ".comb_s", grp[l].comb_s);
      f(n + ".comb_z", grp[l].comb_z);
    }
    for (std::size_t i = 0; i < dec.size(); ++i) {
      f("dec" + std::to_string(i) + ".main", dec[i].main);
      f("dec" + std::to_string(i) + ".skip", dec[i].skip);
    }
    f("head", head);
  }
  template <class F>
  void for_each_op(F f) const {
    for_each_chain([&](const std::string&, const Chain& c) {
      for (const Op& o : c.ops) f(o);
    });
  }

  // ---- the contract ----
  std::size_t data_dim() const { return D; }
  std::size_t units() const { return grp.back().unit0 + grp.back().units() * Z; }
  std::vector<std::size_t> unit_layers() const {
    std::vector<std::size_t> v;
    for (const Group& g : grp) v.push_back(g.units() * Z);
    return v;
  }
  std::vector<ParamRange> param_groups() const {
    std::vector<ParamRange> g;
    for_each_chain([&](const std::string& n, const Chain& c) { c.param_groups(n, g); });
    g.push_back({"prior_ftr", prior_ftr, top_map.size()});
    lik.add_group(g);
    return sorted_by_offset(std::move(g));
  }
  void initialize(Init init, double std_dev, std::mt19937_64& rng) {
    T* P = params.data();
    T* S = state.data();
    for_each_chain([&](const std::string&, const Chain& c) { c.initialize(P, S, init, std_dev, rng); });
    std::uniform_real_distribution<double> u01(0.0, 1.0);  // NVAE's torch.rand
    for (std::size_t i = 0; i < top_map.size(); ++i) P[prior_ftr + i] = T(u01(rng));
    lik.initialize(P);
    for (const SpectralWeight& sw : spectral) spectral_init(sw, P, S, rng);
  }

  struct GroupWork {
    Chain::Work<T> enc_sampler, dec_sampler, enc_comb, comb_s, comb_z;
    Buffer<T> ftr, dftr, sum, gsum;                       // [B, map.size()]
    Buffer<T> mp, sp, dm, r, eps, z, kl, dz, kw_scratch;  // [B, units * Z]
  };
  struct Work : LossWeights<T>, LikelihoodBuffers<T> {
    std::size_t max_batch = 0;
    bool training = true;
    Buffer<T> ones_b, xpad, s0, ds0, ones, scratch;
    Chain::Work<T> stem, enc0, head;
    std::vector<Cell::Work<T>> enc, dec;
    std::vector<GroupWork> grp;
    std::vector<double> gamma;  // KL balancing coefficient per group
  };

  void reserve(Work& w, std::size_t rows) const {
    const std::size_t B = std::min(rows, kNvaeMaxRows);
    w.max_batch = B;
    w.reserve_likelihood(lik, B, D);
    w.ones_b.assign(B, T(1));
    w.xpad.assign(B * Hp * Wp, T(0));
    w.s0.assign(B * top_map.size(), T(0));
    w.ds0.assign(B * top_map.size(), T(0));
    std::size_t scratch = 0, pixels = Hp * Wp;
    for_each_chain([&](const std::string&, const Chain& c) {
      scratch = std::max(scratch, c.scratch_size());
      pixels = std::max(pixels, c.max_pixels());
    });
    w.ones.assign(B * pixels, T(1));
    w.scratch.assign(B * scratch, T(0));
    stem.reserve(w.stem, B);
    enc0.reserve(w.enc0, B);
    head.reserve(w.head, B);
    w.enc.resize(enc.size());
    for (std::size_t i = 0; i < enc.size(); ++i) enc[i].reserve(w.enc[i], B);
    w.dec.resize(dec.size());
    for (std::size_t i = 0; i < dec.size(); ++i) dec[i].reserve(w.dec[i], B);
    w.grp.resize(K);
    for (std::size_t l = 0; l < K; ++l) {
      const Group& g = grp[l];
      GroupWork& gw = w.grp[l];
      g.enc_sampler.reserve(gw.enc_sampler, B);
      g.dec_sampler.reserve(gw.dec_sampler, B);
      g.enc_comb.reserve(gw.enc_comb, B);
      g.comb_s.reserve(gw.comb_s, B);
      g.comb_z.reserve(gw.comb_z, B);
      for (Buffer<T>* b : {&gw.ftr, &gw.dftr, &gw.sum, &gw.gsum}) b->assign(B * g.map.size(), T(0));
      for (Buffer<T>* b : {&gw.mp, &gw.sp, &gw.dm, &gw.r, &gw.eps, &gw.z, &gw.kl, &gw.dz, &gw.kw_scratch})
        b->assign(B * g.units() * Z, T(0));
    }
    w.gamma.assign(K, 1.0);
    w.reserve_weights(B, units());
  }

  // Noise of every group, the top group first.
  void draw_noise(Work& w, std::size_t B, std::mt19937_64& rng) {
    for (std::size_t l = 0; l < K; ++l) fill_normal(w.grp[l].eps.data(), B * grp[l].units() * Z, rng);
  }

  void forward(Work& w, std::size_t B) {
    forward_up(w, B, w.training);
    forward_down(w, B, Mode::Posterior, true);
  }

  void add_kl_columns(Work& w, std::size_t B, double* acc) const {
    for (std::size_t l = 0; l < K; ++l) {
      const std::size_t n = grp[l].units() * Z, u0 = grp[l].unit0;
      const T* kl = w.grp[l].kl.data();
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t j = 0; j < n; ++j) acc[u0 + j] += double(kl[b * n + j]);
    }
  }

  void log_weights(Work& w, std::size_t B, double* out) {
    for (std::size_t b = 0; b < B; ++b) out[b] = -double(w.rec[b]);
    for (std::size_t l = 0; l < K; ++l) residual_group_log_ratio(out, tensors(w, l), B, grp[l].units() * Z);
  }

  void backward(Work& w, std::size_t B, T rec_scale) {
    if (w.row_weighted && !w.sampled_kl)
      throw std::logic_error("Nvae::backward: row weights need the sampled KL");
    const OpContext<T> ctx = context(w);
    T* G = grads.data();
    // likelihood -> the head's output (the crop's padding gets no gradient)
    {
      auto x = w.x.view(B), out = w.out.view(B), dout = w.dout.view(B);
      auto raw = raw_view(w, B), draw = draw_view(w, B);
      likelihood_backward(dout, draw, w.lw, lik, out, raw, x, params.data(), G, rec_scale,
                          w.row_weighted ? w.row_weight.data() : static_cast<const T*>(nullptr));
      T* hg = head.output_grad(w.head);
      const std::size_t hc = head.out.c;
      std::fill(hg, hg + B * Hp * Wp * hc, T(0));
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t i = 0; i < shape.rows; ++i)
          for (std::size_t j = 0; j < shape.cols; ++j) {
            const std::size_t p = ((b * Hp + i + top) * Wp + j + left) * hc,
                              q = (b * shape.rows + i) * shape.cols + j;
            hg[p] = w.dout.data[q];
            if (hc == 2) hg[p + 1] = w.draw_logsig.data[q];
          }
    }
    // zero every accumulated gradient, then the decoder in reverse
    zero(w.ds0);
    for (std::size_t i = 0; i < dec.size(); ++i) zero(w.dec[i].grad);
    for (GroupWork& gw : w.grp) zero(gw.gsum);
    for (std::size_t i = 0; i < enc.size(); ++i) zero(w.enc[i].grad);
    std::fill(enc0.output_grad(w.enc0), enc0.output_grad(w.enc0) + B * top_map.size(), T(0));
    balance_kl(w, B);
    head.backward(w.head, node_grad(w, nodes.size() - 1, B), ctx, B);
    for (std::size_t n = nodes.size(); n-- > 0;) {
      T* din = n == 0 ? w.ds0.data() : node_grad(w, n - 1, B);
      if (nodes[n].group) group_backward(w, nodes[n].index, din, B);
      else dec[nodes[n].index].backward(w.dec[nodes[n].index], din, ctx, B);
    }
    const std::size_t F = top_map.size();
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t i = 0; i < F; ++i) G[prior_ftr + i] += w.ds0[b * F + i];
    // the encoder in reverse
    enc0.backward(w.enc0, w.enc.back().grad.data(), ctx, B);
    for (std::size_t i = enc.size(); i-- > 0;) {
      T* din = i == 0 ? stem.output_grad(w.stem) : w.enc[i - 1].grad.data();
      if (i == 0) std::fill(din, din + B * stem.out.size(), T(0));
      enc[i].backward(w.enc[i], din, ctx, B);
    }
    stem.backward(w.stem, static_cast<T*>(nullptr), ctx, B);
    if (w.training && shape.spectral > 0)
      for (const SpectralWeight& sw : spectral) spectral_backward(sw, G, state.data(), T(shape.spectral));
  }

  void after_step(Work& w, std::size_t B) {
    T* S = state.data();
    const double m = shape.bn_momentum;
    stem.update_running(w.stem, S, B, m);
    for (std::size_t i = 0; i < enc.size(); ++i) enc[i].update_running(w.enc[i], S, B, m);
    for (std::size_t i = 0; i < dec.size(); ++i) dec[i].update_running(w.dec[i], S, B, m);
    if (shape.spectral > 0)
      for (const SpectralWeight& sw : spectral) power_iteration(sw, params.data(), S, 1);
  }

  // E_q[z|x] along the mean path (every eps = 0): z_l = mu_p + dmu given the groups above.
  bool has_base_codes() const { return false; }
  void mean_codes(Work& w, std::size_t B, T* codes, T*) {
    for (GroupWork& gw : w.grp) zero(gw.eps);
    forward_up(w, B, w.training);
    forward_down(w, B, Mode::Posterior, false);
    copy_codes(w, B, codes);
  }
  void iw_prepare(Work& w, std::size_t m) {
    forward_up(w, 1, false);
    broadcast_row0(w.x.data, D, m);
    broadcast_row0(w.enc0.ops.back().out, top_map.size(), m);
    for (const std::size_t cell : record) broadcast_row0(w.enc[cell].out, enc[cell].out.size(), m);
  }
  void iw_samples(Work& w, std::size_t m) { forward_down(w, m, Mode::Posterior, true); }
  void set_codes(Work& w, std::size_t B, const T* codes) {
    const std::size_t U = units();
    for (std::size_t l = 0; l < K; ++l) {
      const std::size_t n = grp[l].units() * Z;
      for (std::size_t b = 0; b < B; ++b)
        std::copy(codes + b * U + grp[l].unit0, codes + b * U + grp[l].unit0 + n, w.grp[l].z.data() + b * n);
    }
    std::fill(w.x.ptr(), w.x.ptr() + B * D, T(0));
  }
  void decode(Work& w, std::size_t B) { forward_down(w, B, Mode::Given, true); }
  bool standard_prior() const { return false; }
  void prior_codes(Work& w, std::size_t B, T* codes) {
    forward_down(w, B, Mode::Prior, false);
    copy_codes(w, B, codes);
  }
  void describe(std::map<std::string, double>& metrics) const {
    metrics["latent_groups"] = double(K);
    double s = 0;
    for (const SpectralWeight& sw : spectral) s += spectral_sigma(sw, params.data(), state.data());
    metrics["spectral_norm_sum"] = s;
  }

  // ---- the passes ----
  enum class Mode { Posterior, Prior, Given };

  // x -> the encoder's features (the stem, the cells, enc0).
  void forward_up(Work& w, std::size_t B, bool training) {
    w.training = training;
    const OpContext<T> ctx = context(w);
    std::fill(w.xpad.begin(), w.xpad.begin() + std::ptrdiff_t(B * Hp * Wp), T(-1));
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t i = 0; i < shape.rows; ++i)
        for (std::size_t j = 0; j < shape.cols; ++j)
          w.xpad[(b * Hp + i + top) * Wp + j + left] = T(2) * w.x.data[(b * shape.rows + i) * shape.cols + j] -
                                                       T(1);
    stem.forward(w.stem, w.xpad.data(), ctx, B);
    const T* in = stem.output(w.stem);
    for (std::size_t i = 0; i < enc.size(); ++i) {
      enc[i].forward(w.enc[i], in, ctx, B);
      in = w.enc[i].out.data();
    }
    enc0.forward(w.enc0, in, ctx, B);
  }

  // The decoder, top down: Posterior samples every group from q (needs forward_up), Prior
  // from p at the temperature, Given uses the z already in the work (set_codes). With
  // `decode`, the rest of the decoder and rec[b] = -log p(x_b | z).
  void forward_down(Work& w, std::size_t B, Mode mode, bool decode) {
    const OpContext<T> ctx = context(w);
    const std::size_t F = top_map.size();
    for (std::size_t b = 0; b < B; ++b)
      std::copy(params.data() + prior_ftr, params.data() + prior_ftr + F, w.s0.data() + b * F);
    const std::size_t end = decode ? nodes.size() : last_group_node + 1;
    for (std::size_t n = 0; n < end; ++n) {
      const T* s = n == 0 ? w.s0.data() : node_out(w, n - 1);
      if (nodes[n].group) group_forward(w, nodes[n].index, s, B, mode);
      else dec[nodes[n].index].forward(w.dec[nodes[n].index], s, ctx, B);
    }
    if (!decode) return;
    head.forward(w.head, node_out(w, nodes.size() - 1), ctx, B);
    const T* h = head.output(w.head);
    const std::size_t hc = head.out.c;
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t i = 0; i < shape.rows; ++i)
        for (std::size_t j = 0; j < shape.cols; ++j) {
          const std::size_t p = ((b * Hp + i + top) * Wp + j + left) * hc,
                            q = (b * shape.rows + i) * shape.cols + j;
          w.out.data[q] = h[p];
          if (hc == 2) w.raw_logsig.data[q] = h[p + 1];
        }
    auto rec = vec(w.rec.data(), B);
    auto out = w.out.view(B), raw = raw_view(w, B);
    likelihood_forward(rec, w.lw, lik, out, raw, w.x.view(B), params.data());
  }

  GroupTensors<T> tensors(Work& w, std::size_t l) {
    GroupWork& g = w.grp[l];
    return {g.mp.data(), g.sp.data(), g.dm.data(), g.r.data(), g.eps.data(), g.z.data(), g.kl.data()};
  }

 private:
  OpContext<T> context(Work& w) {
    return {params.data(), grads.data(), state.data(), w.ones.data(), w.scratch.data(), w.training};
  }
  static void zero(Buffer<T>& b) { std::fill(b.begin(), b.end(), T(0)); }
  static void broadcast_row0(Buffer<T>& b, std::size_t n, std::size_t m) {
    for (std::size_t r = 1; r < m; ++r) std::copy(b.data(), b.data() + n, b.data() + r * n);
  }
  T* node_out(Work& w, std::size_t n) {
    return nodes[n].group ? w.grp[nodes[n].index].sum.data() : w.dec[nodes[n].index].out.data();
  }
  T* node_grad(Work& w, std::size_t n, std::size_t) {
    return nodes[n].group ? w.grp[nodes[n].index].gsum.data() : w.dec[nodes[n].index].grad.data();
  }
  // The encoder features group l >= 1 reads: the output of encoder cell record[K-1-l].
  std::size_t feature_cell(std::size_t l) const { return record[K - 1 - l]; }

  void group_forward(Work& w, std::size_t l, const T* s, std::size_t B, Mode mode) {
    const OpContext<T> ctx = context(w);
    const Group& g = grp[l];
    GroupWork& gw = w.grp[l];
    const std::size_t n = B * g.units();
    const T* p_raw = nullptr;
    if (l > 0 && mode != Mode::Given) {
      g.dec_sampler.forward(gw.dec_sampler, s, ctx, B);
      p_raw = g.dec_sampler.output(gw.dec_sampler);
    }
    if (mode == Mode::Posterior) {
      const T* f = w.enc0.ops.back().out.data();
      if (l > 0) {
        g.enc_comb.forward(gw.enc_comb, s, ctx, B);
        const T* e = w.enc[feature_cell(l)].out.data();
        const T* c = g.enc_comb.output(gw.enc_comb);
        for (std::size_t i = 0; i < B * g.map.size(); ++i) gw.ftr[i] = e[i] + c[i];
        f = gw.ftr.data();
      }
      g.enc_sampler.forward(gw.enc_sampler, f, ctx, B);
      residual_group_forward(tensors(w, l), g.enc_sampler.output(gw.enc_sampler), p_raw, n, Z, w.sampled_kl);
    } else if (mode == Mode::Prior) {
      residual_prior_sample(gw.z.data(), p_raw, gw.eps.data(), n, Z, T(shape.temperature));
    }
    g.comb_s.forward(gw.comb_s, s, ctx, B);
    g.comb_z.forward(gw.comb_z, gw.z.data(), ctx, B);
    const T* a = g.comb_s.output(gw.comb_s);
    const T* c = g.comb_z.output(gw.comb_z);
    for (std::size_t i = 0; i < B * g.map.size(); ++i) gw.sum[i] = a[i] + c[i];
  }

  // gsum -> ds += (the combiners', the samplers'), the encoder features' gradients +=.
  void group_backward(Work& w, std::size_t l, T* ds, std::size_t B) {
    const OpContext<T> ctx = context(w);
    const Group& g = grp[l];
    GroupWork& gw = w.grp[l];
    const std::size_t n = B * g.units(), M = B * g.map.size(), per_row = g.units() * Z;
    std::copy(gw.gsum.begin(), gw.gsum.begin() + std::ptrdiff_t(M), g.comb_s.output_grad(gw.comb_s));
    std::copy(gw.gsum.begin(), gw.gsum.begin() + std::ptrdiff_t(M), g.comb_z.output_grad(gw.comb_z));
    g.comb_s.backward(gw.comb_s, ds, ctx, B);
    zero(gw.dz);
    g.comb_z.backward(gw.comb_z, gw.dz.data(), ctx, B);
    const T gamma = T(w.gamma[l]);
    const T* uw = w.unit_weight.data() + g.unit0;
    const T* rw = w.row_weight.data();
    const bool rows = w.row_weighted;
    T* dp_raw = l > 0 ? g.dec_sampler.output_grad(gw.dec_sampler) : nullptr;
    residual_group_backward(g.enc_sampler.output_grad(gw.enc_sampler), dp_raw, tensors(w, l), gw.dz.data(), n,
                            Z, w.sampled_kl, [&](std::size_t, std::size_t u) {
                              const T k = gamma * uw[u % per_row];
                              return rows ? k * rw[u / per_row] : k;
                            });
    if (l == 0) {
      g.enc_sampler.backward(gw.enc_sampler, enc0.output_grad(w.enc0), ctx, B);
      return;
    }
    zero(gw.dftr);
    g.enc_sampler.backward(gw.enc_sampler, gw.dftr.data(), ctx, B);
    T* de = w.enc[feature_cell(l)].grad.data();
    for (std::size_t i = 0; i < M; ++i) de[i] += gw.dftr[i];
    std::copy(gw.dftr.begin(), gw.dftr.begin() + std::ptrdiff_t(M), g.enc_comb.output_grad(gw.enc_comb));
    g.enc_comb.backward(gw.enc_comb, ds, ctx, B);
    g.dec_sampler.backward(gw.dec_sampler, ds, ctx, B);
  }

  // NVAE's KL balancing (their utils.kl_balancer with kl_balancer_coeff(fun = 'square')):
  // while the KL warm-up runs, group l's KL is weighted by gamma_l = q_l / mean_j q_j with
  // q_l = (mean_b |KL_l,b| + 0.01) / alpha_l, alpha_l = 4^scale(l) (the scale's size relative
  // to the coarsest), so that groups with little KL are pushed less towards collapse; the
  // coefficients are constants of the gradient. gamma = 1 after the warm-up, when
  // balancing is off, and under the IWAE objective.
  void balance_kl(Work& w, std::size_t B) {
    std::fill(w.gamma.begin(), w.gamma.end(), 1.0);
    if (!shape.kl_balance || w.warmup >= 1.0 || w.row_weighted) return;
    double mean_q = 0;
    for (std::size_t l = 0; l < K; ++l) {
      const std::size_t n = grp[l].units() * Z;
      const T* kl = w.grp[l].kl.data();
      double c = 0;
      for (std::size_t b = 0; b < B; ++b) {
        double row = 0;
        for (std::size_t j = 0; j < n; ++j) row += double(kl[b * n + j]);
        c += std::abs(row);
      }
      w.gamma[l] = (c / double(B) + 0.01) / std::pow(4.0, double(grp[l].scale));
      mean_q += w.gamma[l] / double(K);
    }
    for (double& g : w.gamma) g /= mean_q;
  }

  void copy_codes(Work& w, std::size_t B, T* codes) {
    const std::size_t U = units();
    for (std::size_t l = 0; l < K; ++l) {
      const std::size_t n = grp[l].units() * Z;
      for (std::size_t b = 0; b < B; ++b)
        std::copy(w.grp[l].z.data() + b * n, w.grp[l].z.data() + (b + 1) * n, codes + b * U + grp[l].unit0);
    }
  }
  MatView<T> raw_view(Work& w, std::size_t B) {
    return lik.per_pixel() ? w.raw_logsig.view(B) : mat(w.raw_logsig.ptr(), 0, 0);
  }
  MatView<T> draw_view(Work& w, std::size_t B) {
    return lik.per_pixel() ? w.draw_logsig.view(B) : mat(w.draw_logsig.ptr(), 0, 0);
  }
};

// The shape --model nvae asks for, for images of rows x cols (checked settings;
// models/nvae.cpp, where the family is registered with its settings and factory).
NvaeShape nvae_shape(const ConfigMap& config, std::size_t rows, std::size_t cols);

}  // namespace vae
