#include "draw/grid.hpp"

#include <stb_image_write.h>

#include <cmath>
#include <stdexcept>

namespace vae::draw {

uint8_t to_byte(float v) {
  if (!(v > 0.0f)) return 0;  // also NaN
  if (v >= 1.0f) return 255;
  return uint8_t(std::lround(255.0f * v));
}

GrayImage tile(const std::vector<float>& cells, std::size_t n, std::size_t h, std::size_t w, std::size_t cols,
               std::size_t pad, uint8_t background) {
  if (n == 0 || h == 0 || w == 0 || cols == 0) throw std::invalid_argument("tile: empty grid");
  if (cells.size() < n * h * w)
    throw std::invalid_argument("tile: " + std::to_string(cells.size()) + " values for " + std::to_string(n) +
                                " cells of " + std::to_string(h * w));
  const std::size_t rows = (n + cols - 1) / cols;
  GrayImage img;
  img.width = cols * w + (cols + 1) * pad;
  img.height = rows * h + (rows + 1) * pad;
  img.pixels.assign(img.width * img.height, background);
  for (std::size_t c = 0; c < n; ++c) {
    const std::size_t x0 = pad + (c % cols) * (w + pad), y0 = pad + (c / cols) * (h + pad);
    const float* src = cells.data() + c * h * w;
    for (std::size_t y = 0; y < h; ++y)
      for (std::size_t x = 0; x < w; ++x) img.pixels[(y0 + y) * img.width + x0 + x] = to_byte(src[y * w + x]);
  }
  return img;
}

GrayImage upscale(const GrayImage& img, std::size_t k) {
  if (k <= 1) return img;
  GrayImage out;
  out.width = img.width * k;
  out.height = img.height * k;
  out.pixels.resize(out.width * out.height);
  for (std::size_t y = 0; y < out.height; ++y)
    for (std::size_t x = 0; x < out.width; ++x)
      out.pixels[y * out.width + x] = img.pixels[(y / k) * img.width + x / k];
  return out;
}

void write_png(const std::string& path, const GrayImage& img) {
  if (img.width == 0 || img.height == 0) throw std::runtime_error(path + ": empty image");
  if (!stbi_write_png(path.c_str(), int(img.width), int(img.height), 1, img.pixels.data(), int(img.width)))
    throw std::runtime_error(path + ": cannot write the PNG file");
}

}  // namespace vae::draw
