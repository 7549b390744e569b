// The Ladder VAE and the bottom-up hierarchical VAE behind the Model interface: the
// training step (batch-norm training mode, then the running-statistics update) and the
// evaluations (evaluation mode):
//  - ELBO with one sample per example, its KL per layer and per unit;
//  - active units per layer, Cov_x(E_q[z_u|x]) > 0.01 (Burda et al. 2015). For layers
//    above the first, E_q[z_i|x] is taken along the mean path: every eps = 0, so each
//    layer's posterior mean is computed from the means of the layers it is conditioned on
//    (exact for the ladder's top layer and the hierarchical VAE's first; for the others
//    the mean of q given the mean path, not the mean over sampled paths -- cheap,
//    noise-free, and the same rule for both models);
//  - the importance-weighted log-likelihood with K samples from the model's own q:
//      log p(x) ~ log (1/K) sum_k p(x|z_1) p(z_L) prod_{i<L} p(z_i|z_{i+1}) / q(z_1..z_L|x)
//    sampled top-down (ladder) or bottom-up (hierarchical), chunked, log-sum-exp in double.
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "models/ladder.hpp"
#include "models/mlp_vae.hpp"
#include "train/batch.hpp"
#include "train/evaluate.hpp"

namespace vae {

namespace {

class LadderModel final : public Model {
 public:
  LadderModel(const LadderShape& shape, const Likelihood<float>& lik) : m_(shape, lik) {}

  LadderVae<float>& model() { return m_; }
  Buffer<float>& params() override { return m_.params; }
  Buffer<float>& grads() override { return m_.grads; }
  std::vector<float> state() const override { return std::vector<float>(m_.stats.begin(), m_.stats.end()); }
  void load_state(const std::vector<float>& s) override {
    if (s.size() != m_.stats.size())
      throw std::runtime_error("checkpoint: the model state has " + std::to_string(s.size()) +
                               " values, this model's batch-norm statistics need " +
                               std::to_string(m_.stats.size()));
    m_.stats.assign(s.begin(), s.end());
  }

  void reserve(std::size_t train_batch, std::size_t eval_batch) override {
    m_.reserve(train_, train_batch);
    m_.reserve(eval_, eval_batch);
  }

  BatchLoss train_step(const data::Images& images, const uint32_t* index, std::size_t rows, bool dynamic,
                       std::mt19937_64& rng, const ObjectiveParams& p) override {
    if (dynamic) gather_batch_binarized(train_.x.ptr(), images, index, rows, rng);
    else gather_batch(train_.x.ptr(), images, index, rows);
    fill_noise(train_, rows, rng);
    std::fill(m_.grads.begin(), m_.grads.end(), 0.0f);
    const BatchLoss l = ladder_loss_and_grad(m_, train_, rows, p, true);
    m_.update_running(train_, rows);
    return l;
  }

  void finish_training(const data::Images& train, std::mt19937_64& rng,
                       std::map<std::string, double>& metrics) override {
    if (m_.lik.kind != LikelihoodKind::Gaussian || m_.lik.sigma != SigmaMode::Optimal) return;
    // sigma* for evaluation: the decoder mean's MSE over the training set (one sample each).
    const std::size_t N = train.n, B = eval_.max_batch, D = m_.shape.data_dim;
    const auto idx = first_indices(train, 0);
    double sse = 0;
    for (std::size_t start = 0; start < N; start += B) {
      const std::size_t rows = std::min(B, N - start);
      gather_batch(eval_.x.ptr(), train, idx.data() + start, rows);
      fill_noise(eval_, rows, rng);
      m_.forward(eval_, rows, false);
      const float* mean = eval_.lw.mean.ptr();
      const float* x = eval_.x.ptr();
      for (std::size_t i = 0; i < rows * D; ++i) sse += double(x[i] - mean[i]) * double(x[i] - mean[i]);
    }
    const double s = double(softclip(float(0.5 * std::log(sse / double(N * D))), m_.lik.min_log_sigma));
    m_.lik.eval_sigma_set = true;
    m_.lik.eval_log_sigma = float(s);
    metrics["sigma_eval"] = std::exp(s);
  }

  ElboReport evaluate(const data::Images& images, std::mt19937_64& rng) override {
    const std::size_t N = images.n, B = eval_.max_batch, L = m_.layers();
    const auto idx = first_indices(images, 0);
    ElboReport r;
    std::vector<double> kl_unit(latent_dim(), 0.0);
    for (std::size_t start = 0; start < N; start += B) {
      const std::size_t rows = std::min(B, N - start);
      gather_batch(eval_.x.ptr(), images, idx.data() + start, rows);
      fill_noise(eval_, rows, rng);
      m_.forward(eval_, rows, false);
      for (std::size_t b = 0; b < rows; ++b) r.rec += double(eval_.rec[b]);
      for (std::size_t i = 0, u0 = 0; i < L; u0 += m_.shape.latent[i++]) {
        const std::size_t S = m_.shape.latent[i];
        const float* kl = eval_.layer[i].kl.ptr();
        for (std::size_t b = 0; b < rows; ++b)
          for (std::size_t j = 0; j < S; ++j) kl_unit[u0 + j] += double(kl[b * S + j]);
      }
    }
    r.rec /= double(N);
    for (double& k : kl_unit) k /= double(N);
    r.kl_per_dim = kl_unit;
    const std::vector<float> mu = encode_mean(images, 0);
    r.mu_variance = column_variances(mu, N, latent_dim());
    for (std::size_t i = 0, u0 = 0; i < L; u0 += m_.shape.latent[i++]) {
      double kl = 0;
      int64_t active = 0;
      for (std::size_t j = 0; j < m_.shape.latent[i]; ++j) {
        kl += kl_unit[u0 + j];
        if (r.mu_variance[u0 + j] > kActiveUnitThreshold) ++active;
      }
      r.kl += kl;
      r.active_units += active;
      r.extra["kl_layer" + std::to_string(i + 1)] = kl;
      r.extra["active_units_layer" + std::to_string(i + 1)] = double(active);
    }
    r.elbo = -(r.rec + r.kl);
    return r;
  }

  double iw_nll(const data::Images& images, std::size_t n, std::size_t K, std::size_t chunk,
                std::mt19937_64& rng) override {
    auto& w = eval_;
    const std::size_t L = m_.layers(), D = m_.shape.data_dim;
    const std::size_t N = n == 0 ? images.n : std::min(n, images.n);
    chunk = std::min(chunk, w.max_batch);
    std::vector<double> log_w(K), log_p(chunk), log_q(chunk);
    double total = 0;
    for (std::size_t e = 0; e < N; ++e) {
      const uint32_t index = uint32_t(e);
      gather_batch(w.x.ptr(), images, &index, 1);
      m_.forward_up(w, 1, false);  // what does not depend on the noise, once per example
      const std::size_t first = std::min(chunk, K);
      for (std::size_t r = 1; r < first; ++r) std::memcpy(w.x.ptr() + r * D, w.x.ptr(), D * sizeof(float));
      m_.broadcast_up(w, first);
      for (std::size_t done = 0; done < K; done += chunk) {
        const std::size_t m = std::min(chunk, K - done);  // later chunks are no longer than the first
        fill_noise(w, m, rng);
        m_.forward_down(w, m);
        std::fill(log_p.begin(), log_p.end(), 0.0);
        std::fill(log_q.begin(), log_q.end(), 0.0);
        add_log_standard_rows(log_p.data(), w.layer[L - 1].z.view(m));
        for (std::size_t i = 0; i + 1 < L; ++i) {
          auto& l = w.layer[i];
          add_log_normal_rows(log_p.data(), l.z.view(m), l.mu_p.view(m), l.var_p.view(m));
        }
        for (std::size_t i = 0; i < L; ++i) add_log_q_rows(log_q.data(), w.layer[i].eps.view(m), w.layer[i].var_q.view(m));
        for (std::size_t r = 0; r < m; ++r) log_w[done + r] = -double(w.rec[r]) + log_p[r] - log_q[r];
      }
      total += log_sum_exp(log_w.data(), K) - std::log(double(K));
    }
    return -total / double(N);
  }

  std::size_t latent_dim() const override {
    std::size_t n = 0;
    for (std::size_t s : m_.shape.latent) n += s;
    return n;
  }

  // Posterior means along the mean path (eps = 0), all layers side by side, layer 1 first.
  std::vector<float> encode_mean(const data::Images& images, std::size_t n) override {
    const std::size_t N = n == 0 ? images.n : std::min(n, images.n), U = latent_dim(), L = m_.layers();
    const auto idx = first_indices(images, N);
    std::vector<float> mu(N * U);
    for (std::size_t start = 0; start < N; start += eval_.max_batch) {
      const std::size_t rows = std::min(eval_.max_batch, N - start);
      gather_batch(eval_.x.ptr(), images, idx.data() + start, rows);
      for (auto& l : eval_.layer) std::fill(l.eps.data.begin(), l.eps.data.end(), 0.0f);
      m_.forward_up(eval_, rows, false);
      m_.forward_down(eval_, rows, false);
      for (std::size_t i = 0, u0 = 0; i < L; u0 += m_.shape.latent[i++]) {
        const std::size_t S = m_.shape.latent[i];
        const float* q = eval_.layer[i].mu_q.ptr();
        for (std::size_t r = 0; r < rows; ++r)
          std::copy(q + r * S, q + (r + 1) * S, mu.begin() + std::ptrdiff_t((start + r) * U + u0));
      }
    }
    return mu;
  }

  // p(x|z_1) reads only z_1: the first S_1 columns of each code (the rest are ignored), so
  // decode_mean(encode_mean(x)) is a reconstruction.
  std::vector<float> decode_mean(const std::vector<float>& z, std::size_t n) override {
    const std::size_t U = latent_dim(), S1 = m_.shape.latent[0], D = m_.shape.data_dim;
    std::vector<float> out(n * D);
    for (std::size_t start = 0; start < n; start += eval_.max_batch) {
      const std::size_t rows = std::min(eval_.max_batch, n - start);
      float* z1 = eval_.layer[0].z.ptr();
      for (std::size_t r = 0; r < rows; ++r)
        std::copy(z.begin() + std::ptrdiff_t((start + r) * U), z.begin() + std::ptrdiff_t((start + r) * U + S1),
                  z1 + r * S1);
      std::fill(eval_.x.ptr(), eval_.x.ptr() + rows * D, 0.0f);  // decode_z1 also scores x; unused here
      eval_.training = false;
      m_.decode_z1(eval_, rows);
      const float* o = eval_.out.ptr();
      const bool sigmoid = m_.lik.kind == LikelihoodKind::Bernoulli || m_.lik.sigmoid_mean;
      for (std::size_t i = 0; i < rows * D; ++i) out[start * D + i] = sigmoid ? 1.0f / (1.0f + std::exp(-o[i])) : o[i];
    }
    return out;
  }

  // Codes [z_1 | z_2 | ... | z_L] drawn top-down from p(z_L) prod p(z_i | z_{i+1}), with
  // batch norm in evaluation mode (its running statistics).
  std::vector<float> sample_prior(std::size_t n, std::mt19937_64& rng) override {
    const std::size_t U = latent_dim(), L = m_.layers();
    std::vector<float> out(n * U);
    eval_.training = false;
    for (std::size_t start = 0; start < n; start += eval_.max_batch) {
      const std::size_t rows = std::min(eval_.max_batch, n - start);
      fill_noise(eval_, rows, rng);
      m_.forward_prior(eval_, rows);
      for (std::size_t i = 0, u0 = 0; i < L; u0 += m_.shape.latent[i++]) {
        const std::size_t S = m_.shape.latent[i];
        const float* z = eval_.layer[i].z.ptr();
        for (std::size_t r = 0; r < rows; ++r)
          std::copy(z + r * S, z + (r + 1) * S, out.begin() + std::ptrdiff_t((start + r) * U + u0));
      }
    }
    return out;
  }

  void describe(std::map<std::string, double>& metrics) override {
    if (m_.lik.has_shared_param())
      metrics["sigma_learned"] = std::exp(double(softclip(m_.params[m_.lik.shared_offset], m_.lik.min_log_sigma)));
    metrics["stochastic_layers"] = double(m_.layers());
  }

 private:
  // eps of every layer, layer 1 first: the order is part of a run's determinism.
  void fill_noise(LadderVae<float>::Work& w, std::size_t rows, std::mt19937_64& rng) {
    for (std::size_t i = 0; i < m_.layers(); ++i) fill_normal(w.layer[i].eps.ptr(), rows * m_.shape.latent[i], rng);
  }
  static std::vector<double> column_variances(const std::vector<float>& x, std::size_t n, std::size_t cols) {
    std::vector<double> sum(cols, 0.0), sq(cols, 0.0), var(cols, 0.0);
    for (std::size_t r = 0; r < n; ++r)
      for (std::size_t c = 0; c < cols; ++c) {
        const double v = double(x[r * cols + c]);
        sum[c] += v;
        sq[c] += v * v;
      }
    for (std::size_t c = 0; c < cols; ++c) {
      const double mean = sum[c] / double(n);
      var[c] = std::max(0.0, sq[c] / double(n) - mean * mean);
    }
    return var;
  }

  LadderVae<float> m_;
  LadderVae<float>::Work train_, eval_;
};

}  // namespace

std::unique_ptr<Model> make_ladder_vae(const TrainConfig& tc, std::size_t data_dim, std::mt19937_64& init_rng) {
  LadderShape shape;
  shape.data_dim = data_dim;
  shape.latent.assign(tc.layers.begin(), tc.layers.end());
  shape.hidden.assign(tc.det_layers.begin(), tc.det_layers.end());
  shape.depth = std::size_t(tc.det_depth);
  shape.act = parse_nonlinearity(tc.activation);
  shape.batchnorm = tc.batchnorm;
  shape.inference = tc.model == "ladder" ? Inference::Ladder : Inference::BottomUp;
  auto m = std::make_unique<LadderModel>(shape, likelihood_from(tc));
  m->model().initialize(parse_init(tc.init), tc.init_std, init_rng);
  return m;
}

}  // namespace vae
