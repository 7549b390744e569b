// Two ways a training step saves work, each against the plain computation:
//  - the fused step (models/algorithms.hpp, train_step_update: the optimizer applied to each
//    layer inside backward) against train_step followed by opt.step: the same parameters
//    and optimizer state, bit for bit, step after step. A range backward() forgot to report
//    would keep its old values; one reported twice would move twice.
//  - with k samples per example, the MLP encoder run once per example (MlpEncoder::rows_per_code)
//    against the encoder run on all k copies: the same loss and gradient up to rounding.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "models/algorithms.hpp"
#include "models/vae.hpp"
#include "nn/optimizer.hpp"

// This file's names stay its own: the model tests compile in unity groups (CMakeLists.txt).
namespace test_fused_step {

using namespace vae;

namespace {

data::Images small_images(std::size_t n, std::size_t side) {
  data::Images im;
  im.n = n;
  im.rows = im.cols = side;
  im.scale = 1.0f / 255.0f;
  im.pixels.resize(n * side * side);
  std::mt19937 rng(3);
  for (auto& p : im.pixels) p = uint8_t(rng() % 256);
  return im;
}

template <class T>
bool same_bits(const Buffer<T>& a, const Buffer<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

struct FusedCase {
  const char* name;
  LikelihoodKind kind;
  SigmaMode sigma;
  const char* optimizer;
  Objective objective;
  std::size_t k;
  std::size_t side = 6;     // images side x side
  std::size_t hidden = 10;  // the first hidden layer's width
  double weight_decay = 0;
  bool sampled_kl = false;  // the ELBO's KL as the single-sample log q - log p (the IWAE paper's VAE)
};

}  // namespace

TEST_CASE("a fused training step gives the numbers of train_step and opt.step", "[optimizer][fused]") {
  const FusedCase cases[] = {
      {"bernoulli, adam, elbo", LikelihoodKind::Bernoulli, SigmaMode::Fixed, "adam", Objective::Elbo, 1},
      {"bernoulli, adagrad, iwae k=3", LikelihoodKind::Bernoulli, SigmaMode::Fixed, "adagrad", Objective::Iwae,
       3},
      {"gaussian learned sigma, adam, iwae k=2", LikelihoodKind::Gaussian, SigmaMode::Learned, "adam",
       Objective::Iwae, 2},
      {"gaussian per-pixel sigma, adam, elbo k=2", LikelihoodKind::Gaussian, SigmaMode::PerPixel, "adam",
       Objective::Elbo, 2},
      // Rows longer than a strip of the weight-gradient kernel (1156 > 1024 columns), a row
      // count that leaves 4 for the last strip, and weight decay added to the strips.
      {"bernoulli, adam with weight decay, elbo, 34 x 34 images", LikelihoodKind::Bernoulli, SigmaMode::Fixed,
       "adam", Objective::Elbo, 1, 34, 70, 1e-3},
      // The IWAE paper's VAE column: the sampled KL's gradient reaches the heads through dz too.
      {"bernoulli, adam, elbo, sampled KL", LikelihoodKind::Bernoulli, SigmaMode::Fixed, "adam",
       Objective::Elbo, 1, 6, 10, 0, true},
      {"bernoulli, adam, elbo k=5, sampled KL", LikelihoodKind::Bernoulli, SigmaMode::Fixed, "adam",
       Objective::Elbo, 5, 6, 10, 0, true},
  };
  for (const FusedCase& c : cases) {
    DYNAMIC_SECTION(c.name) {
      const auto images = small_images(22, c.side);
      VaeShape shape;
      shape.data_dim = c.side * c.side;
      shape.latent = 3;
      shape.hidden = {c.hidden, 7};
      shape.activation = Activation::Tanh;
      Likelihood<float> lik;
      lik.kind = c.kind;
      lik.sigma = c.sigma;
      Vae<float> fused(shape, lik), plain(shape, lik);
      REQUIRE(fused.streams_grads());
      std::mt19937_64 init(7);
      fused.initialize(Init::Uniform, 0, init);
      plain.params = fused.params;
      typename Vae<float>::Work wf, wp;
      const std::size_t B = 8;
      fused.reserve(wf, B * c.k);
      plain.reserve(wp, B * c.k);
      Optimizer<float> of, op;
      of.configure(c.optimizer, 0.9, 0.999, 1e-8, 1e-10, fused.num_params());
      op.configure(c.optimizer, 0.9, 0.999, 1e-8, 1e-10, plain.num_params());
      of.weight_decay = op.weight_decay = c.weight_decay;
      std::vector<uint32_t> order(images.n);
      for (std::size_t i = 0; i < order.size(); ++i) order[i] = uint32_t((i * 7) % order.size());
      std::mt19937_64 rf(11), rp(11);
      ObjectiveParams p{1.0, 0.0, c.objective, c.k};
      p.sampled_kl = c.sampled_kl;
      for (int epoch = 0; epoch < 2; ++epoch)
        for (std::size_t start = 0; start < images.n; start += B) {
          const std::size_t rows = std::min(B, images.n - start);  // 8, 8, then 6
          const double lr = 1e-2 / double(epoch + 1);
          const BatchLoss lf = train_step_update(fused, wf, images, order.data() + start, rows, true, rf, p, of,
                                                 lr);
          const BatchLoss lp = train_step(plain, wp, images, order.data() + start, rows, true, rp, p);
          op.step(plain.params, plain.grads, lr);
          INFO("epoch " << epoch << ", rows from " << start);
          REQUIRE(std::isfinite(lf.loss));
          CHECK(lf.loss == lp.loss);
          REQUIRE(same_bits(fused.params, plain.params));
          if (of.is_adam) {
            CHECK(same_bits(of.adam.m, op.adam.m));
            CHECK(same_bits(of.adam.v, op.adam.v));
            CHECK(of.adam.t == op.adam.t);
          } else {
            CHECK(same_bits(of.adagrad.sum_sq, op.adagrad.sum_sq));
          }
          // The fused step leaves the gradients at zero for the next one.
          CHECK(std::all_of(fused.grads.begin(), fused.grads.end(), [](float g) { return g == 0.0f; }));
        }
      // The parameters moved (the comparison is not of two untouched copies).
      Vae<float> start(shape, lik);
      std::mt19937_64 again(7);
      start.initialize(Init::Uniform, 0, again);
      CHECK_FALSE(same_bits(start.params, fused.params));
    }
  }
}

TEST_CASE("a fused step with a non-finite loss leaves the parameters as they were", "[optimizer][fused]") {
  VaeShape shape;
  shape.data_dim = 36;
  shape.latent = 3;
  shape.hidden = {5};
  Likelihood<float> lik;
  Vae<float> model(shape, lik);
  std::mt19937_64 init(1);
  model.initialize(Init::Uniform, 0, init);
  for (const ParamRange& g : model.param_groups())
    if (g.name == "dec_out.b") model.params[g.offset] = std::nanf("");  // every row's likelihood becomes NaN
  const Buffer<float> before = model.params;
  typename Vae<float>::Work w;
  model.reserve(w, 4);
  Optimizer<float> opt;
  opt.configure("adam", 0.9, 0.999, 1e-8, 1e-10, model.num_params());
  const auto images = small_images(4, 6);
  const std::vector<uint32_t> order{0, 1, 2, 3};
  std::mt19937_64 rng(2);
  const BatchLoss l = train_step_update(model, w, images, order.data(), 4, false, rng, ObjectiveParams{}, opt,
                                        1e-3);
  CHECK_FALSE(std::isfinite(l.loss));
  CHECK(opt.adam.t == 0);
  CHECK(std::memcmp(before.data(), model.params.data(), before.size() * sizeof(float)) == 0);
}

TEST_CASE("encoding once per example gives the loss and gradient of encoding all k copies", "[fused][iwae]") {
  // The ELBO with either KL estimate: the sampled one's gradient reaches mu and logvar through z.
  struct Variant {
    const char* name;
    Objective objective;
    bool sampled_kl;
  };
  for (const Variant v : {Variant{"iwae", Objective::Iwae, true}, Variant{"elbo", Objective::Elbo, false},
                          Variant{"elbo, sampled KL", Objective::Elbo, true}}) {
    const Objective o = v.objective;
    const bool sampled = v.sampled_kl;
    for (const bool iaf : {false, true}) {
      DYNAMIC_SECTION(v.name << " k = 5" << (iaf ? ", IAF posterior" : "")) {
        VaeShape shape;
        shape.data_dim = 36;
        shape.latent = 4;
        shape.hidden = {10, 7};
        shape.activation = Activation::Tanh;
        if (iaf) {
          shape.posterior = PosteriorKind::Iaf;
          shape.iaf.steps = 2;
          shape.iaf.hidden = 6;
          shape.iaf.context = 3;
        }
        Vae<double> m(shape, Likelihood<double>{});
        std::mt19937_64 init(5);
        m.initialize(Init::Uniform, 0, init);
        typename Vae<double>::Work w;
        const std::size_t B = 3, k = 5, R = B * k;
        m.reserve(w, R);
        const auto images = small_images(B, 6);
        const std::vector<uint32_t> order{0, 1, 2};
        std::mt19937_64 rng(9);
        ObjectiveParams p{1.0, 0.0, o, k};
        p.sampled_kl = sampled;
        fill_batch(m, w, images, order.data(), B, true, rng, p);
        const BatchLoss once = loss_and_grad(m, w, B, p);
        const std::vector<double> g_once(m.grads.begin(), m.grads.end());
        // The same rows with w.k = 1: every copy encoded (what forward does outside training).
        std::fill(m.grads.begin(), m.grads.end(), 0.0);
        const bool iwae = o == Objective::Iwae;
        w.sampled_kl = sampled;
        m.forward(w, R);
        const BatchLoss all = iwae ? iwae_objective(m, w, B, k) : elbo_objective(m, w, R, p);
        m.backward(w, R, iwae ? 1.0 : 1.0 / double(R));
        CHECK(once.loss == Approx(all.loss).epsilon(1e-12));
        double worst = 0, scale = 0;
        for (std::size_t i = 0; i < g_once.size(); ++i) {
          worst = std::max(worst, std::abs(g_once[i] - m.grads[i]));
          scale = std::max(scale, std::abs(m.grads[i]));
        }
        INFO("max |difference| " << worst << ", max |gradient| " << scale);
        CHECK(scale > 0);
        CHECK(worst <= 1e-12 * scale);
      }
    }
  }
}

}  // namespace test_fused_step
