// Every `vae train` setting: the core settings (config/config.hpp) and each registered model
// family's own (models/registry.hpp), as one schema read by the command line, by TOML run
// files, by sweep files and by the run identity, so that they can never disagree.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace vae {

// Every setting, in the order `--help` lists them: the core ones, with each family's after
// --model (whose choices and help are the families' names).
const std::vector<OptionSpec>& train_options();
const OptionSpec* find_option(const std::string& key);

ConfigMap default_config();

// Applies settings onto a config; unknown keys and bad values throw ConfigError.
void apply(ConfigMap& config, const std::map<std::string, Value>& settings);

// Reads a run TOML file (flat table of settings). Errors name file, line and key.
std::map<std::string, Value> read_settings_toml(const std::string& path);

// Checks relations between settings: the core ones (config/config.hpp), those of the family
// --model selects, and the other families' settings that must then keep their defaults.
void validate(const ConfigMap& config);

// Validates, then the typed view of the core settings (TrainConfig::settings holds them all,
// from which the family's factory reads its own).
TrainConfig to_train_config(const ConfigMap& config);

// Each family's settings that mean nothing in this configuration, reset to their defaults
// (ModelFamily::canonicalize), so that two spellings of one run get one id.
void canonicalize_family_settings(ConfigMap& config);

// The model's part of `vae train`'s summary line ("latent 20"), from its family.
std::string model_summary(const ConfigMap& config);

// The configuration as canonical JSON (sorted keys), identity keys only or all.
std::string to_json(const ConfigMap& config, bool identity_only);

// What identifies a configuration (a run's id, a checkpoint's), as canonical JSON: the
// baseline settings always (baseline_identity_keys, config/config.hpp), a setting added later
// only when it differs from its default, so that adding a setting whose default keeps the old
// behaviour changes no identity, and a changed default of a baseline setting can never make
// two different runs one.
std::string identity_settings_json(const ConfigMap& config);

}  // namespace vae
