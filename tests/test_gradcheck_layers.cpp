// Finite-difference gradient checks (double) of each layer and likelihood on its own.
#include <catch2/catch.hpp>

#include "gradcheck.hpp"
#include "prob/likelihood.hpp"
#include "tensor/activation.hpp"
#include "tensor/linear.hpp"

// This file's names stay its own: the model tests compile in unity groups (CMakeLists.txt).
namespace test_gradcheck_layers {

using namespace vae;
using vae::test::max_rel_error;

namespace {
std::vector<double> randn(std::size_t n, std::mt19937_64& rng, double sd = 1.0) {
  std::vector<double> v(n);
  std::normal_distribution<double> d(0, sd);
  for (auto& x : v) x = d(rng);
  return v;
}
// A fixed random linear functional of a matrix: loss = sum(out * r), so dloss/dout = r.
double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}
}  // namespace

TEST_CASE("linear layer: weight, bias and input gradients", "[gradcheck][layers]") {
  std::mt19937_64 rng(1);
  const std::size_t B = 3, I = 5, O = 4;
  // theta = [W (O*I) | b (O) | in (B*I)]
  std::vector<double> theta = randn(O * I + O + B * I, rng);
  const std::vector<double> r = randn(B * O, rng), ones(B, 1.0);
  std::vector<double> out(B * O);
  auto loss = [&]() {
    auto W = mat(theta.data(), O, I);
    auto b = vec(theta.data() + O * I, O);
    auto in = mat(theta.data() + O * I + O, B, I);
    auto o = mat(out.data(), B, O);
    linear_forward(o, in, W, b);
    return dot(out, r);
  };
  loss();
  std::vector<double> grad(theta.size(), 0.0);
  {
    auto W = mat(theta.data(), O, I);
    auto in = mat(theta.data() + O * I + O, B, I);
    auto dW = mat(grad.data(), O, I);
    auto db = vec(grad.data() + O * I, O);
    auto din = mat(grad.data() + O * I + O, B, I);
    std::vector<double> rr = r;
    auto dout = mat(rr.data(), B, O);
    auto one = vec(const_cast<double*>(ones.data()), B);
    linear_backward(&din, dW, db, dout, in, W, one);
  }
  const double err = max_rel_error(theta, grad, loss,
                                   {{"W", 0, O * I}, {"b", O * I, O}, {"in", O * I + O, B * I}});
  CHECK(err <= 1e-6);
}

TEST_CASE("activations: input gradient", "[gradcheck][layers]") {
  for (auto [name, a] : {std::pair{"relu", Activation::ReLU},
                         {"tanh", Activation::Tanh},
                         {"softplus", Activation::Softplus},
                         {"sigmoid", Activation::Sigmoid},
                         {"elu", Activation::ELU},
                         {"identity", Activation::Identity}}) {
    DYNAMIC_SECTION(name) {
      std::mt19937_64 rng(2);
      const std::size_t B = 4, N = 6;
      std::vector<double> in = randn(B * N, rng, 2.0), out(B * N);
      const std::vector<double> r = randn(B * N, rng);
      auto loss = [&]() {
        auto i = mat(in.data(), B, N), o = mat(out.data(), B, N);
        activation_forward(o, i, a);
        return dot(out, r);
      };
      loss();
      std::vector<double> grad = r;
      auto g = mat(grad.data(), B, N);
      activation_backward(g, g, mat(in.data(), B, N), mat(out.data(), B, N), a);
      CHECK(max_rel_error(in, grad, loss) <= 1e-6);
    }
  }
}

TEST_CASE("likelihoods: gradients w.r.t. decoder outputs and the shared log sigma", "[gradcheck][layers]") {
  struct Mode {
    const char* name;
    LikelihoodKind kind;
    SigmaMode sigma;
    bool sigmoid_mean;
  };
  for (const Mode& m : {Mode{"bernoulli", LikelihoodKind::Bernoulli, SigmaMode::Fixed, true},
                        Mode{"gaussian fixed", LikelihoodKind::Gaussian, SigmaMode::Fixed, true},
                        Mode{"gaussian fixed identity", LikelihoodKind::Gaussian, SigmaMode::Fixed, false},
                        Mode{"gaussian learned", LikelihoodKind::Gaussian, SigmaMode::Learned, true},
                        Mode{"gaussian optimal", LikelihoodKind::Gaussian, SigmaMode::Optimal, true},
                        Mode{"gaussian per-pixel", LikelihoodKind::Gaussian, SigmaMode::PerPixel, true}}) {
    DYNAMIC_SECTION(m.name) {
      std::mt19937_64 rng(3);
      const std::size_t B = 3, D = 5;
      Likelihood<double> lik;
      lik.kind = m.kind;
      lik.sigma = m.sigma;
      lik.sigmoid_mean = m.sigmoid_mean;
      lik.fixed_log_sigma = -0.3;
      lik.min_log_sigma = m.sigma == SigmaMode::Optimal ? -40.0 : -1.5;  // see test_gradcheck_vae.cpp
      lik.shared_offset = 2 * B * D;
      // theta = [out (B*D) | raw log sigma (B*D) | shared raw log sigma]
      std::vector<double> theta = randn(2 * B * D + 1, rng);
      std::uniform_real_distribution<double> u(0, 1);
      std::vector<double> x(B * D), nll(B);
      for (auto& v : x) v = m.kind == LikelihoodKind::Bernoulli ? double(u(rng) < 0.5) : u(rng);
      // loss = scale * sum_b nll_b, the form the model's backward takes. (Uniform weights: s* of
      // the optimal mode minimises exactly this sum, which is what makes its zero gradient exact.)
      const double scale = 0.7;
      LikelihoodWork<double> w;
      w.reserve(B, D);
      auto loss = [&]() {
        auto out = mat(theta.data(), B, D), raw = mat(theta.data() + B * D, B, D), X = mat(x.data(), B, D);
        auto n = vec(nll.data(), B);
        likelihood_forward(n, w, lik, out, raw, X, theta.data());
        return scale * (nll[0] + nll[1] + nll[2]);
      };
      loss();
      std::vector<double> grad(theta.size(), 0.0);
      {
        auto out = mat(theta.data(), B, D), raw = mat(theta.data() + B * D, B, D), X = mat(x.data(), B, D);
        std::vector<double> dbuf(2 * B * D, 0.0);
        auto dO = mat(dbuf.data(), B, D), dR = mat(dbuf.data() + B * D, B, D);
        likelihood_backward(dO, dR, w, lik, out, raw, X, theta.data(), grad.data(), scale);
        for (std::size_t i = 0; i < B * D; ++i) {
          grad[i] = dbuf[i];
          grad[B * D + i] = lik.per_pixel() ? dbuf[B * D + i] : 0.0;
        }
      }
      std::vector<vae::test::Group> groups{{"out", 0, B * D}};
      if (lik.per_pixel()) groups.push_back({"raw log sigma", B * D, B * D});
      if (lik.has_shared_param()) groups.push_back({"shared log sigma", 2 * B * D, 1});
      CHECK(max_rel_error(theta, grad, loss, groups) <= 1e-6);
    }
  }
}

}  // namespace test_gradcheck_layers
