// The contract test list (models/contract.hpp): every case runs over every family of
// tests/contract_families.hpp, in double. A family gets all of them by being listed there.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <random>
#include <vector>

#include "alloc_counter.hpp"
#include "contract_families.hpp"
#include "gradcheck.hpp"
#include "models/algorithms.hpp"
#include "models/registry.hpp"
#include "models/settings.hpp"
#include "train/checkpoint.hpp"

// This file's names stay its own: the model tests compile in unity groups (CMakeLists.txt).
namespace test_contract {

using namespace vae;
using vae::test::FamilyCase;
using vae::test::for_each_family;

namespace {

// B examples x k rows each: x (binary or in [0,1]) on the first B rows, replicated, and noise.
template <class M>
void fill_rows(M& m, typename M::Work& w, std::size_t B, std::size_t k, bool binary, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (std::size_t i = 0; i < B * m.data_dim(); ++i) w.x.data[i] = binary ? double(u(rng) < 0.4) : u(rng);
  replicate_rows(w.x.ptr(), B, k, m.data_dim());
  m.draw_noise(w, B * k, rng);
}

// Every parameter group but the declared surrogate ones (FamilyCase::surrogate_groups).
template <class M>
std::vector<vae::test::Group> groups_of(const M& m, const std::vector<std::string>& surrogate) {
  std::vector<vae::test::Group> g;
  std::size_t covered = 0, left_out = 0;
  for (const auto& r : m.param_groups()) {
    bool skip = false;
    for (const auto& prefix : surrogate) skip = skip || r.name.rfind(prefix, 0) == 0;
    (skip ? left_out : covered) += r.size;
    if (!skip) g.push_back({r.name, r.offset, r.size});
  }
  REQUIRE(covered + left_out == m.params.size());  // every parameter is checked, here or by its family
  REQUIRE(covered > 0);
  return g;
}

data::Images binary_images(std::size_t n, std::size_t D, uint64_t seed) {
  data::Images im;
  im.n = n;
  im.rows = 4;
  im.cols = D / 4;
  im.scale = 1.0f;
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution b(0.3);
  im.pixels.resize(n * D);
  for (auto& p : im.pixels) p = uint8_t(b(rng));
  return im;
}

// The objective's gradient against finite differences of its loss, at fixed x and noise.
template <class M>
double objective_gradient_error(M& m, typename M::Work& w, std::size_t B, const ObjectiveParams& p,
                                const std::vector<std::string>& surrogate, double h) {
  std::fill(m.grads.begin(), m.grads.end(), 0.0);
  const BatchLoss l = loss_and_grad(m, w, B, p);
  REQUIRE(std::isfinite(l.loss));
  std::vector<double> analytic(m.grads.begin(), m.grads.end());
  const bool iwae = p.objective == Objective::Iwae && p.k > 1;
  auto f = [&]() {
    w.sampled_kl = iwae || p.sampled_kl;
    m.forward(w, B * p.k);
    return iwae ? iwae_objective(m, w, B, p.k).loss : elbo_objective(m, w, B * p.k, p).loss;
  };
  return vae::test::max_rel_error(m.params, analytic, f, groups_of(m, surrogate), h);
}

}  // namespace

TEST_CASE("contract: the ELBO objective's gradient matches finite differences (batch norm in both modes)",
          "[contract][gradcheck]") {
  for_each_family([](const auto& fam) {
    using M = typename std::decay_t<decltype(*fam.make())>;
    for (bool training : {true, false}) {
      if (!training && !fam.batchnorm) continue;
      DYNAMIC_SECTION(fam.name << (training ? "" : ", evaluation mode")) {
        auto m = fam.make();
        typename M::Work w;
        m->reserve(w, 8);
        w.training = training;
        std::mt19937_64 rng(11);
        fill_rows(*m, w, 5, 1, fam.binary, rng);
        const double err = objective_gradient_error(*m, w, 5, ObjectiveParams{1.5, 0.0}, fam.surrogate_groups,
                                                    fam.fd_step);
        INFO("max relative error " << err);
        CHECK(err <= 1e-6);
      }
    }
  });
}

TEST_CASE("contract: the k-sample ELBO and the IWAE objective's gradients match finite differences",
          "[contract][gradcheck][iwae]") {
  for_each_family([](const auto& fam) {
    using M = typename std::decay_t<decltype(*fam.make())>;
    for (Objective o : {Objective::Elbo, Objective::Iwae})
      for (bool training : {true, false}) {
        if (o == Objective::Iwae && !fam.iwae) continue;
        // Batch norm in training mode couples the rows (the k copies of an example and the
        // examples) through the batch statistics: the check covers that mode and the other.
        if (!training && !fam.batchnorm) continue;
        DYNAMIC_SECTION(fam.name << (o == Objective::Iwae ? ", iwae" : ", elbo") << " k = 3"
                                 << (training ? "" : ", evaluation mode")) {
          auto m = fam.make();
          typename M::Work w;
          m->reserve(w, 12);
          w.training = training;
          std::mt19937_64 rng(12);
          // 4 distinct examples: with 2, batch norm's statistics over their 3 copies each are
          // ill-conditioned enough for finite differences to reach ~1e-6 on their own.
          fill_rows(*m, w, 4, 3, fam.binary, rng);
          const double err = objective_gradient_error(*m, w, 4, ObjectiveParams{1.0, 0.0, o, 3},
                                                      fam.surrogate_groups, fam.fd_step);
          INFO("max relative error " << err);
          CHECK(err <= 1e-6);
        }
      }
  });
}

TEST_CASE("contract: the ELBO with the sampled KL is the mean of log w (the IWAE paper's VAE), and its "
          "gradient matches finite differences",
          "[contract][gradcheck][iwae]") {
  for_each_family([](const auto& fam) {
    using M = typename std::decay_t<decltype(*fam.make())>;
    if (!fam.iwae) return;  // log w needs a density of z under q and p
    DYNAMIC_SECTION(fam.name << ", elbo k = 3, sampled KL") {
      auto m = fam.make();
      typename M::Work w;
      const std::size_t B = 4, k = 3, R = B * k;
      m->reserve(w, R);
      std::mt19937_64 rng(14);
      fill_rows(*m, w, B, k, fam.binary, rng);
      ObjectiveParams p{1.0, 0.0, Objective::Elbo, k};
      p.sampled_kl = true;
      std::fill(m->grads.begin(), m->grads.end(), 0.0);
      const BatchLoss l = loss_and_grad(*m, w, B, p);
      // the same rows again, their log weights: -(1/R) sum_r log w_r is the loss
      w.sampled_kl = true;
      m->forward(w, R);
      std::vector<double> log_w(R);
      m->log_weights(w, R, log_w.data());
      double mean = 0;
      for (double v : log_w) mean += v / double(R);
      CHECK(l.loss == Approx(-mean).epsilon(1e-12));
      // and not the closed-form KL's loss, which differs at any one draw (where there is one)
      p.sampled_kl = false;
      const BatchLoss analytic = loss_and_grad(*m, w, B, p);
      if (fam.closed_form_kl) CHECK(std::abs(analytic.loss - l.loss) > 1e-6);
      else CHECK(analytic.loss == l.loss);
      p.sampled_kl = true;
      const double err = objective_gradient_error(*m, w, B, p, fam.surrogate_groups, fam.fd_step);
      INFO("max relative error " << err);
      CHECK(err <= 1e-6);
    }
  });
}

TEST_CASE("contract: IWAE with k = 1 through the row-weighted path equals the ELBO's gradient (to rounding)",
          "[contract][iwae]") {
  for_each_family([](const auto& fam) {
    using M = typename std::decay_t<decltype(*fam.make())>;
    if (!fam.iwae || !fam.binary) return;  // Gaussian learned sigma sums its gradient per row
    DYNAMIC_SECTION(fam.name) {
      auto m = fam.make();
      typename M::Work w;
      const std::size_t B = 5;
      m->reserve(w, 8);
      std::mt19937_64 rng(13);
      fill_rows(*m, w, B, 1, fam.binary, rng);
      // Both with the single-sample KL, the term each IWAE sample's log w holds.
      std::fill(m->grads.begin(), m->grads.end(), 0.0);
      w.sampled_kl = true;
      m->forward(w, B);
      const BatchLoss le = elbo_objective(*m, w, B, ObjectiveParams{1.0, 0.0});
      m->backward(w, B, 1.0 / double(B));
      const std::vector<double> g_elbo(m->grads.begin(), m->grads.end());
      std::fill(m->grads.begin(), m->grads.end(), 0.0);
      w.sampled_kl = true;
      m->forward(w, B);
      const BatchLoss li = iwae_objective(*m, w, B, 1);
      REQUIRE(w.row_weighted);
      m->backward(w, B, 1.0);
      const std::vector<double> g_iwae(m->grads.begin(), m->grads.end());
      CHECK(li.loss == Approx(le.loss).epsilon(1e-12));
      // The same numbers, but not always the same bits: the ELBO's per-unit weight is a
      // broadcast [L] expression and IWAE's a [B,L] one, which xtensor evaluates with
      // different kernels (fused multiply-adds differ). The runs are the same bit for bit
      // because k = 1 takes the ELBO's path (loss_and_grad); this checks the general path.
      // Norm-wise (batch norm leaves coordinates that are 0 in one and ~1e-17 in the other).
      std::size_t differ = 0;
      double diff = 0, norm = 0;
      for (std::size_t i = 0; i < g_elbo.size(); ++i) {
        differ += g_elbo[i] != g_iwae[i];
        diff += (g_elbo[i] - g_iwae[i]) * (g_elbo[i] - g_iwae[i]);
        norm += g_elbo[i] * g_elbo[i];
      }
      const double rel = std::sqrt(diff / norm);
      INFO(differ << " of " << g_elbo.size() << " coordinates differ, relative difference " << rel);
      CHECK(rel <= 1e-12);
    }
  });
}

TEST_CASE("contract: K = 1 importance sampling is the single-sample bound, and K = 64 lies above the ELBO "
          "(equals it for a point-mass posterior)",
          "[contract][iw]") {
  for_each_family([](const auto& fam) {
    using M = typename std::decay_t<decltype(*fam.make())>;
    if (!fam.binary) return;
    DYNAMIC_SECTION(fam.name) {
      auto m = fam.make();
      typename M::Work w;
      m->reserve(w, 64);
      w.training = false;
      const data::Images im = binary_images(40, m->data_dim(), 21);
      // iw_nll's shared-posterior path against full forward passes on the same noise
      std::mt19937_64 a(5), b(5);
      const double nll1 = iw_nll(*m, w, im, 0, 1, 1, a);
      double sum = 0;
      for (std::size_t i = 0; i < im.n; ++i) {
        const uint32_t idx = uint32_t(i);
        gather_batch(w.x.ptr(), im, &idx, 1);
        m->draw_noise(w, 1, b);
        m->forward(w, 1);
        double lw = 0;
        m->log_weights(w, 1, &lw);
        sum += lw;
      }
      CHECK(-nll1 == Approx(sum / double(im.n)).epsilon(1e-10));
      std::mt19937_64 c(6), d(7);
      const double elbo = evaluate_elbo(*m, w, im, c).elbo;
      const double nll64 = iw_nll(*m, w, im, 0, 64, 32, d);
      INFO("ELBO " << elbo << ", IW K=64 bound " << -nll64);
      if (fam.stochastic) CHECK(-nll64 > elbo);
      else CHECK(-nll64 == Approx(elbo).epsilon(1e-12));  // a point mass: every sample is the same code
    }
  });
}

TEST_CASE("contract: training steps are deterministic, and parameters + state carry a model over",
          "[contract][determinism]") {
  for_each_family([](const auto& fam) {
    using M = typename std::decay_t<decltype(*fam.make())>;
    DYNAMIC_SECTION(fam.name) {
      const data::Images im = binary_images(24, fam.make()->data_dim(), 31);
      auto run = [&](M& m, typename M::Work& w, uint64_t seed) {
        std::mt19937_64 rng(seed);
        std::vector<uint32_t> order(im.n);
        for (std::size_t i = 0; i < order.size(); ++i) order[i] = uint32_t(i);
        for (std::size_t s = 0; s < 3; ++s) {
          train_step(m, w, im, order.data() + s * 8, 8, false, rng,
                     ObjectiveParams{1.0, 0.0, Objective::Elbo, 2});
          for (std::size_t i = 0; i < m.params.size(); ++i) m.params[i] -= 0.05 * m.grads[i];
        }
      };
      auto m1 = fam.make(), m2 = fam.make();
      typename M::Work w1, w2;
      m1->reserve(w1, 16);
      m2->reserve(w2, 16);
      run(*m1, w1, 3);
      run(*m2, w2, 3);
      CHECK(std::equal(m1->params.begin(), m1->params.end(), m2->params.begin()));
      CHECK(std::equal(m1->state.begin(), m1->state.end(), m2->state.begin()));
      bool moved = false;
      auto m0 = fam.make();
      for (std::size_t i = 0; i < m0->params.size(); ++i) moved |= m0->params[i] != m1->params[i];
      CHECK(moved);
      // A fresh instance given the trained parameters and state evaluates the same, bit for bit.
      m0->params = m1->params;
      m0->state = m1->state;
      typename M::Work e0, e1;
      m0->reserve(e0, 10);
      m1->reserve(e1, 10);
      e0.training = e1.training = false;
      std::mt19937_64 r0(9), r1(9);
      const ElboReport a = evaluate_elbo(*m0, e0, im, r0), b = evaluate_elbo(*m1, e1, im, r1);
      CHECK(a.elbo == b.elbo);
      CHECK(a.metrics == b.metrics);
      CHECK(a.vectors == b.vectors);
    }
  });
}

TEST_CASE("contract: decode_mean of encode_mean reconstructs in [0,1], prior codes have the model's width",
          "[contract][codes]") {
  for_each_family([](const auto& fam) {
    using M = typename std::decay_t<decltype(*fam.make())>;
    DYNAMIC_SECTION(fam.name) {
      auto m = fam.make();
      typename M::Work w;
      m->reserve(w, 8);
      w.training = false;
      const data::Images im = binary_images(10, fam.make()->data_dim(), 41);
      const std::vector<float> z = encode_mean(*m, w, im, 0);
      REQUIRE(z.size() == 10 * m->units());
      const std::vector<float> x = decode_mean(*m, w, z, 10);
      REQUIRE(x.size() == 10 * m->data_dim());
      for (float v : x) CHECK((v >= 0.0f && v <= 1.0f));
      std::mt19937_64 rng(3);
      CHECK(sample_prior_codes(*m, w, 11, rng).size() == 11 * m->units());
    }
  });
}

TEST_CASE("contract: a training step allocates nothing after the first (ELBO, k-sample ELBO, IWAE)",
          "[contract][alloc]") {
  if (!vae::test::alloc_counting_available()) {
    WARN("[contract][alloc] skipped: under AddressSanitizer malloc belongs to ASan and cannot be counted");
    return;
  }
  for_each_family([](const auto& fam) {
    using M = typename std::decay_t<decltype(*fam.make())>;
    for (Objective o : {Objective::Elbo, Objective::Iwae})
      for (std::size_t k : {std::size_t(1), std::size_t(3)}) {
        if (o == Objective::Iwae && (k == 1 || !fam.iwae)) continue;
        DYNAMIC_SECTION(fam.name << (o == Objective::Iwae ? ", iwae" : ", elbo") << " k = " << k) {
          auto m = fam.make();
          typename M::Work w;
          const std::size_t B = 8;
          m->reserve(w, B * k);
          const data::Images im = binary_images(14, m->data_dim(), 51);
          std::vector<uint32_t> order(im.n);
          for (std::size_t i = 0; i < order.size(); ++i) order[i] = uint32_t(i);
          std::mt19937_64 rng(4);
          const ObjectiveParams p{1.0, 0.0, o, k};
          auto step = [&](std::size_t start, std::size_t rows) {
            train_step(*m, w, im, order.data() + start, rows, true, rng, p);
            for (std::size_t i = 0; i < m->params.size(); ++i) m->params[i] -= 0.01 * m->grads[i];
          };
          step(0, B);  // the first step may size what it needs
          const vae::test::AllocCounts c = vae::test::count_allocations([&] {
            step(0, B);
            step(B, im.n - B);  // a shorter last batch
            step(0, B);
          });
          INFO("our blocks " << c.ours << c.ours_sites << "; OpenBLAS's own " << c.blas);
          CHECK(c.ours == 0);
        }
      }
  });
}

TEST_CASE("contract: parameters and state round-trip through a checkpoint file", "[contract][checkpoint]") {
  namespace fs = std::filesystem;
  for_each_family([](const auto& fam) {
    using M = typename std::decay_t<decltype(*fam.make())>;
    DYNAMIC_SECTION(fam.name) {
      const data::Images im = binary_images(24, fam.make()->data_dim(), 61);
      auto m1 = fam.make();
      typename M::Work w1;
      m1->reserve(w1, 8);
      std::vector<uint32_t> order(im.n);
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = uint32_t(i);
      std::mt19937_64 rng(8);
      for (std::size_t s = 0; s < 3; ++s) {
        train_step(*m1, w1, im, order.data() + s * 8, 8, false, rng, ObjectiveParams{1.0, 0.0});
        for (std::size_t i = 0; i < m1->params.size(); ++i) m1->params[i] -= 0.05 * m1->grads[i];
      }
      // A checkpoint holds floats (the training precision): round the double model to them first.
      for (auto& v : m1->params) v = double(float(v));
      for (auto& v : m1->state) v = double(float(v));
      Checkpoint ck;
      ck.params.assign(m1->params.begin(), m1->params.end());
      ck.model_state.assign(m1->state.begin(), m1->state.end());
      const fs::path file = fs::temp_directory_path() /
                            ("vae_contract_" + std::to_string(::getpid()) + ".ckpt");
      save_checkpoint(file.string(), ck);
      const Checkpoint back = load_checkpoint(file.string());
      fs::remove(file);
      auto m0 = fam.make();
      REQUIRE(back.params.size() == m0->params.size());
      REQUIRE(back.model_state.size() == m0->state.size());
      auto eval = [&](M& m) {
        typename M::Work e;
        m.reserve(e, 10);
        e.training = false;
        std::mt19937_64 r(9);
        return evaluate_elbo(m, e, im, r).elbo;
      };
      const double before = eval(*m1);
      std::copy(back.params.begin(), back.params.end(), m0->params.begin());
      if (!m0->state.empty()) {
        // the state matters: without it (the fresh model's) the evaluation differs
        CHECK(eval(*m0) != before);
        std::copy(back.model_state.begin(), back.model_state.end(), m0->state.begin());
      }
      CHECK(eval(*m0) == before);
    }
  });
}

TEST_CASE("contract: stopping, checkpointing and resuming into a fresh model and optimizer equals the "
          "uninterrupted run",
          "[contract][checkpoint][resume]") {
  namespace fs = std::filesystem;
  for_each_family([](const auto& fam) {
    using M = typename std::decay_t<decltype(*fam.make())>;
    DYNAMIC_SECTION(fam.name) {
      const data::Images im = binary_images(16, fam.make()->data_dim(), 71);
      std::vector<uint32_t> order(im.n);
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = uint32_t(i);
      const std::size_t steps = 4, B = 8;  // two batches an epoch: stop after the first epoch
      auto adam_for = [](M& m) {
        Optimizer<double> opt;
        opt.configure("adam", 0.9, 0.999, 1e-8, 1e-10, m.params.size());
        return opt;
      };
      auto train = [&](M& m, typename M::Work& w, Optimizer<double>& opt, std::mt19937_64& rng,
                       std::size_t from, std::size_t to) {
        for (std::size_t s = from; s < to; ++s)
          train_step_update(m, w, im, order.data() + (s % 2) * B, B, true, rng, ObjectiveParams{1.0, 0.0}, opt,
                            1e-2);
      };
      // A checkpoint holds floats, the training precision, in which storing is exact: the
      // double run without a stop rounds to them at the same point.
      auto round_to_float = [](auto& buffer) {
        for (auto& v : buffer) v = double(float(v));
      };

      auto a = fam.make();  // uninterrupted
      typename M::Work wa;
      a->reserve(wa, B);
      Optimizer<double> oa = adam_for(*a);
      std::mt19937_64 ra(5);
      train(*a, wa, oa, ra, 0, steps / 2);
      for (auto* buffer : {&a->params, &a->state, &oa.adam.m, &oa.adam.v}) round_to_float(*buffer);
      train(*a, wa, oa, ra, steps / 2, steps);

      auto b = fam.make();  // stopped after steps / 2, through the checkpoint file training writes
      typename M::Work wb;
      b->reserve(wb, B);
      Optimizer<double> ob = adam_for(*b);
      std::mt19937_64 rb(5);
      train(*b, wb, ob, rb, 0, steps / 2);
      Checkpoint ck;
      ck.params.assign(b->params.begin(), b->params.end());
      ck.model_state.assign(b->state.begin(), b->state.end());
      save_optimizer(ck, ob);
      ck.rng_state = rng_to_string(rb);
      const fs::path file = fs::temp_directory_path() / ("vae_resume_" + std::to_string(::getpid()) + ".ckpt");
      save_checkpoint(file.string(), ck);
      const Checkpoint back = load_checkpoint(file.string());
      fs::remove(file);

      auto c = fam.make();  // resumed: a fresh model, optimizer, work buffers and stream
      typename M::Work wc;
      c->reserve(wc, B);
      Optimizer<double> oc = adam_for(*c);
      std::mt19937_64 rc(1);
      REQUIRE(back.params.size() == c->params.size());
      REQUIRE(back.model_state.size() == c->state.size());
      std::copy(back.params.begin(), back.params.end(), c->params.begin());
      std::copy(back.model_state.begin(), back.model_state.end(), c->state.begin());
      restore_optimizer(back, oc);
      rng_from_string(rc, back.rng_state);
      train(*c, wc, oc, rc, steps / 2, steps);

      bool moved = false;
      for (std::size_t i = 0; i < b->params.size(); ++i) moved |= b->params[i] != a->params[i];
      CHECK(moved);  // the second half trained
      CHECK(std::equal(a->params.begin(), a->params.end(), c->params.begin(), c->params.end()));
      CHECK(std::equal(a->state.begin(), a->state.end(), c->state.begin(), c->state.end()));
      CHECK(std::equal(oa.adam.m.begin(), oa.adam.m.end(), oc.adam.m.begin(), oc.adam.m.end()));
      CHECK(std::equal(oa.adam.v.begin(), oa.adam.v.end(), oc.adam.v.begin(), oc.adam.v.end()));
      CHECK(oa.adam.t == oc.adam.t);
    }
  });
}

TEST_CASE("registry: a family defined in a test joins --model, the settings, their checks and the run "
          "identity by one registration line",
          "[contract][registry]") {
  const ConfigMap before = default_config();
  const std::string identity_before = identity_settings_json(before);
  REQUIRE(find_option("toy-latent") == nullptr);
  {
    const ScopedFamily registered(vae::test::toy_linear_family());  // the registration line
    const OptionSpec* model = find_option("model");
    REQUIRE(model);
    CHECK(std::count(model->choices.begin(), model->choices.end(), "toy-linear") == 1);
    REQUIRE(find_option("toy-latent"));
    // A family's new settings at their defaults leave every identity as it was.
    CHECK(identity_settings_json(default_config()) == identity_before);
    ConfigMap c = default_config();
    apply(c, {{"model", std::string("toy-linear")}, {"toy-latent", int64_t(5)}});
    CHECK_THROWS_WITH(apply(c, {{"toy-latent", int64_t(0)}}), Catch::Contains("toy-latent"));  // its range
    CHECK(identity_settings_json(c).find("\"toy-latent\":5") != std::string::npos);
    const TrainConfig tc = to_train_config(c);
    std::mt19937_64 init(1);
    auto m = make_model(tc, 4, 4, init);  // its factory, reading its setting
    CHECK(m->latent_dim() == 5);
    const data::Images im = binary_images(8, 16, 81);
    std::vector<uint32_t> order(im.n);
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = uint32_t(i);
    m->reserve(8, 8);
    std::mt19937_64 rng(2);
    CHECK(std::isfinite(m->train_step(im, order.data(), 8, false, rng, ObjectiveParams{}).loss));
    // its check runs when it is chosen
    apply(c, {{"likelihood", std::string("gaussian")}, {"binarize", std::string("none")}});
    CHECK_THROWS_WITH(validate(c), Catch::Contains("toy-linear has a Bernoulli decoder only"));
  }
  CHECK(find_option("toy-latent") == nullptr);
  CHECK(default_config() == before);
}
}  // namespace test_contract
