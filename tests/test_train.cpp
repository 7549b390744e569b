// Training runs end to end: determinism, resume, divergence, and the `vae train` program.
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "models/settings.hpp"
#include "nn/optimizer.hpp"
#include "process_util.hpp"
#include "train/checkpoint.hpp"
#include "train/run.hpp"

using namespace vae;
namespace fs = std::filesystem;

namespace {

// A run small enough for a unit test: 1000 MNIST images, a tiny MLP.
ConfigMap small_config(int64_t epochs) {
  ConfigMap c = default_config();
  apply(c, {{"train-size", int64_t(1000)},
            {"test-size", int64_t(200)},
            {"hidden", std::vector<int64_t>{32}},
            {"latent", int64_t(4)},
            {"batch", int64_t(50)},
            {"epochs", epochs},
            {"iw-samples", int64_t(20)},
            {"iw-examples", int64_t(30)},
            {"valid-size", int64_t(100)}});
  return c;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("vae_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

std::vector<float> params_of(const fs::path& ckpt) { return load_checkpoint(ckpt.string()).params; }

using vae::testing::Shell;
using vae::testing::shell;
const std::string kVae = vae::testing::vae_binary();

}  // namespace

TEST_CASE("same configuration and seed give the same numbers, bit for bit", "[train][determinism]") {
  TempDir a, b;
  RunOptions oa{a.path.string(), false, true, nullptr}, ob{b.path.string(), false, true, nullptr};
  const ConfigMap c = small_config(2);
  const RunResult ra = train_and_evaluate(c, oa, nullptr);
  const RunResult rb = train_and_evaluate(c, ob, nullptr);
  REQUIRE(ra.status == "done");
  CHECK(params_of(a.path / "last.ckpt") == params_of(b.path / "last.ckpt"));
  CHECK(ra.metrics.at("test_elbo") == rb.metrics.at("test_elbo"));
  CHECK(ra.metrics.at("test_nll") == rb.metrics.at("test_nll"));
  CHECK(ra.train_loss_curve == rb.train_loss_curve);
  // and a different seed gives different numbers
  ConfigMap c2 = c;
  apply(c2, {{"seed", int64_t(1)}});
  TempDir d;
  const RunResult rd = train_and_evaluate(c2, RunOptions{d.path.string(), false, true, nullptr}, nullptr);
  CHECK(rd.metrics.at("test_elbo") != ra.metrics.at("test_elbo"));
}

TEST_CASE("a stopped and resumed run ends with the numbers of an uninterrupted one", "[train][resume]") {
  const ConfigMap c = small_config(3);
  TempDir whole, parts;
  const RunResult full = train_and_evaluate(c, RunOptions{whole.path.string(), false, true, nullptr}, nullptr);
  REQUIRE(full.status == "done");

  std::atomic<bool> stop{true};  // stop after the first epoch's checkpoint
  const RunResult first = train_and_evaluate(c, RunOptions{parts.path.string(), false, true, &stop}, nullptr);
  REQUIRE(first.status == "stopped");
  REQUIRE(first.epochs_done == 1);
  const Checkpoint after_one = load_checkpoint((parts.path / "last.ckpt").string());
  REQUIRE(after_one.epoch == 1);
  CHECK(after_one.train_seconds > 0);
  const RunResult rest = train_and_evaluate(c, RunOptions{parts.path.string(), true, true, nullptr}, nullptr);
  REQUIRE(rest.status == "done");
  CHECK(rest.train_loss_curve.size() == 2);  // epochs 2 and 3 only
  CHECK(params_of(whole.path / "last.ckpt") == params_of(parts.path / "last.ckpt"));
  CHECK(rest.metrics.at("test_elbo") == full.metrics.at("test_elbo"));
  CHECK(rest.metrics.at("test_nll") == full.metrics.at("test_nll"));
  CHECK(rest.metrics.at("best_valid_elbo") == full.metrics.at("best_valid_elbo"));
  CHECK(fs::exists(parts.path / "best.ckpt"));
  // Training time and throughput cover all three epochs, the first attempt's too.
  auto samples = [](const RunResult& r) { return r.metrics.at("samples_per_s") * r.metrics.at("train_s"); };
  CHECK(samples(rest) == Approx(samples(full)).epsilon(1e-9));
  CHECK(rest.metrics.at("train_s") > after_one.train_seconds);
}

TEST_CASE("a checkpoint of another configuration is refused", "[train][resume]") {
  TempDir dir;
  REQUIRE(train_and_evaluate(small_config(1), RunOptions{dir.path.string(), false, true, nullptr}, nullptr)
              .status == "done");
  ConfigMap other = small_config(2);
  apply(other, {{"latent", int64_t(5)}});
  CHECK_THROWS_WITH(train_and_evaluate(other, RunOptions{dir.path.string(), true, true, nullptr}, nullptr),
                    Catch::Contains("checkpoint of a different configuration"));
}

TEST_CASE("vae train on 2,000 MNIST images lowers the loss and prints one JSON line", "[e2e][train]") {
  const Shell r = shell(kVae + " train --train-size 2000 --test-size 500 --epochs 2 --iw-samples 50 "
                               "--iw-examples 100 --json --quiet 2>/dev/null");
  REQUIRE(r.status == 0);
  REQUIRE(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  const auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["train_loss_curve"].size() == 2);
  CHECK(j["train_loss_curve"][1].get<double>() < j["train_loss_curve"][0].get<double>());
  CHECK(j["test_elbo"].get<double>() < 0);
  CHECK(j["test_nll"].get<double>() > 0);
  CHECK(-j["test_nll"].get<double>() > j["test_elbo"].get<double>() - 5);  // IW bound near or above the ELBO
  CHECK(j["samples_per_s"].get<double>() > 0);
  CHECK(j["config"]["binarize"] == "dynamic");
  CHECK(j["data_files"].size() == 4);  // train and test images and labels
}

TEST_CASE("vae train rejects bad options with one line and exit 2", "[e2e][cli]") {
  for (const char* args : {"--no-such-option 1", "--latent zero", "--latent 0", "--sigma sideways",
                           "--hidden 10,x", "--likelihood gaussian --binarize dynamic"}) {
    INFO(args);
    const Shell r = shell(kVae + " train " + args + " 2>&1 >/dev/null");
    CHECK(r.status == 2);
    CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  }
}

TEST_CASE("vae train names a missing data file and exits 1", "[e2e][cli]") {
  TempDir empty;
  const Shell r = shell(kVae + " train --data-dir " + empty.path.string() + " --quiet 2>&1 >/dev/null");
  CHECK(r.status == 1);
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  CHECK_THAT(r.out, Catch::Contains(empty.path.string()) && Catch::Contains("train-images-idx3-ubyte"));
}

TEST_CASE("vae train reads a TOML file and options override it", "[e2e][cli]") {
  TempDir dir;
  const auto toml = dir.path / "run.toml";
  std::ofstream(toml) << "latent = 3\nhidden = [16]\ntrain-size = 500\ntest-size = 100\nepochs = 1\n"
                         "iw-samples = 0\nbeta = 4.0\n";
  const Shell r = shell(kVae + " train --config " + toml.string() + " --latent 2 --json --quiet 2>/dev/null");
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["config"]["latent"] == 2);
  CHECK(j["config"]["beta"] == 4.0);
  CHECK(j["kl_per_dim"].size() == 2);
  std::ofstream(toml) << "latent = 3\nlatnet = 4\n";
  const Shell bad = shell(kVae + " train --config " + toml.string() + " 2>&1 >/dev/null");
  CHECK(bad.status == 2);
  CHECK_THAT(bad.out, Catch::Contains("run.toml:2") && Catch::Contains("latnet"));
}

TEST_CASE("a NaN loss stops the run as diverged and keeps the last good checkpoint", "[train][diverge]") {
  TempDir dir;
  const ConfigMap c = small_config(4);
  RunOptions o{dir.path.string(), false, true, nullptr};
  o.fault_nan_epoch = 3;
  const RunResult r = train_and_evaluate(c, o, nullptr);
  CHECK(r.status == "diverged");
  CHECK(r.epochs_done == 2);
  CHECK_THAT(r.message, Catch::Contains("epoch 3") && Catch::Contains("last finite epoch loss"));
  const Checkpoint kept = load_checkpoint((dir.path / "last.ckpt").string());
  CHECK(kept.epoch == 2);
  CHECK(std::isfinite(kept.last_loss));
  CHECK(std::all_of(kept.params.begin(), kept.params.end(), [](float p) { return std::isfinite(p); }));
  // and it is the checkpoint an undisturbed 2-epoch run writes
  TempDir ref;
  REQUIRE(train_and_evaluate(small_config(2), RunOptions{ref.path.string(), false, true, nullptr}, nullptr)
              .status == "done");
  CHECK(params_of(ref.path / "last.ckpt") == kept.params);
}

TEST_CASE("vae train exits 3 when the run diverges", "[e2e][cli]") {
  const Shell r = shell(kVae + " train --train-size 1000 --test-size 100 --hidden 32 --latent 4 --batch 50 "
                               "--epochs 2 --iw-samples 0 --lr 1e6 --quiet 2>&1 >/dev/null");
  CHECK(r.status == 3);
  CHECK_THAT(r.out, Catch::Contains("diverged") && Catch::Contains("epoch 1"));
}

TEST_CASE("KL warm-up raises beta linearly over the warm-up epochs", "[train][warmup]") {
  struct Recorder : RunHooks {
    std::vector<double> beta;
    void on_epoch(int64_t, const std::map<std::string, double>& m) override {
      beta.push_back(m.at("beta_eff"));
    }
  } rec;
  ConfigMap c = small_config(5);
  apply(c, {{"warmup", int64_t(4)}, {"beta", 2.0}, {"iw-samples", int64_t(0)}});
  REQUIRE(train_and_evaluate(c, RunOptions{"", false, true, nullptr}, &rec).status == "done");
  // the value in force at each epoch's last step: beta * min(1, epochs done / warm-up)
  REQUIRE(rec.beta.size() == 5);
  CHECK(rec.beta[0] == Approx(0.5));
  CHECK(rec.beta[1] == Approx(1.0));
  CHECK(rec.beta[2] == Approx(1.5));
  CHECK(rec.beta[3] == Approx(2.0));
  CHECK(rec.beta[4] == Approx(2.0));
}

TEST_CASE("the IWAE schedule: stage i lasts 3^i epochs at lr 10^(-i/7)", "[train][schedule]") {
  // Burda et al. 2016, section 5: epochs 0 | 1-3 | 4-12 | 13-39 | ... | 1093-3279
  auto stage_of = [](int64_t epoch) { return -7.0 * std::log10(scheduled_lr("iwae", 1.0, 1.0, epoch)); };
  CHECK(stage_of(0) == Approx(0).margin(1e-12));
  for (int64_t e : {1, 2, 3}) CHECK(stage_of(e) == Approx(1));
  for (int64_t e : {4, 12}) CHECK(stage_of(e) == Approx(2));
  CHECK(stage_of(13) == Approx(3));
  CHECK(stage_of(1092) == Approx(6));
  CHECK(stage_of(1093) == Approx(7));
  CHECK(stage_of(3279) == Approx(7));
  CHECK(stage_of(3280) == Approx(8));
  CHECK(scheduled_lr("iwae", 1e-3, 1.0, 3279) == Approx(1e-4));
  // The paper's code rounds each stage's factor to two digits (yburda/iwae experiments.py:
  // 1e-4 * round(10^(1 - (i-1)/7), 1) for stages i = 1..8), at the same stage boundaries.
  const std::pair<int64_t, double> rounded[] = {{0, 1e-3},      {1, 7.2e-4},  {3, 7.2e-4},   {4, 5.2e-4},
                                                {13, 3.7e-4},   {40, 2.7e-4}, {121, 1.9e-4}, {364, 1.4e-4},
                                                {1092, 1.4e-4}, {1093, 1e-4}, {3279, 1e-4}};
  for (const auto& [epoch, lr] : rounded) {
    INFO("epoch " << epoch);
    CHECK(scheduled_lr("iwae-rounded", 1e-3, 1.0, epoch) == Approx(lr).epsilon(1e-12));
  }
  CHECK(scheduled_lr("constant", 1e-3, 0.5, 7) == 1e-3);
  CHECK(scheduled_lr("exponential", 1e-3, 0.5, 2) == Approx(2.5e-4));
  // and in a run: the lr recorded per epoch
  struct Recorder : RunHooks {
    std::vector<double> lr;
    void on_epoch(int64_t, const std::map<std::string, double>& m) override { lr.push_back(m.at("lr")); }
  } rec;
  ConfigMap c = small_config(5);
  apply(c, {{"lr-schedule", std::string("iwae")}, {"iw-samples", int64_t(0)}, {"train-size", int64_t(100)}});
  REQUIRE(train_and_evaluate(c, RunOptions{"", false, true, nullptr}, &rec).status == "done");
  const double l1 = 1e-3 * std::pow(10.0, -1.0 / 7), l2 = 1e-3 * std::pow(10.0, -2.0 / 7);
  CHECK(rec.lr == std::vector<double>{1e-3, l1, l1, l1, l2});
}

TEST_CASE("epoch order: a fresh permutation from the RNG, or with shuffle false the file's order",
          "[train][shuffle]") {
  std::vector<uint32_t> order(50), identity(50);
  std::iota(identity.begin(), identity.end(), 0u);
  std::mt19937_64 rng(3), same(3);
  epoch_order(order, false, rng);
  CHECK(order == identity);
  CHECK(rng == same);  // nothing drawn: the noise of the steps is as it would be
  epoch_order(order, true, rng);
  std::vector<uint32_t> want = identity;
  std::shuffle(want.begin(), want.end(), same);
  CHECK(order == want);  // the order runs always had
  CHECK(order != identity);
  std::vector<uint32_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  CHECK(sorted == identity);  // a permutation
  CHECK(default_config().at("shuffle") == Value(true));
}

TEST_CASE("a checkpoint stays resumable when settings are added to the program", "[train][resume]") {
  const ConfigMap c = small_config(2);
  // a configuration stored by a build that did not know a later setting (at its default)
  ConfigMap older = c;
  older.erase("iaf-kl");
  CHECK(training_identity(older) == training_identity(c));
  CHECK(training_identity(c) != legacy_training_identity(c));
  // a checkpoint written under the earlier recipe (every identity setting hashed) resumes
  TempDir dir;
  REQUIRE(train_and_evaluate(small_config(1), RunOptions{dir.path.string(), false, true, nullptr}, nullptr)
              .status == "done");
  const std::string last = (dir.path / "last.ckpt").string();
  Checkpoint ck = load_checkpoint(last);
  ck.identity = legacy_training_identity(c);
  save_checkpoint(last, ck);
  const RunResult r = train_and_evaluate(c, RunOptions{dir.path.string(), true, true, nullptr}, nullptr);
  CHECK(r.status == "done");
  CHECK(r.epochs_done == 2);
  // and one of a different configuration still does not
  ConfigMap more = c;
  apply(more, {{"epochs", int64_t(3)}});
  CHECK(training_identity(more) == training_identity(c));  // epochs are not part of it
  ConfigMap other = c;
  apply(other, {{"latent", int64_t(5)}});
  CHECK_THROWS_WITH(train_and_evaluate(other, RunOptions{dir.path.string(), true, true, nullptr}, nullptr),
                    Catch::Contains("checkpoint of a different configuration"));
}

TEST_CASE("a time budget ends training after the step that spends it", "[train][budget]") {
  ConfigMap c = small_config(3);
  apply(c, {{"time-budget", 1e-9}});  // spent by the first step
  TempDir dir;
  const RunResult r = train_and_evaluate(c, RunOptions{dir.path.string(), false, true, nullptr}, nullptr);
  REQUIRE(r.status == "done");
  CHECK(r.epochs_done == 1);
  CHECK(r.train_loss_curve.size() == 1);
  // one batch of 50 out of the 1000 training images (validation comes from the set's end)
  CHECK(r.metrics.at("epochs_trained") == Approx(50.0 / 1000.0));
  CHECK(r.metrics.at("epochs") == 1);
  CHECK(r.metrics.count("test_nll") == 1);  // the final evaluation still runs
  const double first_loss = r.train_loss_curve[0];

  // Resumed with the budget spent: nothing more is trained.
  const RunResult again = train_and_evaluate(c, RunOptions{dir.path.string(), true, true, nullptr}, nullptr);
  REQUIRE(again.status == "done");
  CHECK(again.train_loss_curve.empty());
  CHECK(again.metrics.at("epochs_trained") == Approx(50.0 / 1000.0));

  // The budget is not part of the checkpoint's identity: without it the run goes on from
  // the partial epoch's checkpoint to the configured epochs.
  ConfigMap longer = c;
  apply(longer, {{"time-budget", 0.0}});
  CHECK(training_identity(longer) == training_identity(c));
  const RunResult rest = train_and_evaluate(longer, RunOptions{dir.path.string(), true, true, nullptr},
                                            nullptr);
  REQUIRE(rest.status == "done");
  CHECK(rest.train_loss_curve.size() == 2);  // epochs 2 and 3, whole
  CHECK(rest.metrics.at("epochs_trained") == Approx(2.0 + 50.0 / 1000.0));
  CHECK(rest.train_loss_curve[0] != first_loss);
}

TEST_CASE("no time budget is the configured epochs, bit for bit", "[train][budget]") {
  ConfigMap budget = small_config(2);
  apply(budget, {{"time-budget", 1e9}});  // never reached
  TempDir a, b;
  const RunResult plain = train_and_evaluate(small_config(2), RunOptions{a.path.string(), false, true, nullptr},
                                             nullptr);
  const RunResult timed = train_and_evaluate(budget, RunOptions{b.path.string(), false, true, nullptr},
                                             nullptr);
  CHECK(timed.epochs_done == 2);
  CHECK(timed.metrics.at("epochs_trained") == 2);
  CHECK(timed.metrics.at("test_elbo") == plain.metrics.at("test_elbo"));
  CHECK(params_of(a.path / "last.ckpt") == params_of(b.path / "last.ckpt"));
}

TEST_CASE("a time budget is refused where a second training stage follows", "[train][budget][config]") {
  ConfigMap c = default_config();
  apply(c, {{"model", std::string("vqvae")}, {"vq-prior-epochs", int64_t(2)}, {"time-budget", 60.0}});
  CHECK_THROWS_WITH(to_train_config(c), Catch::Contains("key 'time-budget'"));
  apply(c, {{"vq-prior-epochs", int64_t(0)}});
  CHECK_NOTHROW(to_train_config(c));
}

TEST_CASE("a time budget on the CPU clock counts the process's CPU time", "[train][budget]") {
  ConfigMap c = small_config(3);
  apply(c, {{"time-budget", 1e-9}, {"time-budget-clock", std::string("cpu")}});
  TempDir dir;
  const RunResult r = train_and_evaluate(c, RunOptions{dir.path.string(), false, true, nullptr}, nullptr);
  REQUIRE(r.status == "done");
  CHECK(r.metrics.at("epochs_trained") == Approx(50.0 / 1000.0));
  CHECK(r.metrics.at("train_cpu_s") > 0);
  // kept in the checkpoint, so a resumed run goes on counting from it
  CHECK(load_checkpoint((dir.path / "last.ckpt").string()).train_cpu_seconds == r.metrics.at("train_cpu_s"));
  ConfigMap wall = c;
  apply(wall, {{"time-budget-clock", std::string("wall")}});
  CHECK(training_identity(wall) == training_identity(c));
}
