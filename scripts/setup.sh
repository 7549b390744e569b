#!/usr/bin/env bash
# Installs the Debian packages vae-suite needs. Idempotent; run as root.
set -euo pipefail
packages=(
  build-essential cmake git pkg-config clang-format-14 clang-tidy-14
  xtensor-dev libxtensor-blas-dev xtl-dev libxsimd-dev libopenblas-dev
  libboost-program-options-dev libsqlite3-dev sqlite3 catch2
  libtomlplusplus-dev nlohmann-json3-dev libstb-dev libbenchmark-dev
  zlib1g-dev libssl-dev dataset-fashion-mnist
  python3-matplotlib python3-numpy
  slurm-wlm munge   # tests/slurm/slurm_e2e.sh starts a one-node Slurm
  libcpp-httplib-dev libjs-chart.js   # vae serve: the HTTP server, and Chart.js for its page
  chromium          # tests/test_serve_browser.cpp opens every view of vae serve headless
  help2man          # the man pages, made from the --help texts at build time
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "setup: all ${#packages[@]} packages present"
