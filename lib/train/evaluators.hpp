// Evaluations that a run adds after the standard ones (test ELBO and its parts, the
// importance-weighted NLL), chosen by the run's configuration -- by dataset or by model --
// instead of branches in the training loop. Each adds named metrics.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "data/dataset.hpp"
#include "models/model.hpp"

namespace vae {

struct Evaluator {
  std::string name;
  std::function<bool(const TrainConfig&)> applies;
  std::function<void(Model&, const data::Splits&, const TrainConfig&, std::map<std::string, double>&)> run;
};

// Every evaluator, in the order they run.
const std::vector<Evaluator>& evaluators();

}  // namespace vae
