#!/usr/bin/env bash
# Training time per epoch of the IAF posterior (2 steps) relative to the diagonal
# Gaussian (issue: IAF, done-when 3): the model of sweeps/iaf_vs_gaussian.toml
# (784-500-500-32, MADE 320-320, context 64, batch 100), one epoch over the 60,000
# MNIST training images per measurement, one BLAS thread, alternating Gaussian and
# IAF REPS times; reports the median seconds per epoch of each and their ratio.
#
#   bench/iaf_epoch_time.sh [REPS=3] [BUILD_DIR=build]
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3} vae=${2:-build}/vae
export OPENBLAS_NUM_THREADS=1
common=(--dataset mnist --binarize dynamic --hidden 500,500 --latent 32 --batch 100 --lr 1e-3
        --epochs 1 --iw-samples 0 --posterior iaf --iaf-hidden 320 --iaf-made-layers 2 --iaf-context 64 --json -q)
epoch_s() {  # seconds of the one training epoch (metrics.train_s of the JSON line)
  "$vae" train "${common[@]}" "$@" | sed -n 's/.*"train_s":\([0-9.e+-]*\).*/\1/p'
}
g=() f=()
for ((r = 0; r < reps; r++)); do
  g+=("$(epoch_s --iaf-steps 0)")
  f+=("$(epoch_s --iaf-steps 2 --iaf-kl stl)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
mg=$(median "${g[@]}") mf=$(median "${f[@]}")
echo "Gaussian (iaf-steps 0): ${g[*]} s per epoch, median $mg"
echo "IAF (2 steps, stl):     ${f[*]} s per epoch, median $mf"
echo "IAF / Gaussian time per epoch: $(awk -v a="$mf" -v b="$mg" 'BEGIN { printf "%.2f", a / b }')  (load average $(cut -d' ' -f1-3 /proc/loadavg))"
