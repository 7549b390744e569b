// From an expanded sweep to the runs it asks for, each with its identity (run id),
// and from the database to what is left to do.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "store/results_store.hpp"
#include "sweep/sweep_file.hpp"
#include "train/run.hpp"

namespace vae::sweep {

// The data files a configuration reads, with checksums (vae::data_files_for).
using DataFilesFn = std::function<std::vector<DataFile>(const ConfigMap&)>;

struct Plan {
  SweepSpec spec;
  std::vector<Point> points;
  std::vector<store::PlannedRun> runs;  // same order as points
  std::vector<std::string> varying;     // settings that differ between runs
};

// Expands the sweep and computes every run id. Data checksums are computed once
// per distinct data selection (dataset, folder, protocol, sizes), not once per run.
Plan make_plan(const SweepSpec& spec, const DataFilesFn& data_files);

// Sharding for clusters: shard_of(id, N) = (the first 8 bytes of the run id, read as a
// big-endian unsigned integer) mod N. It depends on the run's identity only, so N
// processes that expand the same sweep on N machines split it the same way: each
// run lands in exactly one shard, whatever the order or the machine.
int shard_of(const std::string& run_id, int n);

struct Shard {
  int index = 0, count = 1;  // shard index/count, 0 <= index < count
};
// "i/N"; throws SweepError with the expected form otherwise.
Shard parse_shard(const std::string& text);
// The runs of one shard, in sweep order, each keeping its position in the whole sweep.
Plan select_shard(const Plan& plan, const Shard& shard);

// How the plan stands against a database.
struct PlanStatus {
  int64_t total = 0, done = 0, failed = 0, diverged = 0, running = 0, queued = 0, fresh = 0;
  int64_t to_do(bool retry_failed) const {
    return queued + fresh + running + (retry_failed ? failed + diverged : 0);
  }
};
PlanStatus plan_status(const Plan& plan, const std::map<std::string, std::string>& statuses);

}  // namespace vae::sweep
