#!/usr/bin/env bash
# The main job: build, then a short `vae train` on MNIST that prints its metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
export OPENBLAS_NUM_THREADS=1
build/vae train --dataset mnist --epochs 2 --train-size 10000 --iw-samples 500 --iw-examples 500
