#include "store/run_identity.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "models/settings.hpp"
#include "util/hash.hpp"

namespace vae::store {

ConfigMap canonical_config(const ConfigMap& config) {
  ConfigMap c = config;
  TrainConfig t = to_train_config(c);  // validates, and resolves binarize = auto
  c["binarize"] = t.binarize;
  // Settings of a family that mean nothing in this configuration (the flow's KL estimator
  // without flow steps) take their defaults (ModelFamily::canonicalize).
  canonicalize_family_settings(c);
  // With one sample per example the IWAE bound is the ELBO with the sampled KL, and the
  // objective takes the ELBO's path (models/algorithms.hpp): the same run. With more, the
  // IWAE objective is sampled whatever kl-estimate says.
  if (t.objective == Objective::Iwae) {
    if (t.k == 1) c["objective"] = default_config().at("objective");
    c["kl-estimate"] = t.k == 1 ? std::string("sampled") : default_config().at("kl-estimate");
  }
  return c;
}

std::string identity_json(const ConfigMap& canonical, const std::vector<DataFile>& data) {
  nlohmann::json j;
  j["v"] = kIdentityVersion;
  j["config"] = nlohmann::json::parse(identity_settings_json(canonical));
  std::vector<std::string> sums;
  sums.reserve(data.size());
  for (const auto& f : data) sums.push_back(f.sha256);
  std::sort(sums.begin(), sums.end());
  j["data_sha256"] = sums;
  return j.dump();  // nlohmann::json objects keep keys sorted: canonical
}

std::string run_id_of(const std::string& identity) { return sha256_hex(identity); }

std::string config_json(const ConfigMap& config) { return to_json(config, false); }

ConfigMap config_from_json(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text);
  ConfigMap c = default_config();
  for (auto it = j.begin(); it != j.end(); ++it) {
    const OptionSpec* s = find_option(it.key());
    if (!s)
      throw ConfigError("stored configuration has key '" + it.key() + "', which this vae build does not know");
    const auto& v = it.value();
    Value x;
    switch (s->kind) {
      case ValueKind::Int: x = v.get<int64_t>(); break;
      case ValueKind::Float: x = v.get<double>(); break;
      case ValueKind::String: x = v.get<std::string>(); break;
      case ValueKind::IntList: x = v.get<std::vector<int64_t>>(); break;
      case ValueKind::Bool: x = v.get<bool>(); break;
    }
    c[it.key()] = check_value(*s, x);
  }
  return c;
}

std::string kind_name(ValueKind kind) {
  switch (kind) {
    case ValueKind::Int: return "int";
    case ValueKind::Float: return "float";
    case ValueKind::String: return "string";
    case ValueKind::IntList: return "int_list";
    case ValueKind::Bool: return "bool";
  }
  return "string";
}

SqlValue to_sql(const Value& v) {
  if (auto p = std::get_if<int64_t>(&v)) return *p;
  if (auto p = std::get_if<double>(&v)) return *p;
  if (auto p = std::get_if<bool>(&v)) return int64_t(*p ? 1 : 0);
  return value_to_string(v);  // strings, and lists as "500,500"
}

}  // namespace vae::store
