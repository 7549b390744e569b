// The posterior of the VAE family: (mu, logvar) from the encoder and the noise eps -> the
// decoder's z and the per-unit KL terms. The diagonal Gaussian (GaussianPosterior: z =
// mu + exp(logvar/2) eps, the analytic KL), or the Gaussian followed by T IAF steps
// (IafPosterior, prob/iaf.hpp; Kingma et al. 2016) with an optional context c, a third
// head on the encoder's features h:
//   (mu, logvar, c) --reparam(eps)--> z_0 --IAF_1(., c)--> ... --IAF_T(., c)--> z_T = z
// whose KL terms are the single-sample log q(z_T|x) - log p(z_T), split over coordinates.
// kw, the weights of the KL terms in the loss: unit_weight [L], or unit_weight[l] times
// row_weight[b] [B, L] under the IWAE objective.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "models/vae/part.hpp"
#include "nn/linear.hpp"
#include "nn/made.hpp"
#include "prob/gaussian.hpp"
#include "prob/iaf.hpp"

namespace vae {

template <class T>
class VaePosterior : public VaePart<T> {
 public:
  // The encoder's features h [E, H] -> what the posterior reads from them besides mu and
  // logvar (the IAF's context), each row repeated rep times (rows per example of a step).
  virtual void context_forward(PartWork& pw, const MatView<T>& h, T* P, std::size_t E,
                               std::size_t rep) const = 0;
  // mu, logvar, eps [B, L] -> z, kl [B, L]. sampled_kl: the single-sample log q - log p
  // even where the KL is analytic.
  virtual void forward(MatView<T>& z, MatView<T>& kl, PartWork& pw, const MatView<T>& mu,
                       const MatView<T>& logvar, const MatView<T>& eps, T* P, std::size_t B,
                       bool sampled_kl) const = 0;
  // log_q[b] += the log-determinant terms of the last forward (none for the Gaussian).
  virtual void add_log_det(double* log_q, PartWork& pw, std::size_t B) const = 0;
  // dz [B, L] (overwritten) and the KL terms' weights kw -> dmu, dlogvar [B, L] (written)
  // and the flow's gradients; keeps the context's gradient for context_backward. kw: [L]
  // per unit, or [B, L] per row and unit (IWAE). Two overloads, not one [B, L] form: where
  // the compiler fuses a multiply-add the broadcast and the full expression round
  // differently, and a run's numbers are kept bit for bit.
  virtual void backward(MatView<T>& dmu, MatView<T>& dlogvar, PartWork& pw, MatView<T>& dz,
                        const VecView<T>& kw, const MatView<T>& mu, const MatView<T>& logvar,
                        const MatView<T>& eps, const MatView<T>& z, T* P, T* G, std::size_t B,
                        bool sampled_kl) const = 0;
  virtual void backward(MatView<T>& dmu, MatView<T>& dlogvar, PartWork& pw, MatView<T>& dz,
                        const MatView<T>& kw, const MatView<T>& mu, const MatView<T>& logvar,
                        const MatView<T>& eps, const MatView<T>& z, T* P, T* G, std::size_t B,
                        bool sampled_kl) const = 0;
  // After backward: dh [E, H] += the context head's input gradient (rep rows per code
  // summed), and the head's gradients.
  virtual void context_backward(MatView<T>& dh, PartWork& pw, const MatView<T>& h, T* P, T* G, std::size_t E,
                                std::size_t rep) const = 0;
  // The code of each row [B, L]: mu (Gaussian), or z_T at eps = 0 (IAF: deterministic and
  // cheap; the flow is nonlinear, so it is not exactly E_q[z_T|x]). May overwrite eps and z.
  virtual void mean_codes(T* codes, MatView<T>& z, MatView<T>& kl, PartWork& pw, const MatView<T>& mu,
                          const MatView<T>& logvar, MatView<T>& eps, T* P, std::size_t B) const = 0;
  // z [m, L] of m samples of row 0's posterior (mu, logvar, context repeated on m rows).
  virtual void sample_row0(MatView<T>& z, MatView<T>& kl, PartWork& pw, const MatView<T>& mu,
                           const MatView<T>& logvar, const MatView<T>& eps, T* P, std::size_t m) const = 0;
  virtual bool has_base_codes() const = 0;  // mean_codes is not mu: mu is reported beside it
};

// q(z|x) = N(mu, diag(exp(logvar))), the analytic KL (or the sampled one when asked).
template <class T>
class GaussianPosterior final : public VaePosterior<T> {
 public:
  explicit GaussianPosterior(FlowKl est) : est_(est) {}
  std::unique_ptr<PartWork> make_work(std::size_t) const override { return std::make_unique<PartWork>(); }
  void add_groups(std::vector<ParamRange>&) const override {}
  void init_linear_layers(T*, Init, double, std::mt19937_64&) const override {}
  void init_other_layers(T*, T*, Init, double, std::mt19937_64&) const override {}
  bool streams_grads() const override { return true; }
  bool has_base_codes() const override { return false; }

  void context_forward(PartWork&, const MatView<T>&, T*, std::size_t, std::size_t) const override {}
  void forward(MatView<T>& z, MatView<T>& kl, PartWork&, const MatView<T>& mu, const MatView<T>& logvar,
               const MatView<T>& eps, T*, std::size_t, bool sampled_kl) const override {
    reparam_forward(z, mu, logvar, eps);
    if (!sampled_kl) {
      kl_forward(kl, mu, logvar);
      return;
    }
    flow_kl_begin(kl, eps, logvar);  // the single-sample log q - log p, as a flow of 0 steps
    flow_kl_end(kl, z);
  }
  void add_log_det(double*, PartWork&, std::size_t) const override {}
  void backward(MatView<T>& dmu, MatView<T>& dlogvar, PartWork&, MatView<T>& dz, const VecView<T>& kw,
                const MatView<T>& mu, const MatView<T>& logvar, const MatView<T>& eps, const MatView<T>& z, T*,
                T*, std::size_t, bool sampled_kl) const override {
    backward_(dmu, dlogvar, dz, kw, mu, logvar, eps, z, sampled_kl);
  }
  void backward(MatView<T>& dmu, MatView<T>& dlogvar, PartWork&, MatView<T>& dz, const MatView<T>& kw,
                const MatView<T>& mu, const MatView<T>& logvar, const MatView<T>& eps, const MatView<T>& z, T*,
                T*, std::size_t, bool sampled_kl) const override {
    backward_(dmu, dlogvar, dz, kw, mu, logvar, eps, z, sampled_kl);
  }
  void context_backward(MatView<T>&, PartWork&, const MatView<T>&, T*, T*, std::size_t,
                        std::size_t) const override {}
  void mean_codes(T* codes, MatView<T>&, MatView<T>&, PartWork&, const MatView<T>& mu, const MatView<T>&,
                  MatView<T>&, T*, std::size_t) const override {
    std::copy(mu.data(), mu.data() + mu.size(), codes);
  }
  // Reads row 0 of mu and logvar only.
  void sample_row0(MatView<T>& z, MatView<T>&, PartWork&, const MatView<T>& mu, const MatView<T>& logvar,
                   const MatView<T>& eps, T*, std::size_t m) const override {
    const std::size_t L = z.shape()[1];
    T* zp = z.data();
    const T *e = eps.data(), *mp = mu.data(), *lv = logvar.data();
    for (std::size_t r = 0; r < m; ++r)
      for (std::size_t l = 0; l < L; ++l) zp[r * L + l] = mp[l] + std::exp(T(0.5) * lv[l]) * e[r * L + l];
  }

  // z_0 = mu + exp(logvar/2) eps and the -logvar/2 of the sampled KL -> dmu, dlogvar, with
  // the exact gradient or without the score term (FlowKl::Stl, prob/iaf.hpp).
  template <class KW>
  static void base_backward(MatView<T>& dmu, MatView<T>& dlogvar, const MatView<T>& dz0,
                            const MatView<T>& logvar, const MatView<T>& eps, const KW& kw, FlowKl est) {
    if (est == FlowKl::Sample) flow_base_backward(dmu, dlogvar, dz0, logvar, eps, kw);
    else flow_base_backward_stl(dmu, dlogvar, dz0, logvar, eps, kw);
  }

 private:
  FlowKl est_;

  template <class KW>
  void backward_(MatView<T>& dmu, MatView<T>& dlogvar, MatView<T>& dz, const KW& kw, const MatView<T>& mu,
                 const MatView<T>& logvar, const MatView<T>& eps, const MatView<T>& z, bool sampled_kl) const {
    if (!sampled_kl) {
      gaussian_backward(dmu, dlogvar, dz, mu, logvar, eps, kw);
      return;
    }
    xt::noalias(dz) += kw * z;  // from + kw z^2 / 2 of the sampled KL
    base_backward(dmu, dlogvar, dz, logvar, eps, kw, est_);
  }
};

// The Gaussian followed by T >= 1 IAF steps, each a MADE of (z, c).
template <class T>
class IafPosterior final : public VaePosterior<T> {
 public:
  // h_size: the encoder's features (the context head's input).
  IafPosterior(ParamLayout& layout, std::size_t L, std::size_t h_size, const IafShape& s, Activation act)
      : C_(s.context), forget_bias_(T(s.forget_bias)), est_(s.kl) {
    if (C_ > 0) ctx_ = Linear::make(layout, h_size, C_);
    flow_.resize(s.steps);
    for (std::size_t t = 0; t < flow_.size(); ++t)
      flow_[t].build(layout, L, C_, s.hidden, s.layers, act, iaf_order(L, t));
  }
  std::unique_ptr<PartWork> make_work(std::size_t B) const override {
    auto w = std::make_unique<Work>();
    const std::size_t L = flow_[0].nin;
    w->ctx.reserve(B, C_);
    w->dctx.reserve(B, C_);
    w->ones.assign(B, T(1));
    w->zf.resize(flow_.size());
    w->dzf.resize(flow_.size());
    w->steps.resize(flow_.size());
    for (std::size_t t = 0; t < flow_.size(); ++t) {
      w->zf[t].reserve(B, L);
      w->dzf[t].reserve(B, L);
      w->steps[t].reserve(flow_[t], B);
    }
    return w;
  }
  // [enc_ctx] then per step t: iaf<t>.h<k> (masked), iaf<t>.ctx (W only), iaf<t>.m, iaf<t>.s.
  void add_groups(std::vector<ParamRange>& g) const override {
    if (C_ > 0) add_linear_groups(g, "enc_ctx", ctx_);
    for (std::size_t t = 0; t < flow_.size(); ++t) {
      const std::string p = "iaf" + std::to_string(t);
      for (std::size_t k = 0; k < flow_[t].hidden.size(); ++k)
        add_linear_groups(g, p + ".h" + std::to_string(k), flow_[t].hidden[k].lin);
      if (flow_[t].nctx > 0) g.push_back({p + ".ctx.W", flow_[t].ctx, flow_[t].width * flow_[t].nctx});
      add_linear_groups(g, p + ".m", flow_[t].out_m.lin);
      add_linear_groups(g, p + ".s", flow_[t].out_s.lin);
    }
  }
  void init_linear_layers(T* P, Init init, double std_dev, std::mt19937_64& rng) const override {
    if (C_ > 0) init_linear(P, ctx_, init, std_dev, rng);
  }
  void init_other_layers(T* P, T*, Init init, double std_dev, std::mt19937_64& rng) const override {
    for (const Made<T>& m : flow_) m.initialize(P, init, std_dev, rng);
  }
  bool streams_grads() const override { return false; }
  bool has_base_codes() const override { return true; }

  void context_forward(PartWork& pw, const MatView<T>& h, T* P, std::size_t E, std::size_t rep) const override {
    if (C_ == 0) return;
    Work& w = work_of<Work>(pw);
    auto c = w.ctx.view(E);
    linear_layer_forward(c, h, ctx_, P);
    replicate_rows(w.ctx.ptr(), E, rep, C_);
  }
  void forward(MatView<T>& z, MatView<T>& kl, PartWork& pw, const MatView<T>& mu, const MatView<T>& logvar,
               const MatView<T>& eps, T* P, std::size_t B, bool) const override {
    Work& w = work_of<Work>(pw);
    auto z0 = w.zf[0].view(B);
    reparam_forward(z0, mu, logvar, eps);
    flow_kl_begin(kl, eps, logvar);
    auto c = w.ctx.view(B);
    for (std::size_t t = 0; t < flow_.size(); ++t) {
      auto z_in = w.zf[t].view(B);
      auto z_out = t + 1 < flow_.size() ? w.zf[t + 1].view(B) : z;
      iaf_step_forward(z_out, w.steps[t], flow_[t], z_in, c, forget_bias_, P, B);
      xt::noalias(kl) -= w.steps[t].logsig.view(B);
    }
    flow_kl_end(kl, z);
  }
  // log_q[b] -= sum_t sum_l log sigma_t[b, l]
  void add_log_det(double* log_q, PartWork& pw, std::size_t B) const override {
    Work& w = work_of<Work>(pw);
    const std::size_t L = flow_[0].nin;
    for (const auto& st : w.steps) {
      const T* ls = st.logsig.data.data();
      for (std::size_t b = 0; b < B; ++b) {
        double sum = 0;
        for (std::size_t l = 0; l < L; ++l) sum += double(ls[b * L + l]);
        log_q[b] -= sum;
      }
    }
  }
  void backward(MatView<T>& dmu, MatView<T>& dlogvar, PartWork& pw, MatView<T>& dz, const VecView<T>& kw,
                const MatView<T>&, const MatView<T>& logvar, const MatView<T>& eps, const MatView<T>& z, T* P,
                T* G, std::size_t B, bool) const override {
    backward_(dmu, dlogvar, work_of<Work>(pw), dz, kw, logvar, eps, z, P, G, B);
  }
  void backward(MatView<T>& dmu, MatView<T>& dlogvar, PartWork& pw, MatView<T>& dz, const MatView<T>& kw,
                const MatView<T>&, const MatView<T>& logvar, const MatView<T>& eps, const MatView<T>& z, T* P,
                T* G, std::size_t B, bool) const override {
    backward_(dmu, dlogvar, work_of<Work>(pw), dz, kw, logvar, eps, z, P, G, B);
  }
  void context_backward(MatView<T>& dh, PartWork& pw, const MatView<T>& h, T* P, T* G, std::size_t E,
                        std::size_t rep) const override {
    if (C_ == 0) return;
    Work& w = work_of<Work>(pw);
    sum_row_groups(w.dctx.ptr(), E, rep, C_);
    linear_layer_backward(&dh, w.dctx.view(E), h, ctx_, P, G, vec(w.ones.data(), E), T(1));
  }
  void mean_codes(T* codes, MatView<T>& z, MatView<T>& kl, PartWork& pw, const MatView<T>& mu,
                  const MatView<T>& logvar, MatView<T>& eps, T* P, std::size_t B) const override {
    eps.fill(T(0));
    forward(z, kl, pw, mu, logvar, eps, P, B, true);
    std::copy(z.data(), z.data() + z.size(), codes);
  }
  void sample_row0(MatView<T>& z, MatView<T>& kl, PartWork& pw, const MatView<T>& mu, const MatView<T>& logvar,
                   const MatView<T>& eps, T* P, std::size_t m) const override {
    forward(z, kl, pw, mu, logvar, eps, P, m, true);
  }

 private:
  struct Work : PartWork {
    // c and its gradient [B, C]; zf[t] = input of step t (zf[0] = z_0), dzf[t] its gradient [B, L].
    Activation2<T> ctx, dctx;
    std::vector<Activation2<T>> zf, dzf;
    std::vector<IafStepWork<T>> steps;
    Buffer<T> ones;  // [B]
  };
  std::size_t C_;
  Linear ctx_;
  std::vector<Made<T>> flow_;
  T forget_bias_;
  FlowKl est_;

  template <class KW>
  void backward_(MatView<T>& dmu, MatView<T>& dlogvar, Work& w, MatView<T>& dz, const KW& kw,
                 const MatView<T>& logvar, const MatView<T>& eps, const MatView<T>& z, T* P, T* G,
                 std::size_t B) const {
    xt::noalias(dz) += kw * z;  // from + kw z^2 / 2 of the sampled KL
    auto c = w.ctx.view(B), dc = w.dctx.view(B);
    dc.fill(T(0));
    for (std::size_t t = flow_.size(); t-- > 0;) {
      auto dz_out = t + 1 < flow_.size() ? w.dzf[t + 1].view(B) : dz;
      auto dz_in = w.dzf[t].view(B);
      iaf_step_backward(dz_in, &dc, w.steps[t], flow_[t], dz_out, kw, w.zf[t].view(B), c, P, G, B);
    }
    auto dz0 = w.dzf[0].view(B);
    GaussianPosterior<T>::base_backward(dmu, dlogvar, dz0, logvar, eps, kw, est_);
  }
};

}  // namespace vae
