#include "models/settings.hpp"

#include <toml++/toml.h>
#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "models/registry.hpp"

namespace vae {

namespace {

// The core settings with each family's after --model, whose choices and help are theirs.
std::vector<OptionSpec> assemble_options() {
  std::vector<OptionSpec> all;
  for (const OptionSpec& core : core_options()) {
    all.push_back(core);
    if (core.key != "model") continue;
    OptionSpec& model = all.back();
    for (const ModelFamily* f : model_families())
      for (const auto& [name, help] : f->names) {
        model.choices.push_back(name);
        model.help += (model.choices.size() == 1 ? " " : ", ") + name + (help.empty() ? "" : " (" + help + ")");
      }
    for (const ModelFamily* f : model_families()) all.insert(all.end(), f->options.begin(), f->options.end());
  }
  return all;
}

}  // namespace

const std::vector<OptionSpec>& train_options() {
  // Rebuilt only when a test registers a family (models/registry.hpp); the lock keeps the
  // first build single also when threads (vae serve) ask at once.
  static std::mutex mutex;
  static std::vector<OptionSpec> options;
  static int built = -1;
  std::lock_guard<std::mutex> lock(mutex);
  if (built != registry_version()) {
    options = assemble_options();
    built = registry_version();
  }
  return options;
}

const OptionSpec* find_option(const std::string& key) {
  for (const auto& o : train_options())
    if (o.key == key) return &o;
  return nullptr;
}

ConfigMap default_config() {
  ConfigMap c;
  for (const auto& o : train_options()) c[o.key] = o.default_value;
  return c;
}

void apply(ConfigMap& config, const std::map<std::string, Value>& settings) {
  for (const auto& [key, value] : settings) {
    const OptionSpec* s = find_option(key);
    if (!s) throw ConfigError("unknown key '" + key + "'");
    config[key] = check_value(*s, value);
  }
}

std::map<std::string, Value> read_settings_toml(const std::string& path) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream m;
    m << path << ":" << e.source().begin.line << ": " << e.description();
    throw ConfigError(m.str());
  }
  std::map<std::string, Value> out;
  for (const auto& [k, node] : table) {
    std::string key(k.str());
    auto where = [&, &node = node]() {  // C++17: a structured binding is captured by an init-capture
      std::ostringstream m;
      m << path << ":" << node.source().begin.line << ": ";
      return m.str();
    };
    const OptionSpec* s = find_option(key);
    if (!s) throw ConfigError(where() + "unknown key '" + key + "'");
    Value v;
    if (auto x = node.as_integer()) v = int64_t(x->get());
    else if (auto d = node.as_floating_point()) v = d->get();
    else if (auto t = node.as_string()) v = t->get();
    else if (auto b = node.as_boolean()) v = b->get();
    else if (auto a = node.as_array()) {
      std::vector<int64_t> list;
      for (const auto& e : *a) {
        if (!e.is_integer()) throw ConfigError(where() + "key '" + key + "': expected a list of integers");
        list.push_back(e.as_integer()->get());
      }
      v = list;
    } else {
      throw ConfigError(where() + "key '" + key + "': unsupported value type");
    }
    try {
      out[key] = check_value(*s, v);
    } catch (const ConfigError& e) {
      throw ConfigError(where() + e.what());
    }
  }
  return out;
}

void validate(const ConfigMap& config) {
  validate_core(config);
  const std::string& model = setting<std::string>(config, "model");
  const ModelFamily* chosen = find_family(model);
  if (!chosen) throw ConfigError("key 'model': unknown model '" + model + "'");
  if (chosen->validate) chosen->validate(config);
  for (const ModelFamily* f : model_families())
    if (f != chosen && f->validate_other) f->validate_other(config);
}

TrainConfig to_train_config(const ConfigMap& config) {
  validate(config);
  return core_train_config(config);
}

void canonicalize_family_settings(ConfigMap& config) {
  const ConfigMap defaults = default_config();
  for (const ModelFamily* f : model_families())
    if (f->canonicalize) f->canonicalize(config, defaults);
}

std::string model_summary(const ConfigMap& config) {
  const std::string& model = setting<std::string>(config, "model");
  const ModelFamily* f = find_family(model);
  return f && f->summary ? f->summary(config) : model;
}

std::string identity_settings_json(const ConfigMap& config) {
  nlohmann::json j = nlohmann::json::parse(to_json(config, /*identity_only=*/true));
  const nlohmann::json defaults = nlohmann::json::parse(to_json(default_config(), true));
  const auto& base = baseline_identity_keys();
  for (auto it = j.begin(); it != j.end();) {
    const bool baseline = std::find(base.begin(), base.end(), it.key()) != base.end();
    if (!baseline && defaults.contains(it.key()) && defaults[it.key()] == it.value()) it = j.erase(it);
    else ++it;
  }
  return j.dump();
}

std::string to_json(const ConfigMap& config, bool identity_only) {
  nlohmann::json j = nlohmann::json::object();  // std::map keeps keys sorted
  for (const auto& [key, value] : config) {
    const OptionSpec* s = find_option(key);
    if (identity_only && s && !s->identity) continue;
    std::visit([&j, &key = key](const auto& x) { j[key] = x; }, value);  // (C++17: init-capture of a binding)
  }
  return j.dump();
}

}  // namespace vae
