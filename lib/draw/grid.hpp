// Grayscale image grids and PNG files (stb_image_write): the pictures of `vae draw`.
//
// A grid tiles n cells of h x w intensities in [0, 1] into rows of `cols` cells with
// `pad` pixels of background between cells and around the border. A pixel's byte is
// round(255 * clamp(v, 0, 1)); cells after the n-th stay background.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vae::draw {

struct GrayImage {
  std::size_t width = 0, height = 0;
  std::vector<uint8_t> pixels;  // height rows of width bytes
};

// round(255 * clamp(v, 0, 1)); NaN maps to 0.
uint8_t to_byte(float v);

// cells: [n, h * w] row-major, one image per row.
GrayImage tile(const std::vector<float>& cells, std::size_t n, std::size_t h, std::size_t w, std::size_t cols,
               std::size_t pad = 2, uint8_t background = 128);

// Each pixel becomes a k x k block (k >= 1): small images stay crisp when shown large.
GrayImage upscale(const GrayImage& img, std::size_t k);

// Writes an 8-bit grayscale PNG; throws std::runtime_error naming the file on failure.
void write_png(const std::string& path, const GrayImage& img);

}  // namespace vae::draw
