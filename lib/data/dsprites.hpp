// dSprites-style data: a deterministic re-rendering of the dSprites factor grid
// (Matthey, Higgins, Hassabis & Lerchner 2017, "dSprites: Disentanglement testing
// Sprites dataset", github.com/deepmind/dsprites-dataset). The original files
// cannot be had here, so the suite draws the same grid itself; the images are
// NOT the original ones (the sprite outlines and sizes are ours, defined below).
//
// Factors, in the original's factor-major order (the last one varies fastest):
//   shape        3   square, ellipse, heart
//   scale        6   0.5, 0.6, ..., 1.0
//   orientation 40   2 pi k / 40, k = 0..39 (radians, counter-clockwise)
//   position x  32   k / 31 in [0, 1] (left to right)
//   position y  32   k / 31 in [0, 1] (top to bottom)
// 3 * 6 * 40 * 32 * 32 = 737,280 binary 64x64 images. As in the original, the
// square repeats every quarter turn and the ellipse every half turn.
//
// Geometry (pixel units, x right, y down; pixel (r, c) is on when its centre
// (c + 0.5, r + 0.5) lies inside the sprite):
//   centre   (16 + 32 posX, 16 + 32 posY), so every sprite stays inside the image;
//   size     the sprite fits a disc of radius kSpriteRadius * scale around its
//            centre (14 px at scale 1);
//   outline  in unit coordinates (u, v) (the pixel offset from the centre, rotated
//            by -orientation and divided by the disc radius, v pointing up):
//            square   max(|u|, |v|) <= 1/sqrt(2)                  area 2
//            ellipse  u^2 + (v / 0.5)^2 <= 1                       area pi/2
//            heart    (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 with x = k u, y = k v + c,
//                     k = 1.29323, c = 0.29348: the classic heart curve moved so its
//                     centroid is the centre and scaled so it fits the unit disc
//                                                                  area 2.18958
//   (areas in unit coordinates; the heart's constants and area by numerical
//   integration on a 4001^2 grid).
//
// Splits (documented, deterministic): the 737,280 grid indices are shuffled once
// with a fixed seed (kSplitSeed, Fisher-Yates over std::mt19937_64); the test set is
// the first test_size of that order (kDefaultTestSize when 0), a validation split
// the next valid_size, and the training set the next train_size. The training set
// must be given a size: the whole grid as bytes is 3 GB.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.hpp"

namespace vae::data::dsprites {

constexpr size_t kImageSide = 64, kImageDim = kImageSide * kImageSide;
constexpr size_t kNumFactors = 5;
constexpr std::array<size_t, kNumFactors> kFactorSizes = {3, 6, 40, 32, 32};
constexpr std::array<const char*, kNumFactors> kFactorNames = {"shape", "scale", "orientation", "pos_x",
                                                               "pos_y"};
constexpr size_t kNumImages = size_t{3} * 6 * 40 * 32 * 32;  // 737,280
constexpr double kSpriteRadius = 14.0;                       // px at scale 1
constexpr uint64_t kSplitSeed = 20170601;
constexpr size_t kDefaultTestSize = 10000;

// The class of each factor (shape 0..2, scale 0..5, ...), one image's coordinates.
using Classes = std::array<uint32_t, kNumFactors>;

struct FactorValues {
  uint32_t shape;  // 0 square, 1 ellipse, 2 heart
  double scale, orientation, pos_x, pos_y;
};

// Grid index <-> classes, factor-major (pos_y fastest), as in the original file.
Classes classes_of(size_t index);
size_t index_of(const Classes& c);
FactorValues values_of(const Classes& c);

// Draws one sprite into out[kImageDim] (0/1 bytes, row-major).
void render(const Classes& c, uint8_t* out);

// Is the point (u, v) of unit coordinates (see above) inside the shape?
bool inside(uint32_t shape, double u, double v);

// The split order: all grid indices shuffled with kSplitSeed.
const std::vector<uint32_t>& split_order();

// The split of grid indices for these sizes (see the top of this file).
struct SplitIndices {
  std::vector<uint32_t> train, valid, test;
};
SplitIndices split_indices(int64_t train_size, int64_t valid_size, int64_t test_size);

// Bit-packed cache of the whole grid: "VAEDSPR1", then n, rows, cols as
// little-endian uint32, then each image as 64 rows of 8 bytes (most significant
// bit first). Writes path.tmp and renames it over path, so a reader never sees a
// half-written file. Rendering all 737,280 images takes a few seconds.
void write_cache(const std::string& path);
// Creates the cache when it is missing; a present file is checked (header, size).
void ensure_cache(const std::string& path);

// Loads the splits: from the cache file when spec.dsprites_cache is set (created
// first when missing; its checksum goes into Splits::files), else rendered on the
// fly (Splits::files then holds "dsprites:rendered" with the SHA-256 of the
// rendered pixels of all splits). Images have scale 1, pixels 0/1, no labels.
Splits load(const DataSpec& spec);

}  // namespace vae::data::dsprites
