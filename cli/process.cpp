#include "process.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <stdexcept>

namespace vae::cli {

int run_and_wait(const std::vector<std::string>& args, const std::string& who) {
  std::vector<std::string> all = args;
  std::vector<char*> argv;
  argv.reserve(all.size() + 1);
  for (auto& s : all) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "%s: %s: %s\n", who.c_str(), argv[0], std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw std::runtime_error(std::string("waitpid: ") + std::strerror(errno));
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  throw std::runtime_error(args[0] + ": killed by signal " + std::to_string(WTERMSIG(status)));
}

namespace {
std::string python() {
  const char* env = std::getenv("VAE_PYTHON");
  return env && *env ? env : "/usr/bin/python3";
}
}  // namespace

std::string analysis_script(const std::string& name) {
  const char* env = std::getenv("VAE_ANALYSIS_DIR");
  return std::string(env && *env ? env : VAE_SOURCE_DIR "/analysis") + "/" + name;
}

int run_python_script(const std::string& script, const std::vector<std::string>& args, const std::string& who) {
  const std::string py = python();
  if (::access(py.c_str(), X_OK) != 0)
    throw std::runtime_error(py + ": python3 not found (Debian: apt-get install python3 python3-matplotlib; "
                                  "or set VAE_PYTHON)");
  if (!std::filesystem::exists(script)) throw std::runtime_error(script + ": plot script not found");
  std::vector<std::string> all{py, script};
  all.insert(all.end(), args.begin(), args.end());
  return run_and_wait(all, who);
}

}  // namespace vae::cli
