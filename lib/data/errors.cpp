// DataError formatting: one line, naming the file, expected versus found.
#include <cstdio>

#include "data/dataset.hpp"
#include "data/detail.hpp"

namespace vae::data::detail {

void fail(const std::string& path, const std::string& problem, const std::string& expected,
          const std::string& found) {
  std::string message = path + ": " + problem + " (expected " + expected + ", found " + found + ")";
  // A message is one line even when a found value carries a line break.
  for (char& c : message)
    if (c == '\n' || c == '\r') c = ' ';
  throw DataError(message);
}

std::string quoted(const char* data, size_t size, size_t max_chars) {
  std::string out = "\"";
  for (size_t i = 0; i < size && i < max_chars; ++i) {
    const auto c = static_cast<unsigned char>(data[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  out += size > max_chars ? "\"..." : "\"";
  return out;
}

}  // namespace vae::data::detail
