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

}  // namespace

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--";
  long t = std::lround(s);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

RunnerReport run_sweep(const RunnerOptions& o, std::ostream& log) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const std::string session_start = store::now_iso();
  auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };

  store::Db db(o.db_path);
  store::ResultsStore store(db);
  SignalGuard guard;
  const bool tty = isatty(STDERR_FILENO) && !o.quiet;

  // argv and envp are built before fork: the child only calls async-signal-safe functions.
  std::vector<std::string> env_strings = worker_environment();
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = o.worker_argv;
  for (auto& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  std::set<pid_t> workers;
  auto spawn = [&]() {
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(std::string("cannot start a worker: fork: ") + std::strerror(errno));
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);  // the runner died before prctl
      // Its own process group: a Ctrl-C reaches the runner only, which then stops
      // the workers once (SIGTERM), and kills them on a second Ctrl-C.
      setpgid(0, 0);
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    workers.insert(pid);
  };

  RunnerReport report;
  store::SweepCounts counts = store.counts(o.sweep_id);
  const int64_t first_jobs = std::min<int64_t>(o.jobs, std::max<int64_t>(1, counts.remaining()));
  for (int64_t i = 0; i < first_jobs; ++i) spawn();

  std::set<std::string> logged;
  int64_t logged_finished = counts.done + counts.failed + counts.diverged;  // before this session
  std::map<std::string, int> deaths;
  int handled_signals = 0, consecutive_bad_exits = 0;
  std::string progress_line;

  auto clear_progress = [&] {
    if (tty && !progress_line.empty()) log << "\r\033[K" << std::flush;
  };
  auto say = [&](const std::string& line) {
    clear_progress();
    log << line << "\n";
    if (tty && !progress_line.empty()) log << progress_line << std::flush;
    else log << std::flush;
  };

  auto poll = [&](bool final_poll) {
    counts = store.counts(o.sweep_id);
    // newly finished runs
    struct Fin {
      std::string id, status, message, point;
      double wall;
      std::map<std::string, double> m;
    };
    std::vector<Fin> fins;
    double wall_sum = 0;
    int64_t wall_n = 0;
    struct Running {
      double frac, elapsed;
    };
    std::vector<Running> running;
    db.read([&] {
      fins.clear();
      running.clear();
      wall_sum = 0;
      wall_n = 0;
      auto s = db.prepare("SELECT r.run_id, r.status, coalesce(r.message, ''), coalesce(r.wall_s, 0), sr.point "
                          "FROM sweep_runs sr JOIN runs r USING (run_id) WHERE sr.sweep_id = ? AND "
                          "r.status IN ('done', 'failed', 'diverged') AND r.ended_at >= ? ORDER BY r.ended_at");
      s.bind(1, o.sweep_id).bind(2, session_start);
      auto m = db.prepare("SELECT name, value FROM metrics WHERE run_id = ? AND name IN "
                          "('test_elbo', 'test_nll', 'test_bpd')");
      while (s.step()) {
        std::string id = s.get_text(0);
        wall_sum += s.get_double(3);
        ++wall_n;
        if (logged.count(id)) continue;
        Fin f{id, s.get_text(1), s.get_text(2), s.get_text(4), s.get_double(3), {}};
        m.bind(1, id);
        while (m.step()) f.m[m.get_text(0)] = m.get_double(1);
        m.reset();
        fins.push_back(std::move(f));
      }
      auto r = db.prepare("SELECT r.epochs_done - coalesce(a.resumed_from_epoch, 0), "
                          "coalesce(p.value, 0) - coalesce(a.resumed_from_epoch, 0), "
                          "(julianday('now') - julianday(a.started_at)) * 86400.0 "
                          "FROM sweep_runs sr JOIN runs r USING (run_id) "
                          "LEFT JOIN params p ON p.run_id = r.run_id AND p.key = 'epochs' "
                          "LEFT JOIN attempts a ON a.run_id = r.run_id AND a.attempt = r.attempts "
                          "WHERE sr.sweep_id = ? AND r.status = 'running'");
      r.bind(1, o.sweep_id);
      while (r.step()) {
        double total = r.get_double(1), done = r.get_double(0);
        running.push_back({total > 0 ? std::clamp(done / total, 0.0, 1.0) : 0.0, r.get_double(2)});
      }
    });
    for (auto& f : fins) {
      logged.insert(f.id);
      ++report.finished_here;
      if (o.quiet) continue;
      ++logged_finished;
      std::ostringstream line;
      line << "[" << logged_finished << "/" << counts.total << "] ";
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
    if (o.quiet || final_poll) return;
    // ETA: remaining run-equivalents x mean run time / workers busy
    double mean = wall_n > 0 ? wall_sum / double(wall_n) : NAN;
    if (wall_n == 0) {
      double est = 0;
      int n = 0;
      for (const auto& r : running)
        if (r.frac > 0.05) est += r.elapsed / r.frac, ++n;
      if (n) mean = est / n;
    }
    double units = double(counts.queued + counts.interrupted);
    for (const auto& r : running) units += 1.0 - r.frac;
    double busy = double(std::max<int64_t>(1, std::min<int64_t>(o.jobs, counts.remaining())));
    double eta = std::isfinite(mean) ? units * mean / busy : NAN;
    std::ostringstream p;
    const int64_t finished = counts.done + counts.failed + counts.diverged;
    p << "[" << o.sweep_name << "] " << finished << "/" << counts.total << " runs";
    if (counts.failed + counts.diverged) p << ", " << counts.failed + counts.diverged << " failed";
    p << ", " << running.size() << " running";
    if (!running.empty() && running.size() <= 4) {
      p << " (";
      for (size_t i = 0; i < running.size(); ++i)
        p << (i ? " " : "") << std::lround(100 * running[i].frac) << "%";
      p << ")";
    }
    p << "  elapsed " << format_duration(elapsed()) << "  ETA " << format_duration(eta);
    progress_line = p.str();
    if (tty) log << "\r\033[K" << progress_line << std::flush;
  };

  while (!workers.empty()) {
    int status = 0;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (!workers.erase(pid)) continue;
      const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (clean) {
        consecutive_bad_exits = 0;
        continue;
      }
      const std::string why = describe_exit(status);
      auto run = store.release_dead_worker(pid, "interrupted: worker " + why);
      if (g_signals > 0) continue;  // we are stopping: expected
      ++consecutive_bad_exits;
      if (run) {
        int n = ++deaths[*run];
        if (n >= o.max_worker_deaths_per_run) {
          store.mark_failed(*run,
                            "its worker process died " + std::to_string(n) + " times (last: " + why + ")");
          say("worker " + std::to_string(pid) + " " + why + " during run " + run->substr(0, 12) +
              ": the run is marked failed (it killed its worker " + std::to_string(n) + " times)");
        } else {
          say("worker " + std::to_string(pid) + " " + why + " during run " + run->substr(0, 12) +
              "; another worker resumes it from its last checkpoint");
        }
      } else {
        say("worker " + std::to_string(pid) + " " + why);
      }
      if (consecutive_bad_exits > 3 + o.jobs) {
        say("workers keep dying; not starting more (see the messages above)");
        continue;
      }
      if (store.counts(o.sweep_id).remaining() > 0) spawn();
    }
    if (g_signals > handled_signals) {
      if (handled_signals == 0) {
        report.interrupted = true;
        say("stopping: each worker finishes its current epoch and saves a checkpoint "
            "(interrupt again to kill them now)");
        for (pid_t w : workers) kill(w, SIGTERM);
      } else {
        for (pid_t w : workers) kill(w, SIGKILL);
      }
      handled_signals = g_signals;
    }
    try {
      poll(false);
    } catch (const store::DbError& e) {
      if (!e.busy()) throw;
    }
    if (!workers.empty()) std::this_thread::sleep_for(std::chrono::duration<double>(o.poll_s));
  }
  poll(true);
  clear_progress();
  report.counts = store.counts(o.sweep_id);
  report.elapsed_s = elapsed();
  return report;
}

}  // namespace vae::sweep
