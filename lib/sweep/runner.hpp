// The sweep runner: starts N worker processes (fork + exec of the vae program,
// one BLAS thread each, killed with the runner by PR_SET_PDEATHSIG), replaces a
// worker that dies, shows progress (runs done/total, failures, ETA) and stops the
// workers cleanly on SIGINT/SIGTERM (a second signal kills them).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "store/results_store.hpp"

namespace vae::sweep {

struct RunnerOptions {
  std::string db_path;
  std::string sweep_name;
  int64_t sweep_id = 0;
  int64_t session_id = 0;
  int jobs = 1;
  // The worker command; the runner execs it as is (argv[0] is the program path).
  std::vector<std::string> worker_argv;
  std::vector<std::string> show_keys;  // settings shown for each finished run
  bool quiet = false;                  // no progress line, no per-run lines
  int max_worker_deaths_per_run = 2;   // a run that kills its worker this often fails
  double poll_s = 0.5;
};

struct RunnerReport {
  store::SweepCounts counts;  // at the end
  int64_t finished_here = 0;  // runs this session completed (any final status)
  bool interrupted = false;   // stopped by a signal
  double elapsed_s = 0;
};

RunnerReport run_sweep(const RunnerOptions& options, std::ostream& log);

// "1:02:03" or "4:05"
std::string format_duration(double seconds);

}  // namespace vae::sweep
