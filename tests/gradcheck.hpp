// Finite-difference gradient checking in double, the same way for every layer and model.
//
// The numeric gradient is the 4th-order central difference
//   (-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / (12 h),
// and the error of each parameter group (a layer's W, its b, a shared sigma) is the
// norm-wise relative error ||a - n|| / (||a|| + ||n||). Per group, so that a wrong
// gradient in a small group cannot hide behind a large one; norm-wise, so that
// coordinates whose gradient is ~1e-7 (rounding noise of f) do not dominate.
#pragma once

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace vae::test {

struct Group {
  std::string name;
  std::size_t offset, size;
};

// A kink (a ReLU's zero, a max) inside a coordinate's stencil [x - 2h, x + 2h] makes its
// numeric derivative a blend of the two one-sided ones. Such a stencil shows in the 4th
// difference f(x+2h) - 4 f(x+h) + 6 f(x) - 4 f(x-h) + f(x-2h), which is h^4 f'''' where f is
// smooth and ~|jump| h across a kink. Measured on NVAE's contract case (|f| = 13, h = 3e-4):
// at most 8.5e-12 over 1933 smooth coordinates, 1.8e-8 where an SE block's ReLU crossed its
// zero. Above kKinkFourthDifference |f| the coordinate is redone on a 4x narrower stencil
// (narrower still would let rounding, ~eps |f| / h, reach the 1e-6 tolerances); a kink
// still inside it leaves the estimate wrong, and the check fails.
constexpr double kKinkFourthDifference = 1e-10;

template <class Vec>
std::vector<double> numeric_gradient(Vec& x, const std::function<double()>& f, double h = 1e-4) {
  std::vector<double> g(x.size());
  const double f0 = f(), kink = kKinkFourthDifference * std::max(1.0, std::abs(f0));
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    auto at = [&](double d) {
      x[i] = x0 + d;
      return f();
    };
    for (double step : {h, h / 4}) {
      const double p2 = at(2 * step), p1 = at(step), m1 = at(-step), m2 = at(-2 * step);
      g[i] = (-p2 + 8 * p1 - 8 * m1 + m2) / (12 * step);
      if (std::abs(p2 - 4 * p1 + 6 * f0 - 4 * m1 + m2) <= kink) break;
    }
    x[i] = x0;
  }
  return g;
}

// Worst group's relative error; names it in the test log.
inline double max_group_error(const std::vector<double>& analytic, const std::vector<double>& numeric,
                              const std::vector<Group>& groups) {
  double worst = 0;
  std::string worst_name;
  for (const auto& g : groups) {
    double diff = 0, na = 0, nn = 0;
    for (std::size_t i = g.offset; i < g.offset + g.size; ++i) {
      diff += (analytic[i] - numeric[i]) * (analytic[i] - numeric[i]);
      na += analytic[i] * analytic[i];
      nn += numeric[i] * numeric[i];
    }
    // The numeric gradient's own noise is ~1e-11 (rounding of f / 12h), so a group with
    // (almost) no gradient, such as a dead ReLU layer, is held to an absolute 1e-10.
    const double denom = std::max(std::sqrt(na) + std::sqrt(nn), 1e-4);
    const double err = std::sqrt(diff) / denom;
    if (err >= worst) {
      worst = err;
      worst_name = g.name;
    }
  }
  UNSCOPED_INFO("worst group " << worst_name << ": relative error " << worst);
  return worst;
}

template <class Vec>
double max_rel_error(Vec& x, const std::vector<double>& analytic, const std::function<double()>& f,
                     std::vector<Group> groups = {}, double h = 1e-4) {
  if (groups.empty()) groups.push_back({"all", 0, x.size()});
  return max_group_error(analytic, numeric_gradient(x, f, h), groups);
}

}  // namespace vae::test
