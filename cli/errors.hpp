// The one place where an exception that leaves a subcommand becomes its line on
// stderr and its exit code, and where a mistyped command, action or option gets
// its "did you mean ...?".
#pragma once
#include <boost/program_options.hpp>
#include <exception>
#include <functional>
#include <string>
#include <vector>

namespace vae::cli {

// kExitUsage (2) for what the caller can fix by retyping: an option, a setting
// (ConfigError), a sweep file (SweepError), a reproduction spec (SpecError), a request
// (report::UsageError);
// kExitError (1) for the rest: a missing or damaged data file, the database, I/O.
int exit_code_of(const std::exception& e);

// Runs `body`. An exception it throws becomes one line, "who: what", and
// exit_code_of(it); every subcommand goes through here (main.cpp).
int run_reporting_errors(const std::string& who, const std::function<int()>& body);

// "; did you mean NAME?" for the name of `names` nearest to `word`, else "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& names);

// A Boost.Program_options error as one line; an unknown option gets the nearest
// option of `desc` ("unrecognised option '--formta'; did you mean --format?").
std::string option_error(const boost::program_options::error& e,
                         const boost::program_options::options_description& desc);

}  // namespace vae::cli
