// The IAF posterior (Kingma et al. 2016): MADE's autoregressive property, the step's
// log-determinant, zero steps = the Gaussian, gradient checks in double, PyTorch golden
// values (tests/golden/make_golden_iaf.py), evaluation and a small training run.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "golden_util.hpp"
#include "gradcheck.hpp"
#include "models/algorithms.hpp"
#include "models/model.hpp"
#include "models/settings.hpp"
#include "models/vae.hpp"
#include "train/run.hpp"

// This file's names stay its own: the model tests compile in unity groups (CMakeLists.txt).
namespace test_iaf {

using namespace vae;
using vae::test::Group;
using vae::test::max_rel_error;
using json = nlohmann::json;

namespace {

std::vector<double> randn(std::size_t n, std::mt19937_64& rng, double sd = 1.0) {
  std::vector<double> v(n);
  std::normal_distribution<double> d(0, sd);
  for (auto& x : v) x = d(rng);
  return v;
}

// One MADE (and IAF step) with its parameters and inputs in one flat vector
//   theta = [params | z (B*L) | h (B*C)]
// so that one gradient check covers parameter and input gradients.
struct StepFixture {
  std::size_t B, L, C;
  Made<double> made;
  std::size_t n_params = 0;
  std::vector<double> theta, grad;
  IafStepWork<double> w;
  std::vector<double> z_out, dz_out, dz_in, dh, ones;

  StepFixture(std::size_t b, std::size_t l, std::size_t c, std::size_t width, std::size_t layers,
              Activation act, std::size_t t, uint64_t seed)
      : B(b), L(l), C(c) {
    ParamLayout layout;
    made.build(layout, L, C, width, layers, act, iaf_order(L, t));
    n_params = layout.size;
    std::mt19937_64 rng(seed);
    theta.assign(n_params, 0.0);
    made.initialize(theta.data(), Init::Uniform, 0, rng);
    // Masked entries are set anyway: the forward pass must not see them.
    for (const auto* m : made.masked())
      for (std::size_t i = 0; i < m->mask.size(); ++i)
        if (m->mask[i] == 0) theta[m->lin.w + i] = 0.5;
    const auto in = randn(B * (L + C), rng);
    theta.insert(theta.end(), in.begin(), in.end());
    grad.assign(theta.size(), 0.0);
    w.reserve(made, B);
    z_out.assign(B * L, 0.0);
    dz_out.assign(B * L, 0.0);
    dz_in.assign(B * L, 0.0);
    dh.assign(B * C, 0.0);
    ones.assign(B, 1.0);
  }
  MatView<double> z() { return mat(theta.data() + n_params, B, L); }
  MatView<double> h() { return mat(theta.data() + n_params + B * L, B, C); }
  void made_forward() {
    auto m = w.m.view(B), s = w.s.view(B);
    made.forward(m, s, w.made, z(), h(), theta.data(), B);
  }
  void step_forward(double fb) {
    auto zo = mat(z_out.data(), B, L);
    iaf_step_forward(zo, w, made, z(), h(), fb, theta.data(), B);
  }
  std::vector<Group> groups() const {
    std::vector<Group> g;
    for (std::size_t k = 0; k < made.hidden.size(); ++k) {
      g.push_back({"h" + std::to_string(k) + ".W", made.hidden[k].lin.w,
                   made.hidden[k].lin.in * made.hidden[k].lin.out});
      g.push_back({"h" + std::to_string(k) + ".b", made.hidden[k].lin.b, made.hidden[k].lin.out});
    }
    if (C > 0) g.push_back({"ctx.W", made.ctx, made.width * C});
    g.push_back({"m.W", made.out_m.lin.w, L * made.width});
    g.push_back({"m.b", made.out_m.lin.b, L});
    g.push_back({"s.W", made.out_s.lin.w, L * made.width});
    g.push_back({"s.b", made.out_s.lin.b, L});
    g.push_back({"z", n_params, B * L});
    if (C > 0) g.push_back({"h", n_params + B * L, B * C});
    return g;
  }
};

// log |det A| of a small dense matrix by Gaussian elimination with partial pivoting.
double log_abs_det(std::vector<double> a, std::size_t n) {
  double s = 0;
  for (std::size_t k = 0; k < n; ++k) {
    std::size_t p = k;
    for (std::size_t i = k + 1; i < n; ++i)
      if (std::abs(a[i * n + k]) > std::abs(a[p * n + k])) p = i;
    if (p != k)
      for (std::size_t j = 0; j < n; ++j) std::swap(a[k * n + j], a[p * n + j]);
    s += std::log(std::abs(a[k * n + k]));
    for (std::size_t i = k + 1; i < n; ++i) {
      const double f = a[i * n + k] / a[k * n + k];
      for (std::size_t j = k; j < n; ++j) a[i * n + j] -= f * a[k * n + j];
    }
  }
  return s;
}

// Central-difference Jacobian d out[row r] / d in[row r] (L x L) of a row-wise map.
template <class F>
std::vector<double> row_jacobian(double* in, const double* out, std::size_t r, std::size_t L, F&& run,
                                 double h = 1e-6) {
  std::vector<double> J(L * L);
  for (std::size_t j = 0; j < L; ++j) {
    const double x0 = in[r * L + j];
    in[r * L + j] = x0 + h;
    run();
    std::vector<double> up(out + r * L, out + (r + 1) * L);
    in[r * L + j] = x0 - h;
    run();
    for (std::size_t i = 0; i < L; ++i) J[i * L + j] = (up[i] - out[r * L + i]) / (2 * h);
    in[r * L + j] = x0;
  }
  run();
  return J;
}

VaeShape iaf_shape(std::size_t steps, std::size_t layers, std::size_t context, Activation act) {
  VaeShape s;
  s.data_dim = 7;
  s.latent = 4;
  s.hidden = {6, 5};
  s.activation = act;
  s.posterior = PosteriorKind::Iaf;
  s.iaf.steps = steps;
  s.iaf.hidden = 9;
  s.iaf.layers = layers;
  s.iaf.context = context;
  s.iaf.forget_bias = 1.0;
  return s;
}

void fill_batch(Vae<double>& model, Vae<double>::Work& w, std::size_t B, bool binary, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (std::size_t i = 0; i < B * model.shape.data_dim; ++i)
    w.x.data[i] = binary ? double(u(rng) < 0.4) : u(rng);
  std::normal_distribution<double> n(0.0, 1.0);
  for (std::size_t i = 0; i < B * model.shape.latent; ++i) w.eps.data[i] = n(rng);
}

// A small made-up image set for the evaluation functions (binary pixels, scale 1).
data::Images tiny_images(std::size_t n, std::size_t rows, std::size_t cols, uint64_t seed) {
  data::Images im;
  im.n = n;
  im.rows = rows;
  im.cols = cols;
  im.scale = 1.0f;
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution b(0.3);
  im.pixels.resize(n * rows * cols);
  for (auto& p : im.pixels) p = uint8_t(b(rng));
  return im;
}

}  // namespace

TEST_CASE("MADE: output i depends only on inputs earlier in the order (numerical Jacobian)", "[iaf][made]") {
  for (std::size_t layers : {1, 2, 3})
    for (std::size_t t : {0, 1}) {
      DYNAMIC_SECTION("layers " << layers << ", order " << (t ? "reversed" : "natural")) {
        const std::size_t L = 6, B = 2;
        StepFixture f(B, L, 3, 11, layers, Activation::Tanh, t, 10 + layers + t);
        f.made_forward();
        std::vector<double> m_out(B * L), s_out(B * L);
        auto run = [&]() {
          f.made_forward();
          std::copy(f.w.m.ptr(), f.w.m.ptr() + B * L, m_out.begin());
          std::copy(f.w.s.ptr(), f.w.s.ptr() + B * L, s_out.begin());
        };
        run();
        for (std::size_t r = 0; r < B; ++r) {
          double* z = f.theta.data() + f.n_params;
          const auto Jm = row_jacobian(z, m_out.data(), r, L, run);
          const auto Js = row_jacobian(z, s_out.data(), r, L, run);
          double allowed = 0;
          for (std::size_t i = 0; i < L; ++i)
            for (std::size_t j = 0; j < L; ++j) {
              if (f.made.degree[j] >= f.made.degree[i]) {
                INFO("d out_" << i << " / d z_" << j);
                CHECK(Jm[i * L + j] == 0.0);  // masked: exactly no path, not just small
                CHECK(Js[i * L + j] == 0.0);
              } else {
                allowed += std::abs(Jm[i * L + j]) + std::abs(Js[i * L + j]);
              }
            }
          CHECK(allowed > 1e-3);  // and the allowed dependencies do exist
        }
      }
    }
}

TEST_CASE("IAF step: Jacobian is triangular with diagonal sigma, and log|det J| = sum log sigma",
          "[iaf][logdet]") {
  for (std::size_t t : {0, 1}) {
    DYNAMIC_SECTION("order " << (t ? "reversed" : "natural")) {
      const std::size_t L = 5, B = 3;
      StepFixture f(B, L, 2, 8, 2, Activation::ELU, t, 20 + t);
      auto run = [&]() { f.step_forward(1.0); };
      run();
      for (std::size_t r = 0; r < B; ++r) {
        double* z = f.theta.data() + f.n_params;
        const auto J = row_jacobian(z, f.z_out.data(), r, L, run);
        double sum_logsig = 0;
        for (std::size_t i = 0; i < L; ++i) {
          sum_logsig += f.w.logsig.data[r * L + i];
          CHECK(J[i * L + i] == Approx(f.w.sig.data[r * L + i]).epsilon(1e-8));
          CHECK(std::log(f.w.sig.data[r * L + i]) == Approx(f.w.logsig.data[r * L + i]).epsilon(1e-13));
          for (std::size_t j = 0; j < L; ++j)
            if (f.made.degree[j] > f.made.degree[i]) CHECK(J[i * L + j] == 0.0);
        }
        // log q(z_out) = log q(z_in) - log|det J|, and the step subtracts sum log sigma.
        CHECK(log_abs_det(J, L) == Approx(sum_logsig).epsilon(1e-8));
      }
    }
  }
}

TEST_CASE("IAF flow: log q(z_T|x) is the change-of-variables density of the whole flow", "[iaf][logdet]") {
  // z_T = F(eps) with z_0 = mu + sigma eps and T steps of alternating order; then
  //   log q(z_T) = log N(eps; 0, I) - log |det dz_T/deps|   (numerically, L x L).
  for (std::size_t steps : {1, 3}) {
    DYNAMIC_SECTION(steps << " steps") {
      Vae<double> model(iaf_shape(steps, 2, 3, Activation::Tanh), Likelihood<double>{});
      std::mt19937_64 rng(5);
      model.initialize(Init::Uniform, 0, rng);
      const std::size_t B = 3, L = model.shape.latent;
      Vae<double>::Work w;
      model.reserve(w, B);
      fill_batch(model, w, B, true, rng);
      model.encode(w, B);
      auto run = [&]() { model.posterior_forward(w, B); };
      run();
      model.log_densities(w, B);
      for (std::size_t r = 0; r < B; ++r) {
        const auto J = row_jacobian(w.eps.ptr(), w.z.ptr(), r, L, run);
        double log_n = 0;
        for (std::size_t l = 0; l < L; ++l) log_n += -0.5 * w.eps.data[r * L + l] * w.eps.data[r * L + l];
        log_n -= 0.5 * double(L) * kLog2Pi;
        CHECK(w.log_q[r] == Approx(log_n - log_abs_det(J, L)).epsilon(1e-8));
        // and the single-sample KL rows are log q - log p
        double kl = 0;
        for (std::size_t l = 0; l < L; ++l) kl += w.kl.data[r * L + l];
        CHECK(kl == Approx(w.log_q[r] - w.log_p[r]).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("IAF with zero steps is the diagonal Gaussian, number for number", "[iaf][zero]") {
  VaeShape gs = iaf_shape(0, 2, 5, Activation::ReLU);
  gs.posterior = PosteriorKind::Gaussian;
  const VaeShape is = iaf_shape(0, 2, 5, Activation::ReLU);
  Vae<double> gauss(gs, Likelihood<double>{}), iaf(is, Likelihood<double>{});
  REQUIRE(iaf.num_params() == gauss.num_params());
  std::mt19937_64 r1(9), r2(9);
  gauss.initialize(Init::Uniform, 0, r1);
  iaf.initialize(Init::Uniform, 0, r2);
  REQUIRE(std::equal(gauss.params.begin(), gauss.params.end(), iaf.params.begin()));

  const std::size_t B = 5;
  Vae<double>::Work wg, wi;
  gauss.reserve(wg, 16);
  iaf.reserve(wi, 16);
  std::mt19937_64 rng(3);
  fill_batch(gauss, wg, B, true, rng);
  std::copy(wg.x.data.begin(), wg.x.data.end(), wi.x.data.begin());
  std::copy(wg.eps.data.begin(), wg.eps.data.end(), wi.eps.data.begin());
  std::fill(gauss.grads.begin(), gauss.grads.end(), 0.0);
  std::fill(iaf.grads.begin(), iaf.grads.end(), 0.0);
  const ObjectiveParams p{1.5, 0.0};
  const BatchLoss lg = loss_and_grad(gauss, wg, B, p), li = loss_and_grad(iaf, wi, B, p);
  CHECK(lg.loss == li.loss);
  CHECK(lg.kl == li.kl);
  CHECK(std::equal(gauss.grads.begin(), gauss.grads.end(), iaf.grads.begin()));

  // The flow evaluation code with T = 0 reproduces the Gaussian's evaluation.
  const data::Images im = tiny_images(23, 1, 7, 4);
  std::mt19937_64 e1(11), e2(11);
  const ElboReport rg = evaluate_elbo(gauss, wg, im, e1), ri = evaluate_elbo(iaf, wi, im, e2);
  CHECK(ri.elbo == rg.elbo);
  CHECK(ri.kl == rg.kl);
  CHECK(ri.metrics.at("active_units") == rg.metrics.at("active_units"));
  CHECK(ri.vector("mu_variance") == rg.vector("mu_variance"));
  std::mt19937_64 i1(12), i2(12);
  const double ng = iw_nll(gauss, wg, im, 0, 40, 16, i1), ni = iw_nll(iaf, wi, im, 0, 40, 16, i2);
  CHECK(ni == Approx(ng).epsilon(1e-13));  // z by xsimd's exp vs std::exp: rounding only
}

TEST_CASE("MADE gradients match finite differences (parameters, z and context)", "[iaf][gradcheck]") {
  for (Activation act : {Activation::Tanh, Activation::ELU, Activation::ReLU})
    for (std::size_t layers : {1, 2})
      for (std::size_t C : {0, 3}) {
        DYNAMIC_SECTION("act " << int(act) << ", layers " << layers << ", context " << C) {
          const std::size_t B = 3, L = 4;
          StepFixture f(B, L, C, 7, layers, act, layers - 1, 30 + layers + C);
          std::mt19937_64 rng(31);
          const auto rm = randn(B * L, rng), rs = randn(B * L, rng);
          auto loss = [&]() {
            f.made_forward();
            double s = 0;
            for (std::size_t i = 0; i < B * L; ++i) s += rm[i] * f.w.m.data[i] + rs[i] * f.w.s.data[i];
            return s;
          };
          loss();
          std::fill(f.grad.begin(), f.grad.end(), 0.0);
          auto dm = mat(const_cast<double*>(rm.data()), B, L), ds = mat(const_cast<double*>(rs.data()), B, L);
          auto dz = mat(f.grad.data() + f.n_params, B, L), dh = mat(f.grad.data() + f.n_params + B * L, B, C);
          f.made.backward(&dz, C > 0 ? &dh : nullptr, f.w.made, dm, ds, f.z(), f.h(), f.theta.data(),
                          f.grad.data(), B);
          // Masked weights get no gradient at all.
          for (const auto* m : f.made.masked())
            for (std::size_t i = 0; i < m->mask.size(); ++i)
              if (m->mask[i] == 0) REQUIRE(f.grad[m->lin.w + i] == 0.0);
          CHECK(max_rel_error(f.theta, f.grad, loss, f.groups()) <= 1e-6);
        }
      }
}

TEST_CASE("IAF step gradients match finite differences (through z_out and log sigma)", "[iaf][gradcheck]") {
  for (std::size_t t : {0, 1})
    for (double fb : {1.0, -0.5}) {
      DYNAMIC_SECTION("order " << t << ", forget bias " << fb) {
        const std::size_t B = 3, L = 5, C = 2;
        StepFixture f(B, L, C, 8, 2, Activation::Tanh, t, 40 + t);
        std::mt19937_64 rng(41);
        const auto r = randn(B * L, rng), kw = randn(L, rng);
        // loss = sum r z_out - sum_{b,l} kw[l] log sigma[b,l]
        auto loss = [&]() {
          f.step_forward(fb);
          double s = 0;
          for (std::size_t i = 0; i < B * L; ++i) s += r[i] * f.z_out[i] - kw[i % L] * f.w.logsig.data[i];
          return s;
        };
        loss();
        std::fill(f.grad.begin(), f.grad.end(), 0.0);
        auto dzo = mat(const_cast<double*>(r.data()), B, L);
        auto dz = mat(f.grad.data() + f.n_params, B, L), dh = mat(f.grad.data() + f.n_params + B * L, B, C);
        auto kwv = vec(const_cast<double*>(kw.data()), L);
        iaf_step_backward(dz, &dh, f.w, f.made, dzo, kwv, f.z(), f.h(), f.theta.data(), f.grad.data(), B);
        CHECK(max_rel_error(f.theta, f.grad, loss, f.groups()) <= 1e-6);
      }
    }
}

TEST_CASE("whole IAF VAE gradient matches finite differences", "[iaf][gradcheck]") {
  struct Case {
    std::size_t steps, layers, context;
    Activation act;
    LikelihoodKind kind;
    double free_bits;
    FlowKl kl;
  };
  const Case cases[] = {
      {1, 1, 0, Activation::Tanh, LikelihoodKind::Bernoulli, 0.0, FlowKl::Sample},
      {2, 2, 3, Activation::ELU, LikelihoodKind::Bernoulli, 0.0, FlowKl::Sample},
      {3, 1, 2, Activation::Softplus, LikelihoodKind::Gaussian, 0.0, FlowKl::Sample},
      {2, 2, 3, Activation::ReLU, LikelihoodKind::Bernoulli, 0.0, FlowKl::Sample},
      // Per-coordinate weights (what free bits would set); the configuration rejects free
      // bits with IAF, but the gradient of a weighted sum must still be right.
      {2, 1, 3, Activation::Tanh, LikelihoodKind::Bernoulli, 0.05, FlowKl::Sample},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.steps << " steps, MADE layers " << c.layers << ", context " << c.context << ", act "
                            << int(c.act) << ", free bits " << c.free_bits) {
      Likelihood<double> lik;
      lik.kind = c.kind;
      if (c.kind == LikelihoodKind::Gaussian) {
        lik.sigma = SigmaMode::Learned;
        lik.min_log_sigma = -2.0;
      }
      VaeShape shape = iaf_shape(c.steps, c.layers, c.context, c.act);
      shape.iaf.kl = c.kl;
      Vae<double> model(shape, lik);
      std::mt19937_64 rng(50 + c.steps);
      model.initialize(Init::Uniform, 0, rng);
      if (model.lik.has_shared_param()) model.params[model.lik.shared_offset] = -0.4;
      const std::size_t B = 4;
      Vae<double>::Work w;
      model.reserve(w, 8);
      fill_batch(model, w, B, c.kind == LikelihoodKind::Bernoulli, rng);
      const ObjectiveParams p{2.0, c.free_bits};
      std::fill(model.grads.begin(), model.grads.end(), 0.0);
      const BatchLoss l = loss_and_grad(model, w, B, p);
      REQUIRE(std::isfinite(l.loss));
      if (c.free_bits > 0) {  // the case must exercise both clamped and free coordinates
        const auto& kw = w.unit_weight;
        CHECK(std::count(kw.begin(), kw.end(), 0.0) > 0);
        CHECK(std::count(kw.begin(), kw.end(), 0.0) < std::ptrdiff_t(kw.size()));
      }
      std::vector<double> analytic(model.grads.begin(), model.grads.end());
      auto f = [&]() {
        model.forward(w, B);
        return elbo_objective(model, w, B, p).loss;
      };
      std::vector<Group> groups;
      for (const auto& g : model.param_groups()) groups.push_back({g.name, g.offset, g.size});
      std::size_t covered = 0;
      for (const auto& g : groups) covered += g.size;
      REQUIRE(covered == model.num_params());
      CHECK(max_rel_error(model.params, analytic, f, groups) <= 1e-6);
    }
  }
}

using vae::testing::expect_near;
using vae::testing::put;

TEST_CASE("IAF step equals PyTorch's: m, s, z_out, log sigma and gradients", "[iaf][golden]") {
  const json golden = vae::testing::load_golden("iaf_small.json");
  REQUIRE(golden["steps"].size() >= 2);
  for (const json& c : golden["steps"]) {
    DYNAMIC_SECTION(c["name"].get<std::string>()) {
      const std::size_t B = c["B"], L = c["L"], C = c["C"], W = c["W"], layers = c["layers"], t = c["t"];
      StepFixture f(B, L, C, W, layers, parse_activation(c["activation"]), t, 1);
      std::size_t filled = 0;
      for (const auto& g : f.groups()) {
        if (g.name == "z" || g.name == "h") continue;
        put(f.theta, g.offset, c["params"][g.name]);
        REQUIRE(c["params"][g.name].size() == g.size);
        filled += g.size;
      }
      REQUIRE(filled == f.n_params);
      put(f.theta, f.n_params, c["z"]);
      put(f.theta, f.n_params + B * L, c["h"]);
      const double fb = c["forget_bias"];
      f.step_forward(fb);
      const double tol = 1e-10;
      expect_near(f.w.m.ptr(), c["m"], tol, "m");
      expect_near(f.w.s.ptr(), c["s"], tol, "s");
      expect_near(f.z_out.data(), c["z_out"], tol, "z_out");
      expect_near(f.w.logsig.ptr(), c["logsig"], tol, "log sigma");
      std::vector<double> r = c["r"].get<std::vector<double>>(), kw = c["kw"].get<std::vector<double>>();
      double loss = 0;
      for (std::size_t i = 0; i < B * L; ++i) loss += r[i] * f.z_out[i] - kw[i % L] * f.w.logsig.data[i];
      CHECK(loss == Approx(c["loss"].get<double>()).epsilon(tol));
      std::fill(f.grad.begin(), f.grad.end(), 0.0);
      auto dzo = mat(r.data(), B, L);
      auto dz = mat(f.grad.data() + f.n_params, B, L), dh = mat(f.grad.data() + f.n_params + B * L, B, C);
      auto kwv = vec(kw.data(), L);
      iaf_step_backward(dz, C > 0 ? &dh : nullptr, f.w, f.made, dzo, kwv, f.z(), f.h(), f.theta.data(),
                        f.grad.data(), B);
      for (const auto& g : f.groups())
        expect_near(f.grad.data() + g.offset, c["grads"][g.name], tol, "grad " + g.name);
    }
  }
}

TEST_CASE("IAF VAE forward, loss and gradients equal PyTorch's", "[iaf][golden]") {
  const json golden = vae::testing::load_golden("iaf_small.json");
  REQUIRE(golden["vaes"].size() >= 1);
  for (const json& c : golden["vaes"]) {
    DYNAMIC_SECTION(c["name"].get<std::string>()) {
      VaeShape shape;
      shape.data_dim = c["D"];
      shape.latent = c["latent"];
      shape.hidden = c["hidden"].get<std::vector<std::size_t>>();
      shape.activation = parse_activation(c["activation"]);
      shape.posterior = PosteriorKind::Iaf;
      shape.iaf.steps = c["steps"];
      shape.iaf.hidden = c["made_width"];
      shape.iaf.layers = c["made_layers"];
      shape.iaf.context = c["context"];
      shape.iaf.forget_bias = c["forget_bias"];
      shape.iaf.kl = c["kl_estimator"] == "sample" ? FlowKl::Sample : FlowKl::Stl;
      Vae<double> model(shape, Likelihood<double>{});
      std::size_t filled = 0;
      for (const auto& g : model.param_groups()) {
        REQUIRE(c["params"].contains(g.name));
        REQUIRE(c["params"][g.name].size() == g.size);
        put(model.params, g.offset, c["params"][g.name]);
        filled += g.size;
      }
      REQUIRE(filled == model.num_params());
      REQUIRE(c["params"].size() == model.param_groups().size());
      const std::size_t B = c["batch"], L = shape.latent;
      Vae<double>::Work w;
      model.reserve(w, B);
      put(w.x.data, 0, c["x"]);
      put(w.eps.data, 0, c["eps"]);
      std::fill(model.grads.begin(), model.grads.end(), 0.0);
      const BatchLoss l = loss_and_grad(model, w, B, ObjectiveParams{c["beta"], 0.0});
      const double tol = 1e-10;
      expect_near(w.z.ptr(), c["z"], tol, "z_T");
      expect_near(w.rec.data(), c["rec"], tol, "-log p(x|z)");
      std::vector<double> kl_rows(B, 0.0);
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t j = 0; j < L; ++j) kl_rows[b] += w.kl.data[b * L + j];
      expect_near(kl_rows.data(), c["kl"], tol, "the KL estimate per example");
      model.log_densities(w, B);
      expect_near(w.log_q.data(), c["log_q"], tol, "log q(z_T|x)");
      CHECK(l.loss == Approx(c["loss"].get<double>()).epsilon(tol));
      for (const auto& g : model.param_groups())
        expect_near(model.grads.data() + g.offset, c["grads"][g.name], tol, "grad " + g.name);
    }
  }
}

TEST_CASE("IAF --iaf-kl stl: the gradient without the base score term", "[iaf][kl]") {
  // Sticking the landing (Roeder et al. 2017) drops kw * d log N(z_0; mu, sigma^2)/d(mu, logvar)
  // at fixed z_0 = kw * (eps / sigma, (eps^2 - 1) / 2). Checked three ways: (1) at the
  // encoder heads the two gradients differ by exactly that term; (2) averaged over noise,
  // the parameter gradients agree (the term has mean zero); (3) where q_T is the prior, the
  // KL's STL gradient vanishes while the exact one is noise. (The PyTorch golden case
  // checks the STL gradient of every parameter, as a detach() of mu and logvar in log q_0.)
  const std::size_t B = 64, L = 4;
  auto make = [&](FlowKl est, double forget_bias) {
    VaeShape s = iaf_shape(2, 2, 3, Activation::Tanh);
    s.iaf.kl = est;
    s.iaf.forget_bias = forget_bias;
    return s;
  };
  SECTION("the difference is the score term") {
    Vae<double> a(make(FlowKl::Sample, 1.0), Likelihood<double>{}),
        b(make(FlowKl::Stl, 1.0), Likelihood<double>{});
    std::mt19937_64 r1(81), r2(81);
    a.initialize(Init::Uniform, 0, r1);
    b.initialize(Init::Uniform, 0, r2);
    Vae<double>::Work wa, wb;
    a.reserve(wa, B);
    b.reserve(wb, B);
    std::mt19937_64 rng(82);
    fill_batch(a, wa, B, true, rng);
    wb.x.data = wa.x.data;
    wb.eps.data = wa.eps.data;
    const ObjectiveParams p{1.7, 0.0};
    std::fill(a.grads.begin(), a.grads.end(), 0.0);
    std::fill(b.grads.begin(), b.grads.end(), 0.0);
    const BatchLoss la = loss_and_grad(a, wa, B, p), lb = loss_and_grad(b, wb, B, p);
    CHECK(la.loss == lb.loss);  // same value
    const double kw = 1.7 / double(B);
    for (std::size_t i = 0; i < B * L; ++i) {
      const double e = wa.eps.data[i], sd = std::exp(0.5 * wa.logvar.data[i]);
      CHECK(wb.dmu.data[i] == Approx(wa.dmu.data[i] - kw * e / sd).margin(1e-14));
      CHECK(wb.dlogvar.data[i] == Approx(wa.dlogvar.data[i] - kw * 0.5 * (e * e - 1)).margin(1e-14));
    }
  }
  SECTION("same expected gradient") {
    Vae<double> a(make(FlowKl::Sample, 1.0), Likelihood<double>{}),
        b(make(FlowKl::Stl, 1.0), Likelihood<double>{});
    std::mt19937_64 r1(83), r2(83);
    a.initialize(Init::Uniform, 0, r1);
    b.initialize(Init::Uniform, 0, r2);
    Vae<double>::Work wa, wb;
    a.reserve(wa, B);
    b.reserve(wb, B);
    std::mt19937_64 rng(84);
    fill_batch(a, wa, 1, true, rng);
    const std::size_t D = a.shape.data_dim;
    for (std::size_t r = 1; r < B; ++r) std::copy(wa.x.ptr(), wa.x.ptr() + D, wa.x.ptr() + r * D);
    wb.x.data = wa.x.data;
    std::normal_distribution<double> n(0, 1);
    const std::size_t P = a.num_params();
    std::vector<double> sum(P, 0.0), sq(P, 0.0);
    const int rounds = 200;
    for (int k = 0; k < rounds; ++k) {
      for (std::size_t i = 0; i < B * L; ++i) wa.eps.data[i] = n(rng);
      wb.eps.data = wa.eps.data;
      std::fill(a.grads.begin(), a.grads.end(), 0.0);
      std::fill(b.grads.begin(), b.grads.end(), 0.0);
      loss_and_grad(a, wa, B, ObjectiveParams{1.0, 0.0});
      loss_and_grad(b, wb, B, ObjectiveParams{1.0, 0.0});
      for (std::size_t i = 0; i < P; ++i) {
        const double d = a.grads[i] - b.grads[i];
        sum[i] += d;
        sq[i] += d * d;
      }
    }
    // Every coordinate's mean difference within 5 standard errors (a few hundred coordinates).
    int outside = 0, nonzero = 0;
    for (std::size_t i = 0; i < P; ++i) {
      const double m = sum[i] / rounds, se = std::sqrt(std::max(0.0, sq[i] / rounds - m * m) / rounds);
      if (se > 0) ++nonzero;
      if (std::abs(m) > 5 * se + 1e-15) ++outside;
    }
    CHECK(nonzero > 100);
    CHECK(outside == 0);
  }
  SECTION("no KL gradient noise where q is the prior") {
    // One step that is the identity to ~1e-13 (forget bias 30: sigma = 1 - 9e-14) on a base
    // Gaussian equal to the prior (encoder heads mu, logvar zeroed): q_T = p.
    for (FlowKl est : {FlowKl::Sample, FlowKl::Stl}) {
      VaeShape s = make(est, 30.0);
      s.iaf.steps = 1;
      Vae<double> m(s, Likelihood<double>{});
      std::mt19937_64 r(85);
      m.initialize(Init::Uniform, 0, r);
      std::size_t zeroed = 0;
      for (const ParamRange& g : m.param_groups())
        if (g.name.rfind("enc_mu.", 0) == 0 || g.name.rfind("enc_logvar.", 0) == 0) {
          std::fill_n(m.params.begin() + std::ptrdiff_t(g.offset), g.size, 0.0);
          ++zeroed;
        }
      REQUIRE(zeroed == 4);
      Vae<double>::Work w;
      m.reserve(w, B);
      std::mt19937_64 rng(86);
      fill_batch(m, w, B, true, rng);
      m.forward(w, B);
      elbo_objective(m, w, B, ObjectiveParams{1.0, 0.0});
      std::fill(m.grads.begin(), m.grads.end(), 0.0);
      m.backward(w, B, 0.0);  // the KL's gradient alone (rec_scale 0)
      double worst = 0;
      for (std::size_t i = 0; i < B * L; ++i)
        worst = std::max({worst, std::abs(w.dmu.data[i]), std::abs(w.dlogvar.data[i])});
      INFO((est == FlowKl::Stl ? "stl" : "sample") << ": largest |dKL/dmu|, |dKL/dlogvar| " << worst);
      if (est == FlowKl::Stl) CHECK(worst < 1e-10);
      else CHECK(worst > 1e-3);
    }
  }
}

TEST_CASE("IAF importance weights: log w = -(rec + sampled KL), and the bound tightens with K", "[iaf][eval]") {
  Vae<double> model(iaf_shape(2, 2, 3, Activation::Tanh), Likelihood<double>{});
  std::mt19937_64 rng(61);
  model.initialize(Init::Uniform, 0, rng);
  const std::size_t B = 6, L = model.shape.latent;
  Vae<double>::Work w;
  model.reserve(w, 64);
  fill_batch(model, w, B, true, rng);
  model.forward(w, B);
  std::vector<double> lw(B);
  model.log_weights(w, B, lw.data());
  for (std::size_t b = 0; b < B; ++b) {
    double kl = 0;
    for (std::size_t l = 0; l < L; ++l) kl += w.kl.data[b * L + l];
    CHECK(lw[b] == Approx(-(w.rec[b] + kl)).epsilon(1e-12));
  }
  // E[IW bound] rises with K (Burda et al. 2015): on average over many examples the
  // K = 64 estimate of -log p(x) is below the K = 1 one (which is -ELBO in expectation).
  const data::Images im = tiny_images(200, 1, 7, 8);
  std::mt19937_64 a(1), b(1), c(2);
  const double nll1 = iw_nll(model, w, im, 0, 1, 64, a), nll64 = iw_nll(model, w, im, 0, 64, 64, b);
  const ElboReport r = evaluate_elbo(model, w, im, c);
  CHECK(nll64 < nll1);
  CHECK(nll64 < -r.elbo);
  CHECK(std::abs(nll1 + r.elbo) < 0.05 * std::abs(r.elbo));  // two single-sample estimates of one number
}

TEST_CASE("IAF options: free bits are refused, the model is built from the configuration", "[iaf][config]") {
  ConfigMap c = default_config();
  apply(c, {{"posterior", std::string("iaf")}, {"free-bits", 0.5}});
  CHECK_THROWS_AS(to_train_config(c), ConfigError);
  apply(c, {{"iaf-steps", int64_t(0)}});
  CHECK_NOTHROW(to_train_config(c));  // 0 steps is the Gaussian, where free bits are defined
  apply(c, {{"iaf-steps", int64_t(3)},
            {"free-bits", 0.0},
            {"latent", int64_t(8)},
            {"hidden", std::vector<int64_t>{20}},
            {"iaf-hidden", int64_t(12)},
            {"iaf-made-layers", int64_t(1)},
            {"iaf-context", int64_t(5)}});
  const TrainConfig tc = to_train_config(c);
  std::mt19937_64 rng(0);
  auto model = make_model(tc, 28, 28, rng);
  // Gaussian VAE + context head (20 -> 5) + 3 MADEs: (8 -> 12) + ctx 12x5 + 2 x (12 -> 8)
  const std::size_t gauss = (784 * 20 + 20) + 2 * (20 * 8 + 8) + (8 * 20 + 20) + (20 * 784 + 784);
  const std::size_t made = (8 * 12 + 12) + 12 * 5 + 2 * (12 * 8 + 8);
  CHECK(model->num_params() == gauss + (20 * 5 + 5) + 3 * made);
  CHECK(model->latent_dim() == 8);
}

TEST_CASE("a small IAF run trains, evaluates, and its IW log-likelihood is tighter than its ELBO",
          "[iaf][train]") {
  ConfigMap c = default_config();
  apply(c, {{"train-size", int64_t(1000)},
            {"test-size", int64_t(100)},
            {"hidden", std::vector<int64_t>{64}},
            {"latent", int64_t(8)},
            {"batch", int64_t(50)},
            {"epochs", int64_t(3)},
            {"iw-samples", int64_t(100)},
            {"iw-examples", int64_t(100)},
            {"posterior", std::string("iaf")},
            {"iaf-steps", int64_t(2)},
            {"iaf-hidden", int64_t(32)},
            {"iaf-context", int64_t(16)}});
  RunOptions o;
  o.quiet = true;
  const RunResult r = train_and_evaluate(c, o, nullptr);
  REQUIRE(r.status == "done");
  REQUIRE(r.train_loss_curve.size() == 3);
  CHECK(r.train_loss_curve.back() < r.train_loss_curve.front());
  const double elbo = r.metrics.at("test_elbo"), nll = r.metrics.at("test_nll");
  CHECK(std::isfinite(nll));
  CHECK(nll < -elbo);
  CHECK(r.metrics.count("active_units_base") == 1);
  CHECK(r.unit_vectors.at("kl_per_dim").size() == 8);
}

}  // namespace test_iaf
