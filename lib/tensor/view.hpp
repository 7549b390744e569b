// Non-owning xtensor views over flat buffers: parameters, gradients and
// preallocated activations all live in std::vectors, and a layer sees them
// through these adaptors. Making a view allocates nothing.
#pragma once

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

}  // namespace vae
