// The known name nearest to a mistyped one, for "did you mean ...?" hints.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace vae {

// Edits (insert, delete, substitute, swap two neighbours) that turn a into b:
// the optimal string alignment distance, so "tabel" is one edit from "table".
std::size_t edit_distance(const std::string& a, const std::string& b);

// The candidate closest to `word`, if it is close enough to be what was meant:
// at most one edit per three letters of the candidate (at least one), or `word`
// is the start of exactly one candidate ("eval" -> "eval-disent"). Ties go to the
// first candidate; an exact match is returned as is.
std::optional<std::string> nearest_name(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace vae
