// End to end, with the built `vae` program and real (tiny) trainings: a sweep
// runs and resumes, survives SIGKILL of the runner and of a worker, tolerates two
// runners on one database, records failures; the query commands read the result.
#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "process_util.hpp"
#include "store/results_store.hpp"
#include "store_test_util.hpp"

using namespace vae;
using vae::testing::Proc;
using vae::testing::TempDir;

namespace {

// Tiny runs: a few hundred milliseconds each, a few epochs of ~0.1 s.
std::string tiny_sweep(const std::string& name, const std::string& grid, int seeds = 2, int train_size = 5000,
                       int epochs = 4) {
  return "name = \"" + name + "\"\nseeds = " + std::to_string(seeds) +
         "\n[base]\ntrain-size = " + std::to_string(train_size) +
         "\ntest-size = 100\nepochs = " + std::to_string(epochs) +
         "\nhidden = [64]\niw-samples = 5\niw-examples = 100\nbatch = 100\n[grid]\n" + grid + "\n";
}

using vae::testing::q;
using vae::testing::write;

// The final database holds exactly the expected runs, each done once (one
// successful attempt), every epoch recorded once, and is intact.
void check_consistent(const std::string& db, int64_t runs, int64_t epochs) {
  INFO("database " << db);
  CHECK(q(db, "SELECT count(*) FROM runs") == runs);
  CHECK(q(db, "SELECT count(*) FROM runs WHERE status = 'done'") == runs);
  CHECK(q(db, "SELECT count(*) FROM attempts WHERE outcome = 'done'") == runs);
  CHECK(
      q(db,
        "SELECT count(*) FROM (SELECT run_id FROM attempts WHERE outcome = 'done' GROUP BY run_id HAVING count(*) > 1)") ==
      0);
  CHECK(q(db, "SELECT count(*) FROM attempts WHERE outcome IS NULL") == 0);
  CHECK(q(db, "SELECT count(*) FROM runs WHERE epochs_done != " + std::to_string(epochs)) == 0);
  // epochs 1..E, each once, the same metric names for every run and epoch
  CHECK(q(db, "SELECT count(*) FROM (SELECT run_id FROM epoch_metrics GROUP BY run_id HAVING "
              "count(DISTINCT epoch) != " +
                  std::to_string(epochs) + " OR max(epoch) != " + std::to_string(epochs) + ")") == 0);
  CHECK(
      q(db, "SELECT count(DISTINCT n) FROM (SELECT count(*) AS n FROM epoch_metrics GROUP BY run_id, epoch)") ==
      1);
  CHECK(q(db, "SELECT count(*) FROM (SELECT run_id FROM metrics WHERE name = 'test_nll' GROUP BY run_id)") ==
        runs);
  store::Db d(db, store::Db::Mode::ReadOnly);
  auto ic = d.prepare("PRAGMA integrity_check");
  REQUIRE(ic.step());
  CHECK(ic.get_text(0) == "ok");
}

}  // namespace

TEST_CASE("vae sweep run prints the plan, runs and table, a rerun does nothing and a dry run changes nothing",
          "[e2e]") {
  TempDir dir;
  std::string file = write(dir, "s.toml",
                           tiny_sweep("e2e_basic", "latent = [2, 3]\nbeta = [1, 4]", 1, 1000, 2));
  std::string db = dir.file("results/results.db");

  Proc dry = vae::testing::run_vae({"sweep", "run", file, "--db", db, "--dry-run"}, dir.file("dry"));
  CHECK(dry.wait() == 0);
  CHECK(dry.out().find("4 runs = latent(2) x beta(2) x seed(1)") != std::string::npos);
  CHECK(dry.out().find("latent=3 beta=4 seed=0") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(db));

  Proc p = vae::testing::run_vae({"sweep", "run", file, "--db", db, "--jobs", "2"}, dir.file("run1"));
  INFO(p.err());
  REQUIRE(p.wait() == 0);
  CHECK(p.err().find("to do 4") != std::string::npos);
  CHECK(p.err().find("[4/4] done") != std::string::npos);
  CHECK(p.out().find("test_nll (lower is better): mean ± standard error over 1 seed") != std::string::npos);
  CHECK(p.out().find("beta=4") != std::string::npos);
  check_consistent(db, 4, 2);
  // provenance of every run
  CHECK(q(db, "SELECT count(*) FROM attempts a JOIN sessions s USING (session_id) WHERE s.compiler != '' "
              "AND s.blas LIKE 'OpenBLAS%' AND s.cpu != '' AND s.host != '' AND a.blas_threads = 1 "
              "AND s.command_line LIKE '%sweep run%'") == 4);
  CHECK(q(db, "SELECT count(*) FROM artifacts WHERE kind = 'last'") == 4);
  CHECK(q(db, "SELECT count(*) FROM data_files") >= 4);

  Proc again = vae::testing::run_vae({"sweep", "run", file, "--db", db, "--jobs", "2"}, dir.file("run2"));
  CHECK(again.wait() == 0);
  CHECK(again.err().find("already done 4") != std::string::npos);
  CHECK(again.err().find("to do 0") != std::string::npos);
  CHECK(q(db, "SELECT sum(attempts) FROM runs") == 4);

  // the read side on the same database
  Proc table = vae::testing::run_vae({"table", "--db", db, "--sweep", "e2e_basic", "--format", "markdown"},
                                     dir.file("t"));
  CHECK(table.wait() == 0);
  CHECK(table.out().rfind("| latent | beta=1 | beta=4 |", 0) == 0);
  Proc csv = vae::testing::run_vae({"export", "--db", db, "--format", "csv"}, dir.file("e"));
  CHECK(csv.wait() == 0);
  std::string out = csv.out();
  CHECK(std::count(out.begin(), out.end(), '\n') == 5);
  Proc query = vae::testing::run_vae(
      {"query", "--db", db, "--where", "latent=3", "--where", "beta>=2", "--format", "json"}, dir.file("q"));
  CHECK(query.wait() == 0);
  auto j = nlohmann::json::parse(query.out());
  REQUIRE(j.size() == 1);
  CHECK(j[0]["test_nll"].is_number());
  Proc sql = vae::testing::run_vae({"query", "--db", db, "--sql", "DELETE FROM runs"}, dir.file("sql"));
  CHECK(sql.wait() == 2);
  CHECK(q(db, "SELECT count(*) FROM runs") == 4);
  std::string id = j[0]["run_id"].get<std::string>();
  Proc show = vae::testing::run_vae({"runs", "show", id.substr(0, 8), "--db", db}, dir.file("show"));
  CHECK(show.wait() == 0);
  CHECK(show.out().find("learning curve (2 epochs)") != std::string::npos);
  CHECK(show.out().find("blas       OpenBLAS") != std::string::npos);
}

TEST_CASE("bad input: one line, exit 2", "[e2e]") {
  TempDir dir;
  std::string file = write(dir, "bad.toml", "name = \"b\"\n[grid]\nlatent = [2, 5]\nbeat = [1, 2]\n");
  Proc p = vae::testing::run_vae({"sweep", "run", file, "--db", dir.file("r.db")}, dir.file("bad"));
  CHECK(p.wait() == 2);
  CHECK(p.err() == "vae sweep run: " + file +
                       ":4: key 'beat' in [grid]: not a `vae train` setting (did you mean 'beta'?)\n");
  CHECK_FALSE(std::filesystem::exists(dir.file("r.db")));
  Proc opt = vae::testing::run_vae({"sweep", "run", file, "--jobs", "x"}, dir.file("opt"));
  CHECK(opt.wait() == 2);
  std::string opt_err = opt.err();
  CHECK(std::count(opt_err.begin(), opt_err.end(), '\n') == 1);
  Proc unknown = vae::testing::run_vae({"table", "--colour"}, dir.file("unk"));
  CHECK(unknown.wait() == 2);
  Proc nodb = vae::testing::run_vae({"runs", "--db", dir.file("none.db")}, dir.file("nodb"));
  CHECK(nodb.wait() == 1);
  CHECK(nodb.err().find("no results database") != std::string::npos);
  for (const char* cmd : {"sweep", "runs", "query", "table", "export"}) {
    std::vector<std::string> args{cmd};
    if (std::string(cmd) == "sweep") args.push_back("run");
    args.push_back("--help");
    Proc h = vae::testing::run_vae(args, dir.file(std::string("help_") + cmd));
    CHECK(h.wait() == 0);
    CHECK(h.out().find("--db") != std::string::npos);
  }
}

TEST_CASE("failed and diverged runs: recorded, the sweep goes on, exit 1, --retry-failed", "[e2e]") {
  TempDir dir;
  std::string file = write(dir, "f.toml", tiny_sweep("e2e_fail", "lr = [0.001, 1e6]", 1, 1000, 2));
  std::string db = dir.file("r.db");
  Proc p = vae::testing::run_vae({"sweep", "run", file, "--db", db, "--delete-checkpoints"}, dir.file("f1"));
  CHECK(p.wait() == 1);
  // the done run's checkpoints are gone, the diverged one's kept
  CHECK(q(db, "SELECT count(*) FROM artifacts a JOIN runs r USING (run_id) WHERE r.status = 'done'") == 0);
  {
    store::Db d(db, store::Db::Mode::ReadOnly);
    auto s = d.prepare("SELECT out_dir FROM runs WHERE status = 'done'");
    REQUIRE(s.step());
    CHECK_FALSE(std::filesystem::exists(std::filesystem::path(s.get_text(0)) / "last.ckpt"));
  }
  CHECK(p.err().find("DIVERGED") != std::string::npos);
  CHECK(p.err().find("1 diverged") != std::string::npos);
  CHECK(q(db, "SELECT count(*) FROM runs WHERE status = 'done'") == 1);
  // the message names the non-finite loss (nan or inf: which one depends on the draws)
  CHECK(q(db, "SELECT count(*) FROM runs WHERE status = 'diverged' AND message LIKE 'loss is %' AND "
              "(message LIKE '%nan%' OR message LIKE '%inf%')") == 1);
  Proc again = vae::testing::run_vae({"sweep", "run", file, "--db", db}, dir.file("f2"));
  CHECK(again.wait() == 1);
  CHECK(again.err().find("(skipped; --retry-failed runs them again)") != std::string::npos);
  CHECK(q(db, "SELECT sum(attempts) FROM runs") == 2);
  Proc retry = vae::testing::run_vae({"sweep", "run", file, "--db", db, "--retry-failed"}, dir.file("f3"));
  CHECK(retry.wait() == 1);
  CHECK(q(db, "SELECT attempts FROM runs WHERE status = 'diverged'") == 2);
  CHECK(q(db, "SELECT count(*) FROM attempts WHERE outcome = 'diverged'") == 2);
  Proc list = vae::testing::run_vae({"runs", "--db", db, "--status", "diverged"}, dir.file("f4"));
  CHECK(list.wait() == 0);
  CHECK(list.out().find("1 runs, 1 diverged") != std::string::npos);
}

TEST_CASE("SIGKILL of the runner mid-sweep, then a restart: every run done once", "[e2e]") {
  TempDir dir;
  const int epochs = 4;
  std::string file = write(dir, "k.toml", tiny_sweep("e2e_kill", "latent = [2, 3, 4]", 2, 5000, epochs));
  std::string db = dir.file("r.db");
  std::mt19937 gen(std::random_device{}());
  // 1: killed while a run is mid-training (after an epoch, before its end);
  // 2, 3: killed at a random moment
  for (int kill = 1; kill <= 3; ++kill) {
    Proc p = vae::testing::start_vae({"sweep", "run", file, "--db", db, "--jobs", "2", "--no-table"},
                                     dir.file("kill" + std::to_string(kill)));
    if (kill == 1) {
      bool mid = vae::testing::wait_until(
          [&] {
            if (!std::filesystem::exists(db)) return false;
            try {
              return q(db, "SELECT count(*) FROM runs WHERE status = 'running' AND epochs_done >= 1") > 0;
            } catch (const std::exception&) {
              return false;
            }
          },
          60);
      REQUIRE(mid);
    } else {
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::uniform_int_distribution<int>(100, 1500)(gen)));
    }
    if (!p.running()) break;  // finished before the kill
    ::kill(p.pid, SIGKILL);
    CHECK(p.wait() == 128 + SIGKILL);
    // its workers die with it (PR_SET_PDEATHSIG): no claimant stays alive
    std::vector<pid_t> claimants;
    {
      store::Db d(db, store::Db::Mode::ReadOnly);
      auto s = d.prepare("SELECT claim_pid FROM runs WHERE status = 'running'");
      while (s.step()) claimants.push_back(pid_t(s.get_int(0)));
    }
    CHECK(vae::testing::wait_until(
        [&] {
          for (pid_t c : claimants)
            if (vae::testing::pid_alive(c)) return false;
          return true;
        },
        10));
    // the first kill came mid-training: its attempt is left open, as after a power
    // loss (later kills may come before the restarted runner claims anything)
    if (kill == 1) CHECK(q(db, "SELECT count(*) FROM attempts WHERE outcome IS NULL") >= 1);
  }
  Proc restart = vae::testing::run_vae({"sweep", "run", file, "--db", db, "--jobs", "2", "--no-table"},
                                       dir.file("restart"));
  INFO(restart.err());
  CHECK(restart.wait() == 0);
  check_consistent(db, 6, epochs);
  // the run killed mid-training resumed from its checkpoint
  CHECK(q(db, "SELECT count(*) FROM attempts WHERE outcome = 'interrupted'") >= 1);
  CHECK(q(db, "SELECT count(*) FROM attempts WHERE attempt > 1 AND resumed_from_epoch >= 1") >= 1);
  CHECK(q(db, "SELECT count(*) FROM runs WHERE wall_s > 0") == 6);
}

TEST_CASE("SIGKILL of a worker: the runner resumes its run with another worker", "[e2e]") {
  TempDir dir;
  const int epochs = 4;
  std::string file = write(dir, "w.toml", tiny_sweep("e2e_worker", "latent = [2, 3]", 2, 5000, epochs));
  std::string db = dir.file("r.db");
  Proc p = vae::testing::start_vae({"sweep", "run", file, "--db", db, "--jobs", "2", "--no-table"},
                                   dir.file("w"));
  int64_t victim = -1;
  std::string victim_run;
  // The worker is stopped (SIGSTOP) before the check that it still holds its
  // unfinished run, so it cannot finish the run between the check and the kill.
  auto still_holds = [&] {
    store::Db d(db, store::Db::Mode::ReadOnly);
    auto s = d.prepare("SELECT count(*) FROM runs WHERE run_id = ? AND status = 'running' AND claim_pid = ?");
    s.bind(1, victim_run);
    s.bind(2, victim);
    return s.step() && s.get_int(0) == 1;
  };
  REQUIRE(vae::testing::wait_until(
      [&] {
        if (!std::filesystem::exists(db)) return false;
        try {
          store::Db d(db, store::Db::Mode::ReadOnly);
          auto s = d.prepare(
              "SELECT claim_pid, run_id FROM runs WHERE status = 'running' AND epochs_done >= 1 LIMIT 1");
          if (!s.step()) return false;
          victim = s.get_int(0);
          victim_run = s.get_text(1);
          ::kill(pid_t(victim), SIGSTOP);
          if (still_holds()) return true;
          ::kill(pid_t(victim), SIGCONT);
          return false;
        } catch (const std::exception&) {
          if (victim > 0) ::kill(pid_t(victim), SIGCONT);
          return false;
        }
      },
      60));
  ::kill(pid_t(victim), SIGKILL);
  INFO(p.err());
  CHECK(p.wait() == 0);
  CHECK(p.err().find("killed by signal 9") != std::string::npos);
  check_consistent(db, 4, epochs);
  CHECK(q(db, "SELECT attempts FROM runs WHERE run_id = '" + victim_run + "'") == 2);
  // One interrupted attempt. Its message comes from whichever notices first: the
  // runner reaping the worker ("killed by signal 9") or the other worker finding
  // the claim of a dead process when it looks for its next run.
  CHECK(q(db, "SELECT count(*) FROM attempts WHERE run_id = '" + victim_run +
                  "' AND outcome = 'interrupted' AND (message LIKE '%killed by signal 9%' OR "
                  "message LIKE '%process " +
                  std::to_string(victim) + " on % stopped without finishing%')") == 1);
}

TEST_CASE("runners on one database at once: no lock error, no run done twice", "[e2e]") {
  TempDir dir;
  const int epochs = 2;
  // sweeps a and b share the runs with latent = 3
  std::string a = write(dir, "a.toml", tiny_sweep("e2e_a", "latent = [2, 3]", 3, 3000, epochs));
  std::string b = write(dir, "b.toml", tiny_sweep("e2e_b", "latent = [3, 4]", 3, 3000, epochs));
  std::string db = dir.file("r.db");
  std::vector<Proc> ps;
  ps.push_back(
      vae::testing::start_vae({"sweep", "run", a, "--db", db, "--jobs", "2", "--no-table"}, dir.file("a1")));
  ps.push_back(
      vae::testing::start_vae({"sweep", "run", a, "--db", db, "--jobs", "1", "--no-table"}, dir.file("a2")));
  ps.push_back(
      vae::testing::start_vae({"sweep", "run", b, "--db", db, "--jobs", "1", "--no-table"}, dir.file("b1")));
  for (auto& p : ps) {
    INFO(p.err());
    CHECK(p.wait() == 0);
    CHECK(p.err().find("locked") == std::string::npos);
    CHECK(p.err().find("busy") == std::string::npos);
  }
  check_consistent(db, 9, epochs);
  CHECK(q(db, "SELECT count(*) FROM attempts") == 9);  // nothing ran twice
  CHECK(q(db, "SELECT count(*) FROM sweep_runs") == 12);
}

TEST_CASE("Ctrl-C: workers finish their epoch, runs go back to the queue, exit 130", "[e2e]") {
  TempDir dir;
  const int epochs = 4;
  std::string file = write(dir, "i.toml", tiny_sweep("e2e_int", "latent = [2, 3]", 1, 5000, epochs));
  std::string db = dir.file("r.db");
  Proc p = vae::testing::start_vae({"sweep", "run", file, "--db", db, "--jobs", "2", "--no-table"},
                                   dir.file("i"));
  REQUIRE(vae::testing::wait_until(
      [&] {
        if (!std::filesystem::exists(db)) return false;
        try {
          return q(db, "SELECT count(*) FROM runs WHERE status = 'running' AND epochs_done >= 1") > 0;
        } catch (const std::exception&) {
          return false;
        }
      },
      60));
  ::kill(p.pid, SIGINT);
  INFO(p.err());
  int rc = p.wait();
  if (q(db, "SELECT count(*) FROM runs WHERE status = 'done'") < 2) {  // not finished before the signal
    CHECK(rc == 130);
    CHECK(p.err().find("stopping: each worker finishes its current epoch") != std::string::npos);
    CHECK(q(db, "SELECT count(*) FROM attempts WHERE outcome = 'stopped'") >= 1);
    CHECK(q(db, "SELECT count(*) FROM runs WHERE status = 'running'") == 0);
  }
  Proc again = vae::testing::run_vae({"sweep", "run", file, "--db", db, "--jobs", "2", "--no-table"},
                                     dir.file("i2"));
  CHECK(again.wait() == 0);
  check_consistent(db, 2, epochs);
}
