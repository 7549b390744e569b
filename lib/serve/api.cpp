#include "serve/api.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "config/config.hpp"
#include "models/settings.hpp"
#include "report/render.hpp"
#include "report/run_detail.hpp"
#include "report/selection.hpp"
#include "report/table.hpp"
#include "reproduce/reproduce.hpp"
#include "serve/assets.hpp"
#include "store/results_store.hpp"
#include "store/schema.hpp"
#include "sweep/sweep_file.hpp"

namespace vae::serve {

using nlohmann::json;
using report::UsageError;
using store::SqlValue;

namespace {

// An answer that is not 200: 404 (unknown thing) or 400 (bad argument).
struct HttpError {
  int status;
  std::string message;
};

Response json_response(const json& j, int status = 200) {
  Response r;
  r.status = status;
  r.body = j.dump();
  return r;
}

Response error_response(int status, const std::string& message) {
  return json_response(json{{"error", message}}, status);
}

json json_of(const SqlValue& v) {
  if (auto i = std::get_if<int64_t>(&v)) return *i;
  if (auto d = std::get_if<double>(&v)) return std::isfinite(*d) ? json(*d) : json(nullptr);
  if (auto s = std::get_if<std::string>(&v)) return *s;
  return nullptr;
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

std::string param(const Request& rq, const std::string& key, const std::string& fallback = "") {
  auto it = rq.query.find(key);
  return it == rq.query.end() ? fallback : it->second;
}

int64_t int_param(const Request& rq, const std::string& key, int64_t fallback, int64_t lo, int64_t hi) {
  auto it = rq.query.find(key);
  if (it == rq.query.end() || it->second.empty()) return fallback;
  size_t pos = 0;
  int64_t v = 0;
  try {
    v = std::stoll(it->second, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  if (pos != it->second.size() || v < lo || v > hi)
    throw HttpError{400, key + "=" + it->second + ": expected an integer from " + std::to_string(lo) + " to " +
                             std::to_string(hi)};
  return v;
}

// The ids as a JSON array, bound to `json_each(?)` so that a query can restrict itself
// to them (the read-only connection cannot fill a temporary table).
std::string ids_json(const std::vector<std::string>& ids) { return json(ids).dump(); }

// ---- sweeps -------------------------------------------------------------------------

struct SweepRow {
  int64_t id;
  std::string name, file, spec, updated_at;
};

std::vector<SweepRow> sweep_rows(store::Db& db, const std::string& only = "") {
  std::vector<SweepRow> out;
  auto s = db.prepare("SELECT sweep_id, name, coalesce(file, ''), coalesce(spec, ''), updated_at FROM sweeps "
                      "WHERE ?1 = '' OR name = ?1 ORDER BY updated_at DESC, name");
  s.bind(1, only);
  while (s.step()) out.push_back({s.get_int(0), s.get_text(1), s.get_text(2), s.get_text(3), s.get_text(4)});
  return out;
}

SweepRow find_sweep(store::Db& db, const std::string& name) {
  auto rows = sweep_rows(db, name);
  if (name.empty() || rows.empty()) throw HttpError{404, "no sweep named '" + name + "' in " + db.path()};
  return rows[0];
}

// Counts, progress and ETA of a sweep. The ETA: the runs waiting times the mean wall
// time of the done runs, plus what the running ones have left of that mean (by the
// time since their attempt started), over the runs going on at once.
json sweep_summary(store::Db& db, const SweepRow& sw) {
  store::ResultsStore st(db);
  store::SweepCounts c = st.counts(sw.id);
  double mean_wall = NAN, running_left = 0;
  db.read([&] {
    auto m = db.prepare("SELECT avg(r.wall_s) FROM sweep_runs sr JOIN runs r USING (run_id) "
                        "WHERE sr.sweep_id = ? AND r.status = 'done' AND r.wall_s > 0");
    m.bind(1, sw.id);
    mean_wall = m.step() ? m.get_double(0) : NAN;
    auto r = db.prepare(
        "SELECT (julianday('now') - julianday(coalesce((SELECT max(a.started_at) FROM attempts a WHERE a.run_id = r.run_id), "
        "r.started_at))) * 86400 FROM sweep_runs sr JOIN runs r USING (run_id) WHERE sr.sweep_id = ? AND r.status = 'running'");
    r.bind(1, sw.id);
    running_left = 0;
    while (r.step())
      if (std::isfinite(mean_wall))
        running_left += std::max(0.0, mean_wall - (r.is_null(0) ? 0.0 : r.get_double(0)));
  });
  const double finished = double(c.done + c.failed + c.diverged);
  json eta = nullptr;
  if (c.remaining() == 0) eta = 0.0;
  else if (std::isfinite(mean_wall) && c.running > 0)
    eta = (double(c.queued + c.interrupted) * mean_wall + running_left) / double(c.running);
  std::string description;
  try {
    if (!sw.spec.empty()) description = sweep::parse_sweep_text(sw.spec, sw.file).description;
  } catch (const std::exception&) {
  }
  return json{{"name", sw.name},
              {"file", sw.file},
              {"description", description},
              {"updated_at", sw.updated_at},
              {"total", c.total},
              {"done", c.done},
              {"failed", c.failed},
              {"diverged", c.diverged},
              {"running", c.running},
              {"interrupted", c.interrupted},
              {"queued", c.queued},
              {"progress", c.total ? finished / double(c.total) : 0.0},
              {"mean_run_s", number_or_null(mean_wall)},
              {"eta_s", eta}};
}

Response sweeps_list(store::Db& db) {
  json out = json::array();
  for (const auto& sw : sweep_rows(db)) out.push_back(sweep_summary(db, sw));
  return json_response(json{{"sweeps", out}});
}

// The axes of a sweep (keys of its points, in the sweep file's order) with their
// values, ordered numerically when they are numbers.
json sweep_axes(store::Db& db, int64_t sweep_id) {
  std::vector<std::string> keys;
  std::map<std::string, std::vector<json>> values;
  db.read([&] {
    keys.clear();
    values.clear();
    auto first = db.prepare(
        "SELECT point FROM sweep_runs WHERE sweep_id = ? AND point IS NOT NULL ORDER BY position");
    first.bind(1, sweep_id);
    while (first.step()) {  // every part's keys, first appearance first
      auto j = nlohmann::ordered_json::parse(first.get_text(0).empty() ? "{}" : first.get_text(0));
      for (auto it = j.begin(); it != j.end(); ++it)
        if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) keys.push_back(it.key());
    }
    auto v = db.prepare(
        "SELECT DISTINCT j.key, j.value FROM sweep_runs sr, json_each(sr.point) j WHERE sr.sweep_id = ?");
    v.bind(1, sweep_id);
    while (v.step()) values[v.get_text(0)].push_back(json_of(v.get(1)));
  });
  json axes = json::array();
  for (const auto& k : keys) {
    auto& vals = values[k];
    bool numeric = std::all_of(vals.begin(), vals.end(), [](const json& x) { return x.is_number(); });
    if (numeric)
      std::sort(vals.begin(), vals.end(),
                [](const json& a, const json& b) { return a.get<double>() < b.get<double>(); });
    axes.push_back(json{{"key", k}, {"values", vals}, {"numeric", numeric}, {"seed", k == "seed"}});
  }
  return axes;
}

Response sweep_detail(store::Db& db, const std::string& name) {
  SweepRow sw = find_sweep(db, name);
  json j = sweep_summary(db, sw);
  j["axes"] = sweep_axes(db, sw.id);
  json metrics = json::array();
  auto m = db.prepare(
      "SELECT DISTINCT m.name FROM sweep_runs sr JOIN metrics m USING (run_id) WHERE sr.sweep_id = ? ORDER BY m.name");
  m.bind(1, sw.id);
  while (m.step()) metrics.push_back(m.get_text(0));
  j["metrics"] = metrics;
  // the table `vae table --sweep NAME` prints without options
  json table = json{{"rows", json::array()}, {"cols", json::array()}, {"metric", "test_nll"}};
  try {
    if (!sw.spec.empty()) {
      sweep::TableDefaults d = sweep::default_table(sweep::parse_sweep_text(sw.spec, sw.file));
      table["rows"] = d.rows;
      table["cols"] = d.cols;
      if (!d.metrics.empty()) table["metric"] = d.metrics[0];
      if (!d.agg.empty()) table["agg"] = d.agg;
    }
  } catch (const std::exception&) {
    // a stored file this build cannot read: no defaults
  }
  j["table"] = table;
  return json_response(j);
}

// ---- the comparison table --------------------------------------------------------

std::vector<report::Condition> where_params(const Request& rq) {
  std::vector<report::Condition> out;
  for (auto [it, end] = rq.query.equal_range("where"); it != end; ++it)
    if (!it->second.empty()) out.push_back(report::parse_condition(it->second));
  return out;
}

// The `vae table` command that prints the same table (for the downloads' comments).
std::string table_command(const Request& rq, const report::TableRequest& t, const std::string& format) {
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
    return s;
  };
  std::string c = "vae table";
  if (!t.selection.sweep.empty()) c += " --sweep " + t.selection.sweep;
  c += " --rows " + join(t.rows);
  if (!t.cols.empty()) c += " --cols " + join(t.cols);
  c += " --metric " + join(t.metrics) + " --agg " + report::agg_name(t.agg);
  for (const auto& w : t.selection.where) c += " --where '" + w.text + "'";
  if (t.best != "auto") c += " --best " + t.best;
  if (!param(rq, "digits").empty()) c += " --digits " + param(rq, "digits");
  return c + " --format " + format;
}

Response table(store::Db& db, const Request& rq) {
  report::TableRequest t;
  t.selection.sweep = param(rq, "sweep");
  if (!t.selection.sweep.empty()) find_sweep(db, t.selection.sweep);  // 404 when unknown
  t.selection.where = where_params(rq);
  t.rows = list_param(rq, "rows");
  t.cols = list_param(rq, "cols");
  t.metrics = list_param(rq, "metric");
  if (t.metrics.empty()) t.metrics = {"test_nll"};
  t.agg = report::parse_agg(param(rq, "agg", "mean_se"));
  t.best = param(rq, "best", "auto");
  const std::string format = param(rq, "format", "json");
  report::Format f = report::parse_format(format, {report::Format::Json, report::Format::Csv,
                                                   report::Format::Markdown, report::Format::Latex});
  report::RenderOptions ro;
  ro.digits = int(int_param(rq, "digits", 2, 0, 12));
  ro.command_line = table_command(rq, t, report::format_name(f));
  report::Table tab = report::build_table(db, t);
  Response r;
  r.body = report::render_table(tab, f, ro);
  const std::string stem = t.selection.sweep.empty() ? "table" : t.selection.sweep;
  switch (f) {
    case report::Format::Csv:
      r.content_type = "text/csv; charset=utf-8";
      r.attachment = stem + ".csv";
      break;
    case report::Format::Markdown:
      r.content_type = "text/markdown; charset=utf-8";
      r.attachment = stem + ".md";
      break;
    case report::Format::Latex:
      r.content_type = "text/x-tex; charset=utf-8";
      r.attachment = stem + ".tex";
      break;
    default: break;
  }
  if (f == report::Format::Json) {  // the command too, for the page to show: one more key in
    // the object `vae table --format json` prints (spliced in: a table of 10,000 runs lists
    // every run id, and parsing it again would cost more than building it)
    const size_t end = r.body.rfind('}');
    if (end == std::string::npos) throw std::runtime_error("table JSON without an object");
    r.body = r.body.substr(0, end) + ",\n  \"command\": " + json(table_command(rq, t, "markdown")).dump() +
             "\n}\n";
  }
  return r;
}

// ---- runs ---------------------------------------------------------------------------

// The settings whose values differ across the selected runs, in `vae train --help`
// order: report::varying_params without loading every run's settings. For each
// setting, the params index (key, value) finds the runs whose value is below or above
// the first run's; the setting varies when one of them is selected. A setting the
// first run lacks varies when another selected run has it; `incomplete` names the
// settings some run of the database lacks, for which a run without it makes a difference too.
std::vector<std::string> varying_keys(store::Db& db, const std::vector<std::string>& ids,
                                      const std::unordered_set<std::string>& selected,
                                      const std::set<std::string>& incomplete) {
  std::vector<std::string> out;
  if (ids.empty()) return out;
  auto first = db.prepare("SELECT value FROM params WHERE run_id = ? AND key = ?");
  auto other = db.prepare("SELECT run_id FROM params WHERE key = ?1 AND value < ?2 UNION ALL "
                          "SELECT run_id FROM params WHERE key = ?1 AND value > ?2");
  auto any = db.prepare("SELECT run_id FROM params WHERE key = ?");
  auto count = db.prepare("SELECT run_id FROM params WHERE key = ?");
  for (const auto& o : train_options()) {
    first.bind(1, ids[0]).bind(2, o.key);
    bool has = first.step();
    SqlValue v0 = has ? first.get(0) : SqlValue{};
    first.reset();
    bool differs = false;
    store::Stmt& s = has ? other : any;
    s.bind(1, o.key);
    if (has) s.bind(2, v0);
    while (!differs && s.step()) differs = selected.count(s.get_text(0)) > 0;
    s.reset();
    if (!differs && has && incomplete.count(o.key)) {  // some selected run may lack it
      size_t with = 0;
      count.bind(1, o.key);
      while (count.step()) with += selected.count(count.get_text(0));
      count.reset();
      differs = with < selected.size();
    }
    if (differs) out.push_back(o.key);
  }
  return out;
}

const std::set<std::string> kRunColumns = {"run_id", "status", "epochs", "wall_s", "created_at", "message"};

// Orders ids by one column (a setting, a final metric, or a column of the runs
// table); runs without a value go last either way; ties keep the selection's order.
void sort_ids(store::Db& db, std::vector<std::string>& ids, const std::unordered_set<std::string>& selected,
              const std::string& column, bool descending) {
  std::unordered_map<std::string, SqlValue> key;
  std::string sql;
  if (kRunColumns.count(column))
    sql = "SELECT run_id, " + std::string(column == "epochs" ? "epochs_done" : column) + " FROM runs";
  else if (find_option(column)) sql = "SELECT run_id, value FROM params WHERE key = ?1";
  else sql = "SELECT run_id, value FROM metrics WHERE name = ?1";
  auto s = db.prepare(sql);
  if (!kRunColumns.count(column)) s.bind(1, column);
  while (s.step()) {
    std::string id = s.get_text(0);
    if (selected.count(id)) key[id] = s.get(1);
  }
  auto rank = [](const SqlValue& v) {
    return std::holds_alternative<std::monostate>(v) ? 2 : std::holds_alternative<std::string>(v) ? 1 : 0;
  };
  auto number = [](const SqlValue& v) {
    return std::holds_alternative<int64_t>(v) ? double(std::get<int64_t>(v)) : std::get<double>(v);
  };
  auto less = [&](const SqlValue& a, const SqlValue& b) {
    if (rank(a) != rank(b)) return rank(a) < rank(b);
    if (rank(a) == 0) return number(a) < number(b);
    if (rank(a) == 1) return std::get<std::string>(a) < std::get<std::string>(b);
    return false;
  };
  std::stable_sort(ids.begin(), ids.end(), [&](const std::string& a, const std::string& b) {
    const SqlValue& x = key[a];
    const SqlValue& y = key[b];
    if (rank(x) == 2 || rank(y) == 2) return rank(x) < rank(y);  // missing last
    return descending ? less(y, x) : less(x, y);
  });
}

Response runs_list(store::Db& db, const Options& o, const std::set<std::string>& incomplete,
                   const Request& rq) {
  report::Selection sel;
  sel.sweep = param(rq, "sweep");
  if (!sel.sweep.empty()) find_sweep(db, sel.sweep);
  sel.statuses = list_param(rq, "status");
  static const std::set<std::string> statuses = {"queued", "running", "interrupted",
                                                 "done",   "failed",  "diverged"};
  for (const auto& s : sel.statuses)
    if (!statuses.count(s))
      throw UsageError("--status '" + s + "': expected queued, running, interrupted, done, failed or diverged");
  sel.where = where_params(rq);
  const int64_t offset = int_param(rq, "offset", 0, 0, INT64_MAX / 2);
  const int64_t limit = int_param(rq, "limit", o.default_page_size, 1, o.max_page_size);
  const std::string sort = param(rq, "sort");
  const std::string order = param(rq, "order", "asc");
  if (order != "asc" && order != "desc") throw HttpError{400, "order=" + order + ": expected asc or desc"};
  std::vector<std::string> metrics = list_param(rq, "metrics");
  if (metrics.empty()) metrics = {"test_elbo", "test_nll"};

  std::vector<std::string> ids = report::select_runs(db, sel);
  const std::unordered_set<std::string> selected(ids.begin(), ids.end());
  std::vector<std::string> varying;
  db.read([&] {
    varying = varying_keys(db, ids, selected, incomplete);
    if (!sort.empty()) sort_ids(db, ids, selected, sort, order == "desc");
  });
  std::vector<std::string> page;
  for (size_t i = size_t(std::min<int64_t>(offset, int64_t(ids.size())));
       i < ids.size() && int64_t(page.size()) < limit; ++i)
    page.push_back(ids[i]);
  auto rows = report::load_runs(db, page, sel.sweep);
  // the metrics one can add as columns: those of the runs shown, and those asked for
  std::set<std::string> names(metrics.begin(), metrics.end());
  for (const auto& r : rows)
    for (const auto& [k, v] : r.metrics) names.insert(k);
  json available(names);
  std::map<std::string, std::string> sweeps_of;
  if (sel.sweep.empty() && !page.empty()) {
    auto s = db.prepare(
        "SELECT sr.run_id, group_concat(s.name, ',') FROM sweep_runs sr JOIN sweeps s USING (sweep_id) "
        "WHERE sr.run_id IN (SELECT value FROM json_each(?)) GROUP BY sr.run_id");
    s.bind(1, ids_json(page));
    while (s.step()) sweeps_of[s.get_text(0)] = s.get_text(1);
  }
  json out = json::array();
  for (const auto& r : rows) {
    json params = json::object();
    for (const auto& k : varying) params[k] = r.params.count(k) ? json_of(r.params.at(k)) : json(nullptr);
    json ms = json::object();
    for (const auto& m : metrics) ms[m] = r.metrics.count(m) ? number_or_null(r.metrics.at(m)) : json(nullptr);
    out.push_back(json{{"run_id", r.run_id},
                       {"status", r.status},
                       {"message", r.message},
                       {"sweep", sel.sweep.empty() ? sweeps_of[r.run_id] : sel.sweep},
                       {"params", params},
                       {"metrics", ms},
                       {"epochs", r.epochs_done},
                       {"wall_s", r.wall_s}});
  }
  json j = json{{"total", ids.size()}, {"offset", offset},
                {"limit", limit},      {"sort", sort},
                {"order", order},      {"params", varying},
                {"metrics", metrics},  {"metrics_available", available},
                {"runs", out}};
  return json_response(j);
}

// A full run id from an id or unique prefix: 404 when no run has it, 400 when it is
// not an id or is ambiguous.
std::string resolve(store::Db& db, const std::string& text) {
  try {
    return report::resolve_run_id(db, text);
  } catch (const UsageError& e) {
    if (std::string(e.what()).rfind("no run with id", 0) == 0) throw HttpError{404, e.what()};
    throw;
  }
}

Response run_detail(store::Db& db, const std::string& id_text) {
  const std::string id = resolve(db, id_text);
  auto row = report::load_runs(db, {id}).at(0);
  json j = report::run_detail(db, row);
  j["train_command"] = report::train_command(row.params);
  j["command"] = j["attempts"].empty() ? json(nullptr) : j["attempts"].back()["command_line"];
  json params = json::object();
  for (const auto& [k, v] : row.params) params[k] = json_of(v);
  j["params"] = params;
  return json_response(j);
}

bool is_image(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".gif";
}

// Only a file the database records for this run, and only an image: the client names
// a run and a kind, never a path.
Response artifact(store::Db& db, const std::string& id_text, const std::string& kind) {
  const std::string id = resolve(db, id_text);
  store::ResultsStore st(db);
  auto path = st.artifact_path(id, kind);
  if (!path) throw HttpError{404, "run " + id.substr(0, 12) + " has no artifact '" + kind + "'"};
  if (!is_image(*path))
    throw HttpError{404, "artifact '" + kind + "' of run " + id.substr(0, 12) + " is not an image"};
  std::error_code ec;
  if (!std::filesystem::is_regular_file(*path, ec))
    throw HttpError{404, "artifact '" + kind + "' of run " + id.substr(0, 12) + ": " + *path + " is gone"};
  Response r;
  r.file = *path;
  std::string ext = std::filesystem::path(*path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  r.content_type = ext == ".png" ? "image/png" : ext == ".gif" ? "image/gif" : "image/jpeg";
  return r;
}

Response compare(store::Db& db, const Options& o, const Request& rq) {
  std::vector<std::string> ids;
  for (const auto& t : list_param(rq, "ids")) {
    std::string id = resolve(db, t);
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  if (ids.empty()) throw HttpError{400, "ids: which runs? (ids=RUN_ID,RUN_ID)"};
  if (int(ids.size()) > o.max_compare)
    throw HttpError{400, "ids: at most " + std::to_string(o.max_compare) + " runs at once"};
  auto rows = report::load_runs(db, ids);
  json runs = json::array();
  for (const auto& r : rows) {
    json curve = json::object();
    std::string label;
    db.read([&] {
      curve = json::object();
      auto em = db.prepare(
          "SELECT epoch, name, value FROM epoch_metrics WHERE run_id = ? ORDER BY epoch, name");
      em.bind(1, r.run_id);
      while (em.step()) {
        std::string name = em.get_text(1);
        if (!curve.contains(name)) curve[name] = json::array();
        curve[name].push_back({em.get_int(0), number_or_null(em.get_double(2))});
      }
      auto pt = db.prepare("SELECT point FROM sweep_runs WHERE run_id = ? ORDER BY position LIMIT 1");
      pt.bind(1, r.run_id);
      label = pt.step() ? report::format_point(pt.get_text(0)) : "";
    });
    // The training ELBO per epoch: -(reconstruction + KL), without the beta weighting of the loss.
    if (curve.contains("train_rec") && curve.contains("train_kl") &&
        curve["train_rec"].size() == curve["train_kl"].size()) {
      json elbo = json::array();
      for (size_t i = 0; i < curve["train_rec"].size(); ++i) {
        const json& a = curve["train_rec"][i];
        const json& b = curve["train_kl"][i];
        elbo.push_back({a[0], a[1].is_number() && b[1].is_number()
                                  ? json(-(a[1].get<double>() + b[1].get<double>()))
                                  : json(nullptr)});
      }
      curve["train_elbo"] = elbo;
    }
    json ms = json::object();
    for (const auto& [k, v] : r.metrics) ms[k] = number_or_null(v);
    runs.push_back(json{{"run_id", r.run_id},
                        {"status", r.status},
                        {"label", label.empty() ? r.run_id.substr(0, 12) : label},
                        {"curve", curve},
                        {"metrics", ms}});
  }
  json settings = json::array();
  for (const auto& opt : train_options()) {
    json values = json::array();
    std::set<std::string> distinct;
    bool any = false;
    for (const auto& r : rows) {
      auto it = r.params.find(opt.key);
      std::string text = it == r.params.end() ? "" : report::format_sql(it->second);
      any = any || it != r.params.end();
      distinct.insert(text);
      values.push_back(it == r.params.end() ? json(nullptr) : json(text));
    }
    if (any) settings.push_back(json{{"key", opt.key}, {"values", values}, {"differs", distinct.size() > 1}});
  }
  return json_response(json{{"runs", runs}, {"settings", settings}});
}

// ---- reproductions --------------------------------------------------------------------

// A `vae reproduce` sweep of the database: named "<spec id>.<budget>", its spec found
// under Options::experiments_dir.
struct Reproduction {
  reproduce::Spec spec;
  std::string budget;
  SweepRow sweep;
  int64_t seeds = 0;
};

std::vector<Reproduction> reproductions(store::Db& db, const Options& o) {
  std::map<std::string, reproduce::Spec> specs;
  for (const auto& path : reproduce::find_specs(o.experiments_dir)) {
    try {
      reproduce::Spec spec = reproduce::parse_spec_file(path);
      specs.emplace(spec.id, std::move(spec));
    } catch (const reproduce::SpecError&) {
      // a broken spec: `vae reproduce list` names it; nothing to show here
    }
  }
  std::vector<Reproduction> out;
  for (const auto& sw : sweep_rows(db)) {
    const size_t dot = sw.name.rfind('.');
    if (dot == std::string::npos) continue;
    auto it = specs.find(sw.name.substr(0, dot));
    if (it == specs.end()) continue;
    const std::string budget = sw.name.substr(dot + 1);
    const auto& budgets = it->second.budgets;
    if (std::none_of(budgets.begin(), budgets.end(),
                     [&](const reproduce::Budget& b) { return b.name == budget; }))
      continue;
    // the seeds the sweep was made with (`vae reproduce --seeds N`: seeds 0 .. N-1)
    auto s = db.prepare(
        "SELECT count(DISTINCT p.value) FROM sweep_runs sr JOIN params p ON p.run_id = sr.run_id AND p.key = 'seed' "
        "WHERE sr.sweep_id = ?");
    s.bind(1, sw.id);
    const int64_t seeds = s.step() ? s.get_int(0) : 0;
    if (seeds > 0) out.push_back({it->second, budget, sw, seeds});
  }
  return out;
}

// A plan hashes the data files of every run (its run ids); it is made once per spec,
// budget and seeds while the server runs.
json reproduction_report(store::Db& db, const Options& o, PlanCache& plans, const Reproduction& r) {
  if (!o.data_files) throw std::runtime_error("vae serve: no data checksum function for reproduction reports");
  const std::string key = r.spec.file + "\n" + r.budget + "\n" + std::to_string(r.seeds);
  auto it = plans.find(key);
  if (it == plans.end())
    it = plans
             .emplace(key, std::make_shared<reproduce::ReproPlan>(
                               reproduce::make_plan(r.spec, r.budget, r.seeds, o.data_files)))
             .first;
  const reproduce::ReproPlan& plan = *it->second;
  const reproduce::Report rep = reproduce::build_report(db, r.spec, plan, r.sweep.file);
  return json::parse(reproduce::render_report(rep, reproduce::ReportFormat::Json));
}

Response reproductions_list(store::Db& db, const Options& o, PlanCache& plans) {
  json out = json::array();
  for (const auto& r : reproductions(db, o)) {
    const json rep = reproduction_report(db, o, plans, r);
    out.push_back(json{{"spec", r.spec.id},
                       {"title", r.spec.title},
                       {"citation", r.spec.citation()},
                       {"budget", rep["budget"]},
                       {"seeds", r.seeds},
                       {"sweep", r.sweep.name},
                       {"summary", rep["summary"]}});
  }
  return json_response(json{{"reproductions", out}});
}

Response reproduction_detail(store::Db& db, const Options& o, PlanCache& plans, const std::string& id,
                             const std::string& budget) {
  for (const auto& r : reproductions(db, o))
    if (r.spec.id == id && r.budget == budget) {
      json rep = reproduction_report(db, o, plans, r);
      rep["command"] = "vae reproduce " + r.spec.file + " --budget " + r.budget + " --seeds " +
                       std::to_string(r.seeds) + " --db " + db.path() + " --report";
      return json_response(rep);
    }
  throw HttpError{404, "no reproduction '" + id + "' at budget '" + budget + "' in " + db.path() +
                           " (with its spec under " + o.experiments_dir + ")"};
}

Response info(store::Db& db, const Options& o) {
  std::error_code ec;
  return json_response(json{{"db", db.path()},
                            {"schema_version", store::schema_version(db)},
                            {"read_only", true},
                            {"runs", db.scalar_int("SELECT count(*) FROM runs")},
                            {"sweeps", db.scalar_int("SELECT count(*) FROM sweeps")},
                            {"chartjs", std::filesystem::is_regular_file(o.chartjs_path, ec)}});
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream ss(path);
  std::string p;
  while (std::getline(ss, p, '/'))
    if (!p.empty()) parts.push_back(p);
  return parts;
}

}  // namespace

std::vector<std::string> list_param(const Request& rq, const std::string& key) {
  std::vector<std::string> out;
  for (auto [it, end] = rq.query.equal_range(key); it != end; ++it) {
    std::stringstream ss(it->second);
    std::string item;
    while (std::getline(ss, item, ','))
      if (!item.empty()) out.push_back(item);
  }
  return out;
}

Api::Api(store::Db& db, Options options) : db_(db), options_(std::move(options)) {
  // Settings some run lacks (runs recorded by an older vae with fewer settings); new runs
  // always record every setting, so the set cannot grow while the database is served.
  auto s = db_.prepare("SELECT key FROM params GROUP BY key HAVING count(*) < (SELECT count(*) FROM runs)");
  while (s.step()) incomplete_.insert(s.get_text(0));
}

Response Api::route(const Request& rq) {
  const auto parts = split_path(rq.path);
  if (parts.empty() || parts[0] != "api") {
    if (rq.path == "/chart.js") {
      std::error_code ec;
      if (!std::filesystem::is_regular_file(options_.chartjs_path, ec))
        throw HttpError{404, options_.chartjs_path +
                                 ": Chart.js is missing (Debian: apt-get install libjs-chart.js)"};
      Response r;
      r.file = options_.chartjs_path;
      r.content_type = "text/javascript; charset=utf-8";
      return r;
    }
    const Asset* a = find_asset(rq.path);
    if (!a) throw HttpError{404, "no page at " + rq.path};
    Response r;
    r.content_type = a->content_type;
    r.body.assign(reinterpret_cast<const char*>(a->data), a->size);
    return r;
  }
  const size_t n = parts.size();
  if (n == 2 && parts[1] == "info") return info(db_, options_);
  if (n == 2 && parts[1] == "sweeps") return sweeps_list(db_);
  if (n == 3 && parts[1] == "sweeps") return sweep_detail(db_, parts[2]);
  if (n == 2 && parts[1] == "table") return table(db_, rq);
  if (n == 2 && parts[1] == "runs") return runs_list(db_, options_, incomplete_, rq);
  if (n == 3 && parts[1] == "runs") return run_detail(db_, parts[2]);
  if (n == 5 && parts[1] == "runs" && parts[3] == "artifacts") return artifact(db_, parts[2], parts[4]);
  if (n == 2 && parts[1] == "compare") return compare(db_, options_, rq);
  if (n == 2 && parts[1] == "reproductions") return reproductions_list(db_, options_, plans_);
  if (n == 4 && parts[1] == "reproductions")
    return reproduction_detail(db_, options_, plans_, parts[2], parts[3]);
  throw HttpError{404, "no API at " + rq.path};
}

Response Api::handle(const Request& rq) {
  if (rq.method != "GET" && rq.method != "HEAD")
    return error_response(405, rq.method + " " + rq.path + ": the server only reads (GET)");
  try {
    return route(rq);
  } catch (const HttpError& e) {
    return error_response(e.status, e.message);
  } catch (const UsageError& e) {
    return error_response(400, e.what());
  } catch (const store::DbError& e) {
    return error_response(e.busy() ? 503 : 500, e.what());
  } catch (const std::exception& e) {
    return error_response(500, e.what());
  }
}

}  // namespace vae::serve
