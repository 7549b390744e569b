// The VAE of Kingma & Welling (2013) and its variants, composed of four parts as data flows:
//   x --encoder--> (mu, logvar) --posterior(eps)--> z, kl --decoder--> out --likelihood--> -log p(x|z)
// encoder   (models/vae/encoder.hpp): an MLP or convolutions (with batch norm) to features
//           h, then Linear heads to the Gaussian's mu and logvar;
// posterior (models/vae/posterior.hpp): the diagonal Gaussian with the analytic KL, or the
//           Gaussian followed by T IAF steps (Kingma et al. 2016) reading a context head on h,
//           whose kl holds the single-sample log q(z_T|x) - log p(z_T) split over coordinates;
// decoder   (models/vae/decoder.hpp): an MLP with Linear heads, or transposed convolutions;
// likelihood (prob/likelihood.hpp): Bernoulli, or Gaussian with any sigma mode.
// The constructor chooses each part once (from VaeShape); forward, backward and the
// evaluations call them through their interfaces and branch on none of them. eps is an
// input, so forward is a pure function of (parameters, x, eps) and gradient checks are
// exact. Batch norm (conv) uses batch statistics when Work::training is set, else the
// running ones kept in `state`. The flat layout, the group names and the initial draws are
// those of the one-class model this replaced (a checkpoint and a run id mean the same).
#pragma once

#include <cmath>
#include <cstddef>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "models/contract.hpp"
#include "models/vae/decoder.hpp"
#include "models/vae/encoder.hpp"
#include "models/vae/posterior.hpp"
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
  ConvShape conv;               // read only when arch == Conv (rows * cols == data_dim)
  bool log_sigma_head = false;  // the scale head gives log sigma, not log var (vae/encoder.hpp)
};

template <class T>
class Vae {
 public:
  VaeShape shape;
  Likelihood<T> lik;
  Buffer<T> params, grads;
  Buffer<T> state;  // batch-norm running statistics (conv), saved in checkpoints

  // The parts are chosen here, once; nothing below branches on which they are.
  Vae(const VaeShape& s, const Likelihood<T>& likelihood) : shape(s), lik(likelihood) {
    ParamLayout layout, state_layout;
    if (s.arch == Arch::Conv) {
      auto enc = std::make_unique<ConvVaeEncoder<T>>(layout, state_layout, s.data_dim, s.conv, s.latent,
                                                     s.activation);
      decoder_ = std::make_unique<ConvVaeDecoder<T>>(layout, state_layout, enc->body(), s.conv, s.latent,
                                                     lik.per_pixel(), s.activation);
      encoder_ = std::move(enc);
    } else {
      encoder_ = std::make_unique<MlpEncoder<T>>(layout, s.data_dim, s.hidden, s.latent, s.activation);
      decoder_ = std::make_unique<MlpDecoder<T>>(layout, s.latent, s.hidden, s.data_dim, lik.per_pixel(),
                                                 s.activation);
    }
    encoder_->set_log_sigma_head(s.log_sigma_head);
    lik.take_param(layout);
    // The flow's parameters come last, so the Gaussian part has the same layout (and, from
    // the same seed, the same initial values) as the Gaussian VAE.
    if (s.posterior == PosteriorKind::Iaf && s.iaf.steps > 0)
      posterior_ = std::make_unique<IafPosterior<T>>(layout, s.latent, encoder_->h_size(), s.iaf, s.activation);
    else posterior_ = std::make_unique<GaussianPosterior<T>>(s.iaf.kl);
    params.assign(layout.size, T(0));
    grads.assign(layout.size, T(0));
    state.assign(state_layout.size, T(0));
  }

  std::size_t num_params() const { return params.size(); }
  const VaeEncoder<T>& encoder() const { return *encoder_; }
  const VaePosterior<T>& posterior() const { return *posterior_; }
  const VaeDecoder<T>& decoder() const { return *decoder_; }

  // Every parameter, by name: enc0 ... enc_mu enc_logvar dec0 ... dec_out [dec_logsig]
  // [log_sigma] [enc_ctx] then per IAF step t: iaf<t>.h<k> (masked), iaf<t>.ctx (W only),
  // iaf<t>.m, iaf<t>.s (masked); .W and .b of each. Conv: conv<i>, bn<i> (.gamma, .beta),
  // enc_mu, enc_logvar, dec_fc, deconv<i>, dbn<i>, [deconv_logsig] in place of the MLPs.
  std::vector<ParamRange> param_groups() const {
    std::vector<ParamRange> g;
    encoder_->add_groups(g);
    decoder_->add_groups(g);
    lik.add_group(g);
    posterior_->add_groups(g);
    return g;
  }

  // The order of the draws: vae/part.hpp.
  void initialize(Init init, double std_dev, std::mt19937_64& rng) {
    T* P = params.data();
    for (const VaePart<T>* p : parts()) p->init_linear_layers(P, init, std_dev, rng);
    encoder_->init_other_layers(P, state.data(), init, std_dev, rng);
    decoder_->init_other_layers(P, state.data(), init, std_dev, rng);
    lik.initialize(P);  // sigma = 1
    posterior_->init_other_layers(P, state.data(), init, std_dev, rng);
  }

  // Everything one batch needs, allocated once for batches of up to max_batch rows.
  struct Work : LossWeights<T>, LikelihoodBuffers<T> {
    std::size_t max_batch = 0;
    Activation2<T> eps, mu, logvar, z, kl, dmu, dlogvar, dz;
    Activation2<T> kw;                 // row-weighted backward (IWAE): row_weight[b] * unit_weight[l], [B,L]
    std::vector<double> log_q, log_p;  // [B], in double: they feed a log-sum-exp
    std::unique_ptr<PartWork> enc, post, dec;  // the parts' own buffers
    bool training = true;  // batch-norm mode: batch statistics (running ones updated), else the running ones
    // Of the last encode: rows encoded (E) and rows per code (rep; E * rep rows in all).
    std::size_t encoded = 0, rep = 1;
  };

  void reserve(Work& w, std::size_t max_batch) const {
    const std::size_t D = shape.data_dim, L = shape.latent, B = max_batch;
    w.max_batch = B;
    for (Activation2<T>* a : {&w.mu, &w.logvar, &w.z, &w.kl, &w.dmu, &w.dlogvar, &w.dz, &w.eps, &w.kw})
      a->reserve(B, L);
    w.reserve_likelihood(lik, B, D);
    w.reserve_weights(B, L);
    w.log_q.assign(B, 0.0);
    w.log_p.assign(B, 0.0);
    w.enc = encoder_->make_work(B);
    w.post = posterior_->make_work(B);
    w.dec = decoder_->make_work(B);
  }

  // x [R,D] -> mu, logvar (and the posterior's context) [R,*]. With k samples per example
  // (w.k > 1) an encoder may encode each example once (rows_per_code) and copy its outputs
  // to the example's k rows; backward then sums their k gradients before the encoder's.
  void encode(Work& w, std::size_t R) {
    const std::size_t rep = encoder_->rows_per_code(w.k);
    encode_rows(w, R / rep, rep, rep);
  }

  // mu, logvar, (context,) eps [B,*] -> z [B,L] and kl [B,L]: the analytic KL for the
  // Gaussian, the single-sample log q(z_T|x) - log p(z_T) per coordinate through the flow.
  void posterior_forward(Work& w, std::size_t B) {
    auto z = w.z.view(B), kl = w.kl.view(B);
    posterior_->forward(z, kl, *w.post, w.mu.view(B), w.logvar.view(B), w.eps.view(B), params.data(), B,
                        w.sampled_kl);
  }

  // After posterior_forward: w.log_q[b] = log q(z_b|x_b) with the full flow density
  //   log N(eps; 0, I) - sum logvar / 2 - sum_t sum log sigma_t,
  // and w.log_p[b] = log N(z_b; 0, I), in double (they feed a log-sum-exp).
  void log_densities(Work& w, std::size_t B) {
    log_posterior_rows(w.log_q.data(), w.eps.view(B), w.logvar.view(B));
    log_prior_rows(w.log_p.data(), w.z.view(B));
    posterior_->add_log_det(w.log_q.data(), *w.post, B);
  }

  // After forward (or posterior_forward and decode): out[b] = log p(x_b, z_b) - log q(z_b|x_b),
  // the log importance weight of the sample z_b.
  void log_weights(Work& w, std::size_t B, double* out) {
    log_densities(w, B);
    for (std::size_t b = 0; b < B; ++b) out[b] = -double(w.rec[b]) + w.log_p[b] - w.log_q[b];
  }

  // z [B,L] -> the likelihood's parameters: out [B,D] and, per-pixel sigma, raw_logsig.
  void decode_params(Work& w, std::size_t B) {
    auto out = w.out.view(B), raw = w.raw_logsig.view(B);
    decoder_->forward(out, raw, *w.dec, w.z.view(B), params.data(), state.data(), B, w.training);
  }

  // z [B,L] and x [B,D] -> rec[b] = -log p(x_b | z_b)
  void decode(Work& w, std::size_t B) {
    decode_params(w, B);
    auto rec = vec(w.rec.data(), B);
    likelihood_forward(rec, w.lw, lik, w.out.view(B), w.raw_logsig.view(B), w.x.view(B), params.data());
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
  // backward() reports every parameter to w.grad_sink when every part does (the MLP
  // encoder and decoder with the Gaussian posterior; the flow and the convolutions do not).
  bool streams_grads() const {
    return encoder_->streams_grads() && decoder_->streams_grads() && posterior_->streams_grads();
  }

  // The code of x: mu; with the IAF, the code in the decoder's space, z_T at eps = 0, and
  // base = the base Gaussian's mu.
  bool has_base_codes() const { return posterior_->has_base_codes(); }
  void mean_codes(Work& w, std::size_t B, T* codes, T* base) {
    encode(w, B);
    if (base) std::copy(w.mu.ptr(), w.mu.ptr() + B * shape.latent, base);
    auto z = w.z.view(B), kl = w.kl.view(B), eps = w.eps.view(B);
    posterior_->mean_codes(codes, z, kl, *w.post, w.mu.view(B), w.logvar.view(B), eps, params.data(), B);
  }

  // x row 0 -> its posterior's parameters on rows 0..m-1. A Bernoulli decoder scores every
  // sample against row 0 (see iw_samples); the others need m copies of x.
  void iw_prepare(Work& w, std::size_t m) {
    encode_rows(w, 1, 1, m);
    if (lik.kind != LikelihoodKind::Bernoulli) replicate_rows(w.x.ptr(), 1, m, shape.data_dim);
  }
  // eps [m,L] -> z and rec of m samples of row 0's posterior. A Bernoulli decoder reads the
  // one image row for every sample (decode() would score m copies and keep exp(-|logit|) for
  // a backward pass: two [m,D] streams that evict the weights the next chunk's gemm reads).
  void iw_samples(Work& w, std::size_t m) {
    auto z = w.z.view(m), kl = w.kl.view(m);
    posterior_->sample_row0(z, kl, *w.post, w.mu.view(m), w.logvar.view(m), w.eps.view(m), params.data(), m);
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
    if (w.row_weighted && !w.sampled_kl)
      throw std::logic_error("Vae::backward: row weights need the sampled KL");
    T* P = params.data();
    T* G = grads.data();
    auto x = w.x.view(B), dout = w.dout.view(B), draw = w.draw_logsig.view(B);
    likelihood_backward(dout, draw, w.lw, lik, w.out.view(B), w.raw_logsig.view(B), x, P, G, rec_scale,
                        w.row_weighted ? w.row_weight.data() : static_cast<const T*>(nullptr));
    if (lik.has_shared_param()) w.grad_ready(lik.shared_offset, 1);
    auto z = w.z.view(B), dz = w.dz.view(B);
    decoder_->backward(dz, *w.dec, dout, draw, z, P, G, B, w.training, w.grad_sink);
    // the posterior, weighting the KL terms by unit (or by row and unit) -> dmu, dlogvar
    auto dmu = w.dmu.view(B), dlogvar = w.dlogvar.view(B);
    auto mu = w.mu.view(B), logvar = w.logvar.view(B), eps = w.eps.view(B);
    const std::size_t L = shape.latent;
    if (w.row_weighted) {
      T* kw = w.kw.ptr();
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t l = 0; l < L; ++l) kw[b * L + l] = w.row_weight[b] * w.unit_weight[l];
      posterior_->backward(dmu, dlogvar, *w.post, dz, w.kw.view(B), mu, logvar, eps, z, P, G, B, w.sampled_kl);
    } else {
      posterior_->backward(dmu, dlogvar, *w.post, dz, vec(w.unit_weight.data(), L), mu, logvar, eps, z, P, G, B,
                           w.sampled_kl);
    }
    // -> the encoder's rows (rep rows per code summed): heads, the context head, the body
    const std::size_t E = w.encoded, rep = w.rep;
    sum_row_groups(w.dmu.ptr(), E, rep, L);
    sum_row_groups(w.dlogvar.ptr(), E, rep, L);
    encoder_->backward_heads(*w.enc, w.dmu.view(E), w.dlogvar.view(E), P, G, E, w.grad_sink);
    auto dh = encoder_->dh(*w.enc, E);
    posterior_->context_backward(dh, *w.post, encoder_->h(*w.enc, E), P, G, E, rep);
    encoder_->backward_body(*w.enc, x, P, G, E, rep, w.training, w.grad_sink);
  }

 private:
  std::unique_ptr<VaeEncoder<T>> encoder_;
  std::unique_ptr<VaePosterior<T>> posterior_;
  std::unique_ptr<VaeDecoder<T>> decoder_;

  std::vector<const VaePart<T>*> parts() const { return {encoder_.get(), decoder_.get(), posterior_.get()}; }

  // x rows 0, stride, ... (E of them) -> mu, logvar, context on rows 0 .. E rep - 1, each
  // encoded row repeated rep times.
  void encode_rows(Work& w, std::size_t E, std::size_t stride, std::size_t rep) {
    T* P = params.data();
    auto mu = w.mu.view(E), logvar = w.logvar.view(E);
    encoder_->forward(mu, logvar, *w.enc, w.x.view(E * stride), P, state.data(), E, stride, w.training);
    posterior_->context_forward(*w.post, encoder_->h(*w.enc, E), P, E, rep);
    replicate_rows(w.mu.ptr(), E, rep, shape.latent);
    replicate_rows(w.logvar.ptr(), E, rep, shape.latent);
    w.encoded = E;
    w.rep = rep;
  }
};

}  // namespace vae
