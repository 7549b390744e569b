// Properties the papers' formulas imply: each would fail if a formula were written wrongly.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "models/algorithms.hpp"
#include "models/vae.hpp"

// This file's names stay its own: the model tests compile in unity groups (CMakeLists.txt).
namespace test_properties {

using namespace vae;

TEST_CASE("analytic KL to N(0, I) agrees with a Monte-Carlo estimate", "[prob][kl]") {
  const double mu_v[3] = {0.3, -1.2, 2.0}, logvar_v[3] = {-0.5, 0.8, -2.0};
  std::vector<double> mu(mu_v, mu_v + 3), logvar(logvar_v, logvar_v + 3), kl(3);
  auto M = mat(mu.data(), 1, 3), LV = mat(logvar.data(), 1, 3), KL = mat(kl.data(), 1, 3);
  kl_forward(KL, M, LV);
  std::mt19937_64 rng(7);
  std::normal_distribution<double> n(0, 1);
  for (int d = 0; d < 3; ++d) {
    // KL = E_q[log q(z) - log p(z)], z = mu + sigma eps
    const int S = 200000;
    double sum = 0, sum2 = 0;
    const double sigma = std::exp(0.5 * logvar[d]);
    for (int s = 0; s < S; ++s) {
      const double e = n(rng), z = mu[d] + sigma * e;
      const double v = (-0.5 * e * e - 0.5 * logvar[d]) - (-0.5 * z * z);
      sum += v;
      sum2 += v * v;
    }
    const double mean = sum / S, se = std::sqrt((sum2 / S - mean * mean) / S);
    INFO("dim " << d << ": analytic " << kl[d] << ", MC " << mean << " +- " << se);
    CHECK(std::abs(kl[d] - mean) < 4 * se);
  }
  // and the closed form itself: KL(N(0.3, e^-0.5) || N(0,1)) by hand
  CHECK(kl[0] == Approx(0.5 * (0.09 + std::exp(-0.5) - 1 + 0.5)).epsilon(1e-14));
}

TEST_CASE("Gaussian decoder NLL is (x-m)^2 / (2 exp(s)^2) + s + log(2 pi)/2 per pixel", "[prob][sigma]") {
  // One pixel x = 0.3, decoder output 0 (sigmoid mean 0.5), sigma = 0.7. The poster's typo
  // exp((s*)^2) would give a different number.
  Likelihood<double> lik;
  lik.kind = LikelihoodKind::Gaussian;
  lik.sigma = SigmaMode::Fixed;
  lik.fixed_log_sigma = std::log(0.7);
  LikelihoodWork<double> w;
  w.reserve(1, 1);
  double out = 0.0, x = 0.3, nll = 0;
  auto O = mat(&out, 1, 1), X = mat(&x, 1, 1), none = mat(&out, 0, 0);
  auto N = vec(&nll, 1);
  likelihood_forward(N, w, lik, O, none, X, static_cast<const double*>(nullptr));
  const double s = std::log(0.7);
  CHECK(nll == Approx(0.04 / (2 * std::exp(s) * std::exp(s)) + s + 0.5 * std::log(2 * M_PI)).epsilon(1e-14));
  CHECK(nll != Approx(0.04 / (2 * std::exp(s * s)) + s + 0.5 * std::log(2 * M_PI)).epsilon(1e-6));
}

TEST_CASE("sigma* = sqrt(minibatch MSE) minimises the Gaussian NLL", "[prob][sigma]") {
  const std::size_t B = 5, D = 8;
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> n(0, 1);
  std::vector<double> x(B * D), out(B * D), nll(B);
  for (auto& v : x) v = u(rng);
  for (auto& v : out) v = n(rng);
  auto X = mat(x.data(), B, D), O = mat(out.data(), B, D), none = mat(out.data(), 0, 0);
  auto NLL = vec(nll.data(), B);
  LikelihoodWork<double> w;
  w.reserve(B, D);
  Likelihood<double> opt;
  opt.kind = LikelihoodKind::Gaussian;
  opt.sigma = SigmaMode::Optimal;
  opt.min_log_sigma = -40;  // soft clip inactive: test the minimiser itself
  likelihood_forward(NLL, w, opt, O, none, X, static_cast<const double*>(nullptr));
  const double s_star = w.shared_log_sigma;
  double mse = 0;
  for (std::size_t i = 0; i < B * D; ++i) {
    const double m = 1 / (1 + std::exp(-out[i]));
    mse += (x[i] - m) * (x[i] - m);
  }
  mse /= double(B * D);
  CHECK(s_star == Approx(std::log(std::sqrt(mse))).epsilon(1e-12));
  auto total_at = [&](double s) {
    Likelihood<double> fixed = opt;
    fixed.sigma = SigmaMode::Fixed;
    fixed.fixed_log_sigma = s;
    likelihood_forward(NLL, w, fixed, O, none, X, static_cast<const double*>(nullptr));
    double t = 0;
    for (double v : nll) t += v;
    return t;
  };
  const double at_star = total_at(s_star);
  for (double delta : {1e-3, 1e-2, 0.1, 1.0}) {
    CHECK(total_at(s_star + delta) > at_star);
    CHECK(total_at(s_star - delta) > at_star);
  }
}

TEST_CASE("soft clip keeps log sigma above its bound and is the identity far above it", "[prob][sigma]") {
  CHECK(softclip(-10.0, -6.0) > -6.0);
  CHECK(softclip(-10.0, -6.0) == Approx(-6.0 + std::log1p(std::exp(-4.0))));
  CHECK(softclip(-6.0, -6.0) == Approx(-6.0 + std::log(2.0)));
  CHECK(softclip(3.0, -6.0) == Approx(3.0).epsilon(1e-3));
}

namespace {
// A small double-precision VAE on random binary images.
struct Fixture {
  VaeShape shape;
  Vae<double> model;
  data::Images images;
  Vae<double>::Work work;
  Fixture() : shape(make_shape()), model(shape, Likelihood<double>{}) {
    std::mt19937_64 rng(11);
    model.initialize(Init::Uniform, 0, rng);
    images.n = 40;
    images.rows = 3;
    images.cols = 4;
    images.scale = 1.0f;
    std::bernoulli_distribution bit(0.3);
    images.pixels.resize(images.n * images.dim());
    for (auto& p : images.pixels) p = bit(rng);
    model.reserve(work, 256);
  }
  static VaeShape make_shape() {
    VaeShape s;
    s.data_dim = 12;
    s.latent = 3;
    s.hidden = {10};
    s.activation = Activation::Tanh;
    return s;
  }
};
}  // namespace

TEST_CASE("importance-weighted estimate bounds the ELBO and tightens with K", "[eval][iwae]") {
  Fixture f;
  // E[ELBO] over many noise draws, analytic KL
  double elbo = 0;
  const int repeats = 200;
  for (int r = 0; r < repeats; ++r) {
    std::mt19937_64 rng(100 + r);
    elbo += evaluate_elbo(f.model, f.work, f.images, rng).elbo;
  }
  elbo /= repeats;
  std::vector<double> nll;
  for (std::size_t K : {1, 10, 100, 1000}) {
    double mean = 0;
    for (int r = 0; r < 10; ++r) {
      std::mt19937_64 rng(1000 * K + r);
      mean += iw_nll(f.model, f.work, f.images, 0, K, 256, rng);
    }
    nll.push_back(mean / 10);
  }
  INFO("ELBO " << elbo << "; -NLL for K=1,10,100,1000: " << -nll[0] << " " << -nll[1] << " " << -nll[2] << " "
               << -nll[3]);
  CHECK(-nll[0] == Approx(elbo).epsilon(0.01));  // K = 1 is the ELBO (sampled KL)
  CHECK(-nll[1] > elbo);
  CHECK(nll[0] > nll[1]);
  CHECK(nll[1] > nll[2]);
  CHECK(nll[2] > nll[3]);
}

TEST_CASE("log-sum-exp is stable for large and -inf inputs", "[eval]") {
  const double v[3] = {1000.0, 1000.0, -INFINITY};
  CHECK(log_sum_exp(v, 3) == Approx(1000.0 + std::log(2.0)));
  const double w[2] = {-1e4, -1e4 - std::log(3.0)};
  CHECK(log_sum_exp(w, 2) == Approx(-1e4 + std::log(4.0 / 3.0)));
}

}  // namespace test_properties
