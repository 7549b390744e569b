// A made-up paper's table as a reproduction spec (kToySpec), and a database of its runs
// filled by a fake trainer whose numbers are known (the reproduce and serve tests).
#pragma once

#include <filesystem>
#include <string>

#include "reproduce/reproduce.hpp"
#include "store_test_util.hpp"
#include "sweep/worker.hpp"

namespace vae::testing {

// Two rows (latent 2, latent 10) x two columns (NLL at beta 1, at beta 4) of a made-up
// paper; a reduced budget with expected values for row l10 only.
inline const char* const kToySpec = R"(id = "toy-table"
title = "A toy table"
seeds = 3

[citation]
authors = "A. Author, B. Author"
year = 2020
arxiv = "2001.00001"
where = "Table 9"

[protocol]
dataset = "mnist"
hidden = [64]
iw-samples = 10

[[column]]
id = "b1"
label = "beta 1"
metric = "test_nll"
settings = { beta = 1.0 }

[[column]]
id = "b4"
label = "beta 4"
metric = "test_nll"
settings = { beta = 4.0 }

[[row]]
id = "l2"
label = "latent 2"
settings = { latent = 2 }
source = "Table 9"
published = { b1 = "150.0", b4 = "160.0" }

[[row]]
id = "l10"
label = "latent 10"
settings = { latent = 10 }
source = "Table 9"
published = { b1 = 100.5 }

[budget.paper]
settings = { epochs = 100 }
description = "the paper's"

[budget.short]
settings = { epochs = 10 }
rows = { l10 = { hidden = [32] } }
expected = { source = "a reference script", l10 = { b1 = { mean = 104.0, se = 0.5, n = 2 } } }

[tolerance]
test_nll = 0.5

[tolerance.reduced]
test_nll = 0.3
)";

// The fake trainer's NLL: 100 + seed for latent 10, 150 + 3 seed for latent 2 (+10 at
// beta 4), plus 4 when trained 10 epochs with hidden 32: seeds 0,1,2 give means 101 / 153
// / 163 at the paper's budget and 105 at the short one (latent 10, beta 1).
inline double toy_nll(const ConfigMap& c) {
  const int64_t latent = std::get<int64_t>(c.at("latent")), seed = std::get<int64_t>(c.at("seed"));
  const double beta = std::get<double>(c.at("beta"));
  double nll = latent == 10 ? 100.0 + double(seed) : 150.0 + 3.0 * double(seed);
  if (beta == 4.0) nll += 10;
  if (std::get<int64_t>(c.at("epochs")) == 10) nll += 4;
  return nll;
}

// Registers the plan's runs and lets `train` (a fake trainer) finish all but `skip` of them.
inline void fill_reproduction_db(const std::string& path, const reproduce::ReproPlan& plan,
                                 const sweep::TrainFn& train, int skip = 0) {
  int64_t sweep_id;
  {
    auto db = store::open_for_writing(path);
    store::ResultsStore st(*db);
    sweep_id = st.upsert_sweep(plan.sweep_name, "gen.toml", plan.sweep_text);
    st.register_runs(sweep_id, plan.plan.runs);
  }
  sweep::WorkerOptions o;
  o.db_path = path;
  o.runs_dir = std::filesystem::path(path).parent_path().string() + "/runs";
  o.sweep_id = sweep_id;
  o.max_runs = int64_t(plan.plan.runs.size()) - skip;
  sweep::run_worker(o, train);
}

// ... with the toy trainer (toy_nll).
inline void fill_reproduction_db(const std::string& path, const reproduce::ReproPlan& plan, int skip = 0) {
  fill_reproduction_db(
      path, plan,
      [](const ConfigMap& c, const RunOptions&, RunHooks*) {
        RunResult r;
        r.status = "done";
        r.metrics = {{"test_nll", toy_nll(c)}};
        return r;
      },
      skip);
}

}  // namespace vae::testing
