#include "store/results_store.hpp"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "models/settings.hpp"
#include "store/provenance.hpp"
#include "store/run_identity.hpp"
#include "store/schema.hpp"
#include "store/unit_vectors.hpp"
#include "util/hash.hpp"

namespace vae::store {

std::unique_ptr<Db> open_for_writing(const std::string& path) {
  auto db = std::make_unique<Db>(path, Db::Mode::ReadWrite);
  migrate(*db);
  return db;
}

std::unique_ptr<Db> open_for_reading(const std::string& path) {
  auto db = std::make_unique<Db>(path, Db::Mode::ReadOnly);
  int v = schema_version(*db);
  if (v > 0 && v < latest_schema_version()) {
    db.reset();
    open_for_writing(path);  // additive migrations; then read as usual
    db = std::make_unique<Db>(path, Db::Mode::ReadOnly);
  }
  check_readable(*db);
  return db;
}

Claimant Claimant::self(int64_t session_id) {
  Claimant c;
  c.host = machine_info().host;
  c.boot_id = machine_info().boot_id;
  c.pid = getpid();
  c.pid_start = process_start_ticks(c.pid).value_or(0);
  c.session_id = session_id;
  return c;
}

// ---- the runner ---------------------------------------------------------------

int64_t ResultsStore::upsert_sweep(const std::string& name, const std::string& file,
                                   const std::string& spec_text) {
  int64_t id = 0;
  db_.write([&] {
    std::string now = now_iso();
    auto s = db_.prepare("INSERT INTO sweeps(name, file, file_sha256, spec, created_at, updated_at) "
                         "VALUES (?1, ?2, ?3, ?4, ?5, ?5) "
                         "ON CONFLICT(name) DO UPDATE SET file = ?2, file_sha256 = ?3, spec = ?4, "
                         "updated_at = ?5 RETURNING sweep_id");
    s.bind(1, name).bind(2, file).bind(3, sha256_hex(spec_text)).bind(4, spec_text).bind(5, now);
    if (!s.step()) throw DbError("upsert of sweep '" + name + "' returned nothing", SQLITE_ERROR);
    id = s.get_int(0);
    s.reset();
  });
  return id;
}

std::optional<int64_t> ResultsStore::find_sweep(const std::string& name) {
  auto s = db_.prepare("SELECT sweep_id FROM sweeps WHERE name = ?");
  s.bind(1, name);
  if (s.step()) return s.get_int(0);
  return std::nullopt;
}

void ResultsStore::register_runs(int64_t sweep_id, const std::vector<PlannedRun>& runs) {
  db_.write([&] {
    std::string now = now_iso();
    auto ins_run = db_.prepare(
        "INSERT OR IGNORE INTO runs(run_id, status, config_json, identity_json, created_at) "
        "VALUES (?, 'queued', ?, ?, ?)");
    auto ins_param = db_.prepare("INSERT OR IGNORE INTO params(run_id, key, kind, value) VALUES (?, ?, ?, ?)");
    auto ins_file = db_.prepare("INSERT OR IGNORE INTO data_files(run_id, path, sha256) VALUES (?, ?, ?)");
    auto del_members = db_.prepare("DELETE FROM sweep_runs WHERE sweep_id = ?");
    auto ins_member = db_.prepare("INSERT OR REPLACE INTO sweep_runs(sweep_id, run_id, position, part, point) "
                                  "VALUES (?, ?, ?, ?, ?)");
    del_members.bind(1, sweep_id).run();
    int64_t position = 0;
    for (const auto& r : runs) {
      ins_run.bind(1, r.run_id).bind(2, r.config_json).bind(3, r.identity_json).bind(4, now).run();
      if (db_.changes() > 0) {
        for (const auto& [key, value] : r.config) {
          const OptionSpec* spec = find_option(key);
          ins_param.bind(1, r.run_id)
              .bind(2, key)
              .bind(3, kind_name(spec ? spec->kind : ValueKind::String))
              .bind(4, to_sql(value))
              .run();
        }
        for (const auto& f : r.data_files) ins_file.bind(1, r.run_id).bind(2, f.path).bind(3, f.sha256).run();
      }
      // a shard registers a subset: it keeps the positions of the whole sweep, so merged
      // shards order their runs as a local run of the sweep does
      const int64_t pos = r.position >= 0 ? r.position : position;
      ++position;
      ins_member.bind(1, sweep_id)
          .bind(2, r.run_id)
          .bind(3, pos)
          .bind(4, int64_t(r.part))
          .bind(5, r.point_json)
          .run();
    }
  });
}

int64_t ResultsStore::requeue_failed(int64_t sweep_id) {
  int64_t n = 0;
  db_.write([&] {
    auto s = db_.prepare(
        "UPDATE runs SET status = 'queued', message = 'retry of: ' || coalesce(message, status) "
        "WHERE status IN ('failed', 'diverged') AND run_id IN "
        "(SELECT run_id FROM sweep_runs WHERE sweep_id = ?)");
    s.bind(1, sweep_id).run();
    n = db_.changes();
  });
  return n;
}

std::map<std::string, std::string> ResultsStore::statuses(const std::vector<std::string>& ids) {
  std::map<std::string, std::string> out;
  db_.read([&] {
    out.clear();
    auto s = db_.prepare("SELECT status FROM runs WHERE run_id = ?");
    for (const auto& id : ids) {
      s.bind(1, id);
      if (s.step()) out[id] = s.get_text(0);
      s.reset();
    }
  });
  return out;
}

namespace {
bool claim_alive(const Stmt& s, int col, double stale_after_s) {
  // columns: host, boot_id, pid, pid_start, heartbeat_unix
  std::string host = s.get_text(col), boot = s.get_text(col + 1);
  if (host == machine_info().host)
    return process_alive_here(host, boot, s.get_int(col + 2), s.get_int(col + 3));
  double hb = s.get_double(col + 4);
  return !std::isnan(hb) && now_unix() - hb < stale_after_s;
}
constexpr double kDefaultStale = 120.0;
}  // namespace

SweepCounts ResultsStore::counts(int64_t sweep_id) {
  SweepCounts c;
  db_.read([&] {
    c = SweepCounts{};
    auto s = db_.prepare("SELECT r.status, r.claim_host, r.claim_boot_id, r.claim_pid, r.claim_pid_start, "
                         "r.heartbeat_unix FROM sweep_runs m JOIN runs r USING (run_id) WHERE m.sweep_id = ?");
    s.bind(1, sweep_id);
    while (s.step()) {
      ++c.total;
      std::string st = s.get_text(0);
      if (st == "done") ++c.done;
      else if (st == "failed") ++c.failed;
      else if (st == "diverged") ++c.diverged;
      else if (st == "queued") ++c.queued;
      else if (claim_alive(s, 1, kDefaultStale)) ++c.running;
      else ++c.interrupted;
    }
  });
  return c;
}

int64_t ResultsStore::start_session(std::optional<int64_t> sweep_id, const std::string& command_line,
                                    int64_t jobs) {
  const BuildInfo& b = build_info();
  const MachineInfo& m = machine_info();
  std::error_code ec;
  std::string cwd = std::filesystem::current_path(ec).string();
  int64_t id = 0;
  db_.write([&] {
    auto s = db_.prepare(
        "INSERT INTO sessions(sweep_id, command_line, cwd, host, pid, jobs, git_commit, git_dirty, "
        "binary_sha256, vae_version, compiler, build_flags, blas, cpu, cpu_count, started_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) RETURNING session_id");
    s.bind(1, sweep_id)
        .bind(2, command_line)
        .bind(3, cwd)
        .bind(4, m.host)
        .bind(5, int64_t(getpid()))
        .bind(6, jobs)
        .bind(7, b.git_commit.empty() ? SqlValue{} : SqlValue{b.git_commit});
    if (b.git_dirty) s.bind(8, int64_t(*b.git_dirty));
    else s.bind_null(8);
    s.bind(9, b.binary_sha256)
        .bind(10, b.vae_version)
        .bind(11, b.compiler)
        .bind(12, b.build_flags)
        .bind(13, b.blas)
        .bind(14, m.cpu)
        .bind(15, m.cpu_count)
        .bind(16, now_iso());
    s.step();
    id = s.get_int(0);
    s.reset();
  });
  return id;
}

void ResultsStore::end_session(int64_t session_id) {
  db_.write([&] {
    db_.prepare("UPDATE sessions SET ended_at = ? WHERE session_id = ?")
        .bind(1, now_iso())
        .bind(2, session_id)
        .run();
  });
}

namespace {
// Closes the open attempt of a run whose claimant is gone, counting its time up to
// the last heartbeat, and clears the claim. Status becomes `new_status`.
void close_dead_attempt(Db& db, const std::string& run_id, const std::string& why,
                        const std::string& new_status) {
  db.prepare("UPDATE attempts SET outcome = 'interrupted', message = ?2, "
             "ended_at = coalesce(ended_at, strftime('%Y-%m-%dT%H:%M:%fZ', "
             "  (SELECT heartbeat_unix FROM runs WHERE run_id = ?1), 'unixepoch')), "
             "epochs_done = (SELECT max(epoch) FROM epoch_metrics WHERE run_id = ?1) "
             "WHERE run_id = ?1 AND outcome IS NULL")
      .bind(1, run_id)
      .bind(2, why)
      .run();
  db.prepare("UPDATE runs SET status = ?3, message = ?2, "
             "wall_s = coalesce(wall_s, 0) + max(0, coalesce(heartbeat_unix - "
             "  (SELECT (julianday(started_at) - 2440587.5) * 86400.0 FROM attempts a "
             "   WHERE a.run_id = ?1 AND a.attempt = runs.attempts), 0)), "
             "claim_token = NULL, claim_host = NULL, claim_boot_id = NULL, claim_pid = NULL, "
             "claim_pid_start = NULL WHERE run_id = ?1")
      .bind(1, run_id)
      .bind(2, why)
      .bind(3, new_status)
      .run();
}
}  // namespace

std::optional<std::string> ResultsStore::release_dead_worker(int64_t pid, const std::string& why) {
  std::optional<std::string> run;
  db_.write([&] {
    run.reset();
    auto s = db_.prepare("SELECT run_id FROM runs WHERE status = 'running' AND claim_host = ? AND "
                         "claim_boot_id = ? AND claim_pid = ?");
    s.bind(1, machine_info().host).bind(2, machine_info().boot_id).bind(3, pid);
    if (s.step()) run = s.get_text(0);
    s.reset();
    if (run) close_dead_attempt(db_, *run, why, "queued");
  });
  return run;
}

void ResultsStore::mark_failed(const std::string& run_id, const std::string& message) {
  db_.write([&] {
    db_.prepare("UPDATE runs SET status = 'failed', message = ?2, ended_at = ?3, claim_token = NULL, "
                "claim_host = NULL, claim_boot_id = NULL, claim_pid = NULL, claim_pid_start = NULL "
                "WHERE run_id = ?1")
        .bind(1, run_id)
        .bind(2, message)
        .bind(3, now_iso())
        .run();
  });
}

// ---- a worker -------------------------------------------------------------------

ClaimResult ResultsStore::claim_next(int64_t sweep_id, const Claimant& me, const std::string& runs_dir,
                                     double stale_after_s) {
  ClaimResult result;
  db_.write([&] {
    result = ClaimResult{};
    auto s = db_.prepare("SELECT r.run_id, r.status, r.claim_host, r.claim_boot_id, r.claim_pid, "
                         "r.claim_pid_start, r.heartbeat_unix, r.config_json "
                         "FROM sweep_runs m JOIN runs r USING (run_id) "
                         "WHERE m.sweep_id = ? AND r.status IN ('queued', 'running') ORDER BY m.position");
    s.bind(1, sweep_id);
    std::string run_id, config;
    bool resume_dead = false, others = false;
    std::string dead_why;
    while (s.step()) {
      if (s.get_text(1) == "queued") {
        run_id = s.get_text(0);
        config = s.get_text(7);
        break;
      }
      if (claim_alive(s, 2, stale_after_s)) {
        others = true;
        continue;
      }
      run_id = s.get_text(0);
      config = s.get_text(7);
      resume_dead = true;
      dead_why = "interrupted: process " + std::to_string(s.get_int(4)) + " on " + s.get_text(2) +
                 " stopped without finishing the run";
      break;
    }
    s.reset();
    if (run_id.empty()) {
      result.state = others ? ClaimState::WaitForOthers : ClaimState::NothingLeft;
      return;
    }
    if (resume_dead) close_dead_attempt(db_, run_id, dead_why, "running");

    Claim c;
    c.run_id = run_id;
    c.config_json = config;
    c.token = random_hex(16);
    c.out_dir = (std::filesystem::path(runs_dir) / run_id).string();
    {
      auto e = db_.prepare("SELECT coalesce(max(epoch), 0) FROM epoch_metrics WHERE run_id = ?");
      e.bind(1, run_id);
      if (e.step()) c.resumed_from_epoch = e.get_int(0);
    }
    std::string now = now_iso();
    auto u = db_.prepare(
        "UPDATE runs SET status = 'running', attempts = attempts + 1, "
        "started_at = coalesce(started_at, ?2), out_dir = ?3, claim_token = ?4, claim_host = ?5, "
        "claim_boot_id = ?6, claim_pid = ?7, claim_pid_start = ?8, heartbeat_unix = ?9 "
        "WHERE run_id = ?1 RETURNING attempts");
    u.bind(1, run_id)
        .bind(2, now)
        .bind(3, c.out_dir)
        .bind(4, c.token)
        .bind(5, me.host)
        .bind(6, me.boot_id)
        .bind(7, me.pid)
        .bind(8, me.pid_start)
        .bind(9, now_unix());
    if (!u.step()) throw DbError("claim of run " + run_id + " updated nothing", SQLITE_ERROR);
    c.attempt = u.get_int(0);
    u.reset();
    db_.prepare("INSERT OR REPLACE INTO attempts(run_id, attempt, session_id, host, pid, started_at, "
                "resumed_from_epoch) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(1, run_id)
        .bind(2, c.attempt)
        .bind(3, me.session_id > 0 ? SqlValue{me.session_id} : SqlValue{})
        .bind(4, me.host)
        .bind(5, me.pid)
        .bind(6, now)
        .bind(7, c.resumed_from_epoch)
        .run();
    result.state = ClaimState::Claimed;
    result.claim = c;
  });
  return result;
}

namespace {
bool still_mine(Db& db, const Claim& c) {
  auto s = db.prepare("SELECT 1 FROM runs WHERE run_id = ? AND claim_token = ? AND status = 'running'");
  s.bind(1, c.run_id).bind(2, c.token);
  return s.step();
}
}  // namespace

bool ResultsStore::record_epoch(const Claim& c, int64_t epoch, const std::map<std::string, double>& metrics) {
  bool ok = false;
  db_.write([&] {
    ok = still_mine(db_, c);
    if (!ok) return;
    auto ins = db_.prepare(
        "INSERT OR REPLACE INTO epoch_metrics(run_id, epoch, name, value) VALUES (?, ?, ?, ?)");
    for (const auto& [name, value] : metrics)
      ins.bind(1, c.run_id).bind(2, epoch).bind(3, name).bind(4, value).run();
    db_.prepare("UPDATE runs SET heartbeat_unix = ?, epochs_done = max(epochs_done, ?) WHERE run_id = ?")
        .bind(1, now_unix())
        .bind(2, epoch)
        .bind(3, c.run_id)
        .run();
  });
  return ok;
}

bool ResultsStore::heartbeat(const Claim& c) {
  bool ok = false;
  db_.write([&] {
    db_.prepare("UPDATE runs SET heartbeat_unix = ? WHERE run_id = ? AND claim_token = ? AND "
                "status = 'running'")
        .bind(1, now_unix())
        .bind(2, c.run_id)
        .bind(3, c.token)
        .run();
    ok = db_.changes() > 0;
  });
  return ok;
}

bool ResultsStore::record_artifact(const Claim& c, const std::string& kind, const std::string& path,
                                   int64_t epoch) {
  bool ok = false;
  std::error_code ec;
  auto bytes = std::filesystem::file_size(path, ec);
  db_.write([&] {
    ok = still_mine(db_, c);
    if (!ok) return;
    db_.prepare("INSERT OR REPLACE INTO artifacts(run_id, kind, path, epoch, bytes, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)")
        .bind(1, c.run_id)
        .bind(2, kind)
        .bind(3, path)
        .bind(4, epoch)
        .bind(5, ec ? SqlValue{} : SqlValue{int64_t(bytes)})
        .bind(6, now_iso())
        .run();
  });
  return ok;
}

void ResultsStore::record_run_artifact(const std::string& run_id, const std::string& kind,
                                       const std::string& path, int64_t epoch) {
  std::error_code ec;
  auto bytes = std::filesystem::file_size(path, ec);
  db_.write([&] {
    auto s = db_.prepare("SELECT 1 FROM runs WHERE run_id = ?");
    s.bind(1, run_id);
    if (!s.step()) throw std::runtime_error("run " + run_id + " is not in the database");
    s.reset();
    db_.prepare("INSERT OR REPLACE INTO artifacts(run_id, kind, path, epoch, bytes, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)")
        .bind(1, run_id)
        .bind(2, kind)
        .bind(3, path)
        .bind(4, epoch)
        .bind(5, ec ? SqlValue{} : SqlValue{int64_t(bytes)})
        .bind(6, now_iso())
        .run();
  });
}

std::optional<std::string> ResultsStore::artifact_path(const std::string& run_id, const std::string& kind) {
  std::optional<std::string> out;
  db_.read([&] {
    out.reset();
    auto s = db_.prepare("SELECT path FROM artifacts WHERE run_id = ? AND kind = ?");
    s.bind(1, run_id).bind(2, kind);
    if (s.step()) out = s.get_text(0);
  });
  return out;
}

void ResultsStore::drop_checkpoints(const std::string& run_id) {
  std::vector<std::string> paths;
  db_.write([&] {
    paths.clear();
    auto s = db_.prepare("SELECT path FROM artifacts WHERE run_id = ? AND kind IN ('last', 'best')");
    s.bind(1, run_id);
    while (s.step()) paths.push_back(s.get_text(0));
    s.reset();
    db_.prepare("DELETE FROM artifacts WHERE run_id = ? AND kind IN ('last', 'best')").bind(1, run_id).run();
  });
  for (const auto& p : paths) {
    std::error_code ec;
    std::filesystem::remove(p, ec);
  }
}

bool ResultsStore::finish(const Claim& c, const Outcome& o) {
  bool ok = false;
  const bool stopped = o.status == "stopped";
  const std::string status = stopped ? "queued" : o.status;
  if (!stopped && status != "done" && status != "diverged" && status != "failed")
    throw std::invalid_argument("finish: unknown outcome '" + o.status + "'");
  db_.write([&] {
    ok = still_mine(db_, c);
    if (!ok) return;
    std::string now = now_iso();
    // this attempt's wall time
    double attempt_s = 0;
    {
      auto s = db_.prepare("SELECT (julianday(?) - julianday(started_at)) * 86400.0 FROM attempts "
                           "WHERE run_id = ? AND attempt = ?");
      s.bind(1, now).bind(2, c.run_id).bind(3, c.attempt);
      if (s.step()) attempt_s = std::max(0.0, s.get_double(0));
    }
    if (!stopped) {
      db_.prepare("DELETE FROM metrics WHERE run_id = ?").bind(1, c.run_id).run();
      auto ins = db_.prepare("INSERT INTO metrics(run_id, name, value) VALUES (?, ?, ?)");
      for (const auto& [name, value] : o.metrics) ins.bind(1, c.run_id).bind(2, name).bind(3, value).run();
      if (!o.data_files.empty()) {
        auto f = db_.prepare("INSERT OR REPLACE INTO data_files(run_id, path, sha256) VALUES (?, ?, ?)");
        for (const auto& d : o.data_files) f.bind(1, c.run_id).bind(2, d.path).bind(3, d.sha256).run();
      }
    }
    const std::string vectors = unit_vectors_json(o.unit_vectors);
    db_.prepare("UPDATE runs SET status = ?2, message = ?3, "
                "kl_per_dim = CASE WHEN ?4 THEN ?5 ELSE kl_per_dim END, "
                "epochs_done = max(epochs_done, ?6), ended_at = CASE WHEN ?4 THEN ?7 ELSE ended_at END, "
                "wall_s = coalesce(wall_s, 0) + ?8, claim_token = NULL, claim_host = NULL, "
                "claim_boot_id = NULL, claim_pid = NULL, claim_pid_start = NULL, heartbeat_unix = NULL "
                "WHERE run_id = ?1")
        .bind(1, c.run_id)
        .bind(2, status)
        .bind(3, o.message.empty() ? SqlValue{} : SqlValue{o.message})
        .bind(4, int64_t(stopped ? 0 : 1))
        .bind(5, vectors.empty() ? SqlValue{} : SqlValue{vectors})
        .bind(6, o.epochs_done)
        .bind(7, now)
        .bind(8, attempt_s)
        .run();
    db_.prepare("UPDATE attempts SET ended_at = ?, outcome = ?, message = ?, epochs_done = ?, "
                "blas_threads = ? WHERE run_id = ? AND attempt = ?")
        .bind(1, now)
        .bind(2, o.status)
        .bind(3, o.message.empty() ? SqlValue{} : SqlValue{o.message})
        .bind(4, o.epochs_done)
        .bind(5, o.blas_threads > 0 ? SqlValue{int64_t(o.blas_threads)} : SqlValue{})
        .bind(6, c.run_id)
        .bind(7, c.attempt)
        .run();
  });
  return ok;
}

}  // namespace vae::store
