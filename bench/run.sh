#!/usr/bin/env bash
# The performance benchmark of issues 5 and 18, in one invocation: our training throughput,
# the PyTorch peer's and the BLAS limit's at batch 20 and 128 on 1 thread and at
# batch 128 on 2 threads; the IWAE protocol (784-200-200-50 tanh, batch 20, IWAE k = 5
# and 50) on 1 and 2 threads; the importance-weighted evaluation against its limit; peak
# resident memory of a training run against what it must hold. Prints a table and
# writes results/bench/perf.json.
#   bench/run.sh --settings b20,iwae5,iwae50   # a subset (see bench/perf.py --help)
#
#   bench/run.sh                  # 3 repetitions, 2 epochs each (about 10 min idle)
#   bench/run.sh --reps 1 --epochs 1 --iw-examples 10   # a quick look
#   bench/run.sh --mnist DIR --peer PATH   # data and peer elsewhere than ../shared
#   bench/run.sh --coretype Haswell   # pin OpenBLAS's kernels (default: native, the CPU's own;
#                                     # see bench/blas_kernels.py)
#   bench/run.sh --portable ...   # also a VAE_NATIVE=OFF build (build-perf-portable), run beside
#                                 # ours in every repetition: the cost of a portable binary
#
# By default the MNIST data and the PyTorch peer are found in the shared folder beside
# the repository (../shared/data/mnist, ../shared/bench/torch_vae_baseline.py), so a
# clone works from any folder that has one; both paths are checked before building.
#
# Builds what it needs in $VAE_BENCH_BUILD (default build-perf). Every figure is
# the best of the repetitions; each repetition runs ours, the peer and the limit
# back to back, so a ratio compares runs made under the same machine load.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VAE_BENCH_BUILD:-$root/build-perf}
args=()
portable=""
for a in "$@"; do
  if [ "$a" = "--portable" ]; then portable=${build}-portable; else args+=("$a"); fi
done
/usr/bin/python3 "$root/bench/perf.py" --build "$build" "${args[@]}" --check
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DVAE_BUILD_BENCH=ON >/dev/null
cmake --build "$build" -j2 --target vae_cli limit_gemm >/dev/null
if [ -n "$portable" ]; then
  cmake -S "$root" -B "$portable" -DCMAKE_BUILD_TYPE=Release -DVAE_NATIVE=OFF -DVAE_BUILD_BENCH=OFF >/dev/null
  cmake --build "$portable" -j2 --target vae_cli >/dev/null
  args+=(--compare "$portable")
fi
exec /usr/bin/python3 "$root/bench/perf.py" --build "$build" "${args[@]}"
