// The JSON API and static page of `vae serve`, as plain request -> response
// functions over a read-only results database (no sockets here: cli/serve_cmd.cpp
// binds them to cpp-httplib, and the tests call them directly).
//
//   GET /                       the page (web/index.html, app.js, style.css, embedded)
//   GET /chart.js               Chart.js from Debian's libjs-chart.js
//   GET /api/info               the database: path, schema, run count
//   GET /api/sweeps             each sweep: counts, progress, ETA
//   GET /api/sweeps/NAME        one sweep: counts, axes and their values, metrics, table defaults
//   GET /api/table?sweep=&rows=&cols=&metric=&agg=&best=&where=&format=&digits=
//                               `vae table` (same code): json, csv, markdown or latex
//   GET /api/runs?sweep=&status=&where=&sort=&order=&offset=&limit=&metrics=
//                               a page of runs (filters: the `vae query --where` grammar)
//   GET /api/runs/ID            everything about a run (as `vae runs show --format json`)
//   GET /api/runs/ID/artifacts/KIND   an image the database records for the run
//   GET /api/compare?ids=A,B    per-epoch curves and settings of several runs
//   GET /api/reproductions      the `vae reproduce` sweeps of the database whose spec is
//                               under Options::experiments_dir: spec, budget, seeds, verdicts
//   GET /api/reproductions/ID/BUDGET   that report (as `vae reproduce ID --report --format json`)
//
// Errors are JSON {"error": "one line"}: 404 for an unknown run, sweep, artifact or
// path, 400 for a bad argument (the message `vae query` / `vae table` would print).
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "store/db.hpp"
#include "sweep/plan.hpp"

namespace vae::reproduce {
struct ReproPlan;
}

namespace vae::serve {

struct Request {
  std::string method = "GET";
  std::string path;                               // decoded, without the query string
  std::multimap<std::string, std::string> query;  // decoded
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::string file;        // when set, the body is this file's content (sent by the caller)
  std::string attachment;  // when set, a download under this file name
};

struct Options {
  std::string chartjs_path = "/usr/share/javascript/chart.js/chart.min.js";
  int default_page_size = 50;
  int max_page_size = 1000;
  int max_compare = 20;
  std::string experiments_dir = "experiments";  // the reproduction specs (`vae reproduce`)
  sweep::DataFilesFn data_files;                // the run ids' data checksums (tests pass a stub)
};

// The plans of the reproductions shown so far, by spec file, budget and seeds.
using PlanCache = std::map<std::string, std::shared_ptr<const reproduce::ReproPlan>>;

// Serves one database. handle() never throws and never writes the database; it is not
// reentrant (the caller serialises requests: they share one connection).
class Api {
 public:
  Api(store::Db& db, Options options = {});
  Response handle(const Request& rq);

 private:
  Response route(const Request& rq);
  store::Db& db_;
  Options options_;
  std::set<std::string> incomplete_;  // settings some run of the database lacks
  PlanCache plans_;
};

// Splits "a,b" and repeated parameters alike into {"a", "b"}.
std::vector<std::string> list_param(const Request& rq, const std::string& key);

}  // namespace vae::serve
