// Rendering: comparison tables (text, Markdown, CSV, LaTeX booktabs, JSON) and
// flat listings of rows (text, Markdown, CSV, TSV, JSON, JSON lines).
#pragma once

#include <string>
#include <vector>

#include "report/table.hpp"
#include "store/db.hpp"

namespace vae::report {

enum class Format { Text, Markdown, Csv, Tsv, Latex, Json, Jsonl };
// Accepts text, markdown (md), csv, tsv, latex (tex), json, jsonl; `allowed` limits them.
Format parse_format(const std::string& name, const std::vector<Format>& allowed);
std::string format_name(Format f);

struct RenderOptions {
  int digits = 2;            // decimals of means and errors
  std::string command_line;  // recorded as a comment in LaTeX output
};

// A comparison table. Text marks the best cell with '*', Markdown bolds it, LaTeX
// uses \mathbf; CSV gives numbers (mean, se, n per column) and a `best` column;
// JSON gives every statistic and the run ids of each cell.
std::string render_table(const Table& table, Format format, const RenderOptions& options = {});

// A flat listing.
struct Frame {
  std::vector<std::string> columns;
  std::vector<std::vector<store::SqlValue>> rows;
};
std::string render_frame(const Frame& frame, Format format);

// CSV field quoting (RFC 4180) and LaTeX escaping.
std::string csv_field(const std::string& s, char sep = ',');
std::string latex_escape(const std::string& s);

}  // namespace vae::report
