// MADE (Germain et al. 2015, "Masked Autoencoder for Distribution Estimation"): an MLP
// whose weights are masked so that output i sees only the inputs before i in a chosen
// order. Used by the IAF posterior (Kingma et al. 2016) with two outputs per input
// (m and s) and a context input h that enters the first hidden layer unmasked:
//   a_1 = act(z (W_1 o M_1)^T + b_1 + h W_c^T),  a_k = act(a_{k-1} (W_k o M_k)^T + b_k),
//   m = a_K (W_m o M_out)^T + b_m,  s = a_K (W_s o M_out)^T + b_s.
// Degrees: input order[k] has degree k + 1; hidden unit j of any layer has degree
// 1 + j mod (n - 1) (every degree 1..n-1 equally often); a hidden unit sees units of
// degree <= its own, an output of degree d sees hidden units of degree < d. So
// d(m_i, s_i)/dz_j = 0 unless degree(j) < degree(i): the Jacobian is strictly
// triangular in the order.
#pragma once

#include <algorithm>
#include <cstddef>
#include <random>
#include <stdexcept>
#include <vector>
#include "tensor/blas.hpp"

#include "nn/params.hpp"
#include "tensor/activation.hpp"
#include "tensor/linear.hpp"

namespace vae {

// A Linear layer used as W o mask. The mask [out, in] is fixed 0/1 and not a parameter.
// Stored weights are kept masked (initialize zeroes the masked entries and gradients are
// masked), so a checkpoint holds the effective weights.
template <class T>
struct MaskedLinear {
  Linear lin;
  Buffer<T> mask;  // [out, in]
  MatView<T> M() const { return mat(const_cast<T*>(mask.data()), lin.out, lin.in); }
};

// Wm = W o M, once per forward into a preallocated buffer, so the products run on BLAS.
// out[B,O] = in[B,I] . Wm[O,I]^T + b[O]
template <class T>
void masked_linear_forward(MatView<T>& out, MatView<T>& Wm, const MatView<T>& in, const MatView<T>& W,
                           const MatView<T>& M, const VecView<T>& b) {
  xt::noalias(Wm) = W * M;
  linear_forward(out, in, Wm, b);
}

// dW += (dout^T . in) o M (through scratch S [O,I]); db += sum_b dout;
// din = dout . Wm + din_beta * din (din may be null). Wm as left by the forward pass.
template <class T>
void masked_linear_backward(MatView<T>* din, MatView<T>& dW, VecView<T>& db, MatView<T>& S,
                            const MatView<T>& dout, const MatView<T>& in, const MatView<T>& Wm,
                            const MatView<T>& M, const VecView<T>& ones, T din_beta = T(0)) {
  blas_gemm(dout, in, S, true, false, T(1), T(0));
  xt::noalias(dW) += S * M;
  blas_gemv(dout, ones, db, true, T(1), T(1));
  if (din) blas_gemm(dout, Wm, *din, false, false, T(1), din_beta);
}

// Degrees of a hidden layer of `width` units over n inputs (1..max(n-1, 1)).
inline std::vector<std::size_t> made_hidden_degrees(std::size_t width, std::size_t n) {
  std::vector<std::size_t> d(width);
  const std::size_t span = n > 1 ? n - 1 : 1;
  for (std::size_t j = 0; j < width; ++j) d[j] = 1 + j % span;
  return d;
}

template <class T>
struct Made {
  std::size_t nin = 0, nctx = 0, width = 0;
  Activation act = Activation::ReLU;
  std::vector<std::size_t> degree;      // of each input (1..nin)
  std::vector<MaskedLinear<T>> hidden;  // [width, nin], then [width, width]
  std::size_t ctx = 0;                  // W_c [width, nctx] at this offset (b_1 is its bias)
  MaskedLinear<T> out_m, out_s;         // [nin, width] each

  // order[k] is the input placed k-th (a permutation of 0..nin-1). layers >= 1.
  void build(ParamLayout& layout, std::size_t n_in, std::size_t n_ctx, std::size_t w, std::size_t layers,
             Activation a, const std::vector<std::size_t>& order) {
    if (layers < 1 || w < 1 || n_in < 1 || order.size() != n_in)
      throw std::invalid_argument("MADE needs inputs, a full order, and at least one hidden layer");
    nin = n_in;
    nctx = n_ctx;
    width = w;
    act = a;
    degree.assign(nin, 0);
    for (std::size_t k = 0; k < nin; ++k) degree[order[k]] = k + 1;
    hidden.clear();
    std::vector<std::size_t> prev = degree;
    for (std::size_t l = 0; l < layers; ++l) {
      MaskedLinear<T> ml;
      ml.lin = Linear::make(layout, prev.size(), width);
      const auto d = made_hidden_degrees(width, nin);
      ml.mask.assign(width * prev.size(), T(0));
      for (std::size_t j = 0; j < width; ++j)
        for (std::size_t i = 0; i < prev.size(); ++i) ml.mask[j * prev.size() + i] = T(d[j] >= prev[i]);
      hidden.push_back(std::move(ml));
      prev = d;
    }
    ctx = layout.take(width * nctx);
    for (MaskedLinear<T>* o : {&out_m, &out_s}) {
      o->lin = Linear::make(layout, width, nin);
      o->mask.assign(nin * width, T(0));
      for (std::size_t i = 0; i < nin; ++i)
        for (std::size_t j = 0; j < width; ++j) o->mask[i * width + j] = T(degree[i] > prev[j]);
    }
  }

  MatView<T> Wc(T* base) const { return mat(base + ctx, width, nctx); }
  std::vector<const MaskedLinear<T>*> masked() const {
    std::vector<const MaskedLinear<T>*> all;
    for (const auto& h : hidden) all.push_back(&h);
    all.push_back(&out_m);
    all.push_back(&out_s);
    return all;
  }

  // Same initialisation as every Linear (nn/params.hpp), then masked entries set to 0.
  // W_c is drawn like a Linear of fan-in nctx.
  void initialize(T* params, Init init, double std_dev, std::mt19937_64& rng) const {
    for (const MaskedLinear<T>* m : masked()) {
      init_linear(params, m->lin, init, std_dev, rng);
      T* W = params + m->lin.w;
      for (std::size_t i = 0; i < m->mask.size(); ++i) W[i] *= m->mask[i];
    }
    if (nctx == 0) return;
    init_weights(params + ctx, width * nctx, static_cast<T*>(nullptr), 0, nctx, width, init, std_dev, rng);
  }

  struct Work {
    std::vector<Activation2<T>> pre, post, grad;  // [B, width] per hidden layer
    std::vector<Buffer<T>> wm;                    // W o M of each masked layer (masked() order)
    Buffer<T> scratch;                            // masked weight gradient before masking
    Buffer<T> ones;                               // [B]: bias gradients as a gemv
  };
  void reserve(Work& w, std::size_t max_batch) const {
    const std::size_t K = hidden.size();
    w.pre.resize(K);
    w.post.resize(K);
    w.grad.resize(K);
    for (std::size_t l = 0; l < K; ++l) {
      w.pre[l].reserve(max_batch, width);
      w.post[l].reserve(max_batch, width);
      w.grad[l].reserve(max_batch, width);
    }
    w.wm.clear();
    std::size_t biggest = 0;
    for (const MaskedLinear<T>* m : masked()) {
      w.wm.emplace_back(m->mask.size(), T(0));
      biggest = std::max(biggest, m->mask.size());
    }
    w.scratch.assign(biggest, T(0));
    w.ones.assign(max_batch, T(1));
  }

  // z [B,nin], h [B,nctx] -> m, s [B,nin]
  void forward(MatView<T>& m, MatView<T>& s, Work& w, const MatView<T>& z, const MatView<T>& h, T* params,
               std::size_t B) const {
    const std::size_t K = hidden.size();
    for (std::size_t l = 0; l < K; ++l) {
      const Linear& lin = hidden[l].lin;
      auto pre = w.pre[l].view(B), post = w.post[l].view(B);
      auto Wm = mat(w.wm[l].data(), lin.out, lin.in);
      if (l == 0) {
        masked_linear_forward(pre, Wm, z, lin.W(params), hidden[l].M(), lin.bias(params));
        if (nctx > 0) blas_gemm(h, Wc(params), pre, false, true, T(1), T(1));
      } else {
        masked_linear_forward(pre, Wm, w.post[l - 1].view(B), lin.W(params), hidden[l].M(), lin.bias(params));
      }
      activation_forward(post, pre, act);
    }
    auto a = w.post[K - 1].view(B);
    auto Wmm = mat(w.wm[K].data(), nin, width), Wms = mat(w.wm[K + 1].data(), nin, width);
    masked_linear_forward(m, Wmm, a, out_m.lin.W(params), out_m.M(), out_m.lin.bias(params));
    masked_linear_forward(s, Wms, a, out_s.lin.W(params), out_s.M(), out_s.lin.bias(params));
  }

  // Given dL/dm and dL/ds: accumulates parameter gradients, dz += dL/dz and dh += dL/dh
  // (either may be null). Needs the Work of the forward pass on the same parameters.
  void backward(MatView<T>* dz, MatView<T>* dh, Work& w, const MatView<T>& dm, const MatView<T>& ds,
                const MatView<T>& z, const MatView<T>& h, T* params, T* grads, std::size_t B) const {
    const std::size_t K = hidden.size();
    auto ones = vec(w.ones.data(), B);
    auto a = w.post[K - 1].view(B);
    auto g = w.grad[K - 1].view(B);
    auto Wmm = mat(w.wm[K].data(), nin, width), Wms = mat(w.wm[K + 1].data(), nin, width);
    auto S = mat(w.scratch.data(), nin, width);
    auto dWm = out_m.lin.W(grads), dWs = out_s.lin.W(grads);
    auto dbm = out_m.lin.bias(grads), dbs = out_s.lin.bias(grads);
    masked_linear_backward(&g, dWm, dbm, S, dm, a, Wmm, out_m.M(), ones);
    masked_linear_backward(&g, dWs, dbs, S, ds, a, Wms, out_s.M(), ones, T(1));
    for (std::size_t l = K; l-- > 0;) {
      const Linear& lin = hidden[l].lin;
      auto gl = w.grad[l].view(B);
      activation_backward(gl, gl, w.pre[l].view(B), w.post[l].view(B), act);
      auto Wm = mat(w.wm[l].data(), lin.out, lin.in);
      auto Sl = mat(w.scratch.data(), lin.out, lin.in);
      auto dW = lin.W(grads);
      auto db = lin.bias(grads);
      if (l > 0) {
        auto dprev = w.grad[l - 1].view(B);
        masked_linear_backward(&dprev, dW, db, Sl, gl, w.post[l - 1].view(B), Wm, hidden[l].M(), ones);
      } else {
        masked_linear_backward(dz, dW, db, Sl, gl, z, Wm, hidden[l].M(), ones, T(1));
        if (nctx > 0) {
          auto dWc = Wc(grads);
          blas_gemm(gl, h, dWc, true, false, T(1), T(1));
          if (dh) blas_gemm(gl, Wc(params), *dh, false, false, T(1), T(1));
        }
      }
    }
  }
};

}  // namespace vae
