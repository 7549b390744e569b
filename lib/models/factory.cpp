// Which model a configuration builds. New model families add one branch here.
#include <stdexcept>

#include "models/ladder.hpp"
#include "models/mlp_vae.hpp"
#include "models/model.hpp"
#include "models/nvae.hpp"
#include "models/vqvae_factory.hpp"

namespace vae {

std::unique_ptr<Model> make_model(const TrainConfig& tc, std::size_t rows, std::size_t cols,
                                  std::mt19937_64& init_rng) {
  if (tc.model == "vae") return make_mlp_vae(tc, rows, cols, init_rng);
  if (tc.model == "ladder" || tc.model == "hierarchical") return make_ladder_vae(tc, rows * cols, init_rng);
  if (tc.model == "nvae") return make_nvae(tc, rows, cols, init_rng);
  if (tc.model == "vqvae") return make_vqvae(tc, rows, cols, init_rng);
  throw ConfigError("key 'model': unknown model '" + tc.model + "'");
}

}  // namespace vae
