// The page's static files (web/), embedded into the program at build time so that
// `vae serve` finds them whatever its working folder (web/embed.cmake writes them).
#pragma once

#include <cstddef>
#include <string>

namespace vae::serve {

struct Asset {
  const char* path;  // "/index.html", "/app.js", ...
  const char* content_type;
  const unsigned char* data;
  std::size_t size;
};

// nullptr when no embedded file has this path ("/" is "/index.html").
const Asset* find_asset(const std::string& path);

}  // namespace vae::serve
