// Finite-difference gradient checking in double, the same way for every layer and model.
//
// The numeric gradient is the 4th-order central difference
//   (-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / (12 h),
// and the error of each parameter group (a layer's W, its b, a shared sigma) is the
// norm-wise relative error ||a - n|| / (||a|| + ||n||). Per group, so that a wrong
// gradient in a small group cannot hide behind a large one; norm-wise, so that
// coordinates whose gradient is ~1e-7 (rounding noise of f) do not dominate.
#pragma once

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

template <class Vec>
std::vector<double> numeric_gradient(Vec& x, const std::function<double()>& f, double h = 1e-4) {
  std::vector<double> g(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    auto at = [&](double d) {
      x[i] = x0 + d;
      return f();
    };
    g[i] = (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h);
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
