// What the parts of the VAE family (vae/encoder.hpp, vae/posterior.hpp, vae/decoder.hpp)
// share: their buffers live in the model's Work behind this base, each part knowing its own
// type, so that Vae<T> holds one part of each kind without naming which (models/vae.hpp).
#pragma once

#include <cstddef>
#include <memory>
#include <random>
#include <vector>

#include "nn/params.hpp"

namespace vae {

struct PartWork {
  virtual ~PartWork() = default;
};

// A part's own Work type, from the PartWork its make_work() made.
template <class W>
W& work_of(PartWork& w) {
  return static_cast<W&>(w);
}

// What every part declares about its parameters. Initialisation has two passes because the
// order of the random draws predates the parts and is part of a run's determinism (the
// same seed gives the same initial parameters): first every Linear layer in layout order
// (encoder, decoder, posterior), then the convolutions and batch norms (encoder, decoder),
// then the flow.
template <class T>
struct VaePart {
  virtual ~VaePart() = default;
  virtual std::unique_ptr<PartWork> make_work(std::size_t max_rows) const = 0;
  virtual void add_groups(std::vector<ParamRange>& groups) const = 0;  // in layout order
  virtual void init_linear_layers(T* P, Init init, double std_dev, std::mt19937_64& rng) const = 0;
  virtual void init_other_layers(T* P, T* S, Init init, double std_dev, std::mt19937_64& rng) const = 0;
  // backward() reports every parameter range of the part to its GradSink once final.
  virtual bool streams_grads() const = 0;
};

// The group names of a Linear layer "name": name.W, name.b.
inline void add_linear_groups(std::vector<ParamRange>& g, const std::string& name, const Linear& l) {
  g.push_back({name + ".W", l.w, l.in * l.out});
  g.push_back({name + ".b", l.b, l.out});
}

}  // namespace vae
