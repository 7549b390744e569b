// The VAE's outputs, loss and gradients against PyTorch (float64) on the same small
// network, batch and noise: tests/golden/make_golden.py wrote tests/golden/vae_small.json.
#include <catch2/catch.hpp>

#include "golden_util.hpp"

#include "models/algorithms.hpp"
#include "models/vae.hpp"

// This file's names stay its own: the model tests compile in unity groups (CMakeLists.txt).
namespace test_golden {

using namespace vae;
using json = nlohmann::json;

using vae::testing::expect_near;
using vae::testing::load_golden;
using vae::testing::put;

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
      std::size_t filled = 0;
      const auto groups = model.param_groups();
      for (const auto& g : groups) {
        REQUIRE(c["params"].contains(g.name));
        REQUIRE(c["params"][g.name].size() == g.size);
        put(model.params, g.offset, c["params"][g.name]);
        filled += g.size;
      }
      REQUIRE(filled == model.num_params());
      REQUIRE(c["params"].size() == groups.size());

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

}  // namespace test_golden
