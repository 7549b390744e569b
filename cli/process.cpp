#include "process.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
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

}  // namespace vae::cli
