// vae reproduce: a published table (a spec in experiments/) as a command. It writes the
// spec's cells at a budget as a sweep file, runs it with `vae sweep run` (or submits it
// with `vae sweep slurm`), then prints our numbers beside the published ones.
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "command.hpp"
#include "data/dataset.hpp"
#include "models/settings.hpp"
#include "process.hpp"
#include "reproduce/reproduce.hpp"
#include "results_common.hpp"
#include "store/results_store.hpp"
#include "train/run.hpp"

namespace vae::cli {

namespace {

namespace po = boost::program_options;
using namespace vae::cli::results;

const char* kUsage =
    "vae reproduce list [--dir DIR] [--no-timing]\n"
    "       vae reproduce SPEC [--budget NAME] [--seeds N] [--jobs N] [--db FILE] [--dry-run]\n"
    "       vae reproduce SPEC --report [--format text|markdown|latex|json] [--budget NAME] [--seeds N]\n"
    "                                   [--figure-dir DIR]\n"
    "       vae reproduce SPEC --slurm --array N [--partition P --time T --mem M --cpus-per-task C --requeue] [--submit]\n\n"
    "SPEC is a spec file (experiments/<paper>/<table>.toml) or the id of one under --dir.\n"
    "Without --report it runs what is missing (through `vae sweep run`: resumable, crash-safe)\n"
    "and then prints the report. The report exits 0 when every comparable cell is within\n"
    "tolerance (for a spec judged by claims, [verdict] kind = \"ordering\" or \"figure\": when\n"
    "every claim holds), 1 otherwise (a cell outside, a claim failing, or runs missing). A figure\n"
    "spec's report also draws one PNG per panel into --figure-dir (default: the database's folder),\n"
    "named <spec id>.<budget>.<panel>.png, with analysis/plot_reproduce_figure.py (python3 and\n"
    "matplotlib; $VAE_PYTHON, $VAE_ANALYSIS_DIR as for vae plot).";

std::string resolve_spec(const std::string& name, const std::string& dir) {
  if (std::filesystem::is_regular_file(name)) return name;
  for (const auto& path : reproduce::find_specs(dir)) {
    try {
      if (reproduce::parse_spec_file(path).id == name) return path;
    } catch (const reproduce::SpecError&) {
      // a broken spec is reported when it is asked for by its path
    }
  }
  throw reproduce::SpecError(name + ": no such spec file, and no spec with this id under " + dir +
                             " (vae reproduce list shows them)");
}

std::string self_program() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

// Writes the generated sweep file when its text changed (atomically).
void write_sweep_file(const std::string& path, const std::string& text) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream old;
  old << in.rdbuf();
  if (in && old.str() == text) return;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) throw std::runtime_error(tmp + ": cannot write");
  }
  std::filesystem::rename(tmp, path);
}

std::string temp_copy_path(const reproduce::ReproPlan& plan) {
  std::string dir = (std::filesystem::temp_directory_path() / "vae-reproduce-XXXXXX").string();
  if (!::mkdtemp(dir.data())) throw std::runtime_error(dir + ": cannot make a temporary folder");
  return dir + "/" + plan.sweep_name + ".toml";
}

// ---- list: specs and the estimated time of each budget ---------------------------------

struct Throughput {
  double train_samples_per_s = 0, iw_rows_per_s = 0;
  int64_t train_n = 0, test_n = 0;
};

// A short training of the cell's own model (20 batches, a few IW samples) on this machine.
Throughput calibrate(const std::map<std::string, Value>& settings) {
  ConfigMap c = default_config();
  vae::apply(c, settings);
  const TrainConfig full = to_train_config(c);
  Throughput t;
  const data::Splits data = data::load(data_spec(full));
  t.train_n = int64_t(data.train.n);
  t.test_n = int64_t(data.test.n);
  const std::map<std::string, Value> short_run{{"train-size",
                                                int64_t(std::min<int64_t>(t.train_n, 20 * full.batch))},
                                               {"epochs", int64_t(1)},
                                               {"test-size", int64_t(100)},
                                               {"valid-size", int64_t(0)},
                                               {"iw-samples", int64_t(200)},
                                               {"iw-examples", int64_t(2)},
                                               {"eval-every", int64_t(0)},
                                               {"threads", int64_t(1)}};
  vae::apply(c, short_run);
  RunOptions o;
  o.quiet = true;
  const RunResult r = train_and_evaluate(c, o, nullptr);
  t.train_samples_per_s = r.metrics.at("samples_per_s");
  t.iw_rows_per_s = 400.0 / std::max(1e-9, r.metrics.at("iw_s"));
  return t;
}

double estimate_seconds(const reproduce::Spec& spec, const reproduce::Budget& b, bool timing,
                        std::map<std::string, Throughput>& cache) {
  if (!timing) return -1;
  double total = 0;
  std::set<std::string> seen;
  for (const auto& row : spec.rows)
    for (const auto& col : spec.columns) {
      auto s = reproduce::cell_settings(spec, row, col, b);
      ConfigMap c = default_config();
      vae::apply(c, s);
      if (!seen.insert(to_json(c, true)).second) continue;  // a run shared by two cells
      ConfigMap probe = c;
      probe.erase("epochs");
      const std::string key = to_json(probe, true);
      if (!cache.count(key)) cache[key] = calibrate(s);
      const Throughput& t = cache[key];
      const TrainConfig tc = to_train_config(c);
      const double examples = tc.iw_examples == 0 ? double(t.test_n)
                                                  : double(std::min(tc.iw_examples, t.test_n));
      const double iw_rows = double(tc.iw_samples) * examples;
      total += double(tc.epochs) * double(t.train_n) / t.train_samples_per_s + iw_rows / t.iw_rows_per_s;
    }
  return total * double(spec.seeds);
}

std::string hours(double s) {
  if (s < 0) return "-";
  std::ostringstream o;
  if (s < 3600) o << std::fixed << std::setprecision(0) << s / 60 << " min";
  else o << std::fixed << std::setprecision(1) << s / 3600 << " h";
  return o.str();
}

int reproduce_list(const std::vector<std::string>& args) {
  po::options_description desc("vae reproduce list options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("dir", po::value<std::string>()->default_value("experiments"), "folder of the specs")
      ("no-timing", po::bool_switch(), "do not measure this machine's throughput for the time estimates");
  // clang-format on
  po::variables_map vm;
  if (auto rc = parse("vae reproduce list", "vae reproduce list [options]", desc, {}, args, vm)) return *rc;
  const bool timing = !vm["no-timing"].as<bool>();
  std::map<std::string, Throughput> cache;
  int bad = 0;
  for (const auto& path : reproduce::find_specs(vm["dir"].as<std::string>())) {
    try {
      const reproduce::Spec spec = reproduce::parse_spec_file(path);
      std::cout << spec.id << "  (" << path << ")\n  " << spec.title << "\n  " << spec.citation() << "; "
                << spec.rows.size() << " rows x " << spec.columns.size() << " columns, " << spec.seeds
                << " seeds\n";
      for (const auto& b : spec.budgets)
        std::cout << "  budget " << std::left << std::setw(10) << b.name << std::right << std::setw(6)
                  << b.epochs << " epochs  est. " << hours(estimate_seconds(spec, b, timing, cache))
                  << " on 1 core" << (b.description.empty() ? "" : "  (" + b.description + ")") << "\n";
    } catch (const std::exception& e) {
      std::cerr << "vae reproduce list: " << e.what() << "\n";
      ++bad;
    }
  }
  if (timing)
    std::cout << "(times from a short training of each cell's model on this machine, 1 BLAS thread)\n";
  return bad ? kExitUsage : kExitOk;
}

// ---- a spec: run, report, slurm -------------------------------------------------------

// A figure spec: one PNG per panel with a done run, drawn from the report's curves by the
// plot script.
void draw_figures(reproduce::Report& rep, const std::string& dir) {
  bool any = false;  // a panel none of whose runs is done has nothing to draw
  for (auto& p : rep.panels)
    for (const auto& c : p.curves)
      if (!c.samples.empty()) {
        p.png = (std::filesystem::path(dir) / (rep.spec->id + "." + rep.budget->name + "." + p.id + ".png"))
                    .string();
        any = true;
        break;
      }
  if (!any) return;
  std::filesystem::create_directories(dir);
  const std::filesystem::path data = std::filesystem::temp_directory_path() /
                                     ("vae-figure-" + std::to_string(::getpid()) + ".json");
  {
    std::ofstream out(data);
    out << reproduce::figure_json(rep);
    if (!out.flush()) throw std::runtime_error(data.string() + ": cannot write");
  }
  const int rc = run_python_script(analysis_script("plot_reproduce_figure.py"), {"--data", data.string()},
                                   "vae reproduce");
  std::filesystem::remove(data);
  if (rc != kExitOk) throw std::runtime_error("the figures were not drawn (plot_reproduce_figure.py failed)");
}

int print_report(const reproduce::Spec& spec, const reproduce::ReproPlan& plan, const std::string& db_path,
                 const std::string& format, const std::string& sweep_file, std::string figure_dir) {
  if (!std::filesystem::exists(db_path)) {
    std::cerr << "vae reproduce: " << db_path << ": no database; make the runs with: vae reproduce "
              << spec.file << " --budget " << plan.budget << " --seeds " << plan.seeds.size() << " --db "
              << db_path << "\n";
    return kExitError;
  }
  auto db = store::open_for_reading(db_path);
  reproduce::Report rep = reproduce::build_report(*db, spec, plan, sweep_file);
  if (!rep.panels.empty()) {
    if (figure_dir.empty()) figure_dir = std::filesystem::path(db_path).parent_path().string();
    draw_figures(rep, figure_dir.empty() ? "." : figure_dir);
  }
  std::cout << reproduce::render_report(rep, reproduce::parse_report_format(format));
  if (rep.missing > 0)
    std::cerr << "vae reproduce: " << rep.missing
              << " cells have runs that are not done; make them with: vae reproduce " << spec.file
              << " --budget " << plan.budget << " --seeds " << plan.seeds.size() << " --db " << db_path << "\n";
  return rep.ok() ? kExitOk : kExitError;
}

std::vector<std::string> slurm_args(const po::variables_map& vm) {
  std::vector<std::string> a;
  for (const char* k : {"array", "partition", "time", "mem", "cpus-per-task"})
    if (vm.count(k)) a.insert(a.end(), {std::string("--") + k, vm[k].as<std::string>()});
  for (const char* k : {"requeue", "submit"})
    if (vm[k].as<bool>()) a.push_back(std::string("--") + k);
  return a;
}

int reproduce_spec(const std::vector<std::string>& args) {
  po::options_description desc("vae reproduce options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("spec", po::value<std::string>(), "spec file or id")
      ("budget", po::value<std::string>()->default_value("paper"), "budget of the spec (vae reproduce list)")
      ("seeds", po::value<int64_t>()->default_value(0), "seeds per cell (0: the spec's)")
      ("jobs,j", po::value<int>()->default_value(1), "worker processes, each with one BLAS thread")
      ("dry-run,n", po::bool_switch(), "print the plan (runs done and to do), change nothing")
      ("report", po::bool_switch(), "print the report only (run nothing)")
      ("format", po::value<std::string>()->default_value("text"), "report: text, markdown, latex or json")
      ("figure-dir", po::value<std::string>()->default_value(""), "figure specs: folder of the PNGs (default: the database's)")
      ("dir", po::value<std::string>()->default_value("experiments"), "where spec ids are looked up")
      ("slurm", po::bool_switch(), "write (and with --submit, submit) a Slurm job array and merge job")
      ("array", po::value<std::string>(), "--slurm: tasks of the job array")
      ("partition", po::value<std::string>(), "--slurm: sbatch --partition")
      ("time", po::value<std::string>(), "--slurm: sbatch --time of each task")
      ("mem", po::value<std::string>(), "--slurm: sbatch --mem of each task")
      ("cpus-per-task", po::value<std::string>(), "--slurm: sbatch --cpus-per-task")
      ("requeue", po::bool_switch(), "--slurm: requeue preempted tasks")
      ("submit", po::bool_switch(), "--slurm: submit with sbatch");
  // clang-format on
  add_db_option(desc);
  po::positional_options_description pos;
  pos.add("spec", 1);
  po::variables_map vm;
  if (auto rc = parse("vae reproduce", std::string(kUsage), desc, pos, args, vm)) return *rc;
  if (!vm.count("spec")) {
    std::cerr << "vae reproduce: which spec? (vae reproduce list shows them)\n";
    return kExitUsage;
  }
  reproduce::parse_report_format(vm["format"].as<std::string>());  // a bad format fails before any run
  const std::string db_path = vm["db"].as<std::string>();
  const reproduce::Spec spec = reproduce::parse_spec_file(
      resolve_spec(vm["spec"].as<std::string>(), vm["dir"].as<std::string>()));
  const reproduce::ReproPlan plan = reproduce::make_plan(spec, vm["budget"].as<std::string>(),
                                                         vm["seeds"].as<int64_t>(), &vae::data_files_for);
  const std::string sweep_file = reproduce::sweep_file_path(db_path, plan);
  if (vm["report"].as<bool>())
    return print_report(spec, plan, db_path, vm["format"].as<std::string>(), sweep_file,
                        vm["figure-dir"].as<std::string>());

  const bool dry_run = vm["dry-run"].as<bool>();
  // A dry run changes nothing: its copy of the sweep file goes to a temporary folder.
  const std::string file = dry_run ? temp_copy_path(plan) : sweep_file;
  write_sweep_file(file, plan.sweep_text);
  std::vector<std::string> run{self_program(), "sweep", vm["slurm"].as<bool>() ? "slurm" : "run",
                               file,           "--db",  db_path};
  if (vm["slurm"].as<bool>()) {
    for (auto& a : slurm_args(vm)) run.push_back(a);
    return run_and_wait(run, "vae reproduce");
  }
  run.insert(run.end(), {"--jobs", std::to_string(vm["jobs"].as<int>()), "--no-table"});
  if (dry_run) {
    run.push_back("--dry-run");
    const int rc = run_and_wait(run, "vae reproduce");
    std::filesystem::remove_all(std::filesystem::path(file).parent_path());
    return rc;
  }
  const int rc = run_and_wait(run, "vae reproduce");
  if (rc == 130 || rc == kExitUsage) return rc;
  std::cout << "\n";
  const int report_rc = print_report(spec, plan, db_path, vm["format"].as<std::string>(), sweep_file,
                                     vm["figure-dir"].as<std::string>());
  return rc != kExitOk ? rc : report_rc;
}

int run_reproduce(const std::vector<std::string>& args) {
  if (args.empty()) {
    std::cerr << "usage: " << kUsage << "\n";
    return kExitUsage;
  }
  if (args[0] == "list") return reproduce_list(std::vector<std::string>(args.begin() + 1, args.end()));
  return reproduce_spec(args);
}

Register reg{{"reproduce", "run a published table (experiments/) and print ours beside the paper's numbers",
              &run_reproduce}};

}  // namespace
}  // namespace vae::cli
