// Internals shared by the lib/data readers (not part of the public API).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vae::data::detail {

// Throws DataError "<path>: <problem> (expected <expected>, found <found>)".
[[noreturn]] void fail(const std::string& path, const std::string& problem, const std::string& expected,
                       const std::string& found);

// The whole file, gunzipped when its name ends in ".gz" or it starts with the
// gzip magic bytes. Missing/unreadable file or corrupt gzip stream: DataError.
std::vector<uint8_t> read_file_bytes(const std::string& path);

// Inflates a zlib (gzip = false) or gzip (gzip = true, members may be
// concatenated) stream. `size_hint` presizes the output; corrupt: DataError.
std::vector<uint8_t> inflate_bytes(const uint8_t* data, size_t size, bool gzip, size_t size_hint,
                                   const std::string& path);

// Up to `max_chars` bytes for an error message: quoted, non-printables as \xNN.
std::string quoted(const char* data, size_t size, size_t max_chars = 24);

}  // namespace vae::data::detail
