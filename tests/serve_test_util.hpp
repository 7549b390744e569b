// A small results database for the `vae serve` tests: the sweep "lb" (latent {2, 5} x
// beta {1, 4} x 3 seeds) run by a fake trainer that records 4 epochs of curves, KL per
// unit and final metrics (test_nll = base(latent, beta) + 0/1/5 by seed); the run
// latent 5, beta 4, seed 2 diverges; a second sweep "other" (latent 10, 2 seeds) is
// left queued; run 0 gets a PNG picture and a non-image artifact recorded.
#pragma once

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "draw/grid.hpp"
#include "process_util.hpp"
#include "store_test_util.hpp"
#include "sweep/worker.hpp"

namespace vae::testing {

// `vae serve --db DB --port 0` in the background, and the port it printed (0 if it printed
// none within `seconds`). The server is stopped when this goes out of scope, whether the
// test passed or not.
struct RunningServer {
  Proc proc;
  int port = 0;
  RunningServer(const std::string& db, const std::string& log_prefix, double seconds = 10,
                std::vector<std::string> more_args = {}) {
    std::vector<std::string> args{"serve", "--db", db, "--port", "0"};
    args.insert(args.end(), more_args.begin(), more_args.end());
    proc = start_vae(args, log_prefix);
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    const std::regex url("http://127\\.0\\.0\\.1:(\\d+)/");
    while (!port && std::chrono::steady_clock::now() < until) {
      std::smatch m;
      const std::string out = proc.out();
      if (std::regex_search(out, m, url)) port = std::stoi(m[1]);
      else std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }
  ~RunningServer() {
    if (proc.running()) kill(proc.pid, SIGTERM), proc.wait();
  }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;
};

inline double serve_base_nll(int64_t latent, double beta) {
  if (latent == 2) return beta == 1.0 ? 97 : 95;
  return beta == 1.0 ? 90 : 92;
}

struct ServeDb {
  std::string path;       // the database
  std::string png;        // the picture recorded for `pictured_run` as kind "samples.png"
  std::string not_image;  // a text file recorded as kind "notes.txt"
  std::string pictured_run;
};

inline ServeDb make_serve_db(const TempDir& dir) {
  ServeDb out;
  out.path = dir.file("serve.db");
  int64_t sweep_id;
  {
    auto db = store::open_for_writing(out.path);
    sweep_id = register_sweep(*db, R"(
name = "lb"
description = "latent x beta, fake trainer"
seeds = 3
[base]
epochs = 4
[grid]
latent = [2, 5]
beta = [1, 4]
[table]
rows = "latent"
cols = "beta"
metric = "test_nll"
)",
                              "lb.toml")
                   .second;
    register_sweep(*db, "name = \"other\"\nseeds = 2\n[base]\nlatent = 10\n", "other.toml");
  }
  sweep::WorkerOptions o;
  o.db_path = out.path;
  o.runs_dir = dir.file("runs");
  o.sweep_id = sweep_id;
  sweep::run_worker(o, [&](const ConfigMap& c, const RunOptions&, RunHooks* hooks) {
    int64_t latent = std::get<int64_t>(c.at("latent")), seed = std::get<int64_t>(c.at("seed"));
    double beta = std::get<double>(c.at("beta"));
    const double offsets[] = {0, 1, 5};
    double nll = serve_base_nll(latent, beta) + offsets[seed];
    for (int64_t e = 1; e <= 4; ++e)
      hooks->on_epoch(e, {{"train_loss", nll + 40.0 / double(e)},
                          {"train_rec", nll - 20 + 30.0 / double(e)},
                          {"train_kl", 20 + double(e)},
                          {"samples_per_s", 1000.0 + double(10 * e + seed)},
                          {"valid_elbo", -nll - 10.0 / double(e)}});
    RunResult r;
    r.status = "done";
    r.epochs_done = 4;
    r.metrics = {{"test_nll", nll}, {"test_elbo", -nll - 3.0}, {"active_units", double(latent)}};
    std::vector<double>& kl = r.unit_vectors["kl_per_dim"];
    for (int64_t u = 0; u < latent; ++u) kl.push_back(u < 2 ? 3.0 + double(u) : 0.001);
    if (latent == 5 && beta == 4.0 && seed == 2) {
      r.status = "diverged";
      r.message = "loss is nan at epoch 3";
      r.metrics.clear();
      r.unit_vectors.clear();
    }
    return r;
  });
  auto db = store::open_for_writing(out.path);
  {
    auto s = db->prepare("SELECT run_id FROM sweep_runs WHERE sweep_id = ? ORDER BY position LIMIT 1");
    s.bind(1, sweep_id);
    s.step();
    out.pictured_run = s.get_text(0);
  }
  draw::GrayImage img;
  img.width = 24;
  img.height = 16;
  for (size_t y = 0; y < img.height; ++y)
    for (size_t x = 0; x < img.width; ++x) img.pixels.push_back(uint8_t((x * 10 + y * 5) % 256));
  out.png = dir.file("samples.png");
  draw::write_png(out.png, img);
  out.not_image = dir.file("notes.txt");
  std::ofstream(out.not_image) << "not a picture\n";
  store::ResultsStore st(*db);
  st.record_run_artifact(out.pictured_run, "samples.png", out.png, 4);
  st.record_run_artifact(out.pictured_run, "notes.txt", out.not_image, 4);
  return out;
}

}  // namespace vae::testing
