#include "report/run_detail.hpp"

#include <cmath>

#include "config/config.hpp"
#include "models/settings.hpp"
#include "store/run_identity.hpp"
#include "store/unit_vectors.hpp"

namespace vae::report {

using store::SqlValue;

namespace {

nlohmann::json json_of(const SqlValue& v) {
  if (auto i = std::get_if<int64_t>(&v)) return *i;
  if (auto d = std::get_if<double>(&v)) return std::isfinite(*d) ? nlohmann::json(*d) : nlohmann::json(nullptr);
  if (auto s = std::get_if<std::string>(&v)) return *s;
  return nullptr;
}

nlohmann::json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json run_detail(store::Db& db, const RunRow& row) {
  const std::string& id = row.run_id;
  nlohmann::json j;
  db.read([&] {
    j = nlohmann::json::object();
    auto r = db.prepare(
        "SELECT config_json, identity_json, coalesce(kl_per_dim, 'null'), created_at, out_dir FROM runs WHERE run_id = ?");
    r.bind(1, id);
    if (!r.step()) throw UsageError("no run with id " + id + " in " + db.path());
    j["run_id"] = id;
    j["status"] = row.status;
    j["message"] = row.message;
    j["config"] = nlohmann::json::parse(r.get_text(0));
    j["identity"] = nlohmann::json::parse(r.get_text(1));
    // Every named per-unit vector; kl_per_dim (null when the family has none) as before.
    const store::UnitVectors vectors = store::parse_unit_vectors(r.get_text(2));
    j["unit_vectors"] = nlohmann::json::object();
    for (const auto& [name, v] : vectors) j["unit_vectors"][name] = v;
    const auto kl = vectors.find("kl_per_dim");
    j["kl_per_dim"] = kl == vectors.end() ? nlohmann::json(nullptr) : nlohmann::json(kl->second);
    j["created_at"] = r.get_text(3);
    j["out_dir"] = r.get_text(4);
    j["started_at"] = row.started_at;
    j["ended_at"] = row.ended_at;
    j["wall_s"] = row.wall_s;
    j["epochs_done"] = row.epochs_done;
    nlohmann::json metrics = nlohmann::json::object();
    for (const auto& [k, v] : row.metrics) metrics[k] = number_or_null(v);
    j["metrics"] = metrics;
    auto sw = db.prepare(
        "SELECT s.name, sr.position, sr.point FROM sweep_runs sr JOIN sweeps s USING (sweep_id) WHERE sr.run_id = ? ORDER BY s.name");
    sw.bind(1, id);
    j["sweeps"] = nlohmann::json::array();
    while (sw.step())
      j["sweeps"].push_back({{"name", sw.get_text(0)},
                             {"position", sw.get_int(1)},
                             {"point", nlohmann::json::parse(sw.get_text(2).empty() ? "{}" : sw.get_text(2))},
                             {"point_text", format_point(sw.get_text(2))}});
    auto df = db.prepare("SELECT path, sha256 FROM data_files WHERE run_id = ? ORDER BY path");
    df.bind(1, id);
    j["data_files"] = nlohmann::json::array();
    while (df.step()) j["data_files"].push_back({{"path", df.get_text(0)}, {"sha256", df.get_text(1)}});
    auto at = db.prepare(
        "SELECT a.attempt, a.host, a.pid, a.started_at, a.ended_at, a.outcome, a.message, a.resumed_from_epoch, "
        "a.epochs_done, a.blas_threads, s.git_commit, s.git_dirty, s.binary_sha256, s.compiler, s.build_flags, "
        "s.blas, s.cpu, s.cpu_count, s.command_line, s.vae_version, s.session_id "
        "FROM attempts a LEFT JOIN sessions s USING (session_id) WHERE a.run_id = ? ORDER BY a.attempt");
    at.bind(1, id);
    j["attempts"] = nlohmann::json::array();
    while (at.step()) {
      nlohmann::json a = nlohmann::json::object();
      for (int c = 0; c < at.columns(); ++c) a[at.column_name(c)] = json_of(at.get(c));
      j["attempts"].push_back(a);
    }
    auto ar = db.prepare("SELECT kind, path, epoch, bytes FROM artifacts WHERE run_id = ? ORDER BY kind");
    ar.bind(1, id);
    j["artifacts"] = nlohmann::json::array();
    while (ar.step())
      j["artifacts"].push_back({{"kind", ar.get_text(0)},
                                {"path", ar.get_text(1)},
                                {"epoch", ar.get_int(2)},
                                {"bytes", ar.get_int(3)}});
    auto em = db.prepare("SELECT epoch, name, value FROM epoch_metrics WHERE run_id = ? ORDER BY epoch, name");
    em.bind(1, id);
    nlohmann::json curve = nlohmann::json::object();
    while (em.step()) {
      std::string name = em.get_text(1);
      if (!curve.contains(name)) curve[name] = nlohmann::json::array();
      curve[name].push_back({em.get_int(0), number_or_null(em.get_double(2))});
    }
    j["curve"] = curve;
  });
  return j;
}

std::string train_command(const std::map<std::string, SqlValue>& params) {
  ConfigMap defaults = default_config();
  std::string cmd = "vae train";
  for (const auto& o : train_options()) {
    auto v = params.find(o.key);
    if (!o.identity || v == params.end()) continue;
    std::string now = format_sql(v->second);
    auto d = defaults.find(o.key);
    if (d != defaults.end() && now == format_sql(store::to_sql(d->second))) continue;
    bool plain = !now.empty() && now.find_first_of(" \t'\"$\\;&|<>()*?") == std::string::npos;
    cmd += " --" + o.key + " " + (plain ? now : "'" + now + "'");
  }
  return cmd;
}

}  // namespace vae::report
