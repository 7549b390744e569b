// The VAE family (Gaussian, beta- and sigma-VAE, IAF posterior; MLP or convolutional encoder
// and decoder): its settings, their checks, and its factory, a Vae<float> behind the Model
// adapter.
#include "models/mlp_vae.hpp"

#include <cmath>
#include <stdexcept>

#include "models/adapter.hpp"
#include "models/registry.hpp"
#include "models/vae.hpp"

namespace vae {

namespace {

const Choices<Arch> kArch{{{"mlp", Arch::Mlp}, {"conv", Arch::Conv}}};
const Choices<PosteriorKind> kPosterior{{{"gaussian", PosteriorKind::Gaussian}, {"iaf", PosteriorKind::Iaf}}};
const Choices<FlowKl> kIafKl{{{"sample", FlowKl::Sample}, {"stl", FlowKl::Stl}}};
const Choices<bool> kPosteriorHead{{{"log-var", false}, {"log-sigma", true}}};  // true: log sigma

using K = ValueKind;
using I = int64_t;

std::vector<OptionSpec> vae_options() {
  return {
      option("latent", K::Int, I(20), "latent dimension", {}, 1.0, 4096.0),
      option("hidden", K::IntList, std::vector<I>{400},
             "hidden layer sizes of encoder and decoder (decoder mirrored), e.g. 500,500", {}, 1.0, 65536.0),
      option("arch", K::String, std::string("mlp"),
             "encoder and decoder of model = vae: mlp (--hidden), or conv: --conv-channels stride-2 "
             "convolutions with batch norm, linear heads, and transposed convolutions back (the "
             "defaults are the MNIST preset of ../shared/bench/torch_vae_baseline.py --arch conv)",
             kArch.names()),
      option("conv-channels", K::IntList, std::vector<I>{32, 64, 128, 256},
             "arch = conv: encoder channels, each a Conv2d with stride 2 (the decoder mirrors them)", {}, 1.0,
             4096.0),
      option("conv-kernel", K::Int, I(3), "arch = conv: kernel size (padding (k-1)/2)", {}, 1.0, 15.0),
      option("posterior", K::String, std::string("gaussian"),
             "approximate posterior: gaussian (diagonal), or iaf: the diagonal Gaussian followed by "
             "--iaf-steps inverse autoregressive flow steps (Kingma et al. 2016)",
             kPosterior.names()),
      option("posterior-head", K::String, std::string("log-var"),
             "model = vae: what the posterior's scale head a gives: log-var (var = exp(a), the VAE "
             "paper's and the IWAE paper's text) or log-sigma (sigma = exp(a), var = exp(2a), the IWAE "
             "paper's code)",
             kPosteriorHead.names()),
      option("iaf-steps", K::Int, I(2), "IAF: flow steps T (0: the diagonal Gaussian, analytic KL)", {}, 0.0,
             64.0),
      option("iaf-hidden", K::Int, I(320), "IAF: hidden width of each step's MADE", {}, 1.0, 65536.0),
      option("iaf-made-layers", K::Int, I(2), "IAF: hidden layers of each step's MADE", {}, 1.0, 16.0),
      option("iaf-context", K::Int, I(64),
             "IAF: size of the encoder's extra output h, input to every step's MADE (0: none)", {}, 0.0,
             65536.0),
      option("iaf-forget-bias", K::Float, 1.0,
             "IAF: sigma = sigmoid(s + forget-bias); 1 starts each step close to keeping z", {}, -20.0, 20.0),
      option("iaf-kl", K::String, std::string("sample"),
             "IAF: gradient of the single-sample KL log q(z_T|x) - log p(z_T): sample (exact) or stl "
             "(sticking the landing, Roeder et al. 2017: without the base Gaussian's zero-mean "
             "score term, less noise; same loss and expected gradient)",
             kIafKl.names()),
  };
}

void validate_vae(const ConfigMap& c) {
  if (setting<std::vector<int64_t>>(c, "conv-channels").empty())
    throw ConfigError("key 'conv-channels': at least one convolution is needed");
  if (setting<std::vector<int64_t>>(c, "hidden").empty())
    throw ConfigError("key 'hidden': at least one hidden layer is needed");
  if (kPosterior.of(c, "posterior") == PosteriorKind::Iaf && setting<int64_t>(c, "iaf-steps") > 0 &&
      setting<double>(c, "free-bits") > 0)
    throw ConfigError("key 'free-bits': not defined for posterior = iaf (with iaf-steps > 0): the "
                      "flow mixes latent dimensions, so its single-sample KL has no per-dimension "
                      "parts to clamp; use free-bits = 0");
  if (setting<std::string>(c, "output-bias") == "data-logit" && setting<std::string>(c, "arch") != "mlp")
    throw ConfigError("key 'output-bias': the conv decoder's bias is per channel: data-logit needs arch = mlp");
}

// With another model: the posterior head is this family's (the ladder family has --variance).
void validate_not_vae(const ConfigMap& c) {
  if (kPosteriorHead.of(c, "posterior-head"))
    throw ConfigError("key 'posterior-head': only model = vae has this head (model = " +
                      setting<std::string>(c, "model") + ": see --variance)");
}

// The KL gradient estimator of the flow means nothing without flow steps.
void canonicalize_vae(ConfigMap& c, const ConfigMap& defaults) {
  if (kPosterior.of(c, "posterior") != PosteriorKind::Iaf || setting<int64_t>(c, "iaf-steps") == 0)
    c["iaf-kl"] = defaults.at("iaf-kl");
}

std::string summary_vae(const ConfigMap& c) {
  return "latent " + std::to_string(setting<int64_t>(c, "latent"));
}

std::unique_ptr<Model> make_vae(const TrainConfig& tc, std::size_t rows, std::size_t cols,
                                std::mt19937_64& init_rng) {
  try {
    return make_family_model<Vae<float>>(tc, init_rng, vae_shape(tc.settings, rows, cols), likelihood_from(tc));
  } catch (const std::invalid_argument& e) {  // a conv geometry the images do not allow
    throw ConfigError(std::string("keys 'conv-channels', 'conv-kernel': ") + e.what());
  }
}

}  // namespace

Likelihood<float> likelihood_from(const TrainConfig& tc) {
  Likelihood<float> lik;
  lik.kind = tc.likelihood == "gaussian" ? LikelihoodKind::Gaussian : LikelihoodKind::Bernoulli;
  lik.sigma = parse_sigma_mode(tc.sigma);
  lik.fixed_log_sigma = float(std::log(tc.sigma_value));
  lik.min_log_sigma = float(tc.min_log_sigma);
  lik.sigmoid_mean = tc.gaussian_mean == "sigmoid";
  return lik;
}

VaeShape vae_shape(const ConfigMap& c, std::size_t rows, std::size_t cols) {
  VaeShape shape;
  shape.data_dim = rows * cols;
  shape.arch = kArch.of(c, "arch");
  if (shape.arch == Arch::Conv) {
    shape.conv.rows = rows;
    shape.conv.cols = cols;
    shape.conv.channels = size_list(c, "conv-channels");
    shape.conv.kernel = size_setting(c, "conv-kernel");
  }
  shape.latent = size_setting(c, "latent");
  shape.hidden = size_list(c, "hidden");
  shape.activation = parse_activation(setting<std::string>(c, "activation"));
  shape.posterior = kPosterior.of(c, "posterior");
  shape.log_sigma_head = kPosteriorHead.of(c, "posterior-head");
  if (shape.posterior == PosteriorKind::Iaf) {
    shape.iaf.steps = size_setting(c, "iaf-steps");
    shape.iaf.hidden = size_setting(c, "iaf-hidden");
    shape.iaf.layers = size_setting(c, "iaf-made-layers");
    shape.iaf.context = size_setting(c, "iaf-context");
    shape.iaf.forget_bias = setting<double>(c, "iaf-forget-bias");
    shape.iaf.kl = kIafKl.of(c, "iaf-kl");
  }
  return shape;
}

const ModelFamily& vae_family() {
  static const ModelFamily family({{"vae", "one stochastic layer; MLP or conv, Gaussian or IAF posterior"}},
                                  vae_options(), &make_vae, &validate_vae, &summary_vae, &validate_not_vae,
                                  &canonicalize_vae);
  return family;
}

}  // namespace vae
