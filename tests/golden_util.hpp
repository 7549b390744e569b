// Reading the PyTorch golden values in tests/golden/*.json (written by the
// make_golden*.py scripts there) and comparing our numbers with them.
#pragma once

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "test_paths.hpp"

namespace vae::testing {

using json = nlohmann::json;

// tests/golden/NAME, parsed; fails the test when the file is missing.
inline json load_golden(const std::string& name) {
  const std::string path = std::string(test_dir()) + "/golden/" + name;
  std::ifstream in(path);
  INFO("golden file " << path);
  REQUIRE(in.good());
  return json::parse(in);
}

// Copies the numbers of `values` into buf[off ...].
template <class Vec>
void put(Vec& buf, std::size_t off, const json& values) {
  for (std::size_t i = 0; i < values.size(); ++i) buf[off + i] = values[i].get<double>();
}

// got[i] against want[i], each within tol absolutely or relatively.
inline void expect_near(const double* got, const json& want, double tol, const std::string& what) {
  INFO(what);
  REQUIRE(want.size() > 0);  // an empty golden array would compare nothing
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO("index " << i);
    CHECK(got[i] == Approx(want[i].get<double>()).margin(tol).epsilon(tol));
  }
}

}  // namespace vae::testing
