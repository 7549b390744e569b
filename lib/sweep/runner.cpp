#include "sweep/runner.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "report/selection.hpp"
#include "store/provenance.hpp"

extern char** environ;

namespace vae::sweep {

namespace {

std::atomic<int> g_signals{0};
extern "C" void on_runner_signal(int) { g_signals.fetch_add(1); }

struct SignalGuard {
  struct sigaction old_int {
  }, old_term{}, old_hup{};
  SignalGuard() {
    g_signals = 0;
    struct sigaction sa {};
    sa.sa_handler = on_runner_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
  }
  ~SignalGuard() {
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    sigaction(SIGHUP, &old_hup, nullptr);
  }
};

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return "killed by signal " + std::to_string(sig) + (name ? std::string(" (SIG") + name + ")" : "");
  }
  return "stopped (status " + std::to_string(status) + ")";
}

// The environment of a worker: ours, with one BLAS thread.
std::vector<std::string> worker_environment() {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string s = *e;
    if (s.rfind("OPENBLAS_NUM_THREADS=", 0) == 0 || s.rfind("OMP_NUM_THREADS=", 0) == 0 ||
        s.rfind("GOTO_NUM_THREADS=", 0) == 0)
      continue;
    env.push_back(s);
  }
  env.push_back("OPENBLAS_NUM_THREADS=1");
  env.push_back("OMP_NUM_THREADS=1");
  env.push_back("GOTO_NUM_THREADS=1");
  return env;
}

// One sweep session: the workers, what they finished, the progress line.
class Runner {
 public:
  Runner(const RunnerOptions& o, std::ostream& log)
      : o_(o), log_(log), db_(o.db_path), store_(db_), tty_(isatty(STDERR_FILENO) && !o.quiet) {
    prepare_worker_command();
  }

  RunnerReport run() {
    counts_ = store_.counts(o_.sweep_id);
    const int64_t first_jobs = std::min<int64_t>(o_.jobs, std::max<int64_t>(1, counts_.remaining()));
    for (int64_t i = 0; i < first_jobs; ++i) spawn();
    logged_finished_ = counts_.done + counts_.failed + counts_.diverged;  // before this session
    while (!workers_.empty()) {
      reap_workers();
      handle_signals();
      try {
        poll(false);
      } catch (const store::DbError& e) {
        if (!e.busy()) throw;
      }
      if (!workers_.empty()) std::this_thread::sleep_for(std::chrono::duration<double>(o_.poll_s));
    }
    poll(true);
    clear_progress();
    report_.counts = store_.counts(o_.sweep_id);
    report_.elapsed_s = elapsed();
    return report_;
  }

 private:
  // A run that finished during this session, as its line shows it.
  struct Finished {
    std::string id, status, message, point;
    double wall;
    std::map<std::string, double> m;
  };
  struct Running {
    double frac, elapsed;
  };
  // What one poll reads of the database.
  struct Snapshot {
    std::vector<Finished> finished;  // not logged yet
    double wall_sum = 0;             // over all runs finished this session
    int64_t wall_n = 0;
    std::vector<Running> running;
  };

  using Clock = std::chrono::steady_clock;
  const RunnerOptions& o_;
  std::ostream& log_;
  const Clock::time_point t0_ = Clock::now();
  const std::string session_start_ = store::now_iso();
  store::Db db_;
  store::ResultsStore store_;
  SignalGuard guard_;
  const bool tty_;
  std::vector<std::string> env_strings_, argv_strings_;
  std::vector<char*> envp_, argv_;
  std::set<pid_t> workers_;
  RunnerReport report_;
  store::SweepCounts counts_;
  std::set<std::string> logged_;
  int64_t logged_finished_ = 0;
  std::map<std::string, int> deaths_;
  int handled_signals_ = 0, consecutive_bad_exits_ = 0;
  std::string progress_line_;

  double elapsed() const { return std::chrono::duration<double>(Clock::now() - t0_).count(); }

  // argv and envp are built before fork: the child only calls async-signal-safe functions.
  void prepare_worker_command() {
    env_strings_ = worker_environment();
    for (auto& s : env_strings_) envp_.push_back(s.data());
    envp_.push_back(nullptr);
    argv_strings_ = o_.worker_argv;
    for (auto& s : argv_strings_) argv_.push_back(s.data());
    argv_.push_back(nullptr);
  }

  void spawn() {
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(std::string("cannot start a worker: fork: ") + std::strerror(errno));
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);  // the runner died before prctl
      // Its own process group: a Ctrl-C reaches the runner only, which then stops
      // the workers once (SIGTERM), and kills them on a second Ctrl-C.
      setpgid(0, 0);
      execve(argv_[0], argv_.data(), envp_.data());
      _exit(127);
    }
    workers_.insert(pid);
  }

  void clear_progress() {
    if (tty_ && !progress_line_.empty()) log_ << "\r\033[K" << std::flush;
  }
  void say(const std::string& line) {
    clear_progress();
    log_ << line << "\n";
    if (tty_ && !progress_line_.empty()) log_ << progress_line_ << std::flush;
    else log_ << std::flush;
  }

  // Collects the exited workers; a worker that died releases its run to be resumed (or
  // failed, when it has killed its worker too often), and a replacement is started.
  void reap_workers() {
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (!workers_.erase(pid)) continue;
      const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (clean) {
        consecutive_bad_exits_ = 0;
        continue;
      }
      if (!worker_died(pid, status)) continue;
      if (store_.counts(o_.sweep_id).remaining() > 0) spawn();
    }
  }

  // Handles one worker's unclean exit; false when no replacement is to be started.
  bool worker_died(pid_t pid, int status) {
    const std::string why = describe_exit(status);
    auto run = store_.release_dead_worker(pid, "interrupted: worker " + why);
    if (g_signals > 0) return false;  // we are stopping: expected
    ++consecutive_bad_exits_;
    if (run) {
      int n = ++deaths_[*run];
      if (n >= o_.max_worker_deaths_per_run) {
        store_.mark_failed(*run, "its worker process died " + std::to_string(n) + " times (last: " + why + ")");
        say("worker " + std::to_string(pid) + " " + why + " during run " + run->substr(0, 12) +
            ": the run is marked failed (it killed its worker " + std::to_string(n) + " times)");
      } else {
        say("worker " + std::to_string(pid) + " " + why + " during run " + run->substr(0, 12) +
            "; another worker resumes it from its last checkpoint");
      }
    } else {
      say("worker " + std::to_string(pid) + " " + why);
    }
    if (consecutive_bad_exits_ > 3 + o_.jobs) {
      say("workers keep dying; not starting more (see the messages above)");
      return false;
    }
    return true;
  }

  // The first signal stops the workers at their next epoch end, a second kills them.
  void handle_signals() {
    if (g_signals <= handled_signals_) return;
    if (handled_signals_ == 0) {
      report_.interrupted = true;
      say("stopping: each worker finishes its current epoch and saves a checkpoint "
          "(interrupt again to kill them now)");
      for (pid_t w : workers_) kill(w, SIGTERM);
    } else {
      for (pid_t w : workers_) kill(w, SIGKILL);
    }
    handled_signals_ = g_signals;
  }

  void poll(bool final_poll) {
    counts_ = store_.counts(o_.sweep_id);
    Snapshot snap;
    db_.read([&] { snap = read_snapshot(); });
    for (auto& f : snap.finished) log_finished(f);
    if (o_.quiet || final_poll) return;
    show_progress(snap);
  }

  Snapshot read_snapshot() {
    Snapshot snap;
    auto s = db_.prepare("SELECT r.run_id, r.status, coalesce(r.message, ''), coalesce(r.wall_s, 0), sr.point "
                         "FROM sweep_runs sr JOIN runs r USING (run_id) WHERE sr.sweep_id = ? AND "
                         "r.status IN ('done', 'failed', 'diverged') AND r.ended_at >= ? ORDER BY r.ended_at");
    s.bind(1, o_.sweep_id).bind(2, session_start_);
    auto m = db_.prepare("SELECT name, value FROM metrics WHERE run_id = ? AND name IN "
                         "('test_elbo', 'test_nll', 'test_bpd')");
    while (s.step()) {
      std::string id = s.get_text(0);
      snap.wall_sum += s.get_double(3);
      ++snap.wall_n;
      if (logged_.count(id)) continue;
      Finished f{id, s.get_text(1), s.get_text(2), s.get_text(4), s.get_double(3), {}};
      m.bind(1, id);
      while (m.step()) f.m[m.get_text(0)] = m.get_double(1);
      m.reset();
      snap.finished.push_back(std::move(f));
    }
    auto r = db_.prepare("SELECT r.epochs_done - coalesce(a.resumed_from_epoch, 0), "
                         "coalesce(p.value, 0) - coalesce(a.resumed_from_epoch, 0), "
                         "(julianday('now') - julianday(a.started_at)) * 86400.0 "
                         "FROM sweep_runs sr JOIN runs r USING (run_id) "
                         "LEFT JOIN params p ON p.run_id = r.run_id AND p.key = 'epochs' "
                         "LEFT JOIN attempts a ON a.run_id = r.run_id AND a.attempt = r.attempts "
                         "WHERE sr.sweep_id = ? AND r.status = 'running'");
    r.bind(1, o_.sweep_id);
    while (r.step()) {
      double total = r.get_double(1), done = r.get_double(0);
      snap.running.push_back({total > 0 ? std::clamp(done / total, 0.0, 1.0) : 0.0, r.get_double(2)});
    }
    return snap;
  }

  // "[3/8] done     1a2b3c4d5e6f  latent=2 beta=1  test_elbo -98.12  (0:42)"
  void log_finished(const Finished& f) {
    logged_.insert(f.id);
    ++report_.finished_here;
    if (o_.quiet) return;
    ++logged_finished_;
    std::ostringstream line;
    line << "[" << logged_finished_ << "/" << counts_.total << "] ";
    if (f.status == "done") line << "done     ";
    else if (f.status == "diverged") line << "DIVERGED ";
    else line << "FAILED   ";
    line << f.id.substr(0, 12) << "  "
         << (f.point.empty() || f.point == "{}" ? std::string("(base)") : report::format_point(f.point));
    for (const char* k : {"test_elbo", "test_nll", "test_bpd"}) {
      auto it = f.m.find(k);
      if (it != f.m.end() && std::isfinite(it->second)) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "  %s %.2f", k, it->second);
        line << buf;
      }
    }
    line << "  (" << report::format_seconds(f.wall) << ")";
    if (f.status != "done" && !f.message.empty()) line << ": " << f.message;
    say(line.str());
  }

  // ETA: remaining run-equivalents x mean run time / workers busy
  double eta(const Snapshot& snap) const {
    double mean = snap.wall_n > 0 ? snap.wall_sum / double(snap.wall_n) : NAN;
    if (snap.wall_n == 0) {
      double est = 0;
      int n = 0;
      for (const auto& r : snap.running)
        if (r.frac > 0.05) est += r.elapsed / r.frac, ++n;
      if (n) mean = est / n;
    }
    double units = double(counts_.queued + counts_.interrupted);
    for (const auto& r : snap.running) units += 1.0 - r.frac;
    double busy = double(std::max<int64_t>(1, std::min<int64_t>(o_.jobs, counts_.remaining())));
    return std::isfinite(mean) ? units * mean / busy : NAN;
  }

  // "[quickstart] 3/8 runs, 2 running (40% 75%)  elapsed 0:42  ETA 1:10", redrawn in place.
  void show_progress(const Snapshot& snap) {
    std::ostringstream p;
    const int64_t finished = counts_.done + counts_.failed + counts_.diverged;
    p << "[" << o_.sweep_name << "] " << finished << "/" << counts_.total << " runs";
    if (counts_.failed + counts_.diverged) p << ", " << counts_.failed + counts_.diverged << " failed";
    p << ", " << snap.running.size() << " running";
    if (!snap.running.empty() && snap.running.size() <= 4) {
      p << " (";
      for (size_t i = 0; i < snap.running.size(); ++i)
        p << (i ? " " : "") << std::lround(100 * snap.running[i].frac) << "%";
      p << ")";
    }
    p << "  elapsed " << format_duration(elapsed()) << "  ETA " << format_duration(eta(snap));
    progress_line_ = p.str();
    if (tty_) log_ << "\r\033[K" << progress_line_ << std::flush;
  }
};

}  // namespace

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--";
  long t = std::lround(s);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

RunnerReport run_sweep(const RunnerOptions& o, std::ostream& log) { return Runner(o, log).run(); }

}  // namespace vae::sweep
