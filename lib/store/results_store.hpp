// The results database as the sweep runner and its workers use it: sweeps and
// their runs, atomic claims of queued or interrupted runs, metrics as they come,
// and a run's outcome written in one transaction.
//
// Run life: queued -> running (claimed by one live worker process) -> done |
// failed | diverged. A worker stopped on request puts its run back to queued; a
// worker that dies leaves its run 'running' with a dead claimant, which the next
// claim detects (same host: the process with that pid and start time is gone;
// another host: heartbeat older than stale_after) and takes over, resuming from
// the run's last checkpoint. Every write checks the claim token, so a claimant
// presumed dead can never overwrite its successor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "data/data_file.hpp"
#include "store/db.hpp"

namespace vae::store {

// Opens (creating and migrating) the results database for writing.
std::unique_ptr<Db> open_for_writing(const std::string& path);
// Opens an existing results database read-only (upgrading an older schema first).
std::unique_ptr<Db> open_for_reading(const std::string& path);

// A run as a sweep plans it.
struct PlannedRun {
  std::string run_id, config_json, identity_json;
  ConfigMap config;  // canonical
  std::vector<DataFile> data_files;
  std::string point_json;  // the axis values that made it ({"beta":4,"seed":1})
  int part = 0;            // 0: top-level axes; k: the k-th [[also]]
  int64_t position = -1;   // order in the whole expanded sweep (-1: as listed)
};

struct SweepCounts {
  int64_t total = 0, done = 0, failed = 0, diverged = 0, queued = 0;
  int64_t running = 0;      // claimed by a live process
  int64_t interrupted = 0;  // claimed by a process that is gone (will be resumed)
  int64_t remaining() const { return queued + running + interrupted; }
};

// Who claims: a worker process of a session.
struct Claimant {
  std::string host, boot_id;
  int64_t pid = 0, pid_start = 0;
  int64_t session_id = 0;
  static Claimant self(int64_t session_id);  // this process
};

struct Claim {
  std::string run_id, token, config_json, out_dir;
  int64_t attempt = 0;
  int64_t resumed_from_epoch = 0;  // epochs recorded before this attempt
};

enum class ClaimState { Claimed, WaitForOthers, NothingLeft };

struct ClaimResult {
  ClaimState state = ClaimState::NothingLeft;
  Claim claim;
};

// How a run ended, as the worker reports it.
struct Outcome {
  std::string status;  // done | diverged | failed | stopped
  std::string message;
  int64_t epochs_done = 0;
  std::map<std::string, double> metrics;
  std::map<std::string, std::vector<double>> unit_vectors;  // store/unit_vectors.hpp
  std::vector<DataFile> data_files;
  int blas_threads = 0;
};

class ResultsStore {
 public:
  explicit ResultsStore(Db& db) : db_(db) {}
  Db& db() { return db_; }

  // ---- the runner ---------------------------------------------------------
  // Creates or updates the sweep (its file, text) and returns its id.
  int64_t upsert_sweep(const std::string& name, const std::string& file, const std::string& spec_text);
  std::optional<int64_t> find_sweep(const std::string& name);
  // Inserts runs not yet known (queued) with their params and data files, and makes
  // `runs` (in this order) the sweep's membership. Existing runs are shared as they are.
  void register_runs(int64_t sweep_id, const std::vector<PlannedRun>& runs);
  // Puts the sweep's failed and diverged runs back in the queue; returns how many.
  int64_t requeue_failed(int64_t sweep_id);
  // Status of each known run id (runs absent from the map are unknown).
  std::map<std::string, std::string> statuses(const std::vector<std::string>& run_ids);
  SweepCounts counts(int64_t sweep_id);

  int64_t start_session(std::optional<int64_t> sweep_id, const std::string& command_line, int64_t jobs);
  void end_session(int64_t session_id);

  // A worker process of ours died: its claimed run (if any) goes back to the queue
  // (interrupted). Returns the run id it held.
  std::optional<std::string> release_dead_worker(int64_t pid, const std::string& why);
  void mark_failed(const std::string& run_id, const std::string& message);

  // ---- a worker -----------------------------------------------------------
  // Atomically claims the sweep's next queued or interrupted run, in sweep order.
  // runs_dir: checkpoints go to runs_dir/<run_id>. stale_after_s: heartbeat age after
  // which a claim held on another host counts as dead.
  ClaimResult claim_next(int64_t sweep_id, const Claimant& me, const std::string& runs_dir,
                         double stale_after_s);
  // Each returns false when the claim was lost (another process took the run over).
  bool record_epoch(const Claim& c, int64_t epoch, const std::map<std::string, double>& metrics);
  bool heartbeat(const Claim& c);
  bool record_artifact(const Claim& c, const std::string& kind, const std::string& path, int64_t epoch);
  // ---- after a run ----------------------------------------------------------
  // Records a file made from a run (e.g. a `vae draw` picture) under kind, replacing an
  // earlier one of the same kind, in one transaction. Throws std::runtime_error for an unknown run.
  void record_run_artifact(const std::string& run_id, const std::string& kind, const std::string& path,
                           int64_t epoch);
  // The path of a run's artifact of this kind, if it has one.
  std::optional<std::string> artifact_path(const std::string& run_id, const std::string& kind);

  // Deletes a finished run's checkpoint files and their artifact rows.
  void drop_checkpoints(const std::string& run_id);
  // The final status, summary metrics and attempt record, in one transaction.
  // Outcome "stopped" puts the run back in the queue to be resumed.
  bool finish(const Claim& c, const Outcome& outcome);

 private:
  Db& db_;
};

}  // namespace vae::store
