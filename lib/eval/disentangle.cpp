// Disentanglement metrics (see disentangle.hpp for the papers and protocol).
#include "eval/disentangle.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include "data/dsprites.hpp"
#include "models/model.hpp"

namespace vae::eval {
namespace {

// Independent streams per metric, each a function of the seed alone.
std::mt19937_64 stream(uint64_t seed, uint64_t purpose) {
  std::seed_seq seq{seed, purpose};
  return std::mt19937_64(seq);
}
enum : uint64_t { kBetaVaeStream = 1, kFactorVaeStream = 2, kMigStream = 3 };

uint32_t draw(std::mt19937_64& rng, std::size_t n) { return uint32_t(rng() % n); }

// n random factor vectors, uniform over the grid.
std::vector<uint32_t> sample_factors(const std::vector<std::size_t>& sizes, std::size_t n,
                                     std::mt19937_64& rng) {
  std::vector<uint32_t> c(n * sizes.size());
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < sizes.size(); ++k) c[i * sizes.size() + k] = draw(rng, sizes[k]);
  return c;
}

std::vector<double> checked(const Representation& rep, const std::vector<uint32_t>& classes, std::size_t n,
                            std::size_t& L) {
  std::vector<double> z = rep(classes, n);
  if (n == 0 || z.size() % n != 0 || z.empty())
    throw std::runtime_error("disentanglement metrics: the representation returned " +
                             std::to_string(z.size()) + " values for " + std::to_string(n) + " examples");
  if (L == 0) L = z.size() / n;
  if (z.size() != n * L) throw std::runtime_error("disentanglement metrics: representation size changed");
  for (double v : z)
    if (!std::isfinite(v))
      throw std::runtime_error("disentanglement metrics: the representation is not finite");
  return z;
}

// ---- beta-VAE metric (Higgins et al. 2017) ------------------------------------

// One point: factor k drawn uniformly, `batch` pairs agreeing on factor k only
// (factor k copied from the first to the second), mean |z1 - z2|.
void beta_vae_point(const std::vector<std::size_t>& sizes, const Representation& rep, std::size_t batch,
                    std::mt19937_64& rng, std::size_t& L, std::vector<double>& feature, uint32_t& label) {
  const std::size_t K = sizes.size();
  label = draw(rng, K);
  std::vector<uint32_t> a = sample_factors(sizes, batch, rng), b = sample_factors(sizes, batch, rng);
  for (std::size_t i = 0; i < batch; ++i) b[i * K + label] = a[i * K + label];
  const std::vector<double> za = checked(rep, a, batch, L), zb = checked(rep, b, batch, L);
  feature.assign(L, 0.0);
  for (std::size_t i = 0; i < batch; ++i)
    for (std::size_t j = 0; j < L; ++j) feature[j] += std::fabs(za[i * L + j] - zb[i * L + j]);
  for (double& f : feature) f /= double(batch);
}

// Multinomial logistic regression: mean cross-entropy + (1 / 2N) ||W||^2 (scikit-
// learn's C = 1 objective divided by N), full-batch gradient descent with step
// 1 / (a bound on the curvature). X is N x d (standardised), classes 0..C-1.
struct LogReg {
  std::size_t d = 0, C = 0;
  std::vector<double> W, b;  // C x d, C
  std::size_t predict(const double* x) const {
    std::size_t best = 0;
    double best_v = -1e300;
    for (std::size_t c = 0; c < C; ++c) {
      double v = b[c];
      for (std::size_t j = 0; j < d; ++j) v += W[c * d + j] * x[j];
      if (v > best_v) best_v = v, best = c;
    }
    return best;
  }
};

LogReg fit_logreg(const std::vector<double>& X, const std::vector<uint32_t>& y, std::size_t d, std::size_t C,
                  std::size_t steps) {
  const std::size_t N = y.size();
  LogReg m;
  m.d = d;
  m.C = C;
  m.W.assign(C * d, 0.0);
  m.b.assign(C, 0.0);
  const double lambda = 1.0 / double(N);
  // Softmax cross-entropy has curvature at most 1/2 per unit of ||x||^2 along the
  // data's largest direction: the largest eigenvalue of X^T X / N (power iteration,
  // bias as a constant feature) bounds it.
  std::vector<double> G((d + 1) * (d + 1), 0.0);
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t p = 0; p <= d; ++p)
      for (std::size_t q = 0; q <= d; ++q)
        G[p * (d + 1) + q] += (p < d ? X[i * d + p] : 1.0) * (q < d ? X[i * d + q] : 1.0) / double(N);
  std::vector<double> v(d + 1, 1.0), w(d + 1);
  double eig = 1.0;
  for (int it = 0; it < 100; ++it) {
    double norm = 0;
    for (std::size_t p = 0; p <= d; ++p) {
      w[p] = 0;
      for (std::size_t q = 0; q <= d; ++q) w[p] += G[p * (d + 1) + q] * v[q];
      norm += w[p] * w[p];
    }
    norm = std::sqrt(norm);
    if (norm == 0) break;
    eig = norm;
    for (std::size_t p = 0; p <= d; ++p) v[p] = w[p] / norm;
  }
  const double step = 1.0 / (0.5 * eig + lambda);
  std::vector<double> gW(C * d), gb(C), p(C);
  for (std::size_t s = 0; s < steps; ++s) {
    std::fill(gW.begin(), gW.end(), 0.0);
    std::fill(gb.begin(), gb.end(), 0.0);
    for (std::size_t i = 0; i < N; ++i) {
      const double* x = &X[i * d];
      double mx = -1e300;
      for (std::size_t c = 0; c < C; ++c) {
        double z = m.b[c];
        for (std::size_t j = 0; j < d; ++j) z += m.W[c * d + j] * x[j];
        p[c] = z;
        mx = std::max(mx, z);
      }
      double sum = 0;
      for (std::size_t c = 0; c < C; ++c) sum += (p[c] = std::exp(p[c] - mx));
      for (std::size_t c = 0; c < C; ++c) {
        const double g = (p[c] / sum - (c == y[i] ? 1.0 : 0.0)) / double(N);
        gb[c] += g;
        for (std::size_t j = 0; j < d; ++j) gW[c * d + j] += g * x[j];
      }
    }
    for (std::size_t k = 0; k < C * d; ++k) m.W[k] -= step * (gW[k] + lambda * m.W[k]);
    for (std::size_t c = 0; c < C; ++c) m.b[c] -= step * gb[c];
  }
  return m;
}

// ---- FactorVAE metric (Kim & Mnih 2018) ---------------------------------------

// Unbiased variance of each column of z (n x L).
std::vector<double> column_variances(const std::vector<double>& z, std::size_t n, std::size_t L) {
  std::vector<double> mean(L, 0.0), var(L, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < L; ++j) mean[j] += z[i * L + j];
  for (double& m : mean) m /= double(n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < L; ++j) var[j] += (z[i * L + j] - mean[j]) * (z[i * L + j] - mean[j]);
  for (double& v : var) v /= double(n > 1 ? n - 1 : 1);
  return var;
}

// One vote: (dimension of least normalised variance among the active ones, factor).
std::pair<std::size_t, uint32_t> factor_vae_vote(const std::vector<std::size_t>& sizes,
                                                 const Representation& rep, std::size_t batch,
                                                 const std::vector<double>& global_var, std::mt19937_64& rng,
                                                 std::size_t& L) {
  const std::size_t K = sizes.size();
  const uint32_t k = draw(rng, K);
  std::vector<uint32_t> c = sample_factors(sizes, batch, rng);
  for (std::size_t i = 1; i < batch; ++i) c[i * K + k] = c[k];  // all share example 0's value
  const std::vector<double> z = checked(rep, c, batch, L);
  const std::vector<double> local = column_variances(z, batch, L);
  std::size_t best = 0;
  double best_v = 1e300;
  for (std::size_t j = 0; j < L; ++j) {
    if (!(global_var[j] > 0)) continue;
    const double v = local[j] / global_var[j];
    if (v < best_v) best_v = v, best = j;
  }
  return {best, k};
}

}  // namespace

BetaVaeScore beta_vae_metric(const std::vector<std::size_t>& sizes, const Representation& rep,
                             const DisentangleOptions& o) {
  auto rng = stream(o.seed, kBetaVaeStream);
  std::size_t L = 0;
  const std::size_t K = sizes.size();
  auto make = [&](std::size_t n, std::vector<double>& X, std::vector<uint32_t>& y) {
    std::vector<double> f;
    uint32_t label;
    for (std::size_t i = 0; i < n; ++i) {
      beta_vae_point(sizes, rep, o.batch, rng, L, f, label);
      X.insert(X.end(), f.begin(), f.end());
      y.push_back(label);
    }
  };
  std::vector<double> Xtr, Xev;
  std::vector<uint32_t> ytr, yev;
  make(o.num_train, Xtr, ytr);
  make(o.num_eval, Xev, yev);
  // Standardise with the training points' statistics (see the header).
  std::vector<double> mean(L, 0.0), sd(L, 0.0);
  for (std::size_t i = 0; i < o.num_train; ++i)
    for (std::size_t j = 0; j < L; ++j) mean[j] += Xtr[i * L + j] / double(o.num_train);
  for (std::size_t i = 0; i < o.num_train; ++i)
    for (std::size_t j = 0; j < L; ++j)
      sd[j] += (Xtr[i * L + j] - mean[j]) * (Xtr[i * L + j] - mean[j]) / double(o.num_train);
  for (double& s : sd) s = s > 0 ? std::sqrt(s) : 1.0;
  for (auto* X : {&Xtr, &Xev})
    for (std::size_t i = 0; i < X->size(); ++i) (*X)[i] = ((*X)[i] - mean[i % L]) / sd[i % L];
  const LogReg m = fit_logreg(Xtr, ytr, L, K, o.logreg_steps);
  auto accuracy = [&](const std::vector<double>& X, const std::vector<uint32_t>& y) {
    std::size_t right = 0;
    for (std::size_t i = 0; i < y.size(); ++i) right += m.predict(&X[i * L]) == y[i];
    return y.empty() ? 0.0 : double(right) / double(y.size());
  };
  return {accuracy(Xtr, ytr), accuracy(Xev, yev)};
}

FactorVaeScore factor_vae_metric(const std::vector<std::size_t>& sizes, const Representation& rep,
                                 const DisentangleOptions& o) {
  auto rng = stream(o.seed, kFactorVaeStream);
  std::size_t L = 0;
  const std::size_t K = sizes.size();
  const std::vector<uint32_t> c = sample_factors(sizes, o.num_variance, rng);
  const std::vector<double> zv = checked(rep, c, o.num_variance, L);  // sets L first
  const std::vector<double> global_var = column_variances(zv, o.num_variance, L);
  FactorVaeScore s;
  for (double v : global_var) s.active_dims += v > 0;
  if (s.active_dims == 0) return s;  // a constant representation says nothing
  auto votes = [&](std::size_t n) {
    std::vector<std::size_t> v(L * K, 0);
    for (std::size_t i = 0; i < n; ++i) {
      auto [j, k] = factor_vae_vote(sizes, rep, o.batch, global_var, rng, L);
      ++v[j * K + k];
    }
    return v;
  };
  const std::vector<std::size_t> train = votes(o.num_train), test = votes(o.num_eval);
  std::size_t right_train = 0, right_eval = 0;
  for (std::size_t j = 0; j < L; ++j) {
    std::size_t best = 0;  // the factor dimension j votes for most in training
    for (std::size_t k = 1; k < K; ++k)
      if (train[j * K + k] > train[j * K + best]) best = k;
    right_train += train[j * K + best];
    right_eval += test[j * K + best];
  }
  s.train_accuracy = o.num_train ? double(right_train) / double(o.num_train) : 0.0;
  s.eval_accuracy = o.num_eval ? double(right_eval) / double(o.num_eval) : 0.0;
  return s;
}

double discrete_entropy(const std::vector<uint32_t>& a, std::size_t na) {
  std::vector<double> count(na, 0.0);
  for (uint32_t x : a) count[x] += 1;
  double h = 0;
  for (double c : count)
    if (c > 0) h -= c / double(a.size()) * std::log(c / double(a.size()));
  return h;
}

double discrete_mutual_info(const std::vector<uint32_t>& a, std::size_t na, const std::vector<uint32_t>& b,
                            std::size_t nb) {
  const double n = double(a.size());
  std::vector<double> joint(na * nb, 0.0), pa(na, 0.0), pb(nb, 0.0);
  for (std::size_t i = 0; i < a.size(); ++i) {
    joint[a[i] * nb + b[i]] += 1;
    pa[a[i]] += 1;
    pb[b[i]] += 1;
  }
  double mi = 0;
  for (std::size_t x = 0; x < na; ++x)
    for (std::size_t y = 0; y < nb; ++y) {
      const double j = joint[x * nb + y];
      if (j > 0) mi += j / n * std::log(j * n / (pa[x] * pb[y]));
    }
  return std::max(0.0, mi);
}

MigScore mig_metric(const std::vector<std::size_t>& sizes, const Representation& rep,
                    const DisentangleOptions& o) {
  auto rng = stream(o.seed, kMigStream);
  std::size_t L = 0;
  const std::size_t K = sizes.size(), N = o.num_train;
  const std::vector<uint32_t> c = sample_factors(sizes, N, rng);
  const std::vector<double> z = checked(rep, c, N, L);
  // Equal-width bins between each dimension's minimum and maximum (np.histogram).
  std::vector<std::vector<uint32_t>> bins(L, std::vector<uint32_t>(N, 0));
  for (std::size_t j = 0; j < L; ++j) {
    double lo = z[j], hi = z[j];
    for (std::size_t i = 0; i < N; ++i) lo = std::min(lo, z[i * L + j]), hi = std::max(hi, z[i * L + j]);
    if (!(hi > lo)) continue;  // constant: one bin, no information
    for (std::size_t i = 0; i < N; ++i) {
      const double t = (z[i * L + j] - lo) / (hi - lo) * double(o.mig_bins);
      bins[j][i] = uint32_t(std::min<double>(std::floor(t), double(o.mig_bins - 1)));
    }
  }
  MigScore s;
  std::vector<uint32_t> v(N);
  for (std::size_t k = 0; k < K; ++k) {
    for (std::size_t i = 0; i < N; ++i) v[i] = c[i * K + k];
    const double h = discrete_entropy(v, sizes[k]);
    double m1 = 0, m2 = 0;  // largest and second largest I(z_j; v_k)
    for (std::size_t j = 0; j < L; ++j) {
      const double mi = discrete_mutual_info(bins[j], o.mig_bins, v, sizes[k]);
      if (mi > m1) m2 = m1, m1 = mi;
      else if (mi > m2) m2 = mi;
    }
    s.per_factor.push_back(h > 0 ? (m1 - m2) / h : 0.0);
  }
  for (double g : s.per_factor) s.mig += g / double(K);
  return s;
}

std::map<std::string, double> all_metrics(const std::vector<std::size_t>& sizes,
                                          const std::vector<std::string>& names, const Representation& rep,
                                          const DisentangleOptions& o) {
  if (names.size() != sizes.size()) throw std::invalid_argument("all_metrics: one name per factor");
  std::map<std::string, double> m;
  const BetaVaeScore b = beta_vae_metric(sizes, rep, o);
  m["beta_vae_metric"] = b.eval_accuracy;
  m["beta_vae_train"] = b.train_accuracy;
  const FactorVaeScore f = factor_vae_metric(sizes, rep, o);
  m["factor_vae_metric"] = f.eval_accuracy;
  m["factor_vae_train"] = f.train_accuracy;
  m["factor_vae_active"] = double(f.active_dims);
  const MigScore g = mig_metric(sizes, rep, o);
  m["mig"] = g.mig;
  for (std::size_t k = 0; k < names.size(); ++k) m["mig_" + names[k]] = g.per_factor[k];
  return m;
}

Representation dsprites_encoder(Model& model) {
  namespace ds = data::dsprites;
  return [&model](const std::vector<uint32_t>& classes, std::size_t n) {
    data::Images im;
    im.n = n;
    im.rows = im.cols = ds::kImageSide;
    im.scale = 1.0f;
    im.pixels.resize(n * ds::kImageDim);
    for (std::size_t i = 0; i < n; ++i) {
      ds::Classes c;
      for (std::size_t k = 0; k < ds::kNumFactors; ++k) c[k] = classes[i * ds::kNumFactors + k];
      ds::render(c, im.pixels.data() + i * ds::kImageDim);
    }
    const std::vector<float> mu = model.encode_mean(im, n);
    return std::vector<double>(mu.begin(), mu.end());
  };
}

std::map<std::string, double> dsprites_metrics(Model& model, const DisentangleOptions& o) {
  namespace ds = data::dsprites;
  const std::vector<std::size_t> sizes(ds::kFactorSizes.begin(), ds::kFactorSizes.end());
  const std::vector<std::string> names(ds::kFactorNames.begin(), ds::kFactorNames.end());
  std::map<std::string, double> m = all_metrics(sizes, names, dsprites_encoder(model), o);
  // The protocol beside the scores, so a recomputation with other constants says so.
  m["disent_batch"] = double(o.batch);
  m["disent_train"] = double(o.num_train);
  m["disent_eval"] = double(o.num_eval);
  return m;
}

}  // namespace vae::eval
