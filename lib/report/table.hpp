// Comparison tables: runs grouped into cells by settings (rows x columns), a
// final metric aggregated over the seeds of each cell (mean, standard error =
// sample standard deviation / sqrt(n), n), and the best cell marked.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "report/selection.hpp"
#include "store/db.hpp"

namespace vae::report {

enum class Agg { MeanSe, MeanSd, Mean, Median, Min, Max };
Agg parse_agg(const std::string& name);  // mean_se | mean_sd | mean | median | min | max
std::string agg_name(Agg a);

// +1: higher is better (test_elbo, log-likelihoods); -1: lower is better (test_nll,
// test_bpd, losses); 0: no direction known.
int metric_direction(const std::string& metric);

struct TableRequest {
  Selection selection;
  std::vector<std::string> rows;     // settings
  std::vector<std::string> cols;     // settings; empty: one column per metric
  std::vector<std::string> metrics;  // one, or several when cols is empty
  Agg agg = Agg::MeanSe;
  std::string best = "auto";  // auto (by metric) | max | min | none
};

struct CellStats {
  int n = 0;
  double mean = NAN, sd = NAN, se = NAN, median = NAN, min = NAN, max = NAN;
  int not_done = 0;  // failed or diverged runs in the cell (excluded)
  int pending = 0;   // queued or running
  int missing = 0;   // done but without the metric (or not finite)
  bool best = false;
  std::vector<std::string> run_ids;  // of the values
  double center(Agg a) const;        // the value compared for "best"
};

struct Table {
  std::vector<std::string> row_keys, col_keys;
  std::vector<std::vector<std::string>> row_values;  // per row: one value per row key
  std::vector<std::vector<std::string>> col_values;  // per column: one per col key (or the metric)
  std::vector<std::string> col_metrics;              // the metric of each column
  std::vector<std::vector<CellStats>> cells;         // [row][col]
  Agg agg = Agg::MeanSe;
  int direction = 0;                // of the marking (single-metric tables)
  std::vector<int> col_directions;  // per column when the columns are metrics
  bool best_per_row = true;         // false: best of each column (columns are metrics)
  std::string sweep;
  int uniform_n = -1;  // every non-empty cell has this n (-1: they differ)
  int total_not_done = 0, total_pending = 0;
  std::string col_label(size_t c) const;  // "beta=0.5" or the metric name
};

// Throws UsageError (unknown setting, cells that mix different configurations,
// no runs) with a one-line message.
Table build_table(store::Db& db, const TableRequest& rq);

// Statistics of a sample (exposed for tests).
CellStats stats_of(std::vector<double> values);

}  // namespace vae::report
