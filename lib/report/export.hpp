// One flat row per run for pandas or a spreadsheet, columns named as MLflow
// names them: run_id, status, ..., params.<setting>, metrics.<name>, then
// provenance (git_commit, compiler, blas, cpu, host, times, data checksums).
#pragma once

#include <string>
#include <vector>

#include "report/render.hpp"
#include "report/selection.hpp"

namespace vae::report {

Frame export_runs(store::Db& db, const std::vector<std::string>& run_ids);

}  // namespace vae::report
