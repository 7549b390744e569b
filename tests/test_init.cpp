// Weight initialisation: the bounds, zero biases and variance of each scheme, with the
// fans PyTorch's torch.nn.init uses for Linear, Conv2d and ConvTranspose2d weights.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "models/model.hpp"
#include "models/settings.hpp"
#include "nn/conv.hpp"
#include "nn/params.hpp"

using namespace vae;

namespace {

struct Drawn {
  double max_abs = 0, var = 0;
  bool biases_zero = true;
};

Drawn draw(std::size_t n_w, std::size_t n_b, std::size_t fan_in, std::size_t fan_out, Init init) {
  std::vector<double> w(n_w), b(n_b, 1.0);
  std::mt19937_64 rng(7);
  init_weights(w.data(), n_w, b.data(), n_b, fan_in, fan_out, init, 0.01, rng);
  Drawn d;
  for (double x : w) d.max_abs = std::max(d.max_abs, std::abs(x)), d.var += x * x / double(n_w);
  for (double x : b) d.biases_zero = d.biases_zero && x == 0.0;
  return d;
}

}  // namespace

TEST_CASE("glorot: U(-a, a), a = sqrt(6 / (fan_in + fan_out)), zero biases", "[init]") {
  // the IWAE encoder's first layer, 784 -> 200
  const double a = std::sqrt(6.0 / (784 + 200));
  const Drawn d = draw(784 * 200, 200, 784, 200, Init::Glorot);
  CHECK(d.max_abs <= a);
  CHECK(d.max_abs > 0.999 * a);
  CHECK(d.var == Approx(a * a / 3).epsilon(0.01));  // 156,800 draws: s.e. of the variance ~0.3%
  CHECK(d.biases_zero);
  // uniform (PyTorch's default) draws the biases from the same U(-1/sqrt(fan_in), ...)
  const Drawn u = draw(784 * 200, 200, 784, 200, Init::Uniform);
  CHECK(u.max_abs <= 1 / std::sqrt(784.0));
  CHECK(u.max_abs > 0.999 / std::sqrt(784.0));
  CHECK_FALSE(u.biases_zero);
  const Drawn n = draw(784 * 200, 200, 784, 200, Init::Normal);
  CHECK(std::sqrt(n.var) == Approx(0.01).epsilon(0.01));
  CHECK(n.biases_zero);
  CHECK(parse_init("glorot") == Init::Glorot);
  CHECK(parse_init("normal") == Init::Normal);
  CHECK(parse_init("uniform") == Init::Uniform);
}

TEST_CASE("glorot fans of convolutions are PyTorch's: channels times k^2", "[init][conv]") {
  ParamLayout layout;
  const Conv2d c = Conv2d::make(layout, 3, 5, 3, 2, 1, 8, 8);  // weight [5, 3, 3, 3]: fans 27, 45
  const ConvTranspose2d t = ConvTranspose2d::make(layout, 5, 3, 3, 2, 1, 1, 1, 4,
                                                  4);  // [5, 3, 3, 3]: fans 27, 45
  std::vector<double> p(layout.size, 1.0);
  std::mt19937_64 rng(3);
  c.initialize(p.data(), Init::Glorot, 0.0, rng);
  t.initialize(p.data(), Init::Glorot, 0.0, rng);
  const double a = std::sqrt(6.0 / (27 + 45));
  for (std::size_t i = 0; i < 135; ++i) {
    CHECK(std::abs(p[c.w + i]) <= a);
    CHECK(std::abs(p[t.w + i]) <= a);
  }
  double m = 0;
  for (std::size_t i = 0; i < 135; ++i) m = std::max({m, std::abs(p[c.w + i]), std::abs(p[t.w + i])});
  CHECK(m > 0.9 * a);  // 270 draws reach 0.9 a with probability 1 - 0.9^270
  for (std::size_t i = 0; i < 5; ++i) CHECK(p[c.b + i] == 0.0);
  for (std::size_t i = 0; i < 3; ++i) CHECK(p[t.b + i] == 0.0);
}

TEST_CASE(
    "output-bias data-logit: the Bernoulli decoder's output bias at the training images' clipped log-odds",
    "[init][config]") {
  // 3 images of 4 pixels; per-pixel means 0, 1, 447/765 and 2/3
  data::Images im;
  im.n = 3;
  im.rows = 1;
  im.cols = 4;
  im.pixels = {0, 255, 128, 255, 0, 255, 64, 0, 0, 255, 255, 255};
  const double logit[] = {std::log(0.001 / 0.999), std::log(0.999 / 0.001), std::log(447.0 / 318.0),
                          std::log(2.0)};
  const std::pair<const char*, std::vector<std::pair<std::string, Value>>> models[] = {
      {"dec_out.b",
       {{"model", std::string("vae")}, {"hidden", std::vector<int64_t>{5}}, {"latent", int64_t(2)}}},
      {"dec.out.b",
       {{"model", std::string("hierarchical")},
        {"layers", std::vector<int64_t>{2}},
        {"det-layers", std::vector<int64_t>{3}}}},
  };
  for (const auto& [group, settings] : models) {
    DYNAMIC_SECTION(group) {
      ConfigMap c = default_config();
      for (const auto& [k, v] : settings) c[k] = v;
      c["output-bias"] = std::string("data-logit");
      std::mt19937_64 rng(1);
      auto model = make_model(to_train_config(c), im.rows, im.cols, rng);
      const std::vector<float> before(model->params().begin(), model->params().end());
      set_output_bias_to_data_logit(*model, im);
      std::size_t found = 0;
      for (const ParamRange& g : model->param_groups()) {
        for (std::size_t j = 0; j < g.size; ++j) {
          const float p = model->params()[g.offset + j];
          if (g.name != group) CHECK(p == before[g.offset + j]);  // nothing else moves
          else CHECK(p == Approx(logit[j]).epsilon(1e-6));
        }
        found += g.name == group;
      }
      CHECK(found == 1);
    }
  }
  // configurations where it means nothing are refused when read
  ConfigMap c = default_config();
  c["output-bias"] = std::string("data-logit");
  c["arch"] = std::string("conv");
  CHECK_THROWS_WITH(to_train_config(c), Catch::Contains("key 'output-bias'"));
  c["arch"] = std::string("mlp");
  for (const char* model : {"nvae", "vqvae"}) {
    ConfigMap m = c;
    m["model"] = std::string(model);
    m["batch"] = int64_t(16);  // within nvae's rows per step
    CHECK_THROWS_WITH(to_train_config(m), Catch::Contains("key 'output-bias'"));
  }
  c["likelihood"] = std::string("gaussian");
  c["binarize"] = std::string("none");
  CHECK_THROWS_WITH(to_train_config(c), Catch::Contains("key 'output-bias'"));
}
