// Pictures of trained models (vae draw): the normal quantile, grids, and PNG files
// decoded back with stb_image for a tiny model whose weights are set by hand, so the
// expected pixels are computed here from the formulas alone.
#include <stb_image.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "config/config.hpp"
#include "draw/figures.hpp"
#include "draw/grid.hpp"
#include "models/model.hpp"
#include "models/settings.hpp"
#include "store/results_store.hpp"
#include "store_test_util.hpp"

using namespace vae;

namespace {

// The standard normal CDF's inverse by bisection on 0.5 erfc(-x / sqrt 2): slow, plain,
// and independent of the rational approximation under test.
double quantile_by_bisection(double p) {
  double lo = -40, hi = 40;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

double sigmoid(double a) { return 1.0 / (1.0 + std::exp(-a)); }
int byte_of(double v) { return int(std::lround(255.0 * std::min(1.0, std::max(0.0, v)))); }

struct Png {
  int w = 0, h = 0;
  std::vector<uint8_t> px;
  int at(int x, int y) const { return px[std::size_t(y * w + x)]; }
};
Png read_png(const std::string& path) {
  Png p;
  int channels = 0;
  unsigned char* data = stbi_load(path.c_str(), &p.w, &p.h, &channels, 1);
  REQUIRE(data != nullptr);
  p.px.assign(data, data + std::size_t(p.w) * std::size_t(p.h));
  stbi_image_free(data);
  return p;
}

// A 3 x 2 image model (D = 6), latent 2, one hidden layer of 2 ReLUs, Bernoulli decoder,
// with these weights (everything else 0):
//   encoder: h_0 = relu(sum_j x_j); mu = (0.5 h_0, 0.3)
//   decoder: g = relu(z); logits_d = W[d] . g + c[d]
// so decode_mean(z)_d = sigmoid(W[d][0] relu(z_0) + W[d][1] relu(z_1) + c[d]).
constexpr std::size_t kRows = 3, kCols = 2, kD = 6;
const double kW[kD][2] = {{1.0, 0.0}, {0.0, 1.0}, {1.0, -1.0}, {-0.5, 0.5}, {2.0, 0.0}, {0.0, -2.0}};
const double kC[kD] = {0.0, 0.5, -0.5, 0.25, -1.0, 1.0};

std::unique_ptr<Model> tiny_model() {
  ConfigMap c = default_config();
  apply(c, {{"latent", int64_t(2)}, {"hidden", std::vector<int64_t>{2}}});
  std::mt19937_64 rng(1);
  auto m = make_model(to_train_config(c), kRows, kCols, rng);
  // The layout of the flat buffer: enc0 (W [2,6], b), enc_mu (W [2,2], b), enc_logvar,
  // dec0 (W [2,2], b), dec_out (W [6,2], b).
  REQUIRE(m->num_params() == 12 + 2 + 4 + 2 + 4 + 2 + 4 + 2 + 12 + 6);
  auto& p = m->params();
  std::fill(p.begin(), p.end(), 0.0f);
  for (std::size_t j = 0; j < kD; ++j) p[0 * kD + j] = 1.0f;  // enc0.W row 0
  const std::size_t enc_mu = 14, dec0 = 26, dec_out = 32;
  p[enc_mu + 0] = 0.5f;                    // enc_mu.W[0][0]
  p[enc_mu + 4 + 1] = 0.3f;                // enc_mu.b[1]
  p[dec0 + 0] = 1.0f, p[dec0 + 3] = 1.0f;  // dec0.W = identity
  for (std::size_t d = 0; d < kD; ++d) {
    p[dec_out + d * 2 + 0] = float(kW[d][0]);
    p[dec_out + d * 2 + 1] = float(kW[d][1]);
    p[dec_out + 12 + d] = float(kC[d]);
  }
  m->reserve(1, 16);
  return m;
}

double decoded(double z0, double z1, std::size_t d) {
  return sigmoid(kW[d][0] * std::max(0.0, z0) + kW[d][1] * std::max(0.0, z1) + kC[d]);
}

data::Images tiny_images() {
  data::Images im;
  im.source = "tiny";
  im.n = 4, im.rows = kRows, im.cols = kCols;
  im.pixels = {0, 255, 51, 102, 0, 0, 255, 255, 255, 255, 255, 255, 10, 20, 30, 40, 50, 60, 0, 0, 0, 0, 0, 0};
  im.labels = {3, 1, 4, 1};
  return im;
}
double sum_of(const data::Images& im, std::size_t i) {
  double s = 0;
  for (std::size_t j = 0; j < kD; ++j) s += im.pixels[i * kD + j] * double(im.scale);
  return s;
}

// Pixel (y, x) of cell k in a grid of `cols` cells with `pad` background pixels.
int cell_pixel(const Png& p, std::size_t k, std::size_t cols, std::size_t pad, std::size_t y, std::size_t x) {
  const std::size_t x0 = pad + (k % cols) * (kCols + pad), y0 = pad + (k / cols) * (kRows + pad);
  return p.at(int(x0 + x), int(y0 + y));
}

}  // namespace

TEST_CASE("the normal quantile matches bisection on erfc and tabulated values", "[draw]") {
  CHECK(draw::normal_quantile(0.5) == Approx(0.0).margin(1e-15));
  CHECK(draw::normal_quantile(0.975) == Approx(1.959963984540054).epsilon(1e-13));
  CHECK(draw::normal_quantile(0.1) == Approx(-1.2815515655446004).epsilon(1e-13));
  for (double p : {1e-10, 1e-4, 0.01, 0.02425, 0.2, 0.7, 0.97575, 0.999})
    CHECK(draw::normal_quantile(p) == Approx(quantile_by_bisection(p)).epsilon(1e-12));
  // Far in the upper tail p itself carries few digits of 1 - p (doubles near 1 are 1.1e-16
  // apart), so check it by symmetry with an exactly representable p.
  const double tail = std::ldexp(1.0, -30);
  CHECK(draw::normal_quantile(1 - tail) == Approx(-quantile_by_bisection(tail)).epsilon(1e-12));
  CHECK(draw::normal_quantile(tail) == Approx(-6.009353565530742).epsilon(1e-13));  // Python's NormalDist
  CHECK_THROWS(draw::normal_quantile(0.0));
  CHECK_THROWS(draw::normal_quantile(1.0));
}

TEST_CASE("a grid places cells row by row between background padding", "[draw]") {
  // 3 cells of 1 x 2 in rows of 2: width 2*2 + 3*1 = 7, height 2*1 + 3*1 = 5.
  const std::vector<float> cells{0.0f, 1.0f, 0.5f, 2.0f, -1.0f, 0.25f};
  const draw::GrayImage g = draw::tile(cells, 3, 1, 2, 2, 1, 9);
  REQUIRE(g.width == 7);
  REQUIRE(g.height == 5);
  const std::vector<uint8_t> expected{9, 9, 9,   9, 9,   9,   9,  //
                                      9, 0, 255, 9, 128, 255, 9,  //
                                      9, 9, 9,   9, 9,   9,   9,  //
                                      9, 0, 64,  9, 9,   9,   9,  //
                                      9, 9, 9,   9, 9,   9,   9};
  CHECK(g.pixels == expected);
  const draw::GrayImage u = draw::upscale(g, 3);
  CHECK(u.width == 21);
  CHECK(u.height == 15);
  for (std::size_t y = 3; y < 6; ++y)
    for (std::size_t x = 3; x < 6; ++x) CHECK(u.pixels[y * 21 + x] == 0);  // the block of g's (1, 1)
  CHECK(u.pixels[3 * 21 + 6] == 255);                                      // g's (2, 1) starts at x = 6
  CHECK(u.pixels[14 * 21 + 20] == 9);
  CHECK(draw::to_byte(std::nanf("")) == 0);
}

TEST_CASE("the manifold PNG decodes to the decoder means on the quantile grid", "[draw][png]") {
  auto m = tiny_model();
  testing::TempDir dir;
  const std::size_t side = 5, pad = 2;
  const draw::Figure f = draw::manifold(*m, side);
  REQUIRE(f.n == side * side);
  draw::write_png(dir.file("m.png"), draw::tile(f.cells, f.n, kRows, kCols, f.cols, pad));
  const Png p = read_png(dir.file("m.png"));
  REQUIRE(p.w == int(side * kCols + (side + 1) * pad));
  REQUIRE(p.h == int(side * kRows + (side + 1) * pad));
  CHECK(p.at(0, 0) == 128);  // background
  int worst = 0;
  for (std::size_t r = 0; r < side; ++r)
    for (std::size_t c = 0; c < side; ++c) {
      const double z0 = quantile_by_bisection((double(c) + 0.5) / double(side));
      const double z1 = quantile_by_bisection((double(side - 1 - r) + 0.5) /
                                              double(side));  // z_1 grows upwards
      for (std::size_t d = 0; d < kD; ++d)
        worst = std::max(worst, std::abs(cell_pixel(p, r * side + c, side, pad, d / kCols, d % kCols) -
                                         byte_of(decoded(z0, z1, d))));
    }
  // The model computes in float: a value within 1e-6 of a rounding boundary may land on
  // the neighbouring byte. Anything wrong in the grid is off by far more.
  CHECK(worst <= 1);
  // a 3-D latent space has no manifold picture
  ConfigMap c3 = default_config();
  apply(c3, {{"latent", int64_t(3)}, {"hidden", std::vector<int64_t>{2}}});
  std::mt19937_64 rng(0);
  auto m3 = make_model(to_train_config(c3), kRows, kCols, rng);
  CHECK_THROWS_AS(draw::manifold(*m3, 4), std::invalid_argument);
}

TEST_CASE("reconstructions, interpolations and traversals decode to the expected pixels", "[draw][png]") {
  auto m = tiny_model();
  const data::Images im = tiny_images();
  testing::TempDir dir;
  const std::size_t pad = 1;
  auto mu0 = [&](std::size_t i) { return 0.5 * sum_of(im, i); };  // mu = (0.5 sum x, 0.3)
  int worst = 0;
  auto expect = [&](int got, int want) { worst = std::max(worst, std::abs(got - want)); };

  SECTION("reconstructions: a row of images, then their reconstructions") {
    const draw::Figure f = draw::reconstructions(*m, im, 1, 3, 1);
    REQUIRE(f.n == 6);
    draw::write_png(dir.file("r.png"), draw::tile(f.cells, f.n, kRows, kCols, f.cols, pad));
    const Png p = read_png(dir.file("r.png"));
    REQUIRE(p.w == int(3 * kCols + 4 * pad));
    REQUIRE(p.h == int(2 * kRows + 3 * pad));
    for (std::size_t k = 0; k < 3; ++k)
      for (std::size_t d = 0; d < kD; ++d) {
        CHECK(cell_pixel(p, k, 3, pad, d / kCols, d % kCols) == im.pixels[(1 + k) * kD + d]);
        expect(cell_pixel(p, 3 + k, 3, pad, d / kCols, d % kCols), byte_of(decoded(mu0(1 + k), 0.3, d)));
      }
  }
  SECTION("interpolation: x_a, the decoded line between the codes, x_b") {
    const std::size_t steps = 4;
    const draw::Figure f = draw::interpolations(*m, im, {{0, 1}, {2, 0}}, steps);
    REQUIRE(f.n == 2 * (steps + 2));
    draw::write_png(dir.file("i.png"), draw::tile(f.cells, f.n, kRows, kCols, f.cols, pad));
    const Png p = read_png(dir.file("i.png"));
    REQUIRE(p.w == int((steps + 2) * kCols + (steps + 3) * pad));
    const std::size_t ends[2][2] = {{0, 1}, {2, 0}};
    for (std::size_t r = 0; r < 2; ++r) {
      const std::size_t a = ends[r][0], b = ends[r][1];
      for (std::size_t d = 0; d < kD; ++d) {
        CHECK(cell_pixel(p, r * (steps + 2), steps + 2, pad, d / kCols, d % kCols) == im.pixels[a * kD + d]);
        CHECK(cell_pixel(p, r * (steps + 2) + steps + 1, steps + 2, pad, d / kCols, d % kCols) ==
              im.pixels[b * kD + d]);
        for (std::size_t s = 0; s < steps; ++s) {
          const double t = double(s) / double(steps - 1);
          expect(cell_pixel(p, r * (steps + 2) + 1 + s, steps + 2, pad, d / kCols, d % kCols),
                 byte_of(decoded((1 - t) * mu0(a) + t * mu0(b), 0.3, d)));
        }
      }
    }
  }
  SECTION("traversals: row u moves z_u from -limit to limit, the rest is test image index's code") {
    const std::size_t steps = 5;
    const draw::Figure f = draw::traversals(*m, im, 2, steps, 3.0);
    REQUIRE(f.n == 2 * steps);
    draw::write_png(dir.file("t.png"), draw::tile(f.cells, f.n, kRows, kCols, f.cols, pad));
    const Png p = read_png(dir.file("t.png"));
    REQUIRE(p.h == int(2 * kRows + 3 * pad));
    for (std::size_t s = 0; s < steps; ++s) {
      const double v = -3.0 + 6.0 * double(s) / double(steps - 1);
      for (std::size_t d = 0; d < kD; ++d) {
        expect(cell_pixel(p, s, steps, pad, d / kCols, d % kCols), byte_of(decoded(v, 0.3, d)));
        expect(cell_pixel(p, steps + s, steps, pad, d / kCols, d % kCols), byte_of(decoded(mu0(2), v, d)));
      }
    }
  }
  SECTION("traversals of chosen units, in their order") {
    const draw::Figure all = draw::traversals(*m, im, 2, 3, 3.0);
    const draw::Figure one = draw::traversals(*m, im, 2, 3, 3.0, {1});
    REQUIRE(one.n == 3);
    CHECK(std::vector<float>(all.cells.begin() + 3 * kD, all.cells.end()) == one.cells);  // unit 1's row
    CHECK_THROWS_AS(draw::traversals(*m, im, 2, 3, 3.0, {2}), std::out_of_range);
    CHECK(draw::units_by_kl({0.5, 2.0, 0.0, 2.0}) == std::vector<std::size_t>{1, 3, 0, 2});
  }
  CHECK(worst <= 1);  // float model, double expectation: see the manifold test
  CHECK_THROWS_AS(draw::reconstructions(*m, im, 2, 3, 1), std::out_of_range);  // images 2..4 of 4
}

TEST_CASE("prior samples are decoder means of N(0, I) draws, the same for the same seed", "[draw]") {
  auto m = tiny_model();
  const draw::Figure a = draw::prior_samples(*m, 3, 7), b = draw::prior_samples(*m, 3, 7),
                     c = draw::prior_samples(*m, 3, 8);
  REQUIRE(a.n == 9);
  CHECK(a.cells == b.cells);
  CHECK(a.cells != c.cells);
  // Each cell is a decoder mean: pixel 4 = sigmoid(2 relu(z_0) - 1) and pixel 0 = sigmoid(relu(z_0))
  // share z_0, which must be recoverable and consistent across the two pixels.
  for (std::size_t k = 0; k < a.n; ++k) {
    const double p0 = a.cells[k * kD + 0];
    const double z0 = std::log(p0 / (1 - p0));  // relu(z_0)
    CHECK(a.cells[k * kD + 4] == Approx(decoded(z0, 0, 4)).margin(1e-5));
  }
  // and the draws are N(0, 1): over many samples about half of z_0 is <= 0 (pixel 0 = 1/2).
  const draw::Figure big = draw::prior_samples(*m, 40, 1);
  std::size_t at_half = 0;
  for (std::size_t k = 0; k < big.n; ++k) at_half += big.cells[k * kD] == 0.5f;
  CHECK(double(at_half) / double(big.n) == Approx(0.5).margin(0.05));
}

TEST_CASE("pictures are recorded as artifacts of a run outside a claim", "[draw][store]") {
  testing::TempDir dir;
  auto db = store::open_for_writing(dir.file("r.db"));
  auto [plan, sweep_id] = testing::register_sweep(*db, "name = \"s\"\n[base]\nlatent = 2\n");
  store::ResultsStore st(*db);
  const std::string id = plan.runs.at(0).run_id;
  std::ofstream(dir.file("a.png")) << "12345";
  st.record_run_artifact(id, "a.png", dir.file("a.png"), 7);
  REQUIRE(st.artifact_path(id, "a.png") == dir.file("a.png"));
  CHECK_FALSE(st.artifact_path(id, "b.png").has_value());
  auto q = db->prepare("SELECT epoch, bytes FROM artifacts WHERE run_id = ? AND kind = 'a.png'");
  q.bind(1, id);
  REQUIRE(q.step());
  CHECK(q.get_int(0) == 7);
  CHECK(q.get_int(1) == 5);
  CHECK_THROWS_WITH(st.record_run_artifact("feedbeef", "a.png", dir.file("a.png"), 1),
                    Catch::Contains("feedbeef") && Catch::Contains("not in the database"));
}

TEST_CASE("the Ladder VAE samples its prior top-down through p(z_i | z_{i+1})", "[draw][ladder]") {
  ConfigMap c = default_config();
  apply(c, {{"model", std::string("ladder")},
            {"layers", std::vector<int64_t>{4, 2}},
            {"det-layers", std::vector<int64_t>{8, 4}},
            {"activation", std::string("leaky-relu")}});
  std::mt19937_64 init(0);
  auto m = make_model(to_train_config(c), kRows, kCols, init);
  m->reserve(1, 500);
  // With every parameter 0 the top-down MLP outputs 0, so p(z_1 | z_2) = N(0, softplus(0)):
  // variance log 2 (plus the variance floor), against 1 for the top layer's N(0, I).
  std::fill(m->params().begin(), m->params().end(), 0.0f);
  std::mt19937_64 rng(3);
  const std::size_t n = 20000, U = 6;
  REQUIRE(m->latent_dim() == U);
  const std::vector<float> z = m->sample_prior(n, rng);
  REQUIRE(z.size() == n * U);
  for (std::size_t u = 0; u < U; ++u) {
    double s = 0, s2 = 0;
    for (std::size_t i = 0; i < n; ++i) s += z[i * U + u], s2 += double(z[i * U + u]) * z[i * U + u];
    const double mean = s / double(n), var = s2 / double(n) - mean * mean;
    INFO("unit " << u);
    CHECK(mean == Approx(0.0).margin(0.03));
    CHECK(var == Approx(u < 4 ? std::log(2.0) : 1.0).margin(0.04));  // 4 sd of the estimate
  }
  std::mt19937_64 again(3);
  CHECK(m->sample_prior(n, again) == z);
}
