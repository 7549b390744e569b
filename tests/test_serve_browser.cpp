// vae serve in a real browser: headless Chromium opens each view of a test database
// served on a free local port; the rendered DOM (after the page's scripts ran) is
// checked against the database: the comparison table's cells and best marks, the runs
// table after a filter, charts whose canvases hold drawn pixels, a picture that
// loaded. A screenshot of each view goes to build/ui-test/ for a person to look at.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <set>

#include "process_util.hpp"
#include "reproduce_test_util.hpp"
#include "serve_test_util.hpp"
#include "train/run.hpp"

using namespace vae;
using vae::testing::TempDir;

namespace {

const char* kChromium = "/usr/bin/chromium";

// Runs headless Chromium on url: the DOM after `budget_ms` of virtual time (the page's
// fetches and scripts done), and a screenshot when `png` is given.
std::string open_page(const TempDir& dir, const std::string& url, const std::string& png, int n) {
  const std::string profile = dir.file("chromium-" + std::to_string(n));
  const std::string out = dir.file("dom-" + std::to_string(n) + ".html");
  std::string cmd = std::string(kChromium) +
                    " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
                    " --disable-background-networking --disable-component-update --disable-sync"
                    " --hide-scrollbars --user-data-dir='" +
                    profile +
                    "' --virtual-time-budget=2500"
                    " --window-size=1400,1100";
  if (!png.empty()) cmd += " --screenshot='" + png + "'";
  cmd += " --dump-dom '" + url + "' > '" + out + "' 2> '" + out + ".err'";
  int rc = std::system(cmd.c_str());
  INFO(cmd << "\n" << testing::Proc::slurp(out + ".err").substr(0, 2000));
  REQUIRE(rc == 0);
  std::string dom = testing::Proc::slurp(out);
  REQUIRE(dom.find("data-state=\"ready\"") != std::string::npos);  // the view finished rendering
  return dom;
}

// The text of an element with an attribute, tags stripped ("" when absent).
std::string text_of(const std::string& html) {
  std::string t = std::regex_replace(html, std::regex("<[^>]*>"), "");
  for (const auto& [entity, c] : std::vector<std::pair<std::string, std::string>>{
           {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&nbsp;", " "}, {"&amp;", "&"}})
    t = std::regex_replace(t, std::regex(entity), c);
  return t;
}

std::vector<std::smatch> all(const std::string& s, const std::regex& re) {
  std::vector<std::smatch> out;
  for (auto it = std::sregex_iterator(s.begin(), s.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back(*it);
  return out;
}

long ink(const std::string& dom, const std::string& canvas_id) {
  std::smatch m;
  if (!std::regex_search(dom, m, std::regex("<canvas id=\"" + canvas_id + "\"[^>]*data-ink=\"(\\d+)\"")))
    return -1;
  return std::stol(m[1]);
}

std::string fixed(double x, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

}  // namespace

TEST_CASE("serve in headless Chromium: every view rendered from the database", "[serve][browser][e2e]") {
  REQUIRE(std::filesystem::exists(kChromium));  // scripts/setup.sh installs Debian's chromium
  TempDir dir;
  testing::ServeDb sdb = testing::make_serve_db(dir);
  // a reproduction: the toy spec on Frey Face (a small file to checksum), run ids as the
  // server computes them (the real data files' checksums)
  std::filesystem::create_directories(dir.file("experiments"));
  std::string toy = testing::kToySpec;
  toy.replace(toy.find("dataset = \"mnist\""), 17, "dataset = \"frey-face\"\nlikelihood = \"gaussian\"");
  const reproduce::Spec spec = reproduce::parse_spec_file(testing::write(dir, "experiments/toy.toml", toy));
  testing::fill_reproduction_db(sdb.path, reproduce::make_plan(spec, "paper", 0, &vae::data_files_for));
  testing::RunningServer server(sdb.path, dir.file("serve"), 10, {"--experiments", dir.file("experiments")});
  const int port = server.port;
  REQUIRE(port > 0);
  const std::string base = "http://127.0.0.1:" + std::to_string(port) + "/#/";
  const std::filesystem::path shots = std::filesystem::path(testing::vae_binary()).parent_path() / "ui-test";
  std::filesystem::create_directories(shots);
  int n = 0;
  auto shot = [&](const std::string& name) { return (shots / (name + ".png")).string(); };
  store::Db db(sdb.path, store::Db::Mode::ReadOnly);

  SECTION("sweeps, the comparison table and its plot") {
    std::string dom = open_page(dir, base + "sweeps", shot("sweeps"), n++);
    std::smatch m;
    REQUIRE(std::regex_search(dom, m, std::regex("<tr data-sweep=\"lb\">(.*?)</tr>")));
    const std::string lb = m[1];
    CHECK(lb.find("<td class=\"num total\">12</td>") != std::string::npos);
    CHECK(lb.find("<td class=\"num done status-done\">11</td>") != std::string::npos);
    CHECK(lb.find("<td class=\"num diverged status-diverged\">1</td>") != std::string::npos);
    REQUIRE(std::regex_search(dom, m, std::regex("<tr data-sweep=\"other\">(.*?)</tr>")));
    CHECK(std::string(m[1]).find("<td class=\"num queued\">2</td>") != std::string::npos);

    dom = open_page(dir, base + "sweep/lb?rows=latent&cols=beta&metric=test_nll", shot("sweep_table"), n++);
    // every cell: mean ± standard error (n) of the done runs' test_nll, from the database
    auto q = db.prepare(R"(
      SELECT pl.value, pb.value, m.value FROM sweep_runs sr JOIN sweeps s USING (sweep_id) JOIN runs r USING (run_id)
      JOIN params pl ON pl.run_id = r.run_id AND pl.key = 'latent'
      JOIN params pb ON pb.run_id = r.run_id AND pb.key = 'beta'
      JOIN metrics m ON m.run_id = r.run_id AND m.name = 'test_nll'
      WHERE s.name = 'lb' AND r.status = 'done')");
    std::map<std::pair<std::string, std::string>, std::vector<double>> values;
    while (q.step())
      values[{std::to_string(q.get_int(0)), q.get_double(1) == 1.0 ? "beta=1" : "beta=4"}].push_back(
          q.get_double(2));
    auto cells = all(
        dom,
        std::regex(
            "<td class=\"num( best)?\" data-row=\"([^\"]*)\" data-col=\"([^\"]*)\" data-n=\"(\\d+)\"[^>]*>(.*?)</td>"));
    REQUIRE(cells.size() == 4);
    std::set<std::pair<std::string, std::string>> best;
    for (const auto& c : cells) {
      const auto& v = values.at({c[2], c[3]});
      double mean = 0, ss = 0;
      for (double x : v) mean += x / double(v.size());
      for (double x : v) ss += (x - mean) * (x - mean);
      double se = std::sqrt(ss / double(v.size() - 1)) / std::sqrt(double(v.size()));
      INFO(c[2] << " " << c[3]);
      CHECK(std::stoul(c[4]) == v.size());
      CHECK(text_of(c[5]) == fixed(mean, 2) + " ± " + fixed(se, 2) + " (" + std::to_string(v.size()) + ")");
      if (c[1].length()) best.insert({c[2], c[3]});
    }
    // lower test_nll is best in each row: latent 2 -> beta 4, latent 5 -> beta 1
    CHECK(best == std::set<std::pair<std::string, std::string>>{{"2", "beta=4"}, {"5", "beta=1"}});
    CHECK(ink(dom, "plot-metric") > 2000);  // the line plot was drawn
    CHECK(
        dom.find(
            "href=\"/api/table?sweep=lb&amp;rows=latent&amp;metric=test_nll&amp;agg=mean_se&amp;cols=beta&amp;format=csv\"") !=
        std::string::npos);
  }

  SECTION("runs after a filter, and a bad filter") {
    std::string dom = open_page(dir, base + "runs?where=latent%3D5&sort=test_nll", shot("runs_filtered"), n++);
    std::vector<std::string> expected;  // the latent-5 runs by test_nll, the diverged one last
    auto q = db.prepare(
        "SELECT r.run_id FROM runs r JOIN params p ON p.run_id = r.run_id AND p.key = 'latent' AND p.value = 5 "
        "LEFT JOIN metrics m ON m.run_id = r.run_id AND m.name = 'test_nll' ORDER BY m.value IS NULL, m.value");
    while (q.step()) expected.push_back(q.get_text(0));
    REQUIRE(expected.size() == 6);
    CHECK(dom.find("<table id=\"runs-table\" data-total=\"6\">") != std::string::npos);
    std::vector<std::string> shown;
    for (const auto& m : all(dom, std::regex("<tr data-run=\"([0-9a-f]{64})\">"))) shown.push_back(m[1]);
    CHECK(shown == expected);
    auto nll = all(dom, std::regex("<td class=\"num\" data-key=\"test_nll\">([^<]*)</td>"));
    REQUIRE(nll.size() == 6);
    CHECK(nll[0][1] == "90.000");
    CHECK(nll[4][1] == "95.000");
    CHECK(nll[5][1] == "");
    CHECK(dom.find("data-key=\"latent\"") == std::string::npos);  // the same for all: not a column

    dom = open_page(dir, base + "runs?where=latent%3E%3Dx", "", n++);
    CHECK(text_of(dom).find("--where 'latent>=x': option --latent: 'x' is not an integer") !=
          std::string::npos);
    CHECK(dom.find("runs-table") == std::string::npos);
  }

  SECTION("compare two runs, and one run with its picture") {
    std::vector<std::string> ids;
    auto q = db.prepare(
        "SELECT r.run_id FROM sweep_runs sr JOIN sweeps s USING (sweep_id) JOIN runs r USING (run_id) "
        "WHERE s.name = 'lb' AND sr.position IN (0, 1) ORDER BY sr.position");
    while (q.step()) ids.push_back(q.get_text(0));
    REQUIRE(ids.size() == 2);  // seed 0, latent 2, beta 1 and 4 (the last grid axis is the fastest)
    std::string dom = open_page(dir, base + "compare?ids=" + ids[0] + "," + ids[1], shot("compare"), n++);
    for (const char* c :
         {"curve-train_elbo", "curve-train_rec", "curve-train_kl", "curve-valid_elbo", "curve-samples_per_s"}) {
      INFO(c);
      CHECK(ink(dom, c) > 2000);
    }
    std::set<std::string> differs;
    for (const auto& m : all(dom, std::regex("<tr class=\"differs\" data-key=\"([^\"]+)\">")))
      differs.insert(m[1]);
    CHECK(differs == std::set<std::string>{"beta"});

    dom = open_page(dir, base + "run/" + sdb.pictured_run, shot("run"), n++);
    CHECK(std::regex_search(
        dom,
        std::regex(
            "<img src=\"/api/runs/" + sdb.pictured_run +
            "/artifacts/samples.png\" alt=\"samples.png\" data-kind=\"samples.png\" data-loaded=\"24x16\">")));
    CHECK(ink(dom, "kl-chart") > 1000);
    CHECK(ink(dom, "run-curve-train_kl") > 1000);
    CHECK(
        dom.find(
            "<pre class=\"cmd\" id=\"train-command\">vae train --binarize dynamic --latent 2 --epochs 4</pre>") !=
        std::string::npos);

    dom = open_page(dir, base + "run/ffffffffffff", "", n++);
    CHECK(std::regex_search(
        dom, std::regex("<div class=\"error\" id=\"error\">no run with id ffffffffffff in [^<]*</div>")));
  }
  SECTION("reproductions: the list, and a report beside the published values") {
    std::string dom = open_page(dir, base + "reproductions", shot("reproductions"), n++);
    std::smatch m;
    REQUIRE(
        std::regex_search(dom, m, std::regex("<tr data-spec=\"toy-table\" data-budget=\"paper\">(.*?)</tr>")));
    CHECK(text_of(m[1]).find("1 within, 2 outside, 0 not comparable, 0 missing") != std::string::npos);

    dom = open_page(dir, base + "reproduction/toy-table/paper", shot("reproduction"), n++);
    // latent 10, beta 1: seeds give 100, 101, 102 (the fake trainer): 101.00 ± 0.58 against 100.5
    REQUIRE(std::regex_search(
        dom, m,
        std::regex(
            "<td class=\"num published\">100.5</td><td class=\"num ours verdict-within\" data-cell=\"l10/b1\"[^>]*>([^<]*)</td>")));
    CHECK(text_of(m[1]) == "101.00 ± 0.58 ✓");
    REQUIRE(std::regex_search(dom, m, std::regex("data-cell=\"l2/b4\"[^>]*>([^<]*)</td>")));
    CHECK(text_of(m[1]) == "163.00 ± 1.73 ✗");  // 160, 163, 166 against 160.0
    CHECK(dom.find("1 within, 2 outside, 0 not comparable, 0 missing") != std::string::npos);
  }
  for (const auto& e : std::filesystem::directory_iterator(shots))
    if (e.path().extension() == ".png")
      CHECK(std::filesystem::file_size(e.path()) > 10000);  // not a blank page
}
