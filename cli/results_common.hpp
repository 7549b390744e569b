// Helpers shared by the results commands (sweep, runs, query, table, export):
// the database path, option parsing with one-line errors, list options.
#pragma once

#include <boost/program_options.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "command.hpp"
#include "errors.hpp"

namespace vae::cli::results {

namespace po = boost::program_options;

// $VAE_DB, else results/results.db (relative to the working folder).
inline std::string default_db_path() {
  const char* env = std::getenv("VAE_DB");
  return env && *env ? std::string(env) : std::string("results/results.db");
}

inline void add_db_option(po::options_description& desc) {
  // clang-format off
  desc.add_options()("db", po::value<std::string>()->default_value(default_db_path()),
                     "results database (default: $VAE_DB, else results/results.db)");
  // clang-format on
}

// Parses; on a bad option prints one line and returns kExitUsage; on --help prints
// usage and returns kExitOk; otherwise nullopt.
inline std::optional<int> parse(const std::string& command, const std::string& usage,
                                const po::options_description& desc,
                                const po::positional_options_description& positional,
                                const std::vector<std::string>& args, po::variables_map& vm) {
  try {
    po::store(po::command_line_parser(args).options(desc).positional(positional).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: " << usage << "\n\n" << desc << "\n";
      return kExitOk;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << command << ": " << option_error(e, desc) << " (" << command << " --help lists the options)\n";
    return kExitUsage;
  }
  return std::nullopt;
}

// "a,b" and repeated options alike: {"a", "b"}.
inline std::vector<std::string> list_option(const po::variables_map& vm, const std::string& name) {
  std::vector<std::string> out;
  if (!vm.count(name)) return out;
  for (const auto& s : vm[name].as<std::vector<std::string>>()) {
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ','))
      if (!item.empty()) out.push_back(item);
  }
  return out;
}

// The whole command line of this process, for provenance.
inline std::string command_line() {
  std::ifstream f("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::string out;
  for (char c : all) out += c == '\0' ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// The command as a person would type it ("vae table --sweep ..."), for comments
// in generated files.
inline std::string display_command_line() {
  std::string c = command_line();
  size_t space = c.find(' ');
  std::string prog = c.substr(0, space);
  size_t slash = prog.rfind('/');
  if (slash != std::string::npos) prog = prog.substr(slash + 1);
  return space == std::string::npos ? prog : prog + c.substr(space);
}

}  // namespace vae::cli::results
