// A sweep as a Slurm job: the sbatch script of a job array whose task i runs shard
// i/N of the sweep into its own database, and the script of a merge job (submitted
// with --dependency=afterok on the array) that folds the shards into one database.
// The suite does no distribution of its own: Slurm schedules, requeues and retries.
#pragma once

#include <string>
#include <vector>

namespace vae::sweep {

struct SlurmJob {
  std::string vae;         // absolute path of the vae program the tasks run
  std::string sweep_file;  // absolute
  std::string sweep_name;
  std::string chdir;                 // absolute: where the tasks run (relative data paths resolve here)
  std::string out_db;                // absolute: the merged database
  std::string workdir;               // absolute: shard databases, checkpoints (runs/), logs, the scripts
  int tasks = 1;                     // array size N
  int cpus_per_task = 1;             // also each run's BLAS threads
  std::string partition, time, mem;  // passed to sbatch as given ("" : not set)
  bool requeue = false;
  std::vector<std::string> extra_args;  // given to every shard's `vae sweep run` (--set, --name)
  std::string command;                  // how the scripts were asked for, for their comment
};

struct SlurmScripts {
  std::string array, merge;  // script texts
};

// Throws SweepError when a value cannot go into an #SBATCH line (whitespace, quotes, ...).
void check_slurm_job(const SlurmJob& job);
SlurmScripts slurm_scripts(const SlurmJob& job);
// WORKDIR/shard_<i>.db
std::string shard_db_path(const SlurmJob& job, int i);
// 'text' for a POSIX shell (single quotes, ' as '\'').
std::string shell_quote(const std::string& text);
// The job id in `sbatch --parsable` output ("123" or "123;cluster"); "" if none.
std::string parse_job_id(const std::string& sbatch_output);

}  // namespace vae::sweep
