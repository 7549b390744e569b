// The VAE of Kingma & Welling (2013), composed as data flows:
//   x --encoder MLP--> h --heads--> (mu, logvar) --reparam(eps)--> z
//   z --decoder MLP--> g --heads--> likelihood parameters --> -log p(x|z)
// with the analytic KL(q(z|x) || N(0, I)). eps is an input, so forward is a pure
// function of (parameters, x, eps) and gradient checks are exact.
//
// With the IAF posterior (Kingma et al. 2016; prob/iaf.hpp) the encoder has a third head,
// the context c, and T flow steps map the Gaussian sample z_0 to the decoder's z = z_T:
//   (mu, logvar, c) --reparam(eps)--> z_0 --IAF_1(., c)--> ... --IAF_T(., c)--> z_T
// The analytic KL no longer exists; kl holds the single-sample estimate
// log q(z_T|x) - log p(z_T), split over latent coordinates (prob/iaf.hpp), so the
// objective and the ELBO (models/algorithms.hpp) read it unchanged. With T = 0 the model
// is the Gaussian VAE exactly: same layout, same numbers, analytic KL.
//
// With arch = Conv the encoder and decoder MLPs are the convolutional ones of
// nn/conv_net.hpp (the decoder's last transposed convolution gives the likelihood's
// parameters, so dec_out/dec_logsig are unused); posterior, heads and likelihood are the
// same code. Its batch norm uses batch statistics when Work::training is set, else the
// running ones kept in `state`.
#pragma once

#include <cmath>
#include <cstddef>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/contract.hpp"
#include "nn/conv_net.hpp"
#include "nn/made.hpp"
#include "nn/mlp.hpp"
#include "prob/gaussian.hpp"
#include "prob/iaf.hpp"
#include "prob/likelihood.hpp"
#include "prob/noise.hpp"

namespace vae {

enum class PosteriorKind { Gaussian, Iaf };
enum class Arch { Mlp, Conv };

struct VaeShape {
  std::size_t data_dim = 784, latent = 20;
  std::vector<std::size_t> hidden{400};  // encoder sizes; the decoder mirrors them
  Activation activation = Activation::ReLU;
  PosteriorKind posterior = PosteriorKind::Gaussian;
  IafShape iaf;  // read only when posterior == Iaf
  Arch arch = Arch::Mlp;
  ConvShape conv;  // read only when arch == Conv (rows * cols == data_dim)
};

template <class T>
class Vae {
 public:
  VaeShape shape;
  Mlp<T> encoder, decoder;
  ConvEncoder<T> conv_encoder;  // arch == Conv: these instead of the MLPs and dec_out/dec_logsig
  ConvDecoder<T> conv_decoder;
  Linear enc_mu, enc_logvar, dec_out, dec_logsig;  // dec_logsig: per-pixel sigma only
  Linear enc_ctx;                                  // IAF context head (steps > 0 and context > 0 only)
  std::vector<Made<T>> flow;                       // one MADE per IAF step; empty: the Gaussian posterior
  T forget_bias = 1;
  Likelihood<T> lik;
  Buffer<T> params, grads;
  Buffer<T> state;  // batch-norm running statistics (conv), saved in checkpoints

  Vae(const VaeShape& s, const Likelihood<T>& likelihood) : shape(s), lik(likelihood) {
    ParamLayout layout, state_layout;
    if (conv()) {
      if (s.conv.rows * s.conv.cols != s.data_dim)
        throw std::invalid_argument("conv VAE: image size does not match the data dimension");
      conv_encoder.build(layout, state_layout, s.conv, s.activation);
      enc_mu = Linear::make(layout, conv_encoder.out_size(), s.latent);
      enc_logvar = Linear::make(layout, conv_encoder.out_size(), s.latent);
      conv_decoder.build(layout, state_layout, s.conv, conv_encoder, s.latent, lik.per_pixel(), s.activation);
    } else {
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
    }
    if (lik.has_shared_param()) lik.shared_offset = layout.take(1);
    // The flow's parameters come last, so the Gaussian part has the same layout (and, from
    // the same seed, the same initial values) as the Gaussian VAE.
    if (s.posterior == PosteriorKind::Iaf && s.iaf.steps > 0) {
      const std::size_t C = s.iaf.context;
      if (C > 0) enc_ctx = Linear::make(layout, h_size(), C);
      flow.resize(s.iaf.steps);
      for (std::size_t t = 0; t < flow.size(); ++t)
        flow[t].build(layout, s.latent, C, s.iaf.hidden, s.iaf.layers, s.activation, iaf_order(s.latent, t));
      forget_bias = T(s.iaf.forget_bias);
    }
    params.assign(layout.size, T(0));
    grads.assign(layout.size, T(0));
    state.assign(state_layout.size, T(0));
  }

  bool conv() const { return shape.arch == Arch::Conv; }
  std::size_t h_size() const { return conv() ? conv_encoder.out_size() : encoder.out_size(); }
  std::size_t num_params() const { return params.size(); }
  std::size_t flow_steps() const { return flow.size(); }
  bool has_context() const { return !flow.empty() && shape.iaf.context > 0; }

  std::vector<const Linear*> linears() const {
    std::vector<const Linear*> all;
    for (const auto& l : encoder.layers) all.push_back(&l);
    all.push_back(&enc_mu);
    all.push_back(&enc_logvar);
    if (conv()) {
      all.push_back(&conv_decoder.fc);
    } else {
      for (const auto& l : decoder.layers) all.push_back(&l);
      all.push_back(&dec_out);
      if (lik.per_pixel()) all.push_back(&dec_logsig);
    }
    if (has_context()) all.push_back(&enc_ctx);
    return all;
  }

  // Every parameter, by name: enc0 ... enc_mu enc_logvar dec0 ... dec_out [dec_logsig]
  // [log_sigma] [enc_ctx] then per IAF step t: iaf<t>.h<k> (masked), iaf<t>.ctx (W only),
  // iaf<t>.m, iaf<t>.s (masked); .W and .b of each. Conv: conv<i>, bn<i> (.gamma, .beta),
  // enc_mu, enc_logvar, dec_fc, deconv<i>, dbn<i>, [deconv_logsig] in place of the MLPs.
  std::vector<ParamRange> param_groups() const {
    std::vector<ParamRange> g;
    auto lin = [&](const std::string& n, const Linear& l) {
      g.push_back({n + ".W", l.w, l.in * l.out});
      g.push_back({n + ".b", l.b, l.out});
    };
    auto conv_layer = [&](const std::string& n, std::size_t w, std::size_t nw, std::size_t b, std::size_t nb) {
      g.push_back({n + ".W", w, nw});
      g.push_back({n + ".b", b, nb});
    };
    auto norm = [&](const std::string& n, const BatchNorm& bn) {
      g.push_back({n + ".gamma", bn.gamma, bn.n});
      g.push_back({n + ".beta", bn.beta, bn.n});
    };
    for (std::size_t i = 0; i < conv_encoder.convs.size(); ++i) {
      const Conv2d& c = conv_encoder.convs[i];
      conv_layer("conv" + std::to_string(i), c.w, c.cout * c.patch(), c.b, c.cout);
      norm("bn" + std::to_string(i), conv_encoder.norms[i]);
    }
    for (std::size_t i = 0; i < encoder.layers.size(); ++i) lin("enc" + std::to_string(i), encoder.layers[i]);
    lin("enc_mu", enc_mu);
    lin("enc_logvar", enc_logvar);
    if (conv()) {
      lin("dec_fc", conv_decoder.fc);
      for (std::size_t i = 0; i < conv_decoder.deconvs.size(); ++i) {
        const ConvTranspose2d& c = conv_decoder.deconvs[i];
        conv_layer("deconv" + std::to_string(i), c.w, c.cin * c.patch(), c.b, c.cout);
        if (i < conv_decoder.norms.size()) norm("dbn" + std::to_string(i), conv_decoder.norms[i]);
      }
      if (conv_decoder.has_logsig) {
        const ConvTranspose2d& c = conv_decoder.logsig;
        conv_layer("deconv_logsig", c.w, c.cin * c.patch(), c.b, c.cout);
      }
    }
    for (std::size_t i = 0; i < decoder.layers.size(); ++i) lin("dec" + std::to_string(i), decoder.layers[i]);
    if (!conv()) lin("dec_out", dec_out);
    if (lik.per_pixel() && !conv()) lin("dec_logsig", dec_logsig);
    if (lik.has_shared_param()) g.push_back({"log_sigma", lik.shared_offset, 1});
    if (has_context()) lin("enc_ctx", enc_ctx);
    for (std::size_t t = 0; t < flow.size(); ++t) {
      const std::string p = "iaf" + std::to_string(t);
      for (std::size_t k = 0; k < flow[t].hidden.size(); ++k)
        lin(p + ".h" + std::to_string(k), flow[t].hidden[k].lin);
      if (flow[t].nctx > 0) g.push_back({p + ".ctx.W", flow[t].ctx, flow[t].width * flow[t].nctx});
      lin(p + ".m", flow[t].out_m.lin);
      lin(p + ".s", flow[t].out_s.lin);
    }
    return g;
  }

  void initialize(Init init, double std_dev, std::mt19937_64& rng) {
    for (const Linear* l : linears()) init_linear(params.data(), *l, init, std_dev, rng);
    if (conv()) {
      conv_encoder.initialize(params.data(), state.data(), init, std_dev, rng);
      conv_decoder.initialize(params.data(), state.data(), init, std_dev, rng);
    }
    if (lik.has_shared_param()) params[lik.shared_offset] = T(0);  // sigma = 1
    for (const Made<T>& m : flow) m.initialize(params.data(), init, std_dev, rng);
  }

  // Everything one batch needs, allocated once for batches of up to max_batch rows.
  struct Work : LossWeights<T> {
    std::size_t max_batch = 0;
    Activation2<T> x, eps, mu, logvar, z, kl, dmu, dlogvar, dz;
    Activation2<T> x_once;   // k > 1 (encodes_once): each example's x once, [B,D]
    Activation2<T> kw_rows;  // row-weighted backward: row_weight[b] * unit_weight[l], [B,L]
    Activation2<T> out, raw_logsig, dout, draw_logsig;
    typename Mlp<T>::Work enc, dec;
    LikelihoodWork<T> lw;
    Buffer<T> rec, ones_b;  // [B], [B]
    // IAF: context c and its gradient [B,C]; zf[t] = input of step t (zf[0] = z_0) and
    // dzf[t] its gradient [B,L]; the flow ends in z. log_q, log_p: [B] in double.
    Activation2<T> ctx, dctx;
    std::vector<Activation2<T>> zf, dzf;
    std::vector<IafStepWork<T>> steps;
    std::vector<double> log_q, log_p;
    FlowKl kl_estimator = FlowKl::Sample;  // of the last posterior_forward
    // Conv: the encoder's and decoder's buffers, and the batch-norm mode (training: batch
    // statistics, running ones updated; else the running ones). MLP: unused.
    typename ConvEncoder<T>::Work cenc;
    typename ConvDecoder<T>::Work cdec;
    bool training = true;
  };

  void reserve(Work& w, std::size_t max_batch) const {
    const std::size_t D = shape.data_dim, L = shape.latent, B = max_batch;
    w.max_batch = B;
    for (Activation2<T>* a : {&w.mu, &w.logvar, &w.z, &w.kl, &w.dmu, &w.dlogvar, &w.dz, &w.eps, &w.kw_rows})
      a->reserve(B, L);
    for (Activation2<T>* a : {&w.x, &w.out, &w.dout}) a->reserve(B, D);
    w.x_once.reserve(conv() ? 0 : B, D);
    const std::size_t DS = lik.per_pixel() ? D : 1;  // unused buffers stay tiny
    w.raw_logsig.reserve(B, DS);
    w.draw_logsig.reserve(B, DS);
    if (conv()) {
      conv_encoder.reserve(w.cenc, B);
      conv_decoder.reserve(w.cdec, B);
    } else {
      encoder.reserve(w.enc, B);
      decoder.reserve(w.dec, B);
    }
    w.lw.reserve(B, D);
    w.rec.assign(B, T(0));
    w.ones_b.assign(B, T(1));
    w.reserve_weights(B, L);
    const std::size_t C = has_context() ? shape.iaf.context : 0;
    w.ctx.reserve(B, C);
    w.dctx.reserve(B, C);
    w.zf.resize(flow.size());
    w.dzf.resize(flow.size());
    w.steps.resize(flow.size());
    for (std::size_t t = 0; t < flow.size(); ++t) {
      w.zf[t].reserve(B, L);
      w.dzf[t].reserve(B, L);
      w.steps[t].reserve(flow[t], B);
    }
    w.log_q.assign(B, 0.0);
    w.log_p.assign(B, 0.0);
  }

  // With k samples per example (w.k > 1) the MLP encoder runs once per example, on x_once
  // (rows 0, k, 2k, ... of x), and its outputs are copied to the example's k rows; backward
  // sums their k gradients before the encoder's. The conv encoder's batch norm keeps
  // running over all rows.
  bool encodes_once(const Work& w) const { return w.k > 1 && !conv(); }

  // x [R,D] -> mu, logvar, ctx [R,*]
  void encode(Work& w, std::size_t R) {
    const bool once = encodes_once(w);
    const std::size_t B = once ? R / w.k : R, D = shape.data_dim;
    if (once)
      for (std::size_t b = 0; b < B; ++b) std::copy_n(w.x.ptr() + b * w.k * D, D, w.x_once.ptr() + b * D);
    if (conv()) conv_encoder.forward(w.cenc, w.x.ptr(), params.data(), state.data(), B, w.training);
    else encoder.forward(w.enc, once ? w.x_once.view(B) : w.x.view(B), params.data(), B);
    auto h = conv() ? conv_encoder.output(w.cenc, B) : w.enc.post.back().view(B);
    auto mu = w.mu.view(B), logvar = w.logvar.view(B);
    linear_forward(mu, h, enc_mu.W(params.data()), enc_mu.bias(params.data()));
    linear_forward(logvar, h, enc_logvar.W(params.data()), enc_logvar.bias(params.data()));
    if (has_context()) {
      auto c = w.ctx.view(B);
      linear_forward(c, h, enc_ctx.W(params.data()), enc_ctx.bias(params.data()));
    }
    if (!once) return;
    replicate_rows(w.mu.ptr(), B, w.k, shape.latent);
    replicate_rows(w.logvar.ptr(), B, w.k, shape.latent);
    if (has_context()) replicate_rows(w.ctx.ptr(), B, w.k, shape.iaf.context);
  }

  // mu, logvar, ctx, eps [B,*] -> z [B,L] and kl [B,L]: the analytic KL for the Gaussian,
  // the single-sample log q(z_T|x) - log p(z_T) per coordinate through the flow. `est`
  // chooses the gradient backward() takes of it (prob/iaf.hpp); the values are the same.
  void posterior_forward(Work& w, std::size_t B) { posterior_forward(w, B, shape.iaf.kl); }
  void posterior_forward(Work& w, std::size_t B, FlowKl est) {
    w.kl_estimator = est;
    auto mu = w.mu.view(B), logvar = w.logvar.view(B), eps = w.eps.view(B);
    auto z = w.z.view(B), kl = w.kl.view(B);
    if (flow.empty()) {
      reparam_forward(z, mu, logvar, eps);
      if (!w.sampled_kl) {
        kl_forward(kl, mu, logvar);
        return;
      }
      flow_kl_begin(kl, eps, logvar);  // the single-sample log q - log p, as a flow of 0 steps
      flow_kl_end(kl, z);
      return;
    }
    auto z0 = w.zf[0].view(B);
    reparam_forward(z0, mu, logvar, eps);
    flow_kl_begin(kl, eps, logvar);
    auto c = ctx_view(w, B);
    for (std::size_t t = 0; t < flow.size(); ++t) {
      auto z_in = w.zf[t].view(B);
      auto z_out = t + 1 < flow.size() ? w.zf[t + 1].view(B) : z;
      iaf_step_forward(z_out, w.steps[t], flow[t], z_in, c, forget_bias, params.data(), B);
      xt::noalias(kl) -= w.steps[t].logsig.view(B);
    }
    flow_kl_end(kl, z);
  }

  // After posterior_forward: w.log_q[b] = log q(z_b|x_b) with the full flow density
  //   log N(eps; 0, I) - sum logvar / 2 - sum_t sum log sigma_t,
  // and w.log_p[b] = log N(z_b; 0, I), in double (they feed a log-sum-exp).
  void log_densities(Work& w, std::size_t B) {
    log_posterior_rows(w.log_q.data(), w.eps.view(B), w.logvar.view(B));
    log_prior_rows(w.log_p.data(), w.z.view(B));
    const std::size_t L = shape.latent;
    for (const auto& st : w.steps) {
      const T* ls = st.logsig.data.data();
      for (std::size_t b = 0; b < B; ++b) {
        double sum = 0;
        for (std::size_t l = 0; l < L; ++l) sum += double(ls[b * L + l]);
        w.log_q[b] -= sum;
      }
    }
  }

  // After forward (or posterior_forward and decode): out[b] = log p(x_b, z_b) - log q(z_b|x_b),
  // the log importance weight of the sample z_b.
  void log_weights(Work& w, std::size_t B, double* out) {
    log_densities(w, B);
    for (std::size_t b = 0; b < B; ++b) out[b] = -double(w.rec[b]) + w.log_p[b] - w.log_q[b];
  }

  // z [B,L] -> the likelihood's parameters: out [B,D] and, per-pixel sigma, raw_logsig.
  void decode_params(Work& w, std::size_t B) {
    auto z = w.z.view(B);
    auto out = w.out.view(B);
    auto raw = raw_logsig_view(w, B);
    if (conv()) {
      conv_decoder.forward(w.cdec, z, out.data(), raw.data(), params.data(), state.data(), B, w.training);
      return;
    }
    decoder.forward(w.dec, z, params.data(), B);
    auto g = w.dec.post.back().view(B);
    linear_forward(out, g, dec_out.W(params.data()), dec_out.bias(params.data()));
    if (lik.per_pixel()) linear_forward(raw, g, dec_logsig.W(params.data()), dec_logsig.bias(params.data()));
  }

  // z [B,L] and x [B,D] -> rec[b] = -log p(x_b | z_b)
  void decode(Work& w, std::size_t B) {
    decode_params(w, B);
    auto out = w.out.view(B);
    auto raw = raw_logsig_view(w, B);
    auto rec = vec(w.rec.data(), B);
    auto x = w.x.view(B);
    likelihood_forward(rec, w.lw, lik, out, raw, x, params.data());
  }

  // Full pass: x, eps -> z, kl [B,L], rec [B].
  void forward(Work& w, std::size_t B) {
    encode(w, B);
    posterior_forward(w, B);
    decode(w, B);
  }

  // ---- the rest of the model contract (models/contract.hpp) ----
  std::size_t data_dim() const { return shape.data_dim; }
  std::size_t units() const { return shape.latent; }
  std::vector<std::size_t> unit_layers() const { return {}; }
  void draw_noise(Work& w, std::size_t B, std::mt19937_64& rng) {
    fill_normal(w.eps.ptr(), B * shape.latent, rng);
  }
  void add_kl_columns(Work& w, std::size_t B, double* acc) const {
    const std::size_t L = shape.latent;
    const T* kl = w.kl.ptr();
    for (std::size_t i = 0; i < B * L; ++i) acc[i % L] += double(kl[i]);
  }
  void after_step(Work&, std::size_t) {}
  // backward() reports every parameter to w.grad_sink: the MLP model with the Gaussian
  // posterior (the flow and the convolutions do not report theirs).
  bool streams_grads() const { return !conv() && flow.empty(); }

  // The code of x: mu; with the IAF, the code in the decoder's space, z_T at eps = 0
  // (deterministic and cheap; the flow is nonlinear, so it is not exactly E_q[z_T|x]), and
  // base = the base Gaussian's mu.
  bool has_base_codes() const { return !flow.empty(); }
  void mean_codes(Work& w, std::size_t B, T* codes, T* base) {
    const std::size_t n = B * shape.latent;
    encode(w, B);
    if (base) std::copy(w.mu.ptr(), w.mu.ptr() + n, base);
    if (!flow.empty()) {
      std::fill(w.eps.ptr(), w.eps.ptr() + n, T(0));
      posterior_forward(w, B);
    }
    const T* c = flow.empty() ? w.mu.ptr() : w.z.ptr();
    std::copy(c, c + n, codes);
  }

  // x row 0 -> its posterior's parameters on rows 0..m-1. A Bernoulli decoder scores every
  // sample against row 0 (see iw_samples); the others need m copies of x.
  void iw_prepare(Work& w, std::size_t m) {
    encode(w, 1);
    auto replicate = [&](T* p, std::size_t n) {
      for (std::size_t r = 1; r < m; ++r) std::copy(p, p + n, p + r * n);
    };
    if (lik.kind != LikelihoodKind::Bernoulli) replicate(w.x.ptr(), shape.data_dim);
    replicate(w.mu.ptr(), shape.latent);
    replicate(w.logvar.ptr(), shape.latent);
    if (has_context()) replicate(w.ctx.ptr(), shape.iaf.context);
  }
  // eps [m,L] -> z and rec of m samples of row 0's posterior. A Bernoulli decoder reads the
  // one image row for every sample (decode() would score m copies and keep exp(-|logit|) for
  // a backward pass: two [m,D] streams that evict the weights the next chunk's gemm reads).
  void iw_samples(Work& w, std::size_t m) {
    if (flow.empty()) {
      const std::size_t L = shape.latent;
      T* z = w.z.ptr();
      const T *eps = w.eps.ptr(), *mu = w.mu.ptr(), *logvar = w.logvar.ptr();
      for (std::size_t r = 0; r < m; ++r)
        for (std::size_t l = 0; l < L; ++l)
          z[r * L + l] = mu[l] + std::exp(T(0.5) * logvar[l]) * eps[r * L + l];
    } else {
      posterior_forward(w, m);
    }
    if (lik.kind != LikelihoodKind::Bernoulli) {
      decode(w, m);
      return;
    }
    decode_params(w, m);
    bernoulli_nll_rows(w.rec.data(), static_cast<T*>(nullptr), w.out.ptr(), w.x.ptr(), 0, m, shape.data_dim);
  }

  // codes [B,L] -> z, the decoder's input (x is zeroed: decode() also scores it).
  void set_codes(Work& w, std::size_t B, const T* codes) {
    std::copy(codes, codes + B * shape.latent, w.z.ptr());
    std::fill(w.x.ptr(), w.x.ptr() + B * shape.data_dim, T(0));
  }
  bool standard_prior() const { return true; }  // N(0, I) over z (z_T with the IAF)
  void prior_codes(Work& w, std::size_t B, T* codes) {
    std::copy(w.eps.ptr(), w.eps.ptr() + B * shape.latent, codes);
  }
  void describe(std::map<std::string, double>&) const {}

  // Accumulates into grads the gradient of
  //   sum_b c_b (rec_scale * rec[b] + sum_l unit_weight[l] * kl[b,l]),
  // c_b = row_weight[b] when w.row_weighted (IWAE), else 1 (models/contract.hpp; the ELBO
  // objective sets rec_scale = 1/B and unit_weight = beta/B, or 0 under free bits).
  void backward(Work& w, std::size_t B, T rec_scale) {
    T* P = params.data();
    T* G = grads.data();
    auto ones = vec(w.ones_b.data(), B);
    auto x = w.x.view(B), out = w.out.view(B), dout = w.dout.view(B);
    auto raw = raw_logsig_view(w, B), draw = draw_logsig_view(w, B);
    likelihood_backward(dout, draw, w.lw, lik, out, raw, x, P, G, rec_scale,
                        w.row_weighted ? w.row_weight.data() : static_cast<const T*>(nullptr));
    if (lik.has_shared_param()) w.grad_ready(lik.shared_offset, 1);
    auto z = w.z.view(B), dz = w.dz.view(B);
    if (conv()) {
      conv_decoder.backward(w.cdec, dz, dout.data(), draw.data(), z, P, G, B, w.training);
    } else {
      // decoder heads -> decoder MLP -> dz
      auto g = w.dec.post.back().view(B);
      auto dg = w.dec.grad.back().view(B);
      auto dW = dec_out.W(G);
      auto db = dec_out.bias(G);
      linear_backward(&dg, dW, db, dout, g, dec_out.W(P), ones);
      w.grad_ready(dec_out.w, dec_out.size());
      if (lik.per_pixel()) {
        auto dWs = dec_logsig.W(G);
        auto dbs = dec_logsig.bias(G);
        linear_backward(&dg, dWs, dbs, draw, g, dec_logsig.W(P), ones, T(1));
        w.grad_ready(dec_logsig.w, dec_logsig.size());
      }
      decoder.backward(w.dec, &dz, z, P, G, B, ones, w.grad_sink);
    }
    // reparametrization and KL (or the flow and the sampled KL) -> mu, logvar, ctx
    if (w.row_weighted) {
      if (!w.sampled_kl) throw std::logic_error("Vae::backward: row weights need the sampled KL");
      const std::size_t L = shape.latent;
      T* kw = w.kw_rows.ptr();
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t l = 0; l < L; ++l) kw[b * L + l] = w.row_weight[b] * w.unit_weight[l];
      posterior_backward(w, B, w.kw_rows.view(B));
    } else {
      posterior_backward(w, B, vec(w.unit_weight.data(), shape.latent));
    }
    // encoder heads -> encoder MLP (or convolutions), once per example when encodes_once
    if (!encodes_once(w)) {
      encoder_backward(w, B);
      return;
    }
    const std::size_t examples = B / w.k;
    sum_row_groups(w.dmu.ptr(), examples, w.k, shape.latent);
    sum_row_groups(w.dlogvar.ptr(), examples, w.k, shape.latent);
    if (has_context()) sum_row_groups(w.dctx.ptr(), examples, w.k, shape.iaf.context);
    encoder_backward(w, examples);
  }

  // dmu, dlogvar, dctx [B,*] -> the heads' and the encoder's gradients (B: the encoder's rows).
  void encoder_backward(Work& w, std::size_t B) {
    T* P = params.data();
    T* G = grads.data();
    auto ones = vec(w.ones_b.data(), B);
    auto dmu = w.dmu.view(B), dlogvar = w.dlogvar.view(B);
    auto h = conv() ? conv_encoder.output(w.cenc, B) : w.enc.post.back().view(B);
    auto dh = conv() ? conv_encoder.output_grad(w.cenc, B) : w.enc.grad.back().view(B);
    auto dWm = enc_mu.W(G);
    auto dbm = enc_mu.bias(G);
    linear_backward(&dh, dWm, dbm, dmu, h, enc_mu.W(P), ones);
    w.grad_ready(enc_mu.w, enc_mu.size());
    auto dWl = enc_logvar.W(G);
    auto dbl = enc_logvar.bias(G);
    linear_backward(&dh, dWl, dbl, dlogvar, h, enc_logvar.W(P), ones, T(1));
    w.grad_ready(enc_logvar.w, enc_logvar.size());
    if (has_context()) {
      auto dWc = enc_ctx.W(G);
      auto dbc = enc_ctx.bias(G);
      linear_backward(&dh, dWc, dbc, w.dctx.view(B), h, enc_ctx.W(P), ones, T(1));
    }
    if (conv()) conv_encoder.backward(w.cenc, P, G, B, w.training);
    else
      encoder.backward(w.enc, nullptr, encodes_once(w) ? w.x_once.view(B) : w.x.view(B), P, G, B, ones,
                       w.grad_sink);
  }

  // dz and the KL weights kw ([L] per unit, or [B,L] per row and unit) -> dmu, dlogvar, dctx.
  template <class KW>
  void posterior_backward(Work& w, std::size_t B, const KW& kw) {
    T* P = params.data();
    T* G = grads.data();
    auto ones = vec(w.ones_b.data(), B);
    auto z = w.z.view(B), dz = w.dz.view(B);
    auto dmu = w.dmu.view(B), dlogvar = w.dlogvar.view(B);
    if (flow.empty() && !w.sampled_kl) {
      gaussian_backward(dmu, dlogvar, dz, w.mu.view(B), w.logvar.view(B), w.eps.view(B), kw);
      return;
    }
    xt::noalias(dz) += kw * z;  // from + kw z^2 / 2 of the sampled KL
    auto c = ctx_view(w, B), dc = w.dctx.view(B);
    if (has_context()) dc.fill(T(0));
    for (std::size_t t = flow.size(); t-- > 0;) {
      auto dz_out = t + 1 < flow.size() ? w.dzf[t + 1].view(B) : dz;
      auto dz_in = w.dzf[t].view(B);
      iaf_step_backward(dz_in, has_context() ? &dc : nullptr, w.steps[t], flow[t], dz_out, kw, w.zf[t].view(B),
                        c, P, G, B, ones);
    }
    auto dz0 = flow.empty() ? dz : w.dzf[0].view(B);
    if (w.kl_estimator == FlowKl::Sample)
      flow_base_backward(dmu, dlogvar, dz0, w.logvar.view(B), w.eps.view(B), kw);
    else flow_base_backward_stl(dmu, dlogvar, dz0, w.logvar.view(B), w.eps.view(B), kw);
  }

 private:
  MatView<T> ctx_view(Work& w, std::size_t B) { return has_context() ? w.ctx.view(B) : mat(w.ctx.ptr(), B, 0); }
  MatView<T> raw_logsig_view(Work& w, std::size_t B) {
    return lik.per_pixel() ? w.raw_logsig.view(B) : mat(w.raw_logsig.ptr(), 0, 0);
  }
  MatView<T> draw_logsig_view(Work& w, std::size_t B) {
    return lik.per_pixel() ? w.draw_logsig.view(B) : mat(w.draw_logsig.ptr(), 0, 0);
  }
};

}  // namespace vae
