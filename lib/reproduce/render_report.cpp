// The report of a reproduction: the paper's table with ours beside each published value
// (text, Markdown, LaTeX), then one line per cell with the comparison that made its
// verdict; JSON holds the same, cell by cell.
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <nlohmann/json.hpp>
#include <sstream>

#include "report/render.hpp"
#include "reproduce/reproduce.hpp"

namespace vae::reproduce {

namespace {

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

// Characters shown (UTF-8 continuation bytes do not count), for aligned text columns.
std::size_t display_width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char ch : s) n += (ch & 0xC0) != 0x80;
  return n;
}
std::string pad(const std::string& s, std::size_t width, bool right) {
  const std::string fill(width > display_width(s) ? width - display_width(s) : 0, ' ');
  return right ? fill + s : s + fill;
}

std::string mark(Verdict v) {
  switch (v) {
    case Verdict::Within: return "ok";
    case Verdict::Outside: return "OUT";
    case Verdict::NotComparable: return "n/c";
    case Verdict::NotPublished: return "";
    case Verdict::Missing: return "missing";
  }
  return "";
}

std::string budget_line(const Report& r) {
  const Budget& b = *r.budget;
  const Budget& paper = r.spec->paper();
  std::ostringstream s;
  s << "budget " << b.name << ": " << b.epochs << " epochs";
  if (&b != &paper)
    s << " = " << fixed(100.0 * double(b.epochs) / double(paper.epochs), 1) << "% of the paper's "
      << paper.epochs;
  s << (b.description.empty() ? "" : " (" + b.description + ")");
  s << "; seeds " << r.seeds.size() << " (";
  for (std::size_t i = 0; i < r.seeds.size(); ++i) s << (i ? "," : "") << r.seeds[i];
  s << ")";
  return s.str();
}

std::string reference_text(const CellReport& c) {
  if (c.expected)
    return fixed(c.expected->mean, 2) + " ± " + fixed(c.expected->se, 2) +
           " (n=" + std::to_string(c.expected->n) + ")";
  return c.published ? c.published->text : "-";
}

std::string claim_mark(Verdict v) {
  if (v == Verdict::NotComparable) return "not comparable";  // the reference breaks it too
  return v == Verdict::Within ? "holds" : v == Verdict::Outside ? "FAILS" : "missing";
}

// "3 hold, 1 fail, 2 undecided", with the claims the reference breaks too where there are any.
std::string claim_counts(const Report& r) {
  std::ostringstream s;
  const int decided = r.claims_hold + r.claims_fail + r.claims_not_comparable;
  s << r.claims_hold << " hold, " << r.claims_fail << " fail, ";
  if (r.claims_not_comparable > 0)
    s << r.claims_not_comparable << " not comparable (the reference at this budget breaks them too), ";
  s << r.claims.size() - std::size_t(decided) << " undecided";
  return s.str();
}

std::string summary_line(const Report& r) {
  std::ostringstream s;
  if (r.by_claims()) {
    s << "verdict by " << kind_name(r.spec->verdict.kind) << " claims: " << claim_counts(r) << "; " << r.missing
      << " cells with runs missing";
    return s.str();
  }
  s << r.within << " within tolerance, " << r.outside << " outside, " << r.not_comparable << " not comparable, "
    << r.missing << " missing";
  if (!r.claims.empty()) s << "; the paper's relations: " << claim_counts(r);
  return s.str();
}

// Rows x columns, each column as "paper" and "ours".
struct Wide {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};
Wide wide_table(const Report& r) {
  Wide w;
  w.header.push_back("");
  for (const auto& c : r.spec->columns) {
    w.header.push_back(c.label + " (paper)");
    w.header.push_back(c.label + " (ours)");
  }
  const std::size_t C = r.spec->columns.size();
  for (std::size_t i = 0; i < r.spec->rows.size(); ++i) {
    std::vector<std::string> row{r.spec->rows[i].label};
    for (std::size_t j = 0; j < C; ++j) {
      const CellReport& c = r.cells[i * C + j];
      row.push_back(c.published ? c.published->text : "-");
      std::string ours = c.ours_text();
      if (!mark(c.verdict).empty() && c.verdict != Verdict::Missing && !r.by_claims())
        ours += " [" + mark(c.verdict) + "]";
      if (c.verdict == Verdict::Missing) ours = "missing";
      row.push_back(ours);
    }
    w.rows.push_back(row);
  }
  return w;
}

std::string detail_line(const CellReport& c, bool by_claims) {
  std::ostringstream s;
  s << c.row->label << " / " << c.col->label << ": ";
  if (c.verdict == Verdict::Missing) {
    s << c.missing_runs.size() << " of " << c.missing_runs.size() + c.values.size() << " runs not done (";
    for (std::size_t i = 0; i < c.missing_runs.size(); ++i)
      s << (i ? ", " : "") << c.missing_runs[i].substr(0, 12);
    s << ")";
    return s.str();
  }
  s << "ours " << c.ours_text() << " (n=" << c.stats.n << ")";
  if (c.verdict == Verdict::NotPublished) return s.str() + "; not published";
  s << (c.expected ? ", expected " : ", paper ") << reference_text(c);
  if (c.verdict == Verdict::NotComparable && by_claims) return s.str() + "; judged by the claims below";
  if (c.verdict == Verdict::NotComparable)
    return s.str() + "; not comparable: budget below the paper's, no expected value";
  if (c.col->order_only)
    return s.str() + "; order and sign " + (c.verdict == Verdict::Within ? "as published" : "differ");
  s << "; diff " << (c.diff >= 0 ? "+" : "") << fixed(c.diff, 2) << ", tolerance " << fixed(c.tolerance, 2)
    << ": " << verdict_name(c.verdict);
  return s.str();
}

std::string render_text(const Report& r, bool markdown) {
  std::ostringstream o;
  const Spec& s = *r.spec;
  o << (markdown ? "## " : "") << s.title << "\n\n"
    << s.citation() << (s.paper_title.empty() ? "" : ", \"" + s.paper_title + "\"") << "\n"
    << (markdown ? "\n" : "") << budget_line(r) << "\n"
    << (markdown ? "\n" : "");
  o << "spec " << s.file << "; runs: sweep " << r.sweep_name << " (" << r.sweep_file << ")\n\n";
  const Wide w = wide_table(r);
  if (markdown) {
    for (const auto& h : w.header) o << "| " << h << " ";
    o << "|\n";
    for (std::size_t i = 0; i < w.header.size(); ++i) o << (i ? "|---:" : "|---");
    o << "|\n";
    for (const auto& row : w.rows) {
      for (const auto& cell : row) o << "| " << cell << " ";
      o << "|\n";
    }
  } else {
    std::vector<std::size_t> width(w.header.size(), 0);
    for (std::size_t i = 0; i < w.header.size(); ++i) width[i] = display_width(w.header[i]);
    for (const auto& row : w.rows)
      for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], display_width(row[i]));
    auto line = [&](const std::vector<std::string>& cells) {
      for (std::size_t i = 0; i < cells.size(); ++i) o << (i ? "  " : "") << pad(cells[i], width[i], i > 0);
      o << "\n";
    };
    line(w.header);
    for (const auto& row : w.rows) line(row);
  }
  o << "\n" << (markdown ? "Cells:\n\n" : "cells:\n");
  for (const auto& c : r.cells) o << (markdown ? "- " : "  ") << detail_line(c, r.by_claims()) << "\n";
  if (!r.claims.empty()) {
    const std::string what = r.by_claims() ? "verdict kind " + kind_name(r.spec->verdict.kind)
                                           : std::string("the paper's relations");
    o << "\n" << (markdown ? "Claims (" : "claims (") << what << "):" << (markdown ? "\n\n" : "\n");
    for (const auto& c : r.claims)
      o << (markdown ? "- **" : "  ") << claim_mark(c.verdict) << (markdown ? "**" : "") << " " << c.text
        << ": " << c.detail << "\n";
  }
  for (const auto& p : r.panels) {
    if (p.png.empty()) continue;
    const std::string name = std::filesystem::path(p.png).filename().string();
    if (markdown) o << "\n![" << p.id << "](" << name << ")\n\n(" << p.png << ")\n";
    else o << (p.id == r.panels.front().id ? "\n" : "") << "figure " << p.id << ": " << p.png << "\n";
  }
  o << "\n" << summary_line(r) << "\n";
  return o.str();
}

std::string render_latex(const Report& r) {
  std::ostringstream o;
  const Wide w = wide_table(r);
  o << "% " << r.spec->citation() << "; " << budget_line(r) << "\n";
  o << "\\begin{tabular}{l" << std::string(w.header.size() - 1, 'r') << "}\n\\toprule\n";
  for (std::size_t i = 0; i < w.header.size(); ++i) o << (i ? " & " : "") << report::latex_escape(w.header[i]);
  o << " \\\\\n\\midrule\n";
  for (const auto& row : w.rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      std::string cell = report::latex_escape(row[i]);
      const std::string pm = "±";
      for (std::size_t at; (at = cell.find(pm)) != std::string::npos;) cell.replace(at, pm.size(), "$\\pm$");
      o << (i ? " & " : "") << cell;
    }
    o << " \\\\\n";
  }
  o << "\\bottomrule\n\\end{tabular}\n";
  if (!r.claims.empty()) {
    o << "\\begin{itemize}\n";
    for (const auto& c : r.claims)
      o << "\\item \\textbf{" << claim_mark(c.verdict) << "} " << report::latex_escape(c.text + ": " + c.detail)
        << "\n";
    o << "\\end{itemize}\n";
  }
  for (const auto& p : r.panels)
    if (!p.png.empty()) o << "% figure " << p.id << ": \\includegraphics{" << p.png << "}\n";
  o << "% " << summary_line(r) << "\n";
  return o.str();
}

std::string render_json(const Report& r) {
  nlohmann::ordered_json j;
  const Spec& s = *r.spec;
  j["spec"] = s.id;
  j["file"] = s.file;
  j["title"] = s.title;
  j["citation"] = s.citation();
  j["rows"] = nlohmann::json::array();
  for (const auto& row : s.rows) j["rows"].push_back({{"id", row.id}, {"label", row.label}});
  j["columns"] = nlohmann::json::array();
  for (const auto& col : s.columns)
    j["columns"].push_back({{"id", col.id}, {"label", col.label}, {"metric", col.metric}});
  j["budget"] = {{"name", r.budget->name},
                 {"epochs", r.budget->epochs},
                 {"paper_epochs", s.paper().epochs},
                 {"fraction", double(r.budget->epochs) / double(s.paper().epochs)},
                 {"description", r.budget->description},
                 {"expected_source", r.budget->expected_source}};
  j["seeds"] = r.seeds;
  j["sweep"] = r.sweep_name;
  j["cells"] = nlohmann::json::array();
  for (const auto& c : r.cells) {
    nlohmann::ordered_json x = {{"row", c.row->id},        {"column", c.col->id},
                                {"metric", c.col->metric}, {"verdict", verdict_name(c.verdict)},
                                {"n", c.stats.n},          {"values", c.values}};
    if (c.stats.n > 0) x["mean"] = c.stats.mean, x["ours"] = c.ours_text();
    if (c.stats.n > 1) x["se"] = c.stats.se;
    if (c.published) x["published"] = {{"text", c.published->text}, {"value", c.published->value}};
    if (c.expected) x["expected"] = {{"mean", c.expected->mean}, {"se", c.expected->se}, {"n", c.expected->n}};
    if (c.verdict == Verdict::Within || c.verdict == Verdict::Outside) {
      x["diff"] = c.diff;
      if (!c.col->order_only) x["tolerance"] = c.tolerance;
    }
    if (!c.missing_runs.empty()) x["missing_runs"] = c.missing_runs;
    j["cells"].push_back(x);
  }
  j["verdict_kind"] = kind_name(s.verdict.kind);
  j["claims"] = nlohmann::json::array();
  for (const auto& c : r.claims)
    j["claims"].push_back({{"claim", c.text}, {"verdict", claim_mark(c.verdict)}, {"detail", c.detail}});
  j["figures"] = nlohmann::json::array();
  for (const auto& p : r.panels) j["figures"].push_back({{"panel", p.id}, {"png", p.png}});
  j["summary"] = {{"within", r.within},
                  {"outside", r.outside},
                  {"not_comparable", r.not_comparable},
                  {"missing", r.missing},
                  {"claims_hold", r.claims_hold},
                  {"claims_fail", r.claims_fail},
                  {"claims_not_comparable", r.claims_not_comparable},
                  {"ok", r.ok()}};
  return j.dump(2) + "\n";
}

}  // namespace

std::string render_report(const Report& report, ReportFormat format) {
  switch (format) {
    case ReportFormat::Text: return render_text(report, false);
    case ReportFormat::Markdown: return render_text(report, true);
    case ReportFormat::Latex: return render_latex(report);
    case ReportFormat::Json: return render_json(report);
  }
  return "";
}

std::string figure_json(const Report& r) {
  nlohmann::ordered_json j;
  const Spec& s = *r.spec;
  const VerdictSpec& v = s.verdict;
  j["title"] = s.title;
  j["citation"] = s.citation();
  j["budget"] = budget_line(r);
  j["train_label"] = (v.train_negate ? "-" : "") + v.train_metric;
  j["test_label"] = (v.test_negate ? "-" : "") + v.test_metric;
  j["panels"] = nlohmann::json::array();
  for (const auto& p : r.panels) {
    nlohmann::ordered_json panel = {{"id", p.id}, {"png", p.png}, {"curves", nlohmann::json::array()}};
    for (const auto& c : p.curves)
      panel["curves"].push_back(
          {{"label", c.row->label}, {"samples", c.samples}, {"train", c.train}, {"test", c.test}});
    j["panels"].push_back(panel);
  }
  return j.dump(1) + "\n";
}

}  // namespace vae::reproduce
