// Reading `vae train` settings out of TOML files (sweep files, reproduction specs): the
// value conversion, the check against the setting's spec, and the one-line errors
// "file:line: key 'k' in [section]: why" (thrown as SweepError).
#pragma once

#include <toml++/toml.h>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "sweep/sweep_file.hpp"

namespace vae::sweep {

int line_of(const toml::node& n);

// Entries of a table in the order they are written in the file (toml++ sorts them).
std::vector<std::pair<std::string, const toml::node*>> in_file_order(const toml::table& t);

// " (did you mean 'latent'?)" or "".
std::string suggestion(const std::string& key, const std::vector<std::string>& known);

// "key 'latent': 0 is below the minimum 1" -> "0 is below the minimum 1"
std::string strip_key_prefix(const std::string& msg);

// Every `vae train` setting's name.
std::vector<std::string> setting_names();

// "file:line: key 'k' in [section]: msg" (key and section when given): the form of every
// error in a settings file.
std::string located_message(const std::string& file, int line, const std::string& key,
                            const std::string& section, const std::string& msg);

[[noreturn]] void fail_at(const std::string& file, int line, const std::string& key, const std::string& section,
                          const std::string& msg);

// One `vae train` setting from its TOML value, checked against its spec.
Value read_setting(const std::string& file, const std::string& key, const toml::node& n,
                   const std::string& section);

// A table of settings (a sweep's [base]), in file order.
std::vector<Setting> read_settings(const std::string& file, const toml::table& t, const std::string& section);

}  // namespace vae::sweep
