#include "store/provenance.hpp"

#include <cblas.h>
#include <openssl/rand.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <thread>

#include "util/hash.hpp"

#ifndef VAE_SOURCE_DIR
#define VAE_SOURCE_DIR ""
#endif
#ifndef VAE_COMPILER
#define VAE_COMPILER "unknown"
#endif
#ifndef VAE_BUILD_FLAGS
#define VAE_BUILD_FLAGS ""
#endif
#ifndef VAE_VERSION
#define VAE_VERSION "0.1.0"
#endif

namespace vae::store {

namespace {

// Output of a command (stdout only), or nullopt if it could not run or failed.
std::optional<std::string> capture(const std::string& cmd) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), &pclose);
  if (!p) return std::nullopt;
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p.get())) > 0) out.append(buf.data(), n);
  int status = pclose(p.release());
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return out;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

std::string read_first_line(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return trim(line);
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

const BuildInfo& build_info() {
  static const BuildInfo info = [] {
    BuildInfo b;
    std::string src = VAE_SOURCE_DIR;
    if (!src.empty()) {
      std::string git = "git -C " + shell_quote(src) + " ";
      if (auto head = capture(git + "rev-parse HEAD 2>/dev/null")) b.git_commit = trim(*head);
      if (!b.git_commit.empty())
        if (auto st = capture(git + "status --porcelain --untracked-files=no 2>/dev/null"))
          b.git_dirty = !trim(*st).empty();
    }
    try {
      b.binary_sha256 = sha256_file("/proc/self/exe");
    } catch (const std::exception&) {
    }
    b.vae_version = VAE_VERSION;
    b.compiler = VAE_COMPILER;
    b.build_flags = trim(VAE_BUILD_FLAGS);
    b.blas = trim(openblas_get_config());
    return b;
  }();
  return info;
}

const MachineInfo& machine_info() {
  static const MachineInfo info = [] {
    MachineInfo m;
    char host[256] = {0};
    if (gethostname(host, sizeof host - 1) == 0) m.host = host;
    m.boot_id = read_first_line("/proc/sys/kernel/random/boot_id");
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line)) {
      if (line.rfind("model name", 0) == 0) {
        auto colon = line.find(':');
        if (colon != std::string::npos) m.cpu = trim(line.substr(colon + 1));
        break;
      }
    }
    m.cpu_count = int64_t(std::thread::hardware_concurrency());
    return m;
  }();
  return info;
}

int blas_threads() { return openblas_get_num_threads(); }

std::optional<int64_t> process_start_ticks(int64_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  if (!f) return std::nullopt;
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may hold spaces: skip past the last ')'.
  auto close = all.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(all.substr(close + 2));
  std::string state;
  rest >> state;  // field 3
  if (state == "Z" || state == "X") return std::nullopt;
  std::string field;
  for (int i = 4; i <= 22; ++i) rest >> field;
  try {
    return std::stoll(field);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool process_alive_here(const std::string& host, const std::string& boot_id, int64_t pid, int64_t start_ticks) {
  const MachineInfo& m = machine_info();
  if (host != m.host || boot_id != m.boot_id) return false;
  auto start = process_start_ticks(pid);
  return start && *start == start_ticks;
}

std::string now_iso() {
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = std::time_t(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(ms % 1000));
  return buf;
}

double now_unix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string random_hex(int bytes) {
  std::string raw(size_t(bytes), '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), bytes) != 1) {
    std::random_device rd;
    for (auto& c : raw) c = char(rd());
  }
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

}  // namespace vae::store
