// Everything the database knows about one run, as one JSON document: status, the
// resolved configuration, sweeps and their points, data files, attempts with their
// provenance, final metrics, KL per latent unit, artifacts and the per-epoch curves.
// `vae runs show --format json` prints it and `vae serve` answers /api/runs/ID with it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "report/selection.hpp"

namespace vae::report {

// run_id must be a full id present in the database (resolve_run_id gives one);
// `row` is load_runs' row of it. One read transaction.
nlohmann::json run_detail(store::Db& db, const RunRow& row);

// A `vae train` command that repeats the run: its identity settings that differ from
// the defaults, in `--help` order ("vae train --latent 20 --beta 4 --epochs 3").
std::string train_command(const std::map<std::string, store::SqlValue>& params);

}  // namespace vae::report
