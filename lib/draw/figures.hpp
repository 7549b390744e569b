// The pictures of a trained model, as grids of decoder means (draw/grid.hpp tiles them):
//  - prior samples: the decoder's mean for z ~ p(z) (Model::sample_prior);
//  - reconstructions: rows of test images, each followed by the row of their
//    reconstructions decode_mean(encode_mean(x));
//  - interpolations: for each pair (a, b) of test images, a row x_a, decode_mean(z_t), x_b
//    with z_t = (1 - t) E_q[z|x_a] + t E_q[z|x_b], t = 0, 1/(steps-1), ..., 1;
//  - the 2-D latent manifold (Kingma & Welling 2013, figure 4): the decoder's mean at
//    z = (Phi^-1(u_i), Phi^-1(u_j)) with u = (k + 1/2) / side, k = 0..side-1, z_1 growing
//    to the right and z_2 upwards;
//  - latent traversals (the beta-VAE picture): one row per latent unit u (in the order of
//    `units`; empty: all, in index order), the code of a test image with z_u replaced by
//    `steps` values evenly spaced over [-limit, limit].
// Images of Gaussian decoders show the mean (clamped to [0, 1] when drawn), not samples.
// The Ladder/hierarchical VAE's codes are [z_1 | ... | z_L] and its decoder reads z_1 only,
// so traversal rows of higher layers' units show the same image throughout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "data/dataset.hpp"
#include "models/model.hpp"

namespace vae::draw {

struct Figure {
  std::vector<float> cells;  // [n, dim] intensities, one image per row
  std::size_t n = 0, cols = 0;
};

// The standard normal quantile Phi^-1(p), 0 < p < 1 (Acklam's rational approximation
// refined by one Halley step: relative error below 1e-15).
double normal_quantile(double p);

// The i-th image of a set as intensities in [0, 1].
std::vector<float> intensities(const data::Images& images, std::size_t i);
// The images at these indices, in this order (labels too when the set has them).
data::Images subset(const data::Images& images, const std::vector<std::size_t>& index);

Figure prior_samples(Model& m, std::size_t side, uint64_t seed);
Figure reconstructions(Model& m, const data::Images& test, std::size_t first, std::size_t per_row,
                       std::size_t row_pairs);
Figure interpolations(Model& m, const data::Images& test,
                      const std::vector<std::pair<std::size_t, std::size_t>>& pairs, std::size_t steps);
// Throws std::invalid_argument unless the model's latent space is 2-D.
Figure manifold(Model& m, std::size_t side);
Figure traversals(Model& m, const data::Images& test, std::size_t index, std::size_t steps, double limit,
                  const std::vector<std::size_t>& units = {});
// Latent units by decreasing KL (ties: by index), e.g. for traversals of the used units first.
std::vector<std::size_t> units_by_kl(const std::vector<double>& kl_per_dim);

}  // namespace vae::draw
