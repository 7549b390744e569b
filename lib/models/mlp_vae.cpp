// The factory of the VAE family (Gaussian, beta- and sigma-VAE, IAF posterior; MLP or
// convolutional encoder and decoder): its settings -> a Vae<float> behind the Model adapter.
#include "models/mlp_vae.hpp"

#include <cmath>
#include <stdexcept>

#include "models/adapter.hpp"
#include "models/vae.hpp"

namespace vae {

Likelihood<float> likelihood_from(const TrainConfig& tc) {
  Likelihood<float> lik;
  lik.kind = tc.likelihood == "gaussian" ? LikelihoodKind::Gaussian : LikelihoodKind::Bernoulli;
  lik.sigma = parse_sigma_mode(tc.sigma);
  lik.fixed_log_sigma = float(std::log(tc.sigma_value));
  lik.min_log_sigma = float(tc.min_log_sigma);
  lik.sigmoid_mean = tc.gaussian_mean == "sigmoid";
  return lik;
}

std::unique_ptr<Model> make_mlp_vae(const TrainConfig& tc, std::size_t rows, std::size_t cols,
                                    std::mt19937_64& init_rng) {
  VaeShape shape;
  shape.data_dim = rows * cols;
  if (tc.arch == "conv") {
    shape.arch = Arch::Conv;
    shape.conv.rows = rows;
    shape.conv.cols = cols;
    shape.conv.channels.assign(tc.conv_channels.begin(), tc.conv_channels.end());
    shape.conv.kernel = std::size_t(tc.conv_kernel);
  }
  shape.latent = std::size_t(tc.latent);
  shape.hidden.assign(tc.hidden.begin(), tc.hidden.end());
  shape.activation = parse_activation(tc.activation);
  if (tc.posterior == "iaf") {
    shape.posterior = PosteriorKind::Iaf;
    shape.iaf.steps = std::size_t(tc.iaf_steps);
    shape.iaf.hidden = std::size_t(tc.iaf_hidden);
    shape.iaf.layers = std::size_t(tc.iaf_made_layers);
    shape.iaf.context = std::size_t(tc.iaf_context);
    shape.iaf.forget_bias = tc.iaf_forget_bias;
    shape.iaf.kl = tc.iaf_kl == "stl" ? FlowKl::Stl : FlowKl::Sample;
  }
  std::unique_ptr<FamilyModel<Vae<float>>> m;
  try {
    m = std::make_unique<FamilyModel<Vae<float>>>(shape, likelihood_from(tc));
  } catch (const std::invalid_argument& e) {  // a conv geometry the images do not allow
    throw ConfigError(std::string("keys 'conv-channels', 'conv-kernel': ") + e.what());
  }
  m->family().initialize(parse_init(tc.init), tc.init_std, init_rng);
  return m;
}

}  // namespace vae
