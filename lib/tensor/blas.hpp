// The one door to BLAS: every gemm and gemv of the library goes through these two
// functions. They mark the calling thread as inside BLAS while the call runs, so that the
// allocation test (tests/test_alloc.cpp) can tell our code's allocations from the
// internal buffers some OpenBLAS kernels take per call (e.g. SkylakeX/Cooperlake sgemm).
// Shapes and flags are xt::blas's: C = alpha op(A) op(B) + beta C, y = alpha op(A) x + beta y.
#pragma once

#include <xtensor-blas/xblas.hpp>

namespace vae {

// Depth of BLAS calls on this thread (0: our own code is running).
inline thread_local int blas_call_depth = 0;

// Test seam: when set, called on every BLAS call of this thread, once before the thread is
// marked as inside BLAS (inside_blas false) and once after (true). tests/test_alloc.cpp
// allocates from it in a real training step, to see the counter catch our allocations at
// both places. Null in every program: one predictable branch per BLAS call.
inline thread_local void (*blas_test_hook)(bool inside_blas) = nullptr;

struct BlasCallScope {
  BlasCallScope() { ++blas_call_depth; }
  ~BlasCallScope() { --blas_call_depth; }
  BlasCallScope(const BlasCallScope&) = delete;
  BlasCallScope& operator=(const BlasCallScope&) = delete;
};

template <class A, class B, class C, class T>
void blas_gemm(const A& a, const B& b, C& c, bool trans_a, bool trans_b, T alpha, T beta) {
  if (blas_test_hook) blas_test_hook(false);
  BlasCallScope scope;
  if (blas_test_hook) blas_test_hook(true);
  xt::blas::gemm(a, b, c, trans_a, trans_b, alpha, beta);
}

template <class A, class X, class Y, class T>
void blas_gemv(const A& a, const X& x, Y& y, bool trans_a, T alpha, T beta) {
  if (blas_test_hook) blas_test_hook(false);
  BlasCallScope scope;
  if (blas_test_hook) blas_test_hook(true);
  xt::blas::gemv(a, x, y, trans_a, alpha, beta);
}

}  // namespace vae
