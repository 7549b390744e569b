// The VQ-VAE (models/vqvae.hpp): its settings, their checks, and its factory, a VqVae<float>
// behind the Model adapter.
#include "models/vqvae.hpp"

#include <stdexcept>
#include <string>

#include "models/adapter.hpp"
#include "models/mlp_vae.hpp"
#include "models/registry.hpp"

namespace vae {

namespace {

const Choices<VqUpdate> kUpdate{{{"loss", VqUpdate::Loss}, {"ema", VqUpdate::Ema}}};

using K = ValueKind;
using I = int64_t;

std::vector<OptionSpec> vq_options() {
  return {
      option("vq-codebook", K::Int, I(64), "vqvae: codebook size K", {}, 2.0, 65536.0),
      option("vq-dim", K::Int, I(16), "vqvae: dimension D of each code", {}, 1.0, 4096.0),
      option("vq-channels", K::Int, I(64), "vqvae: channels of the encoder's and decoder's convolutions", {},
             1.0, 4096.0),
      option("vq-res-blocks", K::Int, I(2), "vqvae: residual blocks in the encoder and in the decoder", {}, 0.0,
             64.0),
      option("vq-res-hidden", K::Int, I(32), "vqvae: channels inside a residual block (3x3 then 1x1 conv)", {},
             1.0, 4096.0),
      option("vq-beta", K::Float, 0.25, "vqvae: weight beta of the commitment term beta ||z_e - sg(e)||^2", {},
             0.0),
      option("vq-update", K::String, std::string("loss"),
             "vqvae: codebook update: loss (the codebook term ||sg(z_e) - e||^2) or ema (exponential moving "
             "averages of the assigned encoder outputs, VQ-VAE-2; --vq-decay)",
             kUpdate.names()),
      option("vq-decay", K::Float, 0.99, "vqvae: decay of the EMA update and of the running code usage", {},
             0.0, 1.0),
      option("vq-restart", K::Float, 0.0,
             "vqvae: dead-code restart: a code whose running usage (assignments per step, decayed by "
             "--vq-decay) falls below this takes a random encoder output of the batch (0: off)",
             {}, 0.0),
      option("vq-levels", K::Int, I(1),
             "vqvae: levels of codes: 1, or 2 as VQ-VAE-2 (a top grid of --vq-top-codebook codes, half the "
             "bottom grid's size, whose decoded codes condition the bottom quantiser; the decoder reads both)",
             {}, 1.0, 2.0),
      option("vq-top-codebook", K::Int, I(64), "vqvae: codebook size of the top level (with --vq-levels 2)", {},
             2.0, 65536.0),
      option("vq-prior-epochs", K::Int, I(0),
             "vqvae: epochs of the second stage after --epochs: a gated PixelCNN prior over the code grid, "
             "trained on the frozen autoencoder's codes (0: the uniform prior); with --vq-levels 2 one per "
             "level, the bottom one conditioned on the top codes",
             {}, 0.0, 1e6),
      option("vq-prior-layers", K::Int, I(4), "vqvae: residual gated layers of the PixelCNN prior", {}, 0.0,
             64.0),
      option("vq-prior-features", K::Int, I(32), "vqvae: channels of the PixelCNN prior", {}, 1.0, 4096.0),
  };
}

void validate_vq(const ConfigMap& c) {
  if (setting<std::string>(c, "objective") == "iwae")
    throw ConfigError("key 'objective': model = vqvae has a point-mass posterior: its IWAE bound is "
                      "its ELBO (use objective = elbo)");
  if (setting<std::string>(c, "sigma") == "per-pixel")
    throw ConfigError("key 'sigma': model = vqvae has no per-pixel sigma head");
  if (setting<std::string>(c, "posterior") != "gaussian" || setting<std::string>(c, "arch") != "mlp")
    throw ConfigError("key 'posterior'/'arch': model = vqvae has its own conv encoder and discrete codes");
  if (setting<std::string>(c, "output-bias") != "init")
    throw ConfigError(
        "key 'output-bias': model = vqvae has no per-pixel output bias to set (its decoder is conv)");
  if (setting<int64_t>(c, "vq-levels") == 1 &&
      std::size_t(setting<int64_t>(c, "vq-top-codebook")) != VqShape{}.top_codebook)
    throw ConfigError("key 'vq-top-codebook': the top level's codebook needs vq-levels = 2");
  // The prior's stage follows the autoencoder's epochs; a budget could end training in either.
  if (setting<double>(c, "time-budget") > 0 && setting<int64_t>(c, "vq-prior-epochs") > 0)
    throw ConfigError("key 'time-budget': not with a second training stage (vq-prior-epochs > 0): "
                      "give the autoencoder and its prior epochs instead");
}

void validate_not_vq(const ConfigMap& c) {
  if (setting<int64_t>(c, "vq-prior-epochs") > 0)
    throw ConfigError("key 'vq-prior-epochs': only model = vqvae has a second (prior) stage");
  if (setting<int64_t>(c, "vq-levels") != 1)
    throw ConfigError("key 'vq-levels': only model = vqvae has levels of codes");
}

// "vqvae, 64 codes of dimension 16, uniform prior"; two levels: "vqvae, two levels, 64 (bottom)
// and 32 (top) codes of dimension 16, PixelCNN priors"
std::string summary_vq(const ConfigMap& c) {
  const std::string K = std::to_string(setting<int64_t>(c, "vq-codebook"));
  const bool two = setting<int64_t>(c, "vq-levels") == 2;
  return std::string("vqvae, ") +
         (two ? "two levels, " + K + " (bottom) and " + std::to_string(setting<int64_t>(c, "vq-top-codebook")) +
                    " (top) codes"
              : K + " codes") +
         " of dimension " + std::to_string(setting<int64_t>(c, "vq-dim")) +
         (setting<int64_t>(c, "vq-prior-epochs") > 0 ? ", PixelCNN prior" : ", uniform prior") +
         (two ? "s" : "");
}

std::unique_ptr<Model> make_vq(const TrainConfig& tc, std::size_t rows, std::size_t cols,
                               std::mt19937_64& init_rng) {
  try {
    return make_family_model<VqVae<float>>(tc, init_rng, vq_shape(tc.settings, rows, cols),
                                           likelihood_from(tc));
  } catch (const std::invalid_argument& e) {  // an image size the strided convolutions do not allow
    // (with two levels the top encoder halves the bottom grid once more)
    throw ConfigError(std::string("key 'model' (vqvae): ") + e.what());
  }
}

}  // namespace

VqShape vq_shape(const ConfigMap& c, std::size_t rows, std::size_t cols) {
  VqShape s;
  s.rows = rows;
  s.cols = cols;
  s.codebook = size_setting(c, "vq-codebook");
  s.code_dim = size_setting(c, "vq-dim");
  s.channels = size_setting(c, "vq-channels");
  s.res_blocks = size_setting(c, "vq-res-blocks");
  s.res_hidden = size_setting(c, "vq-res-hidden");
  s.beta = setting<double>(c, "vq-beta");
  s.update = kUpdate.of(c, "vq-update");
  s.decay = setting<double>(c, "vq-decay");
  s.restart = setting<double>(c, "vq-restart");
  s.levels = size_setting(c, "vq-levels");
  s.top_codebook = size_setting(c, "vq-top-codebook");
  s.prior_epochs = size_setting(c, "vq-prior-epochs");
  s.prior_layers = size_setting(c, "vq-prior-layers");
  s.prior_features = size_setting(c, "vq-prior-features");
  return s;
}

const ModelFamily& vqvae_family() {
  static const ModelFamily family(
      {{"vqvae", "VQ-VAE, van den Oord et al. 2017: discrete codes on a conv grid, uniform or PixelCNN prior, "
                 "one or two levels (VQ-VAE-2), --vq-*"}},
      vq_options(), &make_vq, &validate_vq, &summary_vq, &validate_not_vq);
  return family;
}

}  // namespace vae
