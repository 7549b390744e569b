// Subcommands of the `vae` program register themselves here, so each lives in
// its own file and main.cpp never changes when one is added.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace vae::cli {

// Exit codes shared by every subcommand.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;     // runtime failure: missing or damaged data file, I/O
constexpr int kExitUsage = 2;     // unknown option, bad value, malformed sweep file
constexpr int kExitDiverged = 3;  // training hit NaN/Inf

struct Command {
  std::string name;                                              // "train", "sweep", ...
  std::string summary;                                           // one line for `vae --help`
  std::function<int(const std::vector<std::string>& args)> run;  // args after the name
};

std::vector<Command>& commands();

struct Register {
  explicit Register(Command c) { commands().push_back(std::move(c)); }
};

}  // namespace vae::cli
