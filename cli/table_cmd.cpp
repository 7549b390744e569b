// vae table: a comparison table of a sweep (rows x columns of settings, a metric
// aggregated over seeds, the best cell marked) as text, Markdown, CSV, LaTeX or JSON.
#include <fstream>
#include <iostream>

#include "command.hpp"
#include "report/render.hpp"
#include "report/table.hpp"
#include "results_common.hpp"
#include "store/results_store.hpp"
#include "sweep/sweep_file.hpp"

namespace vae::cli {
namespace {

namespace po = boost::program_options;
using namespace vae::cli::results;

int run_table(const std::vector<std::string>& args) {
  po::options_description desc("vae table options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("sweep", po::value<std::string>(), "the sweep to tabulate (default: all runs that match --where)")
      ("rows", po::value<std::vector<std::string>>()->composing(),
       "setting(s) down the rows, e.g. latent (comma list; default: the sweep's [table] or first axis)")
      ("cols", po::value<std::vector<std::string>>()->composing(),
       "setting(s) across the columns, e.g. beta (default: the sweep's [table] or second axis; "
       "none: one column per --metric)")
      ("metric", po::value<std::vector<std::string>>()->composing(),
       "final metric(s), e.g. test_nll (several only without --cols) [default: test_nll]")
      ("agg", po::value<std::string>(), "mean_se (mean ± standard error, n), mean_sd, mean, median, min or max [default: mean_se]")
      ("best", po::value<std::string>(), "mark the best cell: auto (by the metric: higher test_elbo, lower "
       "test_nll/test_bpd), max, min or none [default: auto]")
      ("where", po::value<std::vector<std::string>>()->composing(), "only runs where KEY OP VALUE (repeatable)")
      ("format", po::value<std::string>()->default_value("text"), "text, markdown, csv, tsv, latex or json")
      ("digits", po::value<int>()->default_value(2), "decimals shown")
      ("output,o", po::value<std::string>(), "write to this file instead of standard output");
  // clang-format on
  add_db_option(desc);
  po::variables_map vm;
  if (auto rc = parse("vae table",
                      "vae table --sweep NAME --rows latent --cols beta --metric test_nll [options]", desc, {},
                      args, vm))
    return *rc;
  report::Format f = report::parse_format(vm["format"].as<std::string>(),
                                          {report::Format::Text, report::Format::Markdown, report::Format::Csv,
                                           report::Format::Tsv, report::Format::Latex, report::Format::Json});
  const int digits = vm["digits"].as<int>();
  if (digits < 0 || digits > 12)
    throw report::UsageError("--digits " + std::to_string(digits) + ": expected 0 to 12");

  auto db = store::open_for_reading(vm["db"].as<std::string>());
  report::TableRequest rq;
  if (vm.count("sweep")) rq.selection.sweep = vm["sweep"].as<std::string>();
  if (vm.count("where"))
    for (const auto& w : vm["where"].as<std::vector<std::string>>())
      rq.selection.where.push_back(report::parse_condition(w));
  rq.rows = list_option(vm, "rows");
  rq.cols = list_option(vm, "cols");
  rq.metrics = list_option(vm, "metric");
  std::string agg = vm.count("agg") ? vm["agg"].as<std::string>() : "";
  rq.best = vm.count("best") ? vm["best"].as<std::string>() : "";

  // defaults from the sweep file as stored in the database
  if (!rq.selection.sweep.empty()) {
    auto s = db->prepare("SELECT coalesce(spec, ''), coalesce(file, '') FROM sweeps WHERE name = ?");
    s.bind(1, rq.selection.sweep);
    if (s.step() && !s.get_text(0).empty()) {
      try {
        sweep::SweepSpec spec = sweep::parse_sweep_text(s.get_text(0), s.get_text(1));
        sweep::TableDefaults d = sweep::default_table(spec);
        if (rq.rows.empty()) {
          rq.rows = d.rows;
          if (!vm.count("cols") && rq.metrics.size() <= 1) rq.cols = d.cols;  // several metrics: the columns
        }
        if (rq.metrics.empty() && !spec.table.metrics.empty()) rq.metrics = spec.table.metrics;
        if (agg.empty() && !spec.table.agg.empty()) agg = spec.table.agg;
        if (rq.best.empty() && !spec.table.best.empty()) rq.best = spec.table.best;
      } catch (const std::exception&) {
        // a stored file this build cannot read: no defaults
      }
    }
  }
  if (rq.metrics.empty()) {
    rq.metrics = {"test_nll"};
    if (db->scalar_int("SELECT count(*) FROM metrics WHERE name = 'test_nll'") == 0 &&
        db->scalar_int("SELECT count(*) FROM metrics WHERE name = 'test_elbo'") > 0)
      rq.metrics = {"test_elbo"};
  }
  rq.agg = report::parse_agg(agg.empty() ? "mean_se" : agg);
  if (rq.best.empty()) rq.best = "auto";

  report::Table t = report::build_table(*db, rq);
  report::RenderOptions ro;
  ro.digits = digits;
  ro.command_line = display_command_line();
  std::string text = report::render_table(t, f, ro);
  if (vm.count("output")) {
    std::ofstream out(vm["output"].as<std::string>());
    if (!out) throw std::runtime_error(vm["output"].as<std::string>() + ": cannot write");
    out << text;
  } else {
    std::cout << text;
  }
  return kExitOk;
}

Register reg{{"table",
              "comparison table of a sweep: mean ± s.e. over seeds, best marked (md, csv, latex, json)",
              &run_table}};

}  // namespace
}  // namespace vae::cli
