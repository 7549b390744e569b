// Filling a minibatch from the stored images, and the noise a batch needs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>

#include "data/dataset.hpp"
#include "prob/noise.hpp"

namespace vae {

// Batches are random images of a set larger than the cache: without a hint, every row
// of the gather starts by waiting for memory (half the gather's time in a profile).
inline void prefetch_image(const data::Images& images, uint32_t index) {
  const std::size_t D = images.dim();
  const uint8_t* p = images.pixels.data() + std::size_t(index) * D;
  for (std::size_t off = 0; off < D; off += 64) __builtin_prefetch(p + off);
}

// x[r, :] = intensities of images[index[r]] in [0,1].
template <class T>
void gather_batch(T* x, const data::Images& images, const uint32_t* index, std::size_t rows) {
  const std::size_t D = images.dim();
  const T scale = T(images.scale);
  for (std::size_t r = 0; r < rows; ++r) {
    const uint8_t* src = images.pixels.data() + std::size_t(index[r]) * D;
    if (r + 1 < rows) prefetch_image(images, index[r + 1]);
    T* dst = x + r * D;
    for (std::size_t i = 0; i < D; ++i) dst[i] = T(src[i]) * scale;
  }
}

// Dynamic binarization (the protocol of Burda et al. 2015 and Kingma et al. 2016): a
// fresh Bernoulli draw of every pixel, p = intensity. Each 64-bit draw serves two
// pixels of the batch in row-major order (high half first); pixel is 1 iff the 32-bit
// value < p * 2^32, as data::binarize_once.
// Draws are made a row at a time into a small buffer so that the compare loop runs
// without the generator in it; the stream and the result are those of one draw per pair.
template <class T>
void gather_batch_binarized(T* x, const data::Images& images, const uint32_t* index, std::size_t rows,
                            std::mt19937_64& rng) {
  const std::size_t D = images.dim();
  uint64_t threshold[256];
  // Non-negative, so truncating x + 0.5 rounds; llround could differ by one in a rare
  // half-ulp case, and these thresholds are the ones every stored result was made with.
  // NOLINTNEXTLINE(bugprone-incorrect-roundings)
  for (int v = 0; v < 256; ++v) threshold[v] = uint64_t(double(v) * images.scale * 4294967296.0 + 0.5);
  constexpr std::size_t kDraws = 256;  // 2 KiB on the stack, 512 pixels
  uint64_t draws[kDraws];
  uint64_t pending = 0;  // a draw whose low half is still unused (odd D)
  bool have_low = false;
  for (std::size_t r = 0; r < rows; ++r) {
    const uint8_t* src = images.pixels.data() + std::size_t(index[r]) * D;
    if (r + 1 < rows) prefetch_image(images, index[r + 1]);
    T* dst = x + r * D;
    std::size_t i = 0;
    if (have_low && D > 0) {
      dst[0] = uint64_t(uint32_t(pending)) < threshold[src[0]] ? T(1) : T(0);
      have_low = false;
      i = 1;
    }
    while (i + 1 < D) {
      const std::size_t pairs = std::min(kDraws, (D - i) / 2);
      for (std::size_t k = 0; k < pairs; ++k) draws[k] = rng();
      // u < t as the sign bit of u - t (both < 2^33): GCC turns a compare into a branch,
      // mispredicted on every grey pixel.
      for (std::size_t k = 0; k < pairs; ++k, i += 2) {
        dst[i] = T(((draws[k] >> 32) - threshold[src[i]]) >> 63);
        dst[i + 1] = T((uint64_t(uint32_t(draws[k])) - threshold[src[i + 1]]) >> 63);
      }
    }
    if (i < D) {
      pending = rng();
      dst[i] = (pending >> 32) < threshold[src[i]] ? T(1) : T(0);
      have_low = true;
    }
  }
}

}  // namespace vae
