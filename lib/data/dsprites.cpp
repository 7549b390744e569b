// dSprites-style renderer, splits and bit-packed cache (see dsprites.hpp).
#include "data/dsprites.hpp"

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include "data/detail.hpp"
#include "util/hash.hpp"

namespace vae::data::dsprites {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kHalfSide = 0.70710678118654752440;  // square: corners on the unit circle
constexpr double kEllipseMinor = 0.5;
constexpr double kHeartK = 1.29323, kHeartC = 0.29348;  // see the top of dsprites.hpp

constexpr char kMagic[8] = {'V', 'A', 'E', 'D', 'S', 'P', 'R', '1'};
constexpr size_t kHeaderBytes = 8 + 3 * 4;
constexpr size_t kPackedBytes = kImageDim / 8;  // 512

uint32_t read_u32le(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
void put_u32le(uint8_t* p, uint32_t x) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(x >> (8 * i));
}

void pack(const uint8_t* pixels, uint8_t* out) {
  std::memset(out, 0, kPackedBytes);
  for (size_t i = 0; i < kImageDim; ++i)
    if (pixels[i]) out[i / 8] |= uint8_t(0x80u >> (i % 8));
}
void unpack(const uint8_t* packed, uint8_t* pixels) {
  for (size_t i = 0; i < kImageDim; ++i) pixels[i] = (packed[i / 8] >> (7 - i % 8)) & 1u;
}

uint64_t cache_bytes() { return kHeaderBytes + uint64_t(kNumImages) * kPackedBytes; }

// Checks the header and size; returns nothing, throws DataError naming the file.
void check_cache(const std::string& path, std::ifstream& f) {
  uint8_t head[kHeaderBytes];
  if (!f.read(reinterpret_cast<char*>(head), kHeaderBytes))
    detail::fail(path, "truncated dSprites cache header", std::to_string(kHeaderBytes) + " bytes", "fewer");
  if (std::memcmp(head, kMagic, 8) != 0)
    detail::fail(path, "not a dSprites cache", "magic VAEDSPR1",
                 detail::quoted(reinterpret_cast<char*>(head), 8));
  const uint32_t n = read_u32le(head + 8), rows = read_u32le(head + 12), cols = read_u32le(head + 16);
  if (n != kNumImages || rows != kImageSide || cols != kImageSide)
    detail::fail(path, "wrong dSprites cache shape", "737280 x 64 x 64",
                 std::to_string(n) + " x " + std::to_string(rows) + " x " + std::to_string(cols));
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec || size != cache_bytes())
    detail::fail(path, "wrong dSprites cache size", std::to_string(cache_bytes()) + " bytes",
                 ec ? "unreadable" : std::to_string(size) + " bytes");
}

Images empty_images(size_t n) {
  Images im;
  im.n = n;
  im.rows = im.cols = kImageSide;
  im.scale = 1.0f;
  im.pixels.assign(n * kImageDim, 0);
  return im;
}

}  // namespace

Classes classes_of(size_t index) {
  Classes c{};
  for (size_t k = kNumFactors; k-- > 0;) {
    c[k] = uint32_t(index % kFactorSizes[k]);
    index /= kFactorSizes[k];
  }
  return c;
}

size_t index_of(const Classes& c) {
  size_t index = 0;
  for (size_t k = 0; k < kNumFactors; ++k) index = index * kFactorSizes[k] + c[k];
  return index;
}

FactorValues values_of(const Classes& c) {
  FactorValues v;
  v.shape = c[0];
  v.scale = 0.5 + 0.1 * double(c[1]);
  v.orientation = 2 * kPi * double(c[2]) / 40.0;
  v.pos_x = double(c[3]) / 31.0;
  v.pos_y = double(c[4]) / 31.0;
  return v;
}

bool inside(uint32_t shape, double u, double v) {
  switch (shape) {
    case 0: return std::fabs(u) <= kHalfSide && std::fabs(v) <= kHalfSide;
    case 1: return u * u + (v / kEllipseMinor) * (v / kEllipseMinor) <= 1.0;
    default: {
      const double x = kHeartK * u, y = kHeartK * v + kHeartC;
      const double a = x * x + y * y - 1.0;
      return a * a * a - x * x * y * y * y <= 0.0;
    }
  }
}

void render(const Classes& c, uint8_t* out) {
  const FactorValues f = values_of(c);
  std::memset(out, 0, kImageDim);
  const double cx = 16.0 + 32.0 * f.pos_x, cy = 16.0 + 32.0 * f.pos_y;
  const double radius = kSpriteRadius * f.scale;
  const double cs = std::cos(f.orientation), sn = std::sin(f.orientation);
  // Only the pixels of the bounding box of the sprite's disc can be on.
  const int r0 = std::max(0, int(std::floor(cy - radius - 1))),
            r1 = std::min(int(kImageSide) - 1, int(std::ceil(cy + radius + 1)));
  const int c0 = std::max(0, int(std::floor(cx - radius - 1))),
            c1 = std::min(int(kImageSide) - 1, int(std::ceil(cx + radius + 1)));
  for (int r = r0; r <= r1; ++r)
    for (int col = c0; col <= c1; ++col) {
      const double dx = (col + 0.5 - cx) / radius, dy = (cy - (r + 0.5)) / radius;  // y up
      // Rotate the offset by -orientation: the sprite turns counter-clockwise.
      const double u = cs * dx + sn * dy, v = -sn * dx + cs * dy;
      out[size_t(r) * kImageSide + size_t(col)] = inside(f.shape, u, v) ? 1 : 0;
    }
}

const std::vector<uint32_t>& split_order() {
  static const std::vector<uint32_t> order = [] {
    std::vector<uint32_t> o(kNumImages);
    for (size_t i = 0; i < kNumImages; ++i) o[i] = uint32_t(i);
    // Fisher-Yates with our own draw (std::shuffle's algorithm is the library's choice).
    std::mt19937_64 rng(kSplitSeed);
    for (size_t i = kNumImages - 1; i > 0; --i) std::swap(o[i], o[size_t(rng() % (i + 1))]);
    return o;
  }();
  return order;
}

SplitIndices split_indices(int64_t train_size, int64_t valid_size, int64_t test_size) {
  if (train_size < 0 || valid_size < 0 || test_size < 0)
    throw std::invalid_argument("dsprites: train_size, valid_size and test_size must be 0 or more");
  if (train_size == 0)
    throw std::invalid_argument(
        "dsprites: set train_size (the whole grid as bytes is 3 GB); e.g. train_size = 50000");
  const size_t nt = test_size == 0 ? kDefaultTestSize : size_t(test_size);
  const size_t nv = size_t(valid_size), ntr = size_t(train_size);
  if (nt + nv + ntr > kNumImages)
    throw std::invalid_argument("dsprites: train_size + valid_size + test_size = " +
                                std::to_string(nt + nv + ntr) + " exceeds the 737280 images of the grid");
  const auto& o = split_order();
  SplitIndices s;
  s.test.assign(o.begin(), o.begin() + std::ptrdiff_t(nt));
  s.valid.assign(o.begin() + std::ptrdiff_t(nt), o.begin() + std::ptrdiff_t(nt + nv));
  s.train.assign(o.begin() + std::ptrdiff_t(nt + nv), o.begin() + std::ptrdiff_t(nt + nv + ntr));
  return s;
}

void write_cache(const std::string& path) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw DataError(tmp + ": cannot write the dSprites cache");
    uint8_t head[kHeaderBytes];
    std::memcpy(head, kMagic, 8);
    put_u32le(head + 8, uint32_t(kNumImages));
    put_u32le(head + 12, uint32_t(kImageSide));
    put_u32le(head + 16, uint32_t(kImageSide));
    f.write(reinterpret_cast<const char*>(head), kHeaderBytes);
    std::vector<uint8_t> pixels(kImageDim), packed(kPackedBytes);
    for (size_t i = 0; i < kNumImages; ++i) {
      render(classes_of(i), pixels.data());
      pack(pixels.data(), packed.data());
      f.write(reinterpret_cast<const char*>(packed.data()), std::streamsize(kPackedBytes));
    }
    f.flush();
    if (!f) throw DataError(tmp + ": write failed (disk full?)");
  }
  if (FILE* fp = std::fopen(tmp.c_str(), "rb")) {  // data on disk before the rename
    ::fsync(fileno(fp));
    std::fclose(fp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw DataError(path + ": cannot rename " + tmp + " into place (" + ec.message() + ")");
}

void ensure_cache(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    const auto parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    write_cache(path);
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) detail::fail(path, "unreadable dSprites cache", "a readable file", "cannot open");
  check_cache(path, f);
}

Splits load(const DataSpec& spec) {
  if (spec.binarize != "none")
    throw std::invalid_argument("dsprites is already binary: binarize must be none (or auto), found " +
                                spec.binarize);
  const SplitIndices idx = split_indices(spec.train_size, spec.valid_size, spec.test_size);
  Splits s;
  s.train = empty_images(idx.train.size());
  s.valid = empty_images(idx.valid.size());
  s.test = empty_images(idx.test.size());
  const std::pair<Images*, const std::vector<uint32_t>*> parts[] = {{&s.test, &idx.test},
                                                                    {&s.valid, &idx.valid},
                                                                    {&s.train, &idx.train}};
  if (!spec.dsprites_cache.empty()) {
    ensure_cache(spec.dsprites_cache);
    std::ifstream f(spec.dsprites_cache, std::ios::binary);
    std::vector<uint8_t> packed(kPackedBytes);
    for (auto [images, indices] : parts)
      for (size_t i = 0; i < indices->size(); ++i) {
        f.seekg(std::streamoff(kHeaderBytes + uint64_t((*indices)[i]) * kPackedBytes));
        if (!f.read(reinterpret_cast<char*>(packed.data()), std::streamsize(kPackedBytes)))
          detail::fail(spec.dsprites_cache, "read failed at image " + std::to_string((*indices)[i]),
                       "a complete cache", "a short read");
        unpack(packed.data(), images->pixels.data() + i * kImageDim);
      }
    s.files.emplace_back(spec.dsprites_cache, sha256_file(spec.dsprites_cache));
  } else {
    std::string all;  // the splits bit-packed, test first (1/8 of the bytes to hash)
    std::vector<uint8_t> packed(kPackedBytes);
    for (auto [images, indices] : parts)
      for (size_t i = 0; i < indices->size(); ++i) {
        uint8_t* px = images->pixels.data() + i * kImageDim;
        render(classes_of((*indices)[i]), px);
        pack(px, packed.data());
        all.append(reinterpret_cast<const char*>(packed.data()), kPackedBytes);
      }
    // Nothing was read from disk: the checksum of what was rendered stands in for a file's.
    s.files.emplace_back("dsprites:rendered", sha256_hex(all));
  }
  s.train.source = "dsprites/train";
  s.valid.source = s.valid.n > 0 ? "dsprites/valid" : "";
  s.test.source = "dsprites/test";
  if (s.valid.n == 0) s.valid = Images{};
  return s;
}

}  // namespace vae::data::dsprites
