// `vae train --dataset dsprites` reports the disentanglement metrics, and
// `vae eval-disent` recomputes the same numbers from the run's checkpoint.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "process_util.hpp"

namespace fs = std::filesystem;

namespace {

using vae::testing::Shell;
using vae::testing::shell;
const std::string kVae = vae::testing::vae_binary();

}  // namespace

TEST_CASE("vae train on dsprites reports the metrics and vae eval-disent reproduces them", "[dsprites][cli]") {
  const fs::path dir = fs::temp_directory_path() / ("vae_eval_disent_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string small = " --disent-batch 8 --disent-train 60 --disent-eval 30";
  const Shell r = shell(kVae +
                        " train --dataset dsprites --train-size 400 --test-size 100 --hidden 32 "
                        "--latent 4 --batch 50 --epochs 1 --iw-samples 0 --quiet --json --out " +
                        (dir / "run").string() + small + " 2>/dev/null");
  REQUIRE(r.status == 0);
  const auto j = nlohmann::json::parse(r.out);
  for (const char* k : {"beta_vae_metric", "factor_vae_metric", "mig", "mig_shape", "mig_pos_y"}) {
    INFO(k);
    REQUIRE(j.contains(k));
    CHECK(j[k].get<double>() >= 0.0);
    CHECK(j[k].get<double>() <= 1.0);
  }
  CHECK(j["binarize"] == "none");
  REQUIRE(j["data_files"].size() == 1);
  CHECK(j["data_files"][0]["path"] == "dsprites:rendered");

  const Shell e = shell(kVae + " eval-disent --checkpoint " + (dir / "run" / "last.ckpt").string() +
                        " --json 2>&1");
  REQUIRE(e.status == 0);
  const auto k = nlohmann::json::parse(e.out);
  for (const char* m : {"beta_vae_metric", "beta_vae_train", "factor_vae_metric", "mig"}) {
    INFO(m);
    CHECK(k[m].get<double>() == j[m].get<double>());  // same parameters, same seed: same numbers
  }
  // A different protocol gives its own numbers (the options are honoured).
  const Shell e2 = shell(kVae + " eval-disent --checkpoint " + (dir / "run" / "last.ckpt").string() +
                         " --disent-train 100 --json 2>&1");
  REQUIRE(e2.status == 0);
  CHECK(nlohmann::json::parse(e2.out)["mig"].get<double>() != j["mig"].get<double>());
  fs::remove_all(dir);
}

TEST_CASE("bad dsprites settings give a one-line error naming the key", "[dsprites][cli]") {
  Shell r = shell(kVae + " train --dataset dsprites --epochs 1 2>&1 >/dev/null");
  CHECK(r.status == 2);
  CHECK(r.out.find("train-size") != std::string::npos);
  r = shell(kVae + " train --dataset dsprites --train-size 100 --binarize dynamic 2>&1 >/dev/null");
  CHECK(r.status == 2);
  CHECK(r.out.find("binarize") != std::string::npos);
  r = shell(kVae + " train --dsprites-cache /tmp/x.bits --epochs 1 2>&1 >/dev/null");
  CHECK(r.status == 2);
  CHECK(r.out.find("dsprites-cache") != std::string::npos);
  r = shell(kVae + " eval-disent --checkpoint /nonexistent/last.ckpt 2>&1 >/dev/null");
  CHECK(r.status == 1);
  CHECK(r.out.find("/nonexistent/last.ckpt") != std::string::npos);
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
}
