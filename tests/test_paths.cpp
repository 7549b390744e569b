#include "test_paths.hpp"

namespace vae::testing {
const char* test_dir() { return VAE_TEST_DIR; }
const char* source_dir() { return VAE_SOURCE_DIR; }
const char* vae_binary() { return VAE_BINARY; }
}  // namespace vae::testing
