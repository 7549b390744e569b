// The trained model a picture or an encoding is made from: `--run ID` (through the
// results database: the run's checkpoint artifact and its stored resolved
// configuration) or `--checkpoint PATH` (the checkpoint's own configuration).
#pragma once

#include <optional>
#include <string>

#include "draw/trained.hpp"
#include "report/selection.hpp"
#include "results_common.hpp"
#include "store/results_store.hpp"
#include "store/run_identity.hpp"

namespace vae::cli::results {

inline void add_source_options(po::options_description& desc) {
  // clang-format off
  desc.add_options()
      ("run", po::value<std::string>(), "run id (or a unique prefix of at least 4 hex digits) in the database")
      ("checkpoint", po::value<std::string>(), "a checkpoint file (last.ckpt, best.ckpt) instead of --run")
      ("which", po::value<std::string>()->default_value("last"),
       "with --run: the checkpoint to read, last (the model the run's test metrics describe) or best");
  // clang-format on
  add_db_option(desc);
}

struct Source {
  std::optional<std::string> run_id;  // set for --run
  draw::TrainedModel trained;
};

inline Source load_source(const po::variables_map& vm) {
  const bool by_run = vm.count("run") > 0, by_ckpt = vm.count("checkpoint") > 0;
  if (by_run == by_ckpt) throw report::UsageError("give exactly one of --run ID and --checkpoint PATH");
  Source s;
  if (by_ckpt) {
    s.trained = draw::load_trained(vm["checkpoint"].as<std::string>());
    return s;
  }
  const std::string which = vm["which"].as<std::string>();
  if (which != "last" && which != "best")
    throw report::UsageError("--which '" + which + "': expected last or best");
  const std::string db_path = vm["db"].as<std::string>();
  auto db = store::open_for_reading(db_path);
  const std::string id = report::resolve_run_id(*db, vm["run"].as<std::string>());
  store::ResultsStore st(*db);
  auto path = st.artifact_path(id, which);
  if (!path)
    throw std::runtime_error(db_path + ": run " + id.substr(0, 12) + " has no '" + which +
                             "' checkpoint (not run yet, or deleted by --delete-checkpoints)");
  std::string config_json;
  db->read([&] {
    auto q = db->prepare("SELECT config_json FROM runs WHERE run_id = ?");
    q.bind(1, id);
    config_json = q.step() ? q.get_text(0) : "";
  });
  const ConfigMap config = store::config_from_json(config_json);
  s.run_id = id;
  s.trained = draw::load_trained(*path, &config);
  return s;
}

}  // namespace vae::cli::results
