// The Ladder VAE and the bottom-up hierarchical VAE (models/ladder.hpp): their settings,
// their checks, and their factory, a LadderVae<float> behind the Model adapter.
#include "models/ladder.hpp"

#include "models/adapter.hpp"
#include "models/mlp_vae.hpp"
#include "models/registry.hpp"

namespace vae {

namespace {

const Choices<Inference> kInference{{{"ladder", Inference::Ladder}, {"hierarchical", Inference::BottomUp}}};
const Choices<VarianceHead> kVariance{
    {{"softplus", VarianceHead::Softplus}, {"exp", VarianceHead::Exp}, {"exp-sigma", VarianceHead::ExpSigma}}};

using K = ValueKind;
using I = int64_t;

std::vector<OptionSpec> ladder_options() {
  return {
      option("layers", K::IntList, std::vector<I>{64, 32, 16, 8, 4},
             "ladder/hierarchical: stochastic layer sizes, bottom (next to x) first; the defaults "
             "of layers and det-layers are the paper's MNIST model",
             {}, 1.0, 4096.0),
      option("det-layers", K::IntList, std::vector<I>{512, 256, 128, 64, 32},
             "ladder/hierarchical: width of the deterministic block under each stochastic layer "
             "(and of the generative block above it), one per entry of layers",
             {}, 1.0, 65536.0),
      option("det-depth", K::Int, I(2),
             "ladder/hierarchical: dense layers per deterministic block (2 in the paper)", {}, 1.0, 16.0),
      option("batchnorm", K::Bool, false,
             "ladder/hierarchical: batch normalization on every deterministic layer (batch statistics "
             "in training, running averages with momentum 0.1 in evaluation)"),
      option("variance", K::String, std::string("softplus"),
             "ladder/hierarchical: variance of every Gaussian from its linear head a: softplus "
             "(softplus(a) + 1e-6, the Ladder paper's), exp (exp(a), the IWAE paper's text) or exp-sigma "
             "(sigma = exp(a), var = exp(2a), the IWAE paper's code)",
             kVariance.names()),
  };
}

void validate_ladder(const ConfigMap& c) {
  const std::string& model = setting<std::string>(c, "model");
  const auto& layers = setting<std::vector<int64_t>>(c, "layers");
  const auto& det = setting<std::vector<int64_t>>(c, "det-layers");
  if (layers.empty()) throw ConfigError("key 'layers': at least one stochastic layer is needed");
  if (det.size() != layers.size())
    throw ConfigError("key 'det-layers': " + std::to_string(det.size()) + " sizes for " +
                      std::to_string(layers.size()) + " stochastic layers (need one per layer)");
  if (setting<std::string>(c, "posterior") != "gaussian")
    throw ConfigError("key 'posterior': model = " + model + " has Gaussian posteriors only");
  if (setting<std::string>(c, "arch") != "mlp")
    throw ConfigError("key 'arch': model = " + model + " is built of dense layers only (arch = mlp)");
}

// With another model: batch norm, leaky ReLU and the variance heads are this family's.
void validate_not_ladder(const ConfigMap& c) {
  if (setting<bool>(c, "batchnorm"))
    throw ConfigError("key 'batchnorm': only model = ladder or hierarchical has batch normalization");
  if (setting<std::string>(c, "activation") == "leaky-relu")
    throw ConfigError("key 'activation': leaky-relu is implemented for model = ladder or hierarchical");
  if (kVariance.of(c, "variance") != VarianceHead::Softplus)
    throw ConfigError("key 'variance': only model = ladder or hierarchical has variance heads to choose");
}

// "ladder, stochastic layers 64,32,16,8,4"
std::string summary_ladder(const ConfigMap& c) {
  std::string t = setting<std::string>(c, "model") + ", stochastic layers ";
  const auto& layers = setting<std::vector<int64_t>>(c, "layers");
  for (std::size_t i = 0; i < layers.size(); ++i) t += (i ? "," : "") + std::to_string(layers[i]);
  return t;
}

std::unique_ptr<Model> make_ladder(const TrainConfig& tc, std::size_t rows, std::size_t cols,
                                   std::mt19937_64& init_rng) {
  return make_family_model<LadderVae<float>>(tc, init_rng, ladder_shape(tc.settings, rows * cols),
                                             likelihood_from(tc));
}

}  // namespace

LadderShape ladder_shape(const ConfigMap& c, std::size_t data_dim) {
  LadderShape shape;
  shape.data_dim = data_dim;
  shape.latent = size_list(c, "layers");
  shape.hidden = size_list(c, "det-layers");
  shape.depth = size_setting(c, "det-depth");
  shape.act = parse_nonlinearity(setting<std::string>(c, "activation"));
  shape.batchnorm = setting<bool>(c, "batchnorm");
  shape.inference = kInference.of(c, "model");
  shape.variance = kVariance.of(c, "variance");
  return shape;
}

const ModelFamily& ladder_family() {
  static const ModelFamily family({{"ladder", "Ladder VAE, Sonderby et al. 2016"},
                                   {"hierarchical", "L stochastic layers, bottom-up inference"}},
                                  ladder_options(), &make_ladder, &validate_ladder, &summary_ladder,
                                  &validate_not_ladder);
  return family;
}

}  // namespace vae
