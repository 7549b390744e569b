#include "reproduce/spec.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "sweep/toml_settings.hpp"

namespace vae::reproduce {

namespace {

using sweep::in_file_order;
using sweep::line_of;

bool is_id(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

// The number at text[pos...], or nullopt.
std::optional<double> number_at(const std::string& text, size_t& pos) {
  while (pos < text.size() && text[pos] == ' ') ++pos;
  const char* begin = text.c_str() + pos;
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  if (end == begin || !std::isfinite(v)) return std::nullopt;
  pos += size_t(end - begin);
  while (pos < text.size() && text[pos] == ' ') ++pos;
  return v;
}

class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(int line, const std::string& key, const std::string& section,
                         const std::string& msg) const {
    throw SpecError(sweep::located_message(file_, line, key, section, msg));
  }

  Spec parse(const std::string& text) {
    toml::table root;
    try {
      root = toml::parse(text, file_);
    } catch (const toml::parse_error& e) {
      fail(int(e.source().begin.line), "", "", std::string(e.description()));
    }
    Spec spec;
    spec.file = file_;
    spec.text = text;
    const toml::table* budgets = nullptr;
    const toml::table* verdict = nullptr;
    int budgets_line = 1;
    for (const auto& [key, node] : in_file_order(root)) {
      const int line = line_of(*node);
      if (key == "id") spec.id = identifier(*node, key, "");
      else if (key == "title") spec.title = string(*node, key, "");
      else if (key == "seeds") spec.seeds = positive(*node, key, "", 1000);
      else if (key == "citation") citation(table(*node, key), spec);
      else if (key == "protocol") spec.protocol = settings(table(*node, key), "protocol");
      else if (key == "column") columns(*node, spec);
      else if (key == "row") rows(*node, spec);
      else if (key == "budget") budgets = &table(*node, key), budgets_line = line;
      else if (key == "tolerance") tolerance(table(*node, key), spec);
      else if (key == "verdict") verdict = &table(*node, key), spec.verdict.line = line;
      else
        fail(line, key, "",
             "unknown key" + sweep::suggestion(key, {"id", "title", "seeds", "citation", "protocol", "column",
                                                     "row", "budget", "tolerance", "verdict"}));
    }
    if (spec.id.empty()) fail(1, "id", "", "missing: every spec needs an id (e.g. id = \"iwae-table1\")");
    if (spec.authors.empty() || spec.year == 0 || spec.where.empty())
      fail(1, "citation", "", "missing: authors, year and where (the table or figure) are required");
    if (spec.columns.empty()) fail(1, "column", "", "missing: at least one [[column]]");
    if (spec.rows.empty()) fail(1, "row", "", "missing: at least one [[row]]");
    if (!budgets) fail(1, "budget", "", "missing: [budget.paper] with the paper's schedule");
    read_budgets(*budgets, budgets_line, spec);
    if (verdict) read_verdict(*verdict, spec);
    check_cells(spec);
    return spec;
  }

 private:
  const toml::table& table(const toml::node& n, const std::string& key) const {
    if (auto t = n.as_table()) return *t;
    fail(line_of(n), key, "", "expected a table, e.g. [" + key + "]");
  }
  std::string string(const toml::node& n, const std::string& key, const std::string& section) const {
    if (auto s = n.as_string()) return s->get();
    fail(line_of(n), key, section, "expected a string");
  }
  std::string identifier(const toml::node& n, const std::string& key, const std::string& section) const {
    std::string s = string(n, key, section);
    if (!is_id(s)) fail(line_of(n), key, section, "'" + s + "': use letters, digits, '_', '-' and '.' only");
    return s;
  }
  int64_t positive(const toml::node& n, const std::string& key, const std::string& section, int64_t max) const {
    auto x = n.as_integer();
    if (!x || x->get() < 1 || x->get() > max)
      fail(line_of(n), key, section, "expected an integer from 1 to " + std::to_string(max));
    return x->get();
  }
  double number(const toml::node& n, const std::string& key, const std::string& section) const {
    if (auto x = n.as_floating_point()) return x->get();
    if (auto x = n.as_integer()) return double(x->get());
    fail(line_of(n), key, section, "expected a number");
  }

  std::map<std::string, Value> settings(const toml::table& t, const std::string& section) const {
    std::map<std::string, Value> out;
    try {
      for (const auto& s : sweep::read_settings(file_, t, section)) out[s.key] = s.value;
    } catch (const sweep::SweepError& e) {
      throw SpecError(e.what());
    }
    return out;
  }

  void citation(const toml::table& t, Spec& spec) const {
    for (const auto& [key, node] : in_file_order(t)) {
      if (key == "authors") spec.authors = string(*node, key, "citation");
      else if (key == "title") spec.paper_title = string(*node, key, "citation");
      else if (key == "arxiv") spec.arxiv = string(*node, key, "citation");
      else if (key == "where") spec.where = string(*node, key, "citation");
      else if (key == "year") spec.year = positive(*node, key, "citation", 3000);
      else
        fail(line_of(*node), key, "citation",
             "unknown key" + sweep::suggestion(key, {"authors", "title", "arxiv", "where", "year"}));
    }
  }

  const toml::array& blocks(const toml::node& n, const std::string& key) const {
    auto a = n.as_array();
    if (!a || !a->is_array_of_tables()) fail(line_of(n), key, "", "expected [[" + key + "]] blocks");
    return *a;
  }

  void columns(const toml::node& n, Spec& spec) const {
    int k = 0;
    for (const auto& elem : blocks(n, "column")) {
      const std::string section = "column #" + std::to_string(++k);
      Column c;
      c.line = line_of(elem);
      for (const auto& [key, node] : in_file_order(*elem.as_table())) {
        if (key == "id") c.id = identifier(*node, key, section);
        else if (key == "label") c.label = string(*node, key, section);
        else if (key == "measures") c.measures = string(*node, key, section);
        else if (key == "settings") c.settings = settings(table(*node, key), section + ".settings");
        else if (key == "metric") {
          c.metric = string(*node, key, section);
          c.negate = !c.metric.empty() && c.metric[0] == '-';
          if (c.negate) c.metric = c.metric.substr(1);
          if (!is_id(c.metric)) fail(line_of(*node), key, section, "expected a metric name, e.g. test_nll");
        } else if (key == "compare") {
          const std::string v = string(*node, key, section);
          if (v != "value" && v != "order")
            fail(line_of(*node), key, section, "'" + v + "' is not one of value, order");
          c.order_only = v == "order";
        } else {
          fail(line_of(*node), key, section,
               "unknown key" +
                   sweep::suggestion(key, {"id", "label", "measures", "settings", "metric", "compare"}));
        }
      }
      if (c.id.empty() || c.metric.empty()) fail(c.line, "", section, "a column needs an id and a metric");
      if (c.label.empty()) c.label = c.id;
      for (const auto& o : spec.columns)
        if (o.id == c.id)
          fail(c.line, "id", section,
               "'" + c.id + "' is already a column (line " + std::to_string(o.line) + ")");
      spec.columns.push_back(std::move(c));
    }
  }

  void rows(const toml::node& n, Spec& spec) const {
    int k = 0;
    for (const auto& elem : blocks(n, "row")) {
      const std::string section = "row #" + std::to_string(++k);
      Row r;
      r.line = line_of(elem);
      const toml::table* published = nullptr;
      for (const auto& [key, node] : in_file_order(*elem.as_table())) {
        if (key == "id") r.id = identifier(*node, key, section);
        else if (key == "label") r.label = string(*node, key, section);
        else if (key == "source") r.source = string(*node, key, section);
        else if (key == "settings") r.settings = settings(table(*node, key), section + ".settings");
        else if (key == "published") published = &table(*node, key);
        else
          fail(line_of(*node), key, section,
               "unknown key" + sweep::suggestion(key, {"id", "label", "source", "settings", "published"}));
      }
      if (r.id.empty()) fail(r.line, "id", section, "missing: every row needs an id");
      if (r.label.empty()) r.label = r.id;
      if (r.source.empty())
        fail(
            r.line, "source", section,
            "missing: say where the row's published values were read (e.g. \"Table 1\"), or why there are none");
      if (published) read_published(*published, section, spec, r);
      for (const auto& o : spec.rows)
        if (o.id == r.id)
          fail(r.line, "id", section, "'" + r.id + "' is already a row (line " + std::to_string(o.line) + ")");
      spec.rows.push_back(std::move(r));
    }
  }

  void read_published(const toml::table& t, const std::string& section, const Spec& spec, Row& r) const {
    for (const auto& [key, node] : in_file_order(t)) {
      const std::string where = section + ".published";
      if (!column_of(spec, key))
        fail(line_of(*node), key, where, "no such column" + sweep::suggestion(key, column_ids(spec)));
      std::string text;
      if (auto s = node->as_string()) text = s->get();
      else if (node->is_number()) text = toml_text(*node);
      else fail(line_of(*node), key, where, "expected the value as printed, e.g. \"86.76\" or \"16+5\"");
      try {
        r.published[key] = parse_published(text);
      } catch (const SpecError& e) {
        fail(line_of(*node), key, where, e.what());
      }
    }
  }

  void read_budgets(const toml::table& t, int line, Spec& spec) const {
    for (const auto& [name, node] : in_file_order(t)) {
      const std::string section = "budget." + name;
      if (!is_id(name))
        fail(line_of(*node), "", section, "a budget name uses letters, digits, '_', '-' and '.'");
      Budget b;
      b.name = name;
      b.line = line_of(*node);
      const toml::table* expected = nullptr;
      for (const auto& [key, n2] : in_file_order(table(*node, section))) {
        if (key == "description") b.description = string(*n2, key, section);
        else if (key == "settings") b.settings = settings(table(*n2, key), section + ".settings");
        else if (key == "rows") {
          for (const auto& [row, n3] : in_file_order(table(*n2, key))) {
            if (!row_of(spec, row))
              fail(line_of(*n3), row, section + ".rows", "no such row" + sweep::suggestion(row, row_ids(spec)));
            b.rows[row] = settings(table(*n3, row), section + ".rows." + row);
          }
        } else if (key == "expected") expected = &table(*n2, key);
        else
          fail(line_of(*n2), key, section,
               "unknown key" + sweep::suggestion(key, {"description", "settings", "rows", "expected"}));
      }
      auto epochs = b.settings.find("epochs");
      if (epochs == b.settings.end())
        fail(b.line, "settings", section, "a budget needs its schedule: settings = { epochs = N, ... }");
      b.epochs = std::get<int64_t>(epochs->second);
      if (expected) read_expected(*expected, section + ".expected", spec, b);
      if (name == "paper") spec.budgets.insert(spec.budgets.begin(), std::move(b));
      else spec.budgets.push_back(std::move(b));
    }
    if (spec.budgets.empty() || spec.budgets.front().name != "paper")
      fail(line, "budget", "", "missing: [budget.paper], the paper's own schedule");
    if (!spec.paper().expected.empty())
      fail(spec.paper().line, "expected", "budget.paper",
           "the paper's budget is compared with the published values");
  }

  void read_expected(const toml::table& t, const std::string& section, const Spec& spec, Budget& b) const {
    for (const auto& [key, node] : in_file_order(t)) {
      if (key == "source") {
        b.expected_source = string(*node, key, section);
        continue;
      }
      if (!row_of(spec, key))
        fail(line_of(*node), key, section, "no such row" + sweep::suggestion(key, row_ids(spec)));
      for (const auto& [col, n2] : in_file_order(table(*node, key))) {
        const std::string where = section + "." + key;
        if (!column_of(spec, col))
          fail(line_of(*n2), col, where, "no such column" + sweep::suggestion(col, column_ids(spec)));
        Expected e;
        bool has_mean = false;
        for (const auto& [f, n3] : in_file_order(table(*n2, col))) {
          if (f == "mean") e.mean = number(*n3, f, where + "." + col), has_mean = true;
          else if (f == "se") e.se = number(*n3, f, where + "." + col);
          else if (f == "n") e.n = int(positive(*n3, f, where + "." + col, 1000));
          else fail(line_of(*n3), f, where + "." + col, "unknown key (mean, se, n)");
        }
        if (!has_mean || e.n == 0) fail(line_of(*n2), col, where, "an expected value needs mean, se and n");
        b.expected[key][col] = e;
      }
    }
    if (!b.expected.empty() && b.expected_source.empty())
      fail(b.line, "source", section, "missing: where the expected values came from (script, commit, seeds)");
  }

  void tolerance(const toml::table& t, Spec& spec) const {
    for (const auto& [key, node] : in_file_order(t)) {
      if (key == "reduced") {
        for (const auto& [m, n2] : in_file_order(table(*node, key)))
          spec.tolerance_reduced[m] = non_negative(*n2, m, "tolerance.reduced");
      } else {
        spec.tolerance[key] = non_negative(*node, key, "tolerance");
      }
    }
  }
  double non_negative(const toml::node& n, const std::string& key, const std::string& section) const {
    const double v = number(n, key, section);
    if (v < 0) fail(line_of(n), key, section, "a tolerance is >= 0");
    return v;
  }

  // [verdict]: kind, and what that kind needs (see spec.hpp).
  void read_verdict(const toml::table& t, Spec& spec) const {
    VerdictSpec& v = spec.verdict;
    const std::string sec = "verdict";
    const toml::node* order = nullptr;
    const toml::table* signs = nullptr;
    const toml::table* panels = nullptr;
    std::string train, test;
    bool has_noise = false;
    for (const auto& [key, node] : in_file_order(t)) {
      if (key == "kind") {
        const std::string k = string(*node, key, sec);
        if (k == "tolerance") v.kind = VerdictSpec::Kind::Tolerance;
        else if (k == "ordering") v.kind = VerdictSpec::Kind::Ordering;
        else if (k == "figure") v.kind = VerdictSpec::Kind::Figure;
        else fail(line_of(*node), key, sec, "'" + k + "' is not one of tolerance, ordering, figure");
      } else if (key == "column") {
        v.column = string(*node, key, sec);
        if (!column_of(spec, v.column))
          fail(line_of(*node), key, sec, "no such column" + sweep::suggestion(v.column, column_ids(spec)));
      } else if (key == "order") order = node;
      else if (key == "signs") signs = &table(*node, key);
      else if (key == "panels") panels = &table(*node, key);
      else if (key == "train") train = string(*node, key, sec);
      else if (key == "test") test = string(*node, key, sec);
      else if (key == "noise") v.noise = non_negative(*node, key, sec), has_noise = true;
      else if (key == "claims") read_relations(*node, spec);
      else
        fail(line_of(*node), key, sec,
             "unknown key" + sweep::suggestion(key, {"kind", "column", "order", "signs", "panels", "train",
                                                     "test", "noise", "claims"}));
    }
    using K = VerdictSpec::Kind;
    auto only_for = [&](bool present, const char* key, K kind) {
      if (present && v.kind != kind)
        fail(v.line, key, sec, std::string("belongs to kind = \"") + kind_name(kind) + "\"");
    };
    only_for(order || signs || !v.column.empty(), order ? "order" : signs ? "signs" : "column", K::Ordering);
    only_for(panels || !train.empty() || !test.empty() || has_noise, panels ? "panels" : "train", K::Figure);
    if (v.kind == K::Ordering) read_ordering(order, signs, spec);
    if (v.kind == K::Figure) {
      if (!panels) fail(v.line, "panels", sec, "missing: panels = { <panel id> = [<row ids>] }");
      if (train.empty() || test.empty())
        fail(
            v.line, train.empty() ? "train" : "test", sec,
            "missing: the per-epoch metrics of the curves (e.g. train = \"-train_loss\", test = \"test_elbo\")");
      if (!has_noise) fail(v.line, "noise", sec, "missing: noise = nats, the margin of the overfitting claim");
      auto metric = [&](const std::string& key, const std::string& text, std::string& name, bool& negate) {
        negate = text[0] == '-';
        name = negate ? text.substr(1) : text;
        if (!is_id(name)) fail(v.line, key, sec, "'" + text + "' is not a metric name");
      };
      metric("train", train, v.train_metric, v.train_negate);
      metric("test", test, v.test_metric, v.test_negate);
      read_panels(*panels, spec);
    }
  }

  // claims = [["row/column", "<", "row/column"], ...]; each must hold for the published values.
  void read_relations(const toml::node& n, Spec& spec) const {
    const std::string sec = "verdict", key = "claims";
    const int line = line_of(n);
    auto a = n.as_array();
    if (!a) fail(line, key, sec, "expected [[\"<row>/<column>\", \"<\", \"<row>/<column>\"], ...]");
    auto cell = [&](const std::string& text, std::string& row, std::string& col) -> const Published* {
      const auto slash = text.find('/');
      row = text.substr(0, slash);
      col = slash == std::string::npos ? "" : text.substr(slash + 1);
      const Row* r = row_of(spec, row);
      if (!r) fail(line, key, sec, "'" + text + "': no such row" + sweep::suggestion(row, row_ids(spec)));
      if (!column_of(spec, col))
        fail(line, key, sec,
             "'" + text + "': expected <row>/<column>, no such column" +
                 sweep::suggestion(col, column_ids(spec)));
      auto p = r->published.find(col);
      if (p == r->published.end())
        fail(line, key, sec, "'" + text + "' has no published value: a claim is the paper's");
      return &p->second;
    };
    for (const auto& e : *a) {
      auto t = e.as_array();
      if (!t || t->size() != 3 || !(*t)[0].is_string() || !(*t)[1].is_string() || !(*t)[2].is_string())
        fail(line, key, sec,
             "each claim is [\"<row>/<column>\", \"<\" | \"<=\" | \">\" | \">=\", \"<row>/<column>\"]");
      VerdictSpec::Relation r;
      r.line = line;
      r.op = (*t)[1].as_string()->get();
      if (r.op != "<" && r.op != "<=" && r.op != ">" && r.op != ">=")
        fail(line, key, sec, "'" + r.op + "' is not one of <, <=, >, >=");
      const Published* pa = cell((*t)[0].as_string()->get(), r.a_row, r.a_col);
      const Published* pb = cell((*t)[2].as_string()->get(), r.b_row, r.b_col);
      if (!relation_holds(pa->value, r.op, pb->value))
        fail(line, key, sec,
             "the published values do not satisfy " + r.a_row + "/" + r.a_col + " " + r.op + " " + r.b_row +
                 "/" + r.b_col + " (" + pa->text + " " + r.op + " " + pb->text + ")");
      spec.verdict.relations.push_back(r);
    }
  }

  void read_ordering(const toml::node* order, const toml::table* signs, Spec& spec) const {
    VerdictSpec& v = spec.verdict;
    const std::string sec = "verdict";
    if (v.column.empty()) {
      if (spec.columns.size() != 1) fail(v.line, "column", sec, "missing: which column is ordered");
      v.column = spec.columns[0].id;
    }
    if (!order) fail(v.line, "order", sec, "missing: order = [<row ids>, lowest value first]");
    if (!signs) fail(v.line, "signs", sec, "missing: signs = { <row id> = \"+\" or \"-\" }");
    auto a = order->as_array();
    if (!a) fail(line_of(*order), "order", sec, "expected an array of row ids, lowest value first");
    for (const auto& e : *a) {
      auto id = e.as_string();
      if (!id) fail(line_of(*order), "order", sec, "expected an array of row ids (strings)");
      if (!row_of(spec, id->get()))
        fail(line_of(*order), "order", sec,
             "'" + id->get() + "': no such row" + sweep::suggestion(id->get(), row_ids(spec)));
      if (std::find(v.order.begin(), v.order.end(), id->get()) != v.order.end())
        fail(line_of(*order), "order", sec, "'" + id->get() + "' is listed twice");
      v.order.push_back(id->get());
    }
    for (const auto& r : spec.rows)
      if (std::find(v.order.begin(), v.order.end(), r.id) == v.order.end())
        fail(line_of(*order), "order", sec, "row '" + r.id + "' is missing from the order");
    for (const auto& [row, node] : in_file_order(*signs)) {
      if (!row_of(spec, row))
        fail(line_of(*node), row, sec + ".signs", "no such row" + sweep::suggestion(row, row_ids(spec)));
      const std::string sg = string(*node, row, sec + ".signs");
      if (sg != "+" && sg != "-")
        fail(line_of(*node), row, sec + ".signs", "'" + sg + "': expected \"+\" or \"-\"");
      v.signs[row] = sg == "+" ? 1 : -1;
    }
    for (const auto& r : spec.rows)
      if (!v.signs.count(r.id)) fail(line_of(*signs), r.id, sec + ".signs", "missing: the sign of every row");
    for (const auto& r : spec.rows)
      if (!r.published.count(v.column))
        fail(r.line, v.column, "row " + r.id,
             "missing: the published value of the ordered column (the claims are the paper's order)");
    // The declaration is the paper's: it must agree with the published values.
    const Published* prev = nullptr;
    std::string prev_id;
    for (const auto& id : v.order) {
      const Row& r = *row_of(spec, id);
      auto p = r.published.find(v.column);
      if ((p->second.value < 0 ? -1 : 1) != v.signs.at(id))
        fail(line_of(*signs), id, sec + ".signs",
             "the published value " + p->second.text + " has the other sign");
      if (prev && !(prev->value < p->second.value))
        fail(line_of(*order), "order", sec,
             "'" + prev_id + "' (" + prev->text + ") is listed below '" + id + "' (" + p->second.text +
                 "): the order is the published values', lowest first");
      prev = &p->second;
      prev_id = id;
    }
  }

  void read_panels(const toml::table& t, Spec& spec) const {
    VerdictSpec& v = spec.verdict;
    std::set<std::string> seen;
    for (const auto& [panel, node] : in_file_order(t)) {
      if (!is_id(panel))
        fail(line_of(*node), panel, "verdict.panels", "a panel id uses letters, digits, '_', '-', '.'");
      auto a = node->as_array();
      if (!a || a->empty())
        fail(line_of(*node), panel, "verdict.panels", "expected a non-empty array of row ids");
      std::vector<std::string> ids;
      for (const auto& e : *a) {
        auto id = e.as_string();
        if (!id || !row_of(spec, id->get()))
          fail(line_of(*node), panel, "verdict.panels",
               (id ? "'" + id->get() + "': " : std::string()) + "no such row" +
                   (id ? sweep::suggestion(id->get(), row_ids(spec)) : std::string()));
        if (!seen.insert(id->get()).second)
          fail(line_of(*node), panel, "verdict.panels", "'" + id->get() + "' is in two panels");
        ids.push_back(id->get());
      }
      v.panels.emplace_back(panel, ids);
    }
    for (const auto& r : spec.rows)
      if (!seen.count(r.id)) fail(v.line, "panels", "verdict", "row '" + r.id + "' is in no panel");
  }

  // Every compared column has a tolerance; row and column settings do not set one key twice.
  void check_cells(const Spec& spec) const {
    for (const auto& c : spec.columns)
      if (spec.verdict.kind == VerdictSpec::Kind::Tolerance && !c.order_only && !spec.tolerance.count(c.metric))
        fail(c.line, "metric", "column " + c.id,
             "no [tolerance] for '" + c.metric + "' (add " + c.metric + " = ...)");
    for (const auto& r : spec.rows)
      for (const auto& c : spec.columns)
        for (const auto& [k, v] : c.settings)
          if (r.settings.count(k) && value_to_string(r.settings.at(k)) != value_to_string(v))
            fail(r.line, k, "row " + r.id, "set by the row and by column '" + c.id + "' to different values");
  }

  static const Column* column_of(const Spec& spec, const std::string& id) {
    for (const auto& c : spec.columns)
      if (c.id == id) return &c;
    return nullptr;
  }
  static const Row* row_of(const Spec& spec, const std::string& id) {
    for (const auto& r : spec.rows)
      if (r.id == id) return &r;
    return nullptr;
  }
  static std::vector<std::string> column_ids(const Spec& spec) {
    std::vector<std::string> ids;
    for (const auto& c : spec.columns) ids.push_back(c.id);
    return ids;
  }
  static std::vector<std::string> row_ids(const Spec& spec) {
    std::vector<std::string> ids;
    for (const auto& r : spec.rows) ids.push_back(r.id);
    return ids;
  }
  static std::string toml_text(const toml::node& n) {
    std::ostringstream s;
    n.visit([&](const auto& x) { s << x; });
    return s.str();
  }

  std::string file_;
};

}  // namespace

Published parse_published(const std::string& text) {
  Published p;
  p.text = text;
  size_t pos = 0;
  while (pos < text.size() && text[pos] == ' ') ++pos;
  if (pos < text.size() && (text[pos] == '<' || text[pos] == '>')) ++pos;  // a bound, as printed
  for (;;) {
    auto v = number_at(text, pos);
    if (!v)
      throw SpecError("'" + text + "' is not a number, a sum such as \"16+5\", or a bound such as \"< 740.5\"");
    p.parts.push_back(*v);
    p.value += *v;
    if (pos == text.size()) break;
    if (text[pos] != '+' || p.parts.size() > 16)
      throw SpecError("'" + text + "': unexpected '" + text.substr(pos) + "'");
    ++pos;
  }
  return p;
}

bool relation_holds(double a, const std::string& op, double b) {
  if (op == "<") return a < b;
  if (op == "<=") return a <= b;
  if (op == ">") return a > b;
  return a >= b;
}

std::string kind_name(VerdictSpec::Kind k) {
  switch (k) {
    case VerdictSpec::Kind::Tolerance: return "tolerance";
    case VerdictSpec::Kind::Ordering: return "ordering";
    case VerdictSpec::Kind::Figure: return "figure";
  }
  return "?";
}

const Budget& Spec::budget(const std::string& name) const {
  std::string names;
  for (const auto& b : budgets) {
    if (b.name == name) return b;
    names += (names.empty() ? "" : ", ") + b.name;
  }
  throw SpecError(file + ": no budget '" + name + "' (this spec has: " + names + ")");
}

std::string Spec::citation() const {
  std::string c = authors + " (" + std::to_string(year) + ")";
  if (!arxiv.empty()) c += ", arXiv:" + arxiv;
  return c + ", " + where;
}

std::map<std::string, Value> cell_settings(const Spec& spec, const Row& row, const Column& col,
                                           const Budget& budget) {
  std::map<std::string, Value> s = spec.protocol;
  for (const auto* layer : {&row.settings, &col.settings, &budget.settings})
    for (const auto& [k, v] : *layer) s[k] = v;
  auto it = budget.rows.find(row.id);
  if (it != budget.rows.end())
    for (const auto& [k, v] : it->second) s[k] = v;
  return s;
}

Spec parse_spec_text(const std::string& text, const std::string& file_name) {
  return Parser(file_name).parse(text);
}

Spec parse_spec_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw SpecError(path + ": cannot open the spec file");
  std::ostringstream s;
  s << f.rdbuf();
  return parse_spec_text(s.str(), path);
}

std::vector<std::string> find_specs(const std::string& folder) {
  std::vector<std::string> out;
  if (!std::filesystem::is_directory(folder)) return out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(folder))
    if (e.is_regular_file() && e.path().extension() == ".toml") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace vae::reproduce
