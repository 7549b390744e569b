// Batch normalization against torch.nn.BatchNorm1d (float64) in training and evaluation
// mode: tests/golden/make_golden_batchnorm.py wrote tests/golden/batchnorm.json. Then the
// batch-normalized MLP block by finite differences in both modes.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "golden_util.hpp"
#include "gradcheck.hpp"
#include "nn/bn_mlp.hpp"

// This file's names stay its own: the model tests compile in unity groups (CMakeLists.txt).
namespace test_batchnorm {

using namespace vae;
using json = nlohmann::json;
using vae::testing::expect_near;

namespace {

std::vector<double> to_vec(const json& j) { return j.get<std::vector<double>>(); }

}  // namespace

TEST_CASE("batch norm forward, backward and running statistics equal PyTorch's", "[batchnorm][golden]") {
  const json golden = vae::testing::load_golden("batchnorm.json");
  REQUIRE(golden["cases"].size() == 5);
  CHECK(golden["eps"].get<double>() == kBatchNormEps);
  CHECK(golden["momentum"].get<double>() == kBatchNormMomentum);
  for (const json& c : golden["cases"]) {
    DYNAMIC_SECTION(c["name"].get<std::string>()) {
      const std::size_t B = c["B"], N = c["N"];
      const bool training = c["training"];
      auto x_ = to_vec(c["x"]), r_ = to_vec(c["r"]), gamma_ = to_vec(c["gamma"]), beta_ = to_vec(c["beta"]);
      auto rm_ = to_vec(c["running_mean_before"]), rv_ = to_vec(c["running_var_before"]);
      std::vector<double> y_(B * N), xhat_(B * N), dx_(B * N), scratch_(B * N), ones_(B, 1.0);
      std::vector<double> mean_(N), var_(N), inv_std_(N), s1_(N), s2_(N), dgamma_(N, 0.0), dbeta_(N, 0.0);
      auto x = mat(x_.data(), B, N), r = mat(r_.data(), B, N), y = mat(y_.data(), B, N);
      auto xhat = mat(xhat_.data(), B, N), dx = mat(dx_.data(), B, N), scratch = mat(scratch_.data(), B, N);
      auto gamma = vec(gamma_.data(), N), beta = vec(beta_.data(), N), rm = vec(rm_.data(), N),
           rv = vec(rv_.data(), N);
      auto mean = vec(mean_.data(), N), var = vec(var_.data(), N), inv_std = vec(inv_std_.data(), N);
      auto s1 = vec(s1_.data(), N), s2 = vec(s2_.data(), N), ones = vec(ones_.data(), B);
      auto dgamma = vec(dgamma_.data(), N), dbeta = vec(dbeta_.data(), N);
      if (training) {
        batchnorm_forward_train(y, xhat, mean, var, inv_std, x, gamma, beta, ones);
        batchnorm_backward_train(dx, dgamma, dbeta, r, xhat, inv_std, gamma, ones, scratch, s1, s2);
        batchnorm_update_running(rm, rv, mean, var, B);
      } else {
        batchnorm_forward_eval(y, xhat, inv_std, x, gamma, beta, rm, rv);
        batchnorm_backward_eval(dx, dgamma, dbeta, r, xhat, inv_std, gamma, ones, scratch);
      }
      const double tol = 1e-12;
      expect_near(y_.data(), c["y"], tol, "y");
      expect_near(dx_.data(), c["dx"], 1e-10, "dx");
      expect_near(dgamma_.data(), c["dgamma"], tol, "dgamma");
      expect_near(dbeta_.data(), c["dbeta"], tol, "dbeta");
      expect_near(rm_.data(), c["running_mean_after"], tol, "running mean");
      expect_near(rv_.data(), c["running_var_after"], tol, "running var");
    }
  }
}

TEST_CASE("batch-normalized MLP block gradients match finite differences in both modes",
          "[batchnorm][gradcheck]") {
  for (bool training : {true, false}) {
    for (const char* act : {"tanh", "leaky-relu"}) {
      DYNAMIC_SECTION((training ? "training " : "evaluation ") << act) {
        ParamLayout P, S;
        BnMlp<double> mlp;
        mlp.build(P, S, {5, 6, 4}, parse_nonlinearity(act), true);
        REQUIRE(mlp.norms.size() == 2);
        Buffer<double> params(P.size), grads(P.size, 0.0), stats(S.size);
        std::mt19937_64 rng(7);
        mlp.initialize(params.data(), stats.data(), Init::Uniform, 0, rng);
        // non-trivial gamma, beta and running statistics
        std::normal_distribution<double> n(0.0, 1.0);
        for (const BatchNorm& bn : mlp.norms)
          for (std::size_t j = 0; j < bn.n; ++j) {
            params[bn.gamma + j] = 1.0 + 0.3 * n(rng);
            params[bn.beta + j] = 0.5 * n(rng);
            stats[bn.mean + j] = 0.2 * n(rng);
            stats[bn.var + j] = 0.5 + std::abs(n(rng));
          }
        const std::size_t B = 6;
        std::vector<double> x_(B * 5), r_(B * 4), dx_(B * 5), out_(B * 4), dout_(B * 4);
        for (auto& v : x_) v = n(rng);
        for (auto& v : r_) v = n(rng);
        auto x = mat(x_.data(), B, 5), dx = mat(dx_.data(), B, 5);
        auto out = mat(out_.data(), B, 4), dout = mat(dout_.data(), B, 4);
        BnMlp<double>::Work w;
        mlp.reserve(w, B);
        // loss = sum(out * r) + 0.5 * sum(out^2): a nonlinear function of the output
        auto loss = [&]() {
          mlp.forward(out, w, x, params.data(), stats.data(), B, training);
          double l = 0;
          for (std::size_t i = 0; i < B * 4; ++i) l += out_[i] * r_[i] + 0.5 * out_[i] * out_[i];
          return l;
        };
        loss();
        for (std::size_t i = 0; i < B * 4; ++i) dout_[i] = r_[i] + out_[i];
        mlp.backward(&dx, w, dout, out, x, params.data(), grads.data(), B, training);
        std::vector<double> analytic(grads.begin(), grads.end());
        std::vector<vae::test::Group> groups;
        for (std::size_t k = 0; k < 2; ++k) {
          groups.push_back({"W" + std::to_string(k), mlp.layers[k].w, mlp.layers[k].in * mlp.layers[k].out});
          groups.push_back({"gamma" + std::to_string(k), mlp.norms[k].gamma, mlp.norms[k].n});
          groups.push_back({"beta" + std::to_string(k), mlp.norms[k].beta, mlp.norms[k].n});
        }
        REQUIRE(groups.back().offset + groups.back().size == params.size());
        CHECK(vae::test::max_rel_error(params, analytic, loss, groups) <= 1e-6);
        // and the input gradient
        std::vector<double> dx_analytic(dx_.begin(), dx_.end());
        CHECK(vae::test::max_rel_error(x_, dx_analytic, loss) <= 1e-6);
      }
    }
  }
}

}  // namespace test_batchnorm
