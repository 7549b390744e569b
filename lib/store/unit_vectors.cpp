#include "store/unit_vectors.hpp"

#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace vae::store {

std::string unit_vectors_json(const UnitVectors& vectors) {
  if (vectors.empty()) return "";
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, v] : vectors) j[name] = v;
  return j.dump();
}

namespace {
std::vector<double> numbers(const nlohmann::json& a, const std::string& what) {
  if (!a.is_array()) throw std::runtime_error("unit vectors: " + what + " is not an array");
  std::vector<double> v;
  v.reserve(a.size());
  for (const auto& x : a) {
    if (x.is_null()) v.push_back(std::numeric_limits<double>::quiet_NaN());  // JSON writes NaN as null
    else if (x.is_number()) v.push_back(x.get<double>());
    else throw std::runtime_error("unit vectors: " + what + " holds a non-number");
  }
  return v;
}
}  // namespace

UnitVectors parse_unit_vectors(const std::string& text) {
  UnitVectors out;
  if (text.empty() || text == "null") return out;
  const nlohmann::json j = nlohmann::json::parse(text);
  if (j.is_array()) {  // written before vectors were named: the KL per unit
    out["kl_per_dim"] = numbers(j, "the legacy array");
    return out;
  }
  if (!j.is_object()) throw std::runtime_error("unit vectors: expected a JSON object or array");
  for (const auto& [name, a] : j.items()) out[name] = numbers(a, "'" + name + "'");
  return out;
}

}  // namespace vae::store
