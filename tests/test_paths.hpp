// Where the tests find the repository's files and the built `vae` program. The paths are
// compiled into test_paths.cpp alone, so the other test files do not depend on where the
// checkout lives (their objects are then shared by ccache across checkouts).
#pragma once

namespace vae::testing {
const char* test_dir();    // tests/ of this checkout
const char* source_dir();  // the repository root
const char* vae_binary();  // the built `vae` program
}  // namespace vae::testing
