// Factory of the VQ-VAE family (models/vqvae.hpp): its settings -> a VqVae<float> behind the
// Model adapter.
#pragma once

#include "models/model.hpp"

namespace vae {
std::unique_ptr<Model> make_vqvae(const TrainConfig& tc, std::size_t rows, std::size_t cols,
                                  std::mt19937_64& init_rng);
}  // namespace vae
