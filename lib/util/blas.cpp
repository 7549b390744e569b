#include "util/blas.hpp"

#include <cblas.h>

namespace vae {
void set_blas_threads(int n) { openblas_set_num_threads(n); }
int blas_threads() { return openblas_get_num_threads(); }
std::string blas_config() { return openblas_get_config(); }
}  // namespace vae
