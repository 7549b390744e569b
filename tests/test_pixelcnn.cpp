// The gated PixelCNN prior over code grids (lib/nn/pixelcnn.hpp): an output never depends on
// its own or a later position (by perturbation of every position), its conditionals are
// distributions, and its gradient matches finite differences.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "gradcheck.hpp"
#include "nn/pixelcnn.hpp"

using namespace vae;

namespace {

struct Net {
  PixelCnn net;
  std::vector<double> P, G;
  PixelCnnWork<double> w;
  // cond_K > 0: conditioned on a cond_h x cond_w grid of cond_K codes
  Net(std::size_t h, std::size_t wd, std::size_t K, std::size_t F, std::size_t L, std::size_t B,
      std::size_t cond_K = 0, std::size_t cond_h = 0, std::size_t cond_w = 0) {
    ParamLayout layout;
    layout.take(5);  // the prior lives inside a model's buffer: not at offset 0
    net.build(layout, h, wd, K, F, L, 3, cond_K, cond_h, cond_w);
    P.assign(layout.size, 0.0);
    G.assign(layout.size, 0.0);
    std::mt19937_64 rng(7);
    net.initialize(P.data(), Init::Uniform, 0, rng);
    // larger weights than the initialisation, so that every path carries signal
    for (std::size_t i = net.begin; i < net.end; ++i) P[i] *= 2.5;
    w.reserve(net, B, P.size());
  }
  const std::vector<double>& nll(const std::vector<int32_t>& codes, std::size_t B,
                                 const int32_t* cond = nullptr) {
    pixelcnn_mask(w, net, P.data());
    pixelcnn_forward(w, net, codes.data(), B, cond);
    logits.assign(w.logits.data.begin(), w.logits.data.begin() + long(B * net.positions() * net.K));
    values.assign(w.nll.begin(), w.nll.begin() + long(B * net.positions()));
    return values;
  }
  std::vector<double> logits, values;
};

}  // namespace

TEST_CASE("pixelcnn: no output depends on its own or a later position (perturbation)", "[pixelcnn]") {
  const std::size_t h = 4, wd = 3, K = 5, B = 1, Pn = h * wd;
  Net n(h, wd, K, 4, 2, B);
  std::mt19937_64 rng(3);
  std::vector<int32_t> codes(Pn);
  for (auto& c : codes) c = int32_t(rng() % K);
  n.nll(codes, B);
  const std::vector<double> base = n.logits;
  for (std::size_t q = 0; q < Pn; ++q) {
    std::vector<int32_t> changed = codes;
    changed[q] = int32_t((codes[q] + 1 + rng() % (K - 1)) % K);
    n.nll(changed, B);
    bool later_changed = false;
    for (std::size_t p = 0; p < Pn; ++p) {
      double diff = 0;
      for (std::size_t j = 0; j < K; ++j)
        diff = std::max(diff, std::abs(n.logits[p * K + j] - base[p * K + j]));
      INFO("code at " << q << " changed; logits at " << p);
      if (p <= q) CHECK(diff == 0.0);
      else later_changed = later_changed || diff > 1e-8;
    }
    // and it does reach a later position (the masks do not cut everything)
    if (q + 1 < Pn) CHECK(later_changed);
  }
}

TEST_CASE("pixelcnn: each conditional is a distribution over the K codes", "[pixelcnn]") {
  const std::size_t K = 4;
  Net n(3, 3, K, 3, 1, 1);
  std::vector<int32_t> codes = {0, 1, 2, 3, 0, 1, 2, 3, 0};
  // sum_k p(k | the same context) = 1 at every position: vary the code at p only
  for (std::size_t p = 0; p < 9; ++p) {
    double total = 0;
    for (int32_t k = 0; k < int32_t(K); ++k) {
      codes[p] = k;
      total += std::exp(-n.nll(codes, 1)[p]);
    }
    CHECK(total == Approx(1.0).epsilon(1e-12));
  }
}

TEST_CASE("pixelcnn: gradient check of every parameter group (embedding, masked convs, 1x1 convs)",
          "[pixelcnn][gradcheck]") {
  const std::size_t B = 2, h = 3, wd = 3, K = 4, Pn = h * wd;
  Net n(h, wd, K, 3, 2, B);
  std::mt19937_64 rng(5);
  std::vector<int32_t> codes(B * Pn);
  for (auto& c : codes) c = int32_t(rng() % K);
  std::vector<double> scale(B * Pn);
  for (auto& s : scale) s = 0.2 + double(rng() % 100) / 100.0;  // per-position weights
  auto f = [&]() {
    const std::vector<double>& v = n.nll(codes, B);
    double s = 0;
    for (std::size_t i = 0; i < v.size(); ++i) s += scale[i] * v[i];
    return s;
  };
  f();
  std::fill(n.G.begin(), n.G.end(), 0.0);
  pixelcnn_backward(n.w, n.net, codes.data(), B, scale.data(), n.G.data());
  const std::vector<double> analytic = n.G;
  std::vector<test::Group> groups = {{"embedding", n.net.emb, K * 3}};
  auto conv = [&](const std::string& name, const Conv2d& c) {
    groups.push_back({name + ".W", c.w, c.cout * c.patch()});
    groups.push_back({name + ".b", c.b, c.cout});
  };
  conv("first (type A)", n.net.first);
  for (std::size_t l = 0; l < 2; ++l) {
    conv("masked" + std::to_string(l), n.net.masked[l]);
    conv("proj" + std::to_string(l), n.net.proj[l]);
  }
  conv("out", n.net.out);
  std::size_t covered = 0;
  for (const auto& g : groups) covered += g.size;
  REQUIRE(covered == n.net.end - n.net.begin);
  const double err = test::max_rel_error(n.P, analytic, f, groups);
  CHECK(err <= 1e-6);
  // the masked taps get no gradient (and so never move)
  for (std::size_t ki = 0; ki < 3; ++ki)
    for (std::size_t kj = 0; kj < 3; ++kj)
      if (!n.net.tap_allowed(ki, kj, true))
        for (std::size_t o = 0; o < n.net.first.cout; ++o)
          for (std::size_t c = 0; c < 3; ++c)
            CHECK(analytic[n.net.first.w + ((o * 3 + ki) * 3 + kj) * 3 + c] == 0.0);
}

// Conditioned on a coarser grid (the bottom prior of a two-level VQ-VAE): still causal in its
// own codes whatever the conditioning codes, each conditional still a distribution, the
// outputs read the conditioning code above them, and the gradient of every group (the
// conditioning embedding and 1x1 convs included) matches finite differences.
TEST_CASE("pixelcnn: conditioned on a coarser code grid: causal, normalised, reads it, exact gradients",
          "[pixelcnn][gradcheck]") {
  const std::size_t B = 2, h = 3, wd = 3, K = 4, Pn = h * wd, Kc = 3, Pc = 2 * 2;
  Net n(h, wd, K, 3, 1, B, Kc, 2, 2);
  REQUIRE(n.net.parent == std::vector<std::size_t>{0, 0, 1, 0, 0, 1, 2, 2, 3});  // i 2 / 3, j 2 / 3
  std::mt19937_64 rng(9);
  std::vector<int32_t> codes(B * Pn), cond(B * Pc);
  for (auto& c : codes) c = int32_t(rng() % K);
  for (auto& c : cond) c = int32_t(rng() % Kc);
  n.nll(codes, B, cond.data());
  const std::vector<double> base = n.logits;
  // own codes: a change at q moves no output at or before q (example 0)
  for (std::size_t q = 0; q < Pn; ++q) {
    std::vector<int32_t> changed = codes;
    changed[q] = int32_t((codes[q] + 1) % K);
    n.nll(changed, B, cond.data());
    for (std::size_t p = 0; p <= q; ++p)
      for (std::size_t j = 0; j < K; ++j) CHECK(n.logits[p * K + j] == base[p * K + j]);
  }
  // the conditioning: a change of coarse code c moves the outputs below it, from the first on
  for (std::size_t c = 0; c < Pc; ++c) {
    std::vector<int32_t> changed = cond;
    changed[c] = int32_t((cond[c] + 1) % Kc);
    n.nll(codes, B, changed.data());
    for (std::size_t p = 0; p < Pn; ++p) {
      double diff = 0;
      for (std::size_t j = 0; j < K; ++j)
        diff = std::max(diff, std::abs(n.logits[p * K + j] - base[p * K + j]));
      INFO("conditioning code " << c << " changed; logits at " << p);
      if (n.net.parent[p] == c) CHECK(diff > 1e-8);
    }
  }
  // each conditional sums to 1
  for (std::size_t p = 0; p < Pn; ++p) {
    std::vector<int32_t> v = codes;
    double total = 0;
    for (int32_t k = 0; k < int32_t(K); ++k) {
      v[p] = k;
      total += std::exp(-n.nll(v, B, cond.data())[p]);
    }
    CHECK(total == Approx(1.0).epsilon(1e-12));
  }
  std::vector<double> scale(B * Pn);
  for (auto& s : scale) s = 0.2 + double(rng() % 100) / 100.0;
  auto f = [&]() {
    const std::vector<double>& v = n.nll(codes, B, cond.data());
    double s = 0;
    for (std::size_t i = 0; i < v.size(); ++i) s += scale[i] * v[i];
    return s;
  };
  f();
  std::fill(n.G.begin(), n.G.end(), 0.0);
  pixelcnn_backward(n.w, n.net, codes.data(), B, scale.data(), n.G.data(), cond.data());
  const std::vector<double> analytic = n.G;
  std::vector<test::Group> groups = {{"embedding", n.net.emb, K * 3},
                                     {"cond embedding", n.net.cond_emb, Kc * 3}};
  auto conv = [&](const std::string& name, const Conv2d& c) {
    groups.push_back({name + ".W", c.w, c.cout * c.patch()});
    groups.push_back({name + ".b", c.b, c.cout});
  };
  conv("first (type A)", n.net.first);
  conv("masked0", n.net.masked[0]);
  conv("proj0", n.net.proj[0]);
  conv("out", n.net.out);
  conv("cond0", n.net.cond[0]);
  conv("cond1", n.net.cond[1]);
  std::size_t covered = 0;
  for (const auto& g : groups) covered += g.size;
  REQUIRE(covered == n.net.end - n.net.begin);
  CHECK(test::max_rel_error(n.P, analytic, f, groups) <= 1e-6);
}
