// Finite-difference gradient checks (double) of the layers, likelihoods and the whole VAE.
#include <catch2/catch.hpp>

#include "gradcheck.hpp"
#include "models/algorithms.hpp"
#include "models/vae.hpp"

// This file's names stay its own: the model tests compile in unity groups (CMakeLists.txt).
namespace test_gradcheck_vae {

using namespace vae;
using vae::test::max_rel_error;

namespace {

struct Case {
  const char* name;
  LikelihoodKind kind;
  SigmaMode sigma;
  Activation act;
  bool sigmoid_mean;
  bool log_sigma_head = false;  // the posterior's scale head gives log sigma (--posterior-head)
};

Likelihood<double> make_lik(const Case& c) {
  Likelihood<double> l;
  l.kind = c.kind;
  l.sigma = c.sigma;
  l.fixed_log_sigma = std::log(0.7);
  // Far below any s* here, so the soft clip is the identity to 1e-13 and s* is the exact
  // minimiser the envelope theorem needs.
  l.min_log_sigma = c.sigma == SigmaMode::Optimal ? -40.0 : -2.0;
  l.sigmoid_mean = c.sigmoid_mean;
  return l;
}

}  // namespace

TEST_CASE("whole VAE gradient matches finite differences for every activation and likelihood",
          "[gradcheck][vae]") {
  const Case cases[] = {
      {"bernoulli relu", LikelihoodKind::Bernoulli, SigmaMode::Fixed, Activation::ReLU, true},
      {"bernoulli tanh", LikelihoodKind::Bernoulli, SigmaMode::Fixed, Activation::Tanh, true},
      {"bernoulli softplus", LikelihoodKind::Bernoulli, SigmaMode::Fixed, Activation::Softplus, true},
      {"bernoulli sigmoid", LikelihoodKind::Bernoulli, SigmaMode::Fixed, Activation::Sigmoid, true},
      {"bernoulli elu", LikelihoodKind::Bernoulli, SigmaMode::Fixed, Activation::ELU, true},
      {"gaussian fixed", LikelihoodKind::Gaussian, SigmaMode::Fixed, Activation::Tanh, true},
      {"gaussian fixed identity mean", LikelihoodKind::Gaussian, SigmaMode::Fixed, Activation::ELU, false},
      {"gaussian learned", LikelihoodKind::Gaussian, SigmaMode::Learned, Activation::Tanh, true},
      {"gaussian optimal", LikelihoodKind::Gaussian, SigmaMode::Optimal, Activation::Tanh, true},
      {"gaussian per-pixel", LikelihoodKind::Gaussian, SigmaMode::PerPixel, Activation::Softplus, true},
      {"bernoulli tanh log-sigma head", LikelihoodKind::Bernoulli, SigmaMode::Fixed, Activation::Tanh, true,
       true},
  };
  for (const Case& c : cases) {
    for (double free_bits : {0.0, 0.3}) {
      DYNAMIC_SECTION(c.name << " free_bits=" << free_bits) {
        VaeShape shape;
        shape.data_dim = 7;
        shape.latent = 3;
        shape.hidden = {6, 5};
        shape.activation = c.act;
        shape.log_sigma_head = c.log_sigma_head;
        Vae<double> model(shape, make_lik(c));
        std::mt19937_64 rng(42);
        model.initialize(Init::Uniform, 0, rng);
        if (model.lik.has_shared_param()) model.params[model.lik.shared_offset] = -0.4;
        const std::size_t B = 4;
        typename Vae<double>::Work w;
        model.reserve(w, 8);
        std::uniform_real_distribution<double> u(0.0, 1.0);
        for (std::size_t i = 0; i < B * shape.data_dim; ++i)
          w.x.data[i] = c.kind == LikelihoodKind::Bernoulli ? double(u(rng) < 0.4) : u(rng);
        std::normal_distribution<double> n(0.0, 1.0);
        for (std::size_t i = 0; i < B * shape.latent; ++i) w.eps.data[i] = n(rng);
        ObjectiveParams p{2.0, free_bits};

        std::fill(model.grads.begin(), model.grads.end(), 0.0);
        BatchLoss l = loss_and_grad(model, w, B, p);
        REQUIRE(std::isfinite(l.loss));
        std::vector<double> analytic(model.grads.begin(), model.grads.end());
        auto f = [&]() {
          model.forward(w, B);
          return elbo_objective(model, w, B, p).loss;
        };
        std::vector<vae::test::Group> groups;
        std::size_t covered = 0;
        for (const auto& g : model.param_groups()) {
          groups.push_back({g.name, g.offset, g.size});
          covered += g.size;
        }
        REQUIRE(covered == model.num_params());  // every parameter is checked
        REQUIRE(groups.size() >= 10);
        double err = max_rel_error(model.params, analytic, f, groups);
        INFO("max relative error " << err);
        CHECK(err <= 1e-6);
      }
    }
  }
}

TEST_CASE("posterior-head log-sigma: the scale head's output a is log sigma, so logvar = 2a and z = mu + "
          "exp(a) eps",
          "[vae][posterior-head]") {
  VaeShape shape;
  shape.data_dim = 7;
  shape.latent = 3;
  shape.hidden = {6, 5};
  shape.activation = Activation::Tanh;
  VaeShape sigma_shape = shape;
  sigma_shape.log_sigma_head = true;
  Vae<double> log_var(shape, Likelihood<double>{}), log_sigma(sigma_shape, Likelihood<double>{});
  REQUIRE(log_var.num_params() == log_sigma.num_params());  // the same layout and the same draws
  std::mt19937_64 r1(5), r2(5);
  log_var.initialize(Init::Glorot, 0, r1);
  log_sigma.initialize(Init::Glorot, 0, r2);
  REQUIRE(log_var.params == log_sigma.params);
  const std::size_t B = 4;
  typename Vae<double>::Work wv, ws;
  log_var.reserve(wv, B);
  log_sigma.reserve(ws, B);
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> n(0.0, 1.0);
  for (std::size_t i = 0; i < B * shape.data_dim; ++i) wv.x.data[i] = ws.x.data[i] = double(u(rng) < 0.4);
  for (std::size_t i = 0; i < B * shape.latent; ++i) wv.eps.data[i] = ws.eps.data[i] = n(rng);
  log_var.forward(wv, B);
  log_sigma.forward(ws, B);
  for (std::size_t i = 0; i < B * shape.latent; ++i) {
    const double a = wv.logvar.data[i];  // the head's output, read as a log variance by the other model
    INFO("element " << i << ", a = " << a);
    CHECK(ws.mu.data[i] == wv.mu.data[i]);
    CHECK(ws.logvar.data[i] == Approx(2 * a).epsilon(1e-14));
    CHECK(ws.z.data[i] == Approx(wv.mu.data[i] + std::exp(a) * wv.eps.data[i]).epsilon(1e-12));
    CHECK(wv.z.data[i] == Approx(wv.mu.data[i] + std::exp(a / 2) * wv.eps.data[i]).epsilon(1e-12));
  }
}

TEST_CASE("gradient check catches a wrong gradient", "[gradcheck]") {
  // The harness itself must be able to fail: perturb one analytic component.
  std::vector<double> x{0.3, -1.2};
  auto f = [&]() { return x[0] * x[0] + std::sin(x[1]); };
  std::vector<double> good{2 * x[0], std::cos(x[1])};
  std::vector<vae::test::Group> groups{{"x0", 0, 1}, {"x1", 1, 1}};
  CHECK(max_rel_error(x, good, f, groups) < 1e-10);
  std::vector<double> bad{2 * x[0], std::cos(x[1]) * 1.00001};
  CHECK(max_rel_error(x, bad, f, groups) > 1e-6);
}

}  // namespace test_gradcheck_vae
