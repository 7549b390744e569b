// The one adapter from a model family (any implementation of models/contract.hpp, in
// float) to the program-level Model: it owns the family and two sets of buffers, one for
// training batches (batch norm in training mode) and one for evaluation chunks (running
// statistics), and forwards every Model call to the algorithms of models/algorithms.hpp.
#pragma once

#include <cmath>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "models/algorithms.hpp"
#include "models/model.hpp"

namespace vae {

template <class M>
class FamilyModel final : public Model {
 public:
  template <class... Args>
  explicit FamilyModel(Args&&... args) : m_(std::forward<Args>(args)...) {}

  M& family() { return m_; }
  Buffer<float>& params() override { return m_.params; }
  Buffer<float>& grads() override { return m_.grads; }
  std::vector<ParamRange> param_groups() const override { return m_.param_groups(); }
  std::vector<float> state() const override { return std::vector<float>(m_.state.begin(), m_.state.end()); }
  void load_state(const std::vector<float>& s) override {
    if (s.size() != m_.state.size())
      throw std::runtime_error("checkpoint: the model state has " + std::to_string(s.size()) +
                               " values, the model needs " + std::to_string(m_.state.size()));
    std::copy(s.begin(), s.end(), m_.state.begin());
  }

  void reserve(std::size_t train_batch, std::size_t eval_batch) override {
    m_.reserve(train_, train_batch);
    m_.reserve(eval_, eval_batch);
    eval_.training = false;  // batch norm: evaluation uses the running statistics
  }
  BatchLoss train_step(const data::Images& images, const uint32_t* index, std::size_t rows, bool dynamic,
                       std::mt19937_64& rng, const ObjectiveParams& p) override {
    return vae::train_step(m_, train_, images, index, rows, dynamic, rng, p);
  }
  BatchLoss train_step_update(const data::Images& images, const uint32_t* index, std::size_t rows, bool dynamic,
                              std::mt19937_64& rng, const ObjectiveParams& p, Optimizer<float>& opt,
                              double lr) override {
    return vae::train_step_update(m_, train_, images, index, rows, dynamic, rng, p, opt, lr);
  }
  void finish_training(const data::Images& train, std::mt19937_64& rng,
                       std::map<std::string, double>& metrics) override {
    if (m_.lik.kind != LikelihoodKind::Gaussian || m_.lik.sigma != SigmaMode::Optimal) return;
    const double s = optimal_log_sigma(m_, eval_, train, rng);
    m_.lik.eval_sigma_set = true;
    m_.lik.eval_log_sigma = float(s);
    metrics["sigma_eval"] = std::exp(s);
  }
  ElboReport evaluate(const data::Images& images, std::mt19937_64& rng) override {
    return evaluate_elbo(m_, eval_, images, rng);
  }
  double iw_nll(const data::Images& images, std::size_t n, std::size_t K, std::size_t chunk,
                std::mt19937_64& rng) override {
    return vae::iw_nll(m_, eval_, images, n, K, chunk, rng);
  }
  std::size_t latent_dim() const override { return m_.units(); }
  std::vector<float> encode_mean(const data::Images& images, std::size_t n) override {
    return vae::encode_mean(m_, eval_, images, n);
  }
  std::vector<float> decode_mean(const std::vector<float>& z, std::size_t n) override {
    return vae::decode_mean(m_, eval_, z, n);
  }
  std::vector<float> sample_prior(std::size_t n, std::mt19937_64& rng) override {
    if (m_.standard_prior()) return Model::sample_prior(n, rng);
    return sample_prior_codes(m_, eval_, n, rng);
  }
  void describe(std::map<std::string, double>& metrics) override {
    if (m_.lik.has_shared_param())
      metrics["sigma_learned"] = std::exp(
          double(softclip(m_.params[m_.lik.shared_offset], m_.lik.min_log_sigma)));
    m_.describe(metrics);
  }
  int64_t stage2_epochs() const override {
    if constexpr (has_stages<M>::value) return m_.stage2_epochs();
    return 0;
  }
  void set_stage(int stage) override {
    if constexpr (has_stages<M>::value) m_.set_stage(stage);
  }

 private:
  M m_;
  typename M::Work train_, eval_;
};

// What every family's factory ends with: the family M (in float) built from args, behind
// the adapter, its parameters drawn from init_rng as tc says (--init, --init-std).
template <class M, class... Args>
std::unique_ptr<Model> make_family_model(const TrainConfig& tc, std::mt19937_64& init_rng, Args&&... args) {
  auto m = std::make_unique<FamilyModel<M>>(std::forward<Args>(args)...);
  m->family().initialize(parse_init(tc.init), tc.init_std, init_rng);
  return m;
}

}  // namespace vae
