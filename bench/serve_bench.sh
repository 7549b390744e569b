#!/usr/bin/env bash
# vae serve on 10,000 runs: makes a synthetic results database (latent 5 x beta 5 x
# 400 seeds, every run done with final metrics and 10 epochs of curves), starts
# `vae serve` on it and times each request 20 times over HTTP (median): the runs
# view's first page (default order, sorted by a metric, filtered) and the 5 x 5
# comparison table of all 10,000 runs must answer in under 200 ms. Prints the
# medians with the machine's load and writes results/bench/serve_bench.json.
#
#   bench/serve_bench.sh                 # builds vae and the tests in build/ if needed
#   bench/serve_bench.sh /tmp/big.db     # keeps (or reuses) the synthetic database
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VAE_BUILD:-$root/build}
cmake --build "$build" -j2 --target vae_tests >/dev/null
mkdir -p "$root/results/bench"
echo "load before: $(uptime)"
VAE_BENCH_DB=${1:-} VAE_BENCH_JSON="$root/results/bench/serve_bench.json" OPENBLAS_NUM_THREADS=1 \
  "$build/vae_tests" '[.serve_bench]'
echo "load after:  $(uptime)"
