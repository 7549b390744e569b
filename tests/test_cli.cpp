// The `vae` program's shared front door: one mapping of errors to exit codes for
// every subcommand (cli/errors.hpp), and "did you mean ...?" for a mistyped
// command, sweep action or option (util/nearest.hpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "process_util.hpp"
#include "store_test_util.hpp"
#include "util/nearest.hpp"

using vae::testing::Proc;
using vae::testing::TempDir;

namespace {

const std::vector<std::string> kCommands = {"draw",  "encode", "eval-disent", "export", "merge", "plot",
                                            "query", "runs",   "sweep",       "table",  "train"};

std::size_t lines(const std::string& s) { return std::size_t(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST_CASE("edit distance: insertions, deletions, substitutions and swapped neighbours", "[cli]") {
  CHECK(vae::edit_distance("table", "table") == 0);
  CHECK(vae::edit_distance("tabel", "table") == 1);  // one swap, not two substitutions
  CHECK(vae::edit_distance("tble", "table") == 1);
  CHECK(vae::edit_distance("tables", "table") == 1);
  CHECK(vae::edit_distance("tadle", "table") == 1);
  CHECK(vae::edit_distance("kitten", "sitting") == 3);
  CHECK(vae::edit_distance("", "runs") == 4);
  CHECK(vae::edit_distance("runs", "") == 4);
  CHECK(vae::edit_distance("ab", "ba") == 1);
  CHECK(vae::edit_distance("abc", "ca") == 3);  // optimal string alignment: a swapped pair is not edited again
}

TEST_CASE("the nearest name: close enough, else a unique prefix, else none", "[cli]") {
  CHECK(vae::nearest_name("tabel", kCommands) == "table");
  CHECK(vae::nearest_name("trian", kCommands) == "train");
  CHECK(vae::nearest_name("qeury", kCommands) == "query");
  CHECK(vae::nearest_name("sweeps", kCommands) == "sweep");
  CHECK(vae::nearest_name("evaldisent", kCommands) == "eval-disent");
  CHECK(vae::nearest_name("eval", kCommands) == "eval-disent");  // the start of one name only
  CHECK(vae::nearest_name("table", kCommands) == "table");
  CHECK_FALSE(vae::nearest_name("e", kCommands));    // the start of several
  CHECK_FALSE(vae::nearest_name("xyz", kCommands));  // 3 edits from "runs", 3 letters from anything
  CHECK_FALSE(vae::nearest_name("rn", kCommands));   // 2 edits from "runs": too many for a 4-letter name
  CHECK_FALSE(vae::nearest_name("", kCommands));
  CHECK_FALSE(vae::nearest_name("table", {}));
  // ties go to the first candidate
  CHECK(vae::nearest_name("bat", {"cat", "bar"}) == "cat");
  CHECK(vae::nearest_name("bat", {"bar", "cat"}) == "bar");
}

TEST_CASE("a mistyped command, sweep action or option: exit 2 and the nearest name", "[e2e][cli]") {
  TempDir dir;
  struct Case {
    std::vector<std::string> args;
    std::string said;
  };
  const std::vector<Case> cases = {
      {{"tabel"}, "vae: unknown command 'tabel'; did you mean table? (vae --help lists them)\n"},
      {{"eval", "x"}, "vae: unknown command 'eval'; did you mean eval-disent? (vae --help lists them)\n"},
      {{"xyz"}, "vae: unknown command 'xyz' (vae --help lists them)\n"},
      {{"table", "--formta", "md"},
       "vae table: unrecognised option '--formta'; did you mean --format? (vae table --help lists the options)\n"},
      {{"table", "--formta=md"},
       "vae table: unrecognised option '--formta=md'; did you mean --format? (vae table --help lists the "
       "options)\n"},
      {{"train", "--epocs", "2"},
       "vae train: unrecognised option '--epocs'; did you mean --epochs? (vae train --help lists the options)\n"},
      {{"sweep", "run", "x.toml", "--job", "2x"},  // a unique prefix is the option itself (Boost's guessing)
       "vae sweep run: the argument ('2x') for option '--jobs' is invalid (vae sweep run --help lists the options)\n"},
      {{"table", "--colour"},
       "vae table: unrecognised option '--colour' (vae table --help lists the options)\n"},
      {{"encode", "-x"}, "vae encode: unrecognised option '-x' (vae encode --help lists the options)\n"},
  };
  for (const auto& c : cases) {
    INFO(c.args[0] << " " << (c.args.size() > 1 ? c.args[1] : ""));
    Proc p = vae::testing::run_vae(c.args, dir.file("p"));
    CHECK(p.wait() == 2);
    CHECK(p.err() == c.said);
  }
  Proc action = vae::testing::run_vae({"sweep", "rnu"}, dir.file("action"));
  CHECK(action.wait() == 2);
  CHECK(action.err().rfind("vae sweep: unknown action 'rnu'; did you mean run?\nusage: vae sweep <action>",
                           0) == 0);
}

TEST_CASE("every subcommand: a request to fix exits 2, a missing file or database 1, in one line",
          "[e2e][cli]") {
  TempDir dir;
  const std::string none = dir.file("none.db"), ckpt = dir.file("missing.ckpt"), png = dir.file("x.png");
  const std::string bad_sweep = vae::testing::write(dir, "bad.toml", "name = \"b\"\n[grid]\nbeat = [1, 2]\n");
  const std::string sweep = vae::testing::write(dir, "s.toml", "name = \"s\"\n[grid]\nlatent = [2]\n");
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string prefix;  // the line starts with the command that failed
  };
  const std::vector<Case> cases = {
      {{"draw", "foo"}, 2, "vae draw: "},
      {{"draw", "samples", "--out", png}, 2, "vae draw: "},
      {{"draw", "samples", "--out", png, "--checkpoint", ckpt}, 1, "vae draw: "},
      {{"encode", "--out", dir.file("x.csv")}, 2, "vae encode: "},
      {{"encode", "--out", dir.file("x.csv"), "--checkpoint", ckpt}, 1, "vae encode: "},
      {{"eval-disent", "--checkpoint", ckpt}, 1, "vae eval-disent: "},
      {{"eval-disent", "--checkpoint", ckpt, "--run", "abcd"}, 2, "vae eval-disent: "},
      {{"plot", "foo"}, 2, "vae plot: "},
      {{"plot", "latents", "--checkpoint", ckpt, "--out", png}, 1, "vae plot: "},
      {{"export", "--db", none}, 1, "vae export: "},
      {{"query", "--db", none}, 1, "vae query: "},
      {{"table", "--db", none}, 1, "vae table: "},
      {{"runs", "--db", none}, 1, "vae runs: "},
      {{"merge", dir.file("out.db"), none}, 1, "vae merge: "},
      {{"sweep", "list", "--db", none}, 1, "vae sweep list: "},
      {{"sweep", "run", bad_sweep, "--db", dir.file("r.db")}, 2, "vae sweep run: "},
      {{"sweep", "run", sweep, "--db", dir.file("r.db"), "--shard", "5/2"}, 2, "vae sweep run: "},
      {{"sweep", "run", sweep, "--db", dir.file("r.db"), "--set", "latent=0"}, 2, "vae sweep run: "},
      {{"sweep", "run", sweep, "--db", dir.file("r.db"), "--set", "data-dir=" + dir.file("nowhere")},
       1,
       "vae sweep run: "},
      {{"sweep", "slurm", bad_sweep, "--array", "2", "--db", dir.file("r.db")}, 2, "vae sweep slurm: "},
      {{"sweep", "slurm", sweep, "--array", "2", "--db", dir.file("r.db"), "--set",
        "data-dir=" + dir.file("nowhere")},
       1,
       "vae sweep slurm: "},
      {{"train", "--dataset", "foo"}, 2, "vae train: "},
      {{"train", "--train-size", "999999999", "--quiet"}, 2, "vae train: "},  // the loader's invalid_argument
      {{"train", "--data-dir", dir.file("nowhere"), "--quiet"}, 1, "vae train: "},
  };
  for (const auto& c : cases) {
    std::string line;
    for (const auto& a : c.args) line += a + " ";
    INFO(line);
    Proc p = vae::testing::run_vae(c.args, dir.file("p"));
    CHECK(p.wait() == c.code);
    const std::string err = p.err();
    CHECK(lines(err) == 1);
    CHECK(err.rfind(c.prefix, 0) == 0);
  }
  CHECK_FALSE(std::filesystem::exists(dir.file("r.db")));  // nothing half-written
}
