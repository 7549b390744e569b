// The VAE family (Kingma & Welling 2013), MLP or convolutional (--arch), Gaussian or IAF
// posterior, with any likelihood / sigma mode: its settings and factory (vae_family(),
// registered by its line in models/families.def).
#pragma once

#include "models/model.hpp"
#include "prob/likelihood.hpp"

namespace vae {

struct VaeShape;

// The decoder's likelihood from the core settings (every family's).
Likelihood<float> likelihood_from(const TrainConfig& tc);

// The shape --model vae asks for, for images of rows x cols (checked settings).
VaeShape vae_shape(const ConfigMap& config, std::size_t rows, std::size_t cols);

}  // namespace vae
