// Helpers for the results-store, sweep and table tests: a temporary folder, a
// database with planned runs, and a fake trainer.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "store/results_store.hpp"
#include "store/run_identity.hpp"
#include "sweep/plan.hpp"

namespace vae::testing {

// A fresh folder under $TMPDIR, removed with everything in it at the end of scope.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() /
           ("vae-test-" + std::to_string(getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

inline std::vector<DataFile> fake_data_files(const ConfigMap&) { return {{"/data/fake.idx", "0123abcd"}}; }

// Expands a sweep text and registers it in the database; returns the plan and sweep id.
inline std::pair<sweep::Plan, int64_t> register_sweep(store::Db& db, const std::string& text,
                                                      const std::string& file = "t.toml") {
  sweep::Plan plan = sweep::make_plan(sweep::parse_sweep_text(text, file), fake_data_files);
  store::ResultsStore st(db);
  int64_t id = st.upsert_sweep(plan.spec.name, file, text);
  st.register_runs(id, plan.runs);
  return {plan, id};
}

// Writes text to DIR/name; the path.
inline std::string write(const TempDir& dir, const std::string& name, const std::string& text) {
  std::string path = dir.file(name);
  std::ofstream(path) << text;
  return path;
}

// One integer from a read-only query of the database at db_path (-1 if no row).
inline int64_t q(const std::string& db_path, const std::string& sql) {
  store::Db db(db_path, store::Db::Mode::ReadOnly);
  return db.scalar_int(sql, -1);
}

}  // namespace vae::testing
