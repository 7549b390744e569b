// Sweep files: a name, a base configuration (any `vae train` setting) and axes.
//
//   name = "latent_beta_mnist"
//   seeds = [0, 1, 2]              # or seeds = 3 (0, 1, 2); an axis like any other
//   [base]                         # settings shared by every run
//   [grid]                         # Cartesian product, first key slowest
//   [zip]                          # lists walked together (equal lengths)
//   [[also]]                       # a concatenated sub-sweep: the top-level base
//   base = {...}                   # overlaid with its own, and its own grid, zip
//   grid = {...}                   # and (optionally) seeds
//   [table]                        # the comparison table printed after the run
//   rows = "latent"  cols = "beta"  metric = "test_nll"
//
// The top-level axes form the first part of the sweep; each [[also]] adds one.
// When there are [[also]] blocks and no top-level [grid] or [zip], the top level
// is only the shared base (an empty [[also]] adds the base run itself).
//
// Every problem is a SweepError whose what() is one line: "file:line: key 'k': why".
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"

namespace vae::sweep {

class SweepError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Setting {
  std::string key;
  Value value;  // checked against the `vae train` schema
  int line = 0;
};

struct Axis {
  std::string key;
  std::vector<Value> values;
  std::vector<int> lines;  // of each value
  int line = 0;            // of the key
};

struct Part {
  std::string label;  // "" for the top level, else "also #k" or its name
  int line = 0;
  std::vector<Setting> base;  // top-level base, then the part's own (later wins)
  std::vector<Axis> grid;     // in file order
  std::vector<Axis> zip;
  std::vector<int64_t> seeds;  // empty: no seed axis (the base seed)
  int seeds_line = 0;
};

// The default comparison table of the sweep (all optional).
struct TableDefaults {
  std::vector<std::string> rows, cols, metrics;
  std::string agg, best;
};

struct SweepSpec {
  std::string name, description;
  std::string file;  // as given (for messages)
  std::string text;  // the file's contents
  std::vector<Part> parts;
  TableDefaults table;
};

// Parses and checks types and ranges of every value (not yet the relations
// between settings: expand() checks those on each run).
SweepSpec parse_sweep_file(const std::string& path);
SweepSpec parse_sweep_text(const std::string& text, const std::string& file_name);

// Applies `--set key=value` overrides to the base of every part (the command line
// wins over the file). A key that is an axis of the sweep is an error.
void apply_overrides(SweepSpec& spec, const std::vector<std::string>& assignments);

// The table `vae sweep run` prints at the end: [table] of the file, else rows =
// the first grid axis, cols = the second (if any), metric = test_nll.
TableDefaults default_table(const SweepSpec& spec);

// One run of the expanded sweep.
struct Point {
  ConfigMap config;                                 // canonical (resolved, validated)
  std::vector<std::pair<std::string, Value>> axes;  // the axis values that made it, incl. seed
  int part = 0;
  std::string describe() const;  // "latent=2 beta=4 seed=1"
};

// Expands in a fixed order: parts in file order; within a part, seeds slowest,
// then grid keys in file order (the last fastest), then the zip index. Checks each
// run with `vae train`'s rules and rejects two points that are the same run.
std::vector<Point> expand(const SweepSpec& spec);

// A value as a person writes it: 0.1 rather than 0.10000000000000001.
std::string short_text(const Value& v);

// The keys whose value differs between points (for listings and tables).
std::vector<std::string> varying_keys(const std::vector<Point>& points);

}  // namespace vae::sweep
