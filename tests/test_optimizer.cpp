// Optimizers against torch.optim (float64): tests/golden/make_golden_optim.py.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "nn/optimizer.hpp"
#include "test_paths.hpp"

using namespace vae;

TEST_CASE("Adam and Adagrad steps equal torch.optim's", "[optimizer][golden]") {
  std::ifstream in(std::string(vae::testing::test_dir()) + "/golden/optimizers.json");
  REQUIRE(in.good());
  const auto g = nlohmann::json::parse(in);
  const auto p0 = g["p0"].get<std::vector<double>>();
  for (const char* kind : {"adam", "adagrad"}) {
    DYNAMIC_SECTION(kind) {
      const auto& c = g["cases"][kind];
      Optimizer<double> opt;
      opt.configure(kind, c.value("beta1", 0.9), c.value("beta2", 0.999), c["eps"], c["eps"], p0.size());
      Buffer<double> p(p0.begin(), p0.end()), grad(p0.size());
      for (std::size_t s = 0; s < 3; ++s) {
        const auto gs = g["grads"][s].get<std::vector<double>>();
        std::copy(gs.begin(), gs.end(), grad.begin());
        opt.step(p, grad, c["lr"]);
        const auto want = c["steps"][s].get<std::vector<double>>();
        for (std::size_t i = 0; i < p.size(); ++i) {
          INFO("step " << s + 1 << " index " << i);
          CHECK(p[i] == Approx(want[i]).epsilon(1e-12).margin(1e-14));
        }
      }
    }
  }
}
