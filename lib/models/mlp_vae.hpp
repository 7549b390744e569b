// Factory of the VAE (Kingma & Welling 2013), MLP or convolutional (--arch), with any
// likelihood / sigma mode.
#pragma once

#include "models/model.hpp"
#include "prob/likelihood.hpp"

namespace vae {
Likelihood<float> likelihood_from(const TrainConfig& tc);
std::unique_ptr<Model> make_mlp_vae(const TrainConfig& tc, std::size_t rows, std::size_t cols,
                                    std::mt19937_64& init_rng);
}  // namespace vae
