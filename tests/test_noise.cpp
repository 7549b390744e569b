// fill_normal (prob/noise.hpp), the Box-Muller draws of every model's noise: its moments,
// its distribution function (Kolmogorov-Smirnov against Phi), the independence of the two
// halves of a pair and of neighbours, its tail, both the SIMD blocks and the one-pair-at-a-
// time tail, in float and double. Fixed seeds: each check is deterministic, but its sample
// differs with the SIMD width (the CPU the build targets) and the build's rounding, so every
// bound is set where a correct generator falls outside it with probability ~1e-6: 5
// standard errors for the moments, 2.69 / sqrt(n) for the Kolmogorov-Smirnov statistic (at
// the usual 1% level, 1.63, a correct generator failed on 4 of 200 seeds, as it should).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "prob/noise.hpp"

namespace test_noise {

using namespace vae;

namespace {

// sqrt(-log(alpha / 2) / 2) at alpha = 1e-6: the asymptotic critical value of sqrt(n) D_n.
constexpr double kKs = 2.69;

struct Moments {
  double mean = 0, var = 0, kurtosis = 0, tail3 = 0, max_abs = 0;
};

template <class T>
Moments moments_of(const std::vector<T>& v) {
  Moments m;
  const double n = double(v.size());
  for (T x : v) m.mean += double(x) / n;
  double m2 = 0, m4 = 0;
  for (T x : v) {
    const double d = double(x) - m.mean;
    m2 += d * d / n;
    m4 += d * d * d * d / n;
    m.tail3 += std::abs(double(x)) > 3 ? 1.0 / n : 0.0;
    m.max_abs = std::max(m.max_abs, std::abs(double(x)));
  }
  m.var = m2;
  m.kurtosis = m4 / (m2 * m2);
  return m;
}

// sup_x |F_n(x) - Phi(x)|, the Kolmogorov-Smirnov statistic.
template <class T>
double ks_statistic(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  const double n = double(v.size());
  double d = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double phi = 0.5 * std::erfc(-double(v[i]) / std::sqrt(2.0));
    d = std::max({d, std::abs(double(i + 1) / n - phi), std::abs(phi - double(i) / n)});
  }
  return d;
}

// Pearson correlation of f(v[i]) and f(v[i + lag]) over the pairs that exist.
template <class T, class F>
double lag_correlation(const std::vector<T>& v, std::size_t lag, F f) {
  const std::size_t n = v.size() - lag;
  double ma = 0, mb = 0;
  for (std::size_t i = 0; i < n; ++i) {
    ma += f(double(v[i])) / double(n);
    mb += f(double(v[i + lag])) / double(n);
  }
  double sab = 0, saa = 0, sbb = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double a = f(double(v[i])) - ma, b = f(double(v[i + lag])) - mb;
    sab += a * b;
    saa += a * a;
    sbb += b * b;
  }
  return sab / std::sqrt(saa * sbb);
}

template <class T>
void check_standard_normal(std::size_t n, std::uint64_t seed) {
  std::vector<T> v(n);
  std::mt19937_64 rng(seed);
  fill_normal(v.data(), n, rng);
  const Moments m = moments_of(v);
  const double se = 1.0 / std::sqrt(double(n));
  CHECK(std::abs(m.mean) < 5 * se);
  CHECK(std::abs(m.var - 1) < 5 * std::sqrt(2.0) * se);
  CHECK(std::abs(m.kurtosis - 3) < 5 * std::sqrt(24.0) * se);
  // P(|z| > 3) = 0.0026998; its binomial standard error at n.
  CHECK(std::abs(m.tail3 - 0.0026998) < 5 * std::sqrt(0.0027 / double(n)));
  CHECK(m.max_abs <= 6.77);  // u1 >= 2^-33
  CHECK(ks_statistic(v) < kKs * se);
  // Lag W pairs a cosine with the sine of the same (r, theta); lag 1 neighbours a pair. The
  // two halves of a pair share r, so their squares are where a dependence would show.
  constexpr std::size_t W = xsimd::batch<T>::size;
  const auto same = [](double x) { return x; };
  const auto square = [](double x) { return x * x; };
  for (std::size_t lag : {std::size_t(1), W, 2 * W}) {
    CHECK(std::abs(lag_correlation(v, lag, same)) < 5 * se);
    CHECK(std::abs(lag_correlation(v, lag, square)) < 5 * se);
  }
}

}  // namespace

TEST_CASE("fill_normal: standard normal draws in float (moments, KS, independence, tail)", "[noise]") {
  check_standard_normal<float>(1 << 20, 11);
}

TEST_CASE("fill_normal: standard normal draws in double", "[noise]") {
  check_standard_normal<double>(1 << 18, 12);
}

TEST_CASE("fill_normal: the scalar tail (n not a multiple of the SIMD block) is normal too", "[noise]") {
  // 2W - 1 draws a call: fewer than one SIMD block, so every draw is the scalar tail's.
  constexpr std::size_t W = xsimd::batch<float>::size, n = 2 * W - 1;
  std::vector<float> v;
  std::mt19937_64 rng(13);
  std::vector<float> part(n);
  while (v.size() < (1u << 18)) {
    fill_normal(part.data(), n, rng);
    v.insert(v.end(), part.begin(), part.end());
  }
  const Moments m = moments_of(v);
  const double se = 1.0 / std::sqrt(double(v.size()));
  CHECK(std::abs(m.mean) < 5 * se);
  CHECK(std::abs(m.var - 1) < 5 * std::sqrt(2.0) * se);
  CHECK(ks_statistic(v) < kKs * se);
}

TEST_CASE("fill_normal: the same generator state gives the same draws, and advances it", "[noise]") {
  std::vector<float> a(1001), b(1001), c(1001);
  std::mt19937_64 r1(5), r2(5);
  fill_normal(a.data(), a.size(), r1);
  fill_normal(b.data(), b.size(), r2);
  CHECK(a == b);
  fill_normal(c.data(), c.size(), r1);
  CHECK(a != c);
  CHECK(std::all_of(a.begin(), a.end(), [](float x) { return std::isfinite(x); }));
}

}  // namespace test_noise
