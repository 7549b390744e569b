// `vae draw`, `vae encode` and `vae plot` end to end on a small database the test builds:
// every command writes a PNG that decodes to the expected size; bad input gives one
// line and a non-zero exit.
#include <stb_image.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "config/config.hpp"
#include "process_util.hpp"
#include "store/results_store.hpp"
#include "store_test_util.hpp"
#include "train/run.hpp"

using namespace vae;

namespace {

// Width and height of a PNG, or (0, 0) when it does not decode.
std::pair<int, int> png_size(const std::string& path) {
  int w = 0, h = 0, ch = 0;
  unsigned char* data = stbi_load(path.c_str(), &w, &h, &ch, 1);
  if (!data) return {0, 0};
  stbi_image_free(data);
  return {w, h};
}

// Runs vae with args; exit code, and stderr in err.
int vae_run(const std::vector<std::string>& args, const testing::TempDir& dir, std::string* err = nullptr) {
  testing::Proc p = testing::run_vae(args, dir.file("log"));
  if (err) *err = p.err();
  return p.wait();
}

const char* kTinySweep =
    "name = \"tiny\"\n[base]\nlatent = 2\nhidden = [16]\ntrain-size = 300\ntest-size = 100\n"
    "epochs = 1\nbatch = 50\niw-samples = 5\niw-examples = 10\n";

// A results database with an 8-run sweep (latent x beta x 2 seeds) marked done with
// made-up metrics, curves and KLs, and one really trained tiny run with its checkpoint.
struct PlotDb {
  testing::TempDir dir;
  std::string db, metric_run, tiny_run, ckpt;
  PlotDb() {
    db = dir.file("r.db");
    auto d = store::open_for_writing(db);
    auto [plan, sid] = testing::register_sweep(
        *d, "name = \"grid\"\nseeds = [0, 1]\n[base]\nhidden = [8]\n[grid]\nlatent = [2, 4]\nbeta = [1, 4]\n");
    d->write([&] {
      double k = 0;
      for (const auto& r : plan.runs) {
        k += 1;
        d->prepare("UPDATE runs SET status = 'done', kl_per_dim = ? WHERE run_id = ?")
            .bind(1, std::string("[0.01, 3.5, 0.2, 1.25]"))
            .bind(2, r.run_id)
            .run();
        d->prepare("INSERT INTO metrics(run_id, name, value) VALUES (?, 'test_nll', ?)")
            .bind(1, r.run_id)
            .bind(2, 90.0 + k)
            .run();
        for (int e = 1; e <= 3; ++e)
          d->prepare("INSERT INTO epoch_metrics(run_id, epoch, name, value) VALUES (?, ?, 'train_loss', ?)")
              .bind(1, r.run_id)
              .bind(2, int64_t(e))
              .bind(3, 200.0 / e + k)
              .run();
      }
    });
    metric_run = plan.runs.at(0).run_id;
    // The tiny run: trained here on 300 MNIST images, registered with the same settings.
    auto [tplan, tsid] = testing::register_sweep(*d, kTinySweep);
    tiny_run = tplan.runs.at(0).run_id;
    RunOptions o;
    o.out_dir = dir.file("tiny");
    o.quiet = true;
    REQUIRE(train_and_evaluate(tplan.runs.at(0).config, o, nullptr).status == "done");
    ckpt = dir.file("tiny/last.ckpt");
    store::ResultsStore(*d).record_run_artifact(tiny_run, "last", ckpt, 1);
  }
};

}  // namespace

TEST_CASE("vae plot metric, curves, kl and latents write PNGs of the asked size", "[plot][cli]") {
  PlotDb t;
  const auto& dir = t.dir;
  std::string err;
  REQUIRE(vae_run({"plot", "metric", "--db", t.db, "--sweep", "grid", "--metric", "test_nll", "--x", "latent",
                   "--line", "beta", "--out", dir.file("metric.png"), "--width", "500", "--height", "300"},
                  dir, &err) == 0);
  CHECK(png_size(dir.file("metric.png")) == std::make_pair(500, 300));
  REQUIRE(vae_run({"plot", "curves", "--db", t.db, "--sweep", "grid", "--label", "beta", "--out",
                   dir.file("curves.png")},
                  dir, &err) == 0);
  CHECK(png_size(dir.file("curves.png")) == std::make_pair(640, 480));
  REQUIRE(vae_run({"plot", "kl", "--db", t.db, "--run", t.metric_run.substr(0, 10), "--out", dir.file("kl.png"),
                   "--width", "400", "--height", "400"},
                  dir, &err) == 0);
  CHECK(png_size(dir.file("kl.png")) == std::make_pair(400, 400));
  REQUIRE(vae_run({"plot", "latents", "--db", t.db, "--run", t.tiny_run.substr(0, 8), "--out",
                   dir.file("lat.png"), "--width", "300", "--height", "300"},
                  dir, &err) == 0);
  CHECK(png_size(dir.file("lat.png")) == std::make_pair(300, 300));

  // Bad input: one line naming the problem, non-zero exit.
  CHECK(vae_run({"plot", "histogram", "--out", dir.file("x.png")}, dir, &err) == 2);
  CHECK(err.find("'histogram' is not one of") != std::string::npos);
  CHECK(vae_run({"plot", "kl", "--db", t.db, "--run", "ffff0000", "--out", dir.file("x.png")}, dir, &err) == 1);
  CHECK(err.find("run 'ffff0000': no such run") != std::string::npos);
  CHECK(vae_run({"plot", "metric", "--db", t.db, "--metric", "no_such_metric", "--out", dir.file("x.png")}, dir,
                &err) == 1);
  CHECK(err.find("no_such_metric") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("x.png")));
  ::setenv("VAE_PYTHON", "/nonexistent/python3", 1);
  const int rc = vae_run({"plot", "kl", "--db", t.db, "--run", t.metric_run, "--out", dir.file("x.png")}, dir,
                         &err);
  ::unsetenv("VAE_PYTHON");
  CHECK(rc == 1);
  CHECK(err.find("/nonexistent/python3: python3 not found") != std::string::npos);
}

TEST_CASE("vae draw by run id and by checkpoint, recorded as artifacts of the run", "[draw][cli]") {
  PlotDb t;
  const auto& dir = t.dir;
  std::string err;
  // A 4 x 4 manifold of 28 x 28 images with 2 pixels of padding: 4 * 28 + 5 * 2 = 122.
  REQUIRE(vae_run({"draw", "manifold", "--db", t.db, "--run", t.tiny_run.substr(0, 8), "--side", "4", "--out",
                   dir.file("m.png")},
                  dir, &err) == 0);
  CHECK(png_size(dir.file("m.png")) == std::make_pair(122, 122));
  CHECK(err.find("recorded as an artifact") != std::string::npos);
  {
    auto d = store::open_for_reading(t.db);
    store::ResultsStore st(*d);
    CHECK(st.artifact_path(t.tiny_run, "m.png") ==
          std::filesystem::absolute(dir.file("m.png")).lexically_normal().string());
  }
  // By checkpoint (nothing recorded), each picture at its size, the same bytes twice.
  struct Case {
    std::vector<std::string> args;
    int w, h;
  };
  const std::vector<Case> cases = {
      {{"samples", "--side", "3", "--seed", "5"}, 3 * 28 + 4 * 2, 3 * 28 + 4 * 2},
      {{"reconstructions", "--per-row", "5", "--rows", "2"}, 5 * 28 + 6 * 2, 4 * 28 + 5 * 2},
      {{"interpolate", "--from", "0,2", "--to", "1,3", "--steps", "6"}, 8 * 28 + 9 * 2, 2 * 28 + 3 * 2},
      {{"traversals", "--steps", "7", "--index", "3", "--scale", "2"},
       2 * (7 * 28 + 8 * 2),
       2 * (2 * 28 + 3 * 2)},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args{"draw"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    for (const char* out : {"a.png", "b.png"}) {
      std::vector<std::string> a = args;
      a.insert(a.end(), {"--checkpoint", t.ckpt, "--out", dir.file(out)});
      REQUIRE(vae_run(a, dir, &err) == 0);
    }
    INFO(c.args.at(0));
    CHECK(png_size(dir.file("a.png")) == std::make_pair(c.w, c.h));
    CHECK(testing::Proc::slurp(dir.file("a.png")) == testing::Proc::slurp(dir.file("b.png")));
  }
  // vae encode: one CSV row per test image, label and two coordinates.
  REQUIRE(vae_run({"encode", "--checkpoint", t.ckpt, "--out", dir.file("enc.csv"), "--n", "20"}, dir, &err) ==
          0);
  {
    std::ifstream f(dir.file("enc.csv"));
    std::string line;
    std::getline(f, line);
    CHECK(line == "index,label,z0,z1");
    int rows = 0;
    while (std::getline(f, line)) ++rows;
    CHECK(rows == 20);
  }

  // Bad input: one line, non-zero exit.
  CHECK(vae_run({"draw", "manifold", "--checkpoint", dir.file("missing.ckpt"), "--out", dir.file("x.png")}, dir,
                &err) == 1);
  CHECK(err.find("missing.ckpt") != std::string::npos);
  CHECK(vae_run({"draw", "samples", "--out", dir.file("x.png")}, dir, &err) == 2);
  CHECK(err.find("--run ID") != std::string::npos);
  CHECK(vae_run({"draw", "portrait", "--checkpoint", t.ckpt, "--out", dir.file("x.png")}, dir, &err) == 2);
  CHECK(vae_run({"draw", "samples", "--checkpoint", t.ckpt, "--out", dir.file("x.jpg")}, dir, &err) == 2);
  CHECK(
      vae_run({"draw", "reconstructions", "--checkpoint", t.ckpt, "--first", "99", "--out", dir.file("x.png")},
              dir, &err) == 2);
  CHECK(err.find("100 images") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("x.png")));
}
