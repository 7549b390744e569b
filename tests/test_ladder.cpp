// The Ladder VAE and the hierarchical VAE (Sonderby et al. 2016): the precision-weighted
// merge and the Gaussian KL on known numbers, finite-difference gradient checks in double
// through 2-layer models (batch norm in training mode), the importance-weighted estimate
// against the ELBO, batch-norm state in checkpoints, and a short end-to-end run.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "gradcheck.hpp"
#include "models/algorithms.hpp"
#include "models/ladder.hpp"
#include "models/settings.hpp"
#include "nn/optimizer.hpp"
#include "train/checkpoint.hpp"
#include "train/run.hpp"

// This file's names stay its own: the model tests compile in unity groups (CMakeLists.txt).
namespace test_ladder {

using namespace vae;
namespace fs = std::filesystem;

TEST_CASE("precision-weighted merge equals the formula on known numbers", "[ladder]") {
  // (mu_hat, var_hat, mu_p, var_p) -> var_q = 1/(1/var_hat + 1/var_p),
  // mu_q = (mu_hat/var_hat + mu_p/var_p) var_q, worked by hand:
  struct Row {
    double mu_hat, var_hat, mu_p, var_p, mu_q, var_q;
  };
  const Row rows[] = {
      {1.0, 4.0, -2.0, 1.0, -1.4, 0.8},                       // precisions 1/4 + 1 = 5/4
      {3.0, 1.0, 3.0, 1.0, 3.0, 0.5},                         // equal estimates: same mean, half the variance
      {-1.0, 2.0, 1.0, 6.0, -0.5, 1.5},                       // 1/2 + 1/6 = 2/3; (-1/2 + 1/6) * 3/2
      {0.0, 1e-4, 10.0, 1.0, 10.0 / 10001.0, 1.0 / 10001.0},  // a sharp bottom-up estimate wins
  };
  const std::size_t n = std::size(rows);
  std::vector<double> mh(n), vh(n), mp(n), vp(n), mq(n), vq(n), kl(n);
  for (std::size_t i = 0; i < n; ++i) {
    mh[i] = rows[i].mu_hat;
    vh[i] = rows[i].var_hat;
    mp[i] = rows[i].mu_p;
    vp[i] = rows[i].var_p;
  }
  auto MQ = mat(mq.data(), n, 1), VQ = mat(vq.data(), n, 1), KL = mat(kl.data(), n, 1);
  merge_forward(MQ, VQ, mat(mh.data(), n, 1), mat(vh.data(), n, 1), mat(mp.data(), n, 1), mat(vp.data(), n, 1));
  for (std::size_t i = 0; i < n; ++i) {
    INFO("row " << i);
    CHECK(mq[i] == Approx(rows[i].mu_q).epsilon(1e-14).margin(1e-15));
    CHECK(vq[i] == Approx(rows[i].var_q).epsilon(1e-14));
    // and literally the formula of DESIGN.md
    const double v = 1.0 / (1.0 / vh[i] + 1.0 / vp[i]);
    CHECK(vq[i] == Approx(v).epsilon(1e-14));
    CHECK(mq[i] == Approx((mh[i] / vh[i] + mp[i] / vp[i]) * v).epsilon(1e-13).margin(1e-15));
  }
  // KL(N(-1.4, 0.8) || N(-2, 1)) = (log(1/0.8) + 0.8 + 0.36 - 1) / 2; KL(p || p) = 0
  kl_gaussians_forward(KL, MQ, VQ, mat(mp.data(), n, 1), mat(vp.data(), n, 1));
  CHECK(kl[0] == Approx(0.5 * (std::log(1.25) + 0.16)).epsilon(1e-14));
  std::vector<double> same{0.3}, same_var{0.7}, out{1.0};
  auto O = mat(out.data(), 1, 1);
  kl_gaussians_forward(O, mat(same.data(), 1, 1), mat(same_var.data(), 1, 1), mat(same.data(), 1, 1),
                       mat(same_var.data(), 1, 1));
  CHECK(out[0] == Approx(0.0).margin(1e-15));
  // KL(N(1, 1) || N(0, 1)) = 1/2 by both formulas
  std::vector<double> one{1.0}, unit{1.0}, zero{0.0};
  kl_standard_forward(O, mat(one.data(), 1, 1), mat(unit.data(), 1, 1));
  CHECK(out[0] == Approx(0.5).epsilon(1e-15));
  kl_gaussians_forward(O, mat(one.data(), 1, 1), mat(unit.data(), 1, 1), mat(zero.data(), 1, 1),
                       mat(unit.data(), 1, 1));
  CHECK(out[0] == Approx(0.5).epsilon(1e-15));
}

TEST_CASE("variance heads: softplus, exp and exp-sigma on known numbers, their derivatives against finite "
          "differences",
          "[ladder][variance]") {
  const std::vector<double> a{-3.0, -0.5, 0.0, std::log(2.0), 1.7};
  const std::size_t n = a.size();
  auto A = mat(const_cast<double*>(a.data()), n, 1);
  for (VarianceHead h : {VarianceHead::Softplus, VarianceHead::Exp, VarianceHead::ExpSigma}) {
    const bool ex = h == VarianceHead::Exp, sig = h == VarianceHead::ExpSigma;
    DYNAMIC_SECTION((ex ? "exp" : sig ? "exp-sigma" : "softplus")) {
      std::vector<double> var(n), dvar(n), da(n);
      auto V = mat(var.data(), n, 1), DV = mat(dvar.data(), n, 1), DA = mat(da.data(), n, 1);
      variance_forward(h, V, A);
      for (std::size_t i = 0; i < n; ++i) {
        INFO("a = " << a[i]);
        // exp-sigma: a is log sigma, so the variance is sigma^2 = exp(a)^2
        const double want = ex    ? std::exp(a[i])
                            : sig ? std::exp(a[i]) * std::exp(a[i])
                                  : std::log1p(std::exp(a[i])) + kVarFloor;
        CHECK(var[i] == Approx(want).epsilon(1e-14));
        dvar[i] = 0.3 + double(i);  // an upstream gradient
      }
      if (ex) {
        CHECK(var[2] == 1.0);
        CHECK(var[3] == Approx(2.0).epsilon(1e-15));
      }
      if (sig) {
        CHECK(var[2] == 1.0);
        CHECK(var[3] == Approx(4.0).epsilon(1e-15));  // sigma = 2
      }
      variance_backward(h, DA, DV, A, V);
      for (std::size_t i = 0; i < n; ++i) {
        const double e = 1e-6;
        std::vector<double> ap{a[i] + e}, am{a[i] - e}, vp(1), vm(1);
        auto VP = mat(vp.data(), 1, 1), VM = mat(vm.data(), 1, 1);
        variance_forward(h, VP, mat(ap.data(), 1, 1));
        variance_forward(h, VM, mat(am.data(), 1, 1));
        const double fd = (0.3 + double(i)) * (vp[0] - vm[0]) / (2 * e);
        INFO("a = " << a[i] << ": analytic " << da[i] << ", finite difference " << fd);
        CHECK(da[i] == Approx(fd).epsilon(1e-8));
      }
      // da may alias dvar (as the models call it)
      variance_backward(h, DV, DV, A, V);
      CHECK(dvar == da);
    }
  }
}

namespace {

struct GradCase {
  const char* name;
  Inference inference;
  bool batchnorm, training;
  const char* act;
  LikelihoodKind kind;
  SigmaMode sigma;
  double free_bits;  // > 0: free bits on, lambda chosen between the units' KLs
  VarianceHead variance = VarianceHead::Softplus;
};

LadderShape small_shape(const GradCase& c) {
  LadderShape s;
  s.data_dim = 7;
  s.latent = {3, 2};
  s.hidden = {6, 5};
  s.depth = 2;
  s.act = parse_nonlinearity(c.act);
  s.batchnorm = c.batchnorm;
  s.inference = c.inference;
  s.variance = c.variance;
  return s;
}

}  // namespace

TEST_CASE("2-layer Ladder and hierarchical VAE gradients match finite differences", "[ladder][gradcheck]") {
  const auto L = Inference::Ladder, H = Inference::BottomUp;
  const auto Bern = LikelihoodKind::Bernoulli, Gauss = LikelihoodKind::Gaussian;
  const GradCase cases[] = {
      {"ladder bn train tanh", L, true, true, "tanh", Bern, SigmaMode::Fixed, 0.0},
      {"ladder bn train leaky-relu", L, true, true, "leaky-relu", Bern, SigmaMode::Fixed, 0.0},
      {"ladder bn eval elu", L, true, false, "elu", Bern, SigmaMode::Fixed, 0.0},
      {"ladder no bn softplus free bits", L, false, true, "softplus", Bern, SigmaMode::Fixed, 1.0},
      {"ladder bn gaussian learned sigma", L, true, true, "tanh", Gauss, SigmaMode::Learned, 0.0},
      {"ladder bn gaussian per-pixel", L, true, true, "tanh", Gauss, SigmaMode::PerPixel, 0.0},
      {"hierarchical bn train tanh", H, true, true, "tanh", Bern, SigmaMode::Fixed, 0.0},
      {"hierarchical bn train leaky-relu", H, true, true, "leaky-relu", Bern, SigmaMode::Fixed, 0.0},
      {"hierarchical bn eval elu", H, true, false, "elu", Bern, SigmaMode::Fixed, 0.0},
      {"hierarchical no bn softplus free bits", H, false, true, "softplus", Bern, SigmaMode::Fixed, 1.0},
      {"hierarchical bn gaussian per-pixel", H, true, true, "tanh", Gauss, SigmaMode::PerPixel, 0.0},
      {"hierarchical no bn tanh exp", H, false, true, "tanh", Bern, SigmaMode::Fixed, 0.0, VarianceHead::Exp},
      {"hierarchical no bn tanh exp-sigma", H, false, true, "tanh", Bern, SigmaMode::Fixed, 0.0,
       VarianceHead::ExpSigma},
      {"ladder no bn tanh exp-sigma", L, false, true, "tanh", Bern, SigmaMode::Fixed, 0.0,
       VarianceHead::ExpSigma},
  };
  for (const GradCase& c : cases) {
    DYNAMIC_SECTION(c.name) {
      Likelihood<double> lik;
      lik.kind = c.kind;
      lik.sigma = c.sigma;
      lik.min_log_sigma = -2.0;
      LadderVae<double> model(small_shape(c), lik);
      std::mt19937_64 rng(42);
      model.initialize(Init::Uniform, 0, rng);
      std::normal_distribution<double> n(0.0, 1.0);
      std::uniform_real_distribution<double> u(0.0, 1.0);
      // batch-norm parameters and running statistics away from their initial 1, 0, 0, 1
      for (const auto& g : model.param_groups())
        if (g.name.find("gamma") != std::string::npos)
          for (std::size_t j = 0; j < g.size; ++j) model.params[g.offset + j] = 1.0 + 0.3 * n(rng);
        else if (g.name.find("beta") != std::string::npos)
          for (std::size_t j = 0; j < g.size; ++j) model.params[g.offset + j] = 0.3 * n(rng);
      std::vector<const BnMlp<double>*> blocks{&model.dec};
      for (const auto& b : model.up) blocks.push_back(&b);
      for (const auto& b : model.down) blocks.push_back(&b);
      for (const BnMlp<double>* b : blocks)
        for (const BatchNorm& bn : b->norms)
          for (std::size_t j = 0; j < bn.n; ++j) {
            model.state[bn.mean + j] = 0.2 * n(rng);
            model.state[bn.var + j] = 0.6 + u(rng);
          }
      if (model.lik.has_shared_param()) model.params[model.lik.shared_offset] = -0.4;

      const std::size_t B = 5;
      typename LadderVae<double>::Work w;
      model.reserve(w, 8);
      for (std::size_t i = 0; i < B * 7; ++i) w.x.data[i] = c.kind == Bern ? double(u(rng) < 0.4) : u(rng);
      for (auto& l : w.layer)
        for (auto& e : l.eps.data) e = n(rng);
      ObjectiveParams p{1.5, 0.0};
      if (c.free_bits > 0) {
        // lambda between the units' KLs, so that some units are clamped and others not
        model.forward(w, B, c.training);
        std::vector<double> kls;
        for (std::size_t i = 0; i < model.layers(); ++i) {
          const std::size_t S = model.shape.latent[i];
          for (std::size_t j = 0; j < S; ++j) {
            double k = 0;
            for (std::size_t b = 0; b < B; ++b) k += w.layer[i].kl.data[b * S + j];
            kls.push_back(k / double(B));
          }
        }
        std::sort(kls.begin(), kls.end());
        p.free_bits = 0.5 * (kls[kls.size() / 2 - 1] + kls[kls.size() / 2]);
      }

      std::fill(model.grads.begin(), model.grads.end(), 0.0);
      std::vector<double> kl_layer;
      model.forward(w, B, c.training);
      const BatchLoss l = elbo_objective(model, w, B, p);
      for (std::size_t i = 0; i < model.layers(); ++i) {  // each layer's batch-mean KL
        double k = 0;
        for (std::size_t e = 0; e < B * model.shape.latent[i]; ++e) k += w.layer[i].kl.data[e];
        kl_layer.push_back(k / double(B));
      }
      model.backward(w, B, 1.0 / double(B));
      REQUIRE(std::isfinite(l.loss));
      REQUIRE(kl_layer.size() == 2);
      CHECK(kl_layer[0] + kl_layer[1] == Approx(l.kl));
      if (c.free_bits > 0) {  // the case must exercise the clamp on some unit and not on others
        std::size_t clamped = 0, total = 0;
        for (double kw : w.unit_weight) clamped += kw == 0.0, ++total;
        INFO("clamped " << clamped << " of " << total);
        CHECK(clamped > 0);
        CHECK(clamped < total);
      }
      std::vector<double> analytic(model.grads.begin(), model.grads.end());
      auto f = [&]() {
        model.forward(w, B, c.training);
        return elbo_objective(model, w, B, p).loss;
      };
      std::vector<vae::test::Group> groups;
      std::size_t covered = 0;
      for (const auto& g : model.param_groups()) {
        groups.push_back({g.name, g.offset, g.size});
        covered += g.size;
      }
      REQUIRE(covered == model.num_params());  // every parameter is checked
      const double err = vae::test::max_rel_error(model.params, analytic, f, groups);
      INFO("max relative error " << err);
      CHECK(err <= 1e-6);
    }
  }
}

namespace {

// n random binary 7x7 images, each repeated `copies` times (so averages over the copies
// estimate expectations for one image).
data::Images toy_images(std::size_t n, std::size_t copies, uint64_t seed) {
  data::Images im;
  im.n = n * copies;
  im.rows = im.cols = 7;
  im.scale = 1.0f;
  std::mt19937_64 rng(seed);
  std::vector<uint8_t> base(n * 49);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < 49; ++j) {
      // a little structure: a diagonal band per image plus noise
      const std::size_t r = j / 7, c = j % 7;
      const bool band = (r + c + i) % 5 < 2;
      base[i * 49 + j] = uint8_t((rng() % 10) < (band ? 8u : 1u));
    }
  for (std::size_t k = 0; k < copies; ++k) im.pixels.insert(im.pixels.end(), base.begin(), base.end());
  return im;
}

ConfigMap toy_config(const std::string& model, bool bn) {
  ConfigMap c = default_config();
  apply(c, {{"model", model},
            {"layers", std::vector<int64_t>{4, 3}},
            {"det-layers", std::vector<int64_t>{16, 8}},
            {"batchnorm", bn},
            {"activation", std::string("leaky-relu")}});
  return c;
}

}  // namespace

TEST_CASE("importance-weighted estimate is at least the ELBO, and K = 1 is the ELBO", "[ladder][iwae]") {
  for (const char* name : {"ladder", "hierarchical"}) {
    DYNAMIC_SECTION(name) {
      const TrainConfig tc = to_train_config(toy_config(name, true));
      std::mt19937_64 init(3), rng(4);
      auto model = make_model(tc, 7, 7, init);
      model->reserve(32, 500);
      // a few hundred steps so that q is far from p and the running statistics are real
      const data::Images train = toy_images(40, 1, 11);
      std::vector<uint32_t> idx(40);
      Optimizer<float> opt;
      opt.configure("adam", 0.9, 0.999, 1e-8, 1e-10, model->num_params());
      for (int step = 0; step < 300; ++step) {
        std::iota(idx.begin(), idx.end(), 0u);
        std::shuffle(idx.begin(), idx.end(), rng);
        model->train_step(train, idx.data(), 32, false, rng, ObjectiveParams{1.0, 0.0});
        opt.step(model->params(), model->grads(), 3e-3);
      }
      // 20 images, each 100 times: ELBO and the K = 1 log-weight are the same expectation
      const data::Images test = toy_images(20, 100, 11);
      auto r1 = std::mt19937_64(5), r2 = std::mt19937_64(6), r3 = std::mt19937_64(7);
      const ElboReport e = model->evaluate(test, r1);
      const double nll_k1 = model->iw_nll(test, 0, 1, 500, r2);
      const double nll_k500 = model->iw_nll(test, 20, 500, 128, r3);
      INFO("ELBO " << e.elbo << ", K=1 " << -nll_k1 << ", K=500 " << -nll_k500 << ", KL " << e.kl);
      CHECK(e.kl > 0.5);  // the test is not vacuous: q differs from the prior
      CHECK(-nll_k1 == Approx(e.elbo).epsilon(0.02));
      CHECK(-nll_k500 >= e.elbo);
      CHECK(-nll_k500 > -nll_k1 + 0.05);  // tighter by a margin larger than the noise here
      // per-layer reports
      CHECK(e.metrics.count("kl_layer1"));
      CHECK(e.metrics.count("kl_layer2"));
      CHECK(e.metrics.at("kl_layer1") + e.metrics.at("kl_layer2") == Approx(e.kl));
      CHECK(e.metrics.at("active_units_layer1") + e.metrics.at("active_units_layer2") ==
            e.metrics.at("active_units"));
      CHECK(e.vector("kl_per_dim").size() == 7);
      CHECK(model->latent_dim() == 7);
    }
  }
}

TEST_CASE("batch-norm running statistics: updated in training, used in evaluation, saved as state",
          "[ladder][batchnorm]") {
  const TrainConfig tc = to_train_config(toy_config("ladder", true));
  std::mt19937_64 init(3), rng(4);
  auto model = make_model(tc, 7, 7, init);
  model->reserve(20, 100);
  const std::vector<float> s0 = model->state();
  // 2 * (widths of all BN layers): up 16,16,8,8; down 8,8; decoder 16,16
  REQUIRE(s0.size() == 2 * (16 + 16 + 8 + 8 + 8 + 8 + 16 + 16));
  const data::Images im = toy_images(20, 1, 1);
  std::vector<uint32_t> idx(20);
  std::iota(idx.begin(), idx.end(), 0u);
  model->train_step(im, idx.data(), 20, false, rng, ObjectiveParams{1.0, 0.0});
  const std::vector<float> s1 = model->state();
  CHECK(s1 != s0);
  auto eval = [&](Model& m) {
    std::mt19937_64 r(9);
    return m.evaluate(im, r).elbo;
  };
  const double e1 = eval(*model);
  // another model with the same parameters: different statistics, different evaluation; the
  // same statistics loaded, the same numbers bit for bit
  std::mt19937_64 init2(3);
  auto other = make_model(tc, 7, 7, init2);
  other->reserve(20, 100);
  other->params() = model->params();
  CHECK(eval(*other) != e1);
  other->load_state(s1);
  CHECK(eval(*other) == e1);
  CHECK_THROWS_AS(other->load_state(std::vector<float>(3)), std::runtime_error);
}

TEST_CASE("ladder and hierarchical runs end to end: per-layer metrics, state in checkpoints",
          "[ladder][train]") {
  for (const char* name : {"ladder", "hierarchical"}) {
    DYNAMIC_SECTION(name) {
      ConfigMap c = default_config();
      apply(c, {{"model", std::string(name)},
                {"layers", std::vector<int64_t>{8, 4}},
                {"det-layers", std::vector<int64_t>{32, 16}},
                {"batchnorm", true},
                {"warmup", int64_t(2)},
                {"activation", std::string("leaky-relu")},
                {"train-size", int64_t(600)},
                {"test-size", int64_t(100)},
                {"batch", int64_t(50)},
                {"epochs", int64_t(2)},
                {"iw-samples", int64_t(20)},
                {"iw-examples", int64_t(10)}});
      const fs::path dir = fs::temp_directory_path() / ("vae_ladder_" + std::to_string(::getpid()) + name);
      fs::remove_all(dir);
      const RunResult r = train_and_evaluate(c, RunOptions{dir.string(), false, true, nullptr}, nullptr);
      REQUIRE(r.status == "done");
      for (const char* k : {"kl_layer1", "kl_layer2", "active_units_layer1", "active_units_layer2", "test_nll"})
        CHECK(r.metrics.count(k));
      CHECK(r.unit_vectors.at("kl_per_dim").size() == 12);
      CHECK(std::isfinite(r.metrics.at("test_nll")));
      CHECK(r.metrics.at("test_nll") <= -r.metrics.at("test_elbo") + 1.0);  // IW (K=20) near or below -ELBO
      const Checkpoint ck = load_checkpoint((dir / "last.ckpt").string());
      CHECK(ck.model_state.size() == 2 * (32 * 2 + 16 * 2 + 16 * 2 + 32 * 2));
      // resuming a finished run with more epochs continues from the saved statistics
      apply(c, {{"epochs", int64_t(3)}});
      const RunResult r2 = train_and_evaluate(c, RunOptions{dir.string(), true, true, nullptr}, nullptr);
      CHECK(r2.status == "done");
      CHECK(r2.epochs_done == 3);
      fs::remove_all(dir);
    }
  }
}

TEST_CASE("ladder settings are checked", "[ladder][config]") {
  ConfigMap c = default_config();
  apply(c, {{"model", std::string("ladder")}, {"det-layers", std::vector<int64_t>{64, 32}}});
  CHECK_THROWS_WITH(to_train_config(c), Catch::Contains("det-layers"));
  ConfigMap v = default_config();
  apply(v, {{"batchnorm", true}});
  CHECK_THROWS_WITH(to_train_config(v), Catch::Contains("batchnorm"));
  ConfigMap a = default_config();
  apply(a, {{"activation", std::string("leaky-relu")}});
  CHECK_THROWS_WITH(to_train_config(a), Catch::Contains("leaky-relu"));
  // the defaults are the paper's MNIST model
  const TrainConfig tc = to_train_config(toy_config("ladder", false));
  ConfigMap d = default_config();
  apply(d, {{"model", std::string("ladder")}});
  const LadderShape td = ladder_shape(to_train_config(d).settings, 784);
  CHECK(td.latent == std::vector<std::size_t>{64, 32, 16, 8, 4});
  CHECK(td.hidden == std::vector<std::size_t>{512, 256, 128, 64, 32});
  CHECK(td.depth == 2);
  CHECK(td.inference == Inference::Ladder);
  CHECK(ladder_shape(tc.settings, 784).latent.size() == 2);
  CHECK(td.variance == VarianceHead::Softplus);
  // --variance exp: ladder/hierarchical only
  ConfigMap e = default_config();
  apply(e, {{"variance", std::string("exp")}});
  CHECK_THROWS_WITH(to_train_config(e), Catch::Contains("variance"));
  ConfigMap h = default_config();
  apply(h, {{"model", std::string("hierarchical")},
            {"layers", std::vector<int64_t>{100, 50}},
            {"det-layers", std::vector<int64_t>{200, 100}},
            {"activation", std::string("tanh")},
            {"variance", std::string("exp")}});
  const LadderShape th = ladder_shape(to_train_config(h).settings, 784);
  CHECK(th.variance == VarianceHead::Exp);
  CHECK(th.inference == Inference::BottomUp);
  // IWAE with k > 1 trains these families too
  apply(h, {{"objective", std::string("iwae")}, {"k", int64_t(5)}});
  CHECK(to_train_config(h).objective == Objective::Iwae);
  ConfigMap l = default_config();
  apply(l, {{"model", std::string("ladder")}, {"objective", std::string("iwae")}, {"k", int64_t(5)}});
  CHECK(to_train_config(l).k == 5);
}

}  // namespace test_ladder
