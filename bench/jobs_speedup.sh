#!/usr/bin/env bash
# Speed-up of `vae sweep run --jobs 2` over `--jobs 1` on one subset of
# sweeps/latent_beta_mnist.toml (issue: sweep runner). The subset is seed 0,
# latent {2, 5, 10, 20, 50} x beta {1, 4} = 10 runs, at the short budget below;
# each --jobs setting runs it into its own fresh database, back to back.
#
#   bench/jobs_speedup.sh [BUILD_DIR]      (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
VAE=${1:-build}/vae
BUDGET=(--set epochs=3 --set iw-samples=1000 --set iw-examples=1000)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The subset: the committed sweep with its seeds and beta axis narrowed.
sed -e 's/^seeds = .*/seeds = [0]/' -e 's/^beta = .*/beta = [1, 4]/' \
    -e 's/^name = .*/name = "latent_beta_speedup"/' sweeps/latent_beta_mnist.toml > "$work/subset.toml"

declare -A wall
for jobs in 1 2; do
  start=$(date +%s.%N)
  "$VAE" sweep run "$work/subset.toml" --jobs "$jobs" --db "$work/j$jobs.db" \
      --runs-dir "$work/runs$jobs" --delete-checkpoints --no-table -q "${BUDGET[@]}"
  wall[$jobs]=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  echo "--jobs $jobs: $("$VAE" query --db "$work/j$jobs.db" --sql "SELECT count(*) FROM runs WHERE status='done'" | tail -1) runs done in ${wall[$jobs]} s"
done
echo "speed-up --jobs 2 over --jobs 1: $(awk -v a="${wall[1]}" -v b="${wall[2]}" 'BEGIN { printf "%.2f", a / b }')x  (nproc $(nproc), load average $(cut -d' ' -f1-3 /proc/loadavg))"
