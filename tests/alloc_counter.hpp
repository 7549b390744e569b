// Counting heap allocations in a test: which blocks our code takes, and which OpenBLAS's
// own code takes inside a BLAS call.
//
// tests/alloc_counter.cpp replaces malloc, calloc, realloc, the aligned variants and the
// global operator new/delete for the whole test binary (forwarding to glibc's __libc_*
// entry points), so an allocation by std::vector, xtensor, xsimd or any library counts.
// A block is OpenBLAS's only when both hold:
//   - the thread is inside vae::blas_gemm / blas_gemv (vae::blas_call_depth > 0), and
//   - the code that called malloc lies in the OpenBLAS library (dladdr on the return
//     address: the same loaded object as openblas_get_config).
// Everything else is ours -- also a block taken inside blas_gemm by our own (inlined)
// code, e.g. an xtensor temporary made by xt::blas::gemm, or operator new called there:
// OpenBLAS is C and calls malloc from its own code. Some OpenBLAS kernels take buffers
// per call (SkylakeX/Cooperlake sgemm: 3 blocks per training step); those are counted in
// `blas` and are not part of our zero-allocation guarantee.
//
// Counting is process-wide while on; blas_call_depth is per thread, so BLAS's own worker
// threads would count as ours: run counted code with OPENBLAS_NUM_THREADS=1 (ctest does).
// Under AddressSanitizer the allocator is ASan's and nothing is replaced:
// alloc_counting_available() is false and callers skip with a warning.
#pragma once

#include <string>

namespace vae::test {

struct AllocCounts {
  long ours = 0;           // malloc-level blocks our code took (operator new included)
  long news = 0;           // of `ours`, those through operator new
  long blas = 0;           // blocks OpenBLAS's code took inside blas_gemm/blas_gemv
  std::string ours_sites;  // where the first few of `ours` were taken (for the message)
  std::string blas_sites;  // and the first few of `blas`
};

// False when the allocator cannot be replaced (AddressSanitizer build).
bool alloc_counting_available();

// The file of the loaded OpenBLAS library, the only code whose blocks are not ours.
std::string openblas_library_file();

// Whether code at `addr` lies in that library (the test of a malloc caller).
bool is_openblas_code(const void* addr);

void alloc_counting_start();
AllocCounts alloc_counting_stop();

// Runs f with counting on and returns what it allocated.
template <class F>
AllocCounts count_allocations(F&& f) {
  alloc_counting_start();
  f();
  return alloc_counting_stop();
}

}  // namespace vae::test
