// vae serve on a large database (bench/serve_bench.sh runs it; hidden from the suite):
// a synthetic sweep of 10,000 done runs (latent 5 x beta 5 x 400 seeds, 10 epochs of
// curves each) is written straight into the store, `vae serve` started on it, and
// each request timed 20 times over HTTP: the runs view's first page (default order and
// sorted by a metric), a filtered page, and the 5 x 5 comparison table of all 10,000
// runs. The medians must stay under 200 ms.
#include <httplib.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "process_util.hpp"
#include "serve_test_util.hpp"
#include "store_test_util.hpp"

using namespace vae;
using vae::testing::TempDir;

namespace {

// Marks every run of the sweep done with final metrics and per-epoch curves, in one transaction.
void fill_done(store::Db& db, int64_t sweep_id) {
  db.write([&] {
    auto ids = db.prepare("SELECT run_id FROM sweep_runs WHERE sweep_id = ? ORDER BY position");
    ids.bind(1, sweep_id);
    std::vector<std::string> all;
    while (ids.step()) all.push_back(ids.get_text(0));
    auto run = db.prepare(
        "UPDATE runs SET status = 'done', epochs_done = 10, attempts = 1, wall_s = ?, started_at = created_at, "
        "ended_at = created_at, kl_per_dim = ? WHERE run_id = ?");
    auto metric = db.prepare("INSERT INTO metrics(run_id, name, value) VALUES (?, ?, ?)");
    auto epoch = db.prepare("INSERT INTO epoch_metrics(run_id, epoch, name, value) VALUES (?, ?, ?, ?)");
    for (size_t i = 0; i < all.size(); ++i) {
      const std::string& id = all[i];
      const double u = double((i * 7919) % 1000) / 1000.0;  // a deterministic spread
      run.bind(1, 20.0 + 10.0 * u).bind(2, "[3.1, 2.2, 0.4, 0.001, 0.0]").bind(3, id).run();
      const double nll = 90.0 + 10.0 * u;
      for (const auto& [name, value] :
           std::vector<std::pair<std::string, double>>{{"test_nll", nll},
                                                       {"test_elbo", -nll - 4.0},
                                                       {"test_rec", nll - 20.0},
                                                       {"test_kl", 24.0},
                                                       {"active_units", 5.0},
                                                       {"samples_per_s", 9000.0 + 100.0 * u},
                                                       {"train_s", 12.0}})
        metric.bind(1, id).bind(2, name).bind(3, value).run();
      for (int64_t e = 1; e <= 10; ++e)
        for (const auto& [name, value] :
             std::vector<std::pair<std::string, double>>{{"train_loss", nll + 50.0 / double(e)},
                                                         {"train_rec", nll - 20 + 40.0 / double(e)},
                                                         {"train_kl", 24.0 + 1.0 / double(e)},
                                                         {"samples_per_s", 9000.0}})
          epoch.bind(1, id).bind(2, e).bind(3, name).bind(4, value).run();
    }
  });
}

// CPU seconds (user + system) the process has used so far.
double cpu_s(pid_t pid) {
  std::string stat = testing::Proc::slurp("/proc/" + std::to_string(pid) + "/stat");
  std::istringstream in(stat.substr(stat.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> field; ++i)
    if (i == 14 || i == 15) ticks += std::stod(field);
  return ticks / double(sysconf(_SC_CLK_TCK));
}

double median_ms(httplib::Client& cli, const std::string& path, int reps, size_t& bytes) {
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = cli.Get(path.c_str());
    auto t1 = std::chrono::steady_clock::now();
    INFO(path);
    REQUIRE(r);
    REQUIRE(r->status == 200);
    bytes = r->body.size();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return reps % 2 ? ms[reps / 2] : 0.5 * (ms[reps / 2 - 1] + ms[reps / 2]);
}

}  // namespace

TEST_CASE("serve bench: 10,000 runs, the runs view's first page and a 5x5 table", "[.serve_bench]") {
  TempDir dir;
  const char* keep = std::getenv("VAE_BENCH_DB");
  const std::string path = keep && *keep ? keep : dir.file("bench.db");
  if (!std::filesystem::exists(path)) {
    auto t0 = std::chrono::steady_clock::now();
    auto db = store::open_for_writing(path);
    int64_t id = testing::register_sweep(*db, R"(
name = "bench"
seeds = 400
[base]
epochs = 10
[grid]
latent = [2, 5, 10, 20, 50]
beta = [0.5, 1, 2, 4, 8]
[table]
rows = "latent"
cols = "beta"
metric = "test_nll"
)",
                                         "bench.toml")
                     .second;
    fill_done(*db, id);
    std::cout << "made " << path << " in "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n";
  }
  REQUIRE(testing::q(path, "SELECT count(*) FROM runs WHERE status = 'done'") == 10000);

  testing::RunningServer server(path, dir.file("serve"), 10);
  testing::Proc& srv = server.proc;
  const int port = server.port;
  REQUIRE(port > 0);
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(60, 0);
  const int reps = 20;
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"runs view, first page (50 of 10,000)", "/api/runs?offset=0&limit=50"},
      {"runs view, first page sorted by test_nll", "/api/runs?offset=0&limit=50&sort=test_nll&order=asc"},
      {"runs view, first page of a filter (latent=20, beta>=2)",
       "/api/runs?offset=0&limit=50&where=latent%3D20&where=beta%3E%3D2"},
      {"5x5 comparison table of the 10,000 runs",
       "/api/table?sweep=bench&rows=latent&cols=beta&metric=test_nll&agg=mean_se"},
      {"sweep view header (counts, axes, metrics)", "/api/sweeps/bench"},
      {"sweeps view", "/api/sweeps"},
  };
  nlohmann::json out = nlohmann::json::array();
  std::vector<double> limited;
  for (const auto& [what, url] : requests) {
    size_t bytes = 0;
    const double cpu0 = cpu_s(srv.pid);
    double ms = median_ms(cli, url, reps, bytes);
    const double cpu_ms = 1000.0 * (cpu_s(srv.pid) - cpu0) / reps;  // the server's CPU per request
    std::printf("%-58s median of %d: %7.1f ms wall, %6.1f ms server CPU  (%zu bytes)\n", what.c_str(), reps, ms,
                cpu_ms, bytes);
    out.push_back({{"request", what},
                   {"url", url},
                   {"median_ms", ms},
                   {"server_cpu_ms_mean", cpu_ms},
                   {"reps", reps},
                   {"bytes", bytes}});
    if (url.rfind("/api/runs", 0) == 0 || url.rfind("/api/table", 0) == 0) limited.push_back(ms);
  }
  if (const char* json_out = std::getenv("VAE_BENCH_JSON"); json_out && *json_out)
    std::ofstream(json_out) << out.dump(2) << "\n";
  for (double ms : limited) CHECK(ms < 200.0);
}
