#!/usr/bin/env bash
# Configures and builds vae-suite (Release) into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
# The micro benchmarks build in build-perf (bench/run.sh), not here. VAE_WERROR=ON in the
# environment makes warnings errors (scripts/test.sh); a plain build only reports them.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVAE_BUILD_BENCH=OFF -DVAE_WERROR="${VAE_WERROR:-OFF}" > build.log 2>&1 \
  || { cat build.log; exit 1; }
cmake --build build -j"$jobs" >> build.log 2>&1 || { tail -50 build.log; exit 1; }
echo "build: ok (build/vae, build/vae_tests)"
