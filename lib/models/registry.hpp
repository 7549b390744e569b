// The model registry: every model family declares, in its own files, its --model name(s),
// the settings it owns (their specs: key, type, default, range, help, identity), the
// relations it checks between settings, and its factory. The command line, TOML run files,
// sweep files and the run identity read the settings through models/settings.hpp, which
// puts the core settings and every registered family's together; make_model builds the
// family --model names. A library family is registered by one line in models/families.def
// (a family defined in a test, by a ScopedFamily).
#pragma once

#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "models/model.hpp"

namespace vae {

struct ModelFamily {
  using Names = std::vector<std::pair<std::string, std::string>>;
  using Check = void (*)(const ConfigMap& config);
  using Canonicalize = void (*)(ConfigMap& config, const ConfigMap& defaults);
  using Summary = std::string (*)(const ConfigMap& config);
  using Make = std::unique_ptr<Model> (*)(const TrainConfig& tc, std::size_t rows, std::size_t cols,
                                          std::mt19937_64& init_rng);

  // The values of --model it answers, each with its part of --model's help.
  Names names;
  // The settings it owns; `vae train --help` lists them after --model, in this order.
  std::vector<OptionSpec> options;
  // The model for images of rows x cols, initialised from init_rng (validated settings).
  Make make = nullptr;
  // Relations between settings when --model is one of names; throws ConfigError naming the key.
  Check validate = nullptr;
  // The model's part of `vae train`'s summary line ("latent 20").
  Summary summary = nullptr;
  // When another family's model is chosen: its settings that must then keep their defaults
  // (rather than be ignored without a word); throws ConfigError naming the key.
  Check validate_other = nullptr;
  // Resets its settings that mean nothing in this configuration to their defaults, so that
  // two spellings of one run get one run id (store/run_identity.hpp); called whatever the model.
  Canonicalize canonicalize = nullptr;

  ModelFamily() = default;
  // A family's declaration in one statement; the hooks it does not need are left out.
  ModelFamily(Names names, std::vector<OptionSpec> options, Make make, Check validate = nullptr,
              Summary summary = nullptr, Check validate_other = nullptr, Canonicalize canonicalize = nullptr)
      : names(std::move(names)),
        options(std::move(options)),
        make(make),
        validate(validate),
        summary(summary),
        validate_other(validate_other),
        canonicalize(canonicalize) {}
};

// The registered families: the library's, in registration order, then any a test added.
const std::vector<const ModelFamily*>& model_families();

// The family --model `name` selects; nullptr when none does.
const ModelFamily* find_family(const std::string& name);

// Registers a family (defined in a test) for the object's lifetime; its settings join the
// schema (models/settings.hpp) while it is registered.
class ScopedFamily {
 public:
  explicit ScopedFamily(const ModelFamily& family);
  ~ScopedFamily();
  ScopedFamily(const ScopedFamily&) = delete;
  ScopedFamily& operator=(const ScopedFamily&) = delete;

 private:
  const ModelFamily* family_;
};

// Changes each time the registered families change (models/settings.cpp rebuilds its schema).
int registry_version();

}  // namespace vae
