// Disentanglement metrics: the true factors score (near) 1, noise scores chance
// (MIG near 0), and no score changes when latent dimensions are permuted or rescaled.
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "data/dsprites.hpp"
#include "eval/disentangle.hpp"

using namespace vae::eval;
namespace ds = vae::data::dsprites;

namespace {

const std::vector<std::size_t> kSizes(ds::kFactorSizes.begin(), ds::kFactorSizes.end());
const std::vector<std::string> kNames(ds::kFactorNames.begin(), ds::kFactorNames.end());

DisentangleOptions small_options() {
  DisentangleOptions o;
  o.num_train = 1000;
  o.num_eval = 500;
  o.num_variance = 2000;
  o.batch = 32;
  return o;
}

// The factor classes themselves: a perfectly disentangled representation.
std::vector<double> truth(const std::vector<uint32_t>& c, std::size_t n) {
  return std::vector<double>(c.begin(), c.begin() + std::ptrdiff_t(n * ds::kNumFactors));
}

// Independent noise, nothing to do with the factors.
Representation noise(std::size_t L) {
  auto rng = std::make_shared<std::mt19937_64>(7);
  return [rng, L](const std::vector<uint32_t>&, std::size_t n) {
    std::normal_distribution<double> g;
    std::vector<double> z(n * L);
    for (double& v : z) v = g(*rng);
    return z;
  };
}

// Partly disentangled (so no score is pinned at 0 or 1): shape and scale mixed into
// one code, orientation noisy, positions clean, and two noise dimensions.
Representation partial() {
  auto rng = std::make_shared<std::mt19937_64>(11);
  return [rng](const std::vector<uint32_t>& c, std::size_t n) {
    std::normal_distribution<double> g;
    std::vector<double> z(n * 6);
    for (std::size_t i = 0; i < n; ++i) {
      const uint32_t* f = &c[i * 5];
      z[i * 6 + 0] = f[0] + 0.5 * f[1] + 0.3 * g(*rng);
      z[i * 6 + 1] = f[2] / 4.0 + 3.0 * g(*rng);
      z[i * 6 + 2] = f[3] + 0.2 * f[4] + g(*rng);
      z[i * 6 + 3] = f[4] + g(*rng);
      z[i * 6 + 4] = g(*rng);
      z[i * 6 + 5] = 0.5 * g(*rng) + 0.1 * f[1];
    }
    return z;
  };
}

// rep with its dimensions permuted (output j = input perm[j]) and each rescaled
// by scale[j] and shifted.
Representation transformed(Representation rep, std::vector<std::size_t> perm, std::vector<double> scale) {
  return [rep, perm, scale](const std::vector<uint32_t>& c, std::size_t n) {
    const std::vector<double> z = rep(c, n);
    const std::size_t L = perm.size();
    std::vector<double> out(n * L);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < L; ++j) out[i * L + j] = scale[j] * z[i * L + perm[j]] + 3.0 * double(j);
    return out;
  };
}

}  // namespace

TEST_CASE("mutual information and entropy of discrete samples", "[disentangle]") {
  const std::vector<uint32_t> a = {0, 0, 1, 1}, b = {0, 1, 0, 1}, c = {0, 1, 2, 3};
  CHECK(discrete_entropy(a, 2) == Approx(std::log(2.0)));
  CHECK(discrete_entropy(c, 4) == Approx(std::log(4.0)));
  CHECK(discrete_mutual_info(a, 2, a, 2) == Approx(std::log(2.0)));
  CHECK(discrete_mutual_info(a, 2, b, 2) == Approx(0.0).margin(1e-15));
  CHECK(discrete_mutual_info(c, 4, a, 2) == Approx(std::log(2.0)));  // c determines a
  // Hand-computed: p(0,0)=1/2, p(1,0)=1/4, p(1,1)=1/4.
  const std::vector<uint32_t> x = {0, 0, 1, 1}, y = {0, 0, 0, 1};
  const double expected = 0.5 * std::log(0.5 / (0.5 * 0.75)) + 0.25 * std::log(0.25 / (0.5 * 0.75)) +
                          0.25 * std::log(0.25 / (0.5 * 0.25));
  CHECK(discrete_mutual_info(x, 2, y, 2) == Approx(expected));
}

TEST_CASE("the true factors score 1 on the beta-VAE and FactorVAE metrics", "[disentangle]") {
  const DisentangleOptions o = small_options();
  const BetaVaeScore b = beta_vae_metric(kSizes, truth, o);
  CHECK(b.train_accuracy >= 0.99);
  CHECK(b.eval_accuracy >= 0.99);
  const FactorVaeScore f = factor_vae_metric(kSizes, truth, o);
  CHECK(f.active_dims == 5);
  CHECK(f.train_accuracy == 1.0);
  CHECK(f.eval_accuracy == 1.0);
}

TEST_CASE("MIG of the true factors is 1 up to the 20-bin discretisation", "[disentangle]") {
  DisentangleOptions o;
  o.num_train = 10000;
  const MigScore m = mig_metric(kSizes, truth, o);
  REQUIRE(m.per_factor.size() == 5);
  // With 20 equal-width bins, shape (3 values) and scale (6) keep all their information;
  // orientation's 40 values fall two to a bin: H = log 20 of log 40; position's 32 values
  // fill 12 bins with two and 8 with one: H = 3/4 log 16 + 1/4 log 32 of log 32. The
  // second-best dimension carries only the small positive bias of the MI estimate.
  const double expected[5] = {1.0, 1.0, std::log(20.0) / std::log(40.0),
                              (0.75 * std::log(16.0) + 0.25 * std::log(32.0)) / std::log(32.0),
                              (0.75 * std::log(16.0) + 0.25 * std::log(32.0)) / std::log(32.0)};
  for (int k = 0; k < 5; ++k) {
    INFO("factor " << kNames[k]);
    CHECK(m.per_factor[k] <= expected[k] + 0.01);
    CHECK(m.per_factor[k] >= expected[k] - 0.03);
  }
  CHECK(m.mig > 0.87);
}

TEST_CASE("a random representation scores chance and MIG near 0", "[disentangle]") {
  const DisentangleOptions o = small_options();
  const BetaVaeScore b = beta_vae_metric(kSizes, noise(10), o);
  CHECK(b.eval_accuracy < 0.3);  // chance: 1 in 5 factors
  CHECK(b.eval_accuracy > 0.1);
  const FactorVaeScore f = factor_vae_metric(kSizes, noise(10), o);
  CHECK(f.eval_accuracy < 0.3);
  DisentangleOptions om;
  om.num_train = 10000;
  const MigScore m = mig_metric(kSizes, noise(10), om);
  CHECK(m.mig >= 0.0);
  CHECK(m.mig < 0.02);
  // A constant representation has no active dimension and scores 0.
  const Representation constant = [](const std::vector<uint32_t>&, std::size_t n) {
    return std::vector<double>(n * 3, 1.5);
  };
  CHECK(factor_vae_metric(kSizes, constant, o).eval_accuracy == 0.0);
  CHECK(mig_metric(kSizes, constant, o).mig == 0.0);
}

TEST_CASE("scores do not change when latent dimensions are permuted or rescaled", "[disentangle]") {
  const DisentangleOptions o = small_options();
  const auto names = kNames;
  const std::map<std::string, double> base = all_metrics(kSizes, names, partial(), o);
  // Not trivially 0 or 1, so the comparison means something.
  CHECK(base.at("beta_vae_metric") > 0.3);
  CHECK(base.at("beta_vae_metric") < 0.99);
  CHECK(base.at("mig") > 0.05);
  CHECK(base.at("mig") < 0.9);
  CHECK(base.at("factor_vae_metric") > 0.3);
  CHECK(base.at("factor_vae_metric") < 0.99);
  const Representation moved = transformed(partial(), {3, 5, 0, 2, 4, 1}, {2.5, -0.7, 10.0, 0.01, -3.0, 1.3});
  const std::map<std::string, double> after = all_metrics(kSizes, names, moved, o);
  // Exact but for floating-point rounding: one evaluation point of the classifier at most,
  // and MI sums that may round differently.
  CHECK(after.at("beta_vae_metric") == Approx(base.at("beta_vae_metric")).margin(1.0 / double(o.num_eval)));
  CHECK(after.at("factor_vae_metric") == base.at("factor_vae_metric"));
  CHECK(after.at("factor_vae_train") == base.at("factor_vae_train"));
  CHECK(after.at("mig") == Approx(base.at("mig")).margin(1e-3));
  for (const auto& n : names) CHECK(after.at("mig_" + n) == Approx(base.at("mig_" + n)).margin(2e-3));
}

TEST_CASE("disentanglement metrics are deterministic given the seed", "[disentangle]") {
  const DisentangleOptions o = small_options();
  CHECK(all_metrics(kSizes, kNames, partial(), o) == all_metrics(kSizes, kNames, partial(), o));
  DisentangleOptions other = o;
  other.seed = o.seed + 1;
  CHECK(all_metrics(kSizes, kNames, partial(), other) != all_metrics(kSizes, kNames, partial(), o));
}
