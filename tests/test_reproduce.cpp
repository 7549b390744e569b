// Reproduction specs and reports: the spec format and its one-line errors, the plan (cells
// over seeds, shared runs once), and the verdicts of the report against hand-computed
// values on a database filled by a fake trainer; `vae reproduce` end to end.
#include <catch2/catch.hpp>

#include <cmath>
#include <nlohmann/json.hpp>

#include "process_util.hpp"
#include "reproduce/reproduce.hpp"
#include "reproduce_test_util.hpp"

using namespace vae;
using namespace vae::reproduce;
using vae::testing::TempDir;

namespace {

using testing::fill_reproduction_db;
const char* const kSpec = testing::kToySpec;

const CellReport& cell(const Report& r, const std::string& row, const std::string& col) {
  for (const auto& c : r.cells)
    if (c.row->id == row && c.col->id == col) return c;
  FAIL("no cell " << row << "/" << col);
  throw std::logic_error("unreachable");
}

std::string spec_error(const std::string& text) {
  try {
    parse_spec_text(text, "bad.toml");
  } catch (const SpecError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("published values are read as printed", "[reproduce]") {
  CHECK(parse_published("86.76").value == 86.76);
  const Published au = parse_published("16+5");
  CHECK(au.value == 21);
  CHECK(au.parts == std::vector<double>{16, 5});
  CHECK(parse_published("< -796.2").value == -796.2);
  CHECK(parse_published("-81.74").value == -81.74);
  CHECK_THROWS_AS(parse_published("n/a"), SpecError);
  CHECK_THROWS_AS(parse_published("16+"), SpecError);
  CHECK_THROWS_AS(parse_published("86.76x"), SpecError);
}

TEST_CASE("a spec: citation, cells, budgets, tolerances", "[reproduce]") {
  const Spec s = parse_spec_text(kSpec, "toy.toml");
  CHECK(s.id == "toy-table");
  CHECK(s.citation() == "A. Author, B. Author (2020), arXiv:2001.00001, Table 9");
  REQUIRE(s.rows.size() == 2);
  REQUIRE(s.columns.size() == 2);
  CHECK(s.paper().name == "paper");
  CHECK(s.paper().epochs == 100);
  CHECK(s.budget("short").epochs == 10);
  CHECK(s.rows[1].published.count("b4") == 0);
  // protocol < row < column < budget < budget's row override
  const auto c = cell_settings(s, s.rows[1], s.columns[1], s.budget("short"));
  CHECK(std::get<int64_t>(c.at("latent")) == 10);
  CHECK(std::get<double>(c.at("beta")) == 4.0);
  CHECK(std::get<int64_t>(c.at("epochs")) == 10);
  CHECK(std::get<std::vector<int64_t>>(c.at("hidden")) == std::vector<int64_t>{32});
  CHECK_THROWS_WITH(s.budget("tenth"), Catch::Contains("paper, short"));
}

TEST_CASE("bad specs: one line with file, line and key", "[reproduce]") {
  CHECK(spec_error(replace(kSpec, "seeds = 3", "seeds = 3\ncolour = 1")) ==
        "bad.toml:4: key 'colour': unknown key");
  CHECK_THAT(spec_error(replace(kSpec, "source = \"Table 9\"\npublished = { b1 = 100.5 }",
                                "published = { b1 = 100.5 }")),
             Catch::StartsWith("bad.toml:") && Catch::Contains("key 'source' in [row #2]: missing"));
  CHECK_THAT(spec_error(replace(kSpec, "b4 = \"160.0\"", "b4 = \"about 160\"")),
             Catch::Contains("key 'b4' in [row #1.published]") && Catch::Contains("not a number"));
  CHECK_THAT(spec_error(replace(kSpec, "b4 = \"160.0\"", "b5 = \"160.0\"")),
             Catch::Contains("key 'b5'") && Catch::Contains("no such column") && Catch::Contains("'b1'"));
  CHECK_THAT(spec_error(replace(kSpec, "settings = { epochs = 10 }", "settings = { lr = 0.1 }")),
             Catch::Contains("[budget.short]") && Catch::Contains("needs its schedule"));
  CHECK_THAT(spec_error(replace(kSpec, "hidden = [64]", "hiden = [64]")),
             Catch::Contains(":13: key 'hiden' in [protocol]") && Catch::Contains("did you mean 'hidden'"));
  CHECK_THAT(spec_error(replace(kSpec, "[budget.paper]", "[budget.long]")), Catch::Contains("[budget.paper]"));
  CHECK_THAT(spec_error(replace(kSpec, "test_nll = 0.5\n", "")),
             Catch::Contains("no [tolerance] for 'test_nll'"));
  CHECK_THAT(spec_error(replace(kSpec, "settings = { latent = 2 }", "settings = { latent = 2, beta = 2.0 }")),
             Catch::Contains("key 'beta' in [row l2]") && Catch::Contains("column 'b1'"));
  CHECK_THAT(spec_error("id = \"x\"\n[citation\n"), Catch::StartsWith("bad.toml:2: "));
}

TEST_CASE("the plan: every cell over the seeds, a run shared by two cells once", "[reproduce]") {
  const Spec s = parse_spec_text(kSpec, "toy.toml");
  const ReproPlan p = make_plan(s, "paper", 0, vae::testing::fake_data_files);
  CHECK(p.sweep_name == "toy-table.paper");
  CHECK(p.seeds == std::vector<int64_t>{0, 1, 2});
  REQUIRE(p.cells.size() == 4);
  CHECK(p.plan.runs.size() == 12);
  for (const auto& c : p.cells) CHECK(c.run_ids.size() == 3);
  // A spec whose two columns ask for the same run (beta 1 twice): one block, shared ids.
  const Spec same = parse_spec_text(replace(kSpec, "settings = { beta = 4.0 }", "settings = { beta = 1.0 }"),
                                    "t.toml");
  const ReproPlan q = make_plan(same, "paper", 2, vae::testing::fake_data_files);
  CHECK(q.plan.runs.size() == 4);
  CHECK(q.cells[0].run_ids == q.cells[1].run_ids);
  CHECK(q.cells[0].run_ids != q.cells[2].run_ids);
  // Columns that differ only where the run identity cannot tell (the IWAE objective at k = 1
  // is the ELBO): one run, not an error of the sweep.
  const Spec k1 = parse_spec_text(
      replace(replace(kSpec, "settings = { beta = 1.0 }", "settings = { objective = \"elbo\" }"),
              "settings = { beta = 4.0 }", "settings = { objective = \"iwae\", k = 1 }"),
      "t.toml");
  const ReproPlan r = make_plan(k1, "paper", 1, vae::testing::fake_data_files);
  CHECK(r.plan.runs.size() == 2);
  CHECK(r.cells[0].run_ids == r.cells[1].run_ids);
  // The generated sweep file is an ordinary sweep: parsed again, it gives the same runs.
  const sweep::Plan again = sweep::make_plan(sweep::parse_sweep_text(p.sweep_text, "g.toml"),
                                             vae::testing::fake_data_files);
  REQUIRE(again.runs.size() == p.plan.runs.size());
  for (std::size_t i = 0; i < again.runs.size(); ++i) CHECK(again.runs[i].run_id == p.plan.runs[i].run_id);
}

TEST_CASE("report at the paper's budget: within, outside, not published", "[reproduce]") {
  TempDir dir;
  const Spec s = parse_spec_text(kSpec, "toy.toml");
  const ReproPlan p = make_plan(s, "paper", 0, vae::testing::fake_data_files);
  fill_reproduction_db(dir.file("r.db"), p);
  auto db = store::open_for_reading(dir.file("r.db"));
  const Report r = build_report(*db, s, p, "gen.toml");
  // latent 10, beta 1: seeds give 100, 101, 102: mean 101, published 100.5, |diff| 0.5 <= 0.5
  const CellReport& a = cell(r, "l10", "b1");
  CHECK(a.stats.n == 3);
  CHECK(a.stats.mean == Approx(101.0));
  CHECK(a.diff == Approx(0.5));
  CHECK(a.verdict == Verdict::Within);
  // latent 2, beta 1: 150, 153, 156: mean 153 vs 150 -> outside
  CHECK(cell(r, "l2", "b1").verdict == Verdict::Outside);
  CHECK(cell(r, "l2", "b1").stats.se == Approx(std::sqrt(3.0)));
  CHECK(cell(r, "l10", "b4").verdict == Verdict::NotPublished);
  CHECK(r.within == 1);
  CHECK(r.outside == 2);  // l2/b1 and l2/b4 (163 vs 160)
  CHECK_FALSE(r.ok());
  const std::string md = render_report(r, ReportFormat::Markdown);
  CHECK_THAT(md, Catch::Contains("| latent 10 | 100.5 | 101.00 ± 0.58 [ok] |"));
  CHECK_THAT(md, Catch::Contains("budget paper: 100 epochs"));
  const auto j = nlohmann::json::parse(render_report(r, ReportFormat::Json));
  CHECK(j["summary"]["within"] == 1);
  CHECK(j["cells"][2]["row"] == "l10");
  CHECK(j["cells"][2]["verdict"] == "within");
  CHECK_THAT(render_report(r, ReportFormat::Latex), Catch::Contains("101.00 $\\pm$ 0.58"));
}

TEST_CASE("report at a reduced budget: expected values, 2 combined s.e. or the reduced tolerance",
          "[reproduce]") {
  TempDir dir;
  const Spec s = parse_spec_text(kSpec, "toy.toml");
  const ReproPlan p = make_plan(s, "short", 0, vae::testing::fake_data_files);
  fill_reproduction_db(dir.file("r.db"), p);
  auto db = store::open_for_reading(dir.file("r.db"));
  const Report r = build_report(*db, s, p, "gen.toml");
  // latent 10, beta 1, short: 104, 105, 106: mean 105 vs expected 104 +- 0.5: tolerance
  // max(2 sqrt(1/3 + 0.25), 0.3) = 1.5275 >= |1|: within
  const CellReport& a = cell(r, "l10", "b1");
  CHECK(a.stats.mean == Approx(105.0));
  CHECK(a.tolerance == Approx(2 * std::sqrt(1.0 / 3.0 + 0.25)));
  CHECK(a.verdict == Verdict::Within);
  CHECK(cell(r, "l2", "b1").verdict == Verdict::NotComparable);  // no expected value
  CHECK(r.ok());
  CHECK_THAT(render_report(r, ReportFormat::Text), Catch::Contains("10.0% of the paper's 100"));
}

TEST_CASE("report with runs not done: missing, named", "[reproduce]") {
  TempDir dir;
  const Spec s = parse_spec_text(kSpec, "toy.toml");
  const ReproPlan p = make_plan(s, "paper", 0, vae::testing::fake_data_files);
  fill_reproduction_db(dir.file("r.db"), p,
                       2);  // the last two runs (latent 10, beta 4, seeds 1 and 2) stay queued
  auto db = store::open_for_reading(dir.file("r.db"));
  const Report r = build_report(*db, s, p, "gen.toml");
  const CellReport& c = cell(r, "l10", "b4");
  CHECK(c.verdict == Verdict::Missing);
  CHECK(c.missing_runs.size() == 2);
  CHECK(r.missing == 1);
  CHECK_FALSE(r.ok());
  CHECK_THAT(render_report(r, ReportFormat::Text), Catch::Contains("2 of 3 runs not done"));
}

TEST_CASE("order columns: the ranking over rows and the sign", "[reproduce]") {
  TempDir dir;
  std::string text = replace(kSpec, "metric = \"test_nll\"\nsettings = { beta = 1.0 }",
                             "metric = \"-test_nll\"\ncompare = \"order\"\nsettings = { beta = 1.0 }");
  text = replace(text, "published = { b1 = \"150.0\", b4 = \"160.0\" }",
                 "published = { b1 = \"< -9\", b4 = \"160.0\" }");
  text = replace(text, "published = { b1 = 100.5 }", "published = { b1 = \"< -3\" }");
  const Spec s = parse_spec_text(text, "toy.toml");
  const ReproPlan p = make_plan(s, "paper", 0, vae::testing::fake_data_files);
  fill_reproduction_db(dir.file("r.db"), p);
  auto db = store::open_for_reading(dir.file("r.db"));
  const Report r = build_report(*db, s, p, "gen.toml");
  // ours: -153 (latent 2) < -101 (latent 10), as the paper's -9 < -3, both negative
  CHECK(cell(r, "l2", "b1").verdict == Verdict::Within);
  CHECK(cell(r, "l10", "b1").verdict == Verdict::Within);
  // The paper's order reversed (latent 10 below latent 2): both cells out of order.
  const Spec reversed = parse_spec_text(replace(text, "b1 = \"< -3\"", "b1 = \"< -30\""), "toy.toml");
  const Report q = build_report(*db, reversed, make_plan(reversed, "paper", 0, vae::testing::fake_data_files),
                                "g");
  CHECK(cell(q, "l2", "b1").verdict == Verdict::Outside);
  CHECK(cell(q, "l10", "b1").verdict == Verdict::Outside);
  // The sign: a positive published value where ours is negative is out, whatever the rank.
  const Spec sign = parse_spec_text(replace(text, "b1 = \"< -3\"", "b1 = \"< 3\""), "toy.toml");
  const Report t = build_report(*db, sign, make_plan(sign, "paper", 0, vae::testing::fake_data_files), "g");
  CHECK(cell(t, "l2", "b1").verdict == Verdict::Within);
  CHECK(cell(t, "l10", "b1").verdict == Verdict::Outside);
}

TEST_CASE("vae reproduce: bad spec, a report without runs, a tiny table run and reported", "[reproduce][e2e]") {
  using vae::testing::run_vae;
  TempDir dir;
  const std::string bad = vae::testing::write(dir, "bad.toml",
                                              replace(kSpec, "seeds = 3", "seeds = 3\ncolour = 1"));
  auto p = run_vae({"reproduce", bad, "--report", "--db", dir.file("x.db")}, dir.file("bad"));
  CHECK(p.wait() == 2);
  CHECK(p.err() == "vae reproduce: " + bad + ":4: key 'colour': unknown key\n");
  const std::string toy = vae::testing::write(dir, "toy.toml", kSpec);
  p = run_vae({"reproduce", toy, "--report", "--db", dir.file("x.db")}, dir.file("nodb"));
  CHECK(p.wait() == 1);
  CHECK_THAT(p.err(),
             Catch::Contains("no database") && Catch::Contains("vae reproduce " + toy + " --budget paper"));
  p = run_vae({"reproduce", toy, "--budget", "tenth", "--report"}, dir.file("budget"));
  CHECK(p.wait() == 2);
  CHECK_THAT(p.err(), Catch::Contains("no budget 'tenth'"));

  // A real table: 2 rows x 2 columns x 1 seed of tiny runs, then its report. The published
  // values are what these runs cannot reach (100 nats below), so every cell is outside: exit 1.
  std::string tiny = replace(kSpec, "seeds = 3", "seeds = 1");
  tiny =
      replace(tiny, "hidden = [64]\niw-samples = 10",
              "hidden = [16]\ntrain-size = 300\ntest-size = 50\niw-samples = 5\niw-examples = 10\nbatch = 100");
  tiny = replace(tiny, "settings = { epochs = 100 }", "settings = { epochs = 1 }");
  tiny = replace(tiny, "published = { b1 = \"150.0\", b4 = \"160.0\" }",
                 "published = { b1 = \"50.0\", b4 = \"60.0\" }");
  tiny = replace(tiny, "published = { b1 = 100.5 }", "published = { b1 = 10.5 }");
  const std::string spec = vae::testing::write(dir, "tiny.toml", tiny);
  const std::string db = dir.file("r.db");
  p = run_vae({"reproduce", spec, "--db", db, "--jobs", "2", "--format", "json"}, dir.file("run"));
  INFO(p.err());
  CHECK(p.wait() == 1);
  const auto j = nlohmann::json::parse(p.out());
  CHECK(j["summary"]["outside"] == 3);
  CHECK(j["summary"]["missing"] == 0);
  CHECK(j["cells"].size() == 4);
  CHECK(std::filesystem::exists(dir.file("reproduce/toy-table.paper.toml")));
  CHECK(vae::testing::q(db, "SELECT count(*) FROM runs WHERE status = 'done'") == 4);
  // Run again: nothing to do, the same report.
  p = run_vae({"reproduce", spec, "--db", db, "--format", "json"}, dir.file("again"));
  CHECK(p.wait() == 1);
  CHECK_THAT(p.err(), Catch::Contains("already done 4"));
  CHECK(nlohmann::json::parse(p.out())["cells"] == j["cells"]);
}

TEST_CASE("vae reproduce --slurm writes the job array of the spec's sweep", "[reproduce][e2e]") {
  using vae::testing::run_vae;
  TempDir dir;
  const std::string spec = vae::testing::write(dir, "toy.toml", kSpec);
  const std::string db = dir.file("r.db");
  auto p = run_vae({"reproduce", spec, "--budget", "short", "--slurm", "--array", "3", "--time", "1:00:00",
                    "--db", db},
                   dir.file("slurm"));
  INFO(p.err());
  REQUIRE(p.wait() == 0);
  const std::string sweep = dir.file("reproduce/toy-table.short.toml");
  REQUIRE(std::filesystem::exists(sweep));
  std::ifstream f(dir.file("slurm/toy-table.short/array.sbatch"));
  std::stringstream text;
  text << f.rdbuf();
  CHECK_THAT(text.str(), Catch::Contains("#SBATCH --array=0-2") && Catch::Contains(sweep) &&
                             Catch::Contains("#SBATCH --time=1:00:00"));
  CHECK_FALSE(std::filesystem::exists(db));  // nothing run, nothing recorded
  CHECK_THAT(p.err(), Catch::Contains("12 runs in 3 tasks"));
}
