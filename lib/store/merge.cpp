#include "store/merge.hpp"

#include <filesystem>
#include <sstream>

#include "store/results_store.hpp"

namespace vae::store {

namespace {

// Tables with one row set per run, copied whole (same schema version on both sides,
// so SELECT * lines up column for column). attempts and sweep_runs need remapped ids.
const char* const kRunTables[] = {"params", "data_files", "epoch_metrics", "metrics", "artifacts"};

bool finished(const std::string& status) {
  return status == "done" || status == "failed" || status == "diverged";
}

std::string show(const Stmt& s, int col) {
  if (s.is_null(col)) return "NaN";
  std::ostringstream o;
  o.precision(17);
  o << s.get_double(col);
  return o.str();
}

// Why the run's results differ between OUT and the shard ("" when they agree).
std::string difference(Db& out, const std::string& run_id, const std::string& here, const std::string& there,
                       const std::string& shard) {
  if (here != there) return "status " + here + " here, " + there + " in " + shard;
  // metrics present on one side only, or with different values (NULL, i.e. NaN, equals NULL)
  // Timings (names ending in _s: seconds, samples per second) are measurements of the
  // machine, not results: the same run timed twice is still the same run.
  auto s = out.prepare(
      "SELECT name FROM (SELECT name, value FROM main.metrics WHERE run_id = ?1 "
      "  EXCEPT SELECT name, value FROM shard.metrics WHERE run_id = ?1) WHERE substr(name, -2) <> '_s' "
      "UNION ALL SELECT name FROM (SELECT name, value FROM shard.metrics WHERE run_id = ?1 "
      "  EXCEPT SELECT name, value FROM main.metrics WHERE run_id = ?1) WHERE substr(name, -2) <> '_s' "
      "ORDER BY name LIMIT 1");
  s.bind(1, run_id);
  if (!s.step()) return "";
  const std::string name = s.get_text(0);
  s.reset();
  auto v = out.prepare("SELECT (SELECT count(*) FROM main.metrics WHERE run_id = ?1 AND name = ?2), "
                       "(SELECT value FROM main.metrics WHERE run_id = ?1 AND name = ?2), "
                       "(SELECT count(*) FROM shard.metrics WHERE run_id = ?1 AND name = ?2), "
                       "(SELECT value FROM shard.metrics WHERE run_id = ?1 AND name = ?2)");
  v.bind(1, run_id).bind(2, name);
  v.step();
  std::string a = v.get_int(0) ? show(v, 1) : "absent", b = v.get_int(2) ? show(v, 3) : "absent";
  return name + " " + a + " here, " + b + " in " + shard;
}

// INSERT INTO main.<table>(columns) SELECT ... FROM shard.<table>, with one column
// replaced by an expression (an id remapped into OUT). `except` is left out entirely.
std::string copy_sql(Db& out, const std::string& table, const std::string& column,
                     const std::string& expression, const std::string& except = "") {
  std::string cols, select;
  auto s = out.prepare("SELECT name FROM pragma_table_info(?, 'main') ORDER BY cid");
  s.bind(1, table);
  while (s.step()) {
    std::string c = s.get_text(0);
    if (c == except) continue;
    cols += (cols.empty() ? "" : ", ") + c;
    select += (select.empty() ? "" : ", ") + (c == column ? expression : c);
  }
  return "INSERT INTO main." + table + "(" + cols + ") SELECT " + select + " FROM shard." + table;
}

void copy_run(Db& out, const std::string& run_id) {
  out.prepare("INSERT INTO main.runs SELECT * FROM shard.runs WHERE run_id = ?").bind(1, run_id).run();
  for (const char* t : kRunTables)
    out.prepare(std::string("INSERT INTO main.") + t + " SELECT * FROM shard." + t + " WHERE run_id = ?")
        .bind(1, run_id)
        .run();
  out.prepare(copy_sql(out, "attempts", "session_id",
                       "(SELECT dst FROM temp.merge_session_map WHERE src = session_id)") +
              " WHERE run_id = ?")
      .bind(1, run_id)
      .run();
}

// Detaches the shard however the merge ends.
struct Attached {
  Db& db;
  Attached(Db& d, const std::string& path) : db(d) {
    db.prepare("ATTACH DATABASE ? AS shard").bind(1, path).run();
  }
  ~Attached() {
    try {
      db.exec("DETACH DATABASE shard");
    } catch (...) {
    }
  }
};

}  // namespace

const std::vector<std::string>& merged_tables() {
  static const std::vector<std::string> t = {"sweeps",        "runs",    "sweep_runs", "params",   "data_files",
                                             "epoch_metrics", "metrics", "sessions",   "attempts", "artifacts"};
  return t;
}

MergeReport merge_database(Db& out, const std::string& shard_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::equivalent(out.path(), shard_path, ec))
    throw DbError(shard_path + ": is the output database itself", SQLITE_MISUSE);
  open_for_reading(shard_path);  // names the file if missing or foreign; upgrades its schema
  const std::string name = fs::path(shard_path).filename().string();

  MergeReport report;
  Attached attached(out, shard_path);
  out.write([&] {
    report = MergeReport{};
    report.shard = shard_path;
    out.exec(
        "CREATE TEMP TABLE IF NOT EXISTS merge_sweep_map (src INTEGER PRIMARY KEY, dst INTEGER NOT NULL);"
        "CREATE TEMP TABLE IF NOT EXISTS merge_session_map (src INTEGER PRIMARY KEY, dst INTEGER NOT NULL);"
        "CREATE TEMP TABLE IF NOT EXISTS merge_kept_members AS SELECT * FROM main.sweep_runs WHERE 0;"
        "DELETE FROM temp.merge_sweep_map; DELETE FROM temp.merge_session_map;"
        "DELETE FROM temp.merge_kept_members;");

    // sweeps by name
    out.exec("INSERT INTO main.sweeps(name, file, file_sha256, spec, created_at, updated_at) "
             "SELECT name, file, file_sha256, spec, created_at, updated_at FROM shard.sweeps WHERE true "
             "ON CONFLICT(name) DO NOTHING;"
             "INSERT INTO temp.merge_sweep_map SELECT s.sweep_id, m.sweep_id FROM shard.sweeps s "
             "JOIN main.sweeps m ON m.name = s.name;");

    // runs (read first: the loop writes to main.runs)
    struct Row {
      std::string id, there, here;
      bool in_out;
    };
    std::vector<Row> rows;
    {
      auto runs = out.prepare("SELECT s.run_id, s.status, m.status FROM shard.runs s "
                              "LEFT JOIN main.runs m ON m.run_id = s.run_id ORDER BY s.run_id");
      while (runs.step())
        rows.push_back({runs.get_text(0), runs.get_text(1), runs.get_text(2), !runs.is_null(2)});
    }
    std::vector<const Row*> to_copy;
    for (const Row& row : rows) {
      if (!finished(row.there)) {
        ++report.unfinished;
      } else if (row.in_out && finished(row.here)) {
        std::string why = difference(out, row.id, row.here, row.there, name);
        if (why.empty()) ++report.identical;
        else report.conflicts.push_back({row.id, why});
      } else {
        to_copy.push_back(&row);
      }
    }

    // the sessions (provenance) of the attempts copied: one per (host, pid, start time),
    // so merging again finds them
    out.exec(
        "CREATE TEMP TABLE IF NOT EXISTS merge_copy (run_id TEXT PRIMARY KEY); DELETE FROM temp.merge_copy;");
    auto add = out.prepare("INSERT INTO temp.merge_copy VALUES (?)");
    for (const Row* row : to_copy) add.bind(1, row->id).run();
    auto sessions = out.prepare(
        "SELECT DISTINCT session_id FROM shard.attempts WHERE session_id IS NOT NULL AND "
        "run_id IN (SELECT run_id FROM temp.merge_copy) ORDER BY session_id");
    auto find = out.prepare(
        "SELECT m.session_id FROM main.sessions m JOIN shard.sessions s ON m.host IS s.host AND "
        "m.pid IS s.pid AND m.started_at = s.started_at WHERE s.session_id = ?");
    auto insert = out.prepare(copy_sql(out, "sessions", "sweep_id",
                                       "(SELECT dst FROM temp.merge_sweep_map WHERE src = sweep_id)",
                                       "session_id") +
                              " WHERE session_id = ? RETURNING session_id");
    auto map = out.prepare("INSERT INTO temp.merge_session_map VALUES (?, ?)");
    while (sessions.step()) {
      const int64_t src = sessions.get_int(0);
      find.bind(1, src);
      int64_t dst = 0;
      if (find.step()) {
        dst = find.get_int(0);
      } else {
        insert.bind(1, src);
        insert.step();
        dst = insert.get_int(0);
        insert.reset();
      }
      find.reset();
      map.bind(1, src).bind(2, dst).run();
    }

    for (const Row* row : to_copy) {
      const std::string& id = row->id;
      if (row->in_out) {  // unfinished here: the finished copy replaces it, memberships kept
        out.prepare("INSERT INTO temp.merge_kept_members SELECT * FROM main.sweep_runs WHERE run_id = ?")
            .bind(1, id)
            .run();
        out.prepare("DELETE FROM main.runs WHERE run_id = ?").bind(1, id).run();  // cascades
      }
      copy_run(out, id);
      ++report.copied;
    }
    out.exec("INSERT OR IGNORE INTO main.sweep_runs SELECT * FROM temp.merge_kept_members");

    // memberships of every run OUT now holds
    auto members = out.prepare("INSERT OR IGNORE INTO main.sweep_runs(sweep_id, run_id, position, part, point) "
                               "SELECT m.dst, r.run_id, r.position, r.part, r.point FROM shard.sweep_runs r "
                               "JOIN temp.merge_sweep_map m ON m.src = r.sweep_id "
                               "WHERE r.run_id IN (SELECT run_id FROM main.runs)");
    members.run();
    report.memberships = out.changes();
  });
  return report;
}

}  // namespace vae::store
