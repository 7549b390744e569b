// A run's named per-unit vectors (KL per latent unit, codebook usage, ...) as the runs
// table's kl_per_dim column holds them: a JSON object {name: [numbers]}. Databases written
// before vectors were named hold a bare array there, the KL per unit; it reads as
// {"kl_per_dim": [...]}. A new name needs no schema change (the column keeps its name and
// its schema-1 comment, "JSON array": migrations are never edited).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace vae::store {

using UnitVectors = std::map<std::string, std::vector<double>>;

// The column's text ("" for none: the column is then NULL).
std::string unit_vectors_json(const UnitVectors& vectors);
// Parses the column ("" or "null": none). Throws std::runtime_error on anything else than
// an array of numbers or an object of such arrays.
UnitVectors parse_unit_vectors(const std::string& text);

}  // namespace vae::store
