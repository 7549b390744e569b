// vae sweep: run a sweep file into the results database (and the hidden worker
// processes the runner starts).
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "command.hpp"
#include "errors.hpp"
#include "report/render.hpp"
#include "report/table.hpp"
#include "results_common.hpp"
#include "store/provenance.hpp"
#include "store/results_store.hpp"
#include "store/schema.hpp"
#include "sweep/plan.hpp"
#include "sweep/runner.hpp"
#include "sweep/worker.hpp"
#include "train/run.hpp"

namespace vae::cli {

int sweep_slurm(const std::vector<std::string>& args);  // slurm_cmd.cpp

namespace {

namespace po = boost::program_options;
using namespace vae::cli::results;

const char* kSweepUsage =
    "vae sweep <action> ...\n\n"
    "actions:\n"
    "  run FILE     run a sweep file into the results database (vae sweep run --help)\n"
    "  slurm FILE   run it on a Slurm cluster: a job array of shards and a merge job (vae sweep slurm --help)\n"
    "  list         the sweeps in the database and how far each has got\n";

std::string runs_dir_for(const std::string& db_path) {
  std::filesystem::path p(db_path);
  return (p.parent_path().empty() ? std::filesystem::path("runs") : p.parent_path() / "runs").string();
}

// "latent(5) x beta(5) x seed(3) + sigma(4) x seed(3)"
std::string structure(const sweep::SweepSpec& spec) {
  std::string out;
  for (const auto& p : spec.parts) {
    std::string s;
    for (const auto& a : p.grid)
      s += (s.empty() ? "" : " x ") + a.key + "(" + std::to_string(a.values.size()) + ")";
    if (!p.zip.empty()) {
      std::string z;
      for (const auto& a : p.zip) z += (z.empty() ? "" : ",") + a.key;
      s += (s.empty() ? "" : " x ") + std::string("zip[") + z + "](" + std::to_string(p.zip[0].values.size()) +
           ")";
    }
    if (!p.seeds.empty())
      s += (s.empty() ? "" : " x ") + std::string("seed(") + std::to_string(p.seeds.size()) + ")";
    if (s.empty()) s = "1";
    out += (out.empty() ? "" : " + ") + s;
  }
  return out;
}

void print_plan(std::ostream& out, const sweep::Plan& plan, const sweep::PlanStatus& st, bool retry_failed,
                const std::string& db, int jobs, bool dry_run,
                const std::optional<sweep::Shard>& shard = std::nullopt, size_t whole = 0) {
  out << "sweep " << plan.spec.name << " (" << plan.spec.file << "): ";
  if (shard)
    out << "shard " << shard->index << "/" << shard->count << ": " << st.total << " of the " << whole
        << " runs = " << structure(plan.spec) << "\n";
  else out << st.total << " runs = " << structure(plan.spec) << "\n";
  out << "  already done " << st.done;
  if (st.failed + st.diverged) {
    out << ", failed/diverged " << st.failed + st.diverged
        << (retry_failed ? " (retried)" : " (skipped; --retry-failed runs them again)");
  }
  if (st.running) out << ", running or interrupted " << st.running << " (resumed if interrupted)";
  out << ", to do " << st.to_do(retry_failed);
  if (!dry_run) out << "  [" << db << ", " << jobs << (jobs == 1 ? " worker" : " workers") << "]";
  out << "\n";
}

void print_table(const std::string& db_path, const sweep::SweepSpec& spec, std::ostream& out) {
  sweep::TableDefaults d = sweep::default_table(spec);
  if (d.rows.empty()) return;
  auto db = store::open_for_reading(db_path);
  report::TableRequest rq;
  rq.selection.sweep = spec.name;
  rq.rows = d.rows;
  rq.cols = d.cols;
  rq.metrics = d.metrics;
  rq.agg = report::parse_agg(d.agg);
  rq.best = d.best;
  // fall back to test_elbo when the sweep skipped the importance-weighted estimate
  if (rq.metrics == std::vector<std::string>{"test_nll"} && spec.table.metrics.empty() &&
      db->scalar_int("SELECT count(*) FROM metrics WHERE name = 'test_nll'") == 0)
    rq.metrics = {"test_elbo"};
  report::Table t = report::build_table(*db, rq);
  out << "\n" << report::render_table(t, report::Format::Text);
  std::string cmd = "vae table --sweep " + spec.name + " --rows " + d.rows[0];
  for (size_t i = 1; i < d.rows.size(); ++i) cmd += "," + d.rows[i];
  if (!d.cols.empty()) {
    cmd += " --cols " + d.cols[0];
    for (size_t i = 1; i < d.cols.size(); ++i) cmd += "," + d.cols[i];
  }
  cmd += " --metric " + rq.metrics[0];
  if (db_path != default_db_path()) cmd += " --db " + db_path;
  out << "(" << cmd << " --format markdown|latex|csv|json)\n";
}

int sweep_run(const std::vector<std::string>& args) {
  po::options_description desc("vae sweep run options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("file", po::value<std::string>(), "the sweep file (TOML; see sweeps/)")
      ("jobs,j", po::value<int>()->default_value(1), "worker processes, each with one BLAS thread")
      ("dry-run,n", po::bool_switch(), "print the plan and the runs, change nothing")
      ("retry-failed", po::bool_switch(), "run the sweep's failed and diverged runs again")
      ("set", po::value<std::vector<std::string>>()->composing(),
       "KEY=VALUE: override a setting in every run's base, e.g. --set epochs=2 (repeatable)")
      ("name", po::value<std::string>(), "record the sweep under this name instead of the file's")
      ("shard", po::value<std::string>(),
       "I/N: run only shard I (0 <= I < N) of the sweep: the runs whose id (first 8 bytes, "
       "as an integer) mod N is I, so N processes on N machines cover the sweep once; "
       "give each shard its own --db and fold them with vae merge")
      ("runs-dir", po::value<std::string>(), "checkpoints of each run go to DIR/<run id>/ (default: runs/ beside the database)")
      ("stale-after", po::value<double>()->default_value(120.0),
       "seconds without heartbeat after which a run claimed on another host counts as interrupted")
      ("delete-checkpoints", po::bool_switch(), "delete a run's checkpoints once it is done (they are kept by default, for sampling and re-evaluation)")
      ("no-table", po::bool_switch(), "do not print the comparison table at the end")
      ("quiet,q", po::bool_switch(), "no progress line and no line per finished run");
  // clang-format on
  add_db_option(desc);
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  if (auto rc = parse("vae sweep run", "vae sweep run FILE [options]", desc, pos, args, vm)) return *rc;
  if (!vm.count("file")) {
    std::cerr << "vae sweep run: which sweep file? (e.g. vae sweep run sweeps/quickstart.toml)\n";
    return kExitUsage;
  }
  const int jobs = vm["jobs"].as<int>();
  if (jobs < 1 || jobs > 256) {
    std::cerr << "vae sweep run: --jobs " << jobs << ": expected 1 to 256\n";
    return kExitUsage;
  }
  const std::string db_path = vm["db"].as<std::string>();
  const bool dry_run = vm["dry-run"].as<bool>(), retry = vm["retry-failed"].as<bool>();
  const bool quiet = vm["quiet"].as<bool>();
  const std::string runs_dir = vm.count("runs-dir") ? vm["runs-dir"].as<std::string>() : runs_dir_for(db_path);

  // A bad sweep file or setting exits 2, a missing or damaged data file 1 (errors.hpp).
  std::optional<sweep::Shard> shard;
  if (vm.count("shard")) shard = sweep::parse_shard(vm["shard"].as<std::string>());
  sweep::SweepSpec spec = sweep::parse_sweep_file(vm["file"].as<std::string>());
  if (vm.count("name")) spec.name = vm["name"].as<std::string>();
  if (vm.count("set")) sweep::apply_overrides(spec, vm["set"].as<std::vector<std::string>>());
  sweep::Plan plan = sweep::make_plan(spec, &vae::data_files_for);
  const size_t whole = plan.runs.size();
  if (shard) plan = sweep::select_shard(plan, *shard);
  std::vector<std::string> ids;
  for (const auto& r : plan.runs) ids.push_back(r.run_id);

  if (dry_run) {
    std::map<std::string, std::string> statuses;
    if (std::filesystem::exists(db_path)) {
      auto db = store::open_for_reading(db_path);
      statuses = store::ResultsStore(*db).statuses(ids);
    }
    sweep::PlanStatus st = sweep::plan_status(plan, statuses);
    print_plan(std::cout, plan, st, retry, db_path, jobs, true, shard, whole);
    std::cout << "\n";
    for (size_t i = 0; i < plan.runs.size(); ++i) {
      auto it = statuses.find(plan.runs[i].run_id);
      std::string s = it == statuses.end() ? "new" : it->second;
      std::cout << "  " << std::setw(4) << plan.runs[i].position + 1 << "  "
                << plan.runs[i].run_id.substr(0, 12) << "  " << std::left << std::setw(9) << s << std::right
                << "  " << plan.points[i].describe()
                << (plan.spec.parts.size() > 1 && !plan.spec.parts[plan.points[i].part].label.empty()
                        ? "  [" + plan.spec.parts[plan.points[i].part].label + "]"
                        : "")
                << "\n";
    }
    return kExitOk;
  }

  auto db = store::open_for_writing(db_path);
  store::ResultsStore st(*db);
  const int64_t sweep_id = st.upsert_sweep(plan.spec.name, plan.spec.file, plan.spec.text);
  st.register_runs(sweep_id, plan.runs);
  if (retry) st.requeue_failed(sweep_id);
  sweep::PlanStatus ps = sweep::plan_status(plan, st.statuses(ids));
  print_plan(std::cerr, plan, ps, retry, db_path, jobs, false, shard, whole);

  const int64_t session = st.start_session(sweep_id, command_line(), jobs);
  sweep::RunnerReport rep;
  store::SweepCounts counts = st.counts(sweep_id);
  if (counts.remaining() > 0) {
    sweep::RunnerOptions ro;
    ro.db_path = db_path;
    ro.sweep_name = plan.spec.name;
    ro.sweep_id = sweep_id;
    ro.session_id = session;
    ro.jobs = jobs;
    ro.quiet = quiet;
    ro.worker_argv = {"/proc/self/exe",
                      "sweep",
                      "worker",
                      "--db",
                      db_path,
                      "--sweep-id",
                      std::to_string(sweep_id),
                      "--session",
                      std::to_string(session),
                      "--runs-dir",
                      runs_dir,
                      "--stale-after",
                      std::to_string(vm["stale-after"].as<double>())};
    if (vm["delete-checkpoints"].as<bool>()) ro.worker_argv.push_back("--delete-checkpoints");
    rep = sweep::run_sweep(ro, std::cerr);
    counts = rep.counts;
  }
  st.end_session(session);

  const int64_t bad = counts.failed + counts.diverged;
  std::cerr << "sweep " << plan.spec.name << ": " << counts.done << "/" << counts.total << " done";
  if (bad) std::cerr << ", " << counts.failed << " failed, " << counts.diverged << " diverged";
  if (counts.remaining()) std::cerr << ", " << counts.remaining() << " not finished";
  if (rep.elapsed_s > 0) std::cerr << " (" << sweep::format_duration(rep.elapsed_s) << ")";
  std::cerr << "\n";
  if (bad)
    std::cerr << "  see them with: vae runs --sweep " << plan.spec.name << " --status failed,diverged"
              << (db_path != default_db_path() ? " --db " + db_path : "") << "\n";
  if (rep.interrupted) {
    std::cerr << "interrupted: run the same command again to resume\n";
    return 130;
  }
  if (!vm["no-table"].as<bool>() && counts.done > 0) {
    try {
      print_table(db_path, plan.spec, std::cout);
    } catch (const report::UsageError& e) {
      std::cerr << "(no table: " << e.what() << ")\n";
    }
  }
  return bad || counts.remaining() ? kExitError : kExitOk;
}

std::atomic<bool> g_worker_stop{false};
extern "C" void on_worker_signal(int sig) {
  // A second SIGINT kills at once. SIGTERM only ever asks to stop: a scheduler that
  // preempts a job (Slurm) sends it to every process of the job, so a worker gets one
  // from the scheduler and one from its runner, and must still save its checkpoint.
  if (g_worker_stop.exchange(true) && sig == SIGINT) {
    signal(sig, SIG_DFL);
    raise(sig);
  }
}

int sweep_worker(const std::vector<std::string>& args) {
  po::options_description desc("vae sweep worker options (started by vae sweep run)");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("db", po::value<std::string>()->required(), "results database")
      ("sweep-id", po::value<int64_t>()->required(), "the sweep whose runs to claim")
      ("session", po::value<int64_t>()->default_value(0), "the runner's session id")
      ("runs-dir", po::value<std::string>()->required(), "checkpoints go to DIR/<run id>/")
      ("stale-after", po::value<double>()->default_value(120.0), "heartbeat age of a dead claim (s)")
      ("max-runs", po::value<int64_t>()->default_value(-1), "stop after this many runs (-1: no limit)")
      ("delete-checkpoints", po::bool_switch(), "delete a run's checkpoints once it is done");
  // clang-format on
  po::variables_map vm;
  if (auto rc = parse("vae sweep worker", "vae sweep worker --db PATH --sweep-id N --runs-dir DIR", desc, {},
                      args, vm))
    return *rc;
  struct sigaction sa {};
  sa.sa_handler = on_worker_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sweep::WorkerOptions o;
  o.db_path = vm["db"].as<std::string>();
  o.sweep_id = vm["sweep-id"].as<int64_t>();
  o.session_id = vm["session"].as<int64_t>();
  o.runs_dir = vm["runs-dir"].as<std::string>();
  o.stale_after_s = vm["stale-after"].as<double>();
  o.max_runs = vm["max-runs"].as<int64_t>();
  o.delete_checkpoints = vm["delete-checkpoints"].as<bool>();
  o.stop = &g_worker_stop;
  sweep::run_worker(o, &vae::train_and_evaluate);
  return kExitOk;
}

int sweep_list(const std::vector<std::string>& args) {
  po::options_description desc("vae sweep list options");
  // clang-format off
  desc.add_options()("help,h", "show this help")
      ("format", po::value<std::string>()->default_value("text"), "text, markdown, csv, tsv, json or jsonl");
  // clang-format on
  add_db_option(desc);
  po::variables_map vm;
  if (auto rc = parse("vae sweep list", "vae sweep list [options]", desc, {}, args, vm)) return *rc;
  report::Format f = report::parse_format(vm["format"].as<std::string>(),
                                          {report::Format::Text, report::Format::Markdown, report::Format::Csv,
                                           report::Format::Tsv, report::Format::Json, report::Format::Jsonl});
  auto db = store::open_for_reading(vm["db"].as<std::string>());
  store::ResultsStore st(*db);
  report::Frame fr;
  fr.columns = {"sweep",   "runs",        "done",   "failed", "diverged",
                "running", "interrupted", "queued", "file",   "updated"};
  auto s = db->prepare("SELECT sweep_id, name, coalesce(file, ''), updated_at FROM sweeps ORDER BY name");
  while (s.step()) {
    store::SweepCounts c = st.counts(s.get_int(0));
    fr.rows.push_back({s.get_text(1), c.total, c.done, c.failed, c.diverged, c.running, c.interrupted, c.queued,
                       s.get_text(2), s.get_text(3)});
  }
  std::cout << report::render_frame(fr, f);
  return kExitOk;
}

int run_sweep_cmd(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    (args.empty() ? std::cerr : std::cout) << "usage: " << kSweepUsage;
    return args.empty() ? kExitUsage : kExitOk;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  const std::vector<std::pair<std::string, int (*)(const std::vector<std::string>&)>> actions = {
      {"run", &sweep_run}, {"worker", &sweep_worker}, {"list", &sweep_list}, {"slurm", &sweep_slurm}};
  for (const auto& a : actions)  // (a lambda may not capture a structured binding before C++20)
    if (args[0] == a.first) return run_reporting_errors("vae sweep " + a.first, [&] { return a.second(rest); });
  if (args[0].size() > 5 && args[0].compare(args[0].size() - 5, 5, ".toml") == 0) {
    std::cerr << "vae sweep: did you mean: vae sweep run " << args[0] << "\n";
    return kExitUsage;
  }
  std::cerr << "vae sweep: unknown action '" << args[0] << "'"
            << did_you_mean(args[0], {"run", "list", "slurm"}) << "\n"
            << "usage: " << kSweepUsage;
  return kExitUsage;
}

Register reg{{"sweep", "run a sweep file (grid x zip x seeds) into the results database", &run_sweep_cmd}};

}  // namespace
}  // namespace vae::cli
