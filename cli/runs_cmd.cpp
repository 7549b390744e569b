// vae runs: list runs of the results database, or show one with its provenance
// and learning curve.
#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "command.hpp"
#include "config/config.hpp"
#include "models/settings.hpp"
#include "report/render.hpp"
#include "report/run_detail.hpp"
#include "report/selection.hpp"
#include "results_common.hpp"
#include "store/results_store.hpp"
#include "store/run_identity.hpp"
#include "sweep/runner.hpp"

namespace vae::cli {
namespace {

namespace po = boost::program_options;
using namespace vae::cli::results;
using store::SqlValue;

const std::vector<report::Format> kListFormats = {report::Format::Text, report::Format::Markdown,
                                                  report::Format::Csv,  report::Format::Tsv,
                                                  report::Format::Json, report::Format::Jsonl};

// The sweeps each run belongs to, "a,b" (the column of a listing over all sweeps).
std::map<std::string, std::string> sweeps_of_runs(store::Db& db) {
  std::map<std::string, std::string> sweeps_of;
  auto s = db.prepare(
      "SELECT sr.run_id, group_concat(s.name, ',') FROM sweep_runs sr JOIN sweeps s USING (sweep_id) GROUP BY sr.run_id");
  while (s.step()) sweeps_of[s.get_text(0)] = s.get_text(1);
  return sweeps_of;
}

// One row per run: id, status, its sweeps (when listing all), the settings that vary, the
// metrics asked for, epochs, wall time and message; for machines full ids and raw numbers.
report::Frame list_frame(const std::vector<report::RunRow>& rows, const std::vector<std::string>& varying,
                         const std::vector<std::string>& metrics,
                         const std::optional<std::map<std::string, std::string>>& sweeps_of, bool machine) {
  report::Frame fr;
  fr.columns = {"run", "status"};
  if (sweeps_of) fr.columns.push_back("sweep");
  for (const auto& k : varying) fr.columns.push_back(k);
  for (const auto& m : metrics) fr.columns.push_back(m);
  for (const char* c : {"epochs", "wall", "message"}) fr.columns.push_back(c);
  for (const auto& r : rows) {
    std::vector<SqlValue> line{machine ? r.run_id : r.run_id.substr(0, 12), r.status};
    if (sweeps_of) line.push_back(sweeps_of->count(r.run_id) ? sweeps_of->at(r.run_id) : "");
    for (const auto& k : varying) line.push_back(r.params.count(k) ? r.params.at(k) : SqlValue{});
    for (const auto& m : metrics) {
      auto it = r.metrics.find(m);
      if (it == r.metrics.end()) line.push_back(SqlValue{});
      else if (machine) line.push_back(it->second);
      else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3f", it->second);
        line.push_back(std::string(buf));
      }
    }
    line.push_back(r.epochs_done);
    if (machine) line.push_back(r.wall_s);
    else line.push_back(r.wall_s > 0 ? report::format_seconds(r.wall_s) : "");
    std::string msg = r.message;
    if (!machine && msg.size() > 60) msg = msg.substr(0, 57) + "...";
    line.push_back(msg);
    fr.rows.push_back(std::move(line));
  }
  return fr;
}

// "12 runs, 10 done, 2 failed"
void print_status_counts(const std::vector<report::RunRow>& rows) {
  std::map<std::string, int> n;
  for (const auto& r : rows) ++n[r.status];
  std::cout << rows.size() << " runs";
  for (const auto& [s, k] : n) std::cout << ", " << k << " " << s;
  std::cout << "\n";
}

int runs_list(const std::vector<std::string>& args) {
  po::options_description desc("vae runs options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("sweep", po::value<std::string>(), "only the runs of this sweep (in sweep order)")
      ("status", po::value<std::vector<std::string>>()->composing(),
       "only runs with this status: queued, running, interrupted, done, failed, diverged (comma list)")
      ("where", po::value<std::vector<std::string>>()->composing(),
       "condition on a setting or final metric, e.g. latent=20, 'beta>=2', 'test_nll<90' (repeatable)")
      ("metrics", po::value<std::string>()->default_value("test_elbo,test_nll"),
       "final metrics to show (comma list)")
      ("limit", po::value<int64_t>()->default_value(0), "show at most N runs, the latest (0: all)")
      ("format", po::value<std::string>()->default_value("text"), "text, markdown, csv, tsv, json or jsonl");
  // clang-format on
  add_db_option(desc);
  po::variables_map vm;
  if (auto rc = parse("vae runs", "vae runs [options]   |   vae runs show RUN_ID [options]", desc, {}, args,
                      vm))
    return *rc;
  report::Format f = report::parse_format(vm["format"].as<std::string>(), kListFormats);
  report::Selection sel;
  if (vm.count("sweep")) sel.sweep = vm["sweep"].as<std::string>();
  sel.statuses = list_option(vm, "status");
  static const std::set<std::string> statuses = {"queued", "running", "interrupted",
                                                 "done",   "failed",  "diverged"};
  for (const auto& s : sel.statuses)
    if (!statuses.count(s))
      throw report::UsageError("--status '" + s +
                               "': expected queued, running, interrupted, done, failed or diverged");
  if (vm.count("where"))
    for (const auto& w : vm["where"].as<std::vector<std::string>>())
      sel.where.push_back(report::parse_condition(w));
  std::vector<std::string> metrics;
  {
    std::stringstream ss(vm["metrics"].as<std::string>());
    std::string m;
    while (std::getline(ss, m, ','))
      if (!m.empty()) metrics.push_back(m);
  }

  auto db = store::open_for_reading(vm["db"].as<std::string>());
  auto ids = report::select_runs(*db, sel);
  const int64_t limit = vm["limit"].as<int64_t>();
  if (limit > 0 && int64_t(ids.size()) > limit) ids.erase(ids.begin(), ids.end() - limit);
  auto rows = report::load_runs(*db, ids, sel.sweep);
  auto varying = report::varying_params(rows);

  const bool machine = f != report::Format::Text && f != report::Format::Markdown;
  const auto sweeps = sel.sweep.empty() ? sweeps_of_runs(*db)
                                        : std::optional<std::map<std::string, std::string>>{};
  std::cout << report::render_frame(list_frame(rows, varying, metrics, sweeps, machine), f);
  if (f == report::Format::Text) print_status_counts(rows);
  return kExitOk;
}

// A compact curve: ▁▂▃▄▅▆▇█ scaled between the min and the max.
std::string sparkline(const std::vector<double>& v) {
  static const char* bars[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double x : v)
    if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
  std::string s;
  for (double x : v) {
    if (!std::isfinite(x)) {
      s += "·";
      continue;
    }
    int i = hi > lo ? int(std::lround(7 * (x - lo) / (hi - lo))) : 3;
    s += bars[std::clamp(i, 0, 7)];
  }
  return s;
}

// `vae runs show`'s options: which run, in which format, how many curve rows.
struct ShowRequest {
  std::string db, id;
  report::Format format = report::Format::Text;
  size_t curve_rows = 0;  // 0: all
};

std::optional<ShowRequest> parse_show_request(const std::vector<std::string>& args, int& rc) {
  po::options_description desc("vae runs show options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("id", po::value<std::string>(), "run id, or a unique prefix of at least 4 hex digits")
      ("format", po::value<std::string>()->default_value("text"), "text or json")
      ("curve", po::value<std::string>()->default_value("20"),
       "epochs of the learning curve shown: N evenly spaced rows, or 'all'");
  // clang-format on
  add_db_option(desc);
  po::positional_options_description pos;
  pos.add("id", 1);
  po::variables_map vm;
  if (auto r = parse("vae runs show", "vae runs show RUN_ID [options]", desc, pos, args, vm)) {
    rc = *r;
    return std::nullopt;
  }
  if (!vm.count("id")) throw report::UsageError("which run? (vae runs lists them)");
  ShowRequest q;
  q.format = report::parse_format(vm["format"].as<std::string>(), {report::Format::Text, report::Format::Json});
  if (vm["curve"].as<std::string>() != "all") {
    try {
      q.curve_rows = std::stoul(vm["curve"].as<std::string>());
    } catch (const std::exception&) {
      throw report::UsageError("--curve '" + vm["curve"].as<std::string>() + "': expected a number or 'all'");
    }
  }
  q.db = vm["db"].as<std::string>();
  q.id = vm["id"].as<std::string>();
  return q;
}

// Status, message, the sweeps the run belongs to, and the settings that differ from the
// defaults (then a pointer to the rest).
void print_run_summary(std::ostream& out, const std::string& id, const report::RunRow& row,
                       const nlohmann::json& j) {
  out << "run " << id << "  " << row.status << "\n";
  if (!row.message.empty()) out << "  message      " << row.message << "\n";
  for (const auto& s : j["sweeps"]) {
    std::string point = s["point_text"].get<std::string>();
    out << "  sweep        " << s["name"].get<std::string>() << " #" << s["position"].get<int64_t>() + 1
        << (point.empty() ? "" : "  (" + point + ")") << "\n";
  }
  ConfigMap defaults = default_config();
  std::string changed;
  for (const auto& o : train_options()) {
    if (!j["config"].contains(o.key)) continue;
    auto v = row.params.find(o.key);
    if (v == row.params.end()) continue;
    std::string now = report::format_sql(v->second);
    std::string def = report::format_sql(store::to_sql(defaults[o.key]));
    if (now != def) changed += (changed.empty() ? "" : " ") + o.key + "=" + now;
  }
  out << "  settings     " << (changed.empty() ? "(all defaults)" : changed) << "\n";
  out << "               (not shown: settings at their defaults; --format json has all)\n";
}

void print_times_and_data(std::ostream& out, const report::RunRow& row, const nlohmann::json& j) {
  out << "  times        created " << j["created_at"].get<std::string>();
  if (!row.started_at.empty()) out << ", started " << row.started_at;
  if (!row.ended_at.empty()) out << ", ended " << row.ended_at;
  out << "\n  wall         " << report::format_seconds(row.wall_s) << " over " << row.attempts
      << (row.attempts == 1 ? " attempt" : " attempts") << ", " << row.epochs_done << " epochs\n";
  for (const auto& d : j["data_files"])
    out << "  data         " << d["path"].get<std::string>() << "  sha256 "
        << d["sha256"].get<std::string>().substr(0, 16) << "\n";
}

// A number field of a JSON object as text, "?" when it is missing.
std::string number_or_unknown(const nlohmann::json& a, const char* k) {
  return a.contains(k) && a[k].is_number() ? std::to_string(a[k].get<int64_t>()) : "?";
}

// The provenance of the last attempt: commit, program, compiler, BLAS, machine, command.
void print_provenance(std::ostream& out, const nlohmann::json& attempts) {
  if (attempts.empty()) return;
  const auto& a = attempts.back();
  auto str = [&](const char* k) {
    return a.contains(k) && a[k].is_string() ? a[k].get<std::string>() : std::string("?");
  };
  out << "  provenance   (attempt " << a["attempt"].get<int64_t>() << ")\n";
  std::string dirty = a.contains("git_dirty") && a["git_dirty"].is_number()
                          ? (a["git_dirty"].get<int64_t>() ? " (dirty)" : " (clean)")
                          : "";
  out << "    git        " << str("git_commit") << dirty << "\n";
  out << "    program    vae " << str("vae_version") << ", sha256 " << str("binary_sha256").substr(0, 16)
      << "\n";
  out << "    compiler   " << str("compiler") << "; flags: " << str("build_flags") << "\n";
  out << "    blas       " << str("blas") << "; threads " << number_or_unknown(a, "blas_threads") << "\n";
  out << "    machine    " << str("host") << ", " << str("cpu") << " (" << number_or_unknown(a, "cpu_count")
      << " cpus)\n";
  out << "    command    " << str("command_line") << "\n";
}

// Every attempt, when there was more than one or the run is not done.
void print_attempts(std::ostream& out, const nlohmann::json& attempts, const std::string& status) {
  if (!(attempts.size() > 1 || (attempts.size() == 1 && status != "done"))) return;
  out << "  attempts\n";
  for (const auto& a : attempts) {
    auto str = [&](const char* k) { return a[k].is_string() ? a[k].get<std::string>() : std::string(""); };
    out << "    " << a["attempt"].get<int64_t>() << "  " << str("started_at") << " .. " << str("ended_at")
        << "  pid " << (a["pid"].is_number() ? std::to_string(a["pid"].get<int64_t>()) : "?") << "  from epoch "
        << (a["resumed_from_epoch"].is_number() ? std::to_string(a["resumed_from_epoch"].get<int64_t>()) : "0")
        << "  " << (str("outcome").empty() ? "(running)" : str("outcome"));
    if (!str("message").empty()) out << ": " << str("message");
    out << "\n";
  }
}

// Final metrics, per-unit vectors (KL per dim, code usage, ...) and artifacts.
void print_results(std::ostream& out, const report::RunRow& row, const nlohmann::json& j) {
  if (!row.metrics.empty()) {
    out << "  metrics\n";
    for (const auto& [k, v] : row.metrics) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.6g", v);
      out << "    " << k << std::string(k.size() < 18 ? 18 - k.size() : 1, ' ') << buf << "\n";
    }
  }
  for (const auto& [name, v] : j["unit_vectors"].items()) {
    if (!v.is_array() || v.empty()) continue;
    out << "  " << (name == "kl_per_dim" ? std::string("KL per dim") : name) << "\n   ";
    for (const auto& k : v) {
      char buf[32];
      std::snprintf(buf, sizeof buf, " %.3g", k.is_number() ? k.get<double>() : std::nan(""));
      out << buf;
    }
    out << "\n";
  }
  for (const auto& a : j["artifacts"])
    out << "  artifact     " << a["kind"].get<std::string>() << " (epoch " << a["epoch"].get<int64_t>() << ") "
        << a["path"].get<std::string>() << "\n";
}

// The curve's series: train_loss, valid_elbo, test_elbo first, then the others.
std::vector<std::string> curve_series(const nlohmann::json& curve) {
  std::vector<std::string> names;
  for (const char* pref : {"train_loss", "valid_elbo", "test_elbo"})
    if (curve.contains(pref)) names.push_back(pref);
  for (auto it = curve.begin(); it != curve.end(); ++it)
    if (std::find(names.begin(), names.end(), it.key()) == names.end()) names.push_back(it.key());
  return names;
}

// The epochs a curve table shows: all, or `rows` evenly spaced ones (first and last included).
std::vector<int64_t> shown_epochs(const std::vector<int64_t>& epochs, size_t rows) {
  if (rows == 0 || epochs.size() <= rows) return epochs;
  std::vector<int64_t> shown;
  for (size_t i = 0; i < rows; ++i)
    shown.push_back(epochs[i * (epochs.size() - 1) / (rows - 1 ? rows - 1 : 1)]);
  return shown;
}

// The curve as a table: one row per shown epoch, one column per series ("%.4g").
report::Frame curve_frame(const nlohmann::json& curve, const std::vector<std::string>& names,
                          const std::vector<int64_t>& shown) {
  report::Frame fr;
  fr.columns = {"epoch"};
  for (const auto& n : names) fr.columns.push_back(n);
  std::map<std::string, std::map<int64_t, double>> by;
  for (const auto& n : names)
    for (const auto& p : curve[n]) by[n][p[0].get<int64_t>()] = p[1].is_number() ? p[1].get<double>() : NAN;
  for (int64_t e : shown) {
    std::vector<SqlValue> line{e};
    for (const auto& n : names) {
      auto it = by[n].find(e);
      if (it == by[n].end()) line.push_back(SqlValue{});
      else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.4g", it->second);
        line.push_back(std::string(buf));
      }
    }
    fr.rows.push_back(line);
  }
  return fr;
}

// A sparkline per series, then the table of the shown epochs.
void print_learning_curve(std::ostream& out, const nlohmann::json& curve, size_t curve_rows) {
  if (curve.empty()) return;
  std::set<int64_t> epochs_set;
  for (const auto& series : curve)
    for (const auto& p : series) epochs_set.insert(p[0].get<int64_t>());
  std::vector<int64_t> epochs(epochs_set.begin(), epochs_set.end());
  const std::vector<std::string> names = curve_series(curve);
  out << "  learning curve (" << epochs.size() << " epochs)\n";
  for (const auto& n : names) {
    std::vector<double> v;
    for (const auto& p : curve[n]) v.push_back(p[1].is_number() ? p[1].get<double>() : NAN);
    if (v.size() > 1)
      out << "    " << n << std::string(n.size() < 16 ? 16 - n.size() : 1, ' ') << sparkline(v) << "\n";
  }
  std::string table = report::render_frame(curve_frame(curve, names, shown_epochs(epochs, curve_rows)),
                                           report::Format::Text);
  std::stringstream ss(table);
  std::string l;
  while (std::getline(ss, l)) out << "    " << l << "\n";
}

int runs_show(const std::vector<std::string>& args) {
  int rc = kExitOk;
  const std::optional<ShowRequest> q = parse_show_request(args, rc);
  if (!q) return rc;
  auto db = store::open_for_reading(q->db);
  const std::string id = report::resolve_run_id(*db, q->id);
  auto row = report::load_runs(*db, {id}).at(0);
  nlohmann::json j = report::run_detail(*db, row);
  if (q->format == report::Format::Json) {
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  auto& out = std::cout;
  print_run_summary(out, id, row, j);
  print_times_and_data(out, row, j);
  print_provenance(out, j["attempts"]);
  print_attempts(out, j["attempts"], row.status);
  print_results(out, row, j);
  print_learning_curve(out, j["curve"], q->curve_rows);
  return kExitOk;
}

int run_runs(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "show") return runs_show({args.begin() + 1, args.end()});
  return runs_list(args);
}

Register reg{{"runs", "list runs (by sweep, status, settings), or show one: vae runs show ID", &run_runs}};

}  // namespace
}  // namespace vae::cli
