// From a reproduction spec to runs and back: the sweep a spec asks for at a budget (every
// cell of the table over the seeds, written as an ordinary sweep file that `vae sweep run`
// executes, so runs are resumable and crash-safe as any sweep's), and the report that
// reads those runs from the database and sets them beside the published values.
//
// Verdicts, per cell:
//  - paper budget: within when |ours - published| <= tolerance[metric];
//  - reduced budget: against the expected value of the same protocol at that budget
//    (the PyTorch reference): within when |ours - expected| <= max(2 combined standard
//    errors, tolerance.reduced[metric]); "not comparable" when the spec has no expected
//    value for the cell (the budget is below the paper's);
//  - compare = "order" columns: within when the cell has the published value's sign and
//    the same rank among the rows as the published value;
//  - "missing" when a seed's run is not done; "not published" when the paper has no value.
// A spec whose [verdict] kind is "ordering" or "figure" is judged by claims instead (the
// cells are shown, marked "n/c": their values are not compared):
//  - ordering: each neighbouring pair of the declared order holds when our means are in
//    that order (strictly), each sign when our mean has it;
//  - figure: per row, the curve rises when the train and the test value at the last epoch
//    are above those at the first; per panel, more latents do not overfit when the last
//    row's final test value is at least every other row's minus max(noise, 2 combined s.e.).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "report/table.hpp"
#include "reproduce/spec.hpp"
#include "store/db.hpp"
#include "sweep/plan.hpp"

namespace vae::reproduce {

struct CellPlan {
  std::size_t row = 0, col = 0;
  std::vector<std::string> run_ids;  // one per seed, in seed order
  int part = 0;                      // the [[also]] block of the generated sweep that runs it
};

struct ReproPlan {
  std::string budget;
  std::vector<int64_t> seeds;
  std::string sweep_name;       // "<spec id>.<budget>"
  std::string sweep_text;       // the generated sweep file
  sweep::Plan plan;             // of sweep_text: every distinct run once
  std::vector<CellPlan> cells;  // row-major: rows x columns
};

// seeds = 0: the spec's default. data_files: vae::data_files_for (tests pass a stub).
ReproPlan make_plan(const Spec& spec, const std::string& budget, int64_t seeds,
                    const sweep::DataFilesFn& data_files);

// The generated sweep file's path for a database: <db folder>/reproduce/<sweep name>.toml
std::string sweep_file_path(const std::string& db_path, const ReproPlan& plan);

enum class Verdict { Within, Outside, NotComparable, NotPublished, Missing };
std::string verdict_name(Verdict v);  // "within", "outside", "not comparable", ...

struct CellReport {
  const Row* row = nullptr;
  const Column* col = nullptr;
  std::vector<double> values;              // ours, per done seed (negated for "-metric")
  std::vector<std::vector<double>> parts;  // per done seed: per-layer values, when the run has them
  report::CellStats stats;                 // of values
  std::vector<std::string> missing_runs;   // run ids not done (or without the metric)
  const Published* published = nullptr;
  const Expected* expected = nullptr;  // reduced budgets only
  Verdict verdict = Verdict::Missing;
  double reference = 0, diff = 0, tolerance = 0;  // what ours was compared with
  std::string ours_text() const;                  // "86.91 ± 0.05" or "17+5" style for layered values
};

// One claim of an ordering or figure spec and its verdict: Within (holds), Outside (fails)
// or Missing (runs not done).
struct Claim {
  std::string text, detail;
  Verdict verdict = Verdict::Missing;
};

// A figure spec's curve: one row's per-epoch values, the mean over its done seeds, against
// the training samples seen; final: the last epoch's test value per seed.
struct Curve {
  const Row* row = nullptr;
  std::vector<double> samples, train, test;
  std::vector<double> final_test, final_gap;  // per run, at its last epoch: test, train - test
  report::CellStats final_stats, gap_stats;
};
struct Panel {
  std::string id;
  std::vector<Curve> curves;
  std::string png;  // where the figure was drawn (set by the caller that draws it)
};

struct Report {
  const Spec* spec = nullptr;
  const Budget* budget = nullptr;
  std::vector<int64_t> seeds;
  std::string sweep_name, sweep_file;
  std::vector<CellReport> cells;  // row-major
  int within = 0, outside = 0, not_comparable = 0, missing = 0;
  std::vector<Claim> claims;  // ordering and figure specs
  std::vector<Panel> panels;  // figure specs
  int claims_hold = 0, claims_fail = 0;
  int claims_not_comparable = 0;  // broken by ours and by the reference at a reduced budget
  bool by_claims() const { return spec->verdict.kind != VerdictSpec::Kind::Tolerance; }
  bool ok() const { return outside == 0 && missing == 0 && claims_fail == 0; }
};

Report build_report(store::Db& db, const Spec& spec, const ReproPlan& plan, const std::string& sweep_file);

enum class ReportFormat { Text, Markdown, Latex, Json };
ReportFormat parse_report_format(const std::string& name);  // throws SpecError naming the choices
std::string render_report(const Report& report, ReportFormat format);

// A figure spec's curves as JSON, the input of analysis/plot_reproduce_figure.py: panels,
// each with its PNG path, title and curves (label, samples, train, test).
std::string figure_json(const Report& report);

}  // namespace vae::reproduce
