// vae query: select runs by settings and metrics, or run read-only SQL.
#include <iostream>

#include "command.hpp"
#include "models/settings.hpp"
#include "report/render.hpp"
#include "report/selection.hpp"
#include "results_common.hpp"
#include "store/results_store.hpp"

namespace vae::cli {
namespace {

namespace po = boost::program_options;
using namespace vae::cli::results;
using store::SqlValue;

int query_sql(store::Db& db, const std::string& sql, report::Format f) {
  const char* tail = nullptr;
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v2(db.handle(), sql.c_str(), int(sql.size()), &raw, &tail);
  if (rc != SQLITE_OK) {
    std::string msg = sqlite3_errmsg(db.handle());
    sqlite3_finalize(raw);
    throw report::UsageError("--sql: " + msg);
  }
  sqlite3_finalize(raw);
  if (tail && std::string(tail).find_first_not_of(" \t\r\n;") != std::string::npos)
    throw report::UsageError("--sql: one statement at a time");
  store::Stmt s = db.prepare(sql);
  if (!s.readonly())
    throw report::UsageError("--sql runs read-only SQL (SELECT, WITH ... SELECT); the database is not changed");
  report::Frame fr;
  bool first = true;
  while (s.step()) {
    if (first) {
      for (int c = 0; c < s.columns(); ++c) fr.columns.push_back(s.column_name(c));
      first = false;
    }
    std::vector<SqlValue> row;
    row.reserve(std::size_t(s.columns()));
    for (int c = 0; c < s.columns(); ++c) row.push_back(s.get(c));
    fr.rows.push_back(std::move(row));
  }
  if (first)
    for (int c = 0; c < s.columns(); ++c) fr.columns.push_back(s.column_name(c));
  std::cout << report::render_frame(fr, f);
  return kExitOk;
}

int run_query(const std::vector<std::string>& args) {
  po::options_description desc("vae query options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("where", po::value<std::vector<std::string>>()->composing(),
       "KEY OP VALUE on a setting or final metric, OP one of = != < <= > >=; e.g. latent=20, "
       "'beta>=2', latent=2,10 (either), 'test_nll<90' (repeatable; all must hold)")
      ("sweep", po::value<std::string>(), "only the runs of this sweep")
      ("status", po::value<std::vector<std::string>>()->composing(),
       "only runs with this status (comma list; default: any)")
      ("params", po::value<std::vector<std::string>>()->composing(),
       "settings to show (comma list; default: those that differ between the selected runs)")
      ("metrics", po::value<std::vector<std::string>>()->composing(),
       "final metrics to show (comma list; default: test_elbo,test_nll)")
      ("sql", po::value<std::string>(), "run this read-only SQL instead (tables: runs, params, metrics, "
       "epoch_metrics, sweeps, sweep_runs, attempts, sessions, artifacts; views: run_metrics, run_params)")
      ("format", po::value<std::string>()->default_value("text"), "text, markdown, csv, tsv, json or jsonl");
  // clang-format on
  add_db_option(desc);
  po::variables_map vm;
  if (auto rc = parse("vae query",
                      "vae query [--where COND]... [--metrics a,b] [options]  |  vae query --sql 'SELECT ...'",
                      desc, {}, args, vm))
    return *rc;
  report::Format f = report::parse_format(vm["format"].as<std::string>(),
                                          {report::Format::Text, report::Format::Markdown, report::Format::Csv,
                                           report::Format::Tsv, report::Format::Json, report::Format::Jsonl});
  auto db = store::open_for_reading(vm["db"].as<std::string>());
  if (vm.count("sql")) {
    if (vm.count("where") || vm.count("params") || vm.count("metrics") || vm.count("sweep"))
      throw report::UsageError("--sql goes alone (with --format and --db)");
    return query_sql(*db, vm["sql"].as<std::string>(), f);
  }
  report::Selection sel;
  if (vm.count("sweep")) sel.sweep = vm["sweep"].as<std::string>();
  sel.statuses = list_option(vm, "status");
  if (vm.count("where"))
    for (const auto& w : vm["where"].as<std::vector<std::string>>())
      sel.where.push_back(report::parse_condition(w));
  std::vector<std::string> metrics = list_option(vm, "metrics");
  if (metrics.empty()) metrics = {"test_elbo", "test_nll"};
  auto rows = report::load_runs(*db, report::select_runs(*db, sel));
  std::vector<std::string> params = list_option(vm, "params");
  for (const auto& p : params)
    if (!find_option(p)) throw report::UsageError("--params '" + p + "': not a `vae train` setting");
  if (params.empty()) params = report::varying_params(rows);

  report::Frame fr;
  fr.columns = {"run_id", "status"};
  for (const auto& p : params) fr.columns.push_back(p);
  for (const auto& m : metrics) fr.columns.push_back(m);
  const bool human = f == report::Format::Text || f == report::Format::Markdown;
  for (const auto& r : rows) {
    std::vector<SqlValue> line{human ? r.run_id.substr(0, 12) : r.run_id, r.status};
    for (const auto& p : params) line.push_back(r.params.count(p) ? r.params.at(p) : SqlValue{});
    for (const auto& m : metrics) {
      auto it = r.metrics.find(m);
      if (it == r.metrics.end()) line.push_back(SqlValue{});
      else if (human) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.4f", it->second);
        line.push_back(std::string(buf));
      } else line.push_back(it->second);
    }
    fr.rows.push_back(std::move(line));
  }
  std::cout << report::render_frame(fr, f);
  if (f == report::Format::Text) std::cout << rows.size() << (rows.size() == 1 ? " run\n" : " runs\n");
  return kExitOk;
}

Register reg{{"query", "select runs by settings and metrics (--where), or run read-only --sql", &run_query}};

}  // namespace
}  // namespace vae::cli
