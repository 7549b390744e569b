// The factory of the Ladder VAE and the bottom-up hierarchical VAE (models/ladder.hpp):
// their settings -> a LadderVae<float> behind the Model adapter.
#include "models/ladder.hpp"
#include "models/adapter.hpp"
#include "models/mlp_vae.hpp"

namespace vae {

std::unique_ptr<Model> make_ladder_vae(const TrainConfig& tc, std::size_t data_dim, std::mt19937_64& init_rng) {
  LadderShape shape;
  shape.data_dim = data_dim;
  shape.latent.assign(tc.layers.begin(), tc.layers.end());
  shape.hidden.assign(tc.det_layers.begin(), tc.det_layers.end());
  shape.depth = std::size_t(tc.det_depth);
  shape.act = parse_nonlinearity(tc.activation);
  shape.batchnorm = tc.batchnorm;
  shape.inference = tc.model == "ladder" ? Inference::Ladder : Inference::BottomUp;
  shape.variance = tc.variance == "exp" ? VarianceHead::Exp : VarianceHead::Softplus;
  auto m = std::make_unique<FamilyModel<LadderVae<float>>>(shape, likelihood_from(tc));
  m->family().initialize(parse_init(tc.init), tc.init_std, init_rng);
  return m;
}

}  // namespace vae
