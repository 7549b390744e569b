#include "draw/figures.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>

namespace vae::draw {

double normal_quantile(double p) {
  if (!(p > 0.0 && p < 1.0)) throw std::invalid_argument("normal_quantile: p must be in (0, 1)");
  // The upper half by symmetry: 1 - p is exact there, and the refinement below then works
  // on the small tail probability instead of a difference of numbers near 1.
  if (p > 0.5) return -normal_quantile(1.0 - p);
  // P. J. Acklam's approximation (relative error < 1.15e-9), central and tail regions.
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double lo = 0.02425;
  double x;
  if (p < lo) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - lo) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log1p(-p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  // One Halley step on Phi(x) - p, with Phi from erfc (accurate in both tails).
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

std::vector<float> intensities(const data::Images& images, std::size_t i) {
  if (i >= images.n)
    throw std::out_of_range("image " + std::to_string(i) + " of " + images.source + ": it has " +
                            std::to_string(images.n) + " images");
  const std::size_t D = images.dim();
  std::vector<float> out(D);
  for (std::size_t j = 0; j < D; ++j) out[j] = float(images.pixels[i * D + j]) * images.scale;
  return out;
}

data::Images subset(const data::Images& images, const std::vector<std::size_t>& index) {
  data::Images s;
  s.source = images.source;
  s.rows = images.rows;
  s.cols = images.cols;
  s.scale = images.scale;
  s.n = index.size();
  const std::size_t D = images.dim();
  s.pixels.resize(s.n * D);
  for (std::size_t k = 0; k < index.size(); ++k) {
    if (index[k] >= images.n)
      throw std::out_of_range("image " + std::to_string(index[k]) + " of " + images.source + ": it has " +
                              std::to_string(images.n) + " images");
    std::copy(images.pixels.begin() + std::ptrdiff_t(index[k] * D),
              images.pixels.begin() + std::ptrdiff_t((index[k] + 1) * D),
              s.pixels.begin() + std::ptrdiff_t(k * D));
    if (!images.labels.empty()) s.labels.push_back(images.labels[index[k]]);
  }
  return s;
}

namespace {
void append(std::vector<float>& cells, const std::vector<float>& more) {
  cells.insert(cells.end(), more.begin(), more.end());
}
}  // namespace

Figure prior_samples(Model& m, std::size_t side, uint64_t seed) {
  if (side == 0) throw std::invalid_argument("prior_samples: an empty grid");
  std::mt19937_64 rng(seed);
  const std::size_t n = side * side;
  return {m.decode_mean(m.sample_prior(n, rng), n), n, side};
}

Figure reconstructions(Model& m, const data::Images& test, std::size_t first, std::size_t per_row,
                       std::size_t row_pairs) {
  if (per_row == 0 || row_pairs == 0) throw std::invalid_argument("reconstructions: an empty grid");
  const std::size_t n = per_row * row_pairs, D = test.dim();
  std::vector<std::size_t> idx(n);
  for (std::size_t k = 0; k < n; ++k) idx[k] = first + k;
  const data::Images x = subset(test, idx);
  const std::vector<float> rec = m.decode_mean(m.encode_mean(x, 0), n);
  Figure f;
  f.cols = per_row;
  for (std::size_t r = 0; r < row_pairs; ++r) {
    for (std::size_t k = 0; k < per_row; ++k) append(f.cells, intensities(x, r * per_row + k));
    f.cells.insert(f.cells.end(), rec.begin() + std::ptrdiff_t(r * per_row * D),
                   rec.begin() + std::ptrdiff_t((r + 1) * per_row * D));
  }
  f.n = 2 * n;
  return f;
}

Figure interpolations(Model& m, const data::Images& test,
                      const std::vector<std::pair<std::size_t, std::size_t>>& pairs, std::size_t steps) {
  if (pairs.empty() || steps < 2)
    throw std::invalid_argument("interpolations: need a pair and at least 2 steps");
  std::vector<std::size_t> idx;
  for (const auto& [a, b] : pairs) idx.push_back(a), idx.push_back(b);
  const data::Images x = subset(test, idx);
  const std::vector<float> mu = m.encode_mean(x, 0);
  const std::size_t L = m.latent_dim();
  std::vector<float> z(pairs.size() * steps * L);
  for (std::size_t p = 0; p < pairs.size(); ++p)
    for (std::size_t s = 0; s < steps; ++s) {
      const float t = float(s) / float(steps - 1);
      for (std::size_t u = 0; u < L; ++u)
        z[(p * steps + s) * L + u] = (1 - t) * mu[(2 * p) * L + u] + t * mu[(2 * p + 1) * L + u];
    }
  const std::vector<float> dec = m.decode_mean(z, pairs.size() * steps);
  const std::size_t D = test.dim();
  Figure f;
  f.cols = steps + 2;
  for (std::size_t p = 0; p < pairs.size(); ++p) {
    append(f.cells, intensities(x, 2 * p));
    f.cells.insert(f.cells.end(), dec.begin() + std::ptrdiff_t(p * steps * D),
                   dec.begin() + std::ptrdiff_t((p + 1) * steps * D));
    append(f.cells, intensities(x, 2 * p + 1));
  }
  f.n = pairs.size() * f.cols;
  return f;
}

Figure manifold(Model& m, std::size_t side) {
  if (m.latent_dim() != 2)
    throw std::invalid_argument("the latent manifold needs a 2-D latent space; this model's has " +
                                std::to_string(m.latent_dim()) + " dimensions");
  if (side == 0) throw std::invalid_argument("manifold: an empty grid");
  std::vector<float> z(side * side * 2);
  for (std::size_t r = 0; r < side; ++r)
    for (std::size_t c = 0; c < side; ++c) {
      z[(r * side + c) * 2 + 0] = float(normal_quantile((double(c) + 0.5) / double(side)));
      z[(r * side + c) * 2 + 1] = float(normal_quantile((double(side - 1 - r) + 0.5) / double(side)));
    }
  return {m.decode_mean(z, side * side), side * side, side};
}

Figure traversals(Model& m, const data::Images& test, std::size_t index, std::size_t steps, double limit,
                  const std::vector<std::size_t>& units) {
  if (steps < 2) throw std::invalid_argument("traversals: need at least 2 steps");
  const std::vector<float> base = m.encode_mean(subset(test, {index}), 0);
  const std::size_t L = m.latent_dim();
  std::vector<std::size_t> rows = units;
  if (rows.empty())
    for (std::size_t u = 0; u < L; ++u) rows.push_back(u);
  std::vector<float> z;
  z.reserve(rows.size() * steps * L);
  for (std::size_t u : rows) {
    if (u >= L)
      throw std::out_of_range("latent unit " + std::to_string(u) + ": the model has " + std::to_string(L));
    for (std::size_t s = 0; s < steps; ++s) {
      const std::size_t row = z.size();
      z.insert(z.end(), base.begin(), base.end());
      z[row + u] = float(-limit + 2 * limit * double(s) / double(steps - 1));
    }
  }
  return {m.decode_mean(z, rows.size() * steps), rows.size() * steps, steps};
}

std::vector<std::size_t> units_by_kl(const std::vector<double>& kl_per_dim) {
  std::vector<std::size_t> u(kl_per_dim.size());
  for (std::size_t i = 0; i < u.size(); ++i) u[i] = i;
  std::stable_sort(u.begin(), u.end(),
                   [&](std::size_t a, std::size_t b) { return kl_per_dim[a] > kl_per_dim[b]; });
  return u;
}

}  // namespace vae::draw
