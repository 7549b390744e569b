#include "report/render.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

namespace vae::report {

using store::SqlValue;

Format parse_format(const std::string& n, const std::vector<Format>& allowed) {
  Format f;
  if (n == "text") f = Format::Text;
  else if (n == "markdown" || n == "md") f = Format::Markdown;
  else if (n == "csv") f = Format::Csv;
  else if (n == "tsv") f = Format::Tsv;
  else if (n == "latex" || n == "tex") f = Format::Latex;
  else if (n == "json") f = Format::Json;
  else if (n == "jsonl") f = Format::Jsonl;
  else f = Format(-1);
  if (std::find(allowed.begin(), allowed.end(), f) == allowed.end()) {
    std::string names;
    for (Format a : allowed) names += (names.empty() ? "" : ", ") + format_name(a);
    throw UsageError("--format '" + n + "': expected one of " + names);
  }
  return f;
}

std::string format_name(Format f) {
  switch (f) {
    case Format::Text: return "text";
    case Format::Markdown: return "markdown";
    case Format::Csv: return "csv";
    case Format::Tsv: return "tsv";
    case Format::Latex: return "latex";
    case Format::Json: return "json";
    case Format::Jsonl: return "jsonl";
  }
  return "?";
}

std::string csv_field(const std::string& s, char sep) {
  if (s.find_first_of(std::string(1, sep) + "\"\n\r") == std::string::npos) return s;
  if (sep == '\t') {  // TSV has no quoting: replace the separators
    std::string t = s;
    std::replace(t.begin(), t.end(), '\t', ' ');
    std::replace(t.begin(), t.end(), '\n', ' ');
    return t;
  }
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string latex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '_':
      case '%':
      case '&':
      case '#':
      case '$':
      case '{':
      case '}':
        out += '\\';
        out += c;
        break;
      case '~': out += "\\textasciitilde{}"; break;
      case '^': out += "\\textasciicircum{}"; break;
      case '\\': out += "\\textbackslash{}"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

std::string fixed(double x, int digits) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, x);
  return buf;
}

// UTF-8 aware display width (every code point counts one).
size_t width(const std::string& s) {
  size_t w = 0;
  for (unsigned char c : s) w += (c & 0xC0) != 0x80;
  return w;
}

std::string pad(const std::string& s, size_t w, bool right) {
  size_t n = width(s);
  if (n >= w) return s;
  return right ? std::string(w - n, ' ') + s : s + std::string(w - n, ' ');
}

nlohmann::json json_of(const SqlValue& v) {
  if (std::holds_alternative<std::monostate>(v)) return nullptr;
  if (auto i = std::get_if<int64_t>(&v)) return *i;
  if (auto d = std::get_if<double>(&v)) return std::isfinite(*d) ? nlohmann::json(*d) : nlohmann::json(nullptr);
  return std::get<std::string>(v);
}

nlohmann::json json_label(const std::string& s) {
  char* end = nullptr;
  double x = std::strtod(s.c_str(), &end);
  if (!s.empty() && end && *end == '\0') {
    if (std::floor(x) == x && std::fabs(x) < 1e15 && s.find_first_of(".eE") == std::string::npos)
      return int64_t(x);
    return x;
  }
  return s;
}

nlohmann::json json_number(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

// The statistic shown in a cell, and its spread (NaN when none).
std::pair<double, double> shown(const CellStats& c, Agg a) {
  switch (a) {
    case Agg::MeanSe: return {c.mean, c.se};
    case Agg::MeanSd: return {c.mean, c.sd};
    default: return {c.center(a), NAN};
  }
}

std::string agg_phrase(Agg a) {
  switch (a) {
    case Agg::MeanSe: return "mean ± standard error";
    case Agg::MeanSd: return "mean ± standard deviation";
    case Agg::Mean: return "mean";
    case Agg::Median: return "median";
    case Agg::Min: return "minimum";
    case Agg::Max: return "maximum";
  }
  return "";
}

std::string with_direction(const std::string& metric, int direction) {
  if (direction > 0) return metric + " (higher is better)";
  if (direction < 0) return metric + " (lower is better)";
  return metric;
}

std::string metric_phrase(const Table& t) {
  if (t.col_keys.empty()) {
    std::string m;
    for (size_t c = 0; c < t.col_metrics.size(); ++c)
      m += (c ? ", " : "") +
           with_direction(t.col_metrics[c], t.col_directions.empty() ? 0 : t.col_directions[c]);
    return m;
  }
  return with_direction(t.col_metrics.empty() ? "" : t.col_metrics[0], t.direction);
}

std::string n_phrase(const Table& t) {
  if (t.uniform_n > 0) return "over " + std::to_string(t.uniform_n) + (t.uniform_n == 1 ? " seed" : " seeds");
  return "over seeds (n per cell shown)";
}

bool any_marked(const Table& t) {
  for (const auto& row : t.cells)
    for (const auto& c : row)
      if (c.best) return true;
  return false;
}

// Footnotes: runs excluded or missing.
std::vector<std::string> notes(const Table& t) {
  std::vector<std::string> out;
  if (t.total_not_done)
    out.push_back(
        std::to_string(t.total_not_done) +
        " run(s) failed or diverged and are left out (cells marked †; vae runs --status failed,diverged lists them)");
  if (t.total_pending) out.push_back(std::to_string(t.total_pending) + " run(s) are not finished yet");
  return out;
}

// A cell as text: "98.31 ± 0.12", with n when n differs between cells, † when runs
// of the cell failed.
std::string cell_text(const Table& t, const CellStats& c, int digits, const char* pm) {
  if (c.n == 0) return c.not_done ? std::string("—†") : std::string("—");
  auto [v, e] = shown(c, t.agg);
  std::string s = fixed(v, digits);
  if ((t.agg == Agg::MeanSe || t.agg == Agg::MeanSd) && !std::isnan(e)) s += std::string(pm) + fixed(e, digits);
  if (t.uniform_n < 0) s += " (n=" + std::to_string(c.n) + ")";
  if (c.not_done) s += "†";
  return s;
}

std::string best_phrase(const Table& t) { return t.best_per_row ? "best of each row" : "best of each column"; }

std::string render_text(const Table& t, const RenderOptions& o) {
  std::vector<std::string> header;
  for (const auto& k : t.row_keys) header.push_back(k);
  for (size_t c = 0; c < t.col_values.size(); ++c) header.push_back(t.col_label(c));
  std::vector<std::vector<std::string>> body;
  for (size_t r = 0; r < t.row_values.size(); ++r) {
    std::vector<std::string> line = t.row_values[r];
    for (const auto& c : t.cells[r]) line.push_back(cell_text(t, c, o.digits, " ± ") + (c.best ? " *" : "  "));
    body.push_back(line);
  }
  std::vector<size_t> w(header.size(), 0);
  for (size_t i = 0; i < header.size(); ++i) w[i] = width(header[i]) + (i >= t.row_keys.size() ? 2 : 0);
  for (const auto& line : body)
    for (size_t i = 0; i < line.size(); ++i) w[i] = std::max(w[i], width(line[i]));
  std::ostringstream out;
  out << metric_phrase(t) << ": " << agg_phrase(t.agg) << " " << n_phrase(t);
  if (!t.sweep.empty()) out << "  [sweep " << t.sweep << "]";
  out << "\n\n";
  for (size_t i = 0; i < header.size(); ++i) {
    bool right = i >= t.row_keys.size();
    out << (i ? "  " : "") << pad(right ? header[i] + "  " : header[i], w[i], right);
  }
  out << "\n";
  size_t total = 0;
  for (size_t i = 0; i < w.size(); ++i) total += w[i] + (i ? 2 : 0);
  out << std::string(total, '-') << "\n";
  for (const auto& line : body) {
    for (size_t i = 0; i < line.size(); ++i)
      out << (i ? "  " : "") << pad(line[i], w[i], i >= t.row_keys.size());
    out << "\n";
  }
  if (any_marked(t)) out << "\n* " << best_phrase(t) << "\n";
  else if (t.direction == 0 && !t.col_keys.empty())
    out << "\n(no best marked: pass --best max or --best min for this metric)\n";
  for (const auto& n : notes(t)) out << "† " << n << "\n";
  return out.str();
}

std::string render_markdown(const Table& t, const RenderOptions& o) {
  std::ostringstream out;
  out << "|";
  for (const auto& k : t.row_keys) out << " " << k << " |";
  for (size_t c = 0; c < t.col_values.size(); ++c) out << " " << t.col_label(c) << " |";
  out << "\n|";
  for (size_t i = 0; i < t.row_keys.size(); ++i) out << "---|";
  for (size_t c = 0; c < t.col_values.size(); ++c) out << "---:|";
  out << "\n";
  for (size_t r = 0; r < t.row_values.size(); ++r) {
    out << "|";
    for (const auto& v : t.row_values[r]) out << " " << v << " |";
    for (const auto& c : t.cells[r]) {
      std::string s = cell_text(t, c, o.digits, " ± ");
      out << " " << (c.best ? "**" + s + "**" : s) << " |";
    }
    out << "\n";
  }
  out << "\n" << metric_phrase(t) << ", " << agg_phrase(t.agg) << " " << n_phrase(t);
  if (any_marked(t)) out << "; " << best_phrase(t) << " in bold";
  out << ".\n";
  for (const auto& n : notes(t)) out << "† " << n << ".\n";
  return out.str();
}

std::string render_latex(const Table& t, const RenderOptions& o) {
  std::ostringstream out;
  const size_t nr = t.row_keys.size(), nc = t.col_values.size();
  if (!o.command_line.empty()) out << "% " << o.command_line << "\n";
  out << "% " << metric_phrase(t) << ", " << agg_phrase(t.agg) << " " << n_phrase(t);
  if (any_marked(t)) out << "; " << best_phrase(t) << " in bold";
  out << "\n";
  for (const auto& n : notes(t)) out << "% " << n << "\n";
  out << "\\begin{tabular}{" << std::string(nr, 'l') << std::string(nc, 'r') << "}\n\\toprule\n";
  auto cell = [&](const CellStats& c) {
    if (c.n == 0) return std::string("--");
    auto [v, e] = shown(c, t.agg);
    std::string s = fixed(v, o.digits);
    if ((t.agg == Agg::MeanSe || t.agg == Agg::MeanSd) && !std::isnan(e)) s += " \\pm " + fixed(e, o.digits);
    s = c.best ? "$\\mathbf{" + s + "}$" : "$" + s + "$";
    if (t.uniform_n < 0) s += " {\\scriptsize(" + std::to_string(c.n) + ")}";
    if (c.not_done) s += "$^\\dagger$";
    return s;
  };
  if (t.col_keys.size() == 1) {
    // a spanning header naming the column setting, then its values
    out << std::string(nr > 0 ? nr - 1 : 0, '&') << (nr ? " & " : "") << "\\multicolumn{" << nc << "}{c}{"
        << latex_escape(t.col_keys[0]) << "} \\\\\n";
    out << "\\cmidrule(lr){" << nr + 1 << "-" << nr + nc << "}\n";
    for (size_t i = 0; i < nr; ++i) out << (i ? " & " : "") << latex_escape(t.row_keys[i]);
    for (size_t c = 0; c < nc; ++c) out << " & " << latex_escape(t.col_values[c][0]);
  } else {
    for (size_t i = 0; i < nr; ++i) out << (i ? " & " : "") << latex_escape(t.row_keys[i]);
    for (size_t c = 0; c < nc; ++c) out << " & " << latex_escape(t.col_label(c));
  }
  out << " \\\\\n\\midrule\n";
  for (size_t r = 0; r < t.row_values.size(); ++r) {
    for (size_t i = 0; i < nr; ++i) out << (i ? " & " : "") << latex_escape(t.row_values[r][i]);
    for (const auto& c : t.cells[r]) out << " & " << cell(c);
    out << " \\\\\n";
  }
  out << "\\bottomrule\n\\end{tabular}\n";
  return out.str();
}

std::string render_csv(const Table& t, const RenderOptions& o, char sep) {
  (void)o;
  std::ostringstream out;
  const bool spread = t.agg == Agg::MeanSe || t.agg == Agg::MeanSd;
  const std::string center = t.agg == Agg::MeanSe || t.agg == Agg::MeanSd ? "mean" : agg_name(t.agg);
  const std::string err = t.agg == Agg::MeanSe ? "se" : "sd";
  std::vector<std::string> head = t.row_keys;
  for (size_t c = 0; c < t.col_values.size(); ++c) {
    head.push_back(t.col_label(c) + " " + center);
    if (spread) head.push_back(t.col_label(c) + " " + err);
    head.push_back(t.col_label(c) + " n");
  }
  head.push_back("best");
  for (size_t i = 0; i < head.size(); ++i) out << (i ? std::string(1, sep) : "") << csv_field(head[i], sep);
  out << "\n";
  auto num = [](double x) {
    if (!std::isfinite(x)) return std::string();
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", x);
    return std::string(buf);
  };
  for (size_t r = 0; r < t.row_values.size(); ++r) {
    std::vector<std::string> f = t.row_values[r];
    std::string best;
    for (size_t c = 0; c < t.cells[r].size(); ++c) {
      const CellStats& s = t.cells[r][c];
      auto [v, e] = shown(s, t.agg);
      f.push_back(s.n ? num(v) : "");
      if (spread) f.push_back(s.n ? num(e) : "");
      f.push_back(std::to_string(s.n));
      if (s.best) best += (best.empty() ? "" : ";") + t.col_label(c);
    }
    f.push_back(best);
    for (size_t i = 0; i < f.size(); ++i) out << (i ? std::string(1, sep) : "") << csv_field(f[i], sep);
    out << "\n";
  }
  return out.str();
}

std::string render_json(const Table& t) {
  nlohmann::json j;
  j["sweep"] = t.sweep.empty() ? nlohmann::json(nullptr) : nlohmann::json(t.sweep);
  j["metrics"] = t.col_metrics;
  j["agg"] = agg_name(t.agg);
  j["best_per"] = t.best_per_row ? "row" : "column";
  j["direction"] = t.direction > 0   ? nlohmann::json("max")
                   : t.direction < 0 ? nlohmann::json("min")
                                     : nlohmann::json(nullptr);
  j["row_keys"] = t.row_keys;
  j["col_keys"] = t.col_keys;
  nlohmann::json rows = nlohmann::json::array(), cols = nlohmann::json::array();
  for (const auto& rv : t.row_values) {
    nlohmann::json r = nlohmann::json::object();
    for (size_t k = 0; k < t.row_keys.size(); ++k) r[t.row_keys[k]] = json_label(rv[k]);
    rows.push_back(r);
  }
  for (size_t c = 0; c < t.col_values.size(); ++c) {
    nlohmann::json x = nlohmann::json::object();
    if (t.col_keys.empty()) x["metric"] = t.col_metrics[c];
    for (size_t k = 0; k < t.col_keys.size(); ++k) x[t.col_keys[k]] = json_label(t.col_values[c][k]);
    cols.push_back(x);
  }
  j["rows"] = rows;
  j["cols"] = cols;
  nlohmann::json cells = nlohmann::json::array();
  for (const auto& row : t.cells) {
    nlohmann::json line = nlohmann::json::array();
    for (const auto& c : row) {
      line.push_back({{"n", c.n},
                      {"mean", json_number(c.mean)},
                      {"se", json_number(c.se)},
                      {"sd", json_number(c.sd)},
                      {"median", json_number(c.median)},
                      {"min", json_number(c.min)},
                      {"max", json_number(c.max)},
                      {"best", c.best},
                      {"failed", c.not_done},
                      {"pending", c.pending},
                      {"run_ids", c.run_ids}});
    }
    cells.push_back(line);
  }
  j["cells"] = cells;
  return j.dump(2) + "\n";
}

}  // namespace

std::string render_table(const Table& t, Format f, const RenderOptions& o) {
  switch (f) {
    case Format::Text: return render_text(t, o);
    case Format::Markdown: return render_markdown(t, o);
    case Format::Latex: return render_latex(t, o);
    case Format::Csv: return render_csv(t, o, ',');
    case Format::Tsv: return render_csv(t, o, '\t');
    case Format::Json:
    case Format::Jsonl: return render_json(t);
  }
  return "";
}

std::string render_frame(const Frame& fr, Format f) {
  std::ostringstream out;
  switch (f) {
    case Format::Text: {
      std::vector<size_t> w(fr.columns.size());
      std::vector<bool> numeric(fr.columns.size(), true);
      for (size_t i = 0; i < fr.columns.size(); ++i) w[i] = width(fr.columns[i]);
      for (const auto& r : fr.rows)
        for (size_t i = 0; i < r.size() && i < w.size(); ++i) {
          w[i] = std::max(w[i], width(format_sql(r[i])));
          if (auto s = std::get_if<std::string>(&r[i])) {
            char* end = nullptr;
            std::strtod(s->c_str(), &end);
            if (!s->empty() && !(end && *end == '\0')) numeric[i] = false;
          }
        }
      for (size_t i = 0; i < fr.columns.size(); ++i)
        out << (i ? "  " : "") << pad(fr.columns[i], w[i], numeric[i]);
      out << "\n";
      for (const auto& r : fr.rows) {
        for (size_t i = 0; i < r.size() && i < w.size(); ++i)
          out << (i ? "  " : "") << pad(format_sql(r[i]), w[i], numeric[i]);
        out << "\n";
      }
      break;
    }
    case Format::Markdown: {
      out << "|";
      for (const auto& c : fr.columns) out << " " << c << " |";
      out << "\n|";
      for (size_t i = 0; i < fr.columns.size(); ++i) out << "---|";
      out << "\n";
      for (const auto& r : fr.rows) {
        out << "|";
        for (const auto& v : r) {
          std::string s = format_sql(v);
          std::string e;
          for (char ch : s) e += ch == '|' ? std::string("\\|") : std::string(1, ch);
          out << " " << e << " |";
        }
        out << "\n";
      }
      break;
    }
    case Format::Csv:
    case Format::Tsv: {
      char sep = f == Format::Csv ? ',' : '\t';
      for (size_t i = 0; i < fr.columns.size(); ++i)
        out << (i ? std::string(1, sep) : "") << csv_field(fr.columns[i], sep);
      out << "\n";
      for (const auto& r : fr.rows) {
        for (size_t i = 0; i < r.size(); ++i) {
          std::string s;
          if (auto d = std::get_if<double>(&r[i])) {
            if (std::isfinite(*d)) {
              char buf[64];
              std::snprintf(buf, sizeof buf, "%.17g", *d);
              s = buf;
            } else if (!std::isnan(*d)) {
              s = *d > 0 ? "inf" : "-inf";
            }
          } else {
            s = format_sql(r[i]);
          }
          out << (i ? std::string(1, sep) : "") << csv_field(s, sep);
        }
        out << "\n";
      }
      break;
    }
    case Format::Json:
    case Format::Jsonl: {
      nlohmann::json all = nlohmann::json::array();
      for (const auto& r : fr.rows) {
        nlohmann::json o = nlohmann::json::object();
        for (size_t i = 0; i < r.size() && i < fr.columns.size(); ++i) o[fr.columns[i]] = json_of(r[i]);
        if (f == Format::Jsonl) out << o.dump() << "\n";
        else all.push_back(o);
      }
      if (f == Format::Json) out << all.dump(2) << "\n";
      break;
    }
    case Format::Latex: {
      out << "\\begin{tabular}{" << std::string(fr.columns.size(), 'l') << "}\n\\toprule\n";
      for (size_t i = 0; i < fr.columns.size(); ++i) out << (i ? " & " : "") << latex_escape(fr.columns[i]);
      out << " \\\\\n\\midrule\n";
      for (const auto& r : fr.rows) {
        for (size_t i = 0; i < r.size(); ++i) out << (i ? " & " : "") << latex_escape(format_sql(r[i]));
        out << " \\\\\n";
      }
      out << "\\bottomrule\n\\end{tabular}\n";
      break;
    }
  }
  return out.str();
}

}  // namespace vae::report
