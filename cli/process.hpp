// Running another program (a plot script, the `vae` program itself for a sweep) and
// waiting for it, its output going where ours goes.
#pragma once

#include <string>
#include <vector>

namespace vae::cli {

// Runs args[0] with args, waits; its exit code. Throws std::runtime_error naming `who`
// when it cannot be started (the child prints why and exits 127) or dies of a signal.
int run_and_wait(const std::vector<std::string>& args, const std::string& who);

// The matplotlib scripts of analysis/ ($VAE_ANALYSIS_DIR, else the source tree's analysis/),
// run with python3 ($VAE_PYTHON, else /usr/bin/python3).
std::string analysis_script(const std::string& name);
// Runs python3 script args..., waits; its exit code. Throws naming `who` when python3 or the
// script is missing.
int run_python_script(const std::string& script, const std::vector<std::string>& args, const std::string& who);

}  // namespace vae::cli
