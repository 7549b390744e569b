// The public API (vae/vae.hpp) over the internals: each call is a thin translation to
// the function the program's subcommand calls, so the two give the same numbers.
#include "vae/vae.hpp"

#include <random>
#include <sstream>
#include <utility>

#include "config/config.hpp"
#include "data/dataset.hpp"
#include "draw/trained.hpp"
#include "models/model.hpp"
#include "models/settings.hpp"
#include "report/render.hpp"
#include "report/selection.hpp"
#include "report/table.hpp"
#include "store/results_store.hpp"
#include "store/run_identity.hpp"
#include "train/checkpoint.hpp"
#include "train/run.hpp"

namespace vae::api {

namespace {

// Every internal failure leaves the library as an api::Error with the same one line.
template <class F>
auto translated(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(e.what());
  }
}

Images to_public(data::Images&& in) {
  Images out;
  out.n = in.n;
  out.rows = in.rows;
  out.cols = in.cols;
  out.pixels = std::move(in.pixels);
  out.scale = in.scale;
  out.labels = std::move(in.labels);
  return out;
}

data::Images to_internal(const Images& in) {
  data::Images out;
  out.source = "api";
  out.n = in.n;
  out.rows = in.rows;
  out.cols = in.cols;
  out.pixels = in.pixels;
  out.scale = in.scale;
  out.labels = in.labels;
  if (out.pixels.size() != out.n * out.rows * out.cols)
    throw Error("images: " + std::to_string(out.pixels.size()) +
                " pixels, expected n * rows * cols = " + std::to_string(out.n * out.rows * out.cols));
  return out;
}

Dataset to_public(data::Splits&& s) {
  return Dataset{to_public(std::move(s.train)), to_public(std::move(s.valid)), to_public(std::move(s.test))};
}

}  // namespace

// ---- settings ----------------------------------------------------------------
struct Settings::Impl {
  ConfigMap config = default_config();
};

Settings::Settings() : impl_(std::make_shared<Impl>()) {}
Settings::Settings(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Settings Settings::from_toml(const std::string& path) {
  Settings s;
  translated([&] { vae::apply(s.impl_->config, read_settings_toml(path)); });
  return s;
}

Settings& Settings::set(const std::string& key, const std::string& value) {
  const OptionSpec* spec = find_option(key);
  if (!spec) throw Error("unknown setting '" + key + "' (vae train --help lists them)");
  auto copy = std::make_shared<Impl>(*impl_);  // copies of a Settings stay independent
  translated([&] { vae::apply(copy->config, {{key, parse_value(*spec, value)}}); });
  impl_ = std::move(copy);
  return *this;
}

std::string Settings::get(const std::string& key) const {
  auto it = impl_->config.find(key);
  if (it == impl_->config.end()) throw Error("unknown setting '" + key + "'");
  return value_to_string(it->second);
}

std::string Settings::json() const { return to_json(impl_->config, false); }

std::vector<std::string> Settings::keys() {
  std::vector<std::string> k;
  for (const OptionSpec& o : train_options()) k.push_back(o.key);
  return k;
}

// ---- data and training ---------------------------------------------------------
Dataset load_data(const Settings& settings) {
  return translated([&] {
    const ConfigMap& config = settings.impl().config;
    validate(config);
    return to_public(data::load(data_spec(to_train_config(config))));
  });
}

TrainResult train(const Settings& settings, const TrainOptions& options) {
  RunOptions ro;
  ro.out_dir = options.out_dir;
  ro.resume = options.resume;
  ro.quiet = options.quiet;
  RunResult r = translated([&] { return train_and_evaluate(settings.impl().config, ro, nullptr); });
  TrainResult out;
  out.status = r.status;
  out.message = r.message;
  out.epochs = r.epochs_done;
  out.metrics = std::move(r.metrics);
  out.unit_vectors = std::move(r.unit_vectors);
  out.loss_curve = std::move(r.train_loss_curve);
  return out;
}

// ---- models ----------------------------------------------------------------------
struct Model::Impl {
  Settings settings;
  std::unique_ptr<vae::Model> model;
  int64_t epoch = 0;
};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

Model Model::create(const Settings& settings, std::size_t rows, std::size_t cols) {
  return translated([&] {
    auto impl = std::make_unique<Impl>();
    impl->settings = settings;
    const ConfigMap& config = settings.impl().config;
    validate(config);
    const TrainConfig tc = to_train_config(config);
    std::mt19937_64 init(uint64_t(tc.seed));
    impl->model = make_model(tc, rows, cols, init);
    impl->model->reserve(1, 500);
    return Model(std::move(impl));
  });
}

Model Model::load(const std::string& checkpoint, Dataset* data) {
  return translated([&] {
    draw::TrainedModel t = draw::load_trained(checkpoint);
    auto impl = std::make_unique<Impl>();
    impl->settings = Settings(std::make_shared<Settings::Impl>(Settings::Impl{t.config}));
    impl->model = std::move(t.model);
    impl->epoch = t.epoch;
    if (data) *data = to_public(std::move(t.data));
    return Model(std::move(impl));
  });
}

const Settings& Model::settings() const { return impl_->settings; }
std::size_t Model::latent_dim() const { return impl_->model->latent_dim(); }
std::size_t Model::num_params() const { return impl_->model->num_params(); }

Evaluation Model::evaluate(const Images& images, std::uint64_t seed) {
  return translated([&] {
    std::mt19937_64 rng(seed);
    ElboReport r = impl_->model->evaluate(to_internal(images), rng);
    return Evaluation{r.elbo, r.rec, r.kl, std::move(r.metrics), std::move(r.vectors)};
  });
}

double Model::iw_nll(const Images& images, std::size_t n, std::size_t K, std::uint64_t seed) {
  return translated([&] {
    std::mt19937_64 rng(seed);
    const std::size_t chunk = std::size_t(std::get<int64_t>(impl_->settings.impl().config.at("iw-chunk")));
    return impl_->model->iw_nll(to_internal(images), n, K, chunk, rng);
  });
}

std::vector<float> Model::encode(const Images& images, std::size_t n) {
  return translated([&] { return impl_->model->encode_mean(to_internal(images), n); });
}

std::vector<float> Model::decode(const std::vector<float>& z, std::size_t n) {
  if (z.size() != n * latent_dim())
    throw Error("decode: " + std::to_string(z.size()) +
                " values, expected n * latent_dim = " + std::to_string(n * latent_dim()));
  return translated([&] { return impl_->model->decode_mean(z, n); });
}

std::vector<float> Model::sample(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  return translated([&] { return impl_->model->sample_prior(n, rng); });
}

void Model::save(const std::string& path) const {
  translated([&] {
    const ConfigMap& config = impl_->settings.impl().config;
    Checkpoint c;
    c.identity = training_identity(config);
    c.config_json = store::config_json(config);
    c.epoch = impl_->epoch;
    const Buffer<float>& p = impl_->model->params();
    c.params.assign(p.begin(), p.end());
    c.model_state = impl_->model->state();
    std::ostringstream rng;
    rng << std::mt19937_64(0);
    c.rng_state = rng.str();
    save_checkpoint(path, c);
  });
}

// ---- results database ----------------------------------------------------------------
struct Results::Impl {
  std::unique_ptr<store::Db> db;
};

Results::Results(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Results::~Results() = default;
Results::Results(Results&&) noexcept = default;
Results& Results::operator=(Results&&) noexcept = default;

Results Results::open(const std::string& path) {
  return translated([&] {
    auto impl = std::make_unique<Impl>();
    impl->db = store::open_for_reading(path);
    return Results(std::move(impl));
  });
}

std::vector<Run> Results::query(const std::vector<std::string>& where, const std::string& sweep) {
  return translated([&] {
    report::Selection sel;
    sel.sweep = sweep;
    for (const std::string& w : where) sel.where.push_back(report::parse_condition(w));
    std::vector<Run> out;
    for (report::RunRow& row : report::load_runs(*impl_->db, report::select_runs(*impl_->db, sel), sweep)) {
      Run run;
      run.id = row.run_id;
      run.status = row.status;
      run.sweep_point = row.point_json;
      for (const auto& [k, v] : row.params) run.settings[k] = report::format_sql(v);
      run.metrics = std::move(row.metrics);
      out.push_back(std::move(run));
    }
    return out;
  });
}

std::string Results::table(const std::vector<std::string>& rows, const std::vector<std::string>& cols,
                           const std::string& metric, const std::string& format, const std::string& sweep) {
  return translated([&] {
    report::TableRequest rq;
    rq.selection.sweep = sweep;
    rq.rows = rows;
    rq.cols = cols;
    rq.metrics = {metric};
    const report::Format f = report::parse_format(format, {report::Format::Text, report::Format::Markdown,
                                                           report::Format::Latex, report::Format::Csv});
    return report::render_table(report::build_table(*impl_->db, rq), f);
  });
}

std::string version() { return VAE_VERSION; }

}  // namespace vae::api
