#include "config/config.hpp"

#include <toml++/toml.h>
#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

namespace vae {

namespace {

OptionSpec opt(std::string key, ValueKind kind, Value def, std::string help,
               std::vector<std::string> choices = {}, std::optional<double> min = {},
               std::optional<double> max = {}, bool identity = true) {
  return OptionSpec{std::move(key), kind, std::move(def), std::move(help), std::move(choices), min, max,
                    identity};
}

using K = ValueKind;
using I = int64_t;

std::vector<OptionSpec> make_options() {
  return {
      // data
      opt("dataset", K::String, std::string("mnist"), "data set",
          {"mnist", "fashion-mnist", "binarized-mnist", "frey-face", "dsprites"}),
      opt("data-dir", K::String, std::string(""),
          "folder of the data files (default: $VAE_DATA_DIR, else ../shared/data/<set> "
          "beside the repository; Fashion-MNIST: /usr/share/datasets/fashion-mnist)",
          {}, {}, {}, false),
      opt("binarize", K::String, std::string("auto"),
          "dynamic: fresh Bernoulli draw each epoch (test set once, fixed seed); none: "
          "intensities in [0,1]; fixed: the Larochelle binarization; auto: dynamic for a "
          "Bernoulli likelihood, none for a Gaussian, fixed for binarized-mnist",
          {"auto", "dynamic", "none", "fixed"}),
      opt("train-size", K::Int, I(0), "use the first N training images (0: all)", {}, 0.0),
      opt("valid-size", K::Int, I(0),
          "hold out the last N training images for validation (binarized-mnist uses its "
          "own split when 0)",
          {}, 0.0),
      opt("test-size", K::Int, I(0), "use the first N test images (0: all)", {}, 0.0),
      opt("dsprites-cache", K::String, std::string(""),
          "dsprites: bit-packed file of the whole rendered grid (377 MB), written atomically when "
          "missing; its checksum is recorded with the run. \"\": render the split on the fly",
          {}, {}, {}, false),
      // model
      opt("model", K::String, std::string("vae"),
          "model: vae (one stochastic layer), hierarchical (L stochastic layers, bottom-up "
          "inference), ladder (Ladder VAE, Sonderby et al. 2016), nvae (NVAE-small, Vahdat & Kautz "
          "2020: a deep hierarchical convolutional VAE with residual cells, --nvae-*), vqvae (VQ-VAE, "
          "van den Oord et al. 2017: discrete codes on a conv grid, uniform or PixelCNN prior, --vq-*)",
          {"vae", "ladder", "hierarchical", "nvae", "vqvae"}),
      opt("vq-codebook", K::Int, I(64), "vqvae: codebook size K", {}, 2.0, 65536.0),
      opt("vq-dim", K::Int, I(16), "vqvae: dimension D of each code", {}, 1.0, 4096.0),
      opt("vq-channels", K::Int, I(64), "vqvae: channels of the encoder's and decoder's convolutions", {}, 1.0,
          4096.0),
      opt("vq-res-blocks", K::Int, I(2), "vqvae: residual blocks in the encoder and in the decoder", {}, 0.0,
          64.0),
      opt("vq-res-hidden", K::Int, I(32), "vqvae: channels inside a residual block (3x3 then 1x1 conv)", {},
          1.0, 4096.0),
      opt("vq-beta", K::Float, 0.25, "vqvae: weight beta of the commitment term beta ||z_e - sg(e)||^2", {},
          0.0),
      opt("vq-update", K::String, std::string("loss"),
          "vqvae: codebook update: loss (the codebook term ||sg(z_e) - e||^2) or ema (exponential moving "
          "averages of the assigned encoder outputs, VQ-VAE-2; --vq-decay)",
          {"loss", "ema"}),
      opt("vq-decay", K::Float, 0.99, "vqvae: decay of the EMA update and of the running code usage", {}, 0.0,
          1.0),
      opt("vq-restart", K::Float, 0.0,
          "vqvae: dead-code restart: a code whose running usage (assignments per step, decayed by "
          "--vq-decay) falls below this takes a random encoder output of the batch (0: off)",
          {}, 0.0),
      opt("vq-prior-epochs", K::Int, I(0),
          "vqvae: epochs of the second stage after --epochs: a gated PixelCNN prior over the code grid, "
          "trained on the frozen autoencoder's codes (0: the uniform prior)",
          {}, 0.0, 1e6),
      opt("vq-prior-layers", K::Int, I(4), "vqvae: residual gated layers of the PixelCNN prior", {}, 0.0, 64.0),
      opt("vq-prior-features", K::Int, I(32), "vqvae: channels of the PixelCNN prior", {}, 1.0, 4096.0),
      opt("layers", K::IntList, std::vector<I>{64, 32, 16, 8, 4},
          "ladder/hierarchical: stochastic layer sizes, bottom (next to x) first; the defaults "
          "of layers and det-layers are the paper's MNIST model",
          {}, 1.0, 4096.0),
      opt("det-layers", K::IntList, std::vector<I>{512, 256, 128, 64, 32},
          "ladder/hierarchical: width of the deterministic block under each stochastic layer "
          "(and of the generative block above it), one per entry of layers",
          {}, 1.0, 65536.0),
      opt("det-depth", K::Int, I(2),
          "ladder/hierarchical: dense layers per deterministic block (2 in the paper)", {}, 1.0, 16.0),
      opt("batchnorm", K::Bool, false,
          "ladder/hierarchical: batch normalization on every deterministic layer (batch statistics "
          "in training, running averages with momentum 0.1 in evaluation)"),
      opt("variance", K::String, std::string("softplus"),
          "ladder/hierarchical: variance of every Gaussian from its linear head a: softplus "
          "(softplus(a) + 1e-6, the Ladder paper's) or exp (exp(a), the IWAE paper's)",
          {"softplus", "exp"}),
      opt("nvae-scales", K::Int, I(2), "nvae: latent scales (each halves the resolution of the one below)", {},
          1.0, 4.0),
      opt("nvae-groups", K::Int, I(2), "nvae: latent groups per scale", {}, 1.0, 32.0),
      opt("nvae-latent-channels", K::Int, I(8), "nvae: channels of each latent group (a spatial latent)", {},
          1.0, 256.0),
      opt("nvae-channels", K::Int, I(16),
          "nvae: channels of the stem; each down-sampling cell doubles them (2 preprocessing cells: "
          "MNIST padded to 32x32 -> 8x8 at 4x the stem's channels)",
          {}, 1.0, 1024.0),
      opt("nvae-kl-balance", K::Bool, true,
          "nvae: KL balancing across groups during the KL warm-up (the paper's coefficients: "
          "proportional to each group's KL, divided by its scale's size factor)"),
      opt("nvae-spectral", K::Float, 1e-2,
          "nvae: coefficient of the spectral regularisation sum of the conv weights' largest singular "
          "values (one power iteration per step; the paper's MNIST setting is 1e-2)",
          {}, 0.0),
      opt("nvae-bn-momentum", K::Float, 0.05,
          "nvae: batch-norm momentum of the running statistics (the paper's 0.05; PyTorch's default 0.1)", {},
          0.0, 1.0),
      opt("nvae-temperature", K::Float, 1.0,
          "nvae: temperature of samples from the prior (sigma of every group times t; the paper shows "
          "t = 0.6-1.0); evaluation is always at t = 1",
          {}, 0.0, 10.0, false),
      opt("latent", K::Int, I(20), "latent dimension", {}, 1.0, 4096.0),
      opt("hidden", K::IntList, std::vector<I>{400},
          "hidden layer sizes of encoder and decoder (decoder mirrored), e.g. 500,500", {}, 1.0, 65536.0),
      opt("arch", K::String, std::string("mlp"),
          "encoder and decoder of model = vae: mlp (--hidden), or conv: --conv-channels stride-2 "
          "convolutions with batch norm, linear heads, and transposed convolutions back (the "
          "defaults are the MNIST preset of ../shared/bench/torch_vae_baseline.py --arch conv)",
          {"mlp", "conv"}),
      opt("conv-channels", K::IntList, std::vector<I>{32, 64, 128, 256},
          "arch = conv: encoder channels, each a Conv2d with stride 2 (the decoder mirrors them)", {}, 1.0,
          4096.0),
      opt("conv-kernel", K::Int, I(3), "arch = conv: kernel size (padding (k-1)/2)", {}, 1.0, 15.0),
      opt("activation", K::String, std::string("relu"),
          "hidden activation (leaky-relu: max(x, 0.01 x), ladder/hierarchical only)",
          {"relu", "tanh", "softplus", "sigmoid", "elu", "leaky-relu"}),
      opt("posterior", K::String, std::string("gaussian"),
          "approximate posterior: gaussian (diagonal), or iaf: the diagonal Gaussian followed by "
          "--iaf-steps inverse autoregressive flow steps (Kingma et al. 2016)",
          {"gaussian", "iaf"}),
      opt("iaf-steps", K::Int, I(2), "IAF: flow steps T (0: the diagonal Gaussian, analytic KL)", {}, 0.0,
          64.0),
      opt("iaf-hidden", K::Int, I(320), "IAF: hidden width of each step's MADE", {}, 1.0, 65536.0),
      opt("iaf-made-layers", K::Int, I(2), "IAF: hidden layers of each step's MADE", {}, 1.0, 16.0),
      opt("iaf-context", K::Int, I(64),
          "IAF: size of the encoder's extra output h, input to every step's MADE (0: none)", {}, 0.0, 65536.0),
      opt("iaf-forget-bias", K::Float, 1.0,
          "IAF: sigma = sigmoid(s + forget-bias); 1 starts each step close to keeping z", {}, -20.0, 20.0),
      opt("iaf-kl", K::String, std::string("sample"),
          "IAF: gradient of the single-sample KL log q(z_T|x) - log p(z_T): sample (exact) or stl "
          "(sticking the landing, Roeder et al. 2017: without the base Gaussian's zero-mean "
          "score term, less noise; same loss and expected gradient)",
          {"sample", "stl"}),
      opt("likelihood", K::String, std::string("bernoulli"), "decoder distribution p(x|z)",
          {"bernoulli", "gaussian"}),
      opt("sigma", K::String, std::string("fixed"),
          "Gaussian decoder sigma: fixed (--sigma-value), learned (one shared), optimal "
          "(sigma* = sqrt(minibatch MSE)), per-pixel (decoder output)",
          {"fixed", "learned", "optimal", "per-pixel"}),
      opt("sigma-value", K::Float, 1.0, "sigma for --sigma fixed", {}, 1e-6),
      opt("min-log-sigma", K::Float, -6.0,
          "soft lower bound of log sigma: s = b + softplus(s - b) (learned, optimal, per-pixel)", {}, -20.0,
          0.0),
      opt("gaussian-mean", K::String, std::string("sigmoid"),
          "Gaussian decoder mean: sigmoid of the output (data in [0,1]) or identity", {"sigmoid", "identity"}),
      opt("init", K::String, std::string("uniform"),
          "weight init: uniform U(-1/sqrt(fan_in), 1/sqrt(fan_in)) as PyTorch's Linear, "
          "normal N(0, init-std^2) with zero biases as Kingma & Welling, or glorot "
          "U(-a, a), a = sqrt(6/(fan_in + fan_out)), zero biases (Glorot & Bengio 2010; the IWAE paper's)",
          {"uniform", "normal", "glorot"}),
      opt("init-std", K::Float, 0.01, "standard deviation for --init normal", {}, 0.0),
      // objective
      opt("beta", K::Float, 1.0, "weight of the KL term (beta-VAE)", {}, 0.0),
      opt("warmup", K::Int, I(0), "linear KL warm-up from 0 to beta over N epochs", {}, 0.0),
      opt("free-bits", K::Float, 0.0,
          "free bits: minimum KL in nats per latent dimension (batch average), 0: off", {}, 0.0),
      opt("objective", K::String, std::string("elbo"),
          "training objective over --k samples per example: elbo (the mean of the k single-sample "
          "ELBOs) or iwae (Burda et al. 2016: log (1/k) sum_j p(x,z_j)/q(z_j|x), gradient with the "
          "self-normalised weights; no beta, warm-up or free bits; k = 1 is the ELBO)",
          {"elbo", "iwae"}),
      opt("k", K::Int, I(1), "samples of z per example in training (objective elbo or iwae)", {}, 1.0,
          100000.0),
      // optimisation
      opt("optimizer", K::String, std::string("adam"), "optimizer", {"adam", "adagrad"}),
      opt("lr", K::Float, 1e-3, "learning rate", {}, 0.0),
      opt("lr-schedule", K::String, std::string("constant"),
          "constant; exponential: lr * lr-decay^epoch; iwae: stages i = 0, 1, ... of 3^i epochs at "
          "lr * 10^(-i/7) (Burda et al. 2016: 3280 epochs are stages 0..7)",
          {"constant", "exponential", "iwae"}),
      opt("lr-decay", K::Float, 1.0, "learning-rate factor per epoch (exponential schedule)", {}, 0.0, 1.0),
      opt("adam-beta1", K::Float, 0.9, "Adam beta1", {}, 0.0, 1.0),
      opt("adam-beta2", K::Float, 0.999, "Adam beta2", {}, 0.0, 1.0),
      opt("adam-eps", K::Float, 1e-8, "Adam epsilon", {}, 0.0),
      opt("adagrad-eps", K::Float, 1e-10, "Adagrad epsilon", {}, 0.0),
      opt("batch", K::Int, I(128), "minibatch size", {}, 1.0, 1e6),
      opt("epochs", K::Int, I(10), "training epochs", {}, 0.0, 1e6),
      opt("seed", K::Int, I(0), "random seed (initialisation, batches, noise)", {}, 0.0),
      opt("threads", K::Int, I(1), "OpenBLAS threads", {}, 1.0, 256.0, false),
      // evaluation
      opt("iw-samples", K::Int, I(5000), "importance samples K for the test log-likelihood (0: skip)", {}, 0.0),
      opt("iw-examples", K::Int, I(1000),
          "test examples for the importance-weighted estimate (0: the whole test set)", {}, 0.0),
      opt("iw-chunk", K::Int, I(500), "importance samples decoded at once", {}, 1.0, 1e6, false),
      opt("eval-every", K::Int, I(0), "test ELBO every N epochs (0: only at the end)", {}, 0.0),
      // disentanglement metrics (dsprites; eval/disentangle.hpp)
      opt("disent-batch", K::Int, I(64),
          "dsprites: examples per point of the beta-VAE and FactorVAE metrics (64 in disentanglement_lib)", {},
          2.0, 1e6),
      opt("disent-train", K::Int, I(10000),
          "dsprites: training points of the beta-VAE/FactorVAE classifiers, and the samples of MIG "
          "and of the FactorVAE variance estimate (10000 in disentanglement_lib)",
          {}, 10.0, 1e8),
      opt("disent-eval", K::Int, I(5000),
          "dsprites: evaluation points of the beta-VAE/FactorVAE classifiers (5000 in "
          "disentanglement_lib; 0: skip all disentanglement metrics)",
          {}, 0.0, 1e8),
  };
}

const char* kind_name(ValueKind k) {
  switch (k) {
    case K::Int: return "an integer";
    case K::Float: return "a number";
    case K::String: return "a string";
    case K::IntList: return "a list of integers";
    case K::Bool: return "true or false";
  }
  return "?";
}

void check_range(const OptionSpec& s, double x) {
  if (!std::isfinite(x)) throw ConfigError("key '" + s.key + "': value is not finite");
  if (s.min && x < *s.min) {
    std::ostringstream m;
    m << "key '" << s.key << "': " << x << " is below the minimum " << *s.min;
    throw ConfigError(m.str());
  }
  if (s.max && x > *s.max) {
    std::ostringstream m;
    m << "key '" << s.key << "': " << x << " is above the maximum " << *s.max;
    throw ConfigError(m.str());
  }
}

}  // namespace

const std::vector<OptionSpec>& train_options() {
  static const std::vector<OptionSpec> options = make_options();
  return options;
}

const OptionSpec* find_option(const std::string& key) {
  for (const auto& o : train_options())
    if (o.key == key) return &o;
  return nullptr;
}

std::string value_to_string(const Value& v) {
  struct Visitor {
    std::string operator()(int64_t x) const { return std::to_string(x); }
    std::string operator()(double x) const {
      std::ostringstream s;
      s.precision(17);
      s << x;
      return s.str();
    }
    std::string operator()(const std::string& x) const { return x; }
    std::string operator()(const std::vector<int64_t>& x) const {
      std::string s;
      for (size_t i = 0; i < x.size(); ++i) s += (i ? "," : "") + std::to_string(x[i]);
      return s;
    }
    std::string operator()(bool x) const { return x ? "true" : "false"; }
  };
  return std::visit(Visitor{}, v);
}

Value check_value(const OptionSpec& s, const Value& v) {
  auto wrong = [&]() {
    return ConfigError("key '" + s.key + "': expected " + kind_name(s.kind) + ", got '" + value_to_string(v) +
                       "'");
  };
  switch (s.kind) {
    case K::Int: {
      if (auto p = std::get_if<int64_t>(&v)) {
        check_range(s, double(*p));
        return *p;
      }
      throw wrong();
    }
    case K::Float: {
      double x;
      if (auto p = std::get_if<double>(&v)) x = *p;
      else if (auto q = std::get_if<int64_t>(&v)) x = double(*q);
      else throw wrong();
      check_range(s, x);
      return x;
    }
    case K::String: {
      auto p = std::get_if<std::string>(&v);
      if (!p) throw wrong();
      if (!s.choices.empty()) {
        bool ok = false;
        for (const auto& c : s.choices) ok = ok || c == *p;
        if (!ok) {
          std::string all;
          for (const auto& c : s.choices) all += (all.empty() ? "" : ", ") + c;
          throw ConfigError("key '" + s.key + "': '" + *p + "' is not one of " + all);
        }
      }
      return *p;
    }
    case K::IntList: {
      std::vector<int64_t> list;
      if (auto p = std::get_if<std::vector<int64_t>>(&v)) list = *p;
      else if (auto q = std::get_if<int64_t>(&v)) list = {*q};
      else throw wrong();
      for (auto x : list) check_range(s, double(x));
      return list;
    }
    case K::Bool: {
      if (auto p = std::get_if<bool>(&v)) return *p;
      throw wrong();
    }
  }
  throw wrong();
}

Value parse_value(const OptionSpec& s, const std::string& text) {
  auto bad = [&]() {
    return ConfigError("option --" + s.key + ": '" + text + "' is not " + kind_name(s.kind));
  };
  auto parse_int = [&](const std::string& t) -> int64_t {
    size_t pos = 0;
    int64_t x;
    try {
      x = std::stoll(t, &pos);
    } catch (const std::exception&) {
      throw bad();
    }
    if (pos != t.size()) throw bad();
    return x;
  };
  switch (s.kind) {
    case K::Int: return check_value(s, parse_int(text));
    case K::Float: {
      size_t pos = 0;
      double x;
      try {
        x = std::stod(text, &pos);
      } catch (const std::exception&) {
        throw bad();
      }
      if (pos != text.size()) throw bad();
      return check_value(s, x);
    }
    case K::String: return check_value(s, text);
    case K::IntList: {
      std::vector<int64_t> list;
      std::stringstream ss(text);
      std::string item;
      while (std::getline(ss, item, ',')) list.push_back(parse_int(item));
      if (list.empty()) throw bad();
      return check_value(s, list);
    }
    case K::Bool:
      if (text == "true" || text == "1") return true;
      if (text == "false" || text == "0") return false;
      throw bad();
  }
  throw bad();
}

ConfigMap default_config() {
  ConfigMap c;
  for (const auto& o : train_options()) c[o.key] = o.default_value;
  return c;
}

void apply(ConfigMap& config, const std::map<std::string, Value>& settings) {
  for (const auto& [key, value] : settings) {
    const OptionSpec* s = find_option(key);
    if (!s) throw ConfigError("unknown key '" + key + "'");
    config[key] = check_value(*s, value);
  }
}

std::map<std::string, Value> read_settings_toml(const std::string& path) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream m;
    m << path << ":" << e.source().begin.line << ": " << e.description();
    throw ConfigError(m.str());
  }
  std::map<std::string, Value> out;
  for (const auto& [k, node] : table) {
    std::string key(k.str());
    auto where = [&, &node = node]() {  // C++17: a structured binding is captured by an init-capture
      std::ostringstream m;
      m << path << ":" << node.source().begin.line << ": ";
      return m.str();
    };
    const OptionSpec* s = find_option(key);
    if (!s) throw ConfigError(where() + "unknown key '" + key + "'");
    Value v;
    if (auto x = node.as_integer()) v = int64_t(x->get());
    else if (auto d = node.as_floating_point()) v = d->get();
    else if (auto t = node.as_string()) v = t->get();
    else if (auto b = node.as_boolean()) v = b->get();
    else if (auto a = node.as_array()) {
      std::vector<int64_t> list;
      for (const auto& e : *a) {
        if (!e.is_integer()) throw ConfigError(where() + "key '" + key + "': expected a list of integers");
        list.push_back(e.as_integer()->get());
      }
      v = list;
    } else {
      throw ConfigError(where() + "key '" + key + "': unsupported value type");
    }
    try {
      out[key] = check_value(*s, v);
    } catch (const ConfigError& e) {
      throw ConfigError(where() + e.what());
    }
  }
  return out;
}

void validate(const ConfigMap& c) {
  auto str = [&](const char* k) { return std::get<std::string>(c.at(k)); };
  auto num = [&](const char* k) { return std::get<int64_t>(c.at(k)); };
  const std::string dataset = str("dataset"), binarize = str("binarize"), likelihood = str("likelihood");
  if (binarize == "fixed" && dataset != "binarized-mnist")
    throw ConfigError("key 'binarize': 'fixed' is the Larochelle binarization: use "
                      "dataset = binarized-mnist");
  if (dataset == "binarized-mnist" && binarize != "auto" && binarize != "fixed")
    throw ConfigError("key 'binarize': binarized-mnist is already binary (use auto or fixed)");
  if (dataset == "dsprites" && binarize != "auto" && binarize != "none")
    throw ConfigError("key 'binarize': dsprites is already binary (use auto or none)");
  if (dataset != "dsprites" && !str("dsprites-cache").empty())
    throw ConfigError("key 'dsprites-cache': only for dataset = dsprites");
  if (dataset == "dsprites" && num("train-size") == 0)
    throw ConfigError("key 'train-size': dsprites needs a training-set size (the whole grid as bytes "
                      "is 3 GB), e.g. train-size = 50000");
  if (likelihood == "bernoulli" && dataset != "dsprites" && (binarize == "none" || dataset == "frey-face"))
    throw ConfigError("key 'likelihood': a Bernoulli decoder needs binary data "
                      "(binarize = dynamic, or dataset = binarized-mnist)");
  if (likelihood == "gaussian" && binarize == "dynamic")
    throw ConfigError("key 'binarize': a Gaussian decoder models intensities: use binarize = none");
  if (likelihood != "gaussian" && str("sigma") != "fixed")
    throw ConfigError("key 'sigma': sigma modes need likelihood = gaussian");
  if (num("warmup") > 0 && num("warmup") > num("epochs") && num("epochs") > 0) {
    // allowed: warm-up longer than training is a legitimate (if odd) setting
  }
  if (std::get<std::vector<int64_t>>(c.at("conv-channels")).empty())
    throw ConfigError("key 'conv-channels': at least one convolution is needed");
  if (std::get<std::vector<int64_t>>(c.at("hidden")).empty())
    throw ConfigError("key 'hidden': at least one hidden layer is needed");
  const bool stacked = str("model") == "ladder" || str("model") == "hierarchical";
  if (stacked) {
    const auto& layers = std::get<std::vector<int64_t>>(c.at("layers"));
    const auto& det = std::get<std::vector<int64_t>>(c.at("det-layers"));
    if (layers.empty()) throw ConfigError("key 'layers': at least one stochastic layer is needed");
    if (det.size() != layers.size())
      throw ConfigError("key 'det-layers': " + std::to_string(det.size()) + " sizes for " +
                        std::to_string(layers.size()) + " stochastic layers (need one per layer)");
    if (str("posterior") != "gaussian")
      throw ConfigError("key 'posterior': model = " + str("model") + " has Gaussian posteriors only");
    if (str("arch") != "mlp")
      throw ConfigError("key 'arch': model = " + str("model") + " is built of dense layers only (arch = mlp)");
  } else if (str("model") == "nvae") {
    if (str("posterior") != "gaussian")
      throw ConfigError("key 'posterior': model = nvae has residual Gaussian posteriors only");
    if (std::get<double>(c.at("free-bits")) > 0)
      throw ConfigError("key 'free-bits': model = nvae balances its groups' KL instead (nvae-kl-balance)");
    if (std::get<bool>(c.at("batchnorm")))
      throw ConfigError("key 'batchnorm': model = nvae always has batch norm (see nvae-bn-momentum)");
    if (num("batch") * num("k") > 64)
      throw ConfigError("key 'batch': model = nvae trains at most 64 rows (batch x k) per step (its feature "
                        "maps take ~10 MB per row at 8 channels; models/nvae.hpp)");
    if (str("variance") != "softplus" || str("activation") == "leaky-relu")
      throw ConfigError(std::string("key '") + (str("variance") != "softplus" ? "variance" : "activation") +
                        "': model = nvae has its own (exp(soft-clamped log sigma), Swish)");
  } else {
    if (std::get<bool>(c.at("batchnorm")))
      throw ConfigError("key 'batchnorm': only model = ladder or hierarchical has batch normalization");
    if (str("activation") == "leaky-relu")
      throw ConfigError("key 'activation': leaky-relu is implemented for model = ladder or hierarchical");
    if (str("variance") != "softplus")
      throw ConfigError("key 'variance': only model = ladder or hierarchical has variance heads to choose");
  }
  if (str("model") != "vqvae" && num("vq-prior-epochs") > 0)
    throw ConfigError("key 'vq-prior-epochs': only model = vqvae has a second (prior) stage");
  if (str("model") == "vqvae") {
    if (str("objective") == "iwae")
      throw ConfigError("key 'objective': model = vqvae has a point-mass posterior: its IWAE bound is "
                        "its ELBO (use objective = elbo)");
    if (str("sigma") == "per-pixel")
      throw ConfigError("key 'sigma': model = vqvae has no per-pixel sigma head");
    if (str("posterior") != "gaussian" || str("arch") != "mlp")
      throw ConfigError("key 'posterior'/'arch': model = vqvae has its own conv encoder and discrete codes");
  }
  if (str("objective") == "iwae") {
    if (std::get<double>(c.at("beta")) != 1.0 || num("warmup") > 0 || std::get<double>(c.at("free-bits")) > 0)
      throw ConfigError("key 'objective': iwae is the bound on log p(x) itself: use beta = 1, warmup = 0, "
                        "free-bits = 0");
  }
  if (str("posterior") == "iaf" && num("iaf-steps") > 0 && std::get<double>(c.at("free-bits")) > 0)
    throw ConfigError("key 'free-bits': not defined for posterior = iaf (with iaf-steps > 0): the "
                      "flow mixes latent dimensions, so its single-sample KL has no per-dimension "
                      "parts to clamp; use free-bits = 0");
}

TrainConfig to_train_config(const ConfigMap& c) {
  validate(c);
  auto s = [&](const char* k) { return std::get<std::string>(c.at(k)); };
  auto i = [&](const char* k) { return std::get<int64_t>(c.at(k)); };
  auto f = [&](const char* k) { return std::get<double>(c.at(k)); };
  TrainConfig t;
  t.dataset = s("dataset");
  t.data_dir = s("data-dir");
  t.likelihood = s("likelihood");
  t.binarize = s("binarize");
  if (t.binarize == "auto") {
    if (t.dataset == "binarized-mnist") t.binarize = "fixed";
    else if (t.dataset == "dsprites") t.binarize = "none";  // already 0/1
    else t.binarize = t.likelihood == "bernoulli" ? "dynamic" : "none";
  }
  t.train_size = i("train-size");
  t.valid_size = i("valid-size");
  t.test_size = i("test-size");
  t.dsprites_cache = s("dsprites-cache");
  t.model = s("model");
  t.latent = i("latent");
  t.hidden = std::get<std::vector<int64_t>>(c.at("hidden"));
  t.arch = s("arch");
  t.conv_channels = std::get<std::vector<int64_t>>(c.at("conv-channels"));
  t.conv_kernel = i("conv-kernel");
  t.vq_codebook = i("vq-codebook");
  t.vq_dim = i("vq-dim");
  t.vq_channels = i("vq-channels");
  t.vq_res_blocks = i("vq-res-blocks");
  t.vq_res_hidden = i("vq-res-hidden");
  t.vq_beta = f("vq-beta");
  t.vq_update = s("vq-update");
  t.vq_decay = f("vq-decay");
  t.vq_restart = f("vq-restart");
  t.vq_prior_epochs = i("vq-prior-epochs");
  t.vq_prior_layers = i("vq-prior-layers");
  t.vq_prior_features = i("vq-prior-features");
  t.layers = std::get<std::vector<int64_t>>(c.at("layers"));
  t.det_layers = std::get<std::vector<int64_t>>(c.at("det-layers"));
  t.det_depth = i("det-depth");
  t.batchnorm = std::get<bool>(c.at("batchnorm"));
  t.variance = s("variance");
  t.activation = s("activation");
  t.posterior = s("posterior");
  t.iaf_steps = i("iaf-steps");
  t.iaf_hidden = i("iaf-hidden");
  t.iaf_made_layers = i("iaf-made-layers");
  t.iaf_context = i("iaf-context");
  t.iaf_forget_bias = f("iaf-forget-bias");
  t.iaf_kl = s("iaf-kl");
  t.sigma = s("sigma");
  t.sigma_value = f("sigma-value");
  t.min_log_sigma = f("min-log-sigma");
  t.gaussian_mean = s("gaussian-mean");
  t.init = s("init");
  t.init_std = f("init-std");
  t.beta = f("beta");
  t.warmup = i("warmup");
  t.free_bits = f("free-bits");
  t.objective = s("objective") == "iwae" ? Objective::Iwae : Objective::Elbo;
  t.k = i("k");
  t.optimizer = s("optimizer");
  t.lr = f("lr");
  t.lr_schedule = s("lr-schedule");
  t.lr_decay = f("lr-decay");
  t.adam_beta1 = f("adam-beta1");
  t.adam_beta2 = f("adam-beta2");
  t.adam_eps = f("adam-eps");
  t.adagrad_eps = f("adagrad-eps");
  t.batch = i("batch");
  t.epochs = i("epochs");
  t.seed = i("seed");
  t.threads = i("threads");
  t.iw_samples = i("iw-samples");
  t.iw_examples = i("iw-examples");
  t.iw_chunk = i("iw-chunk");
  t.eval_every = i("eval-every");
  t.disent_batch = i("disent-batch");
  t.disent_train = i("disent-train");
  t.disent_eval = i("disent-eval");
  t.nvae_scales = i("nvae-scales");
  t.nvae_groups = i("nvae-groups");
  t.nvae_latent_channels = i("nvae-latent-channels");
  t.nvae_channels = i("nvae-channels");
  t.nvae_kl_balance = std::get<bool>(c.at("nvae-kl-balance"));
  t.nvae_spectral = f("nvae-spectral");
  t.nvae_bn_momentum = f("nvae-bn-momentum");
  t.nvae_temperature = f("nvae-temperature");
  return t;
}

const std::vector<std::string>& baseline_identity_keys() {
  static const std::vector<std::string> keys = {
      "dataset",     "binarize",      "train-size",    "valid-size",  "test-size",   "model",
      "latent",      "hidden",        "activation",    "posterior",   "likelihood",  "sigma",
      "sigma-value", "min-log-sigma", "gaussian-mean", "init",        "init-std",    "beta",
      "warmup",      "free-bits",     "optimizer",     "lr",          "lr-schedule", "lr-decay",
      "adam-beta1",  "adam-beta2",    "adam-eps",      "adagrad-eps", "batch",       "epochs",
      "seed",        "iw-samples",    "iw-examples",   "eval-every"};
  return keys;
}

std::string identity_settings_json(const ConfigMap& config) {
  nlohmann::json j = nlohmann::json::parse(to_json(config, /*identity_only=*/true));
  const nlohmann::json defaults = nlohmann::json::parse(to_json(default_config(), true));
  const auto& base = baseline_identity_keys();
  for (auto it = j.begin(); it != j.end();) {
    const bool baseline = std::find(base.begin(), base.end(), it.key()) != base.end();
    if (!baseline && defaults.contains(it.key()) && defaults[it.key()] == it.value()) it = j.erase(it);
    else ++it;
  }
  return j.dump();
}

std::string to_json(const ConfigMap& config, bool identity_only) {
  nlohmann::json j = nlohmann::json::object();  // std::map keeps keys sorted
  for (const auto& [key, value] : config) {
    const OptionSpec* s = find_option(key);
    if (identity_only && s && !s->identity) continue;
    std::visit([&j, &key = key](const auto& x) { j[key] = x; }, value);  // (C++17: init-capture of a binding)
  }
  return j.dump();
}

}  // namespace vae
