#include "store/schema.hpp"

namespace vae::store {

namespace {

// Version 1: sweeps, runs and their typed parameters, metrics by epoch, final
// metrics, data checksums, and provenance split into sessions (one `vae sweep
// run` invocation: code, build, machine) and attempts (one try at one run by
// one worker process; a run resumed after a crash has several).
const char* kV1 = R"sql(
CREATE TABLE sweeps (
  sweep_id    INTEGER PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  file        TEXT,             -- path of the sweep file as last run
  file_sha256 TEXT,
  spec        TEXT,             -- the sweep file's text as last run
  created_at  TEXT NOT NULL,    -- ISO 8601 UTC
  updated_at  TEXT NOT NULL
);

CREATE TABLE runs (
  run_id          TEXT PRIMARY KEY,   -- sha256 of identity_json + data checksums
  status          TEXT NOT NULL DEFAULT 'queued'
                  CHECK (status IN ('queued', 'running', 'done', 'failed', 'diverged')),
  message         TEXT,               -- why it failed, diverged or was interrupted
  config_json     TEXT NOT NULL,      -- the resolved configuration, every setting
  identity_json   TEXT NOT NULL,      -- what the run id hashes
  kl_per_dim      TEXT,               -- JSON array, nats per latent dimension (done runs)
  epochs_done     INTEGER NOT NULL DEFAULT 0,
  attempts        INTEGER NOT NULL DEFAULT 0,
  created_at      TEXT NOT NULL,
  started_at      TEXT,               -- first attempt
  ended_at        TEXT,               -- when the final status was written
  wall_s          REAL,               -- seconds over all attempts
  out_dir         TEXT,               -- checkpoints of the run
  -- the live claim (status 'running'): who holds it and whether it still lives
  claim_token     TEXT,
  claim_host      TEXT,
  claim_boot_id   TEXT,
  claim_pid       INTEGER,
  claim_pid_start INTEGER,            -- process start time (clock ticks after boot)
  heartbeat_unix  REAL
);
CREATE INDEX runs_status ON runs(status);

CREATE TABLE sweep_runs (               -- membership: a run may belong to several sweeps
  sweep_id INTEGER NOT NULL REFERENCES sweeps(sweep_id) ON DELETE CASCADE,
  run_id   TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  position INTEGER NOT NULL,            -- order in the expanded sweep
  part     INTEGER NOT NULL DEFAULT 0,  -- 0: top-level axes, k: the k-th [[also]]
  point    TEXT,                        -- JSON of the axis values that made this run
  PRIMARY KEY (sweep_id, run_id)
) WITHOUT ROWID;
CREATE INDEX sweep_runs_run ON sweep_runs(run_id);

CREATE TABLE params (                   -- one row per setting; value keeps its SQL type
  run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  key    TEXT NOT NULL,
  kind   TEXT NOT NULL CHECK (kind IN ('int', 'float', 'string', 'int_list', 'bool')),
  value,                                -- INTEGER, REAL or TEXT ("500,500" for lists)
  PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE INDEX params_key_value ON params(key, value);

CREATE TABLE epoch_metrics (            -- a re-done epoch replaces, never duplicates
  run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  epoch  INTEGER NOT NULL,
  name   TEXT NOT NULL,
  value  REAL,                          -- NULL for NaN
  PRIMARY KEY (run_id, epoch, name)
) WITHOUT ROWID;

CREATE TABLE metrics (                  -- final summary metrics of a finished run
  run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  name   TEXT NOT NULL,
  value  REAL,
  PRIMARY KEY (run_id, name)
) WITHOUT ROWID;

CREATE TABLE data_files (
  run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  path   TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  PRIMARY KEY (run_id, path)
) WITHOUT ROWID;

CREATE TABLE sessions (                 -- one `vae sweep run` (or a worker of it)
  session_id    INTEGER PRIMARY KEY,
  sweep_id      INTEGER REFERENCES sweeps(sweep_id) ON DELETE SET NULL,
  command_line  TEXT,
  cwd           TEXT,
  host          TEXT,
  pid           INTEGER,
  jobs          INTEGER,
  git_commit    TEXT,
  git_dirty     INTEGER,                -- 1: uncommitted changes to tracked files
  binary_sha256 TEXT,                   -- the vae program that ran
  vae_version   TEXT,
  compiler      TEXT,
  build_flags   TEXT,
  blas          TEXT,                   -- openblas_get_config()
  cpu           TEXT,
  cpu_count     INTEGER,
  started_at    TEXT NOT NULL,
  ended_at      TEXT
);

CREATE TABLE attempts (
  run_id        TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  attempt       INTEGER NOT NULL,       -- 1, 2, ...
  session_id    INTEGER REFERENCES sessions(session_id) ON DELETE SET NULL,
  host          TEXT,
  pid           INTEGER,
  blas_threads  INTEGER,
  started_at    TEXT NOT NULL,
  ended_at      TEXT,
  resumed_from_epoch INTEGER,           -- epochs already done when it started
  epochs_done   INTEGER,
  outcome       TEXT,                   -- done | diverged | failed | stopped | interrupted
  message       TEXT,
  PRIMARY KEY (run_id, attempt)
) WITHOUT ROWID;
)sql";

// Version 2: artifacts (checkpoints, images) written by a run.
const char* kV2 = R"sql(
CREATE TABLE artifacts (
  run_id     TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
  kind       TEXT NOT NULL,             -- last, best (checkpoints), or an image name
  path       TEXT NOT NULL,
  epoch      INTEGER,
  bytes      INTEGER,
  created_at TEXT NOT NULL,
  PRIMARY KEY (run_id, kind)
) WITHOUT ROWID;
)sql";

// Version 3: views for `vae query --sql` and the sqlite3 shell.
const char* kV3 = R"sql(
CREATE VIEW run_metrics AS
  SELECT s.name AS sweep, r.run_id, r.status, m.name AS metric, m.value
  FROM runs r JOIN metrics m USING (run_id)
  LEFT JOIN sweep_runs sr USING (run_id) LEFT JOIN sweeps s USING (sweep_id);
CREATE VIEW run_params AS
  SELECT s.name AS sweep, r.run_id, r.status, p.key, p.value
  FROM runs r JOIN params p USING (run_id)
  LEFT JOIN sweep_runs sr USING (run_id) LEFT JOIN sweeps s USING (sweep_id);
CREATE VIEW sweep_status AS
  SELECT s.name AS sweep, r.status, count(*) AS runs
  FROM sweeps s JOIN sweep_runs sr USING (sweep_id) JOIN runs r USING (run_id)
  GROUP BY s.name, r.status;
)sql";

}  // namespace

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> all = {
      {1, "sweeps, runs, params, epoch and final metrics, data files, sessions, attempts", kV1},
      {2, "artifacts (checkpoints, images)", kV2},
      {3, "views run_metrics, run_params, sweep_status", kV3},
  };
  return all;
}

int latest_schema_version() { return migrations().back().version; }

int schema_version(Db& db) { return int(db.scalar_int("PRAGMA user_version")); }

namespace {
void check_is_ours(Db& db, int version) {
  if (version > latest_schema_version())
    throw DbError(db.path() + ": results database schema version " + std::to_string(version) +
                      " is newer than this vae build knows (" + std::to_string(latest_schema_version()) +
                      "); update vae",
                  SQLITE_MISMATCH);
  if (version == 0) {
    // A fresh file has no tables; a foreign database has tables but no version.
    if (db.scalar_int("SELECT count(*) FROM sqlite_schema WHERE type='table'") > 0)
      throw DbError(db.path() + ": not a vae results database (tables present, user_version 0)",
                    SQLITE_MISMATCH);
  }
}
}  // namespace

void migrate(Db& db, int target) {
  if (target < 0) target = latest_schema_version();
  if (schema_version(db) >= target) {
    check_is_ours(db, schema_version(db));
    return;
  }
  for (const auto& m : migrations()) {
    if (m.version > target) break;
    db.write([&] {
      int v = schema_version(db);  // again, under the write lock
      if (v == 0) check_is_ours(db, v);
      if (v >= m.version) return;
      if (v != m.version - 1)
        throw DbError(db.path() + ": cannot migrate from schema version " + std::to_string(v), SQLITE_MISMATCH);
      db.exec(m.sql);
      db.exec("PRAGMA user_version = " + std::to_string(m.version));
    });
  }
}

void check_readable(Db& db) {
  int v = schema_version(db);
  check_is_ours(db, v);
  if (v == 0) throw DbError(db.path() + ": empty results database (no runs yet)", SQLITE_EMPTY);
  if (v < latest_schema_version())
    throw DbError(db.path() + ": schema version " + std::to_string(v) + " is older than this build's " +
                      std::to_string(latest_schema_version()) +
                      "; any writing vae command (e.g. vae sweep run) upgrades it",
                  SQLITE_MISMATCH);
}

}  // namespace vae::store
