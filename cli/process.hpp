// Running another program (a plot script, the `vae` program itself for a sweep) and
// waiting for it, its output going where ours goes.
#pragma once

#include <string>
#include <vector>

namespace vae::cli {

// Runs args[0] with args, waits; its exit code. Throws std::runtime_error naming `who`
// when it cannot be started (the child prints why and exits 127) or dies of a signal.
int run_and_wait(const std::vector<std::string>& args, const std::string& who);

}  // namespace vae::cli
