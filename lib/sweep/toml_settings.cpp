#include "sweep/toml_settings.hpp"

#include <algorithm>
#include <sstream>

#include "models/settings.hpp"
#include "util/nearest.hpp"

namespace vae::sweep {

namespace {

// A TOML scalar (or list of integers) as a setting value, unchecked.
Value raw_value(const std::string& file, const toml::node& n, const std::string& key,
                const std::string& section) {
  if (auto x = n.as_integer()) return int64_t(x->get());
  if (auto x = n.as_floating_point()) return x->get();
  if (auto x = n.as_string()) return x->get();
  if (auto x = n.as_boolean()) return x->get();
  if (auto a = n.as_array()) {
    std::vector<int64_t> list;
    for (const auto& e : *a) {
      if (!e.is_integer()) fail_at(file, line_of(e), key, section, "expected a list of integers");
      list.push_back(e.as_integer()->get());
    }
    return list;
  }
  fail_at(file, line_of(n), key, section,
          "unsupported value (a number, string, boolean or list of integers is expected)");
}

}  // namespace

int line_of(const toml::node& n) { return int(n.source().begin.line); }

// "key 'latent': 0 is below the minimum 1" -> "0 is below the minimum 1"
std::string strip_key_prefix(const std::string& msg) {
  if (msg.rfind("key '", 0) != 0) return msg;
  size_t end = msg.find("': ", 5);
  return end == std::string::npos ? msg : msg.substr(end + 3);
}

std::vector<std::pair<std::string, const toml::node*>> in_file_order(const toml::table& t) {
  struct E {
    std::string key;
    const toml::node* node;
    uint32_t line, col;
  };
  std::vector<E> es;
  for (const auto& [k, v] : t) {
    const auto& src = k.source().begin.line ? k.source() : v.source();
    es.push_back({std::string(k.str()), &v, src.begin.line, src.begin.column});
  }
  std::stable_sort(es.begin(), es.end(),
                   [](const E& a, const E& b) { return std::tie(a.line, a.col) < std::tie(b.line, b.col); });
  std::vector<std::pair<std::string, const toml::node*>> out;
  out.reserve(es.size());
  for (auto& e : es) out.emplace_back(e.key, e.node);
  return out;
}

std::string suggestion(const std::string& key, const std::vector<std::string>& known) {
  std::string dashed = key;
  std::replace(dashed.begin(), dashed.end(), '_', '-');
  std::string best;
  size_t best_d = 3;
  for (const auto& k : known) {
    if (k == dashed) return " (did you mean '" + k + "'?)";
    size_t d = edit_distance(key, k);
    if (d < best_d) best_d = d, best = k;
  }
  return best.empty() ? "" : " (did you mean '" + best + "'?)";
}

std::vector<std::string> setting_names() {
  std::vector<std::string> names;
  for (const auto& o : train_options()) names.push_back(o.key);
  return names;
}

std::string located_message(const std::string& file, int line, const std::string& key,
                            const std::string& section, const std::string& msg) {
  std::ostringstream m;
  m << file << ":" << line << ": ";
  if (!key.empty()) m << "key '" << key << "'";
  if (!section.empty()) m << (key.empty() ? "" : " in ") << "[" << section << "]";
  if (!key.empty() || !section.empty()) m << ": ";
  m << msg;
  return m.str();
}

void fail_at(const std::string& file, int line, const std::string& key, const std::string& section,
             const std::string& msg) {
  throw SweepError(located_message(file, line, key, section, msg));
}

Value read_setting(const std::string& file, const std::string& key, const toml::node& n,
                   const std::string& section) {
  const int line = line_of(n);
  const OptionSpec* s = find_option(key);
  if (!s) fail_at(file, line, key, section, "not a `vae train` setting" + suggestion(key, setting_names()));
  try {
    return check_value(*s, raw_value(file, n, key, section));
  } catch (const ConfigError& e) {
    fail_at(file, line, key, section, strip_key_prefix(e.what()));
  }
}

std::vector<Setting> read_settings(const std::string& file, const toml::table& t, const std::string& section) {
  std::vector<Setting> out;
  for (const auto& [key, node] : in_file_order(t))
    out.push_back({key, read_setting(file, key, *node, section), line_of(*node)});
  return out;
}

}  // namespace vae::sweep
