#include "errors.hpp"

#include <iostream>

#include "command.hpp"
#include "config/config.hpp"
#include "report/selection.hpp"
#include "reproduce/spec.hpp"
#include "sweep/sweep_file.hpp"
#include "util/nearest.hpp"

namespace vae::cli {

namespace po = boost::program_options;

int exit_code_of(const std::exception& e) {
  const bool usage = dynamic_cast<const report::UsageError*>(&e) || dynamic_cast<const ConfigError*>(&e) ||
                     dynamic_cast<const sweep::SweepError*>(&e) || dynamic_cast<const po::error*>(&e) ||
                     dynamic_cast<const reproduce::SpecError*>(&e);
  return usage ? kExitUsage : kExitError;
}

int run_reporting_errors(const std::string& who, const std::function<int()>& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::cerr << who << ": " << e.what() << "\n";
    return exit_code_of(e);
  }
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& names) {
  const auto near = nearest_name(word, names);
  return near ? "; did you mean " + *near + "?" : "";
}

std::string option_error(const po::error& e, const po::options_description& desc) {
  std::string line = e.what();
  const auto* unknown = dynamic_cast<const po::unknown_option*>(&e);
  // Long options only: a one-letter option is too short to guess from.
  if (!unknown || unknown->get_option_name().rfind("--", 0) != 0) return line;
  // "--formta=md" -> "formta"
  std::string word = unknown->get_option_name().substr(2);
  word = word.substr(0, word.find('='));
  std::vector<std::string> names;
  for (const auto& o : desc.options()) {
    const auto [first, count] = o->long_names();
    for (std::size_t k = 0; k < count; ++k) names.push_back(first[k]);
  }
  if (const auto near = nearest_name(word, names)) line += "; did you mean --" + *near + "?";
  return line;
}

}  // namespace vae::cli
