// The model families the contract tests (tests/test_contract.cpp) run over, in double, at
// sizes small enough for finite differences. One line per family: adding a family to the
// contract tests is adding its line here.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "models/ladder.hpp"
#include "models/nvae.hpp"
#include "models/vae.hpp"
#include "models/vqvae.hpp"
#include "toy_linear_family.hpp"

namespace vae::test {

// A family under test: how to build it (initialised), and what it supports.
template <class M>
struct FamilyCase {
  std::string name;
  std::function<std::unique_ptr<M>()> make;
  bool binary = true;      // Bernoulli likelihood (x in {0,1}), else Gaussian (x in [0,1])
  bool iwae = true;        // the IWAE objective's row-weighted backward is implemented
  bool batchnorm = false;  // has a training and an evaluation mode
  // Capabilities a deterministic-encoder family (the VQ-VAE) declares:
  bool stochastic = true;  // false: a point-mass posterior, whose IW estimate equals its ELBO
  // Parameter groups (name prefixes) whose gradient is a surrogate's, not the loss's (the
  // straight-through estimator): the contract's finite differences leave them out, and the
  // family's own test checks them against the surrogate (tests/test_vqvae.cpp).
  std::vector<std::string> surrogate_groups = {};
  // The finite differences' step (tests/gradcheck.hpp). Their error is rounding noise of the
  // loss over h for small h and the kinks of ReLU-like units crossed for large h; a family
  // whose smallest parameter groups sit at that noise takes the step between the two.
  double fd_step = 1e-4;
  bool closed_form_kl = true;  // the ELBO's KL has one (an IAF posterior's has not: always sampled)
};

inline VaeShape small_vae_shape(std::size_t latent = 3) {
  VaeShape s;
  s.data_dim = 16;
  s.latent = latent;
  s.hidden = {7};
  s.activation = Activation::Tanh;
  return s;
}

template <class M>
std::unique_ptr<M> initialised(std::unique_ptr<M> m, uint64_t seed) {
  std::mt19937_64 rng(seed);
  m->initialize(Init::Uniform, 0, rng);
  return m;
}

inline Likelihood<double> bernoulli() { return Likelihood<double>{}; }
inline Likelihood<double> gaussian(SigmaMode mode) {
  Likelihood<double> l;
  l.kind = LikelihoodKind::Gaussian;
  l.sigma = mode;
  l.min_log_sigma = -2.0;
  return l;
}

inline VaeShape small_iaf_shape() {
  VaeShape s = small_vae_shape(4);
  s.posterior = PosteriorKind::Iaf;
  s.iaf.steps = 2;
  s.iaf.hidden = 6;
  s.iaf.layers = 1;
  s.iaf.context = 3;
  return s;
}
inline VaeShape small_conv_shape() {
  VaeShape s = small_vae_shape();
  s.arch = Arch::Conv;
  s.conv.rows = 4;
  s.conv.cols = 4;
  s.conv.channels = {2, 3};
  s.conv.kernel = 3;
  return s;
}
inline LadderShape small_ladder_shape(Inference inference) {
  LadderShape s;
  s.data_dim = 16;
  s.latent = {3, 2};
  s.hidden = {6, 5};
  s.depth = 2;
  s.act = Nonlinearity{Activation::Tanh};
  s.batchnorm = true;
  s.inference = inference;
  return s;
}

// NVAE-small at 4x4: one down-sampling cell to 2x2, latent scales at 1x1 and 2x2, one group each.
inline NvaeShape small_nvae_shape() {
  NvaeShape s;
  s.rows = s.cols = 4;
  s.channels = 1;
  s.scales = 2;
  s.groups = 1;
  s.latent_channels = 2;
  s.pre = 1;
  s.expand = 2;
  return s;
}

// A 4x4 image -> 2x2 -> one code position; K = 5 codes of dimension 2.
inline VqShape small_vq_shape(bool ema) {
  VqShape s;
  s.rows = s.cols = 4;
  s.channels = 3;
  s.res_blocks = 1;
  s.res_hidden = 2;
  s.codebook = 5;
  s.code_dim = 2;
  s.update = ema ? VqUpdate::Ema : VqUpdate::Loss;
  s.decay = 0.9;
  s.restart = ema ? 0.5 : 0.0;
  return s;
}

// Two levels (VQ-VAE-2): an 8x8 image -> 4x4 -> a 2x2 bottom grid of K = 5 codes -> a 1x1 top
// grid of 3 codes, of dimension 2.
inline VqShape small_vq2_shape(bool ema) {
  VqShape s = small_vq_shape(ema);
  s.rows = s.cols = 8;
  s.levels = 2;
  s.top_codebook = 3;
  return s;
}

// Calls f(FamilyCase<M>) for every family; f is a generic lambda.
template <class F>
void for_each_family(F&& f) {
  using V = Vae<double>;
  using Lad = LadderVae<double>;
  f(FamilyCase<V>{"vae mlp bernoulli",
                  [] { return initialised(std::make_unique<V>(small_vae_shape(), bernoulli()), 1); }});
  f(FamilyCase<V>{"vae mlp gaussian learned sigma",
                  [] {
                    return initialised(std::make_unique<V>(small_vae_shape(), gaussian(SigmaMode::Learned)), 2);
                  },
                  false});
  f(FamilyCase<V>{
      "vae mlp gaussian per-pixel sigma",
      [] { return initialised(std::make_unique<V>(small_vae_shape(), gaussian(SigmaMode::PerPixel)), 3); },
      false});
  // The IWAE paper's code's posterior head: sigma = exp(a) (vae/encoder.hpp).
  f(FamilyCase<V>{"vae mlp bernoulli log-sigma head", [] {
                    VaeShape s = small_vae_shape();
                    s.log_sigma_head = true;
                    return initialised(std::make_unique<V>(s, bernoulli()), 11);
                  }});
  f(FamilyCase<V>{"vae conv bernoulli",
                  [] { return initialised(std::make_unique<V>(small_conv_shape(), bernoulli()), 4); }, true,
                  true, true});
  {
    FamilyCase<V> iaf{"vae iaf bernoulli",
                      [] { return initialised(std::make_unique<V>(small_iaf_shape(), bernoulli()), 5); }};
    iaf.closed_form_kl = false;
    f(iaf);
  }
  f(FamilyCase<Lad>{"hierarchical bn",
                    [] {
                      return initialised(
                          std::make_unique<Lad>(small_ladder_shape(Inference::BottomUp), bernoulli()), 6);
                    },
                    true, true, true});
  f(FamilyCase<Lad>{
      "ladder bn",
      [] { return initialised(std::make_unique<Lad>(small_ladder_shape(Inference::Ladder), bernoulli()), 7); },
      true, true, true});
  // The IWAE paper's 2-layer model (x-200-200-z100-100-100-z50, tanh, exp variances) at a small size.
  f(FamilyCase<Lad>{"hierarchical iwae-paper exp variance", [] {
                      LadderShape s = small_ladder_shape(Inference::BottomUp);
                      s.batchnorm = false;
                      s.variance = VarianceHead::Exp;
                      return initialised(std::make_unique<Lad>(s, bernoulli()), 9);
                    }});
  // The same with the paper's code's heads: sigma = exp(a), var = exp(2a).
  f(FamilyCase<Lad>{"hierarchical iwae-code exp-sigma variance", [] {
                      LadderShape s = small_ladder_shape(Inference::BottomUp);
                      s.batchnorm = false;
                      s.variance = VarianceHead::ExpSigma;
                      return initialised(std::make_unique<Lad>(s, bernoulli()), 12);
                    }});
  // NVAE's smallest groups (enc2.main.2.W, |grad| ~3.5e-5, under gradcheck.hpp's 1e-4 floor)
  // are at the loss's rounding noise: the worst error of its six contract cases falls as 1/h,
  // 7.5e-6 at h = 1e-5, 9.8e-7 at 1e-4 (2% under the 1e-6 tolerance), 2.7e-7 at 3e-4, while at
  // 1e-3 the training-mode case crosses the kink of an SE block's ReLU (enc2.main.6.b1: 9e-4).
  // 3e-4 sits between the two (measured with the scalar and the xsimd Swish alike).
  f(FamilyCase<Nvae<double>>{
      "nvae",
      [] { return initialised(std::make_unique<Nvae<double>>(small_nvae_shape(), bernoulli()), 10); },
      true,
      true,
      true,
      true,
      {},
      3e-4});
  f(FamilyCase<ToyLinearVae<double>>{"toy linear (tests/toy_linear_family.hpp)", [] {
                                       return initialised(std::make_unique<ToyLinearVae<double>>(16, 3, 8), 8);
                                     }});
  f(FamilyCase<VqVae<double>>{
      "vqvae",
      [] { return initialised(std::make_unique<VqVae<double>>(small_vq_shape(false), bernoulli()), 10); },
      true,
      false,
      false,
      false,
      {"enc", "codebook"}});
  f(FamilyCase<VqVae<double>>{
      "vqvae ema, dead-code restart",
      [] { return initialised(std::make_unique<VqVae<double>>(small_vq_shape(true), bernoulli()), 11); },
      true,
      false,
      false,
      false,
      {"enc"}});
  // Two levels: the bottom codes depend on the top decoder, the bottom quantiser's 1x1 conv and
  // the top codebook too, so all of these carry the straight-through surrogate (checked by
  // tests/test_vqvae.cpp); up_t, dec and the likelihood get exact gradients. The step 3e-4: at
  // 1e-4 the rounding noise of the loss over h is 1.4e-6 of the smallest decoder groups'
  // gradients (dec1.W, dec3.W; as NVAE's above).
  f(FamilyCase<VqVae<double>>{
      "vqvae two levels",
      [] { return initialised(std::make_unique<VqVae<double>>(small_vq2_shape(false), bernoulli()), 12); },
      true,
      false,
      false,
      false,
      {"enc", "dec_t", "quant_b", "codebook"},
      3e-4});
}

}  // namespace vae::test
