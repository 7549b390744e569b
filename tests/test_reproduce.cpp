// Reproduction specs and reports: the spec format and its one-line errors, the plan (cells
// over seeds, shared runs once), and the verdicts of the report against hand-computed
// values on a database filled by a fake trainer; `vae reproduce` end to end.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "process_util.hpp"
#include "reproduce/reproduce.hpp"
#include "reproduce_test_util.hpp"
#include "train/run.hpp"

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
  // is the ELBO with the sampled KL): one run, not an error of the sweep.
  const Spec k1 =
      parse_spec_text(replace(replace(kSpec, "settings = { beta = 1.0 }",
                                      "settings = { objective = \"elbo\", kl-estimate = \"sampled\" }"),
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

TEST_CASE("the paper's relations between cells: checked against the published values, judged on ours",
          "[reproduce]") {
  const std::string with = std::string(kSpec) + "\n[verdict]\nclaims = [[\"l10/b1\", \"<\", \"l2/b1\"], "
                                                "[\"l2/b1\", \"<=\", \"l2/b4\"]]\n";
  const Spec s = parse_spec_text(with, "toy.toml");
  REQUIRE(s.verdict.relations.size() == 2);
  CHECK(s.verdict.relations[1].op == "<=");
  CHECK(s.verdict.kind == VerdictSpec::Kind::Tolerance);
  // every claim is the paper's: both cells published, and the published values satisfy it
  CHECK_THAT(spec_error(replace(with, "\"l2/b1\", \"<=\"", "\"l10/b4\", \"<=\"")),
             Catch::Contains("key 'claims' in [verdict]") &&
                 Catch::Contains("'l10/b4' has no published value"));
  CHECK_THAT(spec_error(replace(with, "\"<=\"", "\">\"")),
             Catch::Contains("do not satisfy l2/b1 > l2/b4 (150.0 > 160.0)"));
  CHECK_THAT(spec_error(replace(with, "\"<=\"", "\"=<\"")), Catch::Contains("'=<' is not one of <, <=, >, >="));
  CHECK_THAT(spec_error(replace(with, "l2/b4", "l2/b5")), Catch::Contains("no such column"));
  CHECK_THAT(spec_error(replace(with, "l2/b4", "l3/b4")), Catch::Contains("'l3/b4': no such row"));
  CHECK_THAT(spec_error(replace(with, "[\"l10/b1\", \"<\", \"l2/b1\"]", "\"l10/b1 < l2/b1\"")),
             Catch::Contains("each claim is ["));
  // judged on our means at the paper's budget: 101 < 153, 153 <= 163
  TempDir dir;
  const ReproPlan p = make_plan(s, "paper", 0, vae::testing::fake_data_files);
  fill_reproduction_db(dir.file("r.db"), p);
  auto db = store::open_for_reading(dir.file("r.db"));
  const Report r = build_report(*db, s, p, "gen.toml");
  REQUIRE(r.claims.size() == 2);
  CHECK(r.claims[0].text == "latent 10 beta 1 < latent 2 beta 1");
  CHECK(r.claims[0].verdict == Verdict::Within);
  CHECK(r.claims[1].verdict == Verdict::Within);
  CHECK(r.claims_hold == 2);
  const std::string md = render_report(r, ReportFormat::Markdown);
  CHECK_THAT(md, Catch::Contains(
                     "- **holds** latent 10 beta 1 < latent 2 beta 1: ours 101 vs 153 (paper 100.5 vs 150.0)"));
  CHECK_THAT(md, Catch::Contains("the paper's relations: 2 hold, 0 fail, 0 undecided"));
  // a relation the paper has and ours has not: it fails, and the report is not ok
  const Spec flipped =
      parse_spec_text(replace(replace(with, "published = { b1 = 100.5 }", "published = { b1 = \"155\" }"),
                              "[\"l10/b1\", \"<\", \"l2/b1\"]", "[\"l2/b1\", \"<\", \"l10/b1\"]"),
                      "toy.toml");
  const Report f = build_report(*db, flipped, make_plan(flipped, "paper", 0, vae::testing::fake_data_files),
                                "g");
  REQUIRE(f.claims.size() == 2);
  CHECK(f.claims[0].verdict == Verdict::Outside);
  CHECK(f.claims_fail == 1);
  CHECK_FALSE(f.ok());
  // Below the paper's budget, beside the reference's values there: a relation ours breaks and
  // the reference breaks too is not comparable (not a failure of ours); one the reference
  // keeps and ours breaks fails.
  {
    const ReproPlan ps = make_plan(s, "short", 0, vae::testing::fake_data_files);
    TempDir shortdir;
    fill_reproduction_db(shortdir.file("r.db"), ps);
    auto sdb = store::open_for_reading(shortdir.file("r.db"));
    const auto with_l2 = [&](const std::string& spec, double l2_mean) {
      return parse_spec_text(replace(spec, "l10 = { b1 = { mean = 104.0, se = 0.5, n = 2 } }",
                                     "l10 = { b1 = { mean = 104.0, se = 0.5, n = 2 } }, l2 = { b1 = { mean = " +
                                         std::to_string(l2_mean) + ", se = 0.5, n = 2 } }"),
                             "toy.toml");
    };
    const Spec kept = with_l2(with, 170);  // the reference keeps l10 < l2 at this budget
    const Report k = build_report(*sdb, kept, make_plan(kept, "short", 0, vae::testing::fake_data_files), "g");
    REQUIRE(k.claims.size() == 2);
    CHECK(k.claims[0].verdict == Verdict::Within);
    CHECK_THAT(k.claims[0].detail, Catch::EndsWith("; reference at this budget 104 vs 170"));
    // the flipped claim (l2 < l10), which ours breaks: the reference at 170 vs 104 breaks it too
    const std::string flipped_text =
        replace(replace(with, "published = { b1 = 100.5 }", "published = { b1 = \"155\" }"),
                "[\"l10/b1\", \"<\", \"l2/b1\"]", "[\"l2/b1\", \"<\", \"l10/b1\"]");
    const Spec both = with_l2(flipped_text, 170);
    const Report nc = build_report(*sdb, both, make_plan(both, "short", 0, vae::testing::fake_data_files), "g");
    CHECK(nc.claims[0].verdict == Verdict::NotComparable);
    CHECK_THAT(nc.claims[0].detail,
               Catch::EndsWith("; reference at this budget 170 vs 104, which breaks it too"));
    CHECK(nc.claims_not_comparable == 1);
    CHECK(nc.claims_fail == 0);
    const std::string text = render_report(nc, ReportFormat::Markdown);
    CHECK_THAT(text, Catch::Contains("- **not comparable** latent 2 beta 1 < latent 10 beta 1"));
    CHECK_THAT(text, Catch::Contains("1 not comparable (the reference at this budget breaks them too)"));
    CHECK(nlohmann::json::parse(render_report(nc, ReportFormat::Json))["summary"]["claims_not_comparable"] ==
          1);
    // the reference keeps it (l2 at 90 < l10 at 104) and ours breaks it: ours fails
    const Spec ours_only = with_l2(flipped_text, 90);
    const Report o = build_report(*sdb, ours_only,
                                  make_plan(ours_only, "short", 0, vae::testing::fake_data_files), "g");
    CHECK(o.claims[0].verdict == Verdict::Outside);
    CHECK(o.claims_fail == 1);
    CHECK_FALSE(o.ok());
  }
  // runs not done: undecided, not held
  TempDir part;
  fill_reproduction_db(part.file("r.db"), p, 6);
  auto pdb = store::open_for_reading(part.file("r.db"));
  const Report u = build_report(*pdb, s, p, "gen.toml");
  CHECK(u.claims_hold + u.claims_fail < 2);
  bool undecided = false;
  for (const auto& c : u.claims) undecided = undecided || c.detail == "runs not done";
  CHECK(undecided);
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

namespace {

// A made-up ablation judged by the ordering and sign of one column (as the sigma-VAE spec):
// three rows, published "< 50" (a), "< -20" (b), "< -90" (c): c < b < a, signs +, -, -.
const char* const kOrderingSpec = R"(id = "toy-ordering"
title = "A toy ablation"
seeds = 2

[citation]
authors = "A. Author"
year = 2021
where = "Table 3"

[protocol]
dataset = "mnist"
hidden = [64]

[[column]]
id = "nll"
metric = "-test_elbo"

[[row]]
id = "a"
settings = { latent = 2 }
source = "Table 3"
published = { nll = "< 50" }

[[row]]
id = "b"
settings = { latent = 5 }
source = "Table 3"
published = { nll = "< -20" }

[[row]]
id = "c"
settings = { latent = 10 }
source = "Table 3"
published = { nll = "< -90" }

[budget.paper]
settings = { epochs = 100 }

[budget.short]
settings = { epochs = 5 }

[verdict]
kind = "ordering"
column = "nll"
order = ["c", "b", "a"]
signs = { a = "+", b = "-", c = "-" }
)";

// The fake trainer of the ordering spec: -test_elbo = value_of[latent] + seed.
sweep::TrainFn ordering_trainer(std::map<int64_t, double> value_of) {
  return [value_of](const ConfigMap& c, const RunOptions&, RunHooks*) {
    RunResult r;
    r.status = "done";
    const double nll = value_of.at(std::get<int64_t>(c.at("latent"))) + double(std::get<int64_t>(c.at("seed")));
    r.metrics = {{"test_elbo", -nll}};
    return r;
  };
}

Report ordering_report(const std::string& db_path, const std::map<int64_t, double>& value_of, const Spec& s) {
  const ReproPlan p = make_plan(s, "short", 0, vae::testing::fake_data_files);
  fill_reproduction_db(db_path, p, ordering_trainer(value_of));
  auto db = store::open_for_reading(db_path);
  return build_report(*db, s, p, "gen.toml");
}

}  // namespace

TEST_CASE("ordering specs: the declaration is validated against the rows and the published values",
          "[reproduce]") {
  const Spec s = parse_spec_text(kOrderingSpec, "o.toml");
  CHECK(s.verdict.kind == VerdictSpec::Kind::Ordering);
  CHECK(s.verdict.order == std::vector<std::string>{"c", "b", "a"});
  CHECK(s.verdict.signs.at("a") == 1);
  CHECK(s.verdict.signs.at("c") == -1);
  auto err = [](const std::string& text) { return spec_error(text); };
  const std::string o = kOrderingSpec;
  CHECK_THAT(err(replace(o, "kind = \"ordering\"", "kind = \"ordering\"\nexpect = 1")),
             Catch::StartsWith("bad.toml:") && Catch::Contains("key 'expect' in [verdict]: unknown key"));
  CHECK_THAT(err(replace(o, "kind = \"ordering\"", "kind = \"ranking\"")),
             Catch::Contains("key 'kind' in [verdict]") && Catch::Contains("tolerance, ordering, figure"));
  CHECK_THAT(err(replace(o, "order = [\"c\", \"b\", \"a\"]", "order = [\"c\", \"d\", \"a\"]")),
             Catch::Contains("key 'order' in [verdict]") && Catch::Contains("'d': no such row"));
  CHECK_THAT(err(replace(o, "order = [\"c\", \"b\", \"a\"]", "order = [\"c\", \"b\", \"b\", \"a\"]")),
             Catch::Contains("'b' is listed twice"));
  CHECK_THAT(err(replace(o, "order = [\"c\", \"b\", \"a\"]", "order = [\"c\", \"a\"]")),
             Catch::Contains("row 'b' is missing from the order"));
  // An order that is not the published values' is a wrong declaration.
  CHECK_THAT(err(replace(o, "order = [\"c\", \"b\", \"a\"]", "order = [\"b\", \"c\", \"a\"]")),
             Catch::Contains(":45: key 'order' in [verdict]") &&
                 Catch::Contains("'b' (< -20) is listed below 'c'"));
  CHECK_THAT(err(replace(o, "b = \"-\"", "b = \"+\"")),
             Catch::Contains("key 'b' in [verdict.signs]") && Catch::Contains("the other sign"));
  CHECK_THAT(err(replace(o, "b = \"-\"", "b = \"negative\"")), Catch::Contains("expected \"+\" or \"-\""));
  CHECK_THAT(err(replace(o, ", c = \"-\"", "")), Catch::Contains("key 'c' in [verdict.signs]: missing"));
  CHECK_THAT(err(replace(o, "column = \"nll\"", "column = \"ll\"")),
             Catch::Contains("key 'column' in [verdict]: no such column"));
  CHECK_THAT(err(replace(o, "signs = { a = \"+\", b = \"-\", c = \"-\" }", "")),
             Catch::Contains("key 'signs' in [verdict]: missing"));
  // A row of an ordering spec needs the ordered column's published value, and a source.
  CHECK_THAT(err(replace(o, "published = { nll = \"< -20\" }\n", "")),
             Catch::Contains("key 'nll' in [row b]: missing: the published value"));
  CHECK_THAT(err(replace(o, "source = \"Table 3\"\npublished = { nll = \"< -20\" }",
                         "published = { nll = \"< -20\" }")),
             Catch::Contains("key 'source' in [row #2]: missing"));
  // Keys of another kind.
  CHECK_THAT(err(replace(o, "kind = \"ordering\"", "kind = \"tolerance\"")),
             Catch::Contains("key 'order' in [verdict]: belongs to kind = \"ordering\""));
}

TEST_CASE("ordering verdict: a claim per neighbouring pair and per sign, holding or failing", "[reproduce]") {
  const Spec s = parse_spec_text(kOrderingSpec, "o.toml");
  {
    // ours (means over seeds 0, 1: +0.5): a 40.5, b -9.5, c -149.5: c < b < a, signs +, -, -.
    TempDir dir;
    const Report r = ordering_report(dir.file("r.db"), {{2, 40}, {5, -10}, {10, -150}}, s);
    REQUIRE(r.claims.size() == 5);
    CHECK(r.claims[0].text == "c < b");
    CHECK(r.claims[1].text == "b < a");
    CHECK(r.claims[2].text == "c < 0");
    CHECK(r.claims[4].text == "a > 0");
    for (const auto& c : r.claims) CHECK(c.verdict == Verdict::Within);
    CHECK(r.claims_hold == 5);
    CHECK(r.ok());
    const std::string md = render_report(r, ReportFormat::Markdown);
    CHECK_THAT(md, Catch::Contains("- **holds** c < b: ours -149.5 < -9.5 (paper < -90 vs < -20)"));
    CHECK_THAT(md, Catch::Contains("verdict by ordering claims: 5 hold, 0 fail, 0 undecided"));
    CHECK_THAT(md, Catch::Contains("| a | < 50 | 40.50 ± 0.50 |"));
    const auto j = nlohmann::json::parse(render_report(r, ReportFormat::Json));
    CHECK(j["verdict_kind"] == "ordering");
    CHECK(j["claims"].size() == 5);
    CHECK(j["summary"]["ok"] == true);
    CHECK_THAT(render_report(r, ReportFormat::Latex), Catch::Contains("\\item \\textbf{holds} b < a"));
  }
  {
    // b above a (b < a fails) and a negative (its sign fails): two claims fail, exit code 1.
    TempDir dir;
    const Report r = ordering_report(dir.file("r.db"), {{2, -40}, {5, -10}, {10, -150}}, s);
    CHECK(r.claims[0].verdict == Verdict::Within);
    CHECK(r.claims[1].verdict == Verdict::Outside);
    CHECK(r.claims[4].verdict == Verdict::Outside);
    CHECK(r.claims_fail == 2);
    CHECK_FALSE(r.ok());
    CHECK_THAT(render_report(r, ReportFormat::Text), Catch::Contains("FAILS b < a: ours -9.5 >= -39.5"));
  }
  {
    // Runs not done: the claims on them are undecided, the report not ok.
    TempDir dir;
    const ReproPlan p = make_plan(s, "short", 0, vae::testing::fake_data_files);
    fill_reproduction_db(dir.file("r.db"), p, ordering_trainer({{2, 40}, {5, -10}, {10, -150}}), 2);
    auto db = store::open_for_reading(dir.file("r.db"));
    const Report r = build_report(*db, s, p, "gen.toml");
    CHECK(r.missing == 1);
    CHECK(r.claims_fail == 0);
    CHECK(r.claims_hold == 3);  // b < a, b < 0, a > 0; c's runs (the last two) are not done
    CHECK_FALSE(r.ok());
  }
}

namespace {

// A made-up figure (as AEVB's Figure 2): two panels of two curves each, no numbers.
const char* const kFigureSpec = R"toml(id = "toy-figure"
title = "A toy figure"
seeds = 2

[citation]
authors = "A. Author"
year = 2013
where = "Figure 2"

[protocol]
dataset = "mnist"
hidden = [16]
eval-every = 1

[[column]]
id = "bound"
metric = "test_elbo"

[[row]]
id = "x2"
settings = { latent = 2 }
source = "Figure 2 (curves only)"

[[row]]
id = "x10"
settings = { latent = 10 }
source = "Figure 2 (curves only)"

[[row]]
id = "y3"
settings = { latent = 3 }
source = "Figure 2 (curves only)"

[[row]]
id = "y20"
settings = { latent = 20 }
source = "Figure 2 (curves only)"

[budget.paper]
settings = { epochs = 300 }

[budget.short]
settings = { epochs = 3 }

[verdict]
kind = "figure"
panels = { x = ["x2", "x10"], y = ["y3", "y20"] }
train = "-train_loss"
test = "test_elbo"
noise = 1.0
)toml";

// Three epochs of 100 samples: train_loss 100/e + offset, test_elbo -(110/e + test offset),
// plus seed/10; offsets by latent: x2 10, x10 13 on both (3 nats worse on train and test
// alike: slower, not overfitting), y3 10, y20 10 on train and 15 on test (the train bound
// as y3's, the test bound 5 nats below: overfits).
RunResult figure_run(const ConfigMap& c, const RunOptions&, RunHooks* hooks) {
  const int64_t latent = std::get<int64_t>(c.at("latent"));
  const double offset = latent == 10 ? 13.0 : 10.0, test_offset = latent == 20 ? 15.0 : offset;
  const double seed = double(std::get<int64_t>(c.at("seed"))) / 10;
  RunResult r;
  for (int e = 1; e <= 3; ++e) {
    const std::map<std::string, double> m{{"samples_seen", 100.0 * e},
                                          {"train_loss", 100.0 / e + offset + seed},
                                          {"test_elbo", -(110.0 / e + test_offset + seed)}};
    if (hooks) hooks->on_epoch(e, m);
    r.metrics["test_elbo"] = m.at("test_elbo");
  }
  r.status = "done";
  return r;
}

}  // namespace

TEST_CASE("figure specs: panels and curves are validated", "[reproduce]") {
  const Spec s = parse_spec_text(kFigureSpec, "f.toml");
  CHECK(s.verdict.kind == VerdictSpec::Kind::Figure);
  REQUIRE(s.verdict.panels.size() == 2);
  CHECK(s.verdict.panels[1].second == std::vector<std::string>{"y3", "y20"});
  CHECK(s.verdict.train_metric == "train_loss");
  CHECK(s.verdict.train_negate);
  CHECK_FALSE(s.verdict.test_negate);
  const std::string f = kFigureSpec;
  CHECK_THAT(spec_error(replace(f, "y = [\"y3\", \"y20\"]", "y = [\"y3\"]")),
             Catch::Contains("key 'panels' in [verdict]: row 'y20' is in no panel"));
  CHECK_THAT(spec_error(replace(f, "y = [\"y3\", \"y20\"]", "y = [\"y3\", \"y20\", \"x2\"]")),
             Catch::Contains("'x2' is in two panels"));
  CHECK_THAT(spec_error(replace(f, "y = [\"y3\", \"y20\"]", "y = [\"y3\", \"y21\"]")),
             Catch::Contains("key 'y' in [verdict.panels]: 'y21': no such row"));
  CHECK_THAT(spec_error(replace(f, "noise = 1.0\n", "")), Catch::Contains("key 'noise' in [verdict]: missing"));
  CHECK_THAT(spec_error(replace(f, "test = \"test_elbo\"\n", "")),
             Catch::Contains("key 'test' in [verdict]: missing"));
  CHECK_THAT(spec_error(replace(f, "noise = 1.0", "noise = -1.0")), Catch::Contains("a tolerance is >= 0"));
}

TEST_CASE("figure report: curves against samples seen, rising and not-overfitting claims", "[reproduce]") {
  TempDir dir;
  const Spec s = parse_spec_text(kFigureSpec, "f.toml");
  const ReproPlan p = make_plan(s, "short", 0, vae::testing::fake_data_files);
  fill_reproduction_db(dir.file("r.db"), p, figure_run);
  auto db = store::open_for_reading(dir.file("r.db"));
  Report r = build_report(*db, s, p, "gen.toml");
  REQUIRE(r.panels.size() == 2);
  const Curve& x2 = r.panels[0].curves[0];
  CHECK(x2.samples == std::vector<double>{100, 200, 300});
  // the mean over seeds 0 and 1 (+0.05): train -(100/e + 10.05), test -(110/e + 10.05)
  CHECK(x2.train[0] == Approx(-110.05));
  CHECK(x2.test[2] == Approx(-(110.0 / 3 + 10.05)));
  CHECK(x2.final_stats.n == 2);
  CHECK(x2.final_stats.mean == Approx(-(110.0 / 3 + 10.05)));
  REQUIRE(r.claims.size() == 6);  // 4 curves rise, then per panel: x10 does not overfit, y20 does
  CHECK(r.claims[0].text == "x, x2: the bound rises with samples seen (train and test)");
  CHECK(r.claims[0].verdict == Verdict::Within);
  CHECK(r.claims[2].text.rfind("x: more latents do not overfit", 0) == 0);
  // x10's test bound is 3 nats below x2's, but so is its train bound: the same gap, 10/3
  CHECK(r.panels[0].curves[1].final_stats.mean == Approx(x2.final_stats.mean - 3));
  CHECK(r.panels[0].curves[1].gap_stats.mean == Approx(10.0 / 3));
  CHECK(r.claims[2].verdict == Verdict::Within);
  CHECK(r.claims[5].verdict == Verdict::Outside);  // y20's gap is 5 nats above y3's, noise 1 (s.e. 0)
  CHECK_THAT(r.claims[5].detail, Catch::Contains("gap 8.333") && Catch::Contains("difference 5"));
  CHECK(r.claims_fail == 1);
  CHECK_FALSE(r.ok());
  for (auto& panel : r.panels) panel.png = dir.file("toy-figure.short." + panel.id + ".png");
  const std::string md = render_report(r, ReportFormat::Markdown);
  CHECK_THAT(md, Catch::Contains("- **FAILS** y: more latents do not overfit"));
  CHECK_THAT(md, Catch::Contains("![x](toy-figure.short.x.png)"));
  const auto j = nlohmann::json::parse(figure_json(r));
  CHECK(j["panels"][1]["curves"][1]["label"] == "y20");
  CHECK(j["panels"][0]["curves"][0]["samples"] == std::vector<double>{100, 200, 300});
  CHECK(j["train_label"] == "-train_loss");
  // A curve that falls fails its claim: the noise margin is for the overfitting claim only.
  const Spec falling =
      parse_spec_text(replace(kFigureSpec, "train = \"-train_loss\"", "train = \"train_loss\""), "f.toml");
  const Report q = build_report(*db, falling, make_plan(falling, "short", 0, vae::testing::fake_data_files),
                                "g");
  CHECK(q.claims[0].verdict == Verdict::Outside);
  CHECK_THAT(q.claims[0].detail, Catch::Contains("train 110.05 -> 43.383"));
}

TEST_CASE("vae reproduce --report of a figure spec draws one PNG per panel", "[reproduce][e2e]") {
  using vae::testing::run_vae;
  TempDir dir;
  const std::string spec = vae::testing::write(dir, "fig.toml", kFigureSpec);
  const Spec s = parse_spec_file(spec);
  // The runs the command will look for: the ids of the real data files, as the CLI plans them.
  const ReproPlan p = make_plan(s, "short", 0, &vae::data_files_for);
  fill_reproduction_db(dir.file("r.db"), p, figure_run);
  auto proc = run_vae({"reproduce", spec, "--budget", "short", "--report", "--db", dir.file("r.db"), "--format",
                       "markdown", "--figure-dir", dir.file("fig")},
                      dir.file("fig-run"));
  INFO(proc.err());
  CHECK(proc.wait() == 1);  // the y panel's claim fails
  CHECK_THAT(proc.out(), Catch::Contains("![y](toy-figure.short.y.png)"));
  for (const char* panel : {"x", "y"}) {
    std::ifstream png(dir.file(std::string("fig/toy-figure.short.") + panel + ".png"), std::ios::binary);
    REQUIRE(png.good());
    char magic[8] = {};
    png.read(magic, 8);
    CHECK(std::string(magic + 1, 3) == "PNG");
  }
}
