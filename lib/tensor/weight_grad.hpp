// A linear layer's weight gradient dW [O, I] = dout^T [O, B] . in [B, I], computed in
// strips that a callback consumes while they are in L1.
//
// Why not OpenBLAS's sgemm: a fused training step needs dW once, right before the optimizer
// reads it. Through sgemm, dW goes to memory (beta = 1: read and written) and the
// optimizer's pass reads it again, and zeroes it, beside the parameters and both moments.
// Here each strip of kRows rows by up to kCols columns is made in registers, stored to a
// buffer in L1 and handed to f, which applies the optimizer to it (nn/linear.hpp) or adds it
// into dW (weight_grad_add): in a fused step the gradient buffer is not touched. The kernel
// alone is about as fast as OpenBLAS 0.3.21's (Cooperlake kernels, 1 thread, 784 x 400, CPU
// time: 89 against 80 us at B = 20, 430 against 442 us at B = 128, 4.4 against 3.8 ms at
// B = 1000; it is used up to 64 rows: weight_grad_fits); with Adam after it, a 784 x 400
// layer's part of the step is 5 to 14% shorter (bench/micro_kernels: BM_weight_grad,
// BM_adam_after_gemm variant 4 against 0).
//
// The arithmetic: each element is one FMA chain over the batch in row order, from zero,
// dW[o, i] = fma(dout[B-1, o], in[B-1, i], ... fma(dout[0, o], in[0, i], 0)), whatever the
// strip, tail or vector width (tests/test_weight_grad.cpp checks it bit for bit against
// that chain written as a scalar loop). Only float with AVX-512 has the kernel
// (kWeightGradKernel<T>); elsewhere callers use OpenBLAS's gemm, as before.
#pragma once

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "tensor/view.hpp"

namespace vae {

#if defined(__AVX512F__)
template <class T>
inline constexpr bool kWeightGradKernel = std::is_same_v<T, float>;
#else
template <class T>
inline constexpr bool kWeightGradKernel = false;
#endif

namespace weight_grad_detail {

constexpr std::size_t kRows = 6;     // rows of dW per strip: 6 x 4 accumulators + 4 inputs + 1 broadcast
constexpr std::size_t kCols = 1024;  // columns per strip at most: 6 x 1024 floats (24 KiB) stay in L1

#if defined(__AVX512F__)
// out[r * ld + c] = dW[o0 + r, j0 + c] for r < R, c < n (R <= kRows, n <= ld); d = dout + o0,
// x = in + j0, with row strides O and I.
template <std::size_t R>
inline void strip(const float* d, std::size_t O, const float* x, std::size_t I, std::size_t B, std::size_t n,
                  float* out, std::size_t ld) {
  std::size_t c = 0;
  for (; c + 64 <= n; c += 64) {  // 4 vectors of 16 columns
    __m512 acc[R][4];
    for (std::size_t r = 0; r < R; ++r)
      for (auto& a : acc[r]) a = _mm512_setzero_ps();
    for (std::size_t b = 0; b < B; ++b) {
      const float* xb = x + b * I + c;
      const __m512 x0 = _mm512_loadu_ps(xb), x1 = _mm512_loadu_ps(xb + 16), x2 = _mm512_loadu_ps(xb + 32),
                   x3 = _mm512_loadu_ps(xb + 48);
      const float* db = d + b * O;
      for (std::size_t r = 0; r < R; ++r) {
        const __m512 s = _mm512_set1_ps(db[r]);
        acc[r][0] = _mm512_fmadd_ps(s, x0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(s, x1, acc[r][1]);
        acc[r][2] = _mm512_fmadd_ps(s, x2, acc[r][2]);
        acc[r][3] = _mm512_fmadd_ps(s, x3, acc[r][3]);
      }
    }
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t v = 0; v < 4; ++v) _mm512_storeu_ps(out + r * ld + c + 16 * v, acc[r][v]);
  }
  for (; c < n; c += 16) {  // the tail, a masked vector at a time
    const __mmask16 m = n - c >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - c)) - 1);
    __m512 acc[R];
    for (auto& a : acc) a = _mm512_setzero_ps();
    for (std::size_t b = 0; b < B; ++b) {
      const __m512 xb = _mm512_maskz_loadu_ps(m, x + b * I + c);
      const float* db = d + b * O;
      for (std::size_t r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(db[r]), xb, acc[r]);
    }
    for (std::size_t r = 0; r < R; ++r) _mm512_mask_storeu_ps(out + r * ld + c, m, acc[r]);
  }
}

using StripFn = void (*)(const float*, std::size_t, const float*, std::size_t, std::size_t, std::size_t, float*,
                         std::size_t);
constexpr StripFn kStrips[kRows + 1] = {nullptr, strip<1>, strip<2>, strip<3>, strip<4>, strip<5>, strip<6>};
#endif

}  // namespace weight_grad_detail

// Whether the kernel pays for this input [B, I]: each strip of kRows rows reads all of in
// again, so in must stay in L2 (256K floats, 1 MiB); and from about a hundred rows OpenBLAS's
// packed gemm is faster by more than the fusion saves (interleaved A/B, bench/ab.py: the
// IWAE k = 5 step, whose decoder has 100 rows, was 4% slower with the kernel there). So the
// small batches of the protocols: 20 rows, or 20 x k for k <= 3.
template <class T>
bool weight_grad_fits(const MatView<T>& in) {
  return in.shape()[0] <= 64 && in.size() <= (std::size_t(1) << 18);
}

// dW = dout^T . in, strip by strip: f(start, n, g) receives g[0..n) = the n values of dW
// from flat index start (row-major; g may be changed by f). Where a row fits in a strip
// (I <= kCols) a call covers whole rows, so that f streams one contiguous range of the
// optimizer's buffers, strip after strip, as the hardware prefetcher likes. dout [B, O]
// and in [B, I] are row-major and contiguous. Only where kWeightGradKernel<T>.
template <class T, class F>
void weight_grad_strips(const MatView<T>& dout, const MatView<T>& in, F&& f) {
  static_assert(kWeightGradKernel<T>, "weight_grad_strips: no kernel for this type or CPU");
#if defined(__AVX512F__)
  using namespace weight_grad_detail;
  const std::size_t B = dout.shape()[0], O = dout.shape()[1], I = in.shape()[1];
  alignas(64) float buf[kRows * kCols];
  for (std::size_t o = 0; o < O; o += kRows) {
    const std::size_t R = std::min(kRows, O - o);
    if (I <= kCols) {
      kStrips[R](dout.data() + o, O, in.data(), I, B, I, buf, I);
      f(o * I, R * I, buf);
      continue;
    }
    for (std::size_t j = 0; j < I; j += kCols) {
      const std::size_t n = std::min(kCols, I - j);
      kStrips[R](dout.data() + o, O, in.data() + j, I, B, n, buf, kCols);
      for (std::size_t r = 0; r < R; ++r) f((o + r) * I + j, n, buf + r * kCols);
    }
  }
#else
  (void)dout, (void)in, (void)f;
#endif
}

// dW += dout^T . in through the strips (where kWeightGradKernel<T>).
template <class T>
void weight_grad_add(const MatView<T>& dout, const MatView<T>& in, MatView<T>& dW) {
  T* base = dW.data();
  weight_grad_strips(dout, in, [base](std::size_t start, std::size_t n, const T* g) {
    T* to = base + start;
#pragma omp simd
    for (std::size_t c = 0; c < n; ++c) to[c] += g[c];
  });
}

}  // namespace vae
