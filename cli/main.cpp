// vae: train, sweep, query and tabulate variational autoencoders.
#include <algorithm>
#include <iostream>

#include "command.hpp"
#include "errors.hpp"

namespace vae::cli {
std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}
}  // namespace vae::cli

int main(int argc, char** argv) {
  using namespace vae::cli;
  auto& cmds = commands();
  std::sort(cmds.begin(), cmds.end(), [](const Command& a, const Command& b) { return a.name < b.name; });
  auto usage = [&](std::ostream& out) {
    out << "usage: vae <command> [options]   (vae <command> --help for its options; vae --version)\n\n"
           "commands:\n";
    for (const auto& c : cmds)
      out << "  " << c.name << std::string(14 - std::min<size_t>(13, c.name.size()), ' ') << c.summary << "\n";
  };
  if (argc < 2) {
    usage(std::cerr);
    return kExitUsage;
  }
  std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    usage(std::cout);
    return kExitOk;
  }
  if (name == "--version") {
    std::cout << "vae (vae-suite) " << VAE_VERSION << "\n";
    return kExitOk;
  }
  std::vector<std::string> names;
  for (const auto& c : cmds) {
    if (c.name == name) {
      const std::vector<std::string> args(argv + 2, argv + argc);
      return run_reporting_errors("vae " + name, [&] { return c.run(args); });
    }
    names.push_back(c.name);
  }
  std::cerr << "vae: unknown command '" << name << "'" << did_you_mean(name, names)
            << " (vae --help lists them)\n";
  return kExitUsage;
}
