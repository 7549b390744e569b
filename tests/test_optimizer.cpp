// Optimizers against torch.optim (float64): tests/golden/make_golden_optim.py.
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nn/optimizer.hpp"
#include "test_paths.hpp"

using namespace vae;

TEST_CASE("Adam and Adagrad steps equal torch.optim's", "[optimizer][golden]") {
  std::ifstream in(std::string(vae::testing::test_dir()) + "/golden/optimizers.json");
  REQUIRE(in.good());
  const auto g = nlohmann::json::parse(in);
  const auto p0 = g["p0"].get<std::vector<double>>();
  for (const char* kind : {"adam", "adagrad"}) {
    DYNAMIC_SECTION(kind) {
      const auto& c = g["cases"][kind];
      Optimizer<double> opt;
      opt.configure(kind, c.value("beta1", 0.9), c.value("beta2", 0.999), c["eps"], c["eps"], p0.size());
      Buffer<double> p(p0.begin(), p0.end()), grad(p0.size());
      for (std::size_t s = 0; s < 3; ++s) {
        const auto gs = g["grads"][s].get<std::vector<double>>();
        std::copy(gs.begin(), gs.end(), grad.begin());
        opt.step(p, grad, c["lr"]);
        const auto want = c["steps"][s].get<std::vector<double>>();
        for (std::size_t i = 0; i < p.size(); ++i) {
          INFO("step " << s + 1 << " index " << i);
          CHECK(p[i] == Approx(want[i]).epsilon(1e-12).margin(1e-14));
        }
      }
    }
  }
}

TEST_CASE("Adam with v starting at 1 (the IWAE paper's code): the torch formula from that start",
          "[optimizer]") {
  // The IWAE paper's code (yburda/iwae, optimizers.py) starts v at ones and keeps the bias
  // corrections of a zero start; beta1 0.99 and eps 1e-4 as there.
  const double b1 = 0.99, b2 = 0.999, eps = 1e-4, lr = 1e-3;
  const std::vector<double> p0 = {0.5, -0.25, 0.0, 1.5};
  const std::vector<std::vector<double>> grads = {{0.2, -3.0, 1e-3, 0.0},
                                                  {-0.1, 2.0, 0.5, 4.0},
                                                  {0.3, 0.0, -0.5, 1.0}};
  Optimizer<double> opt, zero_start;
  opt.configure("adam", b1, b2, eps, 0.0, p0.size(), /*adam_v0=*/1.0);
  zero_start.configure("adam", b1, b2, eps, 0.0, p0.size());
  Buffer<double> p(p0.begin(), p0.end()), q(p0.begin(), p0.end()), g(p0.size());
  std::vector<double> want = p0, m(p0.size(), 0.0), v(p0.size(), 1.0);
  for (std::size_t t = 1; t <= grads.size(); ++t) {
    std::copy(grads[t - 1].begin(), grads[t - 1].end(), g.begin());
    opt.step(p, g, lr);
    zero_start.step(q, g, lr);
    for (std::size_t i = 0; i < p0.size(); ++i) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      want[i] -= lr * (m[i] / (1 - std::pow(b1, t))) / (std::sqrt(v[i] / (1 - std::pow(b2, t))) + eps);
      INFO("step " << t << " index " << i);
      CHECK(p[i] == Approx(want[i]).epsilon(1e-13).margin(1e-15));
    }
  }
  // The start slows the first steps down: after them the parameters have moved less than
  // from a zero start, except where no gradient came (index 3 at step 1 is 0 in both).
  for (std::size_t i = 0; i < 2; ++i) CHECK(std::abs(p[i] - p0[i]) < 0.5 * std::abs(q[i] - p0[i]));
}

TEST_CASE("Adam's iwae-code update: the step from the moments before this gradient, eps on the "
          "uncorrected sqrt(v)",
          "[optimizer]") {
  // The IWAE paper's optimizers.py as Theano runs it: the updates of the timestep, m, v and
  // the parameters are all computed from the values before the call, t from 1.
  const double b1 = 0.99, b2 = 0.999, eps = 1e-4, lr = 1e-3;
  const std::vector<double> p0 = {0.5, -0.25, 0.0, 1.5};
  const std::vector<std::vector<double>> grads = {
      {0.2, -3.0, 1e-3, 0.0}, {-0.1, 2.0, 0.5, 4.0}, {0.3, 0.0, -0.5, 1.0}, {1.0, 1.0, 1.0, -1.0}};
  for (const double v0 : {1.0, 0.0}) {
    DYNAMIC_SECTION("v0 = " << v0) {
      Optimizer<double> opt;
      opt.configure("adam", b1, b2, eps, 0.0, p0.size(), v0, /*adam_delayed=*/true);
      Buffer<double> p(p0.begin(), p0.end()), g(p0.size());
      std::vector<double> param = p0, m(p0.size(), 0.0), v(p0.size(), v0);
      double timestep = 1;
      for (std::size_t s = 0; s < grads.size(); ++s) {
        std::copy(grads[s].begin(), grads[s].end(), g.begin());
        opt.step(p, g, lr);
        const double alpha = lr * std::sqrt(1 - std::pow(b2, timestep)) / (1 - std::pow(b1, timestep));
        for (std::size_t i = 0; i < p0.size(); ++i) {
          const double new_param = param[i] - alpha * m[i] / (std::sqrt(v[i]) + eps);  // old m, v
          m[i] = b1 * m[i] + (1 - b1) * g[i];
          v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
          param[i] = new_param;
          INFO("step " << s + 1 << " index " << i);
          CHECK(p[i] == Approx(param[i]).epsilon(1e-13).margin(1e-15));
        }
        timestep += 1;
        if (s == 0) CHECK(std::vector<double>(p.begin(), p.end()) == p0);  // m_0 = 0: no move
      }
    }
  }
}

TEST_CASE("weight decay: the gradient of (lambda / 2) |p|^2, read by the optimizer as g + lambda p",
          "[optimizer][gradcheck]") {
  const std::vector<double> p0 = {0.3, -1.2, 2.5, 0.0, -0.07};
  const double lambda = 1.0 / 60000;  // a N(0, I) prior over 60,000 MNIST examples
  // The penalty against (lambda / 2) sum p^2 written out, and its gradient by central differences.
  CHECK(weight_decay_penalty(p0.data(), p0.size(), 2.0) == Approx(0.09 + 1.44 + 6.25 + 0 + 0.0049));
  std::vector<double> g(p0.size(), 0.0);
  add_weight_decay_grad(g.data(), p0.data(), p0.size(), lambda);
  for (std::size_t i = 0; i < p0.size(); ++i) {
    std::vector<double> a = p0, b = p0;
    const double h = 1e-4;
    a[i] += h;
    b[i] -= h;
    const double fd = (weight_decay_penalty(a.data(), a.size(), lambda) -
                       weight_decay_penalty(b.data(), b.size(), lambda)) /
                      (2 * h);
    INFO("index " << i);
    CHECK(g[i] == Approx(fd).epsilon(1e-6).margin(1e-14));
  }
  // The optimizer reads g + lambda p: Adagrad's accumulator after one step is its square, on
  // the whole-buffer step and on the range-by-range step of a fused training step alike.
  const std::vector<double> grad = {0.5, 0.25, -1.0, 2.0, 0.125};
  const double big = 0.1;  // large enough to move every entry well past rounding
  for (int fused = 0; fused < 2; ++fused) {
    Optimizer<double> opt;
    opt.configure("adagrad", 0.9, 0.999, 1e-8, 1e-10, p0.size());
    opt.weight_decay = big;
    Buffer<double> p(p0.begin(), p0.end()), gb(grad.begin(), grad.end());
    if (fused) {
      opt.begin_step(0.01);
      opt.apply_and_clear(p.data(), gb.data(), 0, 2);
      opt.apply_and_clear(p.data(), gb.data(), 2, 3);
    } else {
      opt.step(p, gb, 0.01);
    }
    for (std::size_t i = 0; i < p0.size(); ++i) {
      INFO("fused " << fused << " index " << i);
      const double want = grad[i] + big * p0[i];
      CHECK(opt.adagrad.sum_sq[i] == Approx(want * want).epsilon(1e-12));
      CHECK(p[i] == Approx(p0[i] - 0.01 * want / (std::abs(want) + 1e-10)).epsilon(1e-12));
    }
  }
}
