#include "sweep/slurm.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "sweep/sweep_file.hpp"

namespace vae::sweep {

namespace {

// Values that go into "#SBATCH --key=value" unquoted: sbatch reads them word by word.
void check_word(const std::string& option, const std::string& value) {
  if (value.empty()) return;
  for (char c : value)
    if (!(std::isalnum(static_cast<unsigned char>(c)) ||
          std::string(":-_.,+=/[]").find(c) != std::string::npos))
      throw SweepError("--" + option + " '" + value + "': unexpected character '" + std::string(1, c) +
                       "' for an #SBATCH line");
}

void common_lines(std::ostream& o, const SlurmJob& j) {
  o << "#SBATCH --chdir=" << j.chdir << "\n";
  if (!j.partition.empty()) o << "#SBATCH --partition=" << j.partition << "\n";
  if (!j.time.empty()) o << "#SBATCH --time=" << j.time << "\n";
  if (!j.mem.empty()) o << "#SBATCH --mem=" << j.mem << "\n";
}

}  // namespace

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string shard_db_path(const SlurmJob& j, int i) {
  return j.workdir + "/shard_" + std::to_string(i) + ".db";
}

std::string parse_job_id(const std::string& sbatch_output) {
  std::string line = sbatch_output.substr(0, sbatch_output.find('\n'));
  line = line.substr(0, line.find(';'));
  line.erase(std::remove_if(line.begin(), line.end(),
                            [](char c) { return std::isspace(static_cast<unsigned char>(c)); }),
             line.end());
  if (line.empty() || !std::all_of(line.begin(), line.end(),
                                   [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return "";
  return line;
}

void check_slurm_job(const SlurmJob& j) {
  if (j.tasks < 1 || j.tasks > 100000)
    throw SweepError("--array " + std::to_string(j.tasks) + ": expected 1 to 100000 tasks");
  if (j.cpus_per_task < 1 || j.cpus_per_task > 256)
    throw SweepError("--cpus-per-task " + std::to_string(j.cpus_per_task) + ": expected 1 to 256");
  check_word("partition", j.partition);
  check_word("time", j.time);
  check_word("mem", j.mem);
  // the paths also go unquoted into #SBATCH lines
  check_word("workdir", j.workdir);
  check_word("chdir (the current folder)", j.chdir);
  check_word("name", j.sweep_name);
}

SlurmScripts slurm_scripts(const SlurmJob& j) {
  check_slurm_job(j);
  const std::string n = std::to_string(j.tasks);
  SlurmScripts s;
  {
    std::ostringstream o;
    o << "#!/bin/bash\n"
      << "# Sweep " << j.sweep_name << " as a Slurm job array: task i runs shard i/" << n << " of the sweep\n"
      << "# (the runs whose id mod " << n << " is i) into its own database, since SQLite's locking\n"
      << "# is not to be trusted on network file systems; merge.sbatch folds the shards into\n"
      << "# " << j.out_db << ".\n"
      << "# Written by: " << j.command << "\n"
      << "#SBATCH --job-name=vae-" << j.sweep_name << "\n"
      << "#SBATCH --array=0-" << j.tasks - 1 << "\n"
      << "#SBATCH --ntasks=1\n"
      << "#SBATCH --cpus-per-task=" << j.cpus_per_task << "\n"
      << "#SBATCH --output=" << j.workdir << "/logs/shard_%a.log\n";
    common_lines(o, j);
    o << (j.requeue ? "#SBATCH --requeue\n" : "#SBATCH --no-requeue\n") << "set -eu\n"
      << "# each run's BLAS threads: the CPUs Slurm gave this task\n"
      << "export OPENBLAS_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n"
      << "# exec: the runner itself receives Slurm's SIGTERM (preemption, scancel, time limit);\n"
      << "# its worker saves a checkpoint at the end of the epoch and the run goes back to the\n"
      << "# queue. A requeued task (--requeue) skips what is done and resumes the rest.\n"
      << "exec " << shell_quote(j.vae) << " sweep run " << shell_quote(j.sweep_file) << " \\\n"
      << "  --shard \"$SLURM_ARRAY_TASK_ID/" << n << "\" --db " << shell_quote(j.workdir)
      << "\"/shard_$SLURM_ARRAY_TASK_ID.db\" \\\n"
      << "  --set \"threads=$OPENBLAS_NUM_THREADS\" --no-table";
    for (const auto& a : j.extra_args) o << " " << shell_quote(a);
    o << "\n";
    s.array = o.str();
  }
  {
    std::ostringstream o;
    o << "#!/bin/bash\n"
      << "# Folds the " << n << " shard databases of sweep " << j.sweep_name << " into " << j.out_db << ".\n"
      << "# Submitted with --dependency=afterok:<array job>, so it runs once every task succeeded.\n"
      << "# Written by: " << j.command << "\n"
      << "#SBATCH --job-name=vae-" << j.sweep_name << "-merge\n"
      << "#SBATCH --ntasks=1\n"
      << "#SBATCH --cpus-per-task=1\n"
      << "#SBATCH --output=" << j.workdir << "/logs/merge.log\n";
    common_lines(o, j);
    o << "set -eu\n"
      << "exec " << shell_quote(j.vae) << " merge " << shell_quote(j.out_db);
    for (int i = 0; i < j.tasks; ++i) o << " \\\n  " << shell_quote(shard_db_path(j, i));
    o << "\n";
    s.merge = o.str();
  }
  return s;
}

}  // namespace vae::sweep
