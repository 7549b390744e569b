// The VAE's outputs, loss and gradients against PyTorch (float64) on the same small
// network, batch and noise: tests/golden/make_golden.py wrote tests/golden/vae_small.json.
// The IWAE paper's two models and objectives against the PyTorch reference that gives
// `vae reproduce` its expected values (bench/iwae_reference.py):
// tests/golden/make_golden_iwae.py wrote tests/golden/iwae_models.json.
#include <catch2/catch.hpp>

#include "golden_util.hpp"

#include "models/algorithms.hpp"
#include "models/ladder.hpp"
#include "models/vae.hpp"

// This file's names stay its own: the model tests compile in unity groups (CMakeLists.txt).
namespace test_golden {

using namespace vae;
using json = nlohmann::json;

using vae::testing::expect_near;
using vae::testing::load_golden;
using vae::testing::put;

// The golden case's parameters into the model's flat layout, group by group by name; every
// group of the model is in the file and every group of the file is in the model.
template <class M>
void put_params(M& model, const json& c) {
  std::size_t filled = 0;
  const auto groups = model.param_groups();
  for (const auto& g : groups) {
    INFO("group " << g.name);
    REQUIRE(c["params"].contains(g.name));
    REQUIRE(c["params"][g.name].size() == g.size);
    put(model.params, g.offset, c["params"][g.name]);
    filled += g.size;
  }
  REQUIRE(filled == model.num_params());
  REQUIRE(c["params"].size() == groups.size());
}

TEST_CASE("VAE forward, loss and gradients equal PyTorch's", "[golden][vae]") {
  const json golden = load_golden("vae_small.json");
  REQUIRE(golden["cases"].size() == 7);
  for (const json& c : golden["cases"]) {
    DYNAMIC_SECTION(c["name"].get<std::string>()) {
      VaeShape shape;
      shape.data_dim = c["D"];
      shape.latent = c["latent"];
      shape.hidden = c["hidden"].get<std::vector<std::size_t>>();
      shape.activation = parse_activation(c["activation"]);
      Likelihood<double> lik;
      lik.kind = c["likelihood"] == "bernoulli" ? LikelihoodKind::Bernoulli : LikelihoodKind::Gaussian;
      lik.sigma = parse_sigma_mode(c["sigma"]);
      lik.fixed_log_sigma = c["fixed_log_sigma"];
      lik.min_log_sigma = c["min_log_sigma"];
      Vae<double> model(shape, lik);

      // Our flat layout by its group names (enc<i>, enc_mu, ..., dec_out, [dec_logsig],
      // [log_sigma], .W and .b), named as the script names its tensors.
      put_params(model, c);
      const auto groups = model.param_groups();

      const std::size_t B = c["batch"];
      typename Vae<double>::Work w;
      model.reserve(w, B);
      put(w.x.data, 0, c["x"]);
      put(w.eps.data, 0, c["eps"]);
      std::fill(model.grads.begin(), model.grads.end(), 0.0);
      const BatchLoss l = loss_and_grad(model, w, B, ObjectiveParams{c["beta"], c["free_bits"]});

      const double tol = 1e-10;
      expect_near(w.mu.ptr(), c["mu"], tol, "mu");
      expect_near(w.logvar.ptr(), c["logvar"], tol, "logvar");
      expect_near(w.z.ptr(), c["z"], tol, "z");
      expect_near(w.out.ptr(), c["out"], tol, "decoder output");
      expect_near(w.rec.data(), c["rec"], tol, "-log p(x|z)");
      std::vector<double> kl_rows(B, 0.0);
      for (std::size_t b = 0; b < B; ++b)
        for (std::size_t j = 0; j < shape.latent; ++j) kl_rows[b] += w.kl.data[b * shape.latent + j];
      expect_near(kl_rows.data(), c["kl"], tol, "KL per example");
      CHECK(l.loss == Approx(c["loss"].get<double>()).epsilon(tol));
      for (const auto& g : groups)
        expect_near(model.grads.data() + g.offset, c["grads"][g.name], tol, "grad " + g.name);
    }
  }
}

// One case of iwae_models.json on our model: x replicated k times (row b k + j is sample j of
// example b), the file's noise, then our objective (the VAE's with the sampled KL, as the
// reference trains it); log w of every row, the loss and every gradient against the file's.
template <class M, class SetEps>
void check_iwae_case(M& model, const json& c, SetEps set_eps) {
  using Work = typename M::Work;
  put_params(model, c);
  const std::size_t B = c["batch"], k = c["k"], R = B * k, D = c["D"];
  Work w;
  model.reserve(w, R);
  put(w.x.data, 0, c["x"]);
  replicate_rows(w.x.ptr(), B, k, D);
  set_eps(w, c["eps"]);
  std::fill(model.grads.begin(), model.grads.end(), 0.0);
  ObjectiveParams p{1.0, 0.0, c["objective"] == "iwae" ? Objective::Iwae : Objective::Elbo, k};
  p.sampled_kl = true;
  const BatchLoss l = loss_and_grad(model, w, B, p);

  const double tol = 1e-10;
  std::vector<double> log_w(R);
  model.log_weights(w, R, log_w.data());
  expect_near(log_w.data(), c["log_w"], tol, "log w per row");
  CHECK(l.loss == Approx(c["loss"].get<double>()).epsilon(tol));
  for (const auto& g : model.param_groups())
    expect_near(model.grads.data() + g.offset, c["grads"][g.name], tol, "grad " + g.name);
}

TEST_CASE("The IWAE paper's models and objectives equal the PyTorch reference's", "[golden][iwae]") {
  const json golden = load_golden("iwae_models.json");
  REQUIRE(golden["cases"].size() == 4);
  for (const json& c : golden["cases"]) {
    DYNAMIC_SECTION(c["name"].get<std::string>()) {
      const auto hidden = c["hidden"].get<std::vector<std::size_t>>();
      const auto latent = c["latent"].get<std::vector<std::size_t>>();
      Likelihood<double> lik;
      lik.kind = LikelihoodKind::Bernoulli;
      if (c["layers"] == 1) {
        // The spec's `model = "vae"` row: x-h-h-z and z-h-h-x, tanh, log-variance head.
        VaeShape shape;
        shape.data_dim = c["D"];
        shape.latent = latent[0];
        shape.hidden = {hidden[0], hidden[0]};
        shape.activation = Activation::Tanh;
        Vae<double> model(shape, lik);
        check_iwae_case(model, c, [](Vae<double>::Work& w, const json& eps) { put(w.eps.data, 0, eps[0]); });
      } else {
        // The spec's `model = "hierarchical"` rows: bottom-up inference, blocks of depth 2,
        // no batch norm, variance = exp(a).
        LadderShape shape;
        shape.data_dim = c["D"];
        shape.latent = latent;
        shape.hidden = hidden;
        shape.depth = 2;
        shape.act = Nonlinearity{Activation::Tanh};
        shape.batchnorm = false;
        shape.inference = Inference::BottomUp;
        shape.variance = VarianceHead::Exp;
        LadderVae<double> model(shape, lik);
        check_iwae_case(model, c, [](LadderVae<double>::Work& w, const json& eps) {
          for (std::size_t i = 0; i < eps.size(); ++i) put(w.layer[i].eps.data, 0, eps[i]);
        });
      }
    }
  }
}

}  // namespace test_golden
