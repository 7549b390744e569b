#include "models/registry.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>

namespace vae {

// Each registered family's declaration (defined in its own .cpp): vae_family() ...
#define VAE_FAMILY(name) const ModelFamily& name##_family();
#include "models/families.def"
#undef VAE_FAMILY

namespace {

std::vector<const ModelFamily*>& registry() {
  static std::vector<const ModelFamily*> families = {
#define VAE_FAMILY(name) &name##_family(),
#include "models/families.def"
#undef VAE_FAMILY
  };
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

void set_output_bias_to_data_logit(Model& model, const data::Images& train) {
  const std::size_t D = train.dim();
  for (const ParamRange& g : model.param_groups()) {
    if ((g.name != "dec_out.b" && g.name != "dec.out.b") || g.size != D) continue;
    std::vector<double> mean(D, 0.0);
    for (std::size_t i = 0; i < train.n; ++i)
      for (std::size_t j = 0; j < D; ++j) mean[j] += train.pixels[i * D + j];
    float* b = model.params().data() + g.offset;
    for (std::size_t j = 0; j < D; ++j) {
      const double m = std::clamp(mean[j] * double(train.scale) / double(std::max<std::size_t>(train.n, 1)),
                                  0.001, 0.999);
      b[j] = float(std::log(m / (1.0 - m)));
    }
    return;
  }
  throw ConfigError("key 'output-bias': this model has no per-pixel output bias to set (data-logit is for "
                    "model = vae with arch = mlp, ladder or hierarchical)");
}

}  // namespace vae
