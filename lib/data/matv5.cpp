// MATLAB v5 MAT-files, as much as Frey Face needs: a 128-byte header, then
// data elements (8-byte tag, or a 4-byte "small element" tag with the data
// packed inside). Variables are miMATRIX elements, possibly wrapped in a zlib
// miCOMPRESSED element. Reference: MathWorks, "MAT-File Format" (matfile_format.pdf).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

#include "data/dataset.hpp"
#include "data/detail.hpp"

namespace vae::data {
namespace {

enum : uint32_t {
  miINT8 = 1,
  miUINT8 = 2,
  miINT16 = 3,
  miUINT16 = 4,
  miINT32 = 5,
  miUINT32 = 6,
  miSINGLE = 7,
  miDOUBLE = 9,
  miINT64 = 12,
  miUINT64 = 13,
  miMATRIX = 14,
  miCOMPRESSED = 15,
  miUTF8 = 16,
  miUTF16 = 17,
  miUTF32 = 18,
};
constexpr uint32_t kUint8Class = 9;        // mxUINT8_CLASS
constexpr uint32_t kComplexFlag = 0x0800;  // in the array flags word

const char* type_name(uint32_t type) {
  static const char* names[] = {"type 0",       "miINT8",   "miUINT8",  "miINT16",  "miUINT16",
                                "miINT32",      "miUINT32", "miSINGLE", "type 8",   "miDOUBLE",
                                "type 10",      "type 11",  "miINT64",  "miUINT64", "miMATRIX",
                                "miCOMPRESSED", "miUTF8",   "miUTF16",  "miUTF32"};
  return type < sizeof names / sizeof *names ? names[type] : "an unknown type";
}

std::string class_name(uint32_t cls) {
  static const char* names[] = {"class 0", "cell",  "struct", "object", "char",  "sparse", "double", "single",
                                "int8",    "uint8", "int16",  "uint16", "int32", "uint32", "int64",  "uint64"};
  return cls < sizeof names / sizeof *names ? names[cls] : "class " + std::to_string(cls);
}

struct Element {
  uint32_t type = 0;
  const uint8_t* data = nullptr;
  size_t bytes = 0;
  size_t next = 0;  // offset of the following element
};

// A byte range of the file (or of an inflated miCOMPRESSED element) in the file's byte order.
struct Reader {
  const uint8_t* base;
  size_t size;
  bool big_endian;
  const std::string& path;
  std::string where;  // for messages: "" or " inside a compressed element"

  uint32_t u32(const uint8_t* p) const {
    return big_endian ? uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]
                      : uint32_t{p[3]} << 24 | uint32_t{p[2]} << 16 | uint32_t{p[1]} << 8 | p[0];
  }

  // The element at `offset`, which must lie within [offset, limit). Elements
  // inside a matrix are padded to 8 bytes; top-level ones (miCOMPRESSED) are not.
  Element element(size_t offset, size_t limit, bool padded) const {
    if (limit - offset < 8)
      detail::fail(path, "truncated MAT-file" + where,
                   "an 8-byte element tag at offset " + std::to_string(offset),
                   std::to_string(limit - offset) + " bytes");
    Element e;
    const uint32_t first = u32(base + offset);
    if (first >> 16 != 0) {  // small element: bytes in the high half, data in the tag
      e.type = first & 0xffff;
      e.bytes = first >> 16;
      e.data = base + offset + 4;
      e.next = offset + 8;
      if (e.bytes > 4)
        detail::fail(path, "bad small data element at offset " + std::to_string(offset) + where,
                     "at most 4 bytes", std::to_string(e.bytes) + " bytes");
      return e;
    }
    e.type = first;
    e.bytes = u32(base + offset + 4);
    e.data = base + offset + 8;
    if (e.bytes > limit - offset - 8)
      detail::fail(path, "truncated MAT-file" + where,
                   std::to_string(e.bytes) + " bytes of " + type_name(e.type) + " at offset " +
                       std::to_string(offset + 8),
                   std::to_string(limit - offset - 8) + " bytes");
    const size_t end = offset + 8 + e.bytes;
    e.next = padded ? std::min(limit, (end + 7) / 8 * 8) : end;
    return e;
  }
};

struct Found {
  std::vector<std::string> names;  // every variable seen, for the "no ff" message
  std::optional<Images> images;
};

// Checks the miMATRIX named ff and converts its columns into images.
Images frey_images(const Reader& r, uint32_t flags, const std::vector<uint32_t>& dims, const Element& real) {
  const uint32_t cls = flags & 0xff;
  if (cls != kUint8Class || (flags & kComplexFlag))
    detail::fail(r.path, "variable ff has the wrong type", "uint8",
                 std::string(flags & kComplexFlag ? "complex " : "") + class_name(cls));
  std::string shape;
  for (size_t i = 0; i < dims.size(); ++i) shape += (i ? " x " : "") + std::to_string(dims[i]);
  constexpr size_t kRows = 28, kCols = 20, kPixels = kRows * kCols;
  if (dims.size() != 2 || dims[0] != kPixels || dims[1] == 0)
    detail::fail(r.path, "variable ff has the wrong shape", "560 x N (one 28x20 image per column)", shape);
  const size_t n = dims[1];
  if (real.type != miUINT8 || real.bytes != kPixels * n)
    detail::fail(r.path, "variable ff has bad data",
                 std::to_string(kPixels * n) + " bytes of miUINT8 for " + shape,
                 std::to_string(real.bytes) + " bytes of " + type_name(real.type));
  Images images;
  images.source = r.path;
  images.n = n;
  images.rows = kRows;
  images.cols = kCols;
  // Column-major 560 x N: column j (image j) is contiguous, already row-major 28x20.
  images.pixels.assign(real.data, real.data + real.bytes);
  return images;
}

void read_matrix(const Reader& r, const Element& m, Found& found) {
  if (m.bytes == 0) return;  // an empty array carries no name
  const size_t begin = static_cast<size_t>(m.data - r.base), limit = begin + m.bytes;
  const Element flags = r.element(begin, limit, true);
  if (flags.type != miUINT32 || flags.bytes != 8)
    detail::fail(r.path, "bad array flags in a miMATRIX" + r.where, "8 bytes of miUINT32",
                 std::to_string(flags.bytes) + " bytes of " + type_name(flags.type));
  const Element dims_el = r.element(flags.next, limit, true);
  if (dims_el.type != miINT32 || dims_el.bytes % 4 != 0 || dims_el.bytes == 0)
    detail::fail(r.path, "bad dimensions in a miMATRIX" + r.where, "miINT32 values",
                 std::to_string(dims_el.bytes) + " bytes of " + type_name(dims_el.type));
  std::vector<uint32_t> dims;
  for (size_t i = 0; i < dims_el.bytes; i += 4) dims.push_back(r.u32(dims_el.data + i));
  const Element name_el = r.element(dims_el.next, limit, true);
  if (name_el.type != miINT8 && name_el.type != miUTF8)
    detail::fail(r.path, "bad array name in a miMATRIX" + r.where, "miINT8 text", type_name(name_el.type));
  const std::string name(reinterpret_cast<const char*>(name_el.data), name_el.bytes);
  found.names.push_back(name);
  if (name != "ff" || found.images) return;
  const uint32_t cls = r.u32(flags.data) & 0xff;
  if (cls == kUint8Class && name_el.next >= limit)
    detail::fail(r.path, "variable ff has no data", "a real part after the name", "none");
  const Element real = cls == kUint8Class ? r.element(name_el.next, limit, true) : Element{};
  found.images = frey_images(r, r.u32(flags.data), dims, real);
}

void read_elements(const Reader& r, size_t offset, Found& found, int depth) {
  while (offset < r.size) {
    const Element e = r.element(offset, r.size, false);
    if (e.type == miMATRIX) {
      read_matrix(r, e, found);
    } else if (e.type == miCOMPRESSED) {
      if (depth > 0)
        detail::fail(r.path, "nested compressed element" + r.where, "a miMATRIX inside",
                     "another miCOMPRESSED");
      const std::vector<uint8_t> inner = detail::inflate_bytes(e.data, e.bytes, false, 0, r.path);
      const Reader ir{inner.data(), inner.size(), r.big_endian, r.path,
                      " inside the compressed element at offset " + std::to_string(offset)};
      read_elements(ir, 0, found, depth + 1);
    }
    // Other top-level element types are not variables: skip them.
    if (found.images) return;
    offset = e.next;
  }
}

}  // namespace

Images read_frey_face(const std::string& path) {
  const std::vector<uint8_t> bytes = detail::read_file_bytes(path);
  constexpr size_t kHeader = 128;
  const std::string expected_header =
      "a 128-byte MATLAB 5.0 MAT-file header ending in version 0x0100 and 'IM' or 'MI'";
  if (bytes.size() < kHeader)
    detail::fail(path, "not a MATLAB v5 MAT-file", expected_header,
                 std::to_string(bytes.size()) + " bytes in all");
  const char* text = reinterpret_cast<const char*>(bytes.data());
  const bool little = bytes[126] == 'I' && bytes[127] == 'M';
  const bool big = bytes[126] == 'M' && bytes[127] == 'I';
  const unsigned version = little ? bytes[124] | bytes[125] << 8 : bytes[124] << 8 | bytes[125];
  if (!little && !big)
    detail::fail(path, "not a MATLAB v5 MAT-file", expected_header,
                 "header text " + detail::quoted(text, 20) + " and endian mark " +
                     detail::quoted(text + 126, 2));
  if (version != 0x0100) {
    char found[64];
    std::snprintf(found, sizeof found, "version 0x%04x", version);
    const bool hdf5 = std::strncmp(text, "MATLAB 7.3", 10) == 0;
    detail::fail(path, hdf5 ? "MATLAB 7.3 (HDF5) MAT-files are not supported" : "not a MATLAB v5 MAT-file",
                 "version 0x0100 (MATLAB 5.0 MAT-file; save with -v7 or -v6)",
                 found + std::string(" with header text ") + detail::quoted(text, 20));
  }

  Found found;
  const Reader r{bytes.data(), bytes.size(), big, path, ""};
  read_elements(r, kHeader, found, 0);
  if (!found.images) {
    std::string names;
    for (const std::string& n : found.names) names += (names.empty() ? "" : ", ") + n;
    detail::fail(path, "no variable ff", "a variable named ff",
                 names.empty() ? "no variables" : "variables " + names);
  }
  return std::move(*found.images);
}

}  // namespace vae::data
