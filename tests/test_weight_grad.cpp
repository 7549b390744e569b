// A linear layer's weight gradient (nn/linear.hpp: the kernel of tensor/weight_grad.hpp where
// the build has it, OpenBLAS's gemm elsewhere) against dout^T in summed in double, over
// shapes that reach every strip height (1 to 6 rows), the vector tails, and rows longer than
// a strip; and, where the kernel is built, its numbers against the FMA chain it promises,
// bit for bit (the same on every CPU with AVX-512, whatever its tiling).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "nn/linear.hpp"
#include "tensor/weight_grad.hpp"

namespace test_weight_grad {

using namespace vae;

namespace {

struct Shape {
  std::size_t B, I, O;
};

// Batch, inputs (columns of dW), outputs (rows of dW): strips of 6 rows and 1 to 5 left, a
// row of 64 columns exactly, 16-column tails of every length, rows longer than one strip
// (1024 columns), a last strip of 1 column, and more rows than the kernel takes (300 > 64:
// OpenBLAS in every build).
const Shape kShapes[] = {{1, 1, 1},    {3, 15, 7},   {20, 64, 6},    {20, 65, 13},  {5, 17, 11}, {20, 784, 400},
                         {2, 1025, 5}, {7, 2100, 3}, {128, 200, 50}, {20, 50, 200}, {300, 40, 9}};

std::vector<float> uniform(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

}  // namespace

TEST_CASE("a linear layer's weight gradient is dout^T in, added to the gradient", "[weight_grad][linear]") {
  for (const Shape& s : kShapes) {
    DYNAMIC_SECTION("B " << s.B << ", in " << s.I << ", out " << s.O) {
      ParamLayout layout;
      const Linear l = Linear::make(layout, s.I, s.O);
      std::vector<float> P = uniform(layout.size, 1), G = uniform(layout.size, 2);
      const std::vector<float> G0 = G;
      std::vector<float> in = uniform(s.B * s.I, 3), dout = uniform(s.B * s.O, 4), ones(s.B, 1.0f);
      auto vin = mat(in.data(), s.B, s.I), vdout = mat(dout.data(), s.B, s.O);
      linear_layer_backward<float>(nullptr, vdout, vin, l, P.data(), G.data(), vec(ones.data(), s.B));
      double worst = 0;
      for (std::size_t o = 0; o < s.O; ++o)
        for (std::size_t i = 0; i < s.I; ++i) {
          double want = G0[l.w + o * s.I + i], scale = std::fabs(want);
          for (std::size_t b = 0; b < s.B; ++b) {
            want += double(dout[b * s.O + o]) * double(in[b * s.I + i]);
            scale += std::fabs(double(dout[b * s.O + o]) * double(in[b * s.I + i]));
          }
          worst = std::max(worst, std::fabs(double(G[l.w + o * s.I + i]) - want) / scale);
        }
      // float rounding of a sum of B + 1 terms, relative to the sum of their magnitudes
      CHECK(worst < 1e-6 * double(s.B + 1));
    }
  }
}

#if defined(__AVX512F__)
TEST_CASE("the weight-gradient kernel is the batch-ordered FMA chain, bit for bit", "[weight_grad]") {
  static_assert(kWeightGradKernel<float>);
  for (const Shape& s : kShapes) {
    DYNAMIC_SECTION("B " << s.B << ", in " << s.I << ", out " << s.O) {
      std::vector<float> in = uniform(s.B * s.I, 3), dout = uniform(s.B * s.O, 4);
      auto vin = mat(in.data(), s.B, s.I), vdout = mat(dout.data(), s.B, s.O);
      std::vector<float> got(s.O * s.I, std::nanf("")), seen(s.O * s.I, 0.0f);
      weight_grad_strips(vdout, vin, [&](std::size_t start, std::size_t n, float* g) {
        REQUIRE(start + n <= got.size());
        std::memcpy(got.data() + start, g, n * sizeof(float));
        for (std::size_t c = 0; c < n; ++c) seen[start + c] += 1.0f;
      });
      std::size_t differ = 0;
      for (std::size_t o = 0; o < s.O; ++o)
        for (std::size_t i = 0; i < s.I; ++i) {
          float chain = 0.0f;
          for (std::size_t b = 0; b < s.B; ++b) chain = std::fma(dout[b * s.O + o], in[b * s.I + i], chain);
          const float g = got[o * s.I + i];
          if (std::memcmp(&g, &chain, sizeof g) != 0) ++differ;
        }
      CHECK(differ == 0);
      CHECK(std::all_of(seen.begin(), seen.end(), [](float c) { return c == 1.0f; }));  // each element once
    }
  }
}
#endif

}  // namespace test_weight_grad
