// Non-owning xtensor views over flat buffers: parameters, gradients and
// preallocated activations all live in std::vectors, and a layer sees them
// through these adaptors. Making a view allocates nothing.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <memory>
#include <vector>
#include <xsimd/config/xsimd_config.hpp>
#include <xsimd/memory/xsimd_aligned_allocator.hpp>
#include <xtensor/xadapt.hpp>

namespace vae {

// Spelled out (not decltype) so that function templates can deduce T from them.
template <class T, std::size_t N>
using View = xt::xtensor_adaptor<xt::xbuffer_adaptor<T*, xt::no_ownership, std::allocator<T>>, N,
                                 xt::layout_type::row_major, xt::xtensor_expression_tag>;
template <class T>
using MatView = View<T, 2>;
template <class T>
using VecView = View<T, 1>;

// rows x cols row-major matrix starting at p.
template <class T>
MatView<T> mat(T* p, std::size_t rows, std::size_t cols) {
  return xt::adapt(static_cast<T*>(p), rows * cols, xt::no_ownership(), std::array<std::size_t, 2>{rows, cols});
}
template <class T>
VecView<T> vec(T* p, std::size_t n) {
  return xt::adapt(static_cast<T*>(p), n, xt::no_ownership(), std::array<std::size_t, 1>{n});
}

// Every numeric buffer is 64-byte aligned: OpenBLAS and xsimd take different code paths
// (and so round differently) for differently aligned data, and a run must give the same
// numbers bit for bit whatever malloc returns.
template <class T>
using Buffer = std::vector<T, xsimd::aligned_allocator<T, 64>>;

// A preallocated activation buffer: capacity rows x cols, viewed at any rows <= capacity.
template <class T>
struct Activation2 {
  Buffer<T> data;
  std::size_t max_rows = 0, cols = 0;
  void reserve(std::size_t rows, std::size_t c) {
    max_rows = rows;
    cols = c;
    data.assign(rows * c, T(0));
  }
  MatView<T> view(std::size_t rows) { return mat(data.data(), rows, cols); }
  T* ptr() { return data.data(); }
};

// Rows 0..B-1 of x [B*k, D] -> each row's k copies side by side (row b*k + j = row b):
// the k samples of an example share its (binarized) image and its posterior.
template <class T>
void replicate_rows(T* x, std::size_t B, std::size_t k, std::size_t D) {
  if (k == 1) return;
  for (std::size_t b = B; b-- > 0;)
    for (std::size_t j = k; j-- > 0;)
      if (b * k + j != b) std::copy(x + b * D, x + (b + 1) * D, x + (b * k + j) * D);
}

// The inverse's adjoint: row b of x <- sum_j row b*k + j of x [B*k, D], j in order, for
// b = 0..B-1 (rows B.. are left as they were). Each row written was read before.
template <class T>
void sum_row_groups(T* x, std::size_t B, std::size_t k, std::size_t D) {
  if (k == 1) return;
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t i = 0; i < D; ++i) {
      T s = x[b * k * D + i];
      for (std::size_t j = 1; j < k; ++j) s += x[(b * k + j) * D + i];
      x[b * D + i] = s;
    }
}

}  // namespace vae
