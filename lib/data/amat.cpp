// Larochelle's .amat text: one binarized 28x28 image per line, "0"/"1" tokens.
#include <cstring>

#include "data/dataset.hpp"
#include "data/detail.hpp"

namespace vae::data {
namespace {

constexpr size_t kRows = 28, kCols = 28, kValues = kRows * kCols;

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

}  // namespace

Images read_amat(const std::string& path) {
  const std::vector<uint8_t> bytes = detail::read_file_bytes(path);
  if (bytes.empty())
    detail::fail(path, "no images", "lines of " + std::to_string(kValues) + " values", "an empty file");
  Images images;
  images.source = path;
  images.rows = kRows;
  images.cols = kCols;
  images.scale = 1.0f;
  // Every value takes at least two bytes ("0 " or "0\n"): one reservation, no regrowth.
  images.pixels.reserve(bytes.size() / 2 + kValues);

  // One pass over the bytes: no per-line or per-value allocation.
  const char* p = reinterpret_cast<const char*>(bytes.data());
  const char* const end = p + bytes.size();
  size_t line = 0;
  while (p < end) {
    ++line;
    const char* eol = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    if (!eol) eol = end;
    size_t count = 0;
    for (;;) {
      while (p < eol && is_blank(*p)) ++p;
      if (p == eol) break;
      const char* token = p;
      while (p < eol && !is_blank(*p)) ++p;
      if (p - token != 1 || (*token != '0' && *token != '1'))
        detail::fail(path, "line " + std::to_string(line) + ": non-binary value", "0 or 1",
                     detail::quoted(token, static_cast<size_t>(p - token)));
      if (count < kValues) images.pixels.push_back(static_cast<uint8_t>(*token - '0'));
      ++count;
    }
    if (count != kValues)
      detail::fail(path, "line " + std::to_string(line) + ": wrong number of values", std::to_string(kValues),
                   std::to_string(count));
    p = eol == end ? end : eol + 1;
  }
  images.n = line;
  return images;
}

}  // namespace vae::data
