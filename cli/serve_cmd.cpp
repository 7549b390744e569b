// vae serve: the results database in the browser (a runs table, sweeps and their
// comparison tables, learning curves, a run's settings and pictures), read-only.
// The logic is lib/serve/api.*; this file binds it to cpp-httplib.
#include <httplib.h>

#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>

#include "command.hpp"
#include "report/selection.hpp"
#include "results_common.hpp"
#include "serve/api.hpp"
#include "store/schema.hpp"
#include "train/run.hpp"

namespace vae::cli {
namespace {

namespace po = boost::program_options;
using namespace vae::cli::results;

int run_serve(const std::vector<std::string>& args) {
  po::options_description desc("vae serve options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("port", po::value<int>()->default_value(8600), "TCP port (0: any free port, printed at start)")
      ("host", po::value<std::string>()->default_value("127.0.0.1"),
       "address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)")
      ("chartjs", po::value<std::string>()->default_value(serve::Options{}.chartjs_path),
       "Chart.js file served to the page (Debian: libjs-chart.js)")
      ("threads", po::value<int>()->default_value(4), "connections handled at once")
      ("experiments", po::value<std::string>()->default_value("experiments"),
       "folder of the reproduction specs: the Reproductions view reports the `vae reproduce` sweeps of the database");
  // clang-format on
  add_db_option(desc);
  po::variables_map vm;
  if (auto rc = parse("vae serve", "vae serve [--db FILE] [--port 8600] [--host 127.0.0.1]", desc, {}, args,
                      vm))
    return *rc;
  const int port = vm["port"].as<int>();
  if (port < 0 || port > 65535)
    throw report::UsageError("--port " + std::to_string(port) + ": expected 0 to 65535");
  const int threads = vm["threads"].as<int>();
  if (threads < 1 || threads > 64)
    throw report::UsageError("--threads " + std::to_string(threads) + ": expected 1 to 64");

  // Read-only, and no upgrade of an older schema: the server never writes the database.
  store::Db db(vm["db"].as<std::string>(), store::Db::Mode::ReadOnly);
  store::check_readable(db);
  // A long-lived reader: keep pages in memory between requests (128 MB cache, the file mapped).
  db.exec("PRAGMA cache_size = -131072");
  db.exec("PRAGMA mmap_size = 268435456");
  serve::Options options;
  options.chartjs_path = vm["chartjs"].as<std::string>();
  options.experiments_dir = vm["experiments"].as<std::string>();
  options.data_files = &vae::data_files_for;
  serve::Api api(db, options);
  std::mutex one_at_a_time;  // the requests share the connection (short read transactions)

  httplib::Server server;
  server.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  auto handler = [&](const httplib::Request& in, httplib::Response& out) {
    serve::Request rq;
    rq.method = in.method;
    rq.path = in.path;
    for (const auto& [k, v] : in.params) rq.query.emplace(k, v);
    serve::Response r;
    {
      std::lock_guard<std::mutex> lock(one_at_a_time);
      r = api.handle(rq);
    }
    if (!r.file.empty()) {
      std::ifstream f(r.file, std::ios::binary);
      std::ostringstream s;
      s << f.rdbuf();
      if (!f) {
        r.status = 404;
        r.content_type = "application/json";
        r.body = "{\"error\":\"cannot read the recorded file\"}";
      } else {
        r.body = s.str();
      }
    }
    out.status = r.status;
    if (!r.attachment.empty())
      out.set_header("Content-Disposition", "attachment; filename=\"" + r.attachment + "\"");
    out.set_header("Cache-Control", "no-store");
    out.set_content(r.body, r.content_type);
  };
  server.Get(".*", handler);
  server.Post(".*", handler);
  server.Put(".*", handler);
  server.Delete(".*", handler);
  server.Patch(".*", handler);

  const std::string host = vm["host"].as<std::string>();
  int bound = port;
  if (port == 0) bound = server.bind_to_any_port(host);
  else if (!server.bind_to_port(host, port)) bound = -1;
  if (bound <= 0) {
    std::cerr << "vae serve: cannot listen on " << host << ":" << port
              << " (in use, or not an address of this machine)\n";
    return kExitError;
  }
  std::cout << "vae serve: http://" << host << ":" << bound << "/  (" << db.path()
            << ", read-only; Ctrl-C stops)" << std::endl;
  server.listen_after_bind();
  return kExitOk;
}

int run_serve_cmd(const std::vector<std::string>& args) {
  try {
    return run_serve(args);
  } catch (const report::UsageError& e) {
    std::cerr << "vae serve: " << e.what() << "\n";
    return kExitUsage;
  } catch (const store::DbError& e) {
    std::cerr << "vae serve: " << e.what() << "\n";
    return kExitError;
  }
}

Register reg{
    {"serve", "the results database in the browser: sweeps, tables, runs, curves (read-only)", &run_serve_cmd}};

}  // namespace
}  // namespace vae::cli
