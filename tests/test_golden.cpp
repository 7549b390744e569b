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

      // Our flat layout, named as the script names its tensors.
      std::vector<std::pair<std::string, const Linear*>> named;
      for (std::size_t i = 0; i < model.encoder.layers.size(); ++i)
        named.push_back({"enc" + std::to_string(i), &model.encoder.layers[i]});
      named.push_back({"enc_mu", &model.enc_mu});
      named.push_back({"enc_logvar", &model.enc_logvar});
      for (std::size_t i = 0; i < model.decoder.layers.size(); ++i)
        named.push_back({"dec" + std::to_string(i), &model.decoder.layers[i]});
      named.push_back({"dec_out", &model.dec_out});
      if (model.lik.per_pixel()) named.push_back({"dec_logsig", &model.dec_logsig});
      std::size_t filled = 0;
      for (const auto& [name, lin] : named) {
        put(model.params, lin->w, c["params"][name + ".W"]);
        put(model.params, lin->b, c["params"][name + ".b"]);
        filled += lin->in * lin->out + lin->out;
      }
      if (model.lik.has_shared_param()) {
        put(model.params, model.lik.shared_offset, c["params"]["log_sigma"]);
        ++filled;
      }
      REQUIRE(filled == model.num_params());
      REQUIRE(c["params"].size() == named.size() * 2 + (model.lik.has_shared_param() ? 1 : 0));

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
      for (const auto& [name, lin] : named) {
        expect_near(model.grads.data() + lin->w, c["grads"][name + ".W"], tol, "grad " + name + ".W");
        expect_near(model.grads.data() + lin->b, c["grads"][name + ".b"], tol, "grad " + name + ".b");
      }
      if (model.lik.has_shared_param())
        expect_near(model.grads.data() + model.lik.shared_offset, c["grads"]["log_sigma"], tol,
                    "grad log_sigma");
    }
  }
}

}  // namespace test_golden
