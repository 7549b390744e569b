// Whole-file reading with transparent gunzip (zlib), for every data reader.
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "data/dataset.hpp"
#include "data/detail.hpp"

namespace vae::data::detail {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool has_gzip_magic(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

struct Inflater {
  z_stream zs{};
  bool ready = false;
  ~Inflater() {
    if (ready) inflateEnd(&zs);
  }
};

}  // namespace

std::vector<uint8_t> inflate_bytes(const uint8_t* data, size_t size, bool gzip, size_t size_hint,
                                   const std::string& path) {
  const std::string what = gzip ? "corrupt gzip stream" : "corrupt zlib stream";
  const std::string expected = gzip ? "a complete gzip stream" : "a complete zlib stream";
  Inflater inf;
  // 16 + MAX_WBITS: gzip wrapper with CRC check; MAX_WBITS: zlib wrapper.
  if (inflateInit2(&inf.zs, gzip ? 16 + MAX_WBITS : MAX_WBITS) != Z_OK)
    fail(path, "cannot start zlib", "inflateInit2 to succeed", inf.zs.msg ? inf.zs.msg : "an error");
  inf.ready = true;

  std::vector<uint8_t> out(size_hint > 0 ? size_hint : size * 4 + 1024);
  size_t in_pos = 0, out_pos = 0;
  for (;;) {
    if (out_pos == out.size()) out.resize(out.size() * 2);
    // avail_in/avail_out are 32-bit: feed at most 1 GiB per call.
    const size_t in_chunk = std::min<size_t>(size - in_pos, size_t{1} << 30);
    const size_t out_chunk = std::min<size_t>(out.size() - out_pos, size_t{1} << 30);
    inf.zs.next_in = const_cast<Bytef*>(data + in_pos);
    inf.zs.avail_in = static_cast<uInt>(in_chunk);
    inf.zs.next_out = out.data() + out_pos;
    inf.zs.avail_out = static_cast<uInt>(out_chunk);
    const int rc = inflate(&inf.zs, Z_NO_FLUSH);
    in_pos += in_chunk - inf.zs.avail_in;
    out_pos += out_chunk - inf.zs.avail_out;
    if (rc == Z_STREAM_END) {
      // gzip allows concatenated members (as `cat a.gz b.gz` makes).
      if (gzip && size - in_pos >= 2 && data[in_pos] == 0x1f && data[in_pos + 1] == 0x8b) {
        inflateReset(&inf.zs);
        continue;
      }
      if (in_pos != size)
        fail(path, what, "nothing after the end of the stream",
             std::to_string(size - in_pos) + " trailing bytes");
      break;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && in_pos == size)
      fail(path, what, expected,
           "unexpected end of data after " + std::to_string(size) + " compressed bytes (truncated)");
    if (rc == Z_BUF_ERROR) continue;  // output full: grow and go on
    fail(path, what, expected, std::string("zlib error: ") + (inf.zs.msg ? inf.zs.msg : zError(rc)));
  }
  out.resize(out_pos);
  return out;
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) fail(path, "cannot open data file", "a readable file", std::strerror(errno));
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> chunk(size_t{1} << 20);
  size_t n;
  while ((n = std::fread(chunk.data(), 1, chunk.size(), f.get())) > 0)
    bytes.insert(bytes.end(), chunk.data(), chunk.data() + n);
  if (std::ferror(f.get())) fail(path, "cannot read data file", "a readable file", std::strerror(errno));

  const bool named_gz = ends_with(path, ".gz");
  if (!has_gzip_magic(bytes)) {
    if (named_gz)
      fail(path, "not a gzip file", "magic bytes 1f 8b",
           bytes.size() < 2 ? std::to_string(bytes.size()) + " bytes in all"
                            : quoted(reinterpret_cast<const char*>(bytes.data()), 2));
    return bytes;
  }
  // The gzip trailer's ISIZE is the uncompressed size mod 2^32: a good first guess.
  size_t hint = 0;
  if (bytes.size() >= 18) {
    const uint8_t* t = bytes.data() + bytes.size() - 4;
    hint = size_t{t[0]} | size_t{t[1]} << 8 | size_t{t[2]} << 16 | size_t{t[3]} << 24;
    if (hint > bytes.size() * size_t{1032}) hint = 0;  // deflate cannot expand this much
  }
  return inflate_bytes(bytes.data(), bytes.size(), true, hint + 1, path);
}

}  // namespace vae::data::detail
