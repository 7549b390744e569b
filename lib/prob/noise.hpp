// The noise a forward pass takes as an input, drawn by the caller from the run's seeded
// generator (so forward passes are pure functions and gradient checks exact).
#pragma once

#include <cstddef>
#include <random>

namespace vae {

template <class T>
void fill_normal(T* eps, std::size_t n, std::mt19937_64& rng) {
  std::normal_distribution<T> normal(T(0), T(1));  // fresh each call: no hidden state to checkpoint
  for (std::size_t i = 0; i < n; ++i) eps[i] = normal(rng);
}

}  // namespace vae
