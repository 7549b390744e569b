// IDX files (LeCun's MNIST format): big-endian uint32 header, then uint8 payload.
#include <cstdio>
#include <utility>

#include "data/dataset.hpp"
#include "data/detail.hpp"

namespace vae::data {
namespace {

constexpr uint32_t kImagesMagic = 2051;  // 0x00000803: unsigned bytes, 3 dimensions
constexpr uint32_t kLabelsMagic = 2049;  // 0x00000801: unsigned bytes, 1 dimension

uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

std::string magic_text(uint32_t magic) {
  char hex[16];
  std::snprintf(hex, sizeof hex, "0x%08x", magic);
  return std::to_string(magic) + " (" + hex + ")";
}

// Checks magic and header length; returns the header's uint32 fields after the magic.
std::vector<uint32_t> read_header(const std::vector<uint8_t>& bytes, uint32_t magic, size_t dims,
                                  const std::string& kind, const std::string& path) {
  const size_t header = 4 + 4 * dims;
  if (bytes.size() >= 4 && be32(bytes.data()) != magic) {
    const uint32_t found = be32(bytes.data());
    std::string hint;
    if (found == kImagesMagic) hint = ", an IDX images file";
    if (found == kLabelsMagic) hint = ", an IDX labels file";
    detail::fail(path, "wrong magic number", magic_text(magic) + " for IDX " + kind, magic_text(found) + hint);
  }
  if (bytes.size() < header)
    detail::fail(path, "truncated IDX header", std::to_string(header) + " header bytes",
                 std::to_string(bytes.size()) + " bytes in all");
  std::vector<uint32_t> fields;
  for (size_t i = 0; i < dims; ++i) fields.push_back(be32(bytes.data() + 4 + 4 * i));
  return fields;
}

// Payload must be exactly `count` items of `item_bytes`; says so otherwise.
void check_payload(size_t payload, uint64_t count, uint64_t item_bytes, const std::string& items,
                   const std::string& path) {
  uint64_t expected = 0;
  const bool overflow = __builtin_mul_overflow(count, item_bytes, &expected);
  const std::string says = "header says " + std::to_string(count) + " " + items;
  if (overflow || payload < expected)
    detail::fail(path, "truncated file, " + says,
                 overflow ? "more payload bytes than fit in 64 bits"
                          : std::to_string(expected) + " payload bytes",
                 std::to_string(payload) + " bytes");
  if (payload > expected)
    detail::fail(path, "trailing data after the payload, " + says, std::to_string(expected) + " payload bytes",
                 std::to_string(payload) + " bytes");
}

}  // namespace

Images read_idx_images(const std::string& path) {
  std::vector<uint8_t> bytes = detail::read_file_bytes(path);
  const std::vector<uint32_t> h = read_header(bytes, kImagesMagic, 3, "images", path);
  const uint32_t n = h[0], rows = h[1], cols = h[2];
  if (rows == 0 || cols == 0)
    detail::fail(path, "empty image size", "rows and cols above 0",
                 std::to_string(rows) + "x" + std::to_string(cols));
  check_payload(bytes.size() - 16, n, uint64_t{rows} * cols,
                "images of " + std::to_string(rows) + "x" + std::to_string(cols), path);
  Images images;
  images.source = path;
  images.n = n;
  images.rows = rows;
  images.cols = cols;
  bytes.erase(bytes.begin(), bytes.begin() + 16);  // in place: no second copy of the payload
  images.pixels = std::move(bytes);
  return images;
}

std::vector<uint8_t> read_idx_labels(const std::string& path) {
  const std::vector<uint8_t> bytes = detail::read_file_bytes(path);
  const std::vector<uint32_t> h = read_header(bytes, kLabelsMagic, 1, "labels", path);
  check_payload(bytes.size() - 8, h[0], 1, "labels", path);
  return std::vector<uint8_t>(bytes.begin() + 8, bytes.end());
}

}  // namespace vae::data
