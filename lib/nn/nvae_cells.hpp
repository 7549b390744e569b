// NVAE's residual cells (Vahdat & Kautz 2020, Fig. 3 and their code), built from the ops
// of nn/nvae_ops.hpp: out = skip(x) + 0.1 * main(x), the 0.1 as in their code.
//   encoder cell  main: BN - Swish - Conv3x3 (stride s) - BN - Swish - Conv3x3 - SE
//                 skip: identity; down-sampling (s = 2, channels x2): Swish - Conv2x2 stride 2,
//                 a full 2x2 convolution where NVAE's FactorizedReduce concatenates four 1x1
//                 stride-2 convolutions of the four shifted grids (the same receptive field;
//                 FactorizedReduce is this convolution with a block-sparse weight)
//   decoder cell  main: [Upsample] - BN - Conv1x1 (expand x E) - BN - Swish - depthwise Conv5x5
//                 - BN - Swish - Conv1x1 - BN - SE
//                 skip: identity; up-sampling (channels / 2): Upsample - Conv1x1
#pragma once

#include <string>
#include <vector>

#include "nn/nvae_ops.hpp"

namespace vae {

constexpr double kCellResidualScale = 0.1;

struct Cell {
  Chain main, skip;  // an empty skip is the identity
  FMap in, out;

  template <class T>
  struct Work {
    Chain::Work<T> main, skip;
    Buffer<T> out, grad;  // [B, out.size()]
  };
  template <class T>
  void reserve(Work<T>& w, std::size_t B) const {
    main.reserve(w.main, B);
    skip.reserve(w.skip, B);
    w.out.assign(B * out.size(), T(0));
    w.grad.assign(B * out.size(), T(0));
  }
  template <class T>
  void forward(Work<T>& w, const T* x, const OpContext<T>& ctx, std::size_t B) const {
    main.forward(w.main, x, ctx, B);
    const T* s = x;
    if (!skip.empty()) {
      skip.forward(w.skip, x, ctx, B);
      s = skip.output(w.skip);
    }
    const T* m = main.output(w.main);
    const T a = T(kCellResidualScale);
    for (std::size_t i = 0; i < B * out.size(); ++i) w.out[i] = s[i] + a * m[i];
  }
  // w.grad -> din += dL/dx (din may be null).
  template <class T>
  void backward(Work<T>& w, T* din, const OpContext<T>& ctx, std::size_t B) const {
    const std::size_t n = B * out.size();
    T* gm = main.output_grad(w.main);
    const T a = T(kCellResidualScale);
    for (std::size_t i = 0; i < n; ++i) gm[i] = a * w.grad[i];
    main.backward(w.main, din, ctx, B);
    if (skip.empty()) {
      if (din)
        for (std::size_t i = 0; i < n; ++i) din[i] += w.grad[i];
      return;
    }
    std::copy(w.grad.begin(), w.grad.begin() + std::ptrdiff_t(n), skip.output_grad(w.skip));
    skip.backward(w.skip, din, ctx, B);
  }
  template <class T>
  void update_running(Work<T>& w, T* S, std::size_t B, double momentum) const {
    main.update_running(w.main, S, B, momentum);
    skip.update_running(w.skip, S, B, momentum);
  }
  void param_groups(const std::string& prefix, std::vector<ParamRange>& g) const {
    main.param_groups(prefix + ".main", g);
    skip.param_groups(prefix + ".skip", g);
  }
  template <class T>
  void initialize(T* P, T* S, Init init, double std_dev, std::mt19937_64& rng) const {
    main.initialize(P, S, init, std_dev, rng);
    skip.initialize(P, S, init, std_dev, rng);
  }
  std::size_t scratch_size() const { return std::max(main.scratch_size(), skip.scratch_size()); }
  std::size_t max_pixels() const { return std::max(main.max_pixels(), skip.max_pixels()); }
  std::vector<const Op*> all_ops() const {
    std::vector<const Op*> v;
    for (const Op& o : main.ops) v.push_back(&o);
    for (const Op& o : skip.ops) v.push_back(&o);
    return v;
  }
};

// Encoder cell on `in`; down: stride 2 and twice the channels.
inline Cell encoder_cell(ParamLayout& P, ParamLayout& S, FMap in, bool down) {
  Cell c;
  const std::size_t cout = down ? 2 * in.c : in.c;
  c.in = in;
  c.main = Chain(in);
  c.main.add(op_batchnorm(P, S, in));
  c.main.add(op_swish(in));
  c.main.add(op_conv(P, in, cout, 3, down ? 2 : 1, 1));
  const FMap mid = c.main.out;
  c.main.add(op_batchnorm(P, S, mid));
  c.main.add(op_swish(mid));
  c.main.add(op_conv(P, mid, cout, 3, 1, 1));
  c.main.add(op_se(P, c.main.out));
  c.skip = Chain(in);
  if (down) {
    c.skip.add(op_swish(in));
    c.skip.add(op_conv(P, in, cout, 2, 2, 0));
  }
  c.out = c.main.out;
  return c;
}

// Decoder cell on `in` with expansion `expand`; up: twice the resolution, half the channels.
inline Cell decoder_cell(ParamLayout& P, ParamLayout& S, FMap in, bool up, std::size_t expand = 6) {
  Cell c;
  const std::size_t cout = up ? in.c / 2 : in.c;
  c.in = in;
  c.main = Chain(in);
  if (up) c.main.add(op_upsample(in));
  const FMap a = c.main.out;
  const FMap e{a.h, a.w, a.c * expand};
  c.main.add(op_batchnorm(P, S, a));
  c.main.add(op_conv(P, a, e.c, 1, 1, 0));
  c.main.add(op_batchnorm(P, S, e));
  c.main.add(op_swish(e));
  c.main.add(op_dwconv(P, e, 5));
  c.main.add(op_batchnorm(P, S, e));
  c.main.add(op_swish(e));
  c.main.add(op_conv(P, e, cout, 1, 1, 0));
  c.main.add(op_batchnorm(P, S, c.main.out));
  c.main.add(op_se(P, c.main.out));
  c.skip = Chain(in);
  if (up) {
    c.skip.add(op_upsample(in));
    c.skip.add(op_conv(P, c.skip.out, cout, 1, 1, 0));
  }
  c.out = c.main.out;
  return c;
}

}  // namespace vae
