// SHA-256 of strings and files (OpenSSL), for run identity and data checksums.
#pragma once
#include <string>

namespace vae {
std::string sha256_hex(const std::string& bytes);
// Throws std::runtime_error naming the file when it cannot be read.
std::string sha256_file(const std::string& path);
}  // namespace vae
