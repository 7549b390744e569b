// Reproduction specs: one published table (or figure) as a file of experiments/, read by
// `vae reproduce`. A spec holds the citation, the protocol as `vae train` settings (every
// setting explicit), the table's rows and columns with each published value exactly as
// printed, the budgets (`paper`: the paper's schedule; reduced ones by name, each with the
// expected values of the same protocol at that budget and where they came from) and the
// tolerance per metric:
//
//   id = "iwae-table1"
//   title = "..."
//   seeds = 2                                 # default seeds per cell
//   [citation]  authors, year, title, arxiv, where ("Table 1")
//   [protocol]  dataset = "mnist" ...         # settings shared by every cell
//   [[column]]  id, label, metric ("test_nll"; "-test_elbo" negates), measures,
//               settings = {...}, compare = "value" | "order"
//   [[row]]     id, label, settings = {...}, source, published = { <column id> = "86.76" }
//   [budget.paper]   settings = { epochs = ... }, description
//   [budget.NAME]    settings, description, rows = { <row id> = {...} },
//                    expected = { source = "...", <row id> = { <column id> = { mean, se, n } } }
//   [tolerance]          <metric> = nats (paper budget: |ours - published|)
//   [tolerance.reduced]  <metric> = nats (reduced budget: max(2 combined s.e., this))
//   [verdict]   what the report judges (default kind = "tolerance": each cell as above):
//     kind = "ordering": claims on one column's values, not on the values themselves:
//       column = "<column id>", order = [<row ids>, lowest value first],
//       signs = { <row id> = "+" | "-" }; the declaration must agree with the published
//       values. One claim per neighbouring pair of the order and one per sign.
//     kind = "figure": a figure without numbers: curves of per-epoch metrics against the
//       training samples seen, one panel (PNG) per group of rows:
//       panels = { <panel id> = [<row ids>] }, train = "-train_loss", test = "test_elbo",
//       noise = nats; claims: every curve rises (last epoch above the first), and in each
//       panel the last row's final gap train - test is not above any other row's by more
//       than max(noise, 2 combined s.e.) (more latents do not overfit).
//
//   claims = [["<row>/<column>", "<" | "<=" | ">" | ">=", "<row>/<column>"], ...]: in any
//     kind, relations between two cells' means that the paper's table shows (IWAE's NLL
//     below the VAE's at k = 5), judged at every budget; each must hold for the published
//     values of both cells.
//
// A cell (row, column) trains protocol + row + column + budget + budget.rows[row] settings
// (later wins) over the seeds. Every problem is a SpecError: "file:line: key 'k': why".
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace vae::reproduce {

class SpecError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A value as the paper prints it ("86.76", "16+5", "< -796.2") and what it reads as.
struct Published {
  std::string text;
  double value = 0;           // the number (a sum for "16+5")
  std::vector<double> parts;  // "16+5": {16, 5} (per layer); one element otherwise
};
// Throws SpecError(what) when the text is not a number, a sum, or a bound "< x".
Published parse_published(const std::string& text);

struct Expected {
  double mean = 0, se = 0;
  int n = 0;
};

struct Column {
  std::string id, label, metric, measures;
  bool negate = false;      // metric written "-name": ours is -value
  bool order_only = false;  // compare = "order": the ranking over rows and the sign
  std::map<std::string, Value> settings;
  int line = 0;
};

struct Row {
  std::string id, label, source;
  std::map<std::string, Value> settings;
  std::map<std::string, Published> published;  // by column id
  int line = 0;
};

struct Budget {
  std::string name, description;
  std::map<std::string, Value> settings;                     // must hold epochs
  std::map<std::string, std::map<std::string, Value>> rows;  // per-row overrides
  std::string expected_source;
  std::map<std::string, std::map<std::string, Expected>> expected;  // [row id][column id]
  int64_t epochs = 0;
  int line = 0;
};

// [verdict]: see the top of this file.
struct VerdictSpec {
  enum class Kind { Tolerance, Ordering, Figure };
  Kind kind = Kind::Tolerance;
  int line = 0;
  std::string column;                // ordering: the column ordered
  std::vector<std::string> order;    // ordering: row ids, lowest value first
  std::map<std::string, int> signs;  // ordering: row id -> +1 or -1
  std::vector<std::pair<std::string, std::vector<std::string>>> panels;  // figure: id -> row ids
  std::string train_metric, test_metric;                                 // figure: epoch metrics
  bool train_negate = false, test_negate = false;                        // "-name": plotted as -value
  double noise = 0;                                                      // figure: nats
  struct Relation {
    std::string a_row, a_col, op, b_row, b_col;  // a op b, op one of < <= > >=
    int line = 0;
  };
  std::vector<Relation> relations;  // claims = [...]
};
// Whether a op b, op one of < <= > >=.
bool relation_holds(double a, const std::string& op, double b);
std::string kind_name(VerdictSpec::Kind k);  // "tolerance", "ordering", "figure"

struct Spec {
  std::string file, text;
  std::string id, title;
  std::string authors, paper_title, arxiv, where;
  int64_t year = 0;
  int64_t seeds = 2;
  std::map<std::string, Value> protocol;
  std::vector<Column> columns;
  std::vector<Row> rows;
  std::vector<Budget> budgets;                                 // "paper" first
  std::map<std::string, double> tolerance, tolerance_reduced;  // by metric (without '-')
  VerdictSpec verdict;

  const Budget& budget(const std::string& name) const;  // throws SpecError naming the choices
  const Budget& paper() const { return budgets.front(); }
  std::string citation() const;  // "Burda, Grosse, Salakhutdinov (2016), arXiv:1509.00519, Table 1"
};

Spec parse_spec_file(const std::string& path);
Spec parse_spec_text(const std::string& text, const std::string& file_name);

// The settings of one cell at a budget, in the order they apply.
std::map<std::string, Value> cell_settings(const Spec& spec, const Row& row, const Column& col,
                                           const Budget& budget);

// The spec files under a folder (recursively, *.toml), sorted.
std::vector<std::string> find_specs(const std::string& folder);

}  // namespace vae::reproduce
