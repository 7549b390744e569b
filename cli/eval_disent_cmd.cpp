// vae eval-disent: the disentanglement metrics (beta-VAE, FactorVAE, MIG) of an
// existing dsprites run, from its checkpoint, written into the run's metrics.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "config/config.hpp"
#include "data/dsprites.hpp"
#include "eval/disentangle.hpp"
#include "models/model.hpp"
#include "models/settings.hpp"
#include "report/selection.hpp"
#include "results_common.hpp"
#include "store/results_store.hpp"
#include "store/run_identity.hpp"
#include "train/checkpoint.hpp"
#include "train/run.hpp"
#include "util/blas.hpp"

namespace vae::cli {
namespace {

using namespace results;

// The newest checkpoint recorded for the run: last, else best.
std::string run_checkpoint(store::Db& db, const std::string& id) {
  std::string path;
  db.read([&] {
    auto s = db.prepare("SELECT path FROM artifacts WHERE run_id = ? AND kind IN ('last', 'best') "
                        "ORDER BY kind = 'last' DESC LIMIT 1");
    s.bind(1, id);
    if (s.step()) path = s.get_text(0);
  });
  if (path.empty())
    throw report::UsageError("run " + id +
                             " has no checkpoint recorded (was it swept with "
                             "--delete-checkpoints?); give --checkpoint PATH");
  return path;
}

int eval_disent(const std::vector<std::string>& args) {
  po::options_description desc("vae eval-disent options");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("run", po::value<std::string>(), "run id, or a unique prefix of at least 4 hex digits")
      ("checkpoint", po::value<std::string>(),
       "a checkpoint file instead of a run (its configuration is read from the file); nothing is "
       "written to the database")
      ("disent-batch", po::value<int64_t>(), "examples per point (default: the run's setting)")
      ("disent-train", po::value<int64_t>(), "classifier training points, MIG and variance examples (default: the run's)")
      ("disent-eval", po::value<int64_t>(), "classifier evaluation points (default: the run's)")
      ("json", po::bool_switch(), "print the metrics as one JSON line");
  // clang-format on
  add_db_option(desc);
  po::positional_options_description pos;
  pos.add("run", 1);
  po::variables_map vm;
  if (auto rc = parse("vae eval-disent", "vae eval-disent RUN_ID [options] | --checkpoint PATH", desc, pos,
                      args, vm))
    return *rc;
  if (vm.count("run") == vm.count("checkpoint"))
    throw report::UsageError("give a run id or --checkpoint PATH (one of the two)");

  std::string id, ckpt_path;
  std::unique_ptr<store::Db> db;
  if (vm.count("run")) {
    db = store::open_for_writing(vm["db"].as<std::string>());
    id = report::resolve_run_id(*db, vm["run"].as<std::string>());
    ckpt_path = run_checkpoint(*db, id);
  } else {
    ckpt_path = vm["checkpoint"].as<std::string>();
  }
  const Checkpoint c = load_checkpoint(ckpt_path);
  ConfigMap config = store::config_from_json(c.config_json);
  for (const char* k : {"disent-batch", "disent-train", "disent-eval"})
    if (vm.count(k)) vae::apply(config, {{k, vm[k].as<int64_t>()}});
  const TrainConfig tc = to_train_config(config);
  if (tc.dataset != "dsprites")
    throw report::UsageError(ckpt_path + ": a run on " + tc.dataset +
                             "; the disentanglement metrics need dataset = dsprites (known factors)");
  if (tc.disent_eval == 0) throw report::UsageError("--disent-eval 0 computes nothing");
  set_blas_threads(int(tc.threads));

  std::mt19937_64 init_rng(0);  // overwritten by the checkpoint's parameters
  auto model = make_model(tc, data::dsprites::kImageSide, data::dsprites::kImageSide, init_rng);
  if (c.params.size() != model->num_params())
    throw std::runtime_error(ckpt_path + ": parameter count " + std::to_string(c.params.size()) +
                             " does not match the configuration's model (" +
                             std::to_string(model->num_params()) + ")");
  model->params().assign(c.params.begin(), c.params.end());
  model->load_state(c.model_state);
  model->reserve(1, 500);
  const auto m = eval::dsprites_metrics(*model, disentangle_options(tc));

  if (db) {
    db->write([&] {
      auto s = db->prepare("INSERT OR REPLACE INTO metrics (run_id, name, value) VALUES (?, ?, ?)");
      for (const auto& [k, v] : m) {
        s.bind(1, id).bind(2, k).bind(3, v);
        s.run();
      }
    });
  }
  if (vm["json"].as<bool>()) {
    nlohmann::json j(m);
    if (!id.empty()) j["run_id"] = id;
    j["checkpoint"] = ckpt_path;
    std::cout << j.dump() << std::endl;
  } else {
    std::printf("%s (epoch %lld)%s\n", ckpt_path.c_str(), (long long)c.epoch,
                db ? (", written to run " + id).c_str() : "");
    for (const auto& [k, v] : m) std::printf("  %-22s %8.4f\n", k.c_str(), v);
  }
  return kExitOk;
}

Register reg{{"eval-disent",
              "disentanglement metrics (beta-VAE, FactorVAE, MIG) of a dsprites run: vae eval-disent RUN",
              &eval_disent}};

}  // namespace
}  // namespace vae::cli
