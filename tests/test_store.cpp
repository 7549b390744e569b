// The results database: migrations, atomic claims, dead-claimant recovery,
// claim tokens, epoch metrics that replace rather than duplicate, and the worker
// loop with a fake trainer (several threads on one database).
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "models/settings.hpp"
#include "store/provenance.hpp"
#include "store/results_store.hpp"
#include "store/run_identity.hpp"
#include "store/schema.hpp"
#include "store_test_util.hpp"
#include "sweep/worker.hpp"

using namespace vae;
using namespace vae::store;
using vae::testing::TempDir;

namespace {

const char* kSweep = R"(
name = "s"
seeds = 3
[grid]
latent = [2, 5]
)";

std::set<std::string> tables(Db& db) {
  std::set<std::string> out;
  auto s = db.prepare("SELECT name FROM sqlite_schema WHERE type IN ('table', 'view')");
  while (s.step()) out.insert(s.get_text(0));
  return out;
}

Claimant fake_claimant(int64_t pid) {
  Claimant c = Claimant::self(0);
  c.pid = pid;
  c.pid_start = 12345;
  return c;
}

// A pid that is not running now (a child that has exited and been reaped).
int64_t dead_pid() {
  pid_t p = fork();
  if (p == 0) _exit(0);
  int st;
  waitpid(p, &st, 0);
  return p;
}

RunResult fake_run(const ConfigMap& c, const RunOptions& o, RunHooks* hooks, int epochs = 3) {
  RunResult r;
  for (int e = 1; e <= epochs; ++e) {
    if (hooks) hooks->on_epoch(e, {{"train_loss", 100.0 - e}, {"lr", 1e-3}});
    if (o.stop && o.stop->load()) {
      r.status = "stopped";
      r.epochs_done = e;
      return r;
    }
  }
  r.status = "done";
  r.epochs_done = epochs;
  r.metrics = {{"test_elbo", -double(std::get<int64_t>(c.at("latent")))},
               {"test_nll", 90.0 + double(std::get<int64_t>(c.at("seed")))}};
  r.unit_vectors = {{"kl_per_dim", {0.5, 0.25}}, {"code_usage", {0.75, 0.0, 0.25}}};
  return r;
}

}  // namespace

TEST_CASE("migrations from an empty database and from each earlier version", "[store]") {
  TempDir dir;
  const int latest = latest_schema_version();
  REQUIRE(latest >= 3);
  for (int from = 0; from <= latest; ++from) {
    DYNAMIC_SECTION("from version " << from) {
      std::string path = dir.file("m" + std::to_string(from) + ".db");
      {
        Db db(path);
        migrate(db, from);
        CHECK(schema_version(db) == from);
        if (from >= 1) {
          // a run recorded by that version survives the upgrade
          db.exec("INSERT INTO runs(run_id, status, config_json, identity_json, created_at) "
                  "VALUES ('abcd', 'done', '{}', '{}', '2024-01-01T00:00:00Z')");
          db.exec("INSERT INTO metrics VALUES ('abcd', 'test_nll', 88.5)");
        }
      }
      Db db(path);
      migrate(db);
      CHECK(schema_version(db) == latest);
      auto t = tables(db);
      for (const char* name :
           {"sweeps", "runs", "sweep_runs", "params", "epoch_metrics", "metrics", "data_files", "sessions",
            "attempts", "artifacts", "run_metrics", "run_params", "sweep_status"})
        CHECK(t.count(name) == 1);
      if (from >= 1) CHECK(db.scalar_int("SELECT count(*) FROM run_metrics WHERE value = 88.5") == 1);
      CHECK(db.prepare("PRAGMA integrity_check").step());
      // migrating again is a no-op
      migrate(db);
      CHECK(schema_version(db) == latest);
    }
  }
}

TEST_CASE("the database refuses files it does not understand", "[store]") {
  TempDir dir;
  {
    Db db(dir.file("foreign.db"));
    db.exec("CREATE TABLE t(x)");
  }
  Db foreign(dir.file("foreign.db"));
  CHECK_THROWS_WITH(migrate(foreign), Catch::Contains("not a vae results database"));
  {
    Db db(dir.file("newer.db"));
    db.exec("PRAGMA user_version = 999");
  }
  Db newer(dir.file("newer.db"));
  CHECK_THROWS_WITH(migrate(newer), Catch::Contains("newer than this vae build"));
  CHECK_THROWS_WITH(open_for_reading(dir.file("absent.db")), Catch::Contains("no results database"));
  // WAL mode, and read-only connections cannot write
  auto db = open_for_writing(dir.file("ok.db"));
  auto mode = db->prepare("PRAGMA journal_mode");
  REQUIRE(mode.step());
  CHECK(mode.get_text(0) == "wal");
  auto ro = open_for_reading(dir.file("ok.db"));
  CHECK_THROWS(ro->exec("DELETE FROM runs"));
}

TEST_CASE("an older database is upgraded when opened for reading", "[store]") {
  TempDir dir;
  {
    Db db(dir.file("old.db"));
    migrate(db, 1);
  }
  auto db = open_for_reading(dir.file("old.db"));
  CHECK(schema_version(*db) == latest_schema_version());
}

TEST_CASE("runs are registered once, shared between sweeps, membership in order", "[store]") {
  TempDir dir;
  auto db = open_for_writing(dir.file("r.db"));
  auto [plan, sweep_id] = vae::testing::register_sweep(*db, kSweep);
  REQUIRE(plan.runs.size() == 6);
  CHECK(db->scalar_int("SELECT count(*) FROM runs WHERE status = 'queued'") == 6);
  CHECK(db->scalar_int("SELECT count(*) FROM params WHERE key = 'latent'") == 6);
  CHECK(db->scalar_int("SELECT count(*) FROM params WHERE key = 'beta' AND typeof(value) = 'real'") == 6);
  CHECK(db->scalar_int("SELECT count(*) FROM data_files") == 6);
  // a second sweep asking for a subset shares the runs
  auto [plan2, id2] = vae::testing::register_sweep(*db, "name = \"other\"\nseeds = 3\n[base]\nlatent = 5\n");
  CHECK(id2 != sweep_id);
  CHECK(db->scalar_int("SELECT count(*) FROM runs") == 6);
  CHECK(db->scalar_int("SELECT count(*) FROM sweep_runs WHERE sweep_id = " + std::to_string(id2)) == 3);
  // registering again changes nothing; the positions follow the plan
  vae::testing::register_sweep(*db, kSweep);
  CHECK(db->scalar_int("SELECT count(*) FROM sweep_runs") == 9);
  auto s = db->prepare("SELECT run_id FROM sweep_runs WHERE sweep_id = ? ORDER BY position");
  s.bind(1, sweep_id);
  for (const auto& r : plan.runs) {
    REQUIRE(s.step());
    CHECK(s.get_text(0) == r.run_id);
  }
}

TEST_CASE("claims: in order, exclusive, tokens guard every write", "[store]") {
  TempDir dir;
  auto db = open_for_writing(dir.file("r.db"));
  auto [plan, sweep_id] = vae::testing::register_sweep(*db, kSweep);
  ResultsStore st(*db);
  Claimant me = Claimant::self(0);
  auto c1 = st.claim_next(sweep_id, me, dir.file("runs"), 120);
  REQUIRE(c1.state == ClaimState::Claimed);
  CHECK(c1.claim.run_id == plan.runs[0].run_id);
  CHECK(c1.claim.attempt == 1);
  CHECK(c1.claim.out_dir == dir.file("runs") + "/" + plan.runs[0].run_id);
  auto c2 = st.claim_next(sweep_id, me, dir.file("runs"), 120);
  CHECK(c2.claim.run_id == plan.runs[1].run_id);

  // epoch metrics: a re-done epoch replaces
  CHECK(st.record_epoch(c1.claim, 1, {{"train_loss", 5.0}}));
  CHECK(st.record_epoch(c1.claim, 1, {{"train_loss", 4.0}}));
  CHECK(db->scalar_int("SELECT count(*) FROM epoch_metrics") == 1);
  CHECK(db->scalar_int("SELECT value FROM epoch_metrics") == 4);

  // a stale token writes nothing
  Claim stale = c1.claim;
  stale.token = "not-the-token";
  CHECK_FALSE(st.record_epoch(stale, 2, {{"train_loss", 1.0}}));
  CHECK_FALSE(st.heartbeat(stale));
  Outcome done;
  done.status = "done";
  done.epochs_done = 3;
  done.metrics = {{"test_nll", 91.5}, {"test_elbo", NAN}};
  CHECK_FALSE(st.finish(stale, done));
  CHECK(db->scalar_int("SELECT count(*) FROM metrics") == 0);

  // the outcome: status, metrics (NaN stored as NULL), attempt closed, claim cleared
  CHECK(st.finish(c1.claim, done));
  auto r = db->prepare(
      "SELECT status, epochs_done, claim_token IS NULL, wall_s >= 0, ended_at IS NOT NULL FROM runs WHERE run_id = ?");
  r.bind(1, c1.claim.run_id);
  REQUIRE(r.step());
  CHECK(r.get_text(0) == "done");
  CHECK(r.get_int(1) == 3);
  CHECK(r.get_int(2) == 1);
  CHECK(r.get_int(3) == 1);
  CHECK(r.get_int(4) == 1);
  CHECK(db->scalar_int("SELECT count(*) FROM metrics WHERE value IS NULL") == 1);
  CHECK(db->scalar_int("SELECT count(*) FROM attempts WHERE outcome = 'done'") == 1);
  CHECK_FALSE(st.finish(c1.claim, done));  // finished once only

  // stopped: back to the queue, resumable
  Outcome stopped;
  stopped.status = "stopped";
  stopped.epochs_done = 1;
  CHECK(st.finish(c2.claim, stopped));
  CHECK(st.statuses({c2.claim.run_id}).at(c2.claim.run_id) == "queued");
  auto again = st.claim_next(sweep_id, me, dir.file("runs"), 120);
  CHECK(again.claim.run_id == c2.claim.run_id);
  CHECK(again.claim.attempt == 2);

  // failed and diverged are final until requeued
  Outcome failed;
  failed.status = "failed";
  failed.message = "data file damaged";
  CHECK(st.finish(again.claim, failed));
  CHECK(st.requeue_failed(sweep_id) == 1);
  CHECK(st.statuses({c2.claim.run_id}).at(c2.claim.run_id) == "queued");
  CHECK_THROWS(st.finish(c1.claim, Outcome{"weird", "", 0, {}, {}, {}, 0}));
}

TEST_CASE("a run whose claimant died is resumed, its attempt recorded as interrupted", "[store]") {
  TempDir dir;
  auto db = open_for_writing(dir.file("r.db"));
  auto [plan, sweep_id] = vae::testing::register_sweep(*db, "[grid]\nlatent = [2, 3]\n");
  ResultsStore st(*db);
  // claimed by a process of this host that no longer exists
  auto ghost = st.claim_next(sweep_id, fake_claimant(dead_pid()), dir.file("runs"), 120);
  REQUIRE(ghost.state == ClaimState::Claimed);
  CHECK(st.record_epoch(ghost.claim, 1, {{"train_loss", 3.0}}));
  CHECK(st.record_epoch(ghost.claim, 2, {{"train_loss", 2.0}}));
  SweepCounts c = st.counts(sweep_id);
  CHECK(c.interrupted == 1);
  CHECK(c.queued == 1);

  // the next claim takes the interrupted run first (sweep order), as attempt 2
  auto resumed = st.claim_next(sweep_id, Claimant::self(0), dir.file("runs"), 120);
  REQUIRE(resumed.state == ClaimState::Claimed);
  CHECK(resumed.claim.run_id == ghost.claim.run_id);
  CHECK(resumed.claim.attempt == 2);
  CHECK(resumed.claim.resumed_from_epoch == 2);
  CHECK(resumed.claim.out_dir == ghost.claim.out_dir);  // the same checkpoints
  CHECK(db->scalar_int("SELECT count(*) FROM attempts WHERE outcome = 'interrupted' AND epochs_done = 2") == 1);
  // the ghost, were it alive after all, can no longer write
  CHECK_FALSE(st.record_epoch(ghost.claim, 3, {{"train_loss", 1.0}}));
  // a live claim (this process) is respected
  auto mine = st.claim_next(sweep_id, Claimant::self(0), dir.file("runs"), 120);
  CHECK(mine.claim.run_id == plan.runs[1].run_id);
  c = st.counts(sweep_id);
  CHECK(c.running == 2);
  CHECK(c.interrupted == 0);
  // nothing left to claim: both are held by a live process (this one)
  CHECK(st.claim_next(sweep_id, Claimant::self(0), dir.file("runs"), 120).state == ClaimState::WaitForOthers);

  // a claim from another host counts as dead only once its heartbeat is stale
  Claimant remote = fake_claimant(1);
  remote.host = "elsewhere";
  auto [p2, s2] = vae::testing::register_sweep(*db, "name = \"b\"\n[grid]\nlatent = [7]\n");
  auto rc = st.claim_next(s2, remote, dir.file("runs"), 120);
  REQUIRE(rc.state == ClaimState::Claimed);
  CHECK(st.claim_next(s2, Claimant::self(0), dir.file("runs"), 120).state == ClaimState::WaitForOthers);
  db->exec("UPDATE runs SET heartbeat_unix = heartbeat_unix - 1000 WHERE run_id = '" + rc.claim.run_id + "'");
  CHECK(st.claim_next(s2, Claimant::self(0), dir.file("runs"), 120).state == ClaimState::Claimed);
}

TEST_CASE("the runner releases the run of a worker it saw die", "[store]") {
  TempDir dir;
  auto db = open_for_writing(dir.file("r.db"));
  auto [plan, sweep_id] = vae::testing::register_sweep(*db, "[grid]\nlatent = [2, 3]\n");
  ResultsStore st(*db);
  int64_t pid = dead_pid();
  auto c = st.claim_next(sweep_id, fake_claimant(pid), dir.file("runs"), 120);
  auto released = st.release_dead_worker(pid, "interrupted: worker killed by signal 9");
  REQUIRE(released);
  CHECK(*released == c.claim.run_id);
  CHECK(st.statuses({*released}).at(*released) == "queued");
  CHECK_FALSE(st.release_dead_worker(pid, "again"));
  st.mark_failed(*released, "its worker process died 2 times");
  CHECK(st.statuses({*released}).at(*released) == "failed");
}

TEST_CASE("worker loop with a fake trainer: outcomes recorded", "[store]") {
  TempDir dir;
  std::string path = dir.file("r.db");
  int64_t sweep_id;
  {
    auto db = open_for_writing(path);
    sweep_id = vae::testing::register_sweep(*db, "seeds = 2\n[grid]\nlatent = [2, 3, 4]\n").second;
  }
  int calls = 0;
  sweep::WorkerOptions o;
  o.db_path = path;
  o.runs_dir = dir.file("runs");
  o.sweep_id = sweep_id;
  auto report = sweep::run_worker(o, [&](const ConfigMap& c, const RunOptions& ro, RunHooks* h) {
    ++calls;
    CHECK(ro.resume);
    CHECK(ro.quiet);
    int64_t latent = std::get<int64_t>(c.at("latent"));
    if (latent == 3) throw std::runtime_error("mnist.idx: truncated");
    RunResult r = fake_run(c, ro, h);
    if (latent == 4) {
      r.status = "diverged";
      r.message = "loss is nan at epoch 2";
    }
    return r;
  });
  CHECK(calls == 6);
  CHECK(report.done == 2);
  CHECK(report.failed == 2);
  CHECK(report.diverged == 2);
  Db db(path);
  CHECK(db.scalar_int(
            "SELECT count(*) FROM runs WHERE status = 'failed' AND message = 'mnist.idx: truncated'") == 2);
  CHECK(db.scalar_int("SELECT count(*) FROM runs WHERE status = 'diverged'") == 2);
  CHECK(db.scalar_int("SELECT count(*) FROM epoch_metrics") == 4 * 3 * 2);
  CHECK(db.scalar_int("SELECT count(*) FROM runs WHERE kl_per_dim = "
                      "'{\"code_usage\":[0.75,0.0,0.25],\"kl_per_dim\":[0.5,0.25]}'") == 4);
}

TEST_CASE("worker stop request: the run goes back to the queue", "[store]") {
  TempDir dir;
  std::string path = dir.file("r.db");
  int64_t sweep_id;
  {
    auto db = open_for_writing(path);
    sweep_id = vae::testing::register_sweep(*db, "[grid]\nlatent = [2, 3]\n").second;
  }
  std::atomic<bool> stop{false};
  sweep::WorkerOptions o;
  o.db_path = path;
  o.runs_dir = dir.file("runs");
  o.sweep_id = sweep_id;
  o.stop = &stop;
  auto report = sweep::run_worker(o, [&](const ConfigMap& c, const RunOptions& ro, RunHooks* h) {
    stop = true;                                                  // as a SIGTERM would, during the first epoch
    std::this_thread::sleep_for(std::chrono::milliseconds(400));  // the heartbeat thread relays it
    return fake_run(c, ro, h);
  });
  CHECK(report.stopped == 1);
  Db db(path);
  CHECK(db.scalar_int("SELECT count(*) FROM runs WHERE status = 'queued'") == 2);
  CHECK(db.scalar_int("SELECT count(*) FROM attempts WHERE outcome = 'stopped'") == 1);
}

TEST_CASE("four workers on one database: every run done exactly once", "[store]") {
  TempDir dir;
  std::string path = dir.file("r.db");
  int64_t sweep_id;
  {
    auto db = open_for_writing(path);
    sweep_id = vae::testing::register_sweep(*db, "seeds = 8\n[grid]\nlatent = [2, 3, 4, 5, 6]\n").second;
  }
  std::atomic<int> calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      sweep::WorkerOptions o;
      o.db_path = path;
      o.runs_dir = dir.file("runs");
      o.sweep_id = sweep_id;
      sweep::run_worker(o, [&](const ConfigMap& c, const RunOptions& ro, RunHooks* h) {
        ++calls;
        return fake_run(c, ro, h, 2);
      });
    });
  for (auto& t : threads) t.join();
  CHECK(calls == 40);
  Db db(path);
  CHECK(db.scalar_int("SELECT count(*) FROM runs WHERE status = 'done' AND attempts = 1") == 40);
  CHECK(db.scalar_int("SELECT count(*) FROM attempts") == 40);
  CHECK(db.scalar_int("SELECT count(*) FROM metrics") == 80);
  CHECK(db.scalar_int("SELECT count(*) FROM epoch_metrics") == 40 * 2 * 2);
  auto ok = db.prepare("PRAGMA integrity_check");
  REQUIRE(ok.step());
  CHECK(ok.get_text(0) == "ok");
}

TEST_CASE("sessions record provenance", "[store]") {
  TempDir dir;
  auto db = open_for_writing(dir.file("r.db"));
  ResultsStore st(*db);
  int64_t s = st.start_session(std::nullopt, "vae sweep run x.toml", 2);
  st.end_session(s);
  auto q = db->prepare(
      "SELECT compiler, blas, cpu, host, binary_sha256, ended_at IS NOT NULL, jobs FROM sessions");
  REQUIRE(q.step());
  CHECK_FALSE(q.get_text(0).empty());
  CHECK(q.get_text(1).find("OpenBLAS") != std::string::npos);
  CHECK_FALSE(q.get_text(3).empty());
  CHECK(q.get_text(4).size() == 64);
  CHECK(q.get_int(5) == 1);
  CHECK(q.get_int(6) == 2);
  CHECK(process_start_ticks(getpid()).has_value());
  CHECK(process_alive_here(machine_info().host, machine_info().boot_id, getpid(),
                           *process_start_ticks(getpid())));
  CHECK_FALSE(process_alive_here(machine_info().host, machine_info().boot_id, getpid(), 1));
  CHECK(now_iso().size() == 24);
}

TEST_CASE("run identity is stable when settings are added, and never merges different runs", "[store]") {
  ConfigMap c = canonical_config(default_config());
  const std::string id = run_id_of(identity_json(c, {{"/d/x", "ff"}}));
  // every baseline setting is hashed even at its default ...
  auto j = nlohmann::json::parse(identity_json(c, {}));
  for (const auto& k : baseline_identity_keys()) {
    INFO(k);
    CHECK(j["config"].contains(k));
  }
  // ... and a later setting only when it differs from its default
  for (const auto& o : train_options()) {
    bool base = std::count(baseline_identity_keys().begin(), baseline_identity_keys().end(), o.key) > 0;
    if (!base) CHECK_FALSE(j["config"].contains(o.key));
  }
  // a stored configuration from before a setting existed has the same id
  ConfigMap older = c;
  older.erase("iaf-steps");
  CHECK(run_id_of(identity_json(older, {{"/d/x", "ff"}})) == id);
  // any change of a setting that matters is a different run
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, Value>>{{"latent", int64_t(21)},
                                                  {"beta", 2.0},
                                                  {"seed", int64_t(3)},
                                                  {"posterior", std::string("iaf")},
                                                  {"iaf-steps", int64_t(3)},
                                                  {"layers", std::vector<int64_t>{8}}}) {
    ConfigMap d = c;
    d[key] = value;
    CHECK(run_id_of(identity_json(d, {{"/d/x", "ff"}})) != id);
  }
  // settings that do not change results never count
  ConfigMap e = c;
  e["threads"] = int64_t(4);
  e["iw-chunk"] = int64_t(7);
  e["data-dir"] = std::string("/elsewhere");
  CHECK(run_id_of(identity_json(e, {{"/d/x", "ff"}})) == id);
  CHECK(run_id_of(identity_json(c, {{"/d/x", "fe"}})) != id);
}

TEST_CASE("the flow's KL estimator counts only when there is a flow", "[store]") {
  auto id_of = [](const std::string& posterior, int64_t steps, const std::string& kl) {
    ConfigMap c = default_config();
    c["posterior"] = posterior;
    c["iaf-steps"] = steps;
    c["iaf-kl"] = kl;
    return run_id_of(identity_json(canonical_config(c), {}));
  };
  // no flow steps, or no flow at all: the same run whatever the estimator
  CHECK(id_of("iaf", 0, "stl") == id_of("iaf", 0, "sample"));
  CHECK(id_of("gaussian", 2, "stl") == id_of("gaussian", 2, "sample"));
  // with steps it changes the gradients, so the run
  CHECK(id_of("iaf", 2, "stl") != id_of("iaf", 2, "sample"));
}

TEST_CASE("the objective: default settings keep old run ids, and iwae with k = 1 is the sampled-KL ELBO run",
          "[store]") {
  auto id_of = [](const std::string& objective, int64_t k, const std::string& kl = "analytic") {
    ConfigMap c = default_config();
    c["objective"] = objective;
    c["k"] = k;
    c["kl-estimate"] = kl;
    return run_id_of(identity_json(canonical_config(c), {}));
  };
  CHECK(id_of("elbo", 1) == run_id_of(identity_json(canonical_config(default_config()), {})));
  CHECK(identity_json(canonical_config(default_config()), {}).find("objective") == std::string::npos);
  CHECK(identity_json(canonical_config(default_config()), {}).find("\"k\"") == std::string::npos);
  CHECK(identity_json(canonical_config(default_config()), {}).find("kl-estimate") == std::string::npos);
  // log w of one sample: the ELBO with the single-sample KL, not the closed-form one
  CHECK(id_of("iwae", 1) == id_of("elbo", 1, "sampled"));
  CHECK(id_of("iwae", 1) != id_of("elbo", 1));
  CHECK(id_of("elbo", 5, "sampled") != id_of("elbo", 5));
  // with k > 1 the IWAE objective is sampled whatever the setting says: one run
  CHECK(id_of("iwae", 5, "sampled") == id_of("iwae", 5));
  CHECK(id_of("iwae", 5) != id_of("elbo", 5));
  CHECK(id_of("iwae", 5) != id_of("elbo", 5, "sampled"));
  CHECK(id_of("elbo", 5) != id_of("elbo", 1));
}

TEST_CASE("defaults of settings added after the identity recipe are pinned", "[store]") {
  // A setting outside the baseline is hashed only when it differs from its default.
  // Changing its default would give runs with different settings one id (the old
  // run, recorded at the old default, would be taken for the new one). If you must
  // change one of these defaults, bump store::kIdentityVersion (every run is then
  // re-keyed and recomputed) and update this list.
  const std::map<std::string, std::string> pinned = {{"layers", "64,32,16,8,4"},
                                                     {"det-layers", "512,256,128,64,32"},
                                                     {"det-depth", "2"},
                                                     {"batchnorm", "false"},
                                                     {"iaf-steps", "2"},
                                                     {"iaf-hidden", "320"},
                                                     {"iaf-made-layers", "2"},
                                                     {"iaf-context", "64"},
                                                     {"iaf-forget-bias", "1"},
                                                     {"iaf-kl", "sample"},
                                                     {"arch", "mlp"},
                                                     {"conv-channels", "32,64,128,256"},
                                                     {"conv-kernel", "3"},
                                                     {"disent-batch", "64"},
                                                     {"disent-train", "10000"},
                                                     {"disent-eval", "5000"},
                                                     {"objective", "elbo"},
                                                     {"k", "1"},
                                                     {"kl-estimate", "analytic"},
                                                     {"variance", "softplus"},
                                                     {"vq-codebook", "64"},
                                                     {"vq-dim", "16"},
                                                     {"vq-channels", "64"},
                                                     {"vq-res-blocks", "2"},
                                                     {"vq-res-hidden", "32"},
                                                     {"vq-beta", "0.25"},
                                                     {"vq-update", "loss"},
                                                     {"vq-decay", "0.98999999999999999"},
                                                     {"vq-restart", "0"},
                                                     {"vq-prior-epochs", "0"},
                                                     {"vq-prior-layers", "4"},
                                                     {"vq-prior-features", "32"},
                                                     {"nvae-scales", "2"},
                                                     {"nvae-groups", "2"},
                                                     {"nvae-latent-channels", "8"},
                                                     {"nvae-channels", "16"},
                                                     {"nvae-kl-balance", "true"},
                                                     {"nvae-spectral", "0.01"},
                                                     {"nvae-bn-momentum", "0.050000000000000003"},
                                                     {"vq-levels", "1"},
                                                     {"vq-top-codebook", "64"},
                                                     {"time-budget", "0"},
                                                     {"time-budget-clock", "wall"},
                                                     {"weight-decay", "0"},
                                                     {"adam-v0", "0"},
                                                     {"output-bias", "init"},
                                                     {"posterior-head", "log-var"},
                                                     {"adam-update", "torch"},
                                                     {"shuffle", "true"}};
  for (const auto& [key, value] : pinned) {
    INFO("setting " << key);
    const OptionSpec* s = find_option(key);
    if (!s) continue;  // removed
    CHECK(value_to_string(s->default_value) == value);
  }
  // Every identity setting is either in the frozen baseline or pinned here.
  const auto& base = baseline_identity_keys();
  for (const OptionSpec& s : train_options()) {
    if (!s.identity || std::find(base.begin(), base.end(), s.key) != base.end()) continue;
    INFO("identity setting added after the recipe, not pinned: " << s.key);
    CHECK(pinned.count(s.key) == 1);
  }
}
