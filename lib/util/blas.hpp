// OpenBLAS controls, kept apart from xtensor-blas (whose bundled cblas.h clashes with OpenBLAS's).
#pragma once
#include <string>

namespace vae {
void set_blas_threads(int n);
int blas_threads();
std::string blas_config();  // e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Zen MAX_THREADS=64"
}  // namespace vae
