// vae sweep slurm: writes (and with --submit, submits) the sbatch scripts that run a
// sweep on a Slurm cluster as a job array of shards plus a merge job.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "command.hpp"
#include "results_common.hpp"
#include "sweep/plan.hpp"
#include "sweep/slurm.hpp"
#include "train/run.hpp"

namespace vae::cli {

namespace {

namespace po = boost::program_options;
namespace fs = std::filesystem;
using namespace vae::cli::results;

std::string absolute(const std::string& p) { return fs::absolute(p).lexically_normal().string(); }

// Runs a shell command; its stdout (and stderr, merged) and exit code.
std::pair<std::string, int> capture(const std::string& command) {
  std::string out;
  FILE* f = popen((command + " 2>&1").c_str(), "r");
  if (!f) return {"cannot run: " + command, 127};
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  int status = pclose(f);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : 128};
}

std::string one_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (auto& c : s)
    if (c == '\n') c = ' ';
  return s;
}

}  // namespace

int sweep_slurm(const std::vector<std::string>& args) {
  po::options_description desc(
      "vae sweep slurm options\n\n"
      "Writes WORKDIR/array.sbatch (a job array: task i runs `vae sweep run FILE --shard i/N`\n"
      "into WORKDIR/shard_i.db, OPENBLAS_NUM_THREADS from SLURM_CPUS_PER_TASK) and\n"
      "WORKDIR/merge.sbatch (`vae merge` of the shards into --db), prints them, or with\n"
      "--submit submits both, the merge with --dependency=afterok on the array, and prints\n"
      "the job ids. WORKDIR must be on a file system every node sees");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("file", po::value<std::string>(), "the sweep file (TOML; see sweeps/)")
      ("array", po::value<int>(), "N: tasks of the job array (shards of the sweep)")
      ("partition", po::value<std::string>()->default_value(""), "sbatch --partition (default: the cluster's)")
      ("time", po::value<std::string>()->default_value(""), "sbatch --time of each task, e.g. 2:00:00")
      ("mem", po::value<std::string>()->default_value(""), "sbatch --mem of each task, e.g. 4G")
      ("cpus-per-task", po::value<int>()->default_value(1), "sbatch --cpus-per-task; each run's BLAS threads")
      ("requeue", po::bool_switch(),
       "sbatch --requeue: a preempted task goes back to the queue and resumes its runs from "
       "their checkpoints (a run is never counted twice)")
      ("workdir", po::value<std::string>(),
       "shard databases, checkpoints, logs and the scripts (default: slurm/<sweep name>/ beside --db)")
      ("set", po::value<std::vector<std::string>>()->composing(),
       "KEY=VALUE: override a setting in every run's base, as in vae sweep run (repeatable)")
      ("name", po::value<std::string>(), "record the sweep under this name instead of the file's")
      ("submit", po::bool_switch(), "submit both jobs with sbatch and print their ids");
  // clang-format on
  add_db_option(desc);
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  if (auto rc = parse("vae sweep slurm", "vae sweep slurm FILE --array N [options]", desc, pos, args, vm))
    return *rc;
  if (!vm.count("file") || !vm.count("array")) {
    std::cerr << "vae sweep slurm: expected a sweep file and --array N (e.g. vae sweep slurm "
                 "sweeps/quickstart.toml --array 4)\n";
    return kExitUsage;
  }

  sweep::SlurmJob job;
  std::vector<std::string> sets = vm.count("set") ? vm["set"].as<std::vector<std::string>>()
                                                  : std::vector<std::string>{};
  // A bad sweep file or setting exits 2, a missing data file or folder 1 (errors.hpp).
  sweep::SweepSpec spec = sweep::parse_sweep_file(vm["file"].as<std::string>());
  if (vm.count("name")) spec.name = vm["name"].as<std::string>();
  sweep::apply_overrides(spec, sets);
  const sweep::Plan plan =
      sweep::make_plan(spec, &vae::data_files_for);  // checks settings and data now, not on the nodes
  job.vae = fs::read_symlink("/proc/self/exe").string();
  job.sweep_file = absolute(vm["file"].as<std::string>());
  job.sweep_name = spec.name;
  job.chdir = fs::current_path().string();
  job.out_db = absolute(vm["db"].as<std::string>());
  job.workdir = vm.count("workdir") ? absolute(vm["workdir"].as<std::string>())
                                    : (fs::path(job.out_db).parent_path() / "slurm" / spec.name).string();
  job.tasks = vm["array"].as<int>();
  job.cpus_per_task = vm["cpus-per-task"].as<int>();
  job.partition = vm["partition"].as<std::string>();
  job.time = vm["time"].as<std::string>();
  job.mem = vm["mem"].as<std::string>();
  job.requeue = vm["requeue"].as<bool>();
  for (const auto& s : sets) job.extra_args.insert(job.extra_args.end(), {"--set", s});
  if (vm.count("name")) job.extra_args.insert(job.extra_args.end(), {"--name", spec.name});
  job.command = display_command_line();
  sweep::check_slurm_job(job);

  std::vector<int> sizes(size_t(job.tasks), 0);
  for (const auto& r : plan.runs) ++sizes[size_t(sweep::shard_of(r.run_id, job.tasks))];
  const int empty = int(std::count(sizes.begin(), sizes.end(), 0));

  const sweep::SlurmScripts scripts = sweep::slurm_scripts(job);
  const std::string array_path = job.workdir + "/array.sbatch", merge_path = job.workdir + "/merge.sbatch";
  std::error_code ec;
  fs::create_directories(job.workdir + "/logs", ec);
  if (ec) {
    std::cerr << "vae sweep slurm: cannot create " << job.workdir << "/logs: " << ec.message() << "\n";
    return kExitError;
  }
  for (const auto& [path, text] :
       {std::pair{array_path, scripts.array}, std::pair{merge_path, scripts.merge}}) {
    std::ofstream f(path);
    f << text;
    if (!f.flush()) {
      std::cerr << "vae sweep slurm: cannot write " << path << "\n";
      return kExitError;
    }
  }
  std::cerr << "sweep " << plan.spec.name << ": " << plan.runs.size() << " runs in " << job.tasks
            << (job.tasks == 1 ? " task" : " tasks") << " (runs per task:";
  for (int s : sizes) std::cerr << " " << s;
  std::cerr << ")"
            << (empty ? "; " + std::to_string(empty) + " tasks have nothing to do: use a smaller --array" : "")
            << "\n";

  const std::string table = "vae table --sweep " + plan.spec.name + " --db " + job.out_db;
  if (!vm["submit"].as<bool>()) {
    std::cout << "# " << array_path << "\n" << scripts.array << "\n# " << merge_path << "\n" << scripts.merge;
    std::cerr << "submit with: jobid=$(sbatch --parsable " << array_path
              << ") && sbatch --dependency=afterok:$jobid " << merge_path << "\n"
              << "  (or run this command again with --submit); then: " << table << "\n";
    return kExitOk;
  }
  auto [out1, rc1] = capture("sbatch --parsable " + sweep::shell_quote(array_path));
  std::string array_id = sweep::parse_job_id(out1);
  if (rc1 != 0 || array_id.empty()) {
    std::cerr << "vae sweep slurm: sbatch " << array_path << " failed (exit " << rc1 << "): " << one_line(out1)
              << "\n";
    return kExitError;
  }
  auto [out2, rc2] = capture("sbatch --parsable --dependency=afterok:" + array_id + " " +
                             sweep::shell_quote(merge_path));
  std::string merge_id = sweep::parse_job_id(out2);
  if (rc2 != 0 || merge_id.empty()) {
    std::cerr << "vae sweep slurm: the array is job " << array_id << ", but sbatch " << merge_path
              << " failed (exit " << rc2 << "): " << one_line(out2) << "\n";
    return kExitError;
  }
  std::cout << "array job " << array_id << "\nmerge job " << merge_id << "\n";
  std::cerr << "submitted: array job " << array_id << " (" << job.tasks << " tasks, logs in " << job.workdir
            << "/logs), merge job " << merge_id << " once every task succeeded; then: " << table << "\n";
  return kExitOk;
}

}  // namespace vae::cli
