#include <stdexcept>
#include <string>

#include "models/adapter.hpp"
#include "models/mlp_vae.hpp"
#include "models/vqvae.hpp"
#include "models/vqvae_factory.hpp"

namespace vae {

std::unique_ptr<Model> make_vqvae(const TrainConfig& tc, std::size_t rows, std::size_t cols,
                                  std::mt19937_64& init_rng) {
  VqShape s;
  s.rows = rows;
  s.cols = cols;
  s.codebook = std::size_t(tc.vq_codebook);
  s.code_dim = std::size_t(tc.vq_dim);
  s.channels = std::size_t(tc.vq_channels);
  s.res_blocks = std::size_t(tc.vq_res_blocks);
  s.res_hidden = std::size_t(tc.vq_res_hidden);
  s.beta = tc.vq_beta;
  s.update = tc.vq_update == "ema" ? VqUpdate::Ema : VqUpdate::Loss;
  s.decay = tc.vq_decay;
  s.restart = tc.vq_restart;
  s.prior_epochs = std::size_t(tc.vq_prior_epochs);
  s.prior_layers = std::size_t(tc.vq_prior_layers);
  s.prior_features = std::size_t(tc.vq_prior_features);
  std::unique_ptr<FamilyModel<VqVae<float>>> m;
  try {
    m = std::make_unique<FamilyModel<VqVae<float>>>(s, likelihood_from(tc));
  } catch (const std::invalid_argument& e) {  // an image size the strided convolutions do not allow
    throw ConfigError(std::string("key 'model' (vqvae): ") + e.what());
  }
  m->family().initialize(parse_init(tc.init), tc.init_std, init_rng);
  return m;
}

}  // namespace vae
