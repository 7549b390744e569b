// Conv2d, ConvTranspose2d and BatchNorm2d (lib/nn/conv.hpp, conv_net.hpp) against PyTorch
// float64 (tests/golden/make_golden_conv.py wrote tests/golden/conv.json), by finite
// differences in double (layers with uneven stride/padding, and a small conv VAE with every
// likelihood and both posteriors), and the MNIST preset against the PyTorch peer's shapes
// and parameter count.
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "golden_util.hpp"
#include "gradcheck.hpp"
#include "models/algorithms.hpp"
#include "models/model.hpp"
#include "models/settings.hpp"
#include "models/vae.hpp"
#include "nn/conv_net.hpp"
#include "train/checkpoint.hpp"
#include "train/run.hpp"

// This file's names stay its own: the model tests compile in unity groups (CMakeLists.txt).
namespace test_conv {

using namespace vae;
using json = nlohmann::json;
using vae::test::max_rel_error;
using vae::testing::expect_near;

namespace {

std::vector<double> to_vec(const json& j) { return j.get<std::vector<double>>(); }

// One layer of either kind with its parameters in P (W then b), as the golden case states it.
struct AnyConv {
  bool transposed;
  Conv2d c;
  ConvTranspose2d t;
  ParamLayout layout;
  AnyConv(bool tr, std::size_t cin, std::size_t cout, std::size_t k, std::size_t s, std::size_t p,
          std::size_t op, std::size_t H, std::size_t W)
      : transposed(tr) {
    if (tr) t = ConvTranspose2d::make(layout, cin, cout, k, s, p, op, op, H, W);
    else c = Conv2d::make(layout, cin, cout, k, s, p, H, W);
  }
  std::size_t in_size() const { return transposed ? t.in_size() : c.in_size(); }
  std::size_t out_size() const { return transposed ? t.out_size() : c.out_size(); }
  std::size_t col_size() const { return transposed ? t.col_size() : c.col_size(); }
  std::size_t out_pixels() const { return transposed ? t.out_pixels() : c.out_pixels(); }
  std::size_t hb() const { return transposed ? t.g.hb : c.g.hs; }  // output height
  std::size_t wb() const { return transposed ? t.g.wb : c.g.ws; }
  void forward(double* y, double* col, const double* x, double* P, std::size_t B) const {
    if (transposed) conv_transpose2d_forward(y, col, x, t, P, B);
    else conv2d_forward(y, col, x, c, P, B);
  }
  // col must hold the forward's patches (Conv2d); dcol is scratch.
  void backward(double* dx, double* dcol, double* G, const double* dy, const double* x, const double* col,
                double* P, std::size_t B, const double* ones) const {
    if (transposed) conv_transpose2d_backward(dx, dcol, G, dy, x, t, P, B, ones);
    else conv2d_backward(dx, dcol, G, dy, col, c, P, B, ones);
  }
};

}  // namespace

TEST_CASE("Conv2d and ConvTranspose2d outputs and gradients equal PyTorch's", "[conv][golden]") {
  const json golden = vae::testing::load_golden("conv.json");
  REQUIRE(golden["convs"].size() == 5);
  for (const json& g : golden["convs"]) {
    DYNAMIC_SECTION(g["name"].get<std::string>()) {
      const std::size_t B = g["B"];
      AnyConv l(g["transposed"], g["cin"], g["cout"], g["k"], g["stride"], g["pad"], g["out_pad"], g["H"],
                g["W"]);
      CHECK(l.hb() == g["Ho"].get<std::size_t>());
      CHECK(l.wb() == g["Wo"].get<std::size_t>());
      auto x = to_vec(g["x"]), r = to_vec(g["r"]), w = to_vec(g["weight"]), b = to_vec(g["bias"]);
      REQUIRE(x.size() == B * l.in_size());
      REQUIRE(r.size() == B * l.out_size());
      std::vector<double> P(w), G(l.layout.size, 0.0);
      P.insert(P.end(), b.begin(), b.end());
      REQUIRE(P.size() == l.layout.size);
      std::vector<double> y(B * l.out_size()), col(B * l.col_size()), dcol(B * l.col_size()), dx(x.size(), 7.0);
      std::vector<double> ones(B * l.out_pixels(), 1.0);
      l.forward(y.data(), col.data(), x.data(), P.data(), B);
      l.backward(dx.data(), dcol.data(), G.data(), r.data(), x.data(), col.data(), P.data(), B, ones.data());
      expect_near(y.data(), g["y"], 1e-12, "y");
      expect_near(dx.data(), g["dx"], 1e-12, "dx");
      expect_near(G.data(), g["dweight"], 1e-12, "dweight");
      expect_near(G.data() + w.size(), g["dbias"], 1e-12, "dbias");
    }
  }
}

TEST_CASE("BatchNorm2d over channels-last images equals PyTorch's", "[conv][batchnorm][golden]") {
  const json golden = vae::testing::load_golden("conv.json");
  REQUIRE(golden["norms"].size() == 3);
  for (const json& g : golden["norms"]) {
    DYNAMIC_SECTION(g["name"].get<std::string>()) {
      const std::size_t B = g["B"], C = g["C"], HW = g["H"].get<std::size_t>() * g["W"].get<std::size_t>();
      const bool training = g["training"];
      const std::size_t rows = B * HW;
      ParamLayout pl, sl;
      BatchNorm n = BatchNorm::make(pl, sl, C);
      std::vector<double> P(pl.size), G(pl.size, 0.0), S(sl.size);
      auto put = [](std::vector<double>& dst, std::size_t off, const json& v) {
        for (std::size_t i = 0; i < v.size(); ++i) dst[off + i] = v[i].get<double>();
      };
      put(P, n.gamma, g["gamma"]);
      put(P, n.beta, g["beta"]);
      put(S, n.mean, g["running_mean_before"]);
      put(S, n.var, g["running_var_before"]);
      ConvBlockWork<double> w;
      w.reserve(B, 0, HW * C, C, true);
      auto x = to_vec(g["x"]), r = to_vec(g["r"]);
      std::copy(x.begin(), x.end(), w.pre.ptr());
      std::vector<double> ones(rows, 1.0);
      norm_act_forward(w.post.ptr(), w, n, Activation::Identity, P.data(), S.data(), rows, C, training,
                       ones.data());
      expect_near(w.post.ptr(), g["y"], 1e-12, "y");
      std::copy(r.begin(), r.end(), w.grad.ptr());
      norm_act_backward(w.grad.ptr(), w, w.post.ptr(), n, Activation::Identity, P.data(), G.data(), rows, C,
                        training, ones.data());
      expect_near(w.grad.ptr(), g["dx"], 1e-10, "dx");
      expect_near(G.data() + n.gamma, g["dgamma"], 1e-12, "dgamma");
      expect_near(G.data() + n.beta, g["dbeta"], 1e-12, "dbeta");
      expect_near(S.data() + n.mean, g["running_mean_after"], 1e-12, "running mean");
      expect_near(S.data() + n.var, g["running_var_after"], 1e-12, "running var");
    }
  }
}

TEST_CASE("Conv2d and ConvTranspose2d gradients match finite differences with uneven geometry",
          "[conv][gradcheck]") {
  struct G {
    const char* name;
    bool transposed;
    std::size_t cin, cout, k, s, p, op, H, W;
  };
  const G cases[] = {
      {"conv2d k3 s2 p1 on 7x5", false, 2, 3, 3, 2, 1, 0, 7, 5},
      {"conv2d k4 s3 p2 on 8x7", false, 3, 2, 4, 3, 2, 0, 8, 7},
      {"convtranspose2d k3 s2 p1 op1 on 3x4", true, 3, 2, 3, 2, 1, 1, 3, 4},
      {"convtranspose2d k4 s3 p1 op2 on 3x2", true, 2, 3, 4, 3, 1, 2, 3, 2},
      {"convtranspose2d k5 s2 p2 op0 on 2x3", true, 2, 2, 5, 2, 2, 0, 2, 3},
  };
  for (const G& c : cases) {
    DYNAMIC_SECTION(c.name) {
      const std::size_t B = 2;
      AnyConv l(c.transposed, c.cin, c.cout, c.k, c.s, c.p, c.op, c.H, c.W);
      std::mt19937_64 rng(7);
      std::normal_distribution<double> n(0.0, 1.0);
      std::vector<double> P(l.layout.size), x(B * l.in_size()), r(B * l.out_size());
      for (auto* v : {&P, &x, &r})
        for (double& e : *v) e = n(rng);
      std::vector<double> y(r.size()), col(B * l.col_size()), dcol(col.size()), dx(x.size());
      std::vector<double> ones(B * l.out_pixels(), 1.0), G(P.size(), 0.0);
      auto f = [&]() {
        l.forward(y.data(), col.data(), x.data(), P.data(), B);
        double s = 0;
        for (std::size_t i = 0; i < y.size(); ++i) s += y[i] * r[i];
        return s;
      };
      f();
      l.backward(dx.data(), dcol.data(), G.data(), r.data(), x.data(), col.data(), P.data(), B, ones.data());
      const std::size_t nw = P.size() - c.cout;
      CHECK(max_rel_error(P, G, f, {{"W", 0, nw}, {"b", nw, c.cout}}) <= 1e-6);
      CHECK(max_rel_error(x, dx, f) <= 1e-6);
    }
  }
}

TEST_CASE("col2im_set sums each pixel's patch entries as col2im does, in the same order", "[conv]") {
  // (k, stride, pad, small h x w, big h x w): Conv2d geometries (big = input) with uneven
  // padding and strides, and a transposed one's with output padding (a big row no tap reaches)
  struct G {
    std::size_t k, s, p, hs, ws, hb, wb;
  };
  const G cases[] = {
      {3, 1, 1, 5, 4, 5, 4}, {4, 2, 1, 3, 3, 7, 6}, {4, 3, 2, 3, 3, 8, 7}, {3, 2, 1, 3, 4, 7, 8}};
  std::mt19937_64 rng(11);
  std::normal_distribution<float> n(0.0f, 1.0f);
  for (const G& c : cases)
    for (std::size_t C : {std::size_t(1), std::size_t(5)}) {
      const ConvGeom g = ConvGeom::make(c.k, c.s, c.p, c.hs, c.ws, c.hb, c.wb);
      const std::size_t B = 2;
      std::vector<float> col(B * g.small_pixels() * g.taps() * C), init(C);
      for (auto* v : {&col, &init})
        for (float& e : *v) e = n(rng);
      for (const float* start : {static_cast<const float*>(nullptr), static_cast<const float*>(init.data())}) {
        std::vector<float> want(B * g.big_pixels() * C), got(want.size(), std::nanf(""));
        for (std::size_t q = 0; q < B * g.big_pixels(); ++q)
          for (std::size_t ch = 0; ch < C; ++ch) want[q * C + ch] = start ? start[ch] : 0.0f;
        col2im(want.data(), col.data(), g, B, C);
        col2im_set(got.data(), col.data(), g, B, C, start);
        INFO("k " << c.k << " stride " << c.s << " pad " << c.p << ", C " << C << (start ? ", with init" : ""));
        CHECK(got == want);  // bit for bit: the same additions in the same order
      }
    }
}

namespace {

Likelihood<double> lik_of(LikelihoodKind kind, SigmaMode sigma) {
  Likelihood<double> l;
  l.kind = kind;
  l.sigma = sigma;
  l.fixed_log_sigma = std::log(0.7);
  l.min_log_sigma = sigma == SigmaMode::Optimal ? -40.0 : -2.0;  // as test_gradcheck_vae.cpp
  return l;
}

}  // namespace

TEST_CASE("small conv VAE gradient matches finite differences for every likelihood and posterior",
          "[conv][gradcheck][vae]") {
  struct Case {
    const char* name;
    LikelihoodKind kind;
    SigmaMode sigma;
    bool iaf, training;
  };
  const Case cases[] = {
      {"bernoulli", LikelihoodKind::Bernoulli, SigmaMode::Fixed, false, true},
      {"bernoulli evaluation-mode batch norm", LikelihoodKind::Bernoulli, SigmaMode::Fixed, false, false},
      {"gaussian fixed", LikelihoodKind::Gaussian, SigmaMode::Fixed, false, true},
      {"gaussian learned", LikelihoodKind::Gaussian, SigmaMode::Learned, false, true},
      {"gaussian optimal", LikelihoodKind::Gaussian, SigmaMode::Optimal, false, true},
      {"gaussian per-pixel", LikelihoodKind::Gaussian, SigmaMode::PerPixel, false, true},
      {"bernoulli iaf", LikelihoodKind::Bernoulli, SigmaMode::Fixed, true, true},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.name) {
      VaeShape shape;
      shape.arch = Arch::Conv;
      shape.conv.rows = 8;
      shape.conv.cols = 6;  // 8x6 -> 4x3 -> 2x2 and back with output paddings (1, 1), (1, 0)
      shape.conv.channels = {3, 4};
      shape.conv.kernel = 3;
      shape.data_dim = 48;
      shape.latent = 3;
      shape.activation = Activation::Tanh;  // smooth: finite differences never straddle a kink
      if (c.iaf) {
        shape.posterior = PosteriorKind::Iaf;
        shape.iaf.steps = 2;
        shape.iaf.hidden = 5;
        shape.iaf.layers = 1;
        shape.iaf.context = 2;
      }
      Vae<double> model(shape, lik_of(c.kind, c.sigma));
      const ConvDecoder<double>& decoder = dynamic_cast<const ConvVaeDecoder<double>&>(model.decoder()).body();
      REQUIRE(decoder.deconvs.back().g.hb == 8);
      REQUIRE(decoder.deconvs.back().g.wb == 6);
      std::mt19937_64 rng(42);
      model.initialize(Init::Uniform, 0, rng);
      if (model.lik.has_shared_param()) model.params[model.lik.shared_offset] = -0.4;
      // Off gamma = 1, beta = 0 and the initial running statistics, so that their gradients
      // and the evaluation-mode path are exercised away from the special values.
      std::uniform_real_distribution<double> u(0.0, 1.0);
      for (const auto& g : model.param_groups())
        if (g.name.find("gamma") != std::string::npos || g.name.find("beta") != std::string::npos)
          for (std::size_t i = 0; i < g.size; ++i) model.params[g.offset + i] += 0.4 * (u(rng) - 0.5);
      for (double& s : model.state) s += 0.3 * u(rng);
      const std::size_t B = 4;
      typename Vae<double>::Work w;
      model.reserve(w, 8);
      w.training = c.training;
      for (std::size_t i = 0; i < B * shape.data_dim; ++i)
        w.x.data[i] = c.kind == LikelihoodKind::Bernoulli ? double(u(rng) < 0.4) : u(rng);
      std::normal_distribution<double> n(0.0, 1.0);
      for (std::size_t i = 0; i < B * shape.latent; ++i) w.eps.data[i] = n(rng);
      ObjectiveParams p{1.5, 0.0};
      std::fill(model.grads.begin(), model.grads.end(), 0.0);
      BatchLoss l = loss_and_grad(model, w, B, p);
      REQUIRE(std::isfinite(l.loss));
      std::vector<double> analytic(model.grads.begin(), model.grads.end());
      auto f = [&]() {
        model.forward(w, B);
        return elbo_objective(model, w, B, p).loss;
      };
      // In training mode a convolution's bias followed by batch norm is subtracted again with
      // the batch mean: its gradient is exactly zero, so finite differences of it are pure
      // rounding noise and a relative error means nothing. It is checked to be zero instead
      // (the evaluation-mode case checks those biases against finite differences).
      const std::size_t n_deconv = decoder.deconvs.size();
      auto before_batch_norm = [&](const std::string& name) {
        if (name.size() < 2 || name.compare(name.size() - 2, 2, ".b") != 0) return false;
        const std::string layer = name.substr(0, name.size() - 2);
        if (layer.rfind("conv", 0) == 0) return true;
        return layer.rfind("deconv", 0) == 0 && layer != "deconv_logsig" &&
               layer != "deconv" + std::to_string(n_deconv - 1);
      };
      std::vector<vae::test::Group> groups;
      std::size_t covered = 0, zero_groups = 0;
      for (const auto& g : model.param_groups()) {
        covered += g.size;
        if (c.training && before_batch_norm(g.name)) {
          ++zero_groups;
          for (std::size_t i = 0; i < g.size; ++i) {
            INFO(g.name << "[" << i << "]");
            CHECK(std::abs(analytic[g.offset + i]) <= 1e-12);
          }
          continue;
        }
        groups.push_back({g.name, g.offset, g.size});
      }
      CHECK(covered == model.num_params());                      // the groups name every parameter once
      if (c.training) CHECK(zero_groups == 2 + (n_deconv - 1));  // conv0, conv1, deconv0
      CHECK(max_rel_error(model.params, analytic, f, groups) <= 1e-6);
    }
  }
}

TEST_CASE("the conv preset has the PyTorch peer's shapes and parameter count", "[conv][model]") {
  const json golden = vae::testing::load_golden("conv.json");
  for (const auto& [latent, count] : golden["peer_conv_vae_params"].items()) {
    DYNAMIC_SECTION("latent " << latent) {
      TrainConfig tc = to_train_config([&] {
        ConfigMap c = default_config();
        vae::apply(c, {{"arch", std::string("conv")}, {"latent", int64_t(std::stoi(latent))}});
        return c;
      }());
      std::mt19937_64 rng(0);
      auto model = make_model(tc, 28, 28, rng);
      CHECK(model->num_params() == count.get<std::size_t>());
      // 4 BatchNorm2d in the encoder and 3 in the decoder, running mean and variance each
      CHECK(model->state().size() == 2 * (32 + 64 + 128 + 256) + 2 * (128 + 64 + 32));
    }
  }
  VaeShape shape;
  shape.arch = Arch::Conv;
  shape.data_dim = 784;
  shape.latent = 8;
  Vae<float> m(shape, Likelihood<float>{});
  const ConvEncoder<float>& encoder = dynamic_cast<const ConvVaeEncoder<float>&>(m.encoder()).body();
  const ConvDecoder<float>& decoder = dynamic_cast<const ConvVaeDecoder<float>&>(m.decoder()).body();
  std::vector<std::size_t> enc_sizes, dec_sizes, out_pads;
  for (const Conv2d& c : encoder.convs) enc_sizes.push_back(c.g.hs);
  for (const ConvTranspose2d& c : decoder.deconvs) {
    dec_sizes.push_back(c.g.hb);
    out_pads.push_back(c.out_pad_h);
    CHECK(c.out_pad_w == c.out_pad_h);
  }
  CHECK(enc_sizes == std::vector<std::size_t>{14, 7, 4, 2});
  CHECK(encoder.out_size() == 1024);
  CHECK(decoder.fc.out == 1024);
  CHECK(dec_sizes == std::vector<std::size_t>{4, 7, 14, 28});
  CHECK(out_pads == std::vector<std::size_t>{1, 0, 1, 1});  // the peer's output_padding
  CHECK(decoder.norms.size() == 3);                         // none after the last
}

TEST_CASE("conv VAE trains, evaluates with running statistics and restores them", "[conv][model]") {
  ConfigMap c = default_config();
  vae::apply(c, {{"arch", std::string("conv")},
                 {"conv-channels", std::vector<int64_t>{4, 8}},
                 {"latent", int64_t(2)},
                 {"likelihood", std::string("gaussian")},
                 {"binarize", std::string("none")},
                 {"sigma", std::string("optimal")}});
  const TrainConfig tc = to_train_config(c);
  std::mt19937_64 rng(1);
  auto model = make_model(tc, 10, 7, rng);  // Frey-like odd sizes: 10x7 -> 5x4 -> 3x2 and back
  data::Images images;
  images.n = 6;
  images.rows = 10;
  images.cols = 7;
  images.scale = 1.0 / 255.0;
  images.pixels.resize(images.n * 70);
  for (std::size_t i = 0; i < images.pixels.size(); ++i) images.pixels[i] = uint8_t((i * 37) % 256);
  model->reserve(4, 6);
  const std::vector<float> state0 = model->state();
  std::vector<uint32_t> idx{0, 1, 2, 3};
  const BatchLoss l = model->train_step(images, idx.data(), 4, false, rng, ObjectiveParams{});
  CHECK(std::isfinite(l.loss));
  const std::vector<float> state1 = model->state();
  CHECK(state1 != state0);  // a training step moves the running statistics
  std::mt19937_64 e1(5), e2(5);
  const ElboReport a = model->evaluate(images, e1);
  CHECK(std::isfinite(a.elbo));
  CHECK(model->state() == state1);  // evaluation does not
  // Evaluation reads the running statistics: other statistics, another ELBO; restored, the same.
  std::vector<float> other = state1;
  for (float& s : other) s += 0.5f;
  model->load_state(other);
  const ElboReport b = model->evaluate(images, e2);
  CHECK(b.elbo != a.elbo);
  model->load_state(state1);
  std::mt19937_64 e3(5);
  CHECK(model->evaluate(images, e3).elbo == a.elbo);
  CHECK_THROWS_AS(model->load_state(std::vector<float>(3)), std::runtime_error);
  std::mt19937_64 r4(2);
  CHECK(std::isfinite(model->iw_nll(images, 2, 10, 5, r4)));
  CHECK(model->decode_mean(std::vector<float>(4, 0.1f), 2).size() == 140);
}

TEST_CASE("conv settings that cannot work are refused with the key named", "[conv][config]") {
  auto make = [](std::map<std::string, Value> settings, std::size_t rows, std::size_t cols) {
    ConfigMap c = default_config();
    vae::apply(c, settings);
    std::mt19937_64 rng(0);
    return make_model(to_train_config(c), rows, cols, rng);
  };
  const std::map<std::string, Value> ladder{{"arch", std::string("conv")}, {"model", std::string("ladder")}};
  const std::map<std::string, Value> too_wide{{"arch", std::string("conv")}, {"conv-kernel", int64_t(8)}};
  CHECK_THROWS_WITH(make(ladder, 28, 28), Catch::Contains("key 'arch'"));
  CHECK_THROWS_WITH(make(too_wide, 4, 4), Catch::Contains("conv-kernel"));
  ConfigMap c = default_config();
  const std::map<std::string, Value> bad_arch{{"arch", std::string("cnn")}},
      bad_kernel{{"conv-kernel", int64_t(0)}};
  CHECK_THROWS_WITH(vae::apply(c, bad_arch), Catch::Contains("key 'arch'"));
  CHECK_THROWS_WITH(vae::apply(c, bad_kernel), Catch::Contains("key 'conv-kernel'"));
}

TEST_CASE("a stopped and resumed conv run ends with the numbers and running statistics of an uninterrupted one",
          "[conv][train][resume]") {
  namespace fs = std::filesystem;
  ConfigMap c = default_config();
  vae::apply(c, {{"arch", std::string("conv")},
                 {"conv-channels", std::vector<int64_t>{4, 8}},
                 {"latent", int64_t(3)},
                 {"likelihood", std::string("gaussian")},
                 {"sigma", std::string("optimal")},
                 {"train-size", int64_t(300)},
                 {"test-size", int64_t(50)},
                 {"batch", int64_t(50)},
                 {"epochs", int64_t(3)},
                 {"iw-samples", int64_t(10)},
                 {"iw-examples", int64_t(10)}});
  const fs::path base = fs::temp_directory_path() / ("vae_conv_resume_" + std::to_string(::getpid()));
  const fs::path whole = base / "whole", parts = base / "parts";
  fs::create_directories(whole);
  fs::create_directories(parts);
  const RunResult full = train_and_evaluate(c, RunOptions{whole.string(), false, true, nullptr}, nullptr);
  REQUIRE(full.status == "done");
  std::atomic<bool> stop{true};  // stop after the first epoch's checkpoint
  REQUIRE(train_and_evaluate(c, RunOptions{parts.string(), false, true, &stop}, nullptr).status == "stopped");
  const RunResult rest = train_and_evaluate(c, RunOptions{parts.string(), true, true, nullptr}, nullptr);
  REQUIRE(rest.status == "done");
  const Checkpoint a = load_checkpoint((whole / "last.ckpt").string()),
                   b = load_checkpoint((parts / "last.ckpt").string());
  CHECK(a.model_state.size() == 2 * (4 + 8) + 2 * 4);  // running mean and variance of 3 batch norms
  CHECK(a.params == b.params);
  CHECK(a.model_state == b.model_state);
  CHECK(rest.metrics.at("test_elbo") == full.metrics.at("test_elbo"));
  CHECK(rest.metrics.at("test_nll") == full.metrics.at("test_nll"));
  fs::remove_all(base);
}

}  // namespace test_conv
