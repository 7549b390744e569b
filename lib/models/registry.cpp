#include "models/registry.hpp"

#include <algorithm>
#include <atomic>

namespace vae {

// The library's model families, each defined in its own files. One line each: registering
// a family is adding its line here.
const ModelFamily& vae_family();     // vae: MLP or conv, Gaussian or IAF posterior (mlp_vae.cpp)
const ModelFamily& ladder_family();  // ladder, hierarchical (ladder.cpp)
const ModelFamily& nvae_family();    // nvae: NVAE-small (nvae.cpp)
const ModelFamily& vqvae_family();   // vqvae: VQ-VAE with its PixelCNN prior (vqvae.cpp)

namespace {

std::vector<const ModelFamily*>& registry() {
  static std::vector<const ModelFamily*> families = {&vae_family(), &ladder_family(), &nvae_family(),
                                                     &vqvae_family()};
  return families;
}

std::atomic<int> g_version{0};

}  // namespace

const std::vector<const ModelFamily*>& model_families() { return registry(); }

const ModelFamily* find_family(const std::string& name) {
  for (const ModelFamily* f : registry())
    for (const auto& [n, help] : f->names)
      if (n == name) return f;
  return nullptr;
}

ScopedFamily::ScopedFamily(const ModelFamily& family) : family_(&family) {
  registry().push_back(family_);
  ++g_version;
}

ScopedFamily::~ScopedFamily() {
  auto& r = registry();
  r.erase(std::remove(r.begin(), r.end(), family_), r.end());
  ++g_version;
}

int registry_version() { return g_version.load(); }

std::unique_ptr<Model> make_model(const TrainConfig& tc, std::size_t rows, std::size_t cols,
                                  std::mt19937_64& init_rng) {
  const ModelFamily* f = find_family(tc.model);
  if (!f || !f->make) throw ConfigError("key 'model': unknown model '" + tc.model + "'");
  return f->make(tc, rows, cols, init_rng);
}

}  // namespace vae
