// The VAE (Gaussian, beta- and sigma-VAE, IAF posterior; MLP or convolutional encoder and
// decoder) behind the Model interface.
#include "models/mlp_vae.hpp"

#include <cmath>
#include <stdexcept>

#include "train/evaluate.hpp"
#include "train/evaluate_iaf.hpp"
#include "train/step.hpp"

namespace vae {

namespace {

class MlpVae final : public Model {
 public:
  MlpVae(const VaeShape& shape, const Likelihood<float>& lik) : model_(shape, lik) {}

  Vae<float>& model() { return model_; }
  Buffer<float>& params() override { return model_.params; }
  Buffer<float>& grads() override { return model_.grads; }
  std::vector<float> state() const override { return std::vector<float>(model_.state.begin(), model_.state.end()); }
  void load_state(const std::vector<float>& s) override {
    if (s.size() != model_.state.size())
      throw std::runtime_error("checkpoint: the model state has " + std::to_string(s.size()) +
                               " values, the model needs " + std::to_string(model_.state.size()));
    std::copy(s.begin(), s.end(), model_.state.begin());
  }

  void reserve(std::size_t train_batch, std::size_t eval_batch) override {
    model_.reserve(train_, train_batch);
    model_.reserve(eval_, eval_batch);
    eval_.training = false;  // conv batch norm: evaluation uses the running statistics
  }
  BatchLoss train_step(const data::Images& images, const uint32_t* index, std::size_t rows, bool dynamic,
                       std::mt19937_64& rng, const ObjectiveParams& p) override {
    return forward_backward(model_, train_, images, index, rows, dynamic, rng, p);
  }
  void finish_training(const data::Images& train, std::mt19937_64& rng,
                       std::map<std::string, double>& metrics) override {
    if (model_.lik.kind == LikelihoodKind::Gaussian && model_.lik.sigma == SigmaMode::Optimal) {
      const double s = optimal_log_sigma(model_, eval_, train, rng);
      model_.lik.eval_sigma_set = true;
      model_.lik.eval_log_sigma = float(s);
      metrics["sigma_eval"] = std::exp(s);
    }
  }
  // A flow posterior (IAF with steps > 0) needs its full log q; with 0 steps the model is
  // the Gaussian VAE and takes the Gaussian's code paths, bit for bit.
  ElboReport evaluate(const data::Images& images, std::mt19937_64& rng) override {
    if (model_.flow_steps() > 0) return evaluate_elbo_flow(model_, eval_, images, rng);
    return evaluate_elbo(model_, eval_, images, rng);
  }
  double iw_nll(const data::Images& images, std::size_t n, std::size_t K, std::size_t chunk,
                std::mt19937_64& rng) override {
    if (model_.flow_steps() > 0) return iw_nll_flow(model_, eval_, images, n, K, chunk, rng);
    return vae::iw_nll(model_, eval_, images, n, K, chunk, rng);
  }
  std::size_t latent_dim() const override { return model_.shape.latent; }
  std::vector<float> encode_mean(const data::Images& images, std::size_t n) override {
    const std::size_t L = model_.shape.latent, N = n == 0 ? images.n : std::min(n, images.n);
    const auto idx = first_indices(images, N);
    std::vector<float> mu(N * L);
    for (std::size_t start = 0; start < N; start += eval_.max_batch) {
      const std::size_t rows = std::min(eval_.max_batch, N - start);
      gather_batch(eval_.x.ptr(), images, idx.data() + start, rows);
      model_.encode(eval_, rows);
      // IAF: the code in the decoder's space, z_T at eps = 0 (train/evaluate_iaf.hpp).
      if (model_.flow_steps() > 0) flow_mean_code(model_, eval_, rows);
      const float* code = model_.flow_steps() > 0 ? eval_.z.ptr() : eval_.mu.ptr();
      std::copy(code, code + rows * L, mu.begin() + std::ptrdiff_t(start * L));
    }
    return mu;
  }
  std::vector<float> decode_mean(const std::vector<float>& z, std::size_t n) override {
    const std::size_t L = model_.shape.latent, D = model_.shape.data_dim;
    std::vector<float> out(n * D);
    for (std::size_t start = 0; start < n; start += eval_.max_batch) {
      const std::size_t rows = std::min(eval_.max_batch, n - start);
      std::copy(z.begin() + std::ptrdiff_t(start * L), z.begin() + std::ptrdiff_t((start + rows) * L), eval_.z.ptr());
      std::fill(eval_.x.ptr(), eval_.x.ptr() + rows * D, 0.0f);  // decode() also scores x; unused here
      model_.decode(eval_, rows);
      const float* o = eval_.out.ptr();
      const bool sigmoid = model_.lik.kind == LikelihoodKind::Bernoulli || model_.lik.sigmoid_mean;
      for (std::size_t i = 0; i < rows * D; ++i)
        out[start * D + i] = sigmoid ? 1.0f / (1.0f + std::exp(-o[i])) : o[i];
    }
    return out;
  }
  void describe(std::map<std::string, double>& metrics) override {
    if (model_.lik.has_shared_param())
      metrics["sigma_learned"] =
          std::exp(double(softclip(model_.params[model_.lik.shared_offset], model_.lik.min_log_sigma)));
  }

 private:
  Vae<float> model_;
  Vae<float>::Work train_, eval_;
};

}  // namespace

Likelihood<float> likelihood_from(const TrainConfig& tc) {
  Likelihood<float> lik;
  lik.kind = tc.likelihood == "gaussian" ? LikelihoodKind::Gaussian : LikelihoodKind::Bernoulli;
  lik.sigma = parse_sigma_mode(tc.sigma);
  lik.fixed_log_sigma = float(std::log(tc.sigma_value));
  lik.min_log_sigma = float(tc.min_log_sigma);
  lik.sigmoid_mean = tc.gaussian_mean == "sigmoid";
  return lik;
}

std::unique_ptr<Model> make_mlp_vae(const TrainConfig& tc, std::size_t rows, std::size_t cols,
                                    std::mt19937_64& init_rng) {
  VaeShape shape;
  shape.data_dim = rows * cols;
  if (tc.arch == "conv") {
    shape.arch = Arch::Conv;
    shape.conv.rows = rows;
    shape.conv.cols = cols;
    shape.conv.channels.assign(tc.conv_channels.begin(), tc.conv_channels.end());
    shape.conv.kernel = std::size_t(tc.conv_kernel);
  }
  shape.latent = std::size_t(tc.latent);
  shape.hidden.assign(tc.hidden.begin(), tc.hidden.end());
  shape.activation = parse_activation(tc.activation);
  if (tc.posterior == "iaf") {
    shape.posterior = PosteriorKind::Iaf;
    shape.iaf.steps = std::size_t(tc.iaf_steps);
    shape.iaf.hidden = std::size_t(tc.iaf_hidden);
    shape.iaf.layers = std::size_t(tc.iaf_made_layers);
    shape.iaf.context = std::size_t(tc.iaf_context);
    shape.iaf.forget_bias = tc.iaf_forget_bias;
    shape.iaf.kl = tc.iaf_kl == "stl" ? FlowKl::Stl : FlowKl::Sample;
  }
  std::unique_ptr<MlpVae> m;
  try {
    m = std::make_unique<MlpVae>(shape, likelihood_from(tc));
  } catch (const std::invalid_argument& e) {  // a conv geometry the images do not allow
    throw ConfigError(std::string("keys 'conv-channels', 'conv-kernel': ") + e.what());
  }
  m->model().initialize(parse_init(tc.init), tc.init_std, init_rng);
  return m;
}

}  // namespace vae
