// Bernoulli binarization with a fixed seed (the dynamic protocol's evaluation sets).
#include <algorithm>
#include <cmath>
#include <random>

#include "data/dataset.hpp"

namespace vae::data {

void binarize_once(Images& images, uint64_t seed) {
  // Integer thresholds per pixel value: the draw is exact and needs no float
  // conversion, and it does not depend on the standard library's distributions.
  constexpr double kTwo32 = 4294967296.0;
  uint64_t threshold[256];
  for (int v = 0; v < 256; ++v) {
    const double p = std::clamp(double(v) * double(images.scale), 0.0, 1.0);
    threshold[v] = static_cast<uint64_t>(std::llround(p * kTwo32));
  }
  std::mt19937_64 rng(seed);
  std::vector<uint8_t>& px = images.pixels;
  const size_t n = px.size();
  size_t i = 0;
  for (; i + 1 < n; i += 2) {
    const uint64_t r = rng();
    px[i] = (r >> 32) < threshold[px[i]];
    px[i + 1] = (r & 0xffffffffu) < threshold[px[i + 1]];
  }
  if (i < n) px[i] = (rng() >> 32) < threshold[px[i]];
  images.scale = 1.0f;
}

}  // namespace vae::data
