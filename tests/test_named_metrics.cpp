// Named metrics and per-unit vectors (issue 15 item 6): a family reports its own through
// the optional contract hooks (eval_sums / eval_report, kDiscreteCodes), evaluate() and the
// adapter pass them on under their names, and the store keeps any name in the runs table's
// vector column without a schema change, reading older databases' bare KL arrays as well.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>

#include "models/adapter.hpp"
#include "models/algorithms.hpp"
#include "report/export.hpp"
#include "report/run_detail.hpp"
#include "report/selection.hpp"
#include "store/results_store.hpp"
#include "store/unit_vectors.hpp"
#include "store_test_util.hpp"
#include "toy_linear_family.hpp"

// This file's names stay its own: the model tests compile in unity groups (CMakeLists.txt).
namespace test_named_metrics {

using namespace vae;

namespace {

// The toy family with metrics of its own: the mean pixel ("pixel_mean") and how often each
// pixel is on ("pixel_on", a vector), and -- declared -- discrete codes, so no active units.
template <class T>
struct ToyWithMetrics : test::ToyLinearVae<T> {
  using Base = test::ToyLinearVae<T>;
  using Base::Base;
  static constexpr bool kDiscreteCodes = true;
  void eval_sums(typename Base::Work& w, std::size_t rows, EvalSums& sums) const {
    std::vector<double>& on = sums["pixel_on"];
    on.resize(this->D, 0.0);
    for (std::size_t i = 0; i < rows * this->D; ++i) on[i % this->D] += double(w.x.data[i]);
  }
  void eval_report(const EvalSums& sums, std::size_t n, ElboReport& r) const {
    std::vector<double> on = sums.at("pixel_on");
    double total = 0;
    for (double& v : on) {
      total += v;
      v /= double(n);
    }
    r.metrics["pixel_mean"] = total / double(n * this->D);
    r.vectors["pixel_on"] = on;
  }
  // A training-loss term outside the bound (a VQ-VAE's codebook and commitment terms): here
  // 0.5 per row; its gradient is 0, so backward() needs nothing more.
  double extra_loss(typename Base::Work&, std::size_t rows) const { return 0.5 * double(rows); }
};

data::Images images(std::size_t n, uint64_t seed) {
  data::Images im;
  im.n = n;
  im.rows = 4;
  im.cols = 4;
  im.scale = 1.0f;
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution b(0.3);
  im.pixels.resize(n * 16);
  for (auto& p : im.pixels) p = uint8_t(b(rng));
  return im;
}

}  // namespace

TEST_CASE("named metrics: a family's own metrics and vectors reach evaluate() under their names",
          "[named-metrics]") {
  const data::Images im = images(23, 5);  // 23 rows: chunks of 10, 10, 3
  std::vector<double> on(16, 0.0);
  double total = 0;
  for (std::size_t i = 0; i < im.pixels.size(); ++i) {
    on[i % 16] += im.pixels[i] / 23.0;
    total += im.pixels[i];
  }
  ToyWithMetrics<double> m(16, 3, 8);
  std::mt19937_64 init(1);
  m.initialize(Init::Uniform, 0, init);
  typename ToyWithMetrics<double>::Work w;
  m.reserve(w, 10);
  std::mt19937_64 rng(2);
  const ElboReport r = evaluate_elbo(m, w, im, rng);
  CHECK(r.metrics.at("pixel_mean") == Approx(total / (23.0 * 16)).epsilon(1e-14));
  REQUIRE(r.vector("pixel_on").size() == 16);
  for (std::size_t d = 0; d < 16; ++d) CHECK(r.vector("pixel_on")[d] == Approx(on[d]).epsilon(1e-14));
  // discrete codes: no active units, no code variance; the bound and its KL per unit remain
  CHECK(r.metrics.count("active_units") == 0);
  CHECK(r.vectors.count("mu_variance") == 0);
  CHECK(r.vector("kl_per_dim").size() == 3);
  CHECK(r.elbo == Approx(-(r.rec + r.kl)));

  // The same family in float behind the program-level Model.
  FamilyModel<ToyWithMetrics<float>> model(16, 3, 8);
  model.reserve(8, 10);
  std::mt19937_64 rng2(2);
  const ElboReport rf = model.evaluate(im, rng2);
  CHECK(rf.metrics.at("pixel_mean") == Approx(r.metrics.at("pixel_mean")).epsilon(1e-6));
  CHECK(rf.vector("pixel_on").size() == 16);
  CHECK(rf.vector("no_such_vector").empty());

  // The Gaussian family itself keeps reporting active units and the code variances.
  test::ToyLinearVae<double> g(16, 3, 8);
  g.initialize(Init::Uniform, 0, init);
  typename test::ToyLinearVae<double>::Work gw;
  g.reserve(gw, 10);
  const ElboReport rg = evaluate_elbo(g, gw, im, rng);
  CHECK(rg.metrics.count("active_units") == 1);
  CHECK(rg.vector("mu_variance").size() == 3);
}

TEST_CASE("contract hooks: extra_loss joins the ELBO objective's loss, discrete codes make IW one sample",
          "[named-metrics]") {
  ToyWithMetrics<double> m(16, 3, 8);
  test::ToyLinearVae<double> g(16, 3, 8);
  std::mt19937_64 i1(1), i2(1);
  m.initialize(Init::Uniform, 0, i1);
  g.initialize(Init::Uniform, 0, i2);
  typename ToyWithMetrics<double>::Work wm;
  typename test::ToyLinearVae<double>::Work wg;
  m.reserve(wm, 6);
  g.reserve(wg, 6);
  std::mt19937_64 r1(3), r2(3);
  for (std::size_t i = 0; i < 6 * 16; ++i) wm.x.data[i] = wg.x.data[i] = double(i % 3 == 0);
  m.draw_noise(wm, 6, r1);
  g.draw_noise(wg, 6, r2);
  m.forward(wm, 6);
  g.forward(wg, 6);
  const BatchLoss lm = elbo_objective(m, wm, 6, ObjectiveParams{}),
                  lg = elbo_objective(g, wg, 6, ObjectiveParams{});
  CHECK(lm.loss == lg.loss + 0.5);  // 0.5 per row, averaged over the rows
  CHECK(lm.rec == lg.rec);          // the bound's parts are untouched
  CHECK(lm.kl == lg.kl);
  // A point-mass posterior: K samples are one sample (here the same noise stream either way).
  const data::Images im = images(5, 9);
  std::mt19937_64 a(4), b(4);
  typename ToyWithMetrics<double>::Work w;
  m.reserve(w, 64);
  CHECK(iw_nll(m, w, im, 0, 64, 32, a) == iw_nll(m, w, im, 0, 1, 32, b));
}

TEST_CASE("named metrics: per-unit vectors as the store keeps them (any name, older bare KL arrays)",
          "[named-metrics][store]") {
  using store::parse_unit_vectors;
  using store::unit_vectors_json;
  const store::UnitVectors v = {{"kl_per_dim", {0.5, 0.25}}, {"code_usage", {0.75, 0, 0.25}}};
  CHECK(unit_vectors_json(v) == R"({"code_usage":[0.75,0.0,0.25],"kl_per_dim":[0.5,0.25]})");
  CHECK(parse_unit_vectors(unit_vectors_json(v)) == v);
  CHECK(unit_vectors_json({}).empty());
  CHECK(parse_unit_vectors("").empty());
  CHECK(parse_unit_vectors("null").empty());
  // a database written before the vectors were named: the column is the KL array
  CHECK(parse_unit_vectors("[0.01, 3.5]") == store::UnitVectors{{"kl_per_dim", {0.01, 3.5}}});
  // NaN is written as null and read back as NaN
  const auto nan = parse_unit_vectors(unit_vectors_json({{"x", {std::nan("")}}}));
  CHECK(std::isnan(nan.at("x").at(0)));
  CHECK_THROWS_WITH(parse_unit_vectors("3"), Catch::Contains("expected a JSON object or array"));
  CHECK_THROWS_WITH(parse_unit_vectors(R"({"a": [1, "b"]})"), Catch::Contains("'a' holds a non-number"));
  CHECK_THROWS_WITH(parse_unit_vectors(R"({"a": 1})"), Catch::Contains("'a' is not an array"));
}

TEST_CASE("named metrics: a run's vectors come back by name from run_detail and export",
          "[named-metrics][store]") {
  vae::testing::TempDir dir;
  auto db = store::open_for_writing(dir.file("r.db"));
  auto [plan, sid] = vae::testing::register_sweep(*db, "name = \"g\"\nseeds = [0, 1]\n");
  REQUIRE(plan.runs.size() == 2);
  const std::string vq = plan.runs[0].run_id, legacy = plan.runs[1].run_id;
  db->write([&] {
    db->prepare("UPDATE runs SET status = 'done', kl_per_dim = ? WHERE run_id = ?")
        .bind(1, store::unit_vectors_json({{"code_usage", {0.5, 0.5, 0}}}))
        .bind(2, vq)
        .run();
    db->prepare("UPDATE runs SET status = 'done', kl_per_dim = '[1.5,0.0]' WHERE run_id = ?")
        .bind(1, legacy)
        .run();
  });
  const auto rows = report::load_runs(*db, {vq, legacy});
  REQUIRE(rows.size() == 2);
  for (const auto& row : rows) {
    const nlohmann::json j = report::run_detail(*db, row);
    if (row.run_id == vq) {
      CHECK(j["unit_vectors"] == nlohmann::json::parse(R"({"code_usage":[0.5,0.5,0.0]})"));
      CHECK(j["kl_per_dim"].is_null());
    } else {
      CHECK(j["unit_vectors"] == nlohmann::json::parse(R"({"kl_per_dim":[1.5,0.0]})"));
      CHECK(j["kl_per_dim"] == nlohmann::json::array({1.5, 0.0}));
    }
  }
  // export: kl_per_dim (the KL array, as before) and unit_vectors (all of them, one form)
  const report::Frame f = report::export_runs(*db, {vq, legacy});
  const auto col = [&](const std::string& name) {
    const auto it = std::find(f.columns.begin(), f.columns.end(), name);
    REQUIRE(it != f.columns.end());
    return std::size_t(it - f.columns.begin());
  };
  const std::size_t kl = col("kl_per_dim"), all = col("unit_vectors");
  REQUIRE(f.rows.size() == 2);
  for (const auto& row : f.rows) {
    const std::string id = std::get<std::string>(row[0]);
    if (id == vq) {
      CHECK(std::holds_alternative<std::monostate>(row[kl]));
      CHECK(std::get<std::string>(row[all]) == R"({"code_usage":[0.5,0.5,0.0]})");
    } else {
      CHECK(std::get<std::string>(row[kl]) == "[1.5,0.0]");
      CHECK(std::get<std::string>(row[all]) == R"({"kl_per_dim":[1.5,0.0]})");
    }
  }
}

}  // namespace test_named_metrics
