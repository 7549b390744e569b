// NVAE-small (models/nvae.hpp): its settings, their checks, and its factory, an Nvae<float>
// behind the Model adapter.
#include "models/nvae.hpp"

#include "models/adapter.hpp"
#include "models/mlp_vae.hpp"
#include "models/registry.hpp"

namespace vae {

namespace {

using K = ValueKind;
using I = int64_t;

std::vector<OptionSpec> nvae_options() {
  return {
      option("nvae-scales", K::Int, I(2), "nvae: latent scales (each halves the resolution of the one below)",
             {}, 1.0, 4.0),
      option("nvae-groups", K::Int, I(2), "nvae: latent groups per scale", {}, 1.0, 32.0),
      option("nvae-latent-channels", K::Int, I(8), "nvae: channels of each latent group (a spatial latent)", {},
             1.0, 256.0),
      option("nvae-channels", K::Int, I(16),
             "nvae: channels of the stem; each down-sampling cell doubles them (2 preprocessing cells: "
             "MNIST padded to 32x32 -> 8x8 at 4x the stem's channels)",
             {}, 1.0, 1024.0),
      option("nvae-kl-balance", K::Bool, true,
             "nvae: KL balancing across groups during the KL warm-up (the paper's coefficients: "
             "proportional to each group's KL, divided by its scale's size factor)"),
      option("nvae-spectral", K::Float, 1e-2,
             "nvae: coefficient of the spectral regularisation sum of the conv weights' largest singular "
             "values (one power iteration per step; the paper's MNIST setting is 1e-2)",
             {}, 0.0),
      option("nvae-bn-momentum", K::Float, 0.05,
             "nvae: batch-norm momentum of the running statistics (the paper's 0.05; PyTorch's default 0.1)",
             {}, 0.0, 1.0),
      option("nvae-temperature", K::Float, 1.0,
             "nvae: temperature of samples from the prior (sigma of every group times t; the paper shows "
             "t = 0.6-1.0); evaluation is always at t = 1",
             {}, 0.0, 10.0, false),
  };
}

void validate_nvae(const ConfigMap& c) {
  const std::string& variance = setting<std::string>(c, "variance");
  if (setting<std::string>(c, "posterior") != "gaussian")
    throw ConfigError("key 'posterior': model = nvae has residual Gaussian posteriors only");
  if (setting<double>(c, "free-bits") > 0)
    throw ConfigError("key 'free-bits': model = nvae balances its groups' KL instead (nvae-kl-balance)");
  if (setting<bool>(c, "batchnorm"))
    throw ConfigError("key 'batchnorm': model = nvae always has batch norm (see nvae-bn-momentum)");
  if (setting<int64_t>(c, "batch") * setting<int64_t>(c, "k") > int64_t(kNvaeMaxRows))
    throw ConfigError("key 'batch': model = nvae trains at most 64 rows (batch x k) per step (its feature "
                      "maps take ~10 MB per row at 8 channels; models/nvae.hpp)");
  if (variance != "softplus" || setting<std::string>(c, "activation") == "leaky-relu")
    throw ConfigError(std::string("key '") + (variance != "softplus" ? "variance" : "activation") +
                      "': model = nvae has its own (exp(soft-clamped log sigma), Swish)");
  if (setting<std::string>(c, "output-bias") != "init")
    throw ConfigError(
        "key 'output-bias': model = nvae has no per-pixel output bias to set (its decoder is conv)");
}

// "nvae, 2 scales x 2 groups of 8 channels"
std::string summary_nvae(const ConfigMap& c) {
  auto n = [&](const char* key) { return std::to_string(setting<int64_t>(c, key)); };
  return "nvae, " + n("nvae-scales") + " scales x " + n("nvae-groups") + " groups of " +
         n("nvae-latent-channels") + " channels";
}

std::unique_ptr<Model> make_nvae(const TrainConfig& tc, std::size_t rows, std::size_t cols,
                                 std::mt19937_64& init_rng) {
  return make_family_model<Nvae<float>>(tc, init_rng, nvae_shape(tc.settings, rows, cols), likelihood_from(tc));
}

}  // namespace

NvaeShape nvae_shape(const ConfigMap& c, std::size_t rows, std::size_t cols) {
  NvaeShape s;
  s.rows = rows;
  s.cols = cols;
  s.scales = size_setting(c, "nvae-scales");
  s.groups = size_setting(c, "nvae-groups");
  s.latent_channels = size_setting(c, "nvae-latent-channels");
  s.channels = size_setting(c, "nvae-channels");
  s.kl_balance = setting<bool>(c, "nvae-kl-balance");
  s.spectral = setting<double>(c, "nvae-spectral");
  s.bn_momentum = setting<double>(c, "nvae-bn-momentum");
  s.temperature = setting<double>(c, "nvae-temperature");
  return s;
}

const ModelFamily& nvae_family() {
  static const ModelFamily family(
      {{"nvae",
        "NVAE-small, Vahdat & Kautz 2020: a deep hierarchical convolutional VAE with residual cells, --nvae-*"}},
      nvae_options(), &make_nvae, &validate_nvae, &summary_nvae);
  return family;
}

}  // namespace vae
