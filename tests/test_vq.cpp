// The vector quantiser (lib/nn/vq.hpp): nearest codes, the straight-through gradient with
// the codebook and commitment terms, the EMA update and dead-code restart against values
// worked out by hand, and a tiny VQ-VAE's loss and gradients against PyTorch float64
// (tests/golden/make_golden_vq.py wrote tests/golden/vq.json).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "golden_util.hpp"
#include "nn/vq.hpp"
#include "tensor/linear.hpp"

using namespace vae;
using vae::testing::expect_near;
using vae::testing::load_golden;

namespace {

struct Assigned {
  std::vector<int32_t> idx;
  std::vector<double> zq, sq;
};

Assigned assign(const std::vector<double>& ze, const std::vector<double>& E, std::size_t N, std::size_t K,
                std::size_t D) {
  Assigned a{std::vector<int32_t>(N), std::vector<double>(N * D), std::vector<double>(N)};
  std::vector<double> scores(N * K), enorm(K);
  vq_assign(a.idx.data(), a.zq.data(), a.sq.data(), scores.data(), enorm.data(), ze.data(), E.data(), N, K, D);
  return a;
}

}  // namespace

TEST_CASE("vq: the nearest code, the first one on a tie, and the squared distances", "[vq]") {
  // codes (0,0), (1,0), (0,2); row 3 is 0.25 from codes 0 and 1 alike
  const std::vector<double> E = {0, 0, 1, 0, 0, 2};
  const std::vector<double> ze = {0.4, 0.1, 0.6, 0.0, 0.1, 1.2, 0.5, 0.0};
  const Assigned a = assign(ze, E, 4, 3, 2);
  CHECK(a.idx == std::vector<int32_t>{0, 1, 2, 0});
  CHECK(a.zq == std::vector<double>{0, 0, 1, 0, 0, 2, 0, 0});
  const std::vector<double> sq = {0.17, 0.16, 0.65, 0.25};
  for (std::size_t n = 0; n < 4; ++n) CHECK(a.sq[n] == Approx(sq[n]).epsilon(1e-15));
}

TEST_CASE("vq: straight-through gradient plus the commitment and codebook terms, by hand", "[vq]") {
  const std::vector<double> E = {0, 0, 1, 0, 0, 2};
  const std::vector<double> ze = {0.4, 0.1, 0.6, 0.0, 0.1, 1.2, 0.5, 0.0};
  const Assigned a = assign(ze, E, 4, 3, 2);
  const std::vector<double> dzq = {1, -1, 2, 0, 0, 3, -2, 1};  // the decoder's gradient at z_q
  std::vector<double> dze(8), dE(6, 0.0);
  // beta 0.25, weight 1 per row: dze = dzq + 0.5 (z_e - z_q), dE[k] += sum of 2 (z_q - z_e)
  vq_backward(dze.data(), dE.data(), dzq.data(), ze.data(), a.zq.data(), a.idx.data(), 4, 2, 0.25, 1.0,
              static_cast<const double*>(nullptr), true);
  const std::vector<double> want_dze = {1.2, -0.95, 1.8, 0.0, 0.05, 2.6, -1.75, 1.0};
  const std::vector<double> want_dE = {-1.8, -0.2, 0.8, 0.0, -0.2, 1.6};
  for (std::size_t i = 0; i < 8; ++i) CHECK(dze[i] == Approx(want_dze[i]).margin(1e-15));
  for (std::size_t i = 0; i < 6; ++i) CHECK(dE[i] == Approx(want_dE[i]).margin(1e-15));
  // row weights (IWAE-style) instead of one scale; the EMA mode leaves dE alone
  const std::vector<double> c = {2, 0, 0, 1};
  std::fill(dE.begin(), dE.end(), 0.0);
  vq_backward(dze.data(), dE.data(), dzq.data(), ze.data(), a.zq.data(), a.idx.data(), 4, 2, 0.25, 1.0,
              c.data(), false);
  CHECK(dze[0] == Approx(1 + 2 * 0.5 * 0.4));
  CHECK(dze[2] == Approx(2.0));  // weight 0: only the straight-through part
  CHECK(dE == std::vector<double>(6, 0.0));
}

TEST_CASE("vq: the EMA codebook update, by hand", "[vq]") {
  // K = 2 codes in 1-D at 2 and 9; rows 1, 3 go to code 0 and 10 to code 1; decay 0.5
  const std::vector<double> ze = {1, 3, 10};
  const std::vector<int32_t> idx = {0, 0, 1};
  for (double eps : {0.0, 0.1}) {
    std::vector<double> E = {2, 9}, n = {1, 1}, m = {2, 9}, sum(2), count(2);
    vq_ema_update(E.data(), n.data(), m.data(), sum.data(), count.data(), ze.data(), idx.data(), 3, 2, 1, 0.5,
                  eps);
    // N = 0.5 (1, 1) + 0.5 (2, 1) = (1.5, 1); m = 0.5 (2, 9) + 0.5 (4, 10) = (3, 9.5)
    CHECK(n[0] == 1.5);
    CHECK(n[1] == 1.0);
    CHECK(m[0] == 3.0);
    CHECK(m[1] == 9.5);
    if (eps == 0) {
      CHECK(E[0] == Approx(2.0).epsilon(1e-15));
      CHECK(E[1] == Approx(9.5).epsilon(1e-15));
    } else {
      // smoothed N = (N + 0.1) / (2.5 + 0.2) 2.5: E = 3 * 2.7 / (1.6 * 2.5), 9.5 * 2.7 / (1.1 * 2.5)
      CHECK(E[0] == Approx(2.025).epsilon(1e-14));
      CHECK(E[1] == Approx(25.65 / 2.75).epsilon(1e-14));
    }
  }
}

TEST_CASE("vq: dead codes restart at the picked encoder outputs", "[vq]") {
  // 3 codes, 1-D; usage decays by 0.5 and code 2 was unused in this batch
  std::vector<double> E = {0, 5, 9}, usage = {1, 0.3, 0.1}, n = {2, 2, 2}, m = {0, 10, 18};
  const std::vector<double> count = {3, 0, 0}, ze = {0.5, 7, -1};
  const std::vector<uint32_t> pick = {0, 2, 1};
  // usage -> (2, 0.15, 0.05): under 0.1 only code 2, which takes row pick[2] = 1 (z_e = 7)
  const std::size_t r = vq_restart_dead(E.data(), usage.data(), n.data(), m.data(), count.data(), ze.data(),
                                        pick.data(), 3, 1, 0.5, 0.1);
  CHECK(r == 1);
  CHECK(E == std::vector<double>{0, 5, 7});
  CHECK(usage[0] == 2.0);
  CHECK(usage[1] == Approx(0.15));
  CHECK(usage[2] == 1.0);
  CHECK(n == std::vector<double>{2, 2, 1});
  CHECK(m == std::vector<double>{0, 10, 7});
}

TEST_CASE("vq: codebook perplexity", "[vq]") {
  CHECK(vq_perplexity({1, 1, 1, 1}) == Approx(4.0));
  CHECK(vq_perplexity({2, 2, 0, 0}) == Approx(2.0));
  CHECK(vq_perplexity({0, 7, 0}) == Approx(1.0));
  CHECK(vq_perplexity({0, 0}) == 0.0);
  // exp of the entropy of (1/2, 1/4, 1/4): 2^1.5
  CHECK(vq_perplexity({2, 1, 1}) == Approx(std::pow(2.0, 1.5)).epsilon(1e-14));
}

TEST_CASE("vq: a tiny VQ-VAE's loss and gradients against PyTorch float64", "[vq][golden]") {
  const auto g = load_golden("vq.json")["model"];
  const std::size_t N = g["N"], I = g["I"], D = g["D"], K = g["K"], P = g["P"];
  const double beta = g["beta"];
  auto vec_of = [](const vae::testing::json& j) { return j.get<std::vector<double>>(); };
  std::vector<double> x = vec_of(g["x"]), target = vec_of(g["target"]), Wenc = vec_of(g["W_enc"]),
                      benc = vec_of(g["b_enc"]), E = vec_of(g["E"]), Wdec = vec_of(g["W_dec"]),
                      bdec = vec_of(g["b_dec"]);
  std::vector<double> ze(N * D), logits(N * P), ones(N, 1.0);
  auto zev = mat(ze.data(), N, D);
  linear_forward(zev, mat(x.data(), N, I), mat(Wenc.data(), D, I), vec(benc.data(), D));
  expect_near(ze.data(), g["ze"], 1e-13, "z_e");
  const Assigned a = assign(ze, E, N, K, D);
  CHECK(std::vector<int64_t>(a.idx.begin(), a.idx.end()) == g["idx"].get<std::vector<int64_t>>());
  auto lv = mat(logits.data(), N, P);
  std::vector<double> zq = a.zq;
  linear_forward(lv, mat(zq.data(), N, D), mat(Wdec.data(), P, D), vec(bdec.data(), P));
  // loss = mean_n [nll_n + (1 + beta) sq_n]; dlogits = (sigmoid - target) / N
  double loss = 0;
  std::vector<double> dlogits(N * P);
  for (std::size_t i = 0; i < N * P; ++i) {
    const double l = logits[i];
    loss += std::max(l, 0.0) - l * target[i] + std::log1p(std::exp(-std::abs(l)));
    dlogits[i] = (1 / (1 + std::exp(-l)) - target[i]) / double(N);
  }
  for (std::size_t n = 0; n < N; ++n) loss += (1 + beta) * a.sq[n];
  loss /= double(N);
  CHECK(loss == Approx(g["loss"].get<double>()).epsilon(1e-13));
  std::vector<double> dWdec(P * D, 0.0), dbdec(P, 0.0), dzq(N * D), dze(N * D), dE(K * D, 0.0),
      dWenc(D * I, 0.0), dbenc(D, 0.0);
  auto dWd = mat(dWdec.data(), P, D);
  auto dbd = vec(dbdec.data(), P);
  auto dzqv = mat(dzq.data(), N, D);
  linear_backward(&dzqv, dWd, dbd, mat(dlogits.data(), N, P), mat(zq.data(), N, D), mat(Wdec.data(), P, D),
                  vec(ones.data(), N));
  vq_backward(dze.data(), dE.data(), dzq.data(), ze.data(), zq.data(), a.idx.data(), N, D, beta,
              1.0 / double(N), static_cast<const double*>(nullptr), true);
  auto dWe = mat(dWenc.data(), D, I);
  auto dbe = vec(dbenc.data(), D);
  linear_backward<double>(nullptr, dWe, dbe, mat(dze.data(), N, D), mat(x.data(), N, I), mat(Wenc.data(), D, I),
                          vec(ones.data(), N));
  expect_near(dWdec.data(), g["dW_dec"], 1e-12, "dW_dec");
  expect_near(dbdec.data(), g["db_dec"], 1e-12, "db_dec");
  expect_near(dE.data(), g["dE"], 1e-12, "dE (codebook term)");
  expect_near(dWenc.data(), g["dW_enc"], 1e-12, "dW_enc (straight through + commitment)");
  expect_near(dbenc.data(), g["db_enc"], 1e-12, "db_enc");
}

TEST_CASE("vq: one EMA update against PyTorch float64", "[vq][golden]") {
  const auto g = load_golden("vq.json")["ema"];
  const std::size_t N = g["N"], D = g["D"], K = g["K"];
  auto vec_of = [](const vae::testing::json& j) { return j.get<std::vector<double>>(); };
  std::vector<double> ze = vec_of(g["ze"]), E = vec_of(g["E"]), n = vec_of(g["n0"]), m = vec_of(g["m0"]);
  const Assigned a = assign(ze, E, N, K, D);
  CHECK(std::vector<int64_t>(a.idx.begin(), a.idx.end()) == g["idx"].get<std::vector<int64_t>>());
  std::vector<double> sum(K * D), count(K);
  vq_ema_update(E.data(), n.data(), m.data(), sum.data(), count.data(), ze.data(), a.idx.data(), N, K, D,
                g["decay"].get<double>(), g["eps"].get<double>());
  expect_near(n.data(), g["n1"], 1e-14, "N_k");
  expect_near(m.data(), g["m1"], 1e-14, "m_k");
  expect_near(E.data(), g["E1"], 1e-13, "codebook");
}
