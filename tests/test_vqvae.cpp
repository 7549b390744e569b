// The VQ-VAE family (models/vqvae.hpp) beyond the contract tests: the straight-through
// gradient of the encoder and the codebook gradient against finite differences of the
// surrogate loss whose exact gradient they are, the bound with the uniform prior, its own
// metrics, and `vae train --model vqvae` end to end on a small MNIST subset.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <set>

#include "contract_families.hpp"
#include "gradcheck.hpp"
#include "models/algorithms.hpp"
#include "models/settings.hpp"
#include "train/run.hpp"

// This file's names stay its own: the model tests compile in unity groups (CMakeLists.txt).
namespace test_vqvae {

using namespace vae;

namespace {

VqShape grid_shape(bool ema) {
  VqShape s = test::small_vq_shape(ema);
  s.rows = s.cols = 8;  // 8x8 -> 4x4 -> a 2x2 grid of codes
  s.codebook = 6;
  return s;
}

template <class M>
void fill(M& m, typename M::Work& w, std::size_t B, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution b(0.4);
  for (std::size_t i = 0; i < B * m.data_dim(); ++i) w.x.data[i] = double(b(rng));
  m.draw_noise(w, B, rng);
}

}  // namespace

TEST_CASE("vqvae: straight-through and codebook gradients are the exact gradients of the surrogate loss",
          "[vqvae][gradcheck]") {
  for (bool ema : {false, true}) {
    DYNAMIC_SECTION((ema ? "ema" : "loss update")) {
      VqVae<double> m(grid_shape(ema), test::bernoulli());
      std::mt19937_64 init(21);
      m.initialize(Init::Uniform, 0, init);
      REQUIRE(m.P == 4);
      typename VqVae<double>::Work w;
      const std::size_t B = 5;
      m.reserve(w, B);
      fill(m, w, B, 22);
      // codes near encoder outputs of the batch, so that several are in use
      m.forward(w, B);
      for (std::size_t k = 0; k < m.K(); ++k)
        for (std::size_t d = 0; d < m.Dc(); ++d)
          m.codebook()[k * m.Dc() + d] = w.enc.output()[(3 * k) * m.Dc() + d] + 0.01 * double(d + 1);
      std::fill(m.grads.begin(), m.grads.end(), 0.0);
      const ObjectiveParams p{1.0, 0.0};
      m.forward(w, B);
      const BatchLoss l = elbo_objective(m, w, B, p);
      m.backward(w, B, 1.0 / double(B));
      const std::vector<double> analytic(m.grads.begin(), m.grads.end());
      std::set<int32_t> used(w.idx.begin(), w.idx.begin() + long(B * m.P));
      INFO(used.size() << " codes in use");
      CHECK(used.size() >= 2);
      // the loss includes the codebook and commitment terms, beyond the bound
      double sq = 0;
      for (std::size_t n = 0; n < B * m.P; ++n) sq += w.sq[n];
      CHECK(l.loss == Approx(l.rec + l.kl + ((ema ? 0.0 : 1.0) + 0.25) * sq / double(B)).epsilon(1e-12));
      m.st_freeze(w, B);
      auto f = [&]() {
        m.forward(w, B);
        return elbo_objective(m, w, B, p).loss;
      };
      CHECK(f() == Approx(l.loss).epsilon(1e-13));  // the surrogate equals the loss at the base point
      std::vector<test::Group> groups;
      for (const auto& r : m.param_groups()) groups.push_back({r.name, r.offset, r.size});
      // h = 1e-5: with the default 1e-4 the stencil reaches across a ReLU kink of this tiny net
      // (enc0.W then differs by 5e-3); below 1e-6 rounding dominates
      const double err = test::max_group_error(analytic, test::numeric_gradient(m.params, f, 1e-5), groups);
      CHECK(err <= 1e-6);
    }
  }
}

TEST_CASE("vqvae: the second stage trains the PixelCNN prior alone, with its exact gradient",
          "[vqvae][gradcheck]") {
  VqShape s = grid_shape(false);
  s.prior_epochs = 1;
  s.prior_layers = 1;
  s.prior_features = 3;
  VqVae<double> m(s, test::bernoulli());
  std::mt19937_64 init(31);
  m.initialize(Init::Uniform, 0, init);
  for (std::size_t i = 0; i < m.K() * m.Dc(); ++i) m.codebook()[i] *= 40;
  for (std::size_t i = m.prior.begin; i < m.prior.end; ++i) m.params[i] *= 2;
  typename VqVae<double>::Work w;
  const std::size_t B = 4;
  m.reserve(w, B);
  fill(m, w, B, 32);
  m.forward(w, B);
  const double uniform_kl = double(w.kl.data[0]);
  CHECK(uniform_kl == Approx(std::log(6.0)));  // stage 1: the uniform prior
  m.set_stage(2);
  std::fill(m.grads.begin(), m.grads.end(), 0.0);
  const ObjectiveParams p{1.0, 0.0};
  m.forward(w, B);
  CHECK(double(w.kl.data[0]) != uniform_kl);  // the PixelCNN's -log p(k_1)
  elbo_objective(m, w, B, p);
  m.backward(w, B, 1.0 / double(B));
  const std::vector<double> analytic(m.grads.begin(), m.grads.end());
  std::vector<test::Group> prior_groups;
  double frozen = 0;
  for (const auto& r : m.param_groups()) {
    if (r.name.rfind("prior.", 0) == 0) prior_groups.push_back({r.name, r.offset, r.size});
    else
      for (std::size_t i = r.offset; i < r.offset + r.size; ++i) frozen += std::abs(analytic[i]);
  }
  CHECK(frozen == 0.0);  // the autoencoder is frozen in stage 2
  REQUIRE(prior_groups.size() == 1 + 2 * (2 + 2 * 1));
  auto f = [&]() {
    m.forward(w, B);
    return elbo_objective(m, w, B, p).loss;
  };
  const double err = test::max_rel_error(m.params, analytic, f, prior_groups);
  CHECK(err <= 1e-6);
  // prior samples: codes in range, drawn position by position
  typename VqVae<double>::Work e;
  m.reserve(e, 3);
  std::mt19937_64 rng(5);
  m.draw_noise(e, 3, rng);
  std::vector<double> codes(3 * m.P);
  m.prior_codes(e, 3, codes.data());
  for (double c : codes) CHECK((c >= 0 && c < 6 && c == std::floor(c)));
}

TEST_CASE("vqvae: the bound with the uniform prior is the reconstruction term plus log K per code", "[vqvae]") {
  VqVae<double> m(grid_shape(false), test::bernoulli());
  std::mt19937_64 init(3);
  m.initialize(Init::Uniform, 0, init);
  typename VqVae<double>::Work w;
  m.reserve(w, 7);
  w.training = false;
  data::Images im;
  im.n = 17;
  im.rows = im.cols = 8;
  im.scale = 1.0f;
  std::mt19937_64 rng(4);
  std::bernoulli_distribution b(0.3);
  im.pixels.resize(17 * 64);
  for (auto& v : im.pixels) v = uint8_t(b(rng));
  std::mt19937_64 e(5);
  const ElboReport r = evaluate_elbo(m, w, im, e);
  CHECK(r.kl == Approx(4 * std::log(6.0)).epsilon(1e-12));  // P = 4 positions, K = 6
  CHECK(r.elbo == Approx(-(r.rec + 4 * std::log(6.0))).epsilon(1e-12));
  CHECK(r.metrics.at("bound_bpd") == Approx(-r.elbo / (64 * std::log(2.0))).epsilon(1e-12));
  // codebook usage: a distribution over the K codes, its perplexity between 1 and K
  const std::vector<double>& usage = r.vector("code_usage");
  REQUIRE(usage.size() == 6);
  double total = 0, used = 0;
  for (double u : usage) {
    total += u;
    used += u > 0;
  }
  CHECK(total == Approx(1.0).epsilon(1e-12));
  CHECK(r.metrics.at("codes_used") == used);
  CHECK(r.metrics.at("codebook_perplexity") >= 1.0);
  CHECK(r.metrics.at("codebook_perplexity") <= used + 1e-12);
  CHECK(r.metrics.at("rec_mse") > 0.0);
  CHECK(r.metrics.at("rec_mse") < 1.0);
  CHECK(r.metrics.count("active_units") == 0);
}

// The conv stacks take a batch in chunks of images (lib/nn/conv_stack.hpp): the weights'
// gradients add up over the chunks, so a chunked step may differ from the whole batch's only
// at rounding level, and its forward pass (per image) not at all.
TEST_CASE("vqvae: the conv stacks' chunks give the whole batch's loss and gradients (to rounding)", "[vqvae]") {
  VqVae<double> m(grid_shape(false), test::bernoulli());
  std::mt19937_64 init(61);
  m.initialize(Init::Uniform, 0, init);
  const std::size_t B = 7;
  auto run = [&](std::size_t chunk) {
    typename VqVae<double>::Work w;
    m.reserve(w, B);
    for (ConvStackWork<double>* c : {&w.enc, &w.dec}) c->chunk = chunk;
    fill(m, w, B, 62);
    std::fill(m.grads.begin(), m.grads.end(), 0.0);
    m.forward(w, B);
    const double loss = elbo_objective(m, w, B, ObjectiveParams{1.0, 0.0}).loss;
    m.backward(w, B, 1.0 / double(B));
    std::vector<double> out(m.grads.begin(), m.grads.end());
    out.push_back(loss);
    return out;
  };
  const std::vector<double> whole = run(B), chunked = run(3);  // chunks of 3, 3 and 1 images
  REQUIRE(whole.size() == chunked.size());
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < whole.size(); ++i) {
    diff = std::max(diff, std::abs(whole[i] - chunked[i]));
    norm = std::max(norm, std::abs(whole[i]));
  }
  CHECK(norm > 0.0);
  CHECK(diff <= 1e-13 * norm);
  CHECK(whole.back() == Approx(chunked.back()).epsilon(1e-14));  // forward is per image
}

TEST_CASE("vqvae: vae train --model vqvae trains end to end and reports its metrics", "[vqvae][train]") {
  ConfigMap c = default_config();
  apply(c, {{"model", std::string("vqvae")},
            {"train-size", int64_t(256)},
            {"test-size", int64_t(64)},
            {"epochs", int64_t(2)},
            {"batch", int64_t(32)},
            {"vq-channels", int64_t(8)},
            {"vq-res-hidden", int64_t(4)},
            {"vq-res-blocks", int64_t(1)},
            {"vq-codebook", int64_t(16)},
            {"vq-dim", int64_t(4)},
            {"vq-update", std::string("ema")},
            {"vq-restart", 0.05},
            {"vq-prior-epochs", int64_t(3)},
            {"vq-prior-layers", int64_t(2)},
            {"vq-prior-features", int64_t(16)},
            {"lr", 3e-3},
            {"iw-samples", int64_t(10)},
            {"iw-examples", int64_t(8)}});
  RunOptions o;
  o.quiet = true;
  const RunResult r = train_and_evaluate(c, o, nullptr);
  REQUIRE(r.status == "done");
  REQUIRE(r.train_loss_curve.size() == 5);  // 2 epochs of the autoencoder, 3 of the prior
  CHECK(r.train_loss_curve[1] < r.train_loss_curve[0]);
  CHECK(r.train_loss_curve[4] < r.train_loss_curve[2]);
  const double P = 49, K = 16;
  // the trained prior beats the uniform one on the test codes, and the bound with it
  CHECK(r.metrics.at("kl_uniform") == Approx(P * std::log(K)).epsilon(1e-12));
  CHECK(r.metrics.at("test_kl") < r.metrics.at("kl_uniform"));
  CHECK(r.metrics.at("test_elbo") ==
        Approx(-(r.metrics.at("test_rec") + r.metrics.at("test_kl"))).epsilon(1e-6));
  CHECK(r.metrics.at("test_elbo") > -(r.metrics.at("test_rec") + P * std::log(K)));
  for (const char* k : {"codebook_perplexity", "codes_used", "rec_mse", "bound_bpd", "vq_distance"})
    CHECK(r.metrics.count(k) == 1);
  CHECK(r.metrics.count("active_units") == 0);
  CHECK(r.unit_vectors.at("code_usage").size() == 16);
  CHECK(r.unit_vectors.at("kl_per_dim").size() == 49);
  // the importance-weighted estimate of a point-mass posterior is its bound, on the same images
  CHECK(std::isfinite(r.metrics.at("test_nll")));
}

}  // namespace test_vqvae
