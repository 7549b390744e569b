#include "report/table.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "config/config.hpp"
#include "models/settings.hpp"

namespace vae::report {

Agg parse_agg(const std::string& n) {
  if (n == "mean_se") return Agg::MeanSe;
  if (n == "mean_sd" || n == "mean_std") return Agg::MeanSd;
  if (n == "mean") return Agg::Mean;
  if (n == "median") return Agg::Median;
  if (n == "min") return Agg::Min;
  if (n == "max") return Agg::Max;
  throw UsageError("--agg '" + n + "': expected mean_se, mean_sd, mean, median, min or max");
}

std::string agg_name(Agg a) {
  switch (a) {
    case Agg::MeanSe: return "mean_se";
    case Agg::MeanSd: return "mean_sd";
    case Agg::Mean: return "mean";
    case Agg::Median: return "median";
    case Agg::Min: return "min";
    case Agg::Max: return "max";
  }
  return "mean_se";
}

int metric_direction(const std::string& m) {
  auto has = [&](const char* s) { return m.find(s) != std::string::npos; };
  auto ends = [&](const std::string& s) {
    return m.size() >= s.size() && m.compare(m.size() - s.size(), s.size(), s) == 0;
  };
  if (has("samples_per_s") || has("accuracy")) return +1;
  // lower is better (test_elbo_bpd is a negative ELBO in bits per dimension)
  if (has("nll") || has("bpd") || has("loss") || ends("_rec") || has("mse") || has("error") || ends("_s"))
    return -1;
  // higher is better
  if (has("elbo") || ends("_ll") || has("log_likelihood") || has("loglik")) return +1;
  return 0;
}

double CellStats::center(Agg a) const {
  switch (a) {
    case Agg::Median: return median;
    case Agg::Min: return min;
    case Agg::Max: return max;
    default: return mean;
  }
}

CellStats stats_of(std::vector<double> v) {
  CellStats s;
  s.n = int(v.size());
  if (v.empty()) return s;
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / double(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(ss / double(v.size() - 1));
    s.se = s.sd / std::sqrt(double(v.size()));
  }
  std::sort(v.begin(), v.end());
  s.min = v.front();
  s.max = v.back();
  size_t h = v.size() / 2;
  s.median = v.size() % 2 ? v[h] : 0.5 * (v[h - 1] + v[h]);
  return s;
}

std::string Table::col_label(size_t c) const {
  if (col_keys.empty()) return col_values[c][0];
  std::string s;
  for (size_t k = 0; k < col_keys.size(); ++k) s += (k ? ", " : "") + col_keys[k] + "=" + col_values[c][k];
  return s;
}

namespace {

// Values of a key ordered numerically for numbers, else by first appearance.
struct KeyOrder {
  std::vector<std::string> labels;
  std::map<std::string, double> numeric;
  bool all_numeric = true;
  void add(const store::SqlValue& v) {
    std::string label = format_sql(v);
    if (std::find(labels.begin(), labels.end(), label) != labels.end()) return;
    labels.push_back(label);
    if (auto i = std::get_if<int64_t>(&v)) numeric[label] = double(*i);
    else if (auto d = std::get_if<double>(&v)) numeric[label] = *d;
    else all_numeric = false;
  }
  void sort() {
    if (all_numeric)
      std::stable_sort(labels.begin(), labels.end(),
                       [&](const std::string& a, const std::string& b) { return numeric[a] < numeric[b]; });
  }
};

void check_setting(const std::string& key, const char* option) {
  if (!find_option(key)) throw UsageError(std::string(option) + " '" + key + "': not a `vae train` setting");
}

// A cell's runs must differ only in the seed (and the grouping keys). Their identities
// without those settings are compared first; only a cell where they differ is read in
// full, setting by setting, to name the setting (data checksums alone may differ).
void check_cell(store::Db& db, const TableRequest& rq, const std::vector<std::string>& row,
                const std::vector<std::string>& col, const std::vector<const RunRow*>& members) {
  bool all_same = true;
  for (const RunRow* m : members) all_same = all_same && m->identity_rest == members.front()->identity_rest;
  if (all_same) return;
  std::vector<std::string> ids;
  ids.reserve(members.size());
  for (const RunRow* m : members) ids.push_back(m->run_id);
  const std::vector<RunRow> full = load_runs(db, ids);
  auto grouped = [&](const std::string& key) {
    return std::find(rq.rows.begin(), rq.rows.end(), key) != rq.rows.end() ||
           std::find(rq.cols.begin(), rq.cols.end(), key) != rq.cols.end();
  };
  for (const auto& o : train_options()) {
    if (!o.identity || o.key == "seed" || grouped(o.key)) continue;
    std::set<std::string> distinct;
    for (const RunRow& r : full) {
      auto it = r.params.find(o.key);
      distinct.insert(it == r.params.end() ? std::string() : format_sql(it->second));
    }
    if (distinct.size() <= 1) continue;
    std::string cell, vals;
    for (size_t k = 0; k < rq.rows.size(); ++k) cell += (cell.empty() ? "" : ", ") + rq.rows[k] + "=" + row[k];
    for (size_t k = 0; k < rq.cols.size(); ++k) cell += ", " + rq.cols[k] + "=" + col[k];
    for (const auto& v : distinct) vals += (vals.empty() ? "" : ", ") + v;
    throw UsageError("the cell " + cell + " mixes runs that differ in '" + o.key + "' (" + vals +
                     "): add it to --rows or --cols, or pick one with --where " + o.key + "=...");
  }
}

}  // namespace

namespace {

using Labels = std::vector<std::string>;  // one value per row (or column) key
using Groups = std::map<std::pair<Labels, Labels>, std::vector<const RunRow*>>;

void check_request(const TableRequest& rq) {
  if (rq.metrics.empty()) throw UsageError("--metric: which metric? (e.g. --metric test_nll)");
  if (rq.rows.empty()) throw UsageError("--rows: which setting varies down the rows? (e.g. --rows latent)");
  if (!rq.cols.empty() && rq.metrics.size() > 1)
    throw UsageError("several metrics make the columns: drop --cols, or give one --metric");
  for (const auto& k : rq.rows) check_setting(k, "--rows");
  for (const auto& k : rq.cols) check_setting(k, "--cols");
  for (const auto& k : rq.rows)
    if (std::find(rq.cols.begin(), rq.cols.end(), k) != rq.cols.end())
      throw UsageError("'" + k + "' is in both --rows and --cols");
}

// Every selected run (done ones are aggregated, the others counted) with the grouping
// settings and the asked metrics only; each metric must exist in some run.
std::vector<RunRow> load_table_runs(store::Db& db, const TableRequest& rq) {
  Selection sel = rq.selection;
  sel.statuses.clear();
  RunFields fields;
  fields.params = rq.rows;
  fields.params.insert(fields.params.end(), rq.cols.begin(), rq.cols.end());
  fields.metrics = rq.metrics;
  fields.identity_without = fields.params;
  fields.identity_without.push_back("seed");
  std::vector<RunRow> runs = load_runs(db, select_runs(db, sel), fields);
  if (runs.empty())
    throw UsageError("no runs match" + (sel.sweep.empty() ? std::string() : " in sweep '" + sel.sweep + "'"));
  for (const auto& m : rq.metrics) {
    if (std::any_of(runs.begin(), runs.end(), [&](const RunRow& r) { return r.metrics.count(m) > 0; }))
      continue;
    std::vector<std::string> ids;
    ids.reserve(runs.size());
    for (const auto& r : runs) ids.push_back(r.run_id);
    std::string known;
    for (const auto& n : metric_names(db, ids)) known += (known.empty() ? "" : ", ") + n;
    if (!known.empty()) throw UsageError("--metric '" + m + "': no run has it (metrics: " + known + ")");
  }
  return runs;
}

Labels labels_of(const RunRow& r, const std::vector<std::string>& keys) {
  Labels out;
  for (const auto& k : keys) {
    auto it = r.params.find(k);
    out.push_back(it == r.params.end() ? "" : format_sql(it->second));
  }
  return out;
}

// The label combinations of `keys` that occur among the runs, in lexicographic order of
// each key's own order (numeric for numbers, else first appearance).
std::vector<Labels> combinations(const std::vector<std::string>& keys, const std::vector<RunRow>& runs,
                                 const std::vector<Labels>& run_labels) {
  std::vector<KeyOrder> order(keys.size());
  for (const auto& r : runs)
    for (size_t k = 0; k < keys.size(); ++k)
      if (auto it = r.params.find(keys[k]); it != r.params.end()) order[k].add(it->second);
  std::set<Labels> present(run_labels.begin(), run_labels.end());
  std::vector<Labels> all{{}};
  for (auto& o : order) {
    o.sort();
    std::vector<Labels> next;
    for (const auto& a : all)
      for (const auto& l : o.labels) {
        next.push_back(a);
        next.back().push_back(l);
      }
    all = std::move(next);
  }
  std::vector<Labels> out;
  for (const auto& a : all)
    if (present.count(a)) out.push_back(a);
  return out;
}

// A cell's statistics of `metric` over its done runs; failed, diverged and unfinished runs
// are counted (and collected: a run with several metric columns stands in several cells).
CellStats cell_of(const std::vector<const RunRow*>& members, const std::string& metric,
                  std::set<std::string>& not_done_runs, std::set<std::string>& pending_runs) {
  std::vector<double> values;
  std::vector<std::string> ids;
  int not_done = 0, pending = 0, missing = 0;
  for (const RunRow* r : members) {
    if (r->status == "failed" || r->status == "diverged") {
      ++not_done;
      not_done_runs.insert(r->run_id);
    } else if (r->status != "done") {
      ++pending;
      pending_runs.insert(r->run_id);
    } else if (auto m = r->metrics.find(metric); m == r->metrics.end() || !std::isfinite(m->second)) {
      ++missing;
    } else {
      values.push_back(m->second);
      ids.push_back(r->run_id);
    }
  }
  CellStats cell = stats_of(values);
  cell.run_ids = ids;
  cell.not_done = not_done;
  cell.pending = pending;
  cell.missing = missing;
  return cell;
}

void fill_cells(Table& t, const Groups& groups, bool metric_columns) {
  t.cells.assign(t.row_values.size(), std::vector<CellStats>(t.col_values.size()));
  int uniform = -2;
  std::set<std::string> not_done_runs, pending_runs;
  for (size_t ri = 0; ri < t.row_values.size(); ++ri)
    for (size_t ci = 0; ci < t.col_values.size(); ++ci) {
      auto it = groups.find({t.row_values[ri], metric_columns ? Labels{} : t.col_values[ci]});
      if (it == groups.end()) continue;
      CellStats& cell = t.cells[ri][ci] = cell_of(it->second, t.col_metrics[ci], not_done_runs, pending_runs);
      if (cell.n > 0) uniform = uniform == -2 ? cell.n : (uniform == cell.n ? uniform : -1);
    }
  t.total_not_done = int(not_done_runs.size());
  t.total_pending = int(pending_runs.size());
  t.uniform_n = uniform < 0 ? -1 : uniform;
}

int direction_of(const TableRequest& rq, const std::string& metric) {
  if (rq.best == "max") return +1;
  if (rq.best == "min") return -1;
  if (rq.best == "none") return 0;
  if (rq.best != "auto") throw UsageError("--best '" + rq.best + "': expected auto, max, min or none");
  return metric_direction(metric);
}

// Marks the best of a row or column (ties all marked); nothing when fewer than two cells
// have values to compare.
void mark_best(const std::vector<CellStats*>& line, int dir, Agg agg) {
  if (dir == 0) return;
  double best = NAN;
  int candidates = 0;
  for (auto* c : line) {
    double v = c->center(agg);
    if (c->n == 0 || std::isnan(v)) continue;
    ++candidates;
    if (std::isnan(best) || (dir > 0 ? v > best : v < best)) best = v;
  }
  if (std::isnan(best) || candidates < 2) return;
  for (auto* c : line)
    if (c->n > 0 && c->center(agg) == best) c->best = true;
}

void mark_table(Table& t, const TableRequest& rq) {
  t.direction = direction_of(rq, rq.metrics[0]);
  if (t.best_per_row) {
    for (auto& row : t.cells) {
      std::vector<CellStats*> line;
      line.reserve(row.size());
      for (auto& c : row) line.push_back(&c);
      mark_best(line, t.direction, rq.agg);
    }
    return;
  }
  for (size_t ci = 0; ci < t.col_values.size(); ++ci) {
    std::vector<CellStats*> line;
    for (auto& row : t.cells) line.push_back(&row[ci]);
    t.col_directions.push_back(direction_of(rq, t.col_metrics[ci]));
    mark_best(line, t.col_directions.back(), rq.agg);
  }
}

}  // namespace

Table build_table(store::Db& db, const TableRequest& rq) {
  check_request(rq);
  const std::vector<RunRow> runs = load_table_runs(db, rq);
  Table t;
  t.sweep = rq.selection.sweep;
  t.agg = rq.agg;
  t.row_keys = rq.rows;
  t.col_keys = rq.cols;
  std::vector<Labels> run_rows, run_cols;  // each run's labels, once (a sweep may have thousands)
  for (const auto& r : runs) {
    run_rows.push_back(labels_of(r, rq.rows));
    run_cols.push_back(labels_of(r, rq.cols));
  }
  t.row_values = combinations(rq.rows, runs, run_rows);
  const bool metric_columns = rq.cols.empty();
  if (metric_columns) {
    for (const auto& m : rq.metrics) t.col_values.push_back({m});
    t.col_metrics = rq.metrics;
    t.best_per_row = false;
  } else {
    t.col_values = combinations(rq.cols, runs, run_cols);
    t.col_metrics.assign(t.col_values.size(), rq.metrics[0]);
  }
  Groups groups;  // the runs of each cell, which must differ only in the seed
  for (size_t i = 0; i < runs.size(); ++i) groups[{run_rows[i], run_cols[i]}].push_back(&runs[i]);
  for (const auto& [key, members] : groups) check_cell(db, rq, key.first, key.second, members);
  fill_cells(t, groups, metric_columns);
  mark_table(t, rq);
  return t;
}

}  // namespace vae::report
