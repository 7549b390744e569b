// vae merge: folds results databases (the shards of a sweep run as a cluster job
// array) into one, keyed by run identity; conflicts are reported, never overwritten.
#include <filesystem>
#include <iostream>

#include "command.hpp"
#include "results_common.hpp"
#include "store/merge.hpp"
#include "store/results_store.hpp"

namespace vae::cli {
namespace {

namespace po = boost::program_options;
using namespace vae::cli::results;

int run_merge(const std::vector<std::string>& args) {
  po::options_description desc(
      "vae merge options\n\n"
      "Copies every finished run (done, failed, diverged) of each SHARD.db that OUT.db lacks,\n"
      "with its settings, metrics per epoch and final, attempts and provenance, artifacts and\n"
      "sweep membership. A run already in OUT.db with the same status and final metrics\n"
      "(timings aside) is skipped, so merging again changes nothing and the order does not\n"
      "matter; the same run with other results is a conflict: one line each, OUT.db keeps\n"
      "its own, exit code 1. Unfinished runs are not copied. One transaction per shard");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("out", po::value<std::string>(), "the database to merge into (created if missing)")
      ("shards", po::value<std::vector<std::string>>(), "the databases to fold in")
      ("quiet,q", po::bool_switch(), "print only conflicts and errors");
  // clang-format on
  po::positional_options_description pos;
  pos.add("out", 1).add("shards", -1);
  po::variables_map vm;
  if (auto rc = parse("vae merge", "vae merge OUT.db SHARD.db [SHARD.db ...]", desc, pos, args, vm)) return *rc;
  if (!vm.count("out") || !vm.count("shards")) {
    std::cerr
        << "vae merge: expected OUT.db and at least one SHARD.db (vae merge OUT.db results/slurm/*/shard_*.db)\n";
    return kExitUsage;
  }
  const std::string out_path = vm["out"].as<std::string>();
  const auto shards = vm["shards"].as<std::vector<std::string>>();
  const bool quiet = vm["quiet"].as<bool>();
  // every input is checked before anything is written
  for (const auto& s : shards) store::open_for_reading(s);
  auto out = store::open_for_writing(out_path);
  int64_t conflicts = 0;
  for (const auto& s : shards) {
    store::MergeReport r = store::merge_database(*out, s);
    for (const auto& c : r.conflicts)
      std::cerr << "vae merge: conflict: run " << c.run_id.substr(0, 12) << ": " << c.why << " (" << out_path
                << " keeps its own)\n";
    conflicts += int64_t(r.conflicts.size());
    if (!quiet)
      std::cerr << s << ": " << r.copied << " runs copied, " << r.identical << " already here"
                << (r.conflicts.empty() ? "" : ", " + std::to_string(r.conflicts.size()) + " in conflict")
                << (r.unfinished
                        ? ", " + std::to_string(r.unfinished) + " unfinished (not copied: run that shard again)"
                        : "")
                << "\n";
  }
  const int64_t runs = out->scalar_int("SELECT count(*) FROM runs");
  const int64_t done = out->scalar_int("SELECT count(*) FROM runs WHERE status = 'done'");
  if (!quiet)
    std::cerr << out_path << ": " << runs << " runs (" << done << " done) from " << shards.size()
              << (shards.size() == 1 ? " database" : " databases")
              << (conflicts ? ", " + std::to_string(conflicts) + " conflicts" : "") << "\n";
  return conflicts ? kExitError : kExitOk;
}

Register reg{
    {"merge", "fold results databases (shards of a cluster sweep) into one, keyed by run id", &run_merge}};

}  // namespace
}  // namespace vae::cli
