// Filling a minibatch from the stored images, and the noise a batch needs.
#pragma once

#include <cstdint>
#include <random>

#include "data/dataset.hpp"

namespace vae {

// x[r, :] = intensities of images[index[r]] in [0,1].
template <class T>
void gather_batch(T* x, const data::Images& images, const uint32_t* index, std::size_t rows) {
  const std::size_t D = images.dim();
  const T scale = T(images.scale);
  for (std::size_t r = 0; r < rows; ++r) {
    const uint8_t* src = images.pixels.data() + std::size_t(index[r]) * D;
    T* dst = x + r * D;
    for (std::size_t i = 0; i < D; ++i) dst[i] = T(src[i]) * scale;
  }
}

// Dynamic binarization (the protocol of Burda et al. 2015 and Kingma et al. 2016): a
// fresh Bernoulli draw of every pixel, p = intensity. Each 64-bit draw serves two
// pixels; pixel is 1 iff the 32-bit value < p * 2^32, as data::binarize_once.
template <class T>
void gather_batch_binarized(T* x, const data::Images& images, const uint32_t* index,
                            std::size_t rows, std::mt19937_64& rng) {
  const std::size_t D = images.dim();
  uint64_t threshold[256];
  for (int v = 0; v < 256; ++v) threshold[v] = uint64_t(double(v) * images.scale * 4294967296.0 + 0.5);
  uint64_t bits = 0;
  bool have_low = false;
  for (std::size_t r = 0; r < rows; ++r) {
    const uint8_t* src = images.pixels.data() + std::size_t(index[r]) * D;
    T* dst = x + r * D;
    for (std::size_t i = 0; i < D; ++i) {
      uint32_t u;
      if (have_low) {
        u = uint32_t(bits);
        have_low = false;
      } else {
        bits = rng();
        u = uint32_t(bits >> 32);
        have_low = true;
      }
      dst[i] = uint64_t(u) < threshold[src[i]] ? T(1) : T(0);
    }
  }
}

template <class T>
void fill_normal(T* eps, std::size_t n, std::mt19937_64& rng) {
  std::normal_distribution<T> normal(T(0), T(1));  // fresh each call: no hidden state to checkpoint
  for (std::size_t i = 0; i < n; ++i) eps[i] = normal(rng);
}

}  // namespace vae
