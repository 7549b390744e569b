#include "train/evaluators.hpp"

#include <chrono>

#include "eval/disentangle.hpp"
#include "train/run.hpp"

namespace vae {

const std::vector<Evaluator>& evaluators() {
  static const std::vector<Evaluator> all = {
      // Disentanglement of the encoder's means against dSprites' known factors.
      {"dsprites-disentanglement",
       [](const TrainConfig& tc) { return tc.dataset == "dsprites" && tc.disent_eval > 0; },
       [](Model& model, const data::Splits&, const TrainConfig& tc, std::map<std::string, double>& metrics) {
         const auto t0 = std::chrono::steady_clock::now();
         for (const auto& [k, v] : eval::dsprites_metrics(model, disentangle_options(tc))) metrics[k] = v;
         metrics["disent_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
       }},
  };
  return all;
}

}  // namespace vae
