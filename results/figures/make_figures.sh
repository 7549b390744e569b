#!/usr/bin/env bash
# Draws every picture of results/figures/ from the runs of sweeps/figures.toml and
# sweeps/quickstart.toml (see README.md here). From the repository root:
#
#   OPENBLAS_NUM_THREADS=1 build/vae sweep run sweeps/figures.toml --jobs 2
#   OPENBLAS_NUM_THREADS=1 build/vae sweep run sweeps/quickstart.toml --jobs 2
#   results/figures/make_figures.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export OPENBLAS_NUM_THREADS=1
vae=${VAE:-build/vae}
out=results/figures
# run ids of sweeps/figures.toml (seed 0 each): vae runs --sweep figures
bernoulli=c2776427aca5   # Bernoulli VAE, latent 20, MNIST (dynamic binarization)
beta4=e322541e8ea9       # beta-VAE, beta 4, latent 10, MNIST (dynamic binarization)
sigma=fae20fa5581a       # sigma-VAE (optimal sigma), latent 2, MNIST intensities
frey=dad04b399ff0        # sigma-VAE (optimal sigma), latent 2, Frey Face

$vae draw samples         --run $bernoulli --out $out/bernoulli_samples.png
$vae draw reconstructions --run $bernoulli --out $out/bernoulli_reconstructions.png
$vae draw interpolate     --run $bernoulli --out $out/bernoulli_interpolate.png
$vae draw samples         --run $beta4 --out $out/beta4_samples.png
$vae draw traversals      --run $beta4 --out $out/beta4_traversals.png
$vae draw samples         --run $sigma --out $out/sigma_mnist_samples.png
$vae draw manifold        --run $sigma --out $out/sigma_mnist_manifold.png
# Frey Face: grey faces read better on a white background
$vae draw manifold        --run $frey --side 15 --background 255 --out $out/frey_manifold.png
$vae draw samples         --run $frey --side 10 --background 255 --out $out/frey_samples.png
$vae draw reconstructions --run $frey --per-row 10 --rows 4 --background 255 --out $out/frey_reconstructions.png

$vae plot kl      --run $bernoulli --out $out/bernoulli_kl.png
$vae plot kl      --run $beta4 --out $out/beta4_kl.png
$vae plot curves  --run $bernoulli --run $beta4 --metric train_loss --label latent --label beta \
                  --out $out/mnist_curves.png
$vae plot latents --run $sigma --out $out/sigma_mnist_latents.png
$vae plot metric  --sweep quickstart --metric test_nll --x latent --line beta --out $out/quickstart_nll.png

# dSprites-style data: the best-MIG run of sweeps/dsprites_beta.toml (results/dsprites.db)
if [ -f results/dsprites.db ]; then
  $vae draw traversals --db results/dsprites.db --run c5f9d489c975 --out $out/dsprites_beta16_traversals.png
fi
