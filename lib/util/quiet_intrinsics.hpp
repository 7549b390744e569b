// Included before anything else in every translation unit of ours (CMakeLists.txt: -include).
//
// GCC 12's AVX-512 intrinsics declare their undefined-value helpers as `__m512 __Y = __Y;`,
// and once xsimd's kernels are inlined into our loops every use of them is reported as
// -Wuninitialized / -Wmaybe-uninitialized (GCC PR 105593), hundreds of false warnings that
// VAE_WERROR turns into errors. The diagnostic state GCC applies to a warning is the one at
// the warned line, so including <immintrin.h> first, with those two warnings off, silences
// them on the intrinsics' own lines only: our code keeps both warnings.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
