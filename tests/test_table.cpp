// Comparison tables: aggregation over seeds checked against hand-computed values
// and a direct SQL query; the best cell; text, Markdown, CSV, LaTeX and JSON.
#include <catch2/catch.hpp>

#include <cmath>
#include <nlohmann/json.hpp>

#include "report/export.hpp"
#include "report/render.hpp"
#include "report/table.hpp"
#include "store_test_util.hpp"
#include "sweep/worker.hpp"

using namespace vae;
using namespace vae::report;
using vae::testing::TempDir;

namespace {

// test_nll = base(latent, beta) + offset(seed), offsets 0, 1, 5: every full cell has
// mean base + 2, sd sqrt(7), se sqrt(7)/sqrt(3).
double base_nll(int64_t latent, double beta) {
  if (latent == 2) return beta == 1.0 ? 97 : 95;
  return beta == 1.0 ? 90 : 92;
}
const double kOffset[] = {0, 1, 5};

// A database of the sweep latent {2, 5} x beta {1, 4} x seeds {0, 1, 2}; the run
// (latent 5, beta 4, seed 2) diverges when `with_divergence`.
std::unique_ptr<store::Db> make_db(const TempDir& dir, bool with_divergence) {
  std::string path = dir.file(with_divergence ? "d.db" : "t.db");
  int64_t sweep_id;
  {
    auto db = store::open_for_writing(path);
    sweep_id = vae::testing::register_sweep(*db, R"(
name = "lb"
seeds = 3
[grid]
latent = [2, 5]
beta = [1, 4]
)")
                   .second;
  }
  sweep::WorkerOptions o;
  o.db_path = path;
  o.runs_dir = dir.file("runs");
  o.sweep_id = sweep_id;
  sweep::run_worker(o, [&](const ConfigMap& c, const RunOptions&, RunHooks*) {
    int64_t latent = std::get<int64_t>(c.at("latent")), seed = std::get<int64_t>(c.at("seed"));
    double beta = std::get<double>(c.at("beta"));
    RunResult r;
    r.status = "done";
    double nll = base_nll(latent, beta) + kOffset[seed];
    r.metrics = {{"test_nll", nll}, {"test_elbo", -nll - 3.0}, {"active_units", double(latent)}};
    if (with_divergence && latent == 5 && beta == 4.0 && seed == 2) {
      r.status = "diverged";
      r.message = "loss is nan";
      r.metrics.clear();
    }
    return r;
  });
  return store::open_for_reading(path);
}

TableRequest request(const std::string& metric = "test_nll") {
  TableRequest rq;
  rq.selection.sweep = "lb";
  rq.rows = {"latent"};
  rq.cols = {"beta"};
  rq.metrics = {metric};
  return rq;
}

const double kSe = std::sqrt(7.0) / std::sqrt(3.0);

std::string g17(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

}  // namespace

TEST_CASE("statistics of a sample", "[table]") {
  CellStats s = stats_of({3, 1, 2});
  CHECK(s.n == 3);
  CHECK(s.mean == Approx(2.0));
  CHECK(s.sd == Approx(1.0));
  CHECK(s.se == Approx(1.0 / std::sqrt(3.0)));
  CHECK(s.median == 2.0);
  CHECK(s.min == 1.0);
  CHECK(s.max == 3.0);
  CHECK(stats_of({4, 1, 3, 2}).median == 2.5);
  CellStats one = stats_of({7});
  CHECK(one.mean == 7.0);
  CHECK(std::isnan(one.se));
  CHECK(stats_of({}).n == 0);
  CHECK(metric_direction("test_nll") == -1);
  CHECK(metric_direction("test_bpd") == -1);
  CHECK(metric_direction("test_elbo_bpd") == -1);
  CHECK(metric_direction("test_elbo") == +1);
  CHECK(metric_direction("valid_elbo") == +1);
  CHECK(metric_direction("samples_per_s") == +1);
  CHECK(metric_direction("train_s") == -1);
  CHECK(metric_direction("active_units") == 0);
  CHECK(metric_direction("test_kl") == 0);
}

TEST_CASE("latent x beta table: mean, standard error, n, best per row", "[table]") {
  TempDir dir;
  auto db = make_db(dir, false);
  Table t = build_table(*db, request());
  REQUIRE(t.row_values == std::vector<std::vector<std::string>>{{"2"}, {"5"}});
  REQUIRE(t.col_values == std::vector<std::vector<std::string>>{{"1"}, {"4"}});
  CHECK(t.uniform_n == 3);
  CHECK(t.direction == -1);
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 2; ++c) {
      const CellStats& cell = t.cells[r][c];
      CHECK(cell.n == 3);
      CHECK(cell.mean == base_nll(r ? 5 : 2, c ? 4.0 : 1.0) + 2.0);
      CHECK(cell.sd == Approx(std::sqrt(7.0)).epsilon(1e-14));
      CHECK(cell.se == Approx(kSe).epsilon(1e-14));
      CHECK(cell.run_ids.size() == 3);
    }
  // lower test_nll is better: latent 2 -> beta 4 (97), latent 5 -> beta 1 (92)
  CHECK_FALSE(t.cells[0][0].best);
  CHECK(t.cells[0][1].best);
  CHECK(t.cells[1][0].best);
  CHECK_FALSE(t.cells[1][1].best);

  // the same numbers as a direct SQL query
  auto q = db->prepare(R"(
    SELECT pl.value, pb.value, avg(m.value), count(*)
    FROM sweep_runs sr JOIN sweeps s USING (sweep_id) JOIN runs r USING (run_id)
    JOIN params pl ON pl.run_id = r.run_id AND pl.key = 'latent'
    JOIN params pb ON pb.run_id = r.run_id AND pb.key = 'beta'
    JOIN metrics m ON m.run_id = r.run_id AND m.name = 'test_nll'
    WHERE s.name = 'lb' AND r.status = 'done'
    GROUP BY pl.value, pb.value ORDER BY pl.value, pb.value)");
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 2; ++c) {
      REQUIRE(q.step());
      CHECK(q.get_double(2) == Approx(t.cells[r][c].mean).epsilon(1e-15));
      CHECK(q.get_int(3) == t.cells[r][c].n);
    }

  // higher test_elbo is better; --best overrides; none marks nothing
  Table e = build_table(*db, request("test_elbo"));
  CHECK(e.direction == +1);
  CHECK(e.cells[0][1].best);
  CHECK(e.cells[1][0].best);
  TableRequest rq = request();
  rq.best = "max";
  Table m = build_table(*db, rq);
  CHECK(m.cells[0][0].best);
  CHECK(m.cells[1][1].best);
  rq.best = "none";
  Table n = build_table(*db, rq);
  for (const auto& row : n.cells)
    for (const auto& c : row) CHECK_FALSE(c.best);
  // a metric without a known direction marks nothing unless told
  Table au = build_table(*db, request("active_units"));
  CHECK(au.direction == 0);
  CHECK_FALSE(au.cells[0][0].best);
  CHECK(render_table(au, Format::Text).find("pass --best max or --best min") != std::string::npos);

  // median and min aggregate too
  rq = request();
  rq.agg = Agg::Median;
  CHECK(build_table(*db, rq).cells[0][0].median == 98.0);
  rq.agg = Agg::Min;
  CHECK(build_table(*db, rq).cells[0][0].min == 97.0);
}

TEST_CASE("table renderings: text, Markdown, CSV, LaTeX, JSON", "[table]") {
  TempDir dir;
  auto db = make_db(dir, false);
  Table t = build_table(*db, request());

  CHECK(render_table(t, Format::Markdown) ==
        "| latent | beta=1 | beta=4 |\n"
        "|---|---:|---:|\n"
        "| 2 | 99.00 ± 1.53 | **97.00 ± 1.53** |\n"
        "| 5 | **92.00 ± 1.53** | 94.00 ± 1.53 |\n"
        "\n"
        "test_nll (lower is better), mean ± standard error over 3 seeds; best of each row in bold.\n");

  CHECK(render_table(t, Format::Csv) ==
        "latent,beta=1 mean,beta=1 se,beta=1 n,beta=4 mean,beta=4 se,beta=4 n,best\n"
        "2,99," +
            g17(kSe) + ",3,97," + g17(kSe) +
            ",3,beta=4\n"
            "5,92," +
            g17(kSe) + ",3,94," + g17(kSe) + ",3,beta=1\n");

  CHECK(render_table(t, Format::Latex) ==
        "% test_nll (lower is better), mean ± standard error over 3 seeds; best of each row in bold\n"
        "\\begin{tabular}{lrr}\n"
        "\\toprule\n"
        " & \\multicolumn{2}{c}{beta} \\\\\n"
        "\\cmidrule(lr){2-3}\n"
        "latent & 1 & 4 \\\\\n"
        "\\midrule\n"
        "2 & $99.00 \\pm 1.53$ & $\\mathbf{97.00 \\pm 1.53}$ \\\\\n"
        "5 & $\\mathbf{92.00 \\pm 1.53}$ & $94.00 \\pm 1.53$ \\\\\n"
        "\\bottomrule\n"
        "\\end{tabular}\n");

  std::string text = render_table(t, Format::Text);
  CHECK(text.find("test_nll (lower is better): mean ± standard error over 3 seeds") == 0);
  CHECK(text.find("97.00 ± 1.53 *") != std::string::npos);
  CHECK(text.find("92.00 ± 1.53 *") != std::string::npos);
  CHECK(text.find("99.00 ± 1.53 *") == std::string::npos);
  CHECK(text.find("* best of each row") != std::string::npos);

  auto j = nlohmann::json::parse(render_table(t, Format::Json));
  CHECK(j["rows"][1]["latent"] == 5);
  CHECK(j["cols"][0]["beta"] == 1);
  CHECK(j["cells"][0][1]["best"] == true);
  CHECK(j["cells"][0][0]["mean"].get<double>() == 99.0);
  CHECK(j["cells"][0][0]["se"].get<double>() == Approx(kSe));
  CHECK(j["cells"][0][0]["run_ids"].size() == 3);
  CHECK(j["direction"] == "min");

  RenderOptions three;
  three.digits = 3;
  CHECK(render_table(t, Format::Markdown, three).find("| 2 | 99.000 ± 1.528 |") != std::string::npos);
}

TEST_CASE("failed runs are left out and flagged, n shown when it differs", "[table]") {
  TempDir dir;
  auto db = make_db(dir, true);
  Table t = build_table(*db, request());
  const CellStats& c = t.cells[1][1];  // latent 5, beta 4: seeds 0 and 1 only
  CHECK(c.n == 2);
  CHECK(c.not_done == 1);
  CHECK(c.mean == 92.5);
  CHECK(c.se == Approx(0.5));
  CHECK(t.uniform_n == -1);
  CHECK(t.total_not_done == 1);
  std::string md = render_table(t, Format::Markdown);
  CHECK(md.find("| 92.50 ± 0.50 (n=2)† |") != std::string::npos);
  CHECK(md.find("| 99.00 ± 1.53 (n=3) |") != std::string::npos);
  CHECK(md.find("1 run(s) failed or diverged") != std::string::npos);
  CHECK(render_table(t, Format::Latex).find("$92.50 \\pm 0.50$ {\\scriptsize(2)}$^\\dagger$") !=
        std::string::npos);  // counted once though it stands in every metric column
  TableRequest by_metric = request();
  by_metric.rows = {"latent", "beta"};
  by_metric.cols = {};
  by_metric.metrics = {"test_nll", "test_elbo"};
  CHECK(build_table(*db, by_metric).total_not_done == 1);
}

TEST_CASE("metrics as columns, filters, and cells that would mix configurations", "[table]") {
  TempDir dir;
  auto db = make_db(dir, false);
  // rows latent, only beta = 4, two metrics as columns: best per column
  TableRequest rq;
  rq.selection.sweep = "lb";
  rq.selection.where = {parse_condition("beta=4")};
  rq.rows = {"latent"};
  rq.metrics = {"test_nll", "test_elbo"};
  Table t = build_table(*db, rq);
  REQUIRE(t.col_values.size() == 2);
  CHECK_FALSE(t.best_per_row);
  CHECK(t.cells[0][0].mean == 97.0);
  CHECK(t.cells[1][0].mean == 94.0);
  CHECK(t.cells[1][0].best);  // lower nll
  CHECK(t.cells[0][1].mean == -100.0);
  CHECK(t.cells[1][1].best);  // higher elbo
  // two settings on the rows
  rq = request();
  rq.rows = {"latent", "beta"};
  rq.cols = {};
  Table two = build_table(*db, rq);
  CHECK(two.row_values.size() == 4);
  CHECK(two.row_values[1] == std::vector<std::string>{"2", "4"});

  // rows latent without beta anywhere: each cell would average different betas
  rq = request();
  rq.cols = {};
  CHECK_THROWS_WITH(build_table(*db, rq),
                    Catch::Contains("differ in 'beta'") && Catch::Contains("--where beta="));
  rq = request();
  rq.metrics = {"test_nlll"};
  CHECK_THROWS_WITH(build_table(*db, rq), Catch::Contains("no run has it"));
  rq = request();
  rq.rows = {"latnet"};
  CHECK_THROWS_WITH(build_table(*db, rq), Catch::Contains("not a `vae train` setting"));
  rq = request();
  rq.selection.sweep = "nope";
  CHECK_THROWS_WITH(build_table(*db, rq), Catch::Contains("no sweep named 'nope'") && Catch::Contains("lb"));
  CHECK_THROWS_WITH(parse_agg("average"), Catch::Contains("mean_se"));
}

TEST_CASE("where conditions select runs by settings and metrics", "[table]") {
  TempDir dir;
  auto db = make_db(dir, false);
  auto count = [&](std::vector<std::string> conds) {
    Selection s;
    for (const auto& c : conds) s.where.push_back(parse_condition(c));
    return select_runs(*db, s).size();
  };
  CHECK(count({}) == 12);
  CHECK(count({"latent=2"}) == 6);
  CHECK(count({"latent=2", "beta>=2"}) == 3);
  CHECK(count({"beta==4.0"}) == 6);
  CHECK(count({"latent=2,5"}) == 12);
  CHECK(count({"latent!=2,5"}) == 0);
  CHECK(count({"seed<1"}) == 4);
  CHECK(count({"test_nll<95"}) == 4);  // 90, 91 (latent 5, beta 1); 92, 93 (latent 5, beta 4)
  CHECK(count({"dataset=mnist"}) == 12);
  CHECK(count({"hidden=400"}) == 12);
  CHECK_THROWS_WITH(parse_condition("latent"), Catch::Contains("KEY OP VALUE"));
  CHECK_THROWS_WITH(parse_condition("latent=two"), Catch::Contains("latent"));
  CHECK_THROWS_WITH(parse_condition("hidden>400"), Catch::Contains("is a list"));
  CHECK_THROWS_WITH(count({"no_such_metric>1"}), Catch::Contains("neither a `vae train` setting nor a metric"));
  Selection done;
  done.statuses = {"done"};
  CHECK(select_runs(*db, done).size() == 12);
  auto id = select_runs(*db, {})[0];
  CHECK(resolve_run_id(*db, id.substr(0, 8)) == id);
  CHECK_THROWS_WITH(resolve_run_id(*db, "zz"), Catch::Contains("not a run id"));
}

TEST_CASE("export: one flat row per run, MLflow-style columns", "[table]") {
  TempDir dir;
  auto db = make_db(dir, false);
  Frame f = export_runs(*db, select_runs(*db, {}));
  REQUIRE(f.rows.size() == 12);
  auto col = [&](const std::string& name) {
    auto it = std::find(f.columns.begin(), f.columns.end(), name);
    REQUIRE(it != f.columns.end());
    return size_t(it - f.columns.begin());
  };
  CHECK(std::get<int64_t>(f.rows[0][col("params.latent")]) == 2);
  CHECK(std::get<double>(f.rows[0][col("metrics.test_nll")]) == 97.0);
  CHECK(std::get<std::string>(f.rows[0][col("status")]) == "done");
  CHECK(std::get<std::string>(f.rows[0][col("sweeps")]) == "lb");
  CHECK(std::get<std::string>(f.rows[0][col("data_files")]) == "/data/fake.idx=0123abcd");
  col("git_commit");
  col("compiler");
  col("blas_threads");
  std::string csv = render_frame(f, Format::Csv);
  CHECK(csv.rfind("run_id,status,message,sweeps,", 0) == 0);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 13);
  CHECK(csv_field("a,b") == "\"a,b\"");
  CHECK(csv_field("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(latex_escape("test_nll 50% & $x$") == "test\\_nll 50\\% \\& \\$x\\$");
  auto jl = render_frame(f, Format::Jsonl);
  CHECK(nlohmann::json::parse(jl.substr(0, jl.find('\n')))["params.beta"] == 1.0);
}
