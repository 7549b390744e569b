// Running the built `vae` program from end-to-end tests: synchronously with its
// output captured, or in the background to be killed.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_paths.hpp"

namespace vae::testing {

struct Proc {
  pid_t pid = -1;
  std::string out_path, err_path;
  int status = 0;
  bool waited = false;

  // Exit code, or 128 + signal.
  int wait() {
    if (!waited) {
      waitpid(pid, &status, 0);
      waited = true;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  bool running() {
    if (waited) return false;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) waited = true;
    return !waited;
  }
  static std::string slurp(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  std::string out() const { return slurp(out_path); }
  std::string err() const { return slurp(err_path); }
};

// Starts the vae program with args in the background; stdout and stderr go to files
// next to `log_prefix`.
inline Proc start_vae(const std::vector<std::string>& args, const std::string& log_prefix) {
  Proc p;
  p.out_path = log_prefix + ".out";
  p.err_path = log_prefix + ".err";
  std::vector<std::string> all{vae_binary()};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : all) argv.push_back(s.data());
  argv.push_back(nullptr);
  p.pid = fork();
  if (p.pid == 0) {
    int out = open(p.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(p.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(err, 2);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    execv(vae_binary(), argv.data());
    _exit(127);
  }
  return p;
}

inline Proc run_vae(const std::vector<std::string>& args, const std::string& log_prefix) {
  Proc p = start_vae(args, log_prefix);
  p.wait();
  return p;
}

// Runs a shell command line; its exit status and standard output.
struct Shell {
  int status;
  std::string out;
};
inline Shell shell(const std::string& cmd) {
  Shell r{-1, ""};
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

inline bool pid_alive(pid_t pid) {
  if (kill(pid, 0) != 0) return false;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = all.rfind(')');
  return close != std::string::npos && close + 2 < all.size() && all[close + 2] != 'Z';
}

// Polls `ready` every 20 ms for up to `seconds`; true when it held.
template <class F>
bool wait_until(F ready, double seconds) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ready();
}

}  // namespace vae::testing
