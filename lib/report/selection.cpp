#include "report/selection.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_map>

#include "config/config.hpp"
#include "models/settings.hpp"
#include "store/provenance.hpp"
#include "store/run_identity.hpp"

namespace vae::report {

using store::SqlValue;

namespace {
std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  return out;
}

std::string trim(const std::string& s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}
}  // namespace

Condition parse_condition(const std::string& text) {
  // KEY: a letter or '_', then letters, digits, '_', '.', '-'; OP: == != <= >= = < >
  auto bad = [&] {
    return UsageError("--where '" + text + "': expected KEY OP VALUE, e.g. latent=20 or 'beta>=2'");
  };
  std::string s = trim(text);
  size_t k = 0;
  auto key_char = [&](char ch, bool first) {
    return std::isalpha(static_cast<unsigned char>(ch)) || ch == '_' ||
           (!first && (std::isdigit(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-'));
  };
  while (k < s.size() && key_char(s[k], k == 0)) ++k;
  if (k == 0) throw bad();
  Condition c;
  c.text = text;
  c.key = s.substr(0, k);
  std::string rest = trim(s.substr(k));
  std::string op;
  for (const char* o : {"==", "!=", "<=", ">=", "=", "<", ">"})
    if (rest.rfind(o, 0) == 0) {
      op = o;
      break;
    }
  if (op.empty()) throw bad();
  c.op = op == "==" ? "=" : op;
  std::string value = trim(rest.substr(op.size()));
  if (value.empty()) throw UsageError("--where '" + text + "': missing value");
  const OptionSpec* spec = find_option(c.key);
  if (spec) {
    std::vector<std::string> alternatives{value};
    if (spec->kind != ValueKind::IntList && (c.op == "=" || c.op == "!=")) alternatives = split(value, ',');
    for (const auto& a : alternatives) {
      try {
        c.values.push_back(store::to_sql(parse_value(*spec, trim(a))));
      } catch (const ConfigError& e) {
        throw UsageError("--where '" + text + "': " + e.what());
      }
    }
    if (spec->kind == ValueKind::IntList && c.op != "=" && c.op != "!=")
      throw UsageError("--where '" + text + "': '" + c.key + "' is a list: use = or !=");
  } else {
    c.is_metric = true;
    size_t pos = 0;
    double x = 0;
    try {
      x = std::stod(value, &pos);
    } catch (const std::exception&) {
      pos = 0;
    }
    if (pos != value.size() || value.empty())
      throw UsageError("--where '" + text + "': '" + c.key +
                       "' is not a `vae train` setting, so it is read as a metric, and '" + value +
                       "' is not a number");
    c.values.push_back(x);
  }
  return c;
}

std::vector<std::string> select_runs(store::Db& db, const Selection& sel) {
  std::string sql = "SELECT r.run_id FROM runs r";
  std::vector<SqlValue> binds;
  if (!sel.sweep.empty()) {
    auto s = db.prepare("SELECT sweep_id FROM sweeps WHERE name = ?");
    s.bind(1, sel.sweep);
    if (!s.step()) {
      std::string known;
      auto all = db.prepare("SELECT name FROM sweeps ORDER BY name");
      while (all.step()) known += (known.empty() ? "" : ", ") + all.get_text(0);
      throw UsageError("no sweep named '" + sel.sweep + "' in " + db.path() +
                       (known.empty() ? " (it has none yet)" : " (it has: " + known + ")"));
    }
    sql += " JOIN sweep_runs sr ON sr.run_id = r.run_id AND sr.sweep_id = ?";
    binds.push_back(s.get_int(0));
  }
  sql += " WHERE 1";
  for (const auto& c : sel.where) {
    if (c.is_metric) {
      auto chk = db.prepare("SELECT 1 FROM metrics WHERE name = ? LIMIT 1");
      chk.bind(1, c.key);
      if (!chk.step()) {
        auto chk2 = db.prepare("SELECT 1 FROM epoch_metrics WHERE name = ? LIMIT 1");
        chk2.bind(1, c.key);
        if (!chk2.step())
          throw UsageError("--where '" + c.text + "': '" + c.key +
                           "' is neither a `vae train` setting nor a metric of any run");
      }
    }
    std::string col =
        c.is_metric ? "EXISTS (SELECT 1 FROM metrics x WHERE x.run_id = r.run_id AND x.name = ? AND x.value "
                    : "EXISTS (SELECT 1 FROM params x WHERE x.run_id = r.run_id AND x.key = ? AND x.value ";
    binds.push_back(c.key);
    if (c.values.size() > 1) {
      sql += " AND " + col + (c.op == "=" ? "IN (" : "NOT IN (");
      for (size_t i = 0; i < c.values.size(); ++i) {
        sql += i ? ", ?" : "?";
        binds.push_back(c.values[i]);
      }
      sql += "))";
    } else {
      sql += " AND " + col + c.op + " ?)";
      binds.push_back(c.values[0]);
    }
  }
  bool want_interrupted = false;
  std::vector<std::string> stored;
  for (const auto& s : sel.statuses) {
    if (s == "interrupted") want_interrupted = true, stored.push_back("running");
    else stored.push_back(s);
  }
  if (!stored.empty()) {
    sql += " AND r.status IN (";
    for (size_t i = 0; i < stored.size(); ++i) {
      sql += i ? ", ?" : "?";
      binds.push_back(stored[i]);
    }
    sql += ")";
  }
  sql +=
      sel.sweep.empty()
          ? " ORDER BY r.created_at, (SELECT min(position) FROM sweep_runs m WHERE m.run_id = r.run_id), r.run_id"
          : " ORDER BY sr.position";
  std::vector<std::string> ids;
  db.read([&] {
    ids.clear();
    auto s = db.prepare(sql);
    for (size_t i = 0; i < binds.size(); ++i) s.bind(int(i + 1), binds[i]);
    while (s.step()) ids.push_back(s.get_text(0));
  });
  if (want_interrupted ||
      std::find(sel.statuses.begin(), sel.statuses.end(), "running") != sel.statuses.end()) {
    // split 'running' into live and interrupted as asked
    auto rows = load_runs(db, ids);
    std::set<std::string> wanted(sel.statuses.begin(), sel.statuses.end());
    ids.clear();
    for (const auto& r : rows)
      if (wanted.count(r.status)) ids.push_back(r.run_id);
  }
  return ids;
}

namespace {

// Status as shown: a 'running' run whose claimant is gone is 'interrupted'. Reads
// columns first.. first+5 of the runs query: status, claim_host, claim_boot_id,
// claim_pid, claim_pid_start, heartbeat_unix.
std::string shown_status(const store::Stmt& r, int first) {
  std::string status = r.get_text(first);
  if (status != "running") return status;
  const std::string host = r.get_text(first + 1);
  bool alive = host == store::machine_info().host
                   ? store::process_alive_here(host, r.get_text(first + 2), r.get_int(first + 3),
                                               r.get_int(first + 4))
                   : (store::now_unix() - r.get_double(first + 5) < 120.0);
  return alive ? status : "interrupted";
}

const char* const kStatusColumns =
    "status, claim_host, claim_boot_id, claim_pid, claim_pid_start, heartbeat_unix";

}  // namespace

std::vector<RunRow> load_runs(store::Db& db, const std::vector<std::string>& ids, const std::string& sweep) {
  std::vector<RunRow> rows;
  db.read([&] {
    rows.clear();
    auto r = db.prepare(std::string("SELECT ") + kStatusColumns +
                        ", coalesce(message, ''), epochs_done, attempts, coalesce(wall_s, 0), "
                        "coalesce(started_at, ''), coalesce(ended_at, '') FROM runs WHERE run_id = ?");
    auto p = db.prepare("SELECT key, value FROM params WHERE run_id = ?");
    auto m = db.prepare("SELECT name, value FROM metrics WHERE run_id = ?");
    auto pt = db.prepare(
        "SELECT point FROM sweep_runs JOIN sweeps USING (sweep_id) WHERE run_id = ? AND name = ?");
    for (const auto& id : ids) {
      RunRow row;
      row.run_id = id;
      r.bind(1, id);
      if (!r.step()) {
        r.reset();
        continue;
      }
      row.status = shown_status(r, 0);
      row.message = r.get_text(6);
      row.epochs_done = r.get_int(7);
      row.attempts = r.get_int(8);
      row.wall_s = r.get_double(9);
      row.started_at = r.get_text(10);
      row.ended_at = r.get_text(11);
      r.reset();
      p.bind(1, id);
      while (p.step()) row.params.emplace_hint(row.params.end(), p.get_text(0), p.get(1));  // in key order
      p.reset();
      m.bind(1, id);
      while (m.step()) row.metrics.emplace_hint(row.metrics.end(), m.get_text(0), m.get_double(1));
      m.reset();
      if (!sweep.empty()) {
        pt.bind(1, id).bind(2, sweep);
        if (pt.step()) row.point_json = pt.get_text(0);
        pt.reset();
      }
      rows.push_back(std::move(row));
    }
  });
  return rows;
}

namespace {

// A JSON array of strings, bound as one parameter: `x IN (SELECT value FROM json_each(?))`
// selects thousands of rows in one statement, on a read-only connection too.
std::string json_strings(const std::vector<std::string>& v) { return nlohmann::json(v).dump(); }

// '$.config."lr-decay"': a JSON path to a setting inside identity_json.
std::string identity_path(const std::string& key) { return "'$.config.\"" + key + "\"'"; }

}  // namespace

std::vector<RunRow> load_runs(store::Db& db, const std::vector<std::string>& ids, const RunFields& fields) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < ids.size(); ++i) index.emplace(ids[i], i);
  std::string identity = "''";
  if (!fields.identity_without.empty()) {
    identity = "json_remove(identity_json";
    for (const auto& k : fields.identity_without) {
      for (char ch : k)  // setting names only: nothing that could close the quoted path
        if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_'))
          throw UsageError("'" + k + "' is not a setting name");
      identity += ", " + identity_path(k);
    }
    identity += ")";
  }
  const std::string in_ids = "run_id IN (SELECT value FROM json_each(?1))";
  std::vector<RunRow> rows(ids.size());
  std::vector<bool> found(ids.size(), false);
  db.read([&] {
    for (auto& row : rows) row = RunRow{};
    std::fill(found.begin(), found.end(), false);
    const std::string id_list = json_strings(ids);
    auto r = db.prepare("SELECT run_id, " + std::string(kStatusColumns) + ", " + identity +
                        " FROM runs WHERE " + in_ids);
    r.bind(1, id_list);
    while (r.step()) {
      auto it = index.find(r.get_text(0));
      if (it == index.end()) continue;
      RunRow& row = rows[it->second];
      found[it->second] = true;
      row.run_id = it->first;
      row.status = shown_status(r, 1);
      row.identity_rest = r.get_text(7);
    }
    auto p = db.prepare(
        "SELECT run_id, key, value FROM params WHERE key IN (SELECT value FROM json_each(?2)) AND " + in_ids);
    p.bind(1, id_list).bind(2, json_strings(fields.params));
    while (p.step())
      if (auto it = index.find(p.get_text(0)); it != index.end())
        rows[it->second].params.emplace(p.get_text(1), p.get(2));
    auto m = db.prepare(
        "SELECT run_id, name, value FROM metrics WHERE name IN (SELECT value FROM json_each(?2)) AND " +
        in_ids);
    m.bind(1, id_list).bind(2, json_strings(fields.metrics));
    while (m.step())
      if (auto it = index.find(m.get_text(0)); it != index.end())
        rows[it->second].metrics.emplace(m.get_text(1), m.get_double(2));
  });
  std::vector<RunRow> out;
  out.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i)
    if (found[i]) out.push_back(std::move(rows[i]));
  return out;
}

std::vector<std::string> metric_names(store::Db& db, const std::vector<std::string>& ids) {
  std::vector<std::string> names;
  db.read([&] {
    names.clear();
    auto s = db.prepare(
        "SELECT DISTINCT name FROM metrics WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY name");
    s.bind(1, json_strings(ids));
    while (s.step()) names.push_back(s.get_text(0));
  });
  return names;
}

std::string resolve_run_id(store::Db& db, const std::string& prefix) {
  bool hex = prefix.size() >= 4 && prefix.size() <= 64 &&
             std::all_of(prefix.begin(), prefix.end(),
                         [](char ch) { return std::isxdigit(static_cast<unsigned char>(ch)); });
  if (!hex) throw UsageError("'" + prefix + "' is not a run id (at least 4 hex digits of one)");
  std::string lower = prefix;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  auto s = db.prepare("SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ? ORDER BY run_id LIMIT 2");
  s.bind(1, lower).bind(2, lower + "g");
  std::vector<std::string> found;
  while (s.step()) found.push_back(s.get_text(0));
  if (found.empty()) throw UsageError("no run with id " + prefix + " in " + db.path());
  if (found.size() > 1)
    throw UsageError("run id " + prefix + " is ambiguous (" + found[0].substr(0, 12) + ", " +
                     found[1].substr(0, 12) + ", ...): give more digits");
  return found[0];
}

std::string format_sql(const SqlValue& v) {
  if (std::holds_alternative<std::monostate>(v)) return "";
  if (auto i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (auto d = std::get_if<double>(&v)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", *d);
    return buf;
  }
  return std::get<std::string>(v);
}

std::string format_point(const std::string& point_json) {
  std::string out;
  try {
    auto j = nlohmann::ordered_json::parse(point_json.empty() ? "{}" : point_json);
    for (auto it = j.begin(); it != j.end(); ++it) {
      std::string v;
      if (it->is_number_float()) v = format_sql(it->get<double>());
      else if (it->is_string()) v = it->get<std::string>();
      else if (it->is_array()) {
        for (const auto& e : *it) v += (v.empty() ? "" : ",") + e.dump();
      } else v = it->dump();
      out += (out.empty() ? "" : " ") + it.key() + "=" + v;
    }
  } catch (const std::exception&) {
  }
  return out;
}

std::string format_seconds(double s) {
  if (!std::isfinite(s) || s < 0) return "--";
  char buf[32];
  if (s < 59.95) {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
    return buf;
  }
  long t = std::lround(s);
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

std::vector<std::string> varying_params(const std::vector<RunRow>& rows) {
  std::vector<std::string> keys;
  if (rows.empty()) return keys;
  for (const auto& o : train_options()) {
    auto value = [&](const RunRow& r) {
      auto it = r.params.find(o.key);
      return it == r.params.end() ? std::string("\x01") : format_sql(it->second);
    };
    const std::string v0 = value(rows[0]);
    for (const auto& r : rows)
      if (value(r) != v0) {
        keys.push_back(o.key);
        break;
      }
  }
  return keys;
}

}  // namespace vae::report
