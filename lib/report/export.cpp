#include "report/export.hpp"

#include <set>

#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "models/settings.hpp"
#include "store/unit_vectors.hpp"

namespace vae::report {

using store::SqlValue;

Frame export_runs(store::Db& db, const std::vector<std::string>& ids) {
  std::vector<RunRow> runs = load_runs(db, ids);
  std::set<std::string> metric_names;
  for (const auto& r : runs)
    for (const auto& [n, v] : r.metrics) metric_names.insert(n);

  static const std::vector<std::string> prov = {"git_commit", "git_dirty",   "binary_sha256", "vae_version",
                                                "compiler",   "build_flags", "blas",          "blas_threads",
                                                "cpu",        "cpu_count",   "host",          "command_line",
                                                "session_id"};

  Frame f;
  f.columns = {"run_id",   "status", "message",    "sweeps",  "epochs_done",
               "attempts", "wall_s", "started_at", "ended_at"};
  for (const auto& o : train_options()) f.columns.push_back("params." + o.key);
  for (const auto& m : metric_names) f.columns.push_back("metrics." + m);
  for (const auto& p : prov) f.columns.push_back(p);
  f.columns.push_back("data_files");
  f.columns.push_back("kl_per_dim");    // the KL of each latent unit (JSON array)
  f.columns.push_back("unit_vectors");  // every named per-unit vector (JSON object)

  db.read([&] {
    f.rows.clear();
    auto sweeps = db.prepare(
        "SELECT group_concat(name, ';') FROM (SELECT s.name FROM sweep_runs sr JOIN sweeps s "
        "USING (sweep_id) WHERE sr.run_id = ? ORDER BY s.name)");
    // provenance of the attempt that produced the final status (the last one)
    auto pv = db.prepare(
        "SELECT s.git_commit, s.git_dirty, s.binary_sha256, s.vae_version, s.compiler, "
        "s.build_flags, s.blas, a.blas_threads, s.cpu, s.cpu_count, a.host, s.command_line, "
        "s.session_id FROM runs r JOIN attempts a ON a.run_id = r.run_id AND a.attempt = r.attempts "
        "LEFT JOIN sessions s ON s.session_id = a.session_id WHERE r.run_id = ?");
    auto files = db.prepare(
        "SELECT group_concat(path || '=' || sha256, ';') FROM (SELECT path, sha256 FROM data_files "
        "WHERE run_id = ? ORDER BY path)");
    auto kl = db.prepare("SELECT kl_per_dim FROM runs WHERE run_id = ?");
    for (const auto& r : runs) {
      std::vector<SqlValue> row;
      row.push_back(r.run_id);
      row.push_back(r.status);
      row.push_back(r.message.empty() ? SqlValue{} : SqlValue{r.message});
      sweeps.bind(1, r.run_id);
      row.push_back(sweeps.step() ? sweeps.get(0) : SqlValue{});
      sweeps.reset();
      row.push_back(r.epochs_done);
      row.push_back(r.attempts);
      row.push_back(r.wall_s);
      row.push_back(r.started_at.empty() ? SqlValue{} : SqlValue{r.started_at});
      row.push_back(r.ended_at.empty() ? SqlValue{} : SqlValue{r.ended_at});
      for (const auto& o : train_options()) {
        auto it = r.params.find(o.key);
        row.push_back(it == r.params.end() ? SqlValue{} : it->second);
      }
      for (const auto& m : metric_names) {
        auto it = r.metrics.find(m);
        row.push_back(it == r.metrics.end() ? SqlValue{} : SqlValue{it->second});
      }
      pv.bind(1, r.run_id);
      bool have = pv.step();
      for (size_t i = 0; i < prov.size(); ++i) row.push_back(have ? pv.get(int(i)) : SqlValue{});
      pv.reset();
      files.bind(1, r.run_id);
      row.push_back(files.step() ? files.get(0) : SqlValue{});
      files.reset();
      kl.bind(1, r.run_id);
      const store::UnitVectors vectors = store::parse_unit_vectors(kl.step() && !kl.is_null(0) ? kl.get_text(0)
                                                                                               : std::string());
      kl.reset();
      const auto kl_it = vectors.find("kl_per_dim");
      row.push_back(kl_it == vectors.end() ? SqlValue{} : SqlValue{nlohmann::json(kl_it->second).dump()});
      const std::string all = store::unit_vectors_json(vectors);
      row.push_back(all.empty() ? SqlValue{} : SqlValue{all});
      f.rows.push_back(std::move(row));
    }
  });
  return f;
}

}  // namespace vae::report
