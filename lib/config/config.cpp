#include "config/config.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace vae {

OptionSpec option(std::string key, ValueKind kind, Value default_value, std::string help,
                  std::vector<std::string> choices, std::optional<double> min, std::optional<double> max,
                  bool identity) {
  return OptionSpec{
      std::move(key), kind, std::move(default_value), std::move(help), std::move(choices), min, max, identity};
}

namespace {

// The core table's shorthand.
OptionSpec opt(std::string key, ValueKind kind, Value def, std::string help,
               std::vector<std::string> choices = {}, std::optional<double> min = {},
               std::optional<double> max = {}, bool identity = true) {
  return option(std::move(key), kind, std::move(def), std::move(help), std::move(choices), min, max, identity);
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
      // the model families' settings follow (models/registry.hpp); --model's choices and help
      // are theirs
      opt("model", K::String, std::string("vae"), "model:"),
      opt("activation", K::String, std::string("relu"),
          "hidden activation (leaky-relu: max(x, 0.01 x), ladder/hierarchical only)",
          {"relu", "tanh", "softplus", "sigmoid", "elu", "leaky-relu"}),
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
      opt("output-bias", K::String, std::string("init"),
          "the Bernoulli decoder's output bias at the start: init (drawn as --init says) or data-logit: "
          "the training images' per-pixel log-odds log(m / (1 - m)), m their mean clipped to "
          "[0.001, 0.999] (the IWAE paper's code); model = vae (arch = mlp), ladder or hierarchical",
          {"init", "data-logit"}),
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
      opt("kl-estimate", K::String, std::string("analytic"),
          "the ELBO objective's KL term: analytic (in closed form where one exists, as Kingma & "
          "Welling's estimator B) or sampled (log q(z|x) - log p(z) at each sampled z, the "
          "estimator of the IWAE paper's VAE and of its code); the iwae objective is always sampled",
          {"analytic", "sampled"}),
      // optimisation
      opt("optimizer", K::String, std::string("adam"), "optimizer", {"adam", "adagrad"}),
      opt("lr", K::Float, 1e-3, "learning rate", {}, 0.0),
      opt("lr-schedule", K::String, std::string("constant"),
          "constant; exponential: lr * lr-decay^epoch; iwae: stages i = 0, 1, ... of 3^i epochs at "
          "lr * 10^(-i/7) (Burda et al. 2016: 3280 epochs are stages 0..7); iwae-rounded: the same "
          "with 10^(-i/7) rounded to two digits (0.72, 0.52, ...), as the paper's code",
          {"constant", "exponential", "iwae", "iwae-rounded"}),
      opt("lr-decay", K::Float, 1.0, "learning-rate factor per epoch (exponential schedule)", {}, 0.0, 1.0),
      opt("adam-beta1", K::Float, 0.9, "Adam beta1", {}, 0.0, 1.0),
      opt("adam-beta2", K::Float, 0.999, "Adam beta2", {}, 0.0, 1.0),
      opt("adam-eps", K::Float, 1e-8, "Adam epsilon", {}, 0.0),
      opt("adam-v0", K::Float, 0.0,
          "start of Adam's second moment v (0: torch.optim's; 1: the IWAE paper's code, whose sqrt(v) "
          "near 1 scales the first thousands of steps down, a built-in warm-up)",
          {}, 0.0),
      opt("adam-update", K::String, std::string("torch"),
          "Adam's step: torch (with this step's moments, eps added to the corrected sqrt(v), as "
          "torch.optim) or iwae-code (with the moments before this step's gradient, eps added to the "
          "uncorrected sqrt(v): the IWAE paper's Theano code, whose updates all read the values "
          "before the step)",
          {"torch", "iwae-code"}),
      opt("adagrad-eps", K::Float, 1e-10, "Adagrad epsilon", {}, 0.0),
      opt("weight-decay", K::Float, 0.0,
          "L2 weight decay lambda: (lambda / 2) |theta|^2 is added to the per-example loss of every "
          "parameter (weights and biases; the reported losses and bounds leave it out). A N(0, I) prior "
          "on the parameters, as Kingma & Welling 2013, is lambda = 1/N for N training examples. 0: off",
          {}, 0.0),
      opt("batch", K::Int, I(128), "minibatch size", {}, 1.0, 1e6),
      opt("shuffle", K::Bool, true,
          "draw each epoch's order of the training images afresh; false: the same minibatches in the "
          "file's order every epoch (the IWAE paper's code)"),
      opt("epochs", K::Int, I(10), "training epochs", {}, 0.0, 1e6),
      opt("time-budget", K::Float, 0.0,
          "seconds of training (wall clock, evaluation not counted): stop after the step that "
          "reaches them, the last epoch partial; --epochs stays the upper bound and warm-up and "
          "learning rate still follow epochs. 0: off. Where such a run stops depends on the "
          "machine's speed, so it is not bit-reproducible",
          {}, 0.0),
      opt("time-budget-clock", K::String, std::string("wall"),
          "what --time-budget counts: wall (elapsed time) or cpu (the process's CPU time: with "
          "OPENBLAS_NUM_THREADS=1 one core's work, the same whatever else runs on a shared machine)",
          {"wall", "cpu"}),
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

const std::vector<OptionSpec>& core_options() {
  static const std::vector<OptionSpec> options = make_options();
  return options;
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

void validate_core(const ConfigMap& c) {
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
  // Whether the model has a per-pixel output bias is its family's rule (its validate hook).
  if (str("output-bias") == "data-logit" && likelihood != "bernoulli")
    throw ConfigError("key 'output-bias': data-logit sets a Bernoulli decoder's log-odds: use likelihood = "
                      "bernoulli");
  if (str("objective") == "iwae") {
    if (std::get<double>(c.at("beta")) != 1.0 || num("warmup") > 0 || std::get<double>(c.at("free-bits")) > 0)
      throw ConfigError("key 'objective': iwae is the bound on log p(x) itself: use beta = 1, warmup = 0, "
                        "free-bits = 0");
  }
}

TrainConfig core_train_config(const ConfigMap& c) {
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
  t.activation = s("activation");
  t.sigma = s("sigma");
  t.sigma_value = f("sigma-value");
  t.min_log_sigma = f("min-log-sigma");
  t.gaussian_mean = s("gaussian-mean");
  t.init = s("init");
  t.init_std = f("init-std");
  t.output_bias = s("output-bias");
  t.beta = f("beta");
  t.warmup = i("warmup");
  t.free_bits = f("free-bits");
  t.objective = s("objective") == "iwae" ? Objective::Iwae : Objective::Elbo;
  t.k = i("k");
  // the IWAE bound is made of log w = log p(x, z) - log q(z|x): its KL is the sampled one
  t.kl_sampled = s("kl-estimate") == "sampled" || t.objective == Objective::Iwae;
  t.optimizer = s("optimizer");
  t.lr = f("lr");
  t.lr_schedule = s("lr-schedule");
  t.lr_decay = f("lr-decay");
  t.adam_beta1 = f("adam-beta1");
  t.adam_beta2 = f("adam-beta2");
  t.adam_eps = f("adam-eps");
  t.adam_v0 = f("adam-v0");
  t.adam_update = s("adam-update");
  t.shuffle = std::get<bool>(c.at("shuffle"));
  t.adagrad_eps = f("adagrad-eps");
  t.weight_decay = f("weight-decay");
  t.batch = i("batch");
  t.epochs = i("epochs");
  t.time_budget = f("time-budget");
  t.time_budget_cpu = s("time-budget-clock") == "cpu";
  t.seed = i("seed");
  t.threads = i("threads");
  t.iw_samples = i("iw-samples");
  t.iw_examples = i("iw-examples");
  t.iw_chunk = i("iw-chunk");
  t.eval_every = i("eval-every");
  t.disent_batch = i("disent-batch");
  t.disent_train = i("disent-train");
  t.disent_eval = i("disent-eval");
  t.settings = c;
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

}  // namespace vae
