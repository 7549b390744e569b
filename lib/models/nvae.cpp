// The factory of NVAE-small (models/nvae.hpp): its settings -> an Nvae<float> behind the
// Model adapter.
#include "models/nvae.hpp"

#include "models/adapter.hpp"
#include "models/mlp_vae.hpp"

namespace vae {

std::unique_ptr<Model> make_nvae(const TrainConfig& tc, std::size_t rows, std::size_t cols,
                                 std::mt19937_64& init_rng) {
  NvaeShape s;
  s.rows = rows;
  s.cols = cols;
  s.scales = std::size_t(tc.nvae_scales);
  s.groups = std::size_t(tc.nvae_groups);
  s.latent_channels = std::size_t(tc.nvae_latent_channels);
  s.channels = std::size_t(tc.nvae_channels);
  s.kl_balance = tc.nvae_kl_balance;
  s.spectral = tc.nvae_spectral;
  s.bn_momentum = tc.nvae_bn_momentum;
  s.temperature = tc.nvae_temperature;
  auto m = std::make_unique<FamilyModel<Nvae<float>>>(s, likelihood_from(tc));
  m->family().initialize(parse_init(tc.init), tc.init_std, init_rng);
  return m;
}

}  // namespace vae
