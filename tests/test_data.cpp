// lib/data: the readers on small files written here, their error messages,
// load()'s splits and protocols, and the real data sets in ../shared/data.
#include <zlib.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "data/dataset.hpp"
#include "test_paths.hpp"

namespace fs = std::filesystem;
using namespace vae::data;
using Bytes = std::vector<uint8_t>;
using Catch::Contains;

// The error is a DataError and its one-line message names the file and the problem.
#define REQUIRE_DATA_ERROR(expr, path, problem)                                                            \
  do {                                                                                                     \
    REQUIRE_THROWS_AS(expr, DataError);                                                                    \
    REQUIRE_THROWS_WITH(expr,                                                                              \
                        Contains(std::string(path)) && Contains(std::string(problem)) && !Contains("\n")); \
  } while (0)

namespace {

// A fresh folder under the system temp dir, removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() / ("vae_test_data_" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

void write_gz(const std::string& path, const Bytes& bytes) {
  gzFile f = gzopen(path.c_str(), "wb9");
  REQUIRE(f != nullptr);
  REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

Bytes read_raw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Bytes text_bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

void put_be32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

// Deterministic, varied pixel values for image i, pixel k.
uint8_t pattern(size_t i, size_t k) { return static_cast<uint8_t>((i * 31 + k * 7 + i * k) % 256); }

Bytes pattern_pixels(size_t n, size_t dim, size_t first = 0) {
  Bytes px;
  for (size_t i = first; i < first + n; ++i)
    for (size_t k = 0; k < dim; ++k) px.push_back(pattern(i, k));
  return px;
}

Bytes idx_images(uint32_t n, uint32_t rows, uint32_t cols, const Bytes& pixels, uint32_t magic = 2051) {
  Bytes out;
  for (uint32_t v : {magic, n, rows, cols}) put_be32(out, v);
  out.insert(out.end(), pixels.begin(), pixels.end());
  return out;
}

Bytes idx_labels(const Bytes& labels) {
  Bytes out;
  put_be32(out, 2049);
  put_be32(out, static_cast<uint32_t>(labels.size()));
  out.insert(out.end(), labels.begin(), labels.end());
  return out;
}

// 0/1 pixels for .amat line i.
Bytes binary_pixels(size_t n, size_t first = 0) {
  Bytes px;
  for (size_t i = first; i < first + n; ++i)
    for (size_t k = 0; k < 784; ++k) px.push_back((i * 5 + k * 3 + k / 28) % 7 < 2);
  return px;
}

std::string amat_text(const Bytes& px) {
  std::string s;
  for (size_t i = 0; i < px.size(); ++i) {
    s += static_cast<char>('0' + px[i]);
    s += (i % 784 == 783) ? '\n' : ' ';
  }
  return s;
}

// A minimal MATLAB v5 writer: enough to build files the reader must accept or reject.
struct MatWriter {
  bool big_endian = false;

  void u32(Bytes& out, uint32_t v) const {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (big_endian ? 24 - 8 * i : 8 * i)));
  }
  Bytes header(const std::string& text = "MATLAB 5.0 MAT-file, Platform: test",
               uint16_t version = 0x0100) const {
    Bytes h(128, ' ');
    std::copy(text.begin(), text.end(), h.begin());
    h[124] = static_cast<uint8_t>(big_endian ? version >> 8 : version & 0xff);
    h[125] = static_cast<uint8_t>(big_endian ? version & 0xff : version >> 8);
    h[126] = big_endian ? 'M' : 'I';
    h[127] = big_endian ? 'I' : 'M';
    return h;
  }
  // A data element, padded to 8 bytes; small format when it fits in 4 bytes.
  Bytes element(uint32_t type, const Bytes& data, bool pad = true) const {
    Bytes out;
    if (data.size() <= 4 && type != 14 && type != 15) {
      u32(out, static_cast<uint32_t>(data.size()) << 16 | type);
      out.insert(out.end(), data.begin(), data.end());
      out.resize(8, 0);
      return out;
    }
    u32(out, type);
    u32(out, static_cast<uint32_t>(data.size()));
    out.insert(out.end(), data.begin(), data.end());
    if (pad) out.resize((out.size() + 7) / 8 * 8, 0);
    return out;
  }
  // miMATRIX with array flags, dimensions, name and real part (of type data_type).
  Bytes matrix(const std::string& name, uint32_t cls, const std::vector<uint32_t>& dims, uint32_t data_type,
               const Bytes& data) const {
    Bytes flags, dim_bytes, body;
    u32(flags, cls);
    u32(flags, 0);
    for (uint32_t d : dims) u32(dim_bytes, d);
    for (const Bytes& e :
         {element(6, flags), element(5, dim_bytes), element(1, text_bytes(name)), element(data_type, data)})
      body.insert(body.end(), e.begin(), e.end());
    return element(14, body);
  }
  Bytes compressed(const Bytes& inner) const {
    uLongf size = compressBound(inner.size());
    Bytes z(size);
    REQUIRE(compress2(z.data(), &size, inner.data(), inner.size(), 6) == Z_OK);
    z.resize(size);
    return element(15, z, false);
  }
};

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// 560 x n uint8 in MATLAB's column-major order: column j is image j.
Bytes frey_columns(size_t n) { return pattern_pixels(n, 560); }

Bytes frey_mat(size_t n, const MatWriter& w = {}) {
  return concat({w.header(), w.matrix("ff", 9, {560, static_cast<uint32_t>(n)}, 2, frey_columns(n))});
}

// A fake MNIST folder: 12 train and 5 test images of 28x28 with labels i % 10.
void write_fake_mnist(const TempDir& dir, bool gz = true) {
  auto put = gz ? write_gz : write_file;
  const std::string ext = gz ? ".gz" : "";
  Bytes train_labels, test_labels;
  for (size_t i = 0; i < 12; ++i) train_labels.push_back(static_cast<uint8_t>(i % 10));
  for (size_t i = 0; i < 5; ++i) test_labels.push_back(static_cast<uint8_t>((i + 3) % 10));
  put(dir / ("train-images-idx3-ubyte" + ext), idx_images(12, 28, 28, pattern_pixels(12, 784)));
  put(dir / ("train-labels-idx1-ubyte" + ext), idx_labels(train_labels));
  put(dir / ("t10k-images-idx3-ubyte" + ext), idx_images(5, 28, 28, pattern_pixels(5, 784, 100)));
  put(dir / ("t10k-labels-idx1-ubyte" + ext), idx_labels(test_labels));
}

DataSpec spec_for(const std::string& dataset, const std::string& dir, const std::string& binarize = "none") {
  DataSpec spec;
  spec.dataset = dataset;
  spec.data_dir = dir;
  spec.binarize = binarize;
  return spec;
}

Bytes image_pixels(const Images& images, size_t first, size_t count) {
  return Bytes(images.pixels.begin() + static_cast<ptrdiff_t>(first * images.dim()),
               images.pixels.begin() + static_cast<ptrdiff_t>((first + count) * images.dim()));
}

double mean(const Bytes& px) {
  double sum = 0;
  for (uint8_t v : px) sum += v;
  return px.empty() ? 0.0 : sum / static_cast<double>(px.size());
}

bool all_binary(const Bytes& px) {
  return std::all_of(px.begin(), px.end(), [](uint8_t v) { return v <= 1; });
}

// The real data folder. Its absence fails the test: the suite always has its data sets
// (../shared/data beside the repository, or $VAE_DATA_DIR; Fashion-MNIST from the Debian
// package that scripts/setup.sh installs), and a test that checked nothing must not pass.
std::string real_dir(const std::string& dataset) {
  const std::string dir = default_data_dir(dataset);
  INFO("no data folder " << dir << " for " << dataset
                         << " (../shared/data beside the repository, $VAE_DATA_DIR, or scripts/setup.sh)");
  REQUIRE(fs::is_directory(dir));
  return dir;
}

// Each checksum load() returns equals the sha256 in the SOURCE.md next to the file.
void require_source_md_checksums(const Splits& s) {
  REQUIRE_FALSE(s.files.empty());
  for (const auto& [path, sha] : s.files) {
    std::ifstream md(fs::path(path).parent_path() / "SOURCE.md");
    REQUIRE(md.good());
    const std::string name = fs::path(path).filename().string();
    std::string line, row;
    while (std::getline(md, line))
      if (line.rfind("| " + name + " |", 0) == 0) row = line;
    INFO(path << " sha256 " << sha);
    REQUIRE_FALSE(row.empty());
    REQUIRE(sha.size() == 64);
    CHECK_THAT(row, Contains(sha));
  }
}

}  // namespace

// ---- readers on files written here -------------------------------------------

TEST_CASE("IDX images and labels read back exactly, raw and gzipped", "[data]") {
  TempDir dir;
  const Bytes px = pattern_pixels(3, 4 * 5);
  const Bytes labels = {7, 0, 9};
  write_file(dir / "img", idx_images(3, 4, 5, px));
  write_gz(dir / "img.gz", idx_images(3, 4, 5, px));
  write_file(dir / "lab", idx_labels(labels));
  write_gz(dir / "lab.gz", idx_labels(labels));
  for (const std::string name : {"img", "img.gz"}) {
    const Images im = read_idx_images(dir / name);
    CHECK(im.source == dir / name);
    CHECK(im.n == 3);
    CHECK(im.rows == 4);
    CHECK(im.cols == 5);
    CHECK(im.dim() == 20);
    CHECK(im.scale == 1.0f / 255.0f);
    CHECK(im.labels.empty());
    CHECK(im.pixels == px);
  }
  CHECK(read_idx_labels(dir / "lab") == labels);
  CHECK(read_idx_labels(dir / "lab.gz") == labels);

  // Concatenated gzip members are one stream, as gunzip reads them.
  const Bytes whole = idx_images(3, 4, 5, px);
  write_gz(dir / "head.gz", Bytes(whole.begin(), whole.begin() + 30));
  write_gz(dir / "tail.gz", Bytes(whole.begin() + 30, whole.end()));
  write_file(dir / "two.gz", concat({read_raw(dir / "head.gz"), read_raw(dir / "tail.gz")}));
  CHECK(read_idx_images(dir / "two.gz").pixels == px);
}

TEST_CASE(".amat files read back exactly, raw and gzipped", "[data]") {
  TempDir dir;
  const Bytes px = binary_pixels(4);
  write_file(dir / "a.amat", text_bytes(amat_text(px)));
  write_gz(dir / "a.amat.gz", text_bytes(amat_text(px)));
  for (const std::string name : {"a.amat", "a.amat.gz"}) {
    const Images im = read_amat(dir / name);
    CHECK(im.n == 4);
    CHECK(im.rows == 28);
    CHECK(im.cols == 28);
    CHECK(im.scale == 1.0f);
    CHECK(im.pixels == px);
  }
  // Tabs, repeated blanks, CRLF and a missing final newline are tolerated.
  std::string loose = amat_text(binary_pixels(2));
  loose.replace(1, 1, "\t  ");
  loose.insert(loose.find('\n'), "\r");
  loose.pop_back();
  write_file(dir / "loose.amat", text_bytes(loose));
  CHECK(read_amat(dir / "loose.amat").pixels == binary_pixels(2));
}

TEST_CASE("MATLAB v5 Frey Face files read back exactly", "[data]") {
  TempDir dir;
  const size_t n = 3;
  const Bytes columns = frey_columns(n);
  MatWriter le, be;
  be.big_endian = true;
  const Bytes ff = le.matrix("ff", 9, {560, n}, 2, columns);
  // Another variable first (a double with a long name), to be skipped.
  const Bytes other = le.matrix("other_variable", 6, {1, 1}, 9, Bytes(8, 0));
  write_file(dir / "plain.mat", concat({le.header(), other, ff}));
  write_file(dir / "compressed.mat", concat({le.header(), le.compressed(other), le.compressed(ff)}));
  write_file(dir / "big_endian.mat", frey_mat(n, be));
  write_gz(dir / "gzipped.mat.gz", frey_mat(n));
  for (const std::string name : {"plain.mat", "compressed.mat", "big_endian.mat", "gzipped.mat.gz"}) {
    INFO(name);
    const Images im = read_frey_face(dir / name);
    CHECK(im.n == n);
    CHECK(im.rows == 28);
    CHECK(im.cols == 20);
    CHECK(im.scale == 1.0f / 255.0f);
    CHECK(im.labels.empty());
    CHECK(im.pixels == columns);  // column j of ff is image j, row-major 28x20
  }
}

TEST_CASE("binarize_once is a seeded Bernoulli draw per pixel", "[data]") {
  Images im;
  im.n = 4;
  im.rows = 100;
  im.cols = 100;
  im.pixels.assign(4 * 10000, 0);
  std::fill(im.pixels.begin() + 10000, im.pixels.begin() + 20000, 255);
  std::fill(im.pixels.begin() + 20000, im.pixels.begin() + 30000, 128);
  std::fill(im.pixels.begin() + 30000, im.pixels.end(), 51);  // p = 0.2
  Images a = im, b = im, c = im;
  binarize_once(a, 1);
  binarize_once(b, 1);
  binarize_once(c, 2);
  CHECK(a.pixels == b.pixels);
  CHECK(a.pixels != c.pixels);
  CHECK(a.scale == 1.0f);
  REQUIRE(all_binary(a.pixels));
  CHECK(mean(image_pixels(a, 0, 1)) == 0.0);
  CHECK(mean(image_pixels(a, 1, 1)) == 1.0);
  CHECK(mean(image_pixels(a, 2, 1)) == Approx(128.0 / 255).margin(0.02));
  CHECK(mean(image_pixels(a, 3, 1)) == Approx(0.2).margin(0.02));
  // 0/1 data (scale 1) is left unchanged; a prefix is drawn the same as the whole.
  Images again = a;
  binarize_once(again, 7);
  CHECK(again.pixels == a.pixels);
  Images prefix = im;
  prefix.n = 3;
  prefix.pixels.resize(30000);
  binarize_once(prefix, 1);
  CHECK(prefix.pixels == image_pixels(a, 0, 3));
}

// ---- bad inputs -----------------------------------------------------------------

TEST_CASE("bad IDX and gzip files give one-line DataErrors", "[data]") {
  TempDir dir;
  const Bytes px = pattern_pixels(3, 784);
  const std::string missing = dir / "nope-idx3-ubyte";
  REQUIRE_DATA_ERROR(read_idx_images(missing), missing, "cannot open data file");

  const std::string labels_as_images = dir / "labels";
  write_file(labels_as_images, idx_labels({1, 2, 3}));
  REQUIRE_DATA_ERROR(read_idx_images(labels_as_images), labels_as_images,
                     "wrong magic number (expected 2051 (0x00000803) for IDX images, found 2049 (0x00000801)");
  const std::string images_as_labels = dir / "images";
  write_file(images_as_labels, idx_images(3, 28, 28, px));
  REQUIRE_DATA_ERROR(read_idx_labels(images_as_labels), images_as_labels, "wrong magic number");

  const std::string truncated = dir / "truncated";
  write_file(truncated, idx_images(3, 28, 28, Bytes(px.begin(), px.end() - 10)));
  REQUIRE_DATA_ERROR(
      read_idx_images(truncated), truncated,
      "truncated file, header says 3 images of 28x28 (expected 2352 payload bytes, found 2342 bytes)");
  const std::string short_labels = dir / "short_labels";
  Bytes sl = idx_labels({1, 2, 3});
  sl.pop_back();
  write_file(short_labels, sl);
  REQUIRE_DATA_ERROR(read_idx_labels(short_labels), short_labels,
                     "header says 3 labels (expected 3 payload bytes, found 2");
  const std::string trailing = dir / "trailing";
  write_file(trailing, idx_images(2, 28, 28, px));
  REQUIRE_DATA_ERROR(read_idx_images(trailing), trailing, "trailing data after the payload");
  const std::string header_only = dir / "header_only";
  write_file(header_only, Bytes{0, 0, 8, 3, 0, 0});
  REQUIRE_DATA_ERROR(read_idx_images(header_only), header_only,
                     "truncated IDX header (expected 16 header bytes, found 6 bytes");
  const std::string huge = dir / "huge";
  write_file(huge, idx_images(0xffffffffu, 0xffffffffu, 0xffffffffu, {}));
  REQUIRE_DATA_ERROR(read_idx_images(huge), huge, "truncated file");

  // Damaged gzip: a flipped byte (bad block or CRC), a cut-off stream, not gzip at all.
  write_gz(dir / "good.gz", idx_images(3, 28, 28, px));
  Bytes gz = read_raw(dir / "good.gz");
  Bytes flipped = gz;
  for (size_t i = 20; i < flipped.size() - 8; i += 97) flipped[i] ^= 0x55;
  const std::string corrupt = dir / "corrupt.gz";
  write_file(corrupt, flipped);
  REQUIRE_DATA_ERROR(read_idx_images(corrupt), corrupt,
                     "corrupt gzip stream (expected a complete gzip stream, found zlib error");
  const std::string cut = dir / "cut.gz";
  write_file(cut, Bytes(gz.begin(), gz.begin() + static_cast<ptrdiff_t>(gz.size() / 2)));
  REQUIRE_DATA_ERROR(read_idx_images(cut), cut, "unexpected end of data");
  const std::string fake = dir / "fake.gz";
  write_file(fake, idx_images(3, 28, 28, px));
  REQUIRE_DATA_ERROR(read_idx_images(fake), fake, "not a gzip file (expected magic bytes 1f 8b");
  Bytes garbage = gz;
  garbage.push_back('x');
  const std::string after = dir / "garbage_after.gz";
  write_file(after, garbage);
  REQUIRE_DATA_ERROR(read_idx_images(after), after, "1 trailing bytes");
}

TEST_CASE("bad .amat files give one-line DataErrors with the line number", "[data]") {
  TempDir dir;
  std::string text = amat_text(binary_pixels(3));
  const size_t line2 = text.find('\n') + 1;

  std::string bad_value = text;
  bad_value[line2 + 2 * 10] = '2';
  write_file(dir / "value.amat", text_bytes(bad_value));
  REQUIRE_DATA_ERROR(read_amat(dir / "value.amat"), dir / "value.amat",
                     "line 2: non-binary value (expected 0 or 1, found \"2\")");
  std::string real_value = text;
  real_value.replace(line2, 1, "0.5");
  write_file(dir / "real.amat", text_bytes(real_value));
  REQUIRE_DATA_ERROR(read_amat(dir / "real.amat"), dir / "real.amat",
                     "line 2: non-binary value (expected 0 or 1, found \"0.5\")");

  std::string short_line = text;
  short_line.erase(line2, 2);
  write_file(dir / "short.amat", text_bytes(short_line));
  REQUIRE_DATA_ERROR(read_amat(dir / "short.amat"), dir / "short.amat",
                     "line 2: wrong number of values (expected 784, found 783)");
  std::string long_line = text;
  long_line.insert(text.size() - 1, " 1");
  write_file(dir / "long.amat", text_bytes(long_line));
  REQUIRE_DATA_ERROR(read_amat(dir / "long.amat"), dir / "long.amat",
                     "line 3: wrong number of values (expected 784, found 785)");
  std::string blank = text;
  blank.insert(line2, "\n");
  write_gz(dir / "blank.amat.gz", text_bytes(blank));
  REQUIRE_DATA_ERROR(read_amat(dir / "blank.amat.gz"), dir / "blank.amat.gz",
                     "line 2: wrong number of values (expected 784, found 0)");
  write_file(dir / "empty.amat", Bytes());
  REQUIRE_DATA_ERROR(read_amat(dir / "empty.amat"), dir / "empty.amat", "no images");
}

TEST_CASE("bad MAT-files give one-line DataErrors", "[data]") {
  TempDir dir;
  MatWriter w;
  auto put = [&](const std::string& name, const Bytes& bytes) {
    write_file(dir / name, bytes);
    return dir / name;
  };
  const std::string text = put("text.mat", text_bytes(std::string(200, 'x')));
  REQUIRE_DATA_ERROR(read_frey_face(text), text, "not a MATLAB v5 MAT-file");
  const std::string tiny = put("tiny.mat", text_bytes("MATLAB"));
  REQUIRE_DATA_ERROR(read_frey_face(tiny), tiny, "not a MATLAB v5 MAT-file (expected a 128-byte");
  const std::string v73 = put("v73.mat", concat({w.header("MATLAB 7.3 MAT-file, HDF5", 0x0200), Bytes(64, 0)}));
  REQUIRE_DATA_ERROR(read_frey_face(v73), v73, "MATLAB 7.3 (HDF5) MAT-files are not supported");

  const Bytes columns = frey_columns(2);
  const std::string no_ff = put("no_ff.mat", concat({w.header(), w.matrix("gg", 9, {560, 2}, 2, columns),
                                                     w.compressed(w.matrix("X", 6, {1, 1}, 9, Bytes(8, 0)))}));
  REQUIRE_DATA_ERROR(read_frey_face(no_ff), no_ff,
                     "no variable ff (expected a variable named ff, found variables gg, X)");
  const std::string empty = put("empty.mat", w.header());
  REQUIRE_DATA_ERROR(read_frey_face(empty), empty, "found no variables");
  const std::string shape = put("shape.mat", concat({w.header(), w.matrix("ff", 9, {2, 560}, 2, columns)}));
  REQUIRE_DATA_ERROR(
      read_frey_face(shape), shape,
      "variable ff has the wrong shape (expected 560 x N (one 28x20 image per column), found 2 x 560)");
  const std::string three_d = put("3d.mat", concat({w.header(), w.matrix("ff", 9, {560, 1, 2}, 2, columns)}));
  REQUIRE_DATA_ERROR(read_frey_face(three_d), three_d, "found 560 x 1 x 2");
  const std::string dbl = put("double.mat",
                              concat({w.header(), w.matrix("ff", 6, {560, 2}, 9, Bytes(560 * 2 * 8, 0))}));
  REQUIRE_DATA_ERROR(read_frey_face(dbl), dbl, "variable ff has the wrong type (expected uint8, found double)");
  const std::string short_data = put("short_data.mat",
                                     concat({w.header(), w.matrix("ff", 9, {560, 3}, 2, columns)}));
  REQUIRE_DATA_ERROR(
      read_frey_face(short_data), short_data,
      "variable ff has bad data (expected 1680 bytes of miUINT8 for 560 x 3, found 1120 bytes of miUINT8)");

  const Bytes good = frey_mat(2);
  const std::string cut = put("cut.mat", Bytes(good.begin(), good.end() - 100));
  REQUIRE_DATA_ERROR(read_frey_face(cut), cut,
                     "truncated MAT-file (expected 1168 bytes of miMATRIX at offset 136, found 1068 bytes)");
  Bytes z = concat({w.header(), w.compressed(w.matrix("ff", 9, {560, 2}, 2, columns))});
  for (size_t i = 140; i < z.size(); i += 50) z[i] ^= 0xa5;
  const std::string corrupt = put("corrupt.mat", z);
  REQUIRE_DATA_ERROR(read_frey_face(corrupt), corrupt, "corrupt zlib stream");
}

// ---- load() on folders written here ------------------------------------------------

TEST_CASE("load splits, sizes and protocols on small MNIST-format folders", "[data]") {
  TempDir dir;
  write_fake_mnist(dir);
  const std::string d = dir.path.string();

  Splits all = load(spec_for("mnist", d));
  CHECK(all.train.source == "mnist/train");
  CHECK(all.test.source == "mnist/test");
  CHECK(all.train.n == 12);
  CHECK(all.valid.n == 0);
  CHECK(all.test.n == 5);
  CHECK(all.train.pixels == pattern_pixels(12, 784));
  CHECK(all.test.pixels == pattern_pixels(5, 784, 100));
  CHECK(all.train.labels == Bytes{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1});
  CHECK(all.test.labels == Bytes{3, 4, 5, 6, 7});
  REQUIRE(all.files.size() == 4);
  CHECK(all.files[0].first == dir / "train-images-idx3-ubyte.gz");
  CHECK(all.files[3].first == dir / "t10k-labels-idx1-ubyte.gz");
  CHECK(all.files[0].second.size() == 64);

  // Hold-out from the end of train, then the first train_size / test_size.
  DataSpec spec = spec_for("mnist", d);
  spec.valid_size = 3;
  spec.train_size = 4;
  spec.test_size = 2;
  Splits s = load(spec);
  CHECK(s.valid.source == "mnist/valid");
  CHECK(s.valid.n == 3);
  CHECK(s.valid.pixels == pattern_pixels(3, 784, 9));
  CHECK(s.valid.labels == Bytes{9, 0, 1});
  CHECK(s.train.n == 4);
  CHECK(s.train.pixels == pattern_pixels(4, 784));
  CHECK(s.train.labels == Bytes{0, 1, 2, 3});
  CHECK(s.test.n == 2);
  CHECK(s.test.pixels == pattern_pixels(2, 784, 100));
  CHECK(s.test.labels == Bytes{3, 4});

  // Dynamic: test/valid binarized once with the documented seeds, train untouched.
  spec.binarize = "dynamic";
  Splits dyn = load(spec);
  CHECK(dyn.train.pixels == s.train.pixels);
  CHECK(dyn.train.scale == 1.0f / 255.0f);
  CHECK(dyn.test.scale == 1.0f);
  CHECK(dyn.valid.scale == 1.0f);
  Images expect_test = s.test, expect_valid = s.valid;
  binarize_once(expect_test, kTestBinarizationSeed);
  binarize_once(expect_valid, kValidBinarizationSeed);
  CHECK(dyn.test.pixels == expect_test.pixels);
  CHECK(dyn.valid.pixels == expect_valid.pixels);
  CHECK(dyn.test.labels == s.test.labels);
  spec.test_size = 0;  // the first two test images are drawn the same whatever test_size
  CHECK(image_pixels(load(spec).test, 0, 2) == dyn.test.pixels);

  // Bad settings are std::invalid_argument, not DataError.
  DataSpec bad = spec_for("mnist", d);
  bad.train_size = 13;
  CHECK_THROWS_AS(load(bad), std::invalid_argument);
  bad = spec_for("mnist", d);
  bad.valid_size = 12;
  CHECK_THROWS_WITH(load(bad), Contains("valid_size 12 leaves no training images"));
  bad = spec_for("mnist", d);
  bad.test_size = 6;
  CHECK_THROWS_WITH(load(bad), Contains("test_size 6 exceeds the 5 test images"));
  bad = spec_for("mnist", d);
  bad.valid_size = -1;
  CHECK_THROWS_AS(load(bad), std::invalid_argument);
  CHECK_THROWS_WITH(load(spec_for("mnist", d, "fixed")),
                    Contains("binarize = fixed needs dataset binarized-mnist"));
  CHECK_THROWS_WITH(load(spec_for("mnist", d, "sometimes")), Contains("unknown binarize protocol"));
  CHECK_THROWS_WITH(load(spec_for("cifar", d)), Contains("unknown dataset 'cifar'"));
}

TEST_CASE("load finds .gz before raw files and names what is missing or wrong", "[data]") {
  TempDir gz, raw, both;
  write_fake_mnist(gz, true);
  write_fake_mnist(raw, false);
  write_fake_mnist(both, true);
  write_fake_mnist(both, false);
  CHECK(data_file_paths(spec_for("mnist", raw.path.string()))[1] == raw / "train-labels-idx1-ubyte");
  CHECK(data_file_paths(spec_for("fashion-mnist", both.path.string()))[2] ==
        both / "t10k-images-idx3-ubyte.gz");
  CHECK(load(spec_for("mnist", raw.path.string())).test.pixels ==
        load(spec_for("mnist", gz.path.string())).test.pixels);

  TempDir empty;
  REQUIRE_DATA_ERROR(load(spec_for("mnist", empty.path.string())), empty / "train-images-idx3-ubyte",
                     "missing data file (expected train-images-idx3-ubyte.gz or train-images-idx3-ubyte in " +
                         empty.path.string() + ", found neither");
  REQUIRE_DATA_ERROR(data_file_paths(spec_for("frey-face", empty / "absent")),
                     "frey_rawface.mat.gz or frey_rawface.mat", "found no folder " + (empty / "absent"));

  // Labels that do not match the images, images that are not 28x28, labels above 9.
  fs::remove(gz / "t10k-labels-idx1-ubyte.gz");
  write_file(gz / "t10k-labels-idx1-ubyte", idx_labels({1, 2, 3}));
  REQUIRE_DATA_ERROR(load(spec_for("mnist", gz.path.string())), gz / "t10k-labels-idx1-ubyte",
                     "label count does not match the images (expected 5 labels");
  write_file(gz / "t10k-labels-idx1-ubyte", idx_labels({1, 2, 3, 4, 10}));
  REQUIRE_DATA_ERROR(load(spec_for("mnist", gz.path.string())), gz / "t10k-labels-idx1-ubyte",
                     "label out of range at index 4 (expected 0..9, found 10)");
  write_gz(gz / "train-images-idx3-ubyte.gz", idx_images(12, 32, 32, pattern_pixels(12, 32 * 32)));
  REQUIRE_DATA_ERROR(load(spec_for("fashion-mnist", gz.path.string())), gz / "train-images-idx3-ubyte.gz",
                     "wrong image size (expected 28x28, found 32x32)");
}

TEST_CASE("load on small binarized-MNIST and Frey Face folders", "[data]") {
  TempDir bin;
  write_gz(bin / "binarized_mnist_train.amat.gz", text_bytes(amat_text(binary_pixels(6))));
  write_file(bin / "binarized_mnist_valid.amat", text_bytes(amat_text(binary_pixels(2, 50))));
  write_file(bin / "binarized_mnist_test.amat", text_bytes(amat_text(binary_pixels(3, 90))));
  const std::string d = bin.path.string();
  Splits s = load(spec_for("binarized-mnist", d, "fixed"));
  CHECK(s.train.pixels == binary_pixels(6));
  CHECK(s.valid.pixels == binary_pixels(2, 50));
  CHECK(s.test.pixels == binary_pixels(3, 90));
  CHECK(s.valid.source == "binarized-mnist/valid");
  CHECK(s.files.size() == 3);
  CHECK(s.train.scale == 1.0f);
  CHECK(s.test.labels.empty());

  // valid_size > 0: hold out from train instead, and the valid file is not read.
  DataSpec spec = spec_for("binarized-mnist", d, "fixed");
  spec.valid_size = 2;
  CHECK(data_file_paths(spec) ==
        std::vector<std::string>{bin / "binarized_mnist_train.amat.gz", bin / "binarized_mnist_test.amat"});
  s = load(spec);
  CHECK(s.train.pixels == binary_pixels(4));
  CHECK(s.valid.pixels == binary_pixels(2, 4));
  CHECK(s.files.size() == 2);

  TempDir frey;
  write_file(frey / "frey_rawface.mat", frey_mat(20));
  DataSpec fs_spec = spec_for("frey-face", frey.path.string());
  Splits f = load(fs_spec);
  CHECK(f.train.n == 18);
  CHECK(f.test.n == 2);  // the last n/10 frames
  CHECK(f.valid.n == 0);
  const Bytes frames = frey_columns(20);
  CHECK(f.train.pixels == Bytes(frames.begin(), frames.begin() + 18 * 560));
  CHECK(f.test.pixels == Bytes(frames.begin() + 18 * 560, frames.end()));
  CHECK(f.test.scale == 1.0f / 255.0f);
  CHECK(f.test.source == "frey-face/test");
  fs_spec.valid_size = 3;
  fs_spec.binarize = "dynamic";
  f = load(fs_spec);
  CHECK(f.train.n == 15);
  CHECK(f.valid.n == 3);
  CHECK(f.test.n == 2);
  CHECK(all_binary(f.test.pixels));
}

TEST_CASE("default_data_dir follows VAE_DATA_DIR, else the repository's shared data", "[data]") {
  const char* saved = std::getenv("VAE_DATA_DIR");
  const std::string saved_value = saved ? saved : "";
  ::setenv("VAE_DATA_DIR", "/some/where", 1);
  CHECK(default_data_dir("mnist") == "/some/where/mnist");
  CHECK(default_data_dir("fashion-mnist") == "/some/where/fashion_mnist");
  CHECK(default_data_dir("binarized-mnist") == "/some/where/binarized_mnist");
  CHECK(default_data_dir("frey-face") == "/some/where/freyface");
  ::unsetenv("VAE_DATA_DIR");
  CHECK(default_data_dir("fashion-mnist") == "/usr/share/datasets/fashion-mnist");
  const std::string mnist = default_data_dir("mnist");
  CHECK(
      mnist ==
      (fs::path(vae::testing::source_dir()) / ".." / "shared" / "data" / "mnist").lexically_normal().string());
  CHECK_THAT(mnist, !Contains(".."));
  CHECK_THROWS_AS(default_data_dir("svhn"), std::invalid_argument);
  if (saved) ::setenv("VAE_DATA_DIR", saved_value.c_str(), 1);
}

// ---- the real data sets -------------------------------------------------------

TEST_CASE("real MNIST: counts, pixel mean, labels, checksums", "[data]") {
  real_dir("mnist");
  const Splits s = load(spec_for("mnist", ""));
  REQUIRE(s.train.n == 60000);
  REQUIRE(s.test.n == 10000);
  CHECK(s.train.rows == 28);
  CHECK(s.train.cols == 28);
  CHECK(s.valid.n == 0);
  CHECK(s.train.pixels.size() == 60000u * 784);
  CHECK(mean(s.train.pixels) == Approx(33.3184).margin(1e-4));
  CHECK(mean(s.test.pixels) == Approx(33.7912).margin(1e-4));
  CHECK(*std::max_element(s.train.pixels.begin(), s.train.pixels.end()) == 255);
  std::vector<int> train_counts(10), test_counts(10);
  for (uint8_t l : s.train.labels) ++train_counts[l];
  for (uint8_t l : s.test.labels) ++test_counts[l];
  CHECK(train_counts == std::vector<int>{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949});
  CHECK(test_counts == std::vector<int>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});
  REQUIRE(s.files.size() == 4);
  require_source_md_checksums(s);
}

TEST_CASE("real MNIST, dynamic protocol with sizes: fixed 0/1 test set", "[data]") {
  real_dir("mnist");
  DataSpec spec = spec_for("mnist", "", "dynamic");
  spec.valid_size = 10000;
  spec.train_size = 20000;
  spec.test_size = 6000;
  const Splits a = load(spec);
  CHECK(a.train.n == 20000);
  CHECK(a.valid.n == 10000);
  CHECK(a.test.n == 6000);
  CHECK(a.train.labels.size() == 20000);
  CHECK(a.valid.labels.size() == 10000);
  CHECK(a.train.scale == 1.0f / 255.0f);
  REQUIRE(all_binary(a.test.pixels));
  REQUIRE(all_binary(a.valid.pixels));
  spec.valid_size = 0;
  spec.train_size = 1;
  spec.test_size = 0;
  const Splits b = load(spec);
  CHECK(b.test.n == 10000);
  CHECK(image_pixels(b.test, 0, 6000) == a.test.pixels);  // same draw every run
  // Bernoulli(p) averages to p: within a few standard errors of 33.7912 / 255.
  CHECK(mean(b.test.pixels) == Approx(33.7912 / 255).margin(1e-3));
}

TEST_CASE("real binarized MNIST: 50000/10000/10000, fraction of ones, checksums", "[data]") {
  real_dir("binarized-mnist");
  const Splits s = load(spec_for("binarized-mnist", "", "fixed"));
  REQUIRE(s.train.n == 50000);
  REQUIRE(s.valid.n == 10000);
  REQUIRE(s.test.n == 10000);
  CHECK(s.train.dim() == 784);
  CHECK(s.train.scale == 1.0f);
  CHECK(all_binary(s.train.pixels));
  CHECK(mean(s.train.pixels) == Approx(0.13056).margin(1e-5));
  CHECK(mean(s.valid.pixels) == Approx(0.13113).margin(1e-5));
  CHECK(mean(s.test.pixels) == Approx(0.13251).margin(1e-5));
  REQUIRE(s.files.size() == 3);
  require_source_md_checksums(s);
}

TEST_CASE("real Frey Face: 1965 frames, range, mean, split, checksum", "[data]") {
  real_dir("frey-face");
  const Images all = read_frey_face(default_data_dir("frey-face") + "/frey_rawface.mat");
  REQUIRE(all.n == 1965);
  CHECK(all.rows == 28);
  CHECK(all.cols == 20);
  CHECK(*std::min_element(all.pixels.begin(), all.pixels.end()) == 8);
  CHECK(*std::max_element(all.pixels.begin(), all.pixels.end()) == 238);
  CHECK(mean(all.pixels) == Approx(154.46).margin(0.005));

  DataSpec spec = spec_for("frey-face", "");
  spec.valid_size = 100;
  const Splits s = load(spec);
  CHECK(s.train.n == 1669);
  CHECK(s.valid.n == 100);
  CHECK(s.test.n == 196);
  CHECK(image_pixels(s.test, 0, 196) == image_pixels(all, 1769, 196));
  CHECK(image_pixels(s.valid, 0, 100) == image_pixels(all, 1669, 100));
  CHECK(s.test.scale == 1.0f / 255.0f);
  REQUIRE(s.files.size() == 1);
  require_source_md_checksums(s);
}

TEST_CASE("real Fashion-MNIST from the Debian package", "[data]") {
  real_dir("fashion-mnist");
  const Splits s = load(spec_for("fashion-mnist", ""));
  REQUIRE(s.train.n == 60000);
  REQUIRE(s.test.n == 10000);
  CHECK(s.train.dim() == 784);
  std::vector<int> counts(10);
  for (uint8_t l : s.train.labels) ++counts[l];
  CHECK(counts == std::vector<int>(10, 6000));
  CHECK(s.files.size() == 4);
}
