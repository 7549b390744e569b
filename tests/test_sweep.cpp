// Sweep files: parsing, validation (one-line errors with file:line and key),
// expansion order of grid, zip, seeds and [[also]], run identity of the plan.
#include <catch2/catch.hpp>

#include <set>

#include "models/settings.hpp"
#include "store/run_identity.hpp"
#include "sweep/plan.hpp"
#include "sweep/sweep_file.hpp"

using namespace vae;
using namespace vae::sweep;

namespace {

std::vector<Point> expand_text(const std::string& text) { return expand(parse_sweep_text(text, "s.toml")); }

std::string value_of(const Point& p, const std::string& key) { return value_to_string(p.config.at(key)); }

// The error message of parsing and expanding `text`, or "" when it is accepted.
std::string error_of(const std::string& text) {
  try {
    expand_text(text);
  } catch (const SweepError& e) {
    return e.what();
  }
  return "";
}

// Every error is one line naming the file and line.
void check_error(const std::string& text, int line, const std::string& key, const std::string& fragment) {
  std::string e = error_of(text);
  INFO("error: " << e);
  REQUIRE(!e.empty());
  CHECK(e.find('\n') == std::string::npos);
  CHECK(e.rfind("s.toml:" + std::to_string(line) + ":", 0) == 0);
  if (!key.empty()) CHECK(e.find("key '" + key + "'") != std::string::npos);
  CHECK(e.find(fragment) != std::string::npos);
}

std::vector<DataFile> fake_data(const ConfigMap& c) {
  return {{"/data/" + std::get<std::string>(c.at("dataset")) + ".idx", "abc123"}};
}

}  // namespace

TEST_CASE("grid is a Cartesian product, first key slowest, seeds outermost", "[sweep]") {
  auto pts = expand_text(R"(
name = "g"
seeds = [7, 9]
[base]
epochs = 2
[grid]
latent = [2, 5]
beta = [0.5, 1, 4]
)");
  REQUIRE(pts.size() == 12);
  // seed 7 first, then within a seed latent slowest, beta fastest
  CHECK(pts[0].describe() == "latent=2 beta=0.5 seed=7");
  CHECK(pts[1].describe() == "latent=2 beta=1 seed=7");
  CHECK(pts[2].describe() == "latent=2 beta=4 seed=7");
  CHECK(pts[3].describe() == "latent=5 beta=0.5 seed=7");
  CHECK(pts[6].describe() == "latent=2 beta=0.5 seed=9");
  CHECK(value_of(pts[11], "epochs") == "2");
  CHECK(value_of(pts[11], "seed") == "9");
  // an integer written for a float setting is a float
  CHECK(std::holds_alternative<double>(pts[1].config.at("beta")));
}

TEST_CASE("key order follows the file, not the alphabet", "[sweep]") {
  auto pts = expand_text("[grid]\nlr = [0.1, 0.2]\nbeta = [1, 2]\n");
  REQUIRE(pts.size() == 4);
  CHECK(pts[0].describe() == "lr=0.1 beta=1");
  CHECK(pts[1].describe() == "lr=0.1 beta=2");
  CHECK(pts[2].describe() == "lr=0.2 beta=1");
  // an inline table: by column
  pts = expand_text("grid = { lr = [0.1, 0.2], beta = [1, 2] }\n");
  CHECK(pts[1].describe() == "lr=0.1 beta=2");
}

TEST_CASE("zip walks lists together, grid x zip, seeds = N", "[sweep]") {
  auto pts = expand_text(R"(
seeds = 2
[grid]
hidden = [[16], [32, 32]]
[zip]
latent = [2, 10]
beta = [1.0, 4.0]
)");
  REQUIRE(pts.size() == 2 * 2 * 2);
  CHECK(pts[0].describe() == "hidden=16 latent=2 beta=1 seed=0");
  CHECK(pts[1].describe() == "hidden=16 latent=10 beta=4 seed=0");
  CHECK(pts[2].describe() == "hidden=32,32 latent=2 beta=1 seed=0");
  CHECK(pts[7].describe() == "hidden=32,32 latent=10 beta=4 seed=1");
}

TEST_CASE("also blocks concatenate sub-sweeps that inherit the base", "[sweep]") {
  auto spec = parse_sweep_text(R"(
name = "two_parts"
seeds = [0, 1]
[base]
dataset = "mnist"
epochs = 3
[grid]
beta = [1, 2]

[[also]]
name = "sigma"
base = { likelihood = "gaussian", binarize = "none", epochs = 5 }
grid = { sigma = ["fixed", "learned", "optimal", "per-pixel"] }
seeds = [3]
)",
                               "s.toml");
  CHECK(spec.name == "two_parts");
  REQUIRE(spec.parts.size() == 2);
  CHECK(spec.parts[1].label == "sigma");
  auto pts = expand(spec);
  REQUIRE(pts.size() == 4 + 4);
  CHECK(pts[3].describe() == "beta=2 seed=1");
  CHECK(value_of(pts[3], "likelihood") == "bernoulli");
  CHECK(value_of(pts[3], "binarize") == "dynamic");  // auto resolved
  CHECK(pts[4].part == 1);
  CHECK(pts[4].describe() == "sigma=fixed seed=3");
  CHECK(value_of(pts[4], "epochs") == "5");       // the sub-sweep's base wins
  CHECK(value_of(pts[4], "dataset") == "mnist");  // the top-level base is inherited
  CHECK(value_of(pts[7], "sigma") == "per-pixel");
  CHECK(value_of(pts[7], "beta") == "1");  // top-level axes are not inherited
  auto keys = varying_keys(pts);
  CHECK(std::find(keys.begin(), keys.end(), "sigma") != keys.end());
  CHECK(std::find(keys.begin(), keys.end(), "epochs") != keys.end());
}

TEST_CASE("top level without axes is only the base when also blocks exist", "[sweep]") {
  auto pts = expand_text(R"(
[base]
latent = 3
[[also]]
grid = { beta = [2, 3] }
[[also]]
)");
  REQUIRE(pts.size() == 3);
  CHECK(pts[0].describe() == "beta=2");
  CHECK(pts[2].describe() == "(base)");
  CHECK(value_of(pts[2], "latent") == "3");
  // no axes at all: one run, the base
  REQUIRE(expand_text("[base]\nlatent = 4\n").size() == 1);
  // the name defaults to the file's stem
  CHECK(parse_sweep_text("", "sweeps/my_sweep.toml").name == "my_sweep");
}

TEST_CASE("a sweep's default table comes from its table section or its first two axes", "[sweep]") {
  auto spec = parse_sweep_text("[grid]\nlatent = [2, 5]\nbeta = [1, 2]\n", "s.toml");
  auto d = default_table(spec);
  CHECK(d.rows == std::vector<std::string>{"latent"});
  CHECK(d.cols == std::vector<std::string>{"beta"});
  CHECK(d.metrics == std::vector<std::string>{"test_nll"});
  spec = parse_sweep_text(
      "[grid]\nlatent = [2, 5]\n[table]\nrows = \"latent\"\nmetric = [\"test_elbo\", \"test_nll\"]\nagg = \"median\"\n",
      "s.toml");
  d = default_table(spec);
  CHECK(d.cols.empty());
  CHECK(d.metrics.size() == 2);
  CHECK(d.agg == "median");
}

TEST_CASE("sweep run --set overrides the base of every part, not an axis", "[sweep]") {
  auto spec = parse_sweep_text("[base]\nepochs = 20\n[grid]\nlatent = [2, 5]\n[[also]]\n", "s.toml");
  apply_overrides(spec, {"epochs=2", "train-size=1000"});
  auto pts = expand(spec);
  REQUIRE(pts.size() == 3);
  for (const auto& p : pts) {
    CHECK(value_of(p, "epochs") == "2");
    CHECK(value_of(p, "train-size") == "1000");
  }
  CHECK_THROWS_WITH(apply_overrides(spec, {"latent=3"}), Catch::Contains("is an axis"));
  CHECK_THROWS_WITH(apply_overrides(spec, {"latnt=3"}), Catch::Contains("did you mean 'latent'"));
  CHECK_THROWS_WITH(apply_overrides(spec, {"epochs=two"}), Catch::Contains("epochs"));
  CHECK_THROWS_WITH(apply_overrides(spec, {"epochs"}), Catch::Contains("KEY=VALUE"));
}

TEST_CASE("bad sweep files: one line with file, line and key", "[sweep]") {
  SECTION("TOML syntax") { check_error("name = \"x\"\n[grid\nlatent = [1]\n", 2, "", ""); }
  SECTION("unknown top-level key") {
    check_error("name = \"x\"\ngird = 1\n", 2, "gird", "did you mean 'grid'");
  }
  SECTION("a setting at top level") { check_error("latent = 5\n", 1, "latent", "go in [base]"); }
  SECTION("unknown setting in base") {
    check_error("[base]\nlatnet = 5\n", 2, "latnet", "did you mean 'latent'");
  }
  SECTION("underscore for dash") {
    check_error("[base]\ntrain_size = 5\n", 2, "train_size", "did you mean 'train-size'");
  }
  SECTION("unknown setting in grid") {
    check_error("[grid]\n\nbeat = [1, 2]\n", 3, "beat", "did you mean 'beta'");
  }
  SECTION("unknown setting in zip") {
    check_error("[zip]\nfoo = [1]\n", 2, "foo", "not a `vae train` setting");
  }
  SECTION("wrong type in base") {
    check_error("[base]\nlatent = \"ten\"\n", 2, "latent", "expected an integer");
  }
  SECTION("wrong type in an axis value") {
    check_error("[grid]\nlatent = [2,\n  \"x\"]\n", 3, "latent", "expected an integer");
  }
  SECTION("float for an integer") {
    check_error("[grid]\nlatent = [2.5]\n", 2, "latent", "expected an integer");
  }
  SECTION("out of range") { check_error("[grid]\nlatent = [2, 0]\n", 2, "latent", "below the minimum"); }
  SECTION("not a choice") { check_error("[base]\ndataset = \"cifar\"\n", 2, "dataset", "not one of"); }
  SECTION("list of non-integers") { check_error("[base]\nhidden = [1.5]\n", 2, "hidden", "list of integers"); }
  SECTION("empty axis") { check_error("[grid]\nbeta = []\n", 2, "beta", "empty axis"); }
  SECTION("empty seeds") { check_error("seeds = []\n", 1, "seeds", "empty"); }
  SECTION("seeds = 0") { check_error("seeds = 0\n", 1, "seeds", "N >= 1"); }
  SECTION("negative seed") { check_error("seeds = [1, -2]\n", 1, "seeds", "below the minimum"); }
  SECTION("duplicate seed") { check_error("seeds = [1, 1]\n", 1, "seeds", "twice"); }
  SECTION("duplicate axis value") { check_error("[grid]\nbeta = [1, 1.0]\n", 2, "beta", "twice"); }
  SECTION("axis not a list") { check_error("[grid]\nlatent = 5\n", 2, "latent", "expected a list of values"); }
  SECTION("zip lengths differ") {
    check_error("[zip]\nlatent = [2, 5, 10]\nbeta = [1, 2]\n", 3, "beta", "2 values, but 'latent' has 3");
  }
  SECTION("key on two axes") {
    check_error("[grid]\nbeta = [1]\n[zip]\nbeta = [2]\n", 4, "beta", "already an axis");
  }
  SECTION("seed axis and seeds") {
    check_error("seeds = 2\n[grid]\nseed = [1, 2]\n", 3, "seed", "conflicts with seeds");
  }
  SECTION("relation broken by an axis value") {
    check_error("[base]\nlikelihood = \"bernoulli\"\n[grid]\nsigma = [\"fixed\",\n \"learned\"]\n", 5, "sigma",
                "need likelihood = gaussian");
  }
  SECTION("relation broken by the base") {
    check_error("[base]\nbinarize = \"fixed\"\n[grid]\nlatent = [2]\n", 2, "binarize", "binarized-mnist");
  }
  SECTION("relation inside [[also]]") {
    std::string e = error_of(
        "[grid]\nbeta = [1]\n[[also]]\nname = \"g\"\nbase = { likelihood = \"gaussian\" }\n"
        "grid = { binarize = [\"dynamic\"] }\n");
    CHECK(e.rfind("s.toml:6:", 0) == 0);
    CHECK(e.find("[[also]] 'g'") != std::string::npos);
  }
  SECTION("unknown key in [[also]]") {
    check_error("[[also]]\ngrdi = { beta = [1] }\n", 2, "grdi", "did you mean 'grid'");
  }
  SECTION("a setting directly in [[also]]") {
    check_error("[[also]]\nbeta = 2\n", 2, "beta", "base, grid or zip");
  }
  SECTION("also not an array of tables") { check_error("also = 3\n", 1, "also", "[[also]]"); }
  SECTION("bad name") { check_error("name = \"a b\"\n", 1, "name", "letters, digits"); }
  SECTION("two points are the same run") {
    check_error("[grid]\niw-chunk = [100, 200]\n", 1, "", "differ only in iw-chunk");
  }
  SECTION("unknown key in [table]") {
    check_error("[table]\nrow = \"latent\"\n", 2, "row", "did you mean 'rows'");
  }
}

TEST_CASE("plan: run ids hash resolved settings and data checksums", "[sweep]") {
  auto spec = parse_sweep_text("seeds = 2\n[grid]\nlatent = [2, 5]\n", "s.toml");
  int calls = 0;
  auto data = [&](const ConfigMap& c) {
    ++calls;
    return fake_data(c);
  };
  Plan plan = make_plan(spec, data);
  REQUIRE(plan.runs.size() == 4);
  CHECK(calls == 1);  // data checksums once per data selection
  std::set<std::string> ids;
  for (const auto& r : plan.runs) {
    CHECK(r.run_id.size() == 64);
    ids.insert(r.run_id);
  }
  CHECK(ids.size() == 4);
  CHECK(plan.runs[0].point_json == R"({"latent":2,"seed":0})");

  // binarize = auto and its resolved value are one run; non-identity settings don't count
  auto a = make_plan(parse_sweep_text("[base]\nbinarize = \"auto\"\niw-chunk = 7\n", "a.toml"), fake_data);
  auto b = make_plan(parse_sweep_text("[base]\nbinarize = \"dynamic\"\n", "b.toml"), fake_data);
  CHECK(a.runs[0].run_id == b.runs[0].run_id);
  // different data bytes: a different run
  auto c = make_plan(parse_sweep_text("[base]\nbinarize = \"dynamic\"\n", "b.toml"), [](const ConfigMap& cfg) {
    auto d = fake_data(cfg);
    d[0].sha256 = "other";
    return d;
  });
  CHECK(c.runs[0].run_id != b.runs[0].run_id);
  // the stored configuration reads back to the same settings
  ConfigMap back = store::config_from_json(a.runs[0].config_json);
  CHECK(to_json(back, false) == to_json(a.runs[0].config, false));

  PlanStatus st = plan_status(plan, {{plan.runs[0].run_id, "done"}, {plan.runs[1].run_id, "failed"}});
  CHECK(st.done == 1);
  CHECK(st.failed == 1);
  CHECK(st.fresh == 2);
  CHECK(st.to_do(false) == 2);
  CHECK(st.to_do(true) == 3);
}
