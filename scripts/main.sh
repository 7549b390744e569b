#!/usr/bin/env bash
# The main job: build, run the quickstart sweep (latent x beta x seeds on an MNIST
# subset, 2 workers) into results/results.db, and print its comparison table.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
export OPENBLAS_NUM_THREADS=1
build/vae sweep run sweeps/quickstart.toml --jobs 2 --db results/results.db --no-table
build/vae table --sweep quickstart --rows latent --cols beta --metric test_nll --db results/results.db
build/vae table --sweep quickstart --rows latent --cols beta --metric test_elbo --db results/results.db
