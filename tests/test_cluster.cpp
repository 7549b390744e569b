// Running a sweep on a cluster: sharding by run identity, folding shard databases
// into one (vae merge), the sbatch scripts of `vae sweep slurm` (run here without
// Slurm, task by task, as Slurm would), and SIGTERM as a scheduler sends it.
// The run on a real Slurm is tests/slurm/slurm_e2e.sh.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "models/settings.hpp"
#include "process_util.hpp"
#include "store/merge.hpp"
#include "store/results_store.hpp"
#include "store/schema.hpp"
#include "store_test_util.hpp"
#include "sweep/slurm.hpp"
#include "sweep/worker.hpp"
#include "train/run.hpp"

using namespace vae;
using vae::testing::Proc;
using vae::testing::TempDir;

namespace {

const char* kSweep =
    "name = \"cl\"\nseeds = 3\n[grid]\nlatent = [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\nbeta = [1, 2, 4]\n";

sweep::Plan plan_of(const std::string& text) {
  return sweep::make_plan(sweep::parse_sweep_text(text, "cl.toml"), vae::testing::fake_data_files);
}

// Results a fake trainer gives: a function of the settings only, as a deterministic
// training run's are. `offset` makes a different result for the same run.
RunResult fake_train(const ConfigMap& c, RunHooks* hooks, double offset = 0) {
  const double latent = double(std::get<int64_t>(c.at("latent"))),
               seed = double(std::get<int64_t>(c.at("seed")));
  for (int e = 1; e <= 2; ++e)
    if (hooks) hooks->on_epoch(e, {{"train_loss", 100.0 - e - latent}});
  RunResult r;
  r.status = "done";
  r.epochs_done = 2;
  r.metrics = {{"test_elbo", -latent - offset},
               {"test_nll", 90.0 + seed + offset},
               {"train_s", 1.0 + double(std::rand() % 1000)}};  // a timing: differs every time
  r.unit_vectors = {{"kl_per_dim", {0.5}}};
  return r;
}

// A database holding `runs` of the sweep, every one trained (by a worker with a session).
void fill(const std::string& path, const std::string& text, const std::vector<store::PlannedRun>& runs,
          double offset = 0, int64_t max_runs = -1) {
  sweep::Plan plan = plan_of(text);
  int64_t sweep_id, session;
  {
    auto db = store::open_for_writing(path);
    store::ResultsStore st(*db);
    sweep_id = st.upsert_sweep(plan.spec.name, "cl.toml", text);
    st.register_runs(sweep_id, runs);
    session = st.start_session(sweep_id, "vae sweep run cl.toml", 1);
  }
  sweep::WorkerOptions o;
  o.db_path = path;
  o.runs_dir = path + ".runs";
  o.sweep_id = sweep_id;
  o.session_id = session;
  o.max_runs = max_runs;
  sweep::run_worker(o, [&](const ConfigMap& c, const RunOptions&, RunHooks* h) {
    return fake_train(c, h, offset);
  });
}

// What a merged database must agree on, whatever the order of the shards: every
// run's identity, status, settings, metrics per epoch and final, membership.
std::string dump(const std::string& path) {
  store::Db db(path, store::Db::Mode::ReadOnly);
  std::string out;
  const char* queries[] = {
      "SELECT run_id, status, epochs_done, config_json, identity_json, kl_per_dim, attempts FROM runs ORDER BY run_id",
      "SELECT run_id, name, value FROM metrics WHERE substr(name, -2) <> '_s' ORDER BY run_id, name",
      "SELECT run_id, epoch, name, value FROM epoch_metrics ORDER BY run_id, epoch, name",
      "SELECT run_id, key, kind, value FROM params ORDER BY run_id, key",
      "SELECT run_id, path, sha256 FROM data_files ORDER BY run_id, path",
      "SELECT s.name, r.run_id, r.position, r.part, r.point FROM sweep_runs r JOIN sweeps s USING (sweep_id) "
      "ORDER BY s.name, r.position",
      "SELECT a.run_id, a.attempt, a.outcome, a.epochs_done, s.host, s.pid, s.started_at FROM attempts a "
      "LEFT JOIN sessions s USING (session_id) ORDER BY a.run_id, a.attempt",
      "SELECT count(*) FROM sessions",
  };
  for (const char* q : queries) {
    auto s = db.prepare(q);
    while (s.step()) {
      for (int i = 0; i < s.columns(); ++i) out += s.get_text(i) + "|";
      out += "\n";
    }
    out += "--\n";
  }
  return out;
}

std::string check_intact(const std::string& path) {
  store::Db db(path, store::Db::Mode::ReadOnly);
  auto ic = db.prepare("PRAGMA integrity_check");
  ic.step();
  std::string r = ic.get_text(0);
  auto fk = db.prepare("PRAGMA foreign_key_check");
  if (fk.step()) r += " foreign key violation in " + fk.get_text(0);
  return r;
}

using vae::testing::q;
using vae::testing::write;

}  // namespace

TEST_CASE("shard of a run: the first 8 bytes of its id modulo N", "[cluster]") {
  const std::string zeros(48, '0');
  CHECK(sweep::shard_of("00000000000000ff" + zeros, 16) == 15);
  CHECK(sweep::shard_of("0000000000000100" + zeros, 16) == 0);
  CHECK(sweep::shard_of("ffffffffffffffff" + zeros, 10) == 5);  // 18446744073709551615 mod 10
  CHECK(sweep::shard_of("00000000000000ff" + std::string(48, 'f'), 7) == 255 % 7);  // bytes 9.. ignored
  CHECK(sweep::shard_of("0123456789abcdef" + zeros, 1) == 0);

  auto s = sweep::parse_shard("3/8");
  CHECK(s.index == 3);
  CHECK(s.count == 8);
  for (const char* bad : {"8/8", "1", "/2", "1/", "a/2", "1/0", "-1/2", "1/2/3", " 1/2"}) {
    INFO(bad);
    CHECK_THROWS_AS(sweep::parse_shard(bad), sweep::SweepError);
  }
}

TEST_CASE("shards are disjoint and cover the plan, for any N", "[cluster]") {
  sweep::Plan plan = plan_of(kSweep);
  REQUIRE(plan.runs.size() == 90);
  for (int n = 1; n <= 13; ++n) {
    INFO("N = " << n);
    std::multiset<std::string> seen;
    for (int i = 0; i < n; ++i) {
      sweep::Plan shard = sweep::select_shard(plan, {i, n});
      CHECK(shard.points.size() == shard.runs.size());
      int64_t last = -1;
      for (const auto& r : shard.runs) {
        seen.insert(r.run_id);
        CHECK(sweep::shard_of(r.run_id, n) == i);
        CHECK(plan.runs[size_t(r.position)].run_id == r.run_id);  // position in the whole sweep
        CHECK(r.position > last);                                 // sweep order
        last = r.position;
      }
    }
    CHECK(seen.size() == plan.runs.size());  // no run twice
    std::set<std::string> distinct(seen.begin(), seen.end());
    CHECK(distinct.size() == plan.runs.size());
    for (const auto& r : plan.runs) CHECK(distinct.count(r.run_id) == 1);
  }
  // the split is not degenerate: with 4 shards of 90 runs each has some
  for (int i = 0; i < 4; ++i) CHECK(sweep::select_shard(plan, {i, 4}).runs.size() >= 10);
}

TEST_CASE("merge: the shards give the database a single process gives, idempotent, in any order", "[cluster]") {
  TempDir dir;
  sweep::Plan plan = plan_of(kSweep);
  const std::string local = dir.file("local.db");
  fill(local, kSweep, plan.runs);
  std::vector<std::string> shards;
  for (int i = 0; i < 3; ++i) {
    shards.push_back(dir.file("shard_" + std::to_string(i) + ".db"));
    fill(shards.back(), kSweep, sweep::select_shard(plan, {i, 3}).runs);
  }
  const std::string a = dir.file("a.db"), b = dir.file("b.db");
  int64_t copied = 0;
  {
    auto out = store::open_for_writing(a);
    for (const auto& s : shards) {
      auto r = store::merge_database(*out, s);
      CHECK(r.conflicts.empty());
      CHECK(r.identical == 0);
      copied += r.copied;
    }
    CHECK(copied == 90);
    // again: nothing changes
    const std::string before = dump(a);
    for (const auto& s : shards) {
      auto r = store::merge_database(*out, s);
      CHECK(r.copied == 0);
      CHECK(r.conflicts.empty());
      CHECK(r.identical == int64_t(sweep::select_shard(plan, {int(&s - &shards[0]), 3}).runs.size()));
    }
    CHECK(dump(a) == before);
  }
  {
    auto out = store::open_for_writing(b);
    for (int i : {2, 0, 1}) store::merge_database(*out, shards[size_t(i)]);
    store::merge_database(*out, shards[2]);
  }
  CHECK(dump(a) == dump(b));
  CHECK(check_intact(a) == "ok");
  CHECK(q(a, "SELECT count(*) FROM sessions") == 3);
  CHECK(q(a, "SELECT count(*) FROM attempts WHERE session_id IS NULL") == 0);
  CHECK(q(a,
          "SELECT count(*) FROM attempts a JOIN sessions s USING (session_id) JOIN sweeps w USING (sweep_id) "
          "WHERE w.name = 'cl'") == 90);
  // runs, settings, metrics and membership (with positions) as a single process records them;
  // only the provenance differs (three sessions instead of one)
  auto without_provenance = [](std::string d) {
    auto cut = d.find("--\n", 0);
    for (int i = 0; i < 5; ++i) cut = d.find("--\n", cut + 3);
    return d.substr(0, cut);
  };
  CHECK(without_provenance(dump(a)) == without_provenance(dump(local)));
}

TEST_CASE("merge: a run with other results is a conflict, reported and not overwritten", "[cluster]") {
  TempDir dir;
  sweep::Plan plan = plan_of(kSweep);
  std::vector<store::PlannedRun> two(plan.runs.begin(), plan.runs.begin() + 2);
  const std::string x = dir.file("x.db"), y = dir.file("y.db"), out_path = dir.file("out.db");
  fill(x, kSweep, two);
  fill(y, kSweep, two, 0.5);  // same runs, other numbers
  auto out = store::open_for_writing(out_path);
  CHECK(store::merge_database(*out, x).copied == 2);
  const std::string before = dump(out_path);
  auto r = store::merge_database(*out, y);
  CHECK(r.copied == 0);
  REQUIRE(r.conflicts.size() == 2);
  CHECK(r.conflicts[0].why.find("test_elbo") == 0);
  CHECK(r.conflicts[0].why.find(" here, ") != std::string::npos);
  CHECK(r.conflicts[0].why.find("in y.db") != std::string::npos);
  CHECK(dump(out_path) == before);

  // a different status is a conflict too
  {
    store::Db d(y);
    d.exec("UPDATE runs SET status = 'failed' WHERE run_id = '" + two[0].run_id + "'");
    d.exec("UPDATE metrics SET value = value - 0.5 WHERE name = 'test_nll'");
    d.exec("UPDATE metrics SET value = value + 0.5 WHERE name = 'test_elbo'");
  }
  r = store::merge_database(*out, y);
  REQUIRE(r.conflicts.size() == 1);
  CHECK(r.conflicts[0].run_id == two[0].run_id);
  CHECK(r.conflicts[0].why == "status done here, failed in y.db");
  CHECK(r.identical == 1);
  CHECK(dump(out_path) == before);
}

TEST_CASE("merge: unfinished runs are not copied, and a finished copy replaces an unfinished one",
          "[cluster]") {
  TempDir dir;
  sweep::Plan plan = plan_of(kSweep);
  std::vector<store::PlannedRun> three(plan.runs.begin(), plan.runs.begin() + 3);
  const std::string part = dir.file("part.db"), full = dir.file("full.db"), out_path = dir.file("out.db");
  fill(part, kSweep, three, 0, 2);  // the third stays queued
  fill(full, kSweep, three);
  auto out = store::open_for_writing(out_path);
  auto r = store::merge_database(*out, part);
  CHECK(r.copied == 2);
  CHECK(r.unfinished == 1);
  CHECK(q(out_path, "SELECT count(*) FROM runs") == 2);
  CHECK(q(out_path, "SELECT count(*) FROM sweep_runs") == 2);
  // an unfinished run in OUT (as an interrupted local sweep run leaves it) gives way to
  // the finished one, and keeps its sweep memberships
  {
    store::ResultsStore st(*out);
    int64_t other = st.upsert_sweep("other", "o.toml", "");
    st.register_runs(other, three);
  }
  CHECK(q(out_path, "SELECT count(*) FROM runs WHERE status = 'queued'") == 1);
  r = store::merge_database(*out, full);
  CHECK(r.copied == 1);
  CHECK(r.identical == 2);
  CHECK(r.conflicts.empty());
  CHECK(q(out_path, "SELECT count(*) FROM runs WHERE status = 'done'") == 3);
  CHECK(q(out_path, "SELECT count(*) FROM sweep_runs JOIN sweeps USING (sweep_id) WHERE name = 'other'") == 3);
  CHECK(q(out_path, "SELECT count(*) FROM sweep_runs JOIN sweeps USING (sweep_id) WHERE name = 'cl'") == 3);
  CHECK(q(out_path, "SELECT count(*) FROM metrics WHERE run_id = '" + three[2].run_id + "'") == 3);
  CHECK(check_intact(out_path) == "ok");
}

TEST_CASE("merge copies every table of the schema", "[cluster]") {
  TempDir dir;
  auto db = store::open_for_writing(dir.file("r.db"));
  std::set<std::string> tables;
  auto s = db->prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'");
  while (s.step()) tables.insert(s.get_text(0));
  const auto& known = store::merged_tables();
  // a migration that adds a table must teach store/merge.cpp to copy it
  CHECK(tables == std::set<std::string>(known.begin(), known.end()));
}

namespace {

// Tiny trainings: a few epochs of a fraction of a second each.
std::string tiny_sweep(const std::string& name, int epochs, int train_size = 5000) {
  return "name = \"" + name + "\"\nseeds = 2\n[base]\ntrain-size = " + std::to_string(train_size) +
         "\ntest-size = 100\nepochs = " + std::to_string(epochs) +
         "\nhidden = [64]\niw-samples = 5\niw-examples = 100\nbatch = 100\n[grid]\nlatent = [2, 3]\n";
}

std::map<std::string, std::map<std::string, double>> final_metrics(const std::string& path) {
  std::map<std::string, std::map<std::string, double>> m;
  store::Db db(path, store::Db::Mode::ReadOnly);
  auto s = db.prepare("SELECT run_id, name, value FROM metrics JOIN runs USING (run_id) WHERE status = 'done' "
                      "AND substr(name, -2) <> '_s'");  // timings aside
  while (s.step()) m[s.get_text(0)][s.get_text(1)] = s.get_double(2);
  return m;
}

std::string slurp(const std::string& path) { return Proc::slurp(path); }

}  // namespace

TEST_CASE("vae sweep slurm scripts, run task by task as Slurm would, merge into what a local run gives",
          "[e2e][cluster]") {
  TempDir dir;
  const std::string file = write(dir, "q.toml", tiny_sweep("e2e_slurm", 2));
  const std::string local = dir.file("local.db"), merged = dir.file("merged.db"), work = dir.file("work");
  Proc l = vae::testing::run_vae({"sweep", "run", file, "--db", local, "--no-table"}, dir.file("local"));
  INFO(l.err());
  REQUIRE(l.wait() == 0);

  Proc w = vae::testing::run_vae({"sweep", "slurm", file, "--array", "2", "--db", merged, "--workdir", work,
                                  "--partition", "short", "--time", "0:30:00", "--mem", "2G", "--requeue"},
                                 dir.file("write"));
  INFO(w.err());
  REQUIRE(w.wait() == 0);
  const std::string array = slurp(work + "/array.sbatch"), merge = slurp(work + "/merge.sbatch");
  CHECK(w.out().find(array) != std::string::npos);  // printed as written
  for (const char* line :
       {"#SBATCH --array=0-1\n", "#SBATCH --partition=short\n", "#SBATCH --time=0:30:00\n",
        "#SBATCH --mem=2G\n", "#SBATCH --cpus-per-task=1\n", "#SBATCH --requeue\n",
        "export OPENBLAS_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n", "--shard \"$SLURM_ARRAY_TASK_ID/2\""}) {
    INFO(line);
    CHECK(array.find(line) != std::string::npos);
  }
  CHECK(merge.find(" merge '" + merged + "'") != std::string::npos);
  CHECK(merge.find("'" + work + "/shard_0.db'") != std::string::npos);
  CHECK(merge.find("'" + work + "/shard_1.db'") != std::string::npos);
  CHECK(w.err().find("4 runs in 2 tasks") != std::string::npos);

  // each array task as Slurm starts it, then the merge job
  for (int i = 0; i < 2; ++i) {
    const std::string cmd = "SLURM_ARRAY_TASK_ID=" + std::to_string(i) + " SLURM_CPUS_PER_TASK=1 bash " + work +
                            "/array.sbatch > " + dir.file("task" + std::to_string(i) + ".log") + " 2>&1";
    INFO(slurp(dir.file("task" + std::to_string(i) + ".log")));
    CHECK(std::system(cmd.c_str()) == 0);
  }
  CHECK(std::system(("bash " + work + "/merge.sbatch > " + dir.file("merge.log") + " 2>&1").c_str()) == 0);
  INFO(slurp(dir.file("merge.log")));
  const auto a = final_metrics(local), b = final_metrics(merged);
  CHECK(a.size() == 4);
  CHECK(a == b);  // the same run ids, the same numbers bit for bit
  CHECK(q(merged, "SELECT count(*) FROM sweep_runs") == 4);
  CHECK(q(merged, "SELECT count(*) FROM attempts WHERE outcome = 'done'") == 4);
  CHECK(check_intact(merged) == "ok");
  Proc t1 = vae::testing::run_vae({"table", "--db", local, "--sweep", "e2e_slurm", "--rows", "latent"},
                                  dir.file("t1"));
  Proc t2 = vae::testing::run_vae({"table", "--db", merged, "--sweep", "e2e_slurm", "--rows", "latent"},
                                  dir.file("t2"));
  CHECK(t1.wait() == 0);
  CHECK(t2.wait() == 0);
  CHECK(!t1.out().empty());
  CHECK(t1.out() == t2.out());

  // merging again changes nothing; a conflicting shard is reported with exit 1
  Proc again = vae::testing::run_vae({"merge", merged, work + "/shard_0.db", work + "/shard_1.db"},
                                     dir.file("again"));
  CHECK(again.wait() == 0);
  CHECK(again.err().find("0 runs copied") != std::string::npos);
  {
    store::Db d(work + "/shard_1.db");
    d.exec("UPDATE metrics SET value = value + 1 WHERE name = 'test_elbo'");
  }
  Proc conflict = vae::testing::run_vae({"merge", merged, work + "/shard_1.db"}, dir.file("conflict"));
  CHECK(conflict.wait() == 1);
  CHECK(conflict.err().find("vae merge: conflict: run ") != std::string::npos);
  CHECK(final_metrics(merged) == a);
}

TEST_CASE("vae sweep slurm and vae merge: bad input gives one line and a non-zero exit", "[e2e][cluster]") {
  TempDir dir;
  const std::string file = write(dir, "q.toml", tiny_sweep("e2e_bad", 2));
  struct Case {
    std::vector<std::string> args;
    int rc;
    std::string fragment;
  };
  const std::string missing = dir.file("nowhere.db");
  for (const Case& c : std::vector<Case>{
           {{"sweep", "slurm", file}, 2, "--array N"},
           {{"sweep", "slurm", file, "--array", "0"}, 2, "--array 0"},
           {{"sweep", "slurm", file, "--array", "2", "--time", "1 day"}, 2, "--time '1 day'"},
           {{"sweep", "slurm", file, "--array", "2", "--set", "epoch=2"}, 2, "epoch"},
           {{"sweep", "run", file, "--shard", "2/2", "--dry-run"}, 2, "--shard '2/2'"},
           {{"merge", dir.file("out.db")}, 2, "SHARD.db"},
           {{"merge", dir.file("out.db"), missing}, 1, missing},
       }) {
    Proc p = vae::testing::run_vae(c.args, dir.file("bad"));
    const std::string err = p.err();
    INFO(c.args.back() << ": " << err);
    CHECK(p.wait() == c.rc);
    CHECK(err.find(c.fragment) != std::string::npos);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  }
  CHECK(!std::filesystem::exists(dir.file("out.db")));  // nothing written on bad input
}

TEST_CASE("sweep run --dry-run --shard shows that shard's runs", "[e2e][cluster]") {
  TempDir dir;
  const std::string file = write(dir, "q.toml", tiny_sweep("e2e_dry", 2));
  std::set<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    Proc p = vae::testing::run_vae({"sweep", "run", file, "--db", dir.file("r.db"), "--dry-run", "--shard",
                                    std::to_string(i) + "/2"},
                                   dir.file("dry"));
    REQUIRE(p.wait() == 0);
    CHECK(p.out().find("shard " + std::to_string(i) + "/2: ") != std::string::npos);
    CHECK(p.out().find(" of the 4 runs") != std::string::npos);
    std::istringstream lines(p.out());
    std::string line;
    while (std::getline(lines, line))
      if (line.find("  new  ") != std::string::npos || line.find(" new ") != std::string::npos) {
        std::istringstream words(line);
        std::string pos, id;
        words >> pos >> id;
        CHECK(ids.insert(id).second);  // in one shard only
      }
  }
  CHECK(ids.size() == 4);
}

TEST_CASE(
    "SIGTERM to the runner and its workers, as Slurm preempts: checkpoint, requeue, resume, each run done once",
    "[e2e][cluster]") {
  TempDir dir;
  const int epochs = 8;
  const std::string file = write(dir, "t.toml", tiny_sweep("e2e_term", epochs, 10000));
  const std::string db = dir.file("r.db");
  Proc p = vae::testing::start_vae({"sweep", "run", file, "--db", db, "--jobs", "2", "--no-table"},
                                   dir.file("t1"));
  std::vector<pid_t> workers;
  REQUIRE(vae::testing::wait_until(
      [&] {
        if (!std::filesystem::exists(db)) return false;
        try {
          store::Db d(db, store::Db::Mode::ReadOnly);
          auto s = d.prepare("SELECT claim_pid FROM runs WHERE status = 'running' AND epochs_done >= 1");
          workers.clear();
          while (s.step()) workers.push_back(pid_t(s.get_int(0)));
          return !workers.empty();
        } catch (const std::exception&) {
          return false;
        }
      },
      60));
  // Slurm signals every process of the job: the workers get one SIGTERM from it and
  // one from their runner, and must still finish the epoch and save a checkpoint
  for (pid_t w : workers) ::kill(w, SIGTERM);
  ::kill(p.pid, SIGTERM);
  INFO(p.err());
  // a run was mid-way (epoch >= 1 of 8) and three more were to do: the sweep cannot have ended
  const int rc = p.wait();
  CHECK(rc == 130);
  CHECK(q(db, "SELECT count(*) FROM runs WHERE status = 'done'") < 4);
  CHECK(q(db, "SELECT count(*) FROM attempts WHERE outcome = 'stopped'") >= 1);
  CHECK(q(db, "SELECT count(*) FROM attempts WHERE outcome = 'interrupted'") == 0);  // none was killed
  CHECK(q(db, "SELECT count(*) FROM runs WHERE status = 'running'") == 0);
  Proc again = vae::testing::run_vae({"sweep", "run", file, "--db", db, "--jobs", "2", "--no-table"},
                                     dir.file("t2"));
  INFO(again.err());
  CHECK(again.wait() == 0);
  CHECK(q(db, "SELECT count(*) FROM runs WHERE status = 'done'") == 4);
  CHECK(q(db, "SELECT count(*) FROM attempts WHERE outcome = 'done'") == 4);
  CHECK(
      q(db,
        "SELECT count(*) FROM (SELECT run_id FROM attempts WHERE outcome = 'done' GROUP BY run_id HAVING count(*) > 1)") ==
      0);
  CHECK(
      q(db,
        "SELECT count(*) FROM (SELECT run_id FROM epoch_metrics GROUP BY run_id HAVING count(DISTINCT epoch) = " +
            std::to_string(epochs) + " AND max(epoch) = " + std::to_string(epochs) + ")") == 4);
  // a stopped run resumed from its checkpoint, not from the start
  CHECK(q(db, "SELECT count(*) FROM attempts WHERE attempt > 1 AND resumed_from_epoch >= 1") >= 1);
  CHECK(check_intact(db) == "ok");
}

TEST_CASE("a run stopped after its last epoch resumes to the final metrics of an uninterrupted one",
          "[cluster][resume]") {
  // what a preempted task leaves when the signal comes during the last epoch
  ConfigMap c = default_config();
  apply(c, {{"train-size", int64_t(1000)},
            {"test-size", int64_t(200)},
            {"hidden", std::vector<int64_t>{32}},
            {"latent", int64_t(4)},
            {"batch", int64_t(50)},
            {"epochs", int64_t(2)},
            {"iw-samples", int64_t(20)},
            {"iw-examples", int64_t(30)}});
  TempDir whole, parts;
  const RunResult full = train_and_evaluate(c, RunOptions{whole.path.string(), false, true, nullptr}, nullptr);
  REQUIRE(full.status == "done");
  std::atomic<bool> stop{true};  // stops after each epoch's checkpoint
  RunResult r = train_and_evaluate(c, RunOptions{parts.path.string(), false, true, &stop}, nullptr);
  REQUIRE(r.status == "stopped");
  r = train_and_evaluate(c, RunOptions{parts.path.string(), true, true, &stop}, nullptr);
  REQUIRE(r.status == "stopped");
  REQUIRE(r.epochs_done == 2);
  const RunResult rest = train_and_evaluate(c, RunOptions{parts.path.string(), true, true, nullptr}, nullptr);
  REQUIRE(rest.status == "done");
  CHECK(rest.epochs_done == 2);
  for (const auto& [name, value] : full.metrics) {
    if (name.size() > 2 && name.compare(name.size() - 2, 2, "_s") == 0) continue;  // timings
    INFO(name);
    REQUIRE(rest.metrics.count(name) == 1);
    CHECK(rest.metrics.at(name) == value);
  }
}
