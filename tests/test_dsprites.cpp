// The dSprites-style renderer: the factor grid, binary non-empty images, and that
// shape, scale, orientation and position move the sprite as data/dsprites.hpp says.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "data/dataset.hpp"
#include "data/dsprites.hpp"

using namespace vae::data;
namespace ds = vae::data::dsprites;
namespace fs = std::filesystem;

namespace {

constexpr double kPi = 3.14159265358979323846;

// Area (pixels on) and centroid (x right, y UP, pixel centres, relative to the
// sprite's stated centre) of one rendered image; second and third moments too.
struct Moments {
  double area = 0, mx = 0, my = 0;   // centroid offset
  double m20 = 0, m02 = 0, m11 = 0;  // central second moments
  bool border_clear = true;          // no pixel on the image's outer frame
};

Moments moments(const ds::Classes& c) {
  std::vector<uint8_t> img(ds::kImageDim);
  ds::render(c, img.data());
  const ds::FactorValues f = ds::values_of(c);
  const double cx = 16 + 32 * f.pos_x, cy = 16 + 32 * f.pos_y;
  Moments m;
  std::vector<std::pair<double, double>> pts;
  for (size_t r = 0; r < ds::kImageSide; ++r)
    for (size_t col = 0; col < ds::kImageSide; ++col) {
      const uint8_t p = img[r * ds::kImageSide + col];
      REQUIRE(p <= 1);
      if (!p) continue;
      if (r == 0 || col == 0 || r == ds::kImageSide - 1 || col == ds::kImageSide - 1) m.border_clear = false;
      pts.emplace_back(col + 0.5 - cx, cy - (r + 0.5));
    }
  m.area = double(pts.size());
  for (auto [x, y] : pts) m.mx += x / m.area, m.my += y / m.area;
  for (auto [x, y] : pts) {
    const double dx = x - m.mx, dy = y - m.my;
    m.m20 += dx * dx;
    m.m02 += dy * dy;
    m.m11 += dx * dy;
  }
  return m;
}

// Difference of two angles, wrapped into [-pi, pi).
double angle_diff(double a, double b) {
  double d = std::fmod(a - b + 3 * kPi, 2 * kPi);
  if (d < 0) d += 2 * kPi;
  return d - kPi;
}

}  // namespace

TEST_CASE("dsprites grid: 737280 images in factor-major order, each class equally often", "[dsprites]") {
  CHECK(ds::kNumImages == 737280);
  CHECK(ds::classes_of(1) == ds::Classes{0, 0, 0, 0, 1});  // pos_y fastest
  CHECK(ds::classes_of(32) == ds::Classes{0, 0, 0, 1, 0});
  CHECK(ds::classes_of(32 * 32) == ds::Classes{0, 0, 1, 0, 0});
  CHECK(ds::classes_of(40 * 32 * 32) == ds::Classes{0, 1, 0, 0, 0});
  CHECK(ds::classes_of(6 * 40 * 32 * 32) == ds::Classes{1, 0, 0, 0, 0});
  CHECK(ds::classes_of(ds::kNumImages - 1) == ds::Classes{2, 5, 39, 31, 31});
  std::vector<std::vector<size_t>> count(ds::kNumFactors);
  for (size_t k = 0; k < ds::kNumFactors; ++k) count[k].assign(ds::kFactorSizes[k], 0);
  bool round_trip = true;
  for (size_t i = 0; i < ds::kNumImages; ++i) {
    const ds::Classes c = ds::classes_of(i);
    round_trip = round_trip && ds::index_of(c) == i;
    for (size_t k = 0; k < ds::kNumFactors; ++k) ++count[k][c[k]];
  }
  CHECK(round_trip);
  for (size_t k = 0; k < ds::kNumFactors; ++k)
    for (size_t v = 0; v < ds::kFactorSizes[k]; ++v) {
      INFO("factor " << ds::kFactorNames[k] << " class " << v);
      CHECK(count[k][v] == ds::kNumImages / ds::kFactorSizes[k]);
    }
  // The factor values as stated: scale 0.5..1 in 6 steps, orientation over [0, 2 pi), position [0, 1].
  CHECK(ds::values_of({0, 0, 0, 0, 0}).scale == Approx(0.5));
  CHECK(ds::values_of({0, 5, 0, 0, 0}).scale == Approx(1.0));
  CHECK(ds::values_of({0, 1, 0, 0, 0}).scale == Approx(0.6));
  CHECK(ds::values_of({0, 0, 39, 0, 0}).orientation == Approx(2 * kPi * 39 / 40));
  CHECK(ds::values_of({0, 0, 0, 31, 0}).pos_x == Approx(1.0));
  CHECK(ds::values_of({0, 0, 0, 0, 31}).pos_y == Approx(1.0));
  CHECK(ds::values_of({0, 0, 0, 0, 0}).pos_y == 0.0);
}

TEST_CASE("dsprites images are binary, non-empty and inside the frame", "[dsprites]") {
  // Every 97th image of the grid (7601 images, all factors covered) plus the extreme corners.
  std::vector<size_t> idx;
  for (size_t i = 0; i < ds::kNumImages; i += 97) idx.push_back(i);
  for (uint32_t s = 0; s < 3; ++s)
    for (uint32_t x : {0u, 31u})
      for (uint32_t y : {0u, 31u}) idx.push_back(ds::index_of({s, 5, 5, x, y}));
  size_t nonbinary = 0, empty = 0, touching = 0;
  std::vector<uint8_t> img(ds::kImageDim);
  for (size_t i : idx) {
    ds::render(ds::classes_of(i), img.data());
    size_t on = 0;
    for (size_t p = 0; p < ds::kImageDim; ++p) {
      nonbinary += img[p] > 1;
      on += img[p];
    }
    empty += on == 0;
    touching += !moments(ds::classes_of(i)).border_clear;
  }
  CHECK(nonbinary == 0);
  CHECK(empty == 0);
  CHECK(touching == 0);
}

TEST_CASE("dsprites shapes have their stated areas, scaling with scale squared", "[dsprites]") {
  const double unit_area[3] = {2.0, kPi / 2, 2.18958};  // square, ellipse, heart (dsprites.hpp)
  for (uint32_t s = 0; s < 3; ++s)
    for (uint32_t sc = 0; sc < 6; ++sc) {
      const double scale = 0.5 + 0.1 * sc, R = ds::kSpriteRadius * scale;
      double mean = 0;  // over orientations: pixelation errors average out
      for (uint32_t o = 0; o < 40; ++o) {
        const double a = moments({s, sc, o, 15, 15}).area;
        mean += a / 40;
        INFO("shape " << s << " scale " << scale << " orientation " << o);
        // Sampling at pixel centres errs by at most the pixels the outline crosses:
        // half a pixel along a perimeter of at most 2 pi R (every shape fits the disc).
        CHECK(a == Approx(unit_area[s] * R * R).margin(0.5 * 2 * kPi * R));
      }
      // Over the 40 orientations the errors mostly cancel; axis-aligned squares
      // (4 of 40) keep a bias of a few pixels.
      INFO("shape " << s << " scale " << scale);
      CHECK(mean == Approx(unit_area[s] * R * R).epsilon(0.03));
    }
  // Scale 1 has four times the area of scale 0.5.
  for (uint32_t s = 0; s < 3; ++s) {
    double big = 0, small = 0;
    for (uint32_t o = 0; o < 40; ++o)
      big += moments({s, 5, o, 10, 20}).area, small += moments({s, 0, o, 10, 20}).area;
    CHECK(big / small == Approx(4.0).epsilon(0.03));
  }
  // The three shapes are different sprites, not the same outline.
  CHECK(moments({0, 5, 0, 15, 15}).area != moments({1, 5, 0, 15, 15}).area);
  CHECK(moments({1, 5, 0, 15, 15}).m20 > 3 * moments({1, 5, 0, 15, 15}).m02);  // ellipse: wide at 0
  CHECK(moments({0, 5, 0, 15, 15}).m20 == Approx(moments({0, 5, 0, 15, 15}).m02).epsilon(0.02));
}

TEST_CASE("dsprites sprites sit at their stated position and move with pos_x, pos_y", "[dsprites]") {
  for (uint32_t s = 0; s < 3; ++s)
    for (uint32_t o : {0u, 7u, 13u, 30u})
      for (uint32_t x : {0u, 9u, 31u})
        for (uint32_t y : {0u, 22u, 31u}) {
          const Moments m = moments({s, 5, o, x, y});
          INFO("shape " << s << " orientation " << o << " x " << x << " y " << y);
          // The centroid is the stated centre (16 + 32 pos, pixel units) up to pixelation.
          CHECK(std::fabs(m.mx) < 0.35);
          CHECK(std::fabs(m.my) < 0.35);
        }
  // Absolute motion: pos_x 0 -> 1 moves the sprite 32 px right, pos_y 0 -> 1 32 px down.
  auto centre = [](const ds::Classes& c) {
    const Moments m = moments(c);
    const ds::FactorValues f = ds::values_of(c);
    return std::pair{16 + 32 * f.pos_x + m.mx, 16 + 32 * f.pos_y - m.my};  // image coordinates, y down
  };
  const auto a = centre({2, 3, 4, 0, 0}), b = centre({2, 3, 4, 31, 0}), c = centre({2, 3, 4, 0, 31});
  CHECK(b.first - a.first == Approx(32).margin(0.5));
  CHECK(b.second - a.second == Approx(0).margin(0.5));
  CHECK(c.second - a.second == Approx(32).margin(0.5));
  CHECK(c.first - a.first == Approx(0).margin(0.5));
  CHECK(a.first == Approx(16).margin(0.5));
}

TEST_CASE("dsprites orientation turns the sprite counter-clockwise by 2 pi k / 40", "[dsprites]") {
  for (uint32_t o = 0; o < 40; ++o) {
    const double theta = 2 * kPi * o / 40;
    INFO("orientation " << o);
    // Ellipse: the major axis (from the second moments, y up) is at theta, modulo pi.
    const Moments e = moments({1, 5, o, 15, 15});
    const double axis = 0.5 * std::atan2(2 * e.m11, e.m20 - e.m02);
    CHECK(std::fabs(angle_diff(2 * axis, 2 * theta)) / 2 < 0.03);
    const Moments h0 = moments({2, 5, 0, 15, 15}), h = moments({2, 5, o, 15, 15});
    // Area does not depend on the orientation.
    CHECK(h.area == Approx(h0.area).epsilon(0.05));
  }
  // The heart (mirror-symmetric only, so this fixes the angle modulo 2 pi) reaches
  // farther from its centroid towards its point: down at orientation 0, then
  // right, up and left after each counter-clockwise quarter turn (10 steps).
  const double dirs[4][2] = {{0, -1}, {1, 0}, {0, 1}, {-1, 0}};
  for (int q = 0; q < 4; ++q) {
    INFO("quarter turns " << q);
    const ds::Classes c{2, 5, uint32_t(10 * q), 15, 15};
    std::vector<uint8_t> img(ds::kImageDim);
    ds::render(c, img.data());
    const ds::FactorValues f = ds::values_of(c);
    const Moments m = moments(c);
    const double cx = 16 + 32 * f.pos_x + m.mx, cy = 16 + 32 * f.pos_y - m.my;
    double reach[4] = {0, 0, 0, 0};  // farthest on pixel along each direction (y up)
    for (size_t p = 0; p < ds::kImageDim; ++p) {
      if (!img[p]) continue;
      const double dx = double(p % ds::kImageSide) + 0.5 - cx, dy = cy - (double(p / ds::kImageSide) + 0.5);
      for (int d = 0; d < 4; ++d) reach[d] = std::max(reach[d], dx * dirs[d][0] + dy * dirs[d][1]);
    }
    // The point reaches 1.0 disc radius from the centroid, the lobes at most 0.95.
    for (int d = 0; d < 4; ++d)
      if (d != q) CHECK(reach[q] > reach[d] + 0.5);
  }
  // A quarter turn makes the ellipse tall.
  const Moments tall = moments({1, 5, 10, 15, 15});
  CHECK(tall.m02 > 3 * tall.m20);
}

TEST_CASE("dsprites splits: disjoint, deterministic, sized as asked", "[dsprites][data]") {
  const ds::SplitIndices s = ds::split_indices(500, 100, 0);
  CHECK(s.test.size() == ds::kDefaultTestSize);
  CHECK(s.valid.size() == 100);
  CHECK(s.train.size() == 500);
  std::set<uint32_t> all(s.train.begin(), s.train.end());
  all.insert(s.valid.begin(), s.valid.end());
  all.insert(s.test.begin(), s.test.end());
  CHECK(all.size() == 500 + 100 + ds::kDefaultTestSize);
  CHECK(ds::split_indices(500, 100, 0).train == s.train);
  // A larger training set extends the smaller one; the test set does not move.
  const ds::SplitIndices t = ds::split_indices(800, 100, 0);
  CHECK(std::equal(s.train.begin(), s.train.end(), t.train.begin()));
  CHECK(t.test == s.test);
  CHECK_THROWS_WITH(ds::split_indices(0, 0, 0), Catch::Contains("train_size"));
  CHECK_THROWS_WITH(ds::split_indices(737280, 0, 0), Catch::Contains("exceeds the 737280"));
}

TEST_CASE("dsprites load renders the split on the fly with a checksum of what it drew", "[dsprites][data]") {
  DataSpec spec;
  spec.dataset = "dsprites";
  spec.binarize = "none";
  spec.train_size = 300;
  spec.test_size = 50;
  const Splits a = load(spec);
  CHECK(a.train.n == 300);
  CHECK(a.test.n == 50);
  CHECK(a.valid.n == 0);
  CHECK(a.train.rows == 64);
  CHECK(a.train.cols == 64);
  CHECK(a.train.scale == 1.0f);
  CHECK(a.train.pixels.size() == 300 * 4096);
  // Image i of the training set is the rendering of its grid index.
  const ds::SplitIndices idx = ds::split_indices(300, 0, 50);
  std::vector<uint8_t> img(ds::kImageDim);
  ds::render(ds::classes_of(idx.train[7]), img.data());
  CHECK(std::equal(img.begin(), img.end(), a.train.pixels.begin() + 7 * 4096));
  REQUIRE(a.files.size() == 1);
  CHECK(a.files[0].first == "dsprites:rendered");
  CHECK(a.files[0].second.size() == 64);
  CHECK(load(spec).files[0].second == a.files[0].second);
  spec.train_size = 301;
  CHECK(load(spec).files[0].second != a.files[0].second);
  spec.binarize = "dynamic";
  CHECK_THROWS_WITH(load(spec), Catch::Contains("already binary"));
  CHECK(data_file_paths(DataSpec{"dsprites", "", "none", "", 10, 0, 0}).empty());
}

TEST_CASE("a damaged dsprites cache file is refused with its name", "[dsprites][data]") {
  const fs::path dir = fs::temp_directory_path() / ("vae_dsprites_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string bad = (dir / "grid.bits").string();
  {
    std::ofstream f(bad, std::ios::binary);
    f << "NOTACACHEFILE_AT_ALL_0123456789";
  }
  CHECK_THROWS_AS(ds::ensure_cache(bad), DataError);
  CHECK_THROWS_WITH(ds::ensure_cache(bad), Catch::Contains(bad) && Catch::Contains("not a dSprites cache"));
  {
    std::ofstream f(bad, std::ios::binary);
    f.write("VAEDSPR1", 8);
    const uint32_t head[3] = {737280, 64, 64};  // little-endian host assumed by the test only
    f.write(reinterpret_cast<const char*>(head), sizeof head);
    f << "short";
  }
  CHECK_THROWS_WITH(ds::ensure_cache(bad),
                    Catch::Contains(bad) && Catch::Contains("wrong dSprites cache size"));
  fs::remove_all(dir);
}

// Writes the whole 377 MB cache: run by hand (vae_tests "[.dsprites-cache]").
TEST_CASE("the dsprites cache holds the rendered grid bit for bit", "[.dsprites-cache]") {
  const fs::path dir = fs::temp_directory_path() / ("vae_dsprites_cache_" + std::to_string(::getpid()));
  const std::string path = (dir / "grid.bits").string();
  DataSpec spec{"dsprites", "", "none", path, 2000, 100, 500};
  const Splits cached = load(spec);
  CHECK(fs::file_size(path) == 20 + 737280ull * 512);
  spec.dsprites_cache = "";
  const Splits rendered = load(spec);
  CHECK(cached.train.pixels == rendered.train.pixels);
  CHECK(cached.valid.pixels == rendered.valid.pixels);
  CHECK(cached.test.pixels == rendered.test.pixels);
  REQUIRE(cached.files.size() == 1);
  CHECK(cached.files[0].first == path);
  fs::remove_all(dir);
}
