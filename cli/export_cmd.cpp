// vae export: one flat row per run (settings, final metrics, provenance) for
// pandas or a spreadsheet.
#include <fstream>
#include <iostream>

#include "command.hpp"
#include "report/export.hpp"
#include "results_common.hpp"
#include "store/results_store.hpp"

namespace vae::cli {
namespace {

namespace po = boost::program_options;
using namespace vae::cli::results;

int run_export(const std::vector<std::string>& args) {
  po::options_description desc("vae export options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("format", po::value<std::string>()->default_value("csv"), "csv, tsv, json (an array) or jsonl (one object a line)")
      ("sweep", po::value<std::string>(), "only the runs of this sweep")
      ("status", po::value<std::vector<std::string>>()->composing(), "only runs with this status (comma list; default: any)")
      ("where", po::value<std::vector<std::string>>()->composing(), "only runs where KEY OP VALUE (repeatable)")
      ("output,o", po::value<std::string>(), "write to this file instead of standard output");
  // clang-format on
  add_db_option(desc);
  po::variables_map vm;
  if (auto rc = parse("vae export", "vae export [--format csv] [--sweep NAME] [-o FILE] [options]", desc, {},
                      args, vm))
    return *rc;
  report::Format f = report::parse_format(vm["format"].as<std::string>(),
                                          {report::Format::Csv, report::Format::Tsv, report::Format::Json,
                                           report::Format::Jsonl});
  auto db = store::open_for_reading(vm["db"].as<std::string>());
  report::Selection sel;
  if (vm.count("sweep")) sel.sweep = vm["sweep"].as<std::string>();
  sel.statuses = list_option(vm, "status");
  if (vm.count("where"))
    for (const auto& w : vm["where"].as<std::vector<std::string>>())
      sel.where.push_back(report::parse_condition(w));
  report::Frame fr = report::export_runs(*db, report::select_runs(*db, sel));
  std::string text = report::render_frame(fr, f);
  if (vm.count("output")) {
    std::ofstream out(vm["output"].as<std::string>());
    if (!out) throw std::runtime_error(vm["output"].as<std::string>() + ": cannot write");
    out << text;
    std::cerr << "vae export: " << fr.rows.size() << " runs, " << fr.columns.size() << " columns -> "
              << vm["output"].as<std::string>() << "\n";
  } else {
    std::cout << text;
  }
  return kExitOk;
}

Register reg{
    {"export", "one flat row per run (params.*, metrics.*, provenance) as csv, tsv, json", &run_export}};

}  // namespace
}  // namespace vae::cli
