// A run's identity: the sha256 of its fully resolved configuration (settings that
// change results only) and the checksums of the data files it reads. Two sweeps
// that ask for the same run share it; running a sweep again skips what is done.
//
// Stable across new settings: the settings that existed when this recipe was
// frozen (baseline_identity_keys, config/config.hpp) are always hashed, whatever their value, so a
// changed default can never make two different runs one; a setting added later
// is hashed only when it differs from its default, so adding a setting (whose
// default keeps the old behaviour) leaves every recorded run's id as it was. The
// defaults of those later settings are pinned by a test (test_store.cpp), because
// changing one would make runs with different settings share an id.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"
#include "data/data_file.hpp"
#include "store/db.hpp"

namespace vae::store {

// Bumped only if the identity recipe itself changes (it would re-key every run).
constexpr int kIdentityVersion = 1;

// Resolves settings whose value depends on others (binarize = auto becomes the
// protocol it means), so that two spellings of one run get one id. Validates.
ConfigMap canonical_config(const ConfigMap& config);

// {"config": <identity settings>, "data_sha256": [...], "v": 1} with sorted keys.
std::string identity_json(const ConfigMap& canonical, const std::vector<DataFile>& data);

std::string run_id_of(const std::string& identity_json);  // 64 hex digits

// All settings as JSON (identity and others), and back. Keys missing from the JSON
// (settings added after the run was recorded) take their defaults.
std::string config_json(const ConfigMap& config);
ConfigMap config_from_json(const std::string& text);

// The params-table form of a setting: kind name and SQL value.
std::string kind_name(ValueKind kind);
SqlValue to_sql(const Value& v);

}  // namespace vae::store
