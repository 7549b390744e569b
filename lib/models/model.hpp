// What the trainer needs of any model (the MLP VAE, IAF, Ladder VAE, ...): a flat
// parameter buffer, a training step, and the evaluations. Each model family
// implements it over its own templated forward/backward code.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "data/dataset.hpp"
#include "nn/optimizer.hpp"
#include "nn/params.hpp"
#include "prob/noise.hpp"
#include "tensor/view.hpp"

namespace vae {

struct ObjectiveParams {
  double beta = 1.0;       // already multiplied by the warm-up factor
  double free_bits = 0.0;  // lambda in nats per latent dimension, 0: off
  Objective objective = Objective::Elbo;
  std::size_t k = 1;  // samples per example
  // The KL warm-up factor in [0, 1] that beta already includes (NVAE's KL balancing reads it).
  double warmup = 1.0;
  // The ELBO's KL as the single-sample log q - log p even where it has a closed form (the
  // IWAE paper's VAE); the IWAE objective (k > 1) always uses it.
  bool sampled_kl = false;
};

struct BatchLoss {
  double loss = 0;  // the objective (what is minimised)
  double rec = 0;   // mean -log p(x|z)
  double kl = 0;    // mean KL (analytic where it exists), whatever free bits do
  double elbo() const { return -(rec + kl); }
};

// What evaluate() reports of a split, in nats per example. Every family has the bound
// elbo = -(rec + kl) and its two parts (for a deterministic encoder such as the VQ-VAE's,
// kl is -log p_prior(z_q), the KL of its one-hot posterior). Everything else is named by
// the family and stored under that name as it is -- metrics as final metrics, vectors as
// per-unit vectors (store/unit_vectors.hpp) -- so a family without a Gaussian KL reports
// its own (codebook usage, perplexity) and the store, `vae table` and the plots need no
// change for a new name.
struct ElboReport {
  double elbo = 0, rec = 0, kl = 0;  // means over examples; elbo = -(rec + kl)
  // e.g. active_units, kl_layer<i>, active_units_layer<i>; perplexity, codes_used
  std::map<std::string, double> metrics;
  // e.g. kl_per_dim (mean KL of each latent unit), mu_variance (Var_x E_q[z_u|x]); code_usage
  std::map<std::string, std::vector<double>> vectors;
  // The named vector, empty when the family does not report it.
  const std::vector<double>& vector(const std::string& name) const {
    static const std::vector<double> none;
    const auto it = vectors.find(name);
    return it == vectors.end() ? none : it->second;
  }
};

class Model {
 public:
  virtual ~Model() = default;
  virtual Buffer<float>& params() = 0;
  virtual Buffer<float>& grads() = 0;
  std::size_t num_params() { return params().size(); }
  // Every parameter range by name, in layout order (the family's param_groups()).
  virtual std::vector<ParamRange> param_groups() const = 0;
  // State saved in checkpoints beside the parameters (batch-norm running statistics).
  virtual std::vector<float> state() const { return {}; }
  virtual void load_state(const std::vector<float>& /*state*/) {}

  // Preallocates for training batches and evaluation chunks of up to these many rows.
  virtual void reserve(std::size_t train_batch, std::size_t eval_batch) = 0;
  // Fills the batch (fresh Bernoulli draw when dynamic) and noise from rng, zeroes the
  // gradients and accumulates d loss / d params. Allocates nothing.
  virtual BatchLoss train_step(const data::Images& images, const uint32_t* index, std::size_t rows,
                               bool dynamic, std::mt19937_64& rng, const ObjectiveParams& p) = 0;
  // train_step, then the optimizer's step at lr (models/algorithms.hpp, train_step_update:
  // the same numbers, with the update fused into backward where the family allows it). A
  // non-finite loss leaves the parameters as they were.
  virtual BatchLoss train_step_update(const data::Images& images, const uint32_t* index, std::size_t rows,
                                      bool dynamic, std::mt19937_64& rng, const ObjectiveParams& p,
                                      Optimizer<float>& opt, double lr) = 0;
  // After the last epoch, before evaluation (the optimal sigma is measured here).
  virtual void finish_training(const data::Images& /*train*/, std::mt19937_64& /*rng*/,
                               std::map<std::string, double>& /*metrics*/) {}
  // Single-sample ELBO over a split (stored as it is: test sets are binarized once).
  virtual ElboReport evaluate(const data::Images& images, std::mt19937_64& rng) = 0;
  // Mean -log p(x) over the first n images (0: all) by K importance samples.
  virtual double iw_nll(const data::Images& images, std::size_t n, std::size_t K, std::size_t chunk,
                        std::mt19937_64& rng) = 0;
  virtual std::size_t latent_dim() const = 0;
  // E_q[z|x] of the first n images (0: all), [n, latent_dim] row-major: the
  // representation that active units and disentanglement metrics read.
  virtual std::vector<float> encode_mean(const data::Images& images, std::size_t n) = 0;
  // The decoder's mean for n latent codes z [n, latent_dim]: [n, D] in [0,1]
  // (Bernoulli probabilities or Gaussian means), for pictures.
  virtual std::vector<float> decode_mean(const std::vector<float>& z, std::size_t n) = 0;
  // n codes drawn from the prior p(z), in decode_mean's layout [n, latent_dim]; the
  // default is N(0, I), the prior of the MLP VAE (with or without IAF, whose z_T it is).
  virtual std::vector<float> sample_prior(std::size_t n, std::mt19937_64& rng) {
    std::vector<float> z(n * latent_dim());
    fill_normal(z.data(), z.size(), rng);
    return z;
  }
  // Final facts worth recording (e.g. the learned sigma).
  virtual void describe(std::map<std::string, double>& /*metrics*/) {}
  // A second training stage after the configured epochs (the VQ-VAE's prior, trained on the
  // frozen autoencoder's codes): its epochs (0: none), and the switch to it (stage 2; the
  // trainer starts a fresh optimizer), also made when a trained run is loaded for drawing.
  virtual int64_t stage2_epochs() const { return 0; }
  virtual void set_stage(int /*stage*/) {}
};

// The model a configuration asks for, initialised from init_rng.
std::unique_ptr<Model> make_model(const TrainConfig& tc, std::size_t rows, std::size_t cols,
                                  std::mt19937_64& init_rng);

// --output-bias data-logit: the Bernoulli decoder's output bias set to the training images'
// per-pixel log-odds, log(m / (1 - m)) with m their mean intensity clipped to [0.001, 0.999]
// (the IWAE paper's code, yburda/iwae datasets.py get_train_bias_np): the untrained decoder
// then draws the average image, not grey. The bias is the group dec_out.b (model = vae) or
// dec.out.b (ladder, hierarchical); a ConfigError for a model without one of D values.
void set_output_bias_to_data_logit(Model& model, const data::Images& train);

}  // namespace vae
