// Selecting runs from the results database: by sweep, status, and conditions on
// settings or final metrics (`--where latent=20 --where 'beta>=2'`).
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "store/db.hpp"

namespace vae::report {

// A bad --where, --rows, ... argument: what() is one line; exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One condition: KEY OP VALUE with OP one of = == != < <= > >=. KEY is a `vae train`
// setting or else a final metric. For '=' and '!=' on a setting that is not a list,
// VALUE may list alternatives: latent=2,10.
struct Condition {
  std::string key, op;
  std::vector<store::SqlValue> values;
  bool is_metric = false;
  std::string text;  // as written
};

Condition parse_condition(const std::string& text);

struct Selection {
  std::string sweep;                  // "" = all runs
  std::vector<std::string> statuses;  // "" = any; "interrupted" is not a stored status
  std::vector<Condition> where;
};

// Run ids, in sweep order (a sweep) or creation order. Throws UsageError for an
// unknown sweep or a metric no run has.
std::vector<std::string> select_runs(store::Db& db, const Selection& sel);

// A run as listings and tables see it.
struct RunRow {
  std::string run_id, status, message;
  std::map<std::string, store::SqlValue> params;
  std::map<std::string, double> metrics;
  std::string point_json;  // of the selected sweep ("" otherwise)
  int64_t epochs_done = 0, attempts = 0;
  double wall_s = 0;
  std::string started_at, ended_at;
  // Only when loaded with RunFields::identity_without: the run's identity (settings and
  // data checksums) without the named settings. Equal strings, equal remaining settings.
  std::string identity_rest;
};

// status 'running' is shown as 'interrupted' when its claimant is gone.
std::vector<RunRow> load_runs(store::Db& db, const std::vector<std::string>& run_ids,
                              const std::string& sweep = "");

// What load_runs reads of each run: a table over 10,000 runs needs only the settings it
// groups by and the metrics it aggregates, read in one query each (not four per run).
struct RunFields {
  std::vector<std::string> params;            // settings to read
  std::vector<std::string> metrics;           // metrics to read
  std::vector<std::string> identity_without;  // fills RunRow::identity_rest
};

// The runs of `run_ids` (in that order) with only the fields named; status as load_runs.
std::vector<RunRow> load_runs(store::Db& db, const std::vector<std::string>& run_ids, const RunFields& fields);

// The metric names the runs have, sorted (for messages naming what exists).
std::vector<std::string> metric_names(store::Db& db, const std::vector<std::string>& run_ids);

// Resolves a unique run-id prefix (at least 4 hex digits). Throws UsageError.
std::string resolve_run_id(store::Db& db, const std::string& prefix);

// Formatting shared by the commands: numbers with %g, lists as "500,500".
std::string format_sql(const store::SqlValue& v);

// "latent=2 beta=0.5 seed=1" from a sweep point's JSON (axis order kept).
std::string format_point(const std::string& point_json);

// Seconds as "0.4s", "12.3s", "4:05" or "1:02:03".
std::string format_seconds(double s);

// The settings whose values differ across `rows` (in schema order).
std::vector<std::string> varying_params(const std::vector<RunRow>& rows);

}  // namespace vae::report
