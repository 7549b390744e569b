#include "draw/trained.hpp"
#include "train/run.hpp"

#include <random>
#include <stdexcept>
#include <utility>

#include "models/settings.hpp"
#include "store/run_identity.hpp"
#include "train/checkpoint.hpp"

namespace vae::draw {

TrainedModel load_trained(const std::string& checkpoint_path, const ConfigMap* config) {
  Checkpoint c = load_checkpoint(checkpoint_path);
  TrainedModel t;
  t.checkpoint = checkpoint_path;
  t.epoch = c.epoch;
  if (config) {
    t.config = *config;
  } else {
    if (c.config_json.empty())
      throw std::runtime_error(checkpoint_path + ": the checkpoint carries no configuration");
    try {
      t.config = store::config_from_json(c.config_json);
    } catch (const std::exception& e) {
      throw std::runtime_error(checkpoint_path + ": its configuration does not parse: " + e.what());
    }
  }
  const TrainConfig tc = to_train_config(t.config);
  t.data = data::load(data_spec(tc));  // the run's data, as it was trained
  std::mt19937_64 unused_init(0);      // the parameters are overwritten below
  t.model = make_model(tc, t.data.test.rows, t.data.test.cols, unused_init);
  if (c.params.size() != t.model->num_params())
    throw std::runtime_error(checkpoint_path + ": " + std::to_string(c.params.size()) +
                             " parameters, the model of its configuration has " +
                             std::to_string(t.model->num_params()));
  t.model->params().assign(c.params.begin(), c.params.end());
  t.model->load_state(c.model_state);
  // A checkpoint past the configured epochs is in the second stage (the VQ-VAE's trained prior).
  if (c.epoch > tc.epochs && t.model->stage2_epochs() > 0) t.model->set_stage(2);
  t.model->reserve(1, 500);
  return t;
}

}  // namespace vae::draw
