// vae-suite's public C++ API: the one header an installed libvae offers (the rest of lib/
// is the suite's internals and is not installed). Everything here uses only the standard
// library, so a program that includes it needs no xtensor, SQLite or OpenBLAS headers.
//
// What it does, in the words of `vae train --help`:
//  - Settings: every `vae train` setting by its name ("latent", "hidden", "model", ...),
//    given as on the command line ("400,400") or read from a TOML file; checked as the
//    program checks them (a bad one throws vae::api::Error naming the key).
//  - load_data: the data set a configuration names (train / valid / test splits).
//  - train: one training run from the settings, exactly as `vae train` runs it (same
//    numbers for the same settings), any registered model family; with out_dir set it
//    leaves the checkpoints `vae train --out` leaves.
//  - Model: a model made from settings or loaded from a checkpoint; evaluate (the ELBO,
//    its parts, KL per unit, active units), the importance-weighted NLL, encode (the
//    posterior mean), decode (the decoder's mean), sample from the prior, save.
//  - Results: a results database written by `vae sweep run`: query runs, and the
//    comparison table of `vae table`.
//
// Example (examples/consumer/ is a complete program of this kind with its CMakeLists.txt):
//
//   #include <cstdio>
//   #include <vae/vae.hpp>
//
//   int main() {
//     vae::api::Settings s;                       // the defaults of `vae train`
//     s.set("dataset", "mnist").set("latent", "10").set("hidden", "200");
//     s.set("train-size", "2000").set("epochs", "2").set("seed", "1");
//     vae::api::TrainOptions opt;
//     opt.out_dir = "run1";                       // last.ckpt goes here
//     vae::api::TrainResult r = vae::api::train(s, opt);
//     std::printf("test ELBO %.6f\n", r.metrics.at("test_elbo"));
//
//     vae::api::Dataset data;                     // the run's model and data, back from disk
//     vae::api::Model m = vae::api::Model::load("run1/last.ckpt", &data);
//     vae::api::Evaluation e = m.evaluate(data.test);
//     std::printf("ELBO %.3f = -(rec %.3f + KL %.3f), %g active units\n", e.elbo, e.rec,
//                 e.kl, e.metrics.at("active_units"));
//     std::vector<float> z = m.encode(data.test, 5);      // [5, latent]
//     std::vector<float> x = m.decode(z, 5);              // [5, rows*cols] in [0,1]
//     std::vector<float> prior = m.sample(16, /*seed=*/7);  // [16, latent]
//     std::printf("-log p(x) ~ %.3f (K = 100, 100 images)\n",
//                 m.iw_nll(data.test, 100, 100, /*seed=*/0));
//
//     vae::api::Results db = vae::api::Results::open("results/results.db");
//     for (const vae::api::Run& run : db.query({"latent=10", "test_elbo>-120"}))
//       std::printf("%s %s\n", run.id.c_str(), run.status.c_str());
//     std::puts(db.table({"latent"}, {"beta"}, "test_elbo").c_str());
//   }
//
// Build it with CMake (find_package(vae REQUIRED), target_link_libraries(app vae::vae))
// or pkg-config (c++ -std=c++17 app.cpp $(pkg-config --cflags --libs vae)). Data files
// are found as `vae train` finds them: `data-dir` or $VAE_DATA_DIR/<set>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace vae::api {

// Every failure: a bad setting, a missing or damaged file, a bad query. what() is one
// line naming the key or the file.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The settings of one run: every key of `vae train --help` (without the dashes).
class Settings {
 public:
  Settings();  // every setting at its default
  // The settings of a TOML run file (`vae train --config`), over the defaults.
  static Settings from_toml(const std::string& path);
  // As written on the command line: set("hidden", "400,400"), set("batchnorm", "true").
  Settings& set(const std::string& key, const std::string& value);
  std::string get(const std::string& key) const;
  // The resolved configuration as canonical JSON (as `vae train --json` prints it).
  std::string json() const;
  // The names of all settings, in the order `vae train --help` lists them.
  static std::vector<std::string> keys();

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  friend class Model;
  explicit Settings(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// Images as stored: pixels[i] * scale is the intensity in [0,1] (scale 1: 0/1 data).
struct Images {
  std::size_t n = 0, rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;  // n * rows * cols, row-major per image
  float scale = 1.0f / 255.0f;
  std::vector<std::uint8_t> labels;  // n, or empty
  std::size_t dim() const { return rows * cols; }
};

struct Dataset {
  Images train, valid, test;  // valid.n == 0 without a validation split
};

// The data a configuration trains on (dataset, data-dir, binarize, train-size, ...).
Dataset load_data(const Settings& settings);

struct TrainOptions {
  std::string out_dir;  // checkpoints (last.ckpt, best.ckpt); "" = none
  bool resume = false;  // continue from out_dir/last.ckpt
  bool quiet = true;    // no progress on stderr
};

struct TrainResult {
  std::string status;   // done | diverged
  std::string message;  // why it diverged
  std::int64_t epochs = 0;
  // test_elbo, test_rec, test_kl, test_nll, active_units, samples_per_s, ... as `vae train --json`
  std::map<std::string, double> metrics;
  // per-unit vectors of the test set by name: kl_per_dim, mu_variance, or a family's own
  std::map<std::string, std::vector<double>> unit_vectors;
  std::vector<double> loss_curve;  // mean training loss of each epoch
};

// Trains and evaluates as `vae train` does. Throws Error for bad settings or data.
TrainResult train(const Settings& settings, const TrainOptions& options = {});

struct Evaluation {
  double elbo = 0, rec = 0, kl = 0;  // means over the images; elbo = -(rec + kl)
  // by name: active_units (Var_x E_q[z_u|x] > 0.01, Burda et al.), kl_layer<i> and
  // active_units_layer<i> of hierarchical models, a family's own (perplexity, ...)
  std::map<std::string, double> metrics;
  // per-unit vectors by name: kl_per_dim (mean KL of each latent unit), mu_variance, ...
  std::map<std::string, std::vector<double>> vectors;
};

class Model {
 public:
  // A fresh model for images of rows x cols, initialised from the settings' seed.
  static Model create(const Settings& settings, std::size_t rows, std::size_t cols);
  // A trained model from a checkpoint of `vae train --out` (or save); with data, the
  // run's data set is loaded there too.
  static Model load(const std::string& checkpoint, Dataset* data = nullptr);
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

  const Settings& settings() const;
  std::size_t latent_dim() const;
  std::size_t num_params() const;
  // The single-sample ELBO over all images (test sets: as stored), noise from seed.
  Evaluation evaluate(const Images& images, std::uint64_t seed = 0);
  // Mean -log p(x) of the first n images (0: all) by K importance samples.
  double iw_nll(const Images& images, std::size_t n, std::size_t K, std::uint64_t seed = 0);
  // E_q[z|x] of the first n images (0: all): [n, latent_dim] row-major.
  std::vector<float> encode(const Images& images, std::size_t n = 0);
  // The decoder's mean of n codes [n, latent_dim]: [n, rows * cols] in [0,1].
  std::vector<float> decode(const std::vector<float>& z, std::size_t n);
  // n codes from the prior p(z): [n, latent_dim].
  std::vector<float> sample(std::size_t n, std::uint64_t seed);
  // A checkpoint that load(), `vae draw` and `vae encode` read.
  void save(const std::string& path) const;

  struct Impl;

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A run of a results database.
struct Run {
  std::string id, status, sweep_point;          // sweep_point: "" without a sweep
  std::map<std::string, std::string> settings;  // as text
  std::map<std::string, double> metrics;        // final metrics
};

// A results database (`vae sweep run`), opened read-only.
class Results {
 public:
  static Results open(const std::string& path);
  ~Results();
  Results(Results&&) noexcept;
  Results& operator=(Results&&) noexcept;
  // Runs matching every condition ("latent=20", "beta>=2", "test_elbo>-100"; the syntax
  // of `vae query --where`), of one sweep or all ("").
  std::vector<Run> query(const std::vector<std::string>& where = {}, const std::string& sweep = "");
  // `vae table --rows ... --cols ... --metric ...`: mean and standard error over seeds,
  // the best cell marked; format text | markdown | latex | csv.
  std::string table(const std::vector<std::string>& rows, const std::vector<std::string>& cols,
                    const std::string& metric, const std::string& format = "markdown",
                    const std::string& sweep = "");

  struct Impl;

 private:
  explicit Results(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The library's version ("0.1.0") and the build facts of this copy.
std::string version();

}  // namespace vae::api
