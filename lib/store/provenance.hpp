// Where and how a run was produced: code version, build, BLAS, machine, process.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace vae::store {

struct BuildInfo {
  std::string git_commit;         // of the source tree at run time ("" if unknown)
  std::optional<bool> git_dirty;  // uncommitted changes to tracked files
  std::string binary_sha256;      // the running program (/proc/self/exe)
  std::string vae_version, compiler, build_flags, blas;
};

struct MachineInfo {
  std::string host, boot_id, cpu;
  int64_t cpu_count = 0;
};

// Runs `git` in the source folder (VAE_SOURCE_DIR) once; cached.
const BuildInfo& build_info();
const MachineInfo& machine_info();

// The running BLAS's thread count (openblas_get_num_threads()).
int blas_threads();

// Identity of a live process on this machine: its start time in clock ticks since
// boot (/proc/PID/stat field 22), or nullopt when no such process (or a zombie).
std::optional<int64_t> process_start_ticks(int64_t pid);

// True when (host, boot id, pid, start) names a process alive on this machine now.
bool process_alive_here(const std::string& host, const std::string& boot_id, int64_t pid, int64_t start_ticks);

std::string now_iso();  // UTC, millisecond precision: 2024-05-01T12:00:00.123Z
double now_unix();      // seconds since the epoch
std::string random_hex(int bytes);

}  // namespace vae::store
