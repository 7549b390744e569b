// A sweep worker: claims the sweep's runs one at a time, trains each (resuming
// from its last checkpoint when an earlier attempt was interrupted), streams
// epoch metrics to the database and writes the outcome in one transaction.
// Runs in its own process (`vae sweep worker`), one BLAS thread.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "store/results_store.hpp"
#include "train/run.hpp"

namespace vae::sweep {

using TrainFn = std::function<RunResult(const ConfigMap&, const RunOptions&, RunHooks*)>;

struct WorkerOptions {
  std::string db_path;
  std::string runs_dir;  // checkpoints: runs_dir/<run_id>/
  int64_t sweep_id = 0;
  int64_t session_id = 0;
  double stale_after_s = 120;  // a claim on another host without heartbeat for this long is dead
  double heartbeat_s = 10;
  double wait_poll_s = 1.0;                 // while the remaining runs are held by other live processes
  int64_t max_runs = -1;                    // stop after this many (tests); -1: until none is left
  bool delete_checkpoints = false;          // remove a run's checkpoints once it is done
  const std::atomic<bool>* stop = nullptr;  // finish the current epoch, requeue, exit
};

struct WorkerReport {
  int64_t done = 0, failed = 0, diverged = 0, stopped = 0, lost = 0;
};

WorkerReport run_worker(const WorkerOptions& options, const TrainFn& train);

}  // namespace vae::sweep
