// vae serve: every endpoint of the JSON API on a database the test builds (status,
// JSON, the table's numbers against `vae table --format json` and plain SQL), bad
// inputs, traversal attempts; then the real server over a socket.
#include <httplib.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "process_util.hpp"
#include "reproduce_test_util.hpp"
#include "serve/api.hpp"
#include "serve_test_util.hpp"
#include "util/hash.hpp"

using namespace vae;
using nlohmann::json;
using vae::testing::TempDir;

namespace {

serve::Response get(serve::Api& api, const std::string& path,
                    std::multimap<std::string, std::string> query = {}) {
  serve::Request rq;
  rq.path = path;
  rq.query = std::move(query);
  return api.handle(rq);
}

json get_json(serve::Api& api, const std::string& path, std::multimap<std::string, std::string> query = {},
              int status = 200) {
  serve::Response r = get(api, path, std::move(query));
  INFO(path << " -> " << r.status << " " << r.body.substr(0, 300));
  REQUIRE(r.status == status);
  REQUIRE(r.content_type == "application/json");
  return json::parse(r.body);
}

std::string file_bytes(const std::string& path) { return testing::Proc::slurp(path); }

// One database for every test case of this file (building it is most of their time);
// none of them writes it, and the last one checks that the server did not either.
struct Shared {
  TempDir dir;
  testing::ServeDb sdb = testing::make_serve_db(dir);
};
Shared& shared() {
  static Shared s;
  return s;
}

struct Fixture {
  TempDir dir;  // for this test's own files
  const testing::ServeDb& sdb = shared().sdb;
  store::Db db{sdb.path, store::Db::Mode::ReadOnly};
  serve::Api api{db};
};

// mean and count of test_nll per (latent, beta) over the done runs of "lb", by plain SQL
std::map<std::pair<int64_t, double>, std::pair<double, int64_t>> sql_cells(store::Db& db) {
  std::map<std::pair<int64_t, double>, std::pair<double, int64_t>> out;
  auto q = db.prepare(R"(
    SELECT pl.value, pb.value, avg(m.value), count(*)
    FROM sweep_runs sr JOIN sweeps s USING (sweep_id) JOIN runs r USING (run_id)
    JOIN params pl ON pl.run_id = r.run_id AND pl.key = 'latent'
    JOIN params pb ON pb.run_id = r.run_id AND pb.key = 'beta'
    JOIN metrics m ON m.run_id = r.run_id AND m.name = 'test_nll'
    WHERE s.name = 'lb' AND r.status = 'done' GROUP BY pl.value, pb.value)");
  while (q.step()) out[{q.get_int(0), q.get_double(1)}] = {q.get_double(2), q.get_int(3)};
  return out;
}

}  // namespace

TEST_CASE("serve: the page, Chart.js and unknown paths", "[serve]") {
  Fixture f;
  serve::Response page = get(f.api, "/");
  CHECK(page.status == 200);
  CHECK(page.content_type.rfind("text/html", 0) == 0);
  CHECK(page.body.find("<script src=\"/app.js\"></script>") != std::string::npos);
  CHECK(page.body == get(f.api, "/index.html").body);
  serve::Response js = get(f.api, "/app.js");
  CHECK(js.status == 200);
  CHECK(js.content_type.rfind("text/javascript", 0) == 0);
  CHECK(js.body == file_bytes(std::string(testing::source_dir()) + "/web/app.js"));  // embedded as committed
  CHECK(get(f.api, "/style.css").content_type.rfind("text/css", 0) == 0);
  serve::Response chart = get(f.api, "/chart.js");
  CHECK(chart.status == 200);
  CHECK(chart.file == serve::Options{}.chartjs_path);

  // a Chart.js that is not there: 404 with the package to install
  serve::Options o;
  o.chartjs_path = f.dir.file("no-chart.js");
  serve::Api without(f.db, o);
  serve::Response missing = get(without, "/chart.js");
  CHECK(missing.status == 404);
  CHECK(json::parse(missing.body)["error"].get<std::string>().find("libjs-chart.js") != std::string::npos);
  CHECK(get_json(without, "/api/info")["chartjs"] == false);

  for (const char* p :
       {"/nope", "/api", "/api/nope", "/api/sweeps/lb/extra", "/web/app.js", "/../CMakeLists.txt"}) {
    serve::Response r = get(f.api, p);
    INFO(p);
    CHECK(r.status == 404);
    CHECK(json::parse(r.body).contains("error"));
  }
  serve::Request post;
  post.method = "POST";
  post.path = "/api/runs";
  CHECK(f.api.handle(post).status == 405);
}

TEST_CASE("serve: /api/info and /api/sweeps with counts and progress", "[serve]") {
  Fixture f;
  json info = get_json(f.api, "/api/info");
  CHECK(info["runs"] == 14);
  CHECK(info["sweeps"] == 2);
  CHECK(info["read_only"] == true);
  CHECK(info["db"] == f.sdb.path);

  json sweeps = get_json(f.api, "/api/sweeps")["sweeps"];
  REQUIRE(sweeps.size() == 2);
  std::map<std::string, json> by;
  for (const auto& s : sweeps) by[s["name"]] = s;
  const json& lb = by.at("lb");
  CHECK(lb["total"] == 12);
  CHECK(lb["done"] == 11);
  CHECK(lb["diverged"] == 1);
  CHECK(lb["failed"] == 0);
  CHECK(lb["running"] == 0);
  CHECK(lb["queued"] == 0);
  CHECK(lb["progress"].get<double>() == 1.0);
  CHECK(lb["eta_s"].get<double>() == 0.0);
  CHECK(lb["description"] == "latent x beta, fake trainer");
  const json& other = by.at("other");
  CHECK(other["total"] == 2);
  CHECK(other["queued"] == 2);
  CHECK(other["progress"].get<double>() == 0.0);
  CHECK(other["eta_s"].is_null());  // nothing done yet, nothing running: no estimate
}

TEST_CASE("serve: /api/sweeps/NAME gives axes, metrics and the default table", "[serve]") {
  Fixture f;
  json s = get_json(f.api, "/api/sweeps/lb");
  REQUIRE(s["axes"].size() == 3);
  CHECK(s["axes"][0]["key"] == "latent");
  CHECK(s["axes"][0]["values"] == json::array({2, 5}));
  CHECK(s["axes"][0]["numeric"] == true);
  CHECK(s["axes"][1]["key"] == "beta");
  CHECK(s["axes"][1]["values"] == json::array({1.0, 4.0}));
  CHECK(s["axes"][2]["key"] == "seed");
  CHECK(s["axes"][2]["seed"] == true);
  CHECK(s["metrics"] == json::array({"active_units", "test_elbo", "test_nll"}));
  CHECK(s["table"]["rows"] == json::array({"latent"}));
  CHECK(s["table"]["cols"] == json::array({"beta"}));
  CHECK(s["table"]["metric"] == "test_nll");
  CHECK(get_json(f.api, "/api/sweeps/nope", {}, 404)["error"].get<std::string>().find(
            "no sweep named 'nope'") == 0);
}

TEST_CASE("serve: /api/table equals vae table --format json and plain SQL", "[serve]") {
  Fixture f;
  json t = get_json(f.api, "/api/table",
                    {{"sweep", "lb"}, {"rows", "latent"}, {"cols", "beta"}, {"metric", "test_nll"}});
  CHECK(t["command"] ==
        "vae table --sweep lb --rows latent --cols beta --metric test_nll --agg mean_se --format markdown");
  t.erase("command");
  testing::Proc p = testing::run_vae({"table", "--db", f.sdb.path, "--sweep", "lb", "--rows", "latent",
                                      "--cols", "beta", "--metric", "test_nll", "--format", "json"},
                                     f.dir.file("table"));
  REQUIRE(p.wait() == 0);
  CHECK(t == json::parse(p.out()));

  // and the numbers against SQL: means and n of each cell, the diverged run left out
  auto cells = sql_cells(f.db);
  REQUIRE(cells.size() == 4);
  for (size_t r = 0; r < 2; ++r)
    for (size_t c = 0; c < 2; ++c) {
      int64_t latent = t["rows"][r]["latent"];
      double beta = t["cols"][c]["beta"];
      auto [mean, n] = cells.at({latent, beta});
      CHECK(t["cells"][r][c]["mean"].get<double>() == Approx(mean).epsilon(1e-14));
      CHECK(t["cells"][r][c]["n"] == n);
    }
  CHECK(t["cells"][1][1]["n"] == 2);
  CHECK(t["cells"][1][1]["failed"] == 1);
  // lower test_nll is best: latent 2 -> beta 4 (97), latent 5 -> beta 1 (92)
  CHECK(t["cells"][0][1]["best"] == true);
  CHECK(t["cells"][1][0]["best"] == true);
  CHECK(t["cells"][0][0]["best"] == false);

  // the downloads: what vae table prints in that format, as an attachment
  for (const auto& [fmt, type, name] :
       std::vector<std::tuple<std::string, std::string, std::string>>{{"csv", "text/csv", "lb.csv"},
                                                                      {"markdown", "text/markdown", "lb.md"},
                                                                      {"latex", "text/x-tex", "lb.tex"}}) {
    serve::Response r =
        get(f.api, "/api/table",
            {{"sweep", "lb"}, {"rows", "latent"}, {"cols", "beta"}, {"metric", "test_nll"}, {"format", fmt}});
    INFO(fmt);
    CHECK(r.status == 200);
    CHECK(r.content_type.rfind(type, 0) == 0);
    CHECK(r.attachment == name);
    testing::Proc v = testing::run_vae({"table", "--db", f.sdb.path, "--sweep", "lb", "--rows", "latent",
                                        "--cols", "beta", "--metric", "test_nll", "--format", fmt},
                                       f.dir.file("t" + fmt));
    REQUIRE(v.wait() == 0);
    if (fmt != "latex") CHECK(r.body == v.out());
    else {  // the comment line names the command; the table itself is the same
      auto after_comment = [](const std::string& s) { return s.substr(s.find("\\begin{tabular}")); };
      CHECK(after_comment(r.body) == after_comment(v.out()));
      CHECK(r.body.find("% vae table --sweep lb --rows latent --cols beta --metric test_nll") !=
            std::string::npos);
    }
  }
  // a where filter and another aggregate go through
  json w = get_json(f.api, "/api/table",
                    {{"sweep", "lb"},
                     {"rows", "latent"},
                     {"cols", "beta"},
                     {"metric", "test_nll"},
                     {"where", "seed!=2"},
                     {"agg", "median"}});
  CHECK(w["agg"] == "median");
  CHECK(w["cells"][0][0]["n"] == 2);
  CHECK(w["cells"][0][0]["median"].get<double>() == 97.5);

  // bad requests: the message vae table gives, 400; an unknown sweep, 404
  json bad = get_json(f.api, "/api/table", {{"sweep", "lb"}, {"rows", "nope"}, {"metric", "test_nll"}}, 400);
  CHECK(bad["error"] == "--rows 'nope': not a `vae train` setting");
  CHECK(
      get_json(f.api, "/api/table", {{"sweep", "lb"}, {"rows", "latent"}, {"metric", "no_such"}}, 400)["error"]
          .get<std::string>()
          .find("--metric 'no_such': no run has it") == 0);
  CHECK(get_json(f.api, "/api/table", {{"sweep", "lb"}, {"rows", "latent"}, {"format", "pdf"}}, 400)["error"]
            .get<std::string>()
            .find("--format 'pdf'") == 0);
  CHECK(get_json(f.api, "/api/table", {{"sweep", "lb"}, {"rows", "latent"}, {"digits", "99"}}, 400)["error"]
            .get<std::string>()
            .find("digits=99") == 0);
  get_json(f.api, "/api/table", {{"sweep", "nope"}, {"rows", "latent"}}, 404);
}

TEST_CASE("serve: /api/runs filters, sorts and pages on the server", "[serve]") {
  Fixture f;
  json all = get_json(f.api, "/api/runs");
  CHECK(all["total"] == 14);
  CHECK(all["runs"].size() == 14);
  CHECK(all["params"] ==
        json::array({"latent", "beta", "epochs", "seed"}));  // those that differ, in --help order
  CHECK(all["metrics_available"] == json::array({"active_units", "test_elbo", "test_nll"}));

  json lat5 = get_json(f.api, "/api/runs", {{"where", "latent=5"}, {"sort", "test_nll"}, {"order", "desc"}});
  CHECK(lat5["total"] == 6);
  CHECK(lat5["params"] == json::array({"beta", "seed"}));
  std::vector<json> nll;
  for (const auto& r : lat5["runs"]) {
    nll.push_back(r["metrics"]["test_nll"]);
    CHECK(r["sweep"] == "lb");
  }
  // descending, the diverged run (no metric) last
  CHECK(nll == std::vector<json>{95.0, 93.0, 92.0, 91.0, 90.0, nullptr});  // beta 1: 90, 91, 95; beta 4: 92, 93
  CHECK(lat5["runs"][5]["status"] == "diverged");
  CHECK(lat5["runs"][5]["message"] == "loss is nan at epoch 3");

  // several conditions, a metric condition, status
  json sel = get_json(f.api, "/api/runs",
                      {{"where", "latent=2"}, {"where", "test_nll<99"}, {"status", "done"}, {"sort", "seed"}});
  CHECK(sel["total"] == 4);  // latent 2: beta 1 seeds 0,1 (97, 98); beta 4 seeds 0,1 (95, 96)
  CHECK(get_json(f.api, "/api/runs", {{"sweep", "other"}})["total"] == 2);
  CHECK(get_json(f.api, "/api/runs", {{"status", "diverged,queued"}})["total"] == 3);

  // pages: offset and limit, the same order as one big page
  json p1 = get_json(f.api, "/api/runs", {{"sort", "test_nll"}, {"limit", "5"}});
  json p2 = get_json(f.api, "/api/runs", {{"sort", "test_nll"}, {"limit", "5"}, {"offset", "5"}});
  json big = get_json(f.api, "/api/runs", {{"sort", "test_nll"}});
  REQUIRE(p1["runs"].size() == 5);
  REQUIRE(p2["runs"].size() == 5);
  for (int i = 0; i < 5; ++i) {
    CHECK(p1["runs"][i]["run_id"] == big["runs"][i]["run_id"]);
    CHECK(p2["runs"][i]["run_id"] == big["runs"][5 + i]["run_id"]);
  }
  CHECK(p1["total"] == 14);
  CHECK(big["runs"][0]["metrics"]["test_nll"] == 90.0);
  CHECK(get_json(f.api, "/api/runs", {{"offset", "100"}})["runs"].empty());
  json metrics = get_json(f.api, "/api/runs",
                          {{"metrics", "active_units"}, {"sort", "active_units"}, {"order", "desc"}});
  CHECK(metrics["runs"][0]["metrics"]["active_units"] == 5.0);
  CHECK_FALSE(metrics["runs"][0]["metrics"].contains("test_nll"));

  // a bad filter: 400 with the line vae query prints (after its "vae query: ")
  for (const std::string where : {"latent>=x", "latent", "nosuch<3", "hidden>2"}) {
    json e = get_json(f.api, "/api/runs", {{"where", where}}, 400);
    testing::Proc q = testing::run_vae({"query", "--db", f.sdb.path, "--where", where}, f.dir.file("q"));
    CHECK(q.wait() == 2);
    CHECK("vae query: " + e["error"].get<std::string>() + "\n" == q.err());
  }
  CHECK(get_json(f.api, "/api/runs", {{"status", "sleeping"}}, 400)["error"].get<std::string>().find(
            "--status 'sleeping'") == 0);
  CHECK(get_json(f.api, "/api/runs", {{"limit", "0"}}, 400)["error"].get<std::string>().find("limit=0") == 0);
  CHECK(get_json(f.api, "/api/runs", {{"limit", "ten"}}, 400)["error"].get<std::string>().find("limit=ten") ==
        0);
  CHECK(get_json(f.api, "/api/runs", {{"order", "up"}}, 400)["error"] == "order=up: expected asc or desc");
  get_json(f.api, "/api/runs", {{"sweep", "nope"}}, 404);
}

TEST_CASE("serve: /api/runs/ID, its artifacts, and no path a client names", "[serve]") {
  Fixture f;
  const std::string id = f.sdb.pictured_run;
  json r = get_json(f.api, "/api/runs/" + id.substr(0, 8));  // a unique prefix resolves
  CHECK(r["run_id"] == id);
  CHECK(r["status"] == "done");
  CHECK(r["config"]["latent"] == 2);
  CHECK(r["params"]["beta"] == 1.0);
  CHECK(r["kl_per_dim"] == json::array({3.0, 4.0}));
  CHECK(r["metrics"]["test_nll"] == 97.0);
  CHECK(r["curve"]["train_kl"].size() == 4);
  CHECK(r["curve"]["train_kl"][3] == json::array({4, 24.0}));
  CHECK(r["sweeps"][0]["name"] == "lb");
  CHECK(r["sweeps"][0]["point_text"] == "latent=2 beta=1 seed=0");
  CHECK(r["attempts"].size() == 1);
  CHECK(
      r["train_command"] ==
      "vae train --binarize dynamic --latent 2 --epochs 4");  // beta 1, seed 0: defaults; binarize as resolved
  CHECK(r["artifacts"].size() == 2);
  // the same document as vae runs show --format json, plus the commands
  testing::Proc show = testing::run_vae({"runs", "show", id, "--db", f.sdb.path, "--format", "json"},
                                        f.dir.file("show"));
  REQUIRE(show.wait() == 0);
  json cli = json::parse(show.out());
  for (const auto& [k, v] : cli.items()) CHECK(r[k] == v);

  get_json(f.api, "/api/runs/ffffffffffff", {}, 404);
  CHECK(get_json(f.api, "/api/runs/xyz", {}, 400)["error"].get<std::string>().find("is not a run id") !=
        std::string::npos);

  // the recorded picture: served from the path the database holds
  serve::Response img = get(f.api, "/api/runs/" + id + "/artifacts/samples.png");
  CHECK(img.status == 200);
  CHECK(img.content_type == "image/png");
  CHECK(img.file == f.sdb.png);
  // a recorded file that is not an image, an unknown kind, another run's kind: 404
  CHECK(get(f.api, "/api/runs/" + id + "/artifacts/notes.txt").status == 404);
  CHECK(get(f.api, "/api/runs/" + id + "/artifacts/passwd").status == 404);
  json others = get_json(f.api, "/api/runs", {{"sweep", "lb"}, {"sort", "test_nll"}});
  CHECK(get(f.api, "/api/runs/" + others["runs"][0]["run_id"].get<std::string>() + "/artifacts/samples.png")
            .status == 404);
  // traversal: a path in place of the kind, or around the API, never reaches the disk
  for (const std::string& p :
       std::vector<std::string>{"/api/runs/" + id + "/artifacts/../../../../etc/passwd",
                                "/api/runs/" + id + "/artifacts/" + f.sdb.png,
                                "/api/runs/" + id + "/artifacts/..%2F..%2Fetc%2Fpasswd",
                                "/api/runs/../../etc/passwd", "/../../../etc/passwd", "/etc/passwd",
                                "/api/runs/" + id + "/artifacts/%2Fetc%2Fpasswd"}) {
    serve::Response t = get(f.api, p);
    INFO(p);
    CHECK(t.status == 404);
    CHECK(t.file.empty());
    CHECK(t.body.find("root:") == std::string::npos);
  }
}

TEST_CASE("serve: /api/compare gives curves and settings side by side", "[serve]") {
  Fixture f;
  json runs = get_json(f.api, "/api/runs", {{"where", "latent=2"}, {"where", "seed=0"}});
  REQUIRE(runs["total"] == 2);
  std::string a = runs["runs"][0]["run_id"], b = runs["runs"][1]["run_id"];
  json c = get_json(f.api, "/api/compare", {{"ids", a.substr(0, 10) + "," + b}});
  REQUIRE(c["runs"].size() == 2);
  CHECK(c["runs"][0]["run_id"] == a);
  CHECK(c["runs"][0]["label"] == "latent=2 beta=1 seed=0");
  CHECK(c["runs"][1]["label"] == "latent=2 beta=4 seed=0");
  for (const char* n : {"train_loss", "train_rec", "train_kl", "valid_elbo", "samples_per_s", "train_elbo"})
    CHECK(c["runs"][0]["curve"][n].size() == 4);
  // the training ELBO is -(reconstruction + KL) of each epoch: 97 - 20 + 30 + 21 at epoch 1
  CHECK(c["runs"][0]["curve"]["train_elbo"][0][1].get<double>() == Approx(-(77.0 + 30.0 + 21.0)));
  std::set<std::string> differ;
  json hidden;
  for (const auto& s : c["settings"]) {
    if (s["differs"] == true) differ.insert(s["key"]);
    if (s["key"] == "hidden") hidden = s;
  }
  CHECK(differ == std::set<std::string>{"beta"});
  REQUIRE(hidden.is_object());  // every setting is listed, differences marked
  CHECK(hidden["differs"] == false);
  CHECK(hidden["values"][0] == hidden["values"][1]);
  CHECK(get_json(f.api, "/api/compare", {}, 400)["error"].get<std::string>().find("ids:") == 0);
  get_json(f.api, "/api/compare", {{"ids", a + ",ffffffff"}}, 404);
}

TEST_CASE("serve: the real server over HTTP, read-only, the database unchanged", "[serve]") {
  TempDir dir;
  const testing::ServeDb& sdb = shared().sdb;
  const std::string before = sha256_hex(testing::Proc::slurp(sdb.path));
  testing::RunningServer server(sdb.path, dir.file("serve"), 5);
  testing::Proc& srv = server.proc;
  const int port = server.port;
  REQUIRE(port > 0);
  httplib::Client cli("127.0.0.1", port);
  auto page = cli.Get("/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->get_header_value("Content-Type").rfind("text/html", 0) == 0);
  auto chart = cli.Get("/chart.js");
  REQUIRE(chart);
  CHECK(chart->status == 200);
  CHECK(chart->body == testing::Proc::slurp(serve::Options{}.chartjs_path));
  auto sweeps = cli.Get("/api/sweeps");
  REQUIRE(sweeps);
  CHECK(json::parse(sweeps->body)["sweeps"].size() == 2);
  auto bad = cli.Get("/api/runs?where=latent%3E%3Dx");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(json::parse(bad->body)["error"] == "--where 'latent>=x': option --latent: 'x' is not an integer");
  auto img = cli.Get(("/api/runs/" + sdb.pictured_run + "/artifacts/samples.png").c_str());
  REQUIRE(img);
  CHECK(img->status == 200);
  CHECK(img->get_header_value("Content-Type") == "image/png");
  CHECK(img->body == testing::Proc::slurp(sdb.png));
  auto csv = cli.Get("/api/table?sweep=lb&rows=latent&cols=beta&metric=test_nll&format=csv");
  REQUIRE(csv);
  CHECK(csv->get_header_value("Content-Disposition") == "attachment; filename=\"lb.csv\"");
  for (const char* p : {"/api/runs/"
                        "x/artifacts/..%2F..%2F..%2Fetc%2Fpasswd",
                        "/..%2F..%2F..%2Fetc%2Fpasswd", "/%2e%2e/%2e%2e/etc/passwd"}) {
    auto t = cli.Get(p);
    REQUIRE(t);
    INFO(p);
    CHECK(t->status >= 400);
    CHECK(t->body.find("root:") == std::string::npos);
  }
  auto post = cli.Post("/api/runs", "x", "text/plain");
  REQUIRE(post);
  CHECK(post->status == 405);
  kill(srv.pid, SIGTERM);
  srv.wait();
  CHECK(sha256_hex(testing::Proc::slurp(sdb.path)) == before);

  // a missing database: one line, exit 1; a bad port: exit 2
  testing::Proc none = testing::run_vae({"serve", "--db", dir.file("none.db"), "--port", "0"},
                                        dir.file("none"));
  CHECK(none.wait() == 1);
  CHECK(none.err() ==
        "vae serve: " + dir.file("none.db") + ": no results database here (run a sweep first, or pass --db)\n");
  CHECK(testing::run_vae({"serve", "--db", sdb.path, "--port", "70000"}, dir.file("port")).wait() == 2);
}

TEST_CASE("serve: a running sweep's ETA counts what the running runs have left", "[serve]") {
  TempDir dir;
  const std::string path = dir.file("eta.db");
  int64_t sweep_id;
  {
    auto db = store::open_for_writing(path);
    sweep_id = testing::register_sweep(*db, "name = \"eta\"\nseeds = 3\n[base]\nepochs = 2\n").second;
  }
  sweep::WorkerOptions o;
  o.db_path = path;
  o.runs_dir = dir.file("runs");
  o.sweep_id = sweep_id;
  o.max_runs = 1;
  sweep::run_worker(o, [](const ConfigMap&, const RunOptions&, RunHooks*) {
    RunResult r;
    r.status = "done";
    r.epochs_done = 2;
    r.metrics = {{"test_nll", 90.0}};
    return r;
  });
  auto db = store::open_for_writing(path);
  db->exec("UPDATE runs SET wall_s = 100 WHERE status = 'done'");  // one done run of 100 s
  store::ResultsStore st(*db);
  auto claim = st.claim_next(sweep_id, store::Claimant::self(0), dir.file("runs"),
                             120);  // one running, just started
  REQUIRE(claim.state == store::ClaimState::Claimed);
  store::Db ro(path, store::Db::Mode::ReadOnly);
  serve::Api api(ro);
  json s = get_json(api, "/api/sweeps/eta");
  CHECK(s["done"] == 1);
  CHECK(s["running"] == 1);
  CHECK(s["queued"] == 1);
  CHECK(s["progress"].get<double>() == Approx(1.0 / 3.0));
  CHECK(s["mean_run_s"].get<double>() == 100.0);
  // the queued run's 100 s, plus the running one's 100 s less the moment it has run, on one worker
  CHECK(s["eta_s"].get<double>() == Approx(200.0).margin(5.0));
  CHECK(s["eta_s"].get<double>() <= 200.0);
}

TEST_CASE("serve: /api/reproductions lists the reproduce sweeps and reports each beside the paper", "[serve]") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("experiments"));
  const std::string spec_file = testing::write(dir, "experiments/toy.toml", testing::kToySpec);
  const reproduce::Spec spec = reproduce::parse_spec_file(spec_file);
  const reproduce::ReproPlan paper = reproduce::make_plan(spec, "paper", 0, testing::fake_data_files);
  const reproduce::ReproPlan shorter = reproduce::make_plan(spec, "short", 2, testing::fake_data_files);
  testing::fill_reproduction_db(dir.file("r.db"), paper);
  testing::fill_reproduction_db(dir.file("r.db"), shorter, 1);  // one run of the short budget not done
  store::Db db(dir.file("r.db"), store::Db::Mode::ReadOnly);
  serve::Options o;
  o.experiments_dir = dir.file("experiments");
  o.data_files = testing::fake_data_files;
  serve::Api api(db, o);

  json list = get_json(api, "/api/reproductions")["reproductions"];
  REQUIRE(list.size() == 2);
  std::map<std::string, json> by_budget;
  for (const auto& r : list) by_budget[r["budget"]["name"]] = r;
  CHECK(by_budget.at("paper")["spec"] == "toy-table");
  CHECK(by_budget.at("paper")["seeds"] == 3);
  CHECK(by_budget.at("paper")["summary"]["within"] == 1);   // latent 10, beta 1: 101 vs 100.5
  CHECK(by_budget.at("paper")["summary"]["outside"] == 2);  // latent 2: 153 vs 150, 163 vs 160
  CHECK(by_budget.at("short")["seeds"] == 2);
  CHECK(by_budget.at("short")["summary"]["missing"] == 1);

  // one report: what `vae reproduce SPEC --report --format json` prints, and the command
  json rep = get_json(api, "/api/reproductions/toy-table/paper");
  const reproduce::Report direct = reproduce::build_report(db, spec, paper, paper.sweep_name);
  json expected = json::parse(reproduce::render_report(direct, reproduce::ReportFormat::Json));
  CHECK(rep["cells"] == expected["cells"]);
  CHECK(rep["rows"][1]["label"] == "latent 10");
  CHECK(rep["columns"][0]["label"] == "beta 1");
  json l10b1;
  for (const auto& c : rep["cells"])
    if (c["row"] == "l10" && c["column"] == "b1") l10b1 = c;
  CHECK(l10b1["mean"].get<double>() == Approx(101.0));
  CHECK(l10b1["ours"] == "101.00 ± 0.58");
  CHECK(l10b1["published"]["text"] == "100.5");
  CHECK(l10b1["verdict"] == "within");
  CHECK_THAT(rep["command"].get<std::string>(),
             Catch::Contains("vae reproduce " + spec_file + " --budget paper --seeds 3"));

  CHECK_THAT(get_json(api, "/api/reproductions/toy-table/long", {}, 404)["error"].get<std::string>(),
             Catch::Contains("no reproduction 'toy-table' at budget 'long'"));
  // a spec that is not under the folder: its sweeps are not reproductions here
  serve::Options elsewhere = o;
  elsewhere.experiments_dir = dir.file("nothing-here");
  serve::Api other(db, elsewhere);
  CHECK(get_json(other, "/api/reproductions")["reproductions"].empty());
}
