#!/usr/bin/env bash
# Installs the Debian package into a clean Debian 12 (a debootstrap chroot) and checks it
# there as a user would: apt resolves its dependencies from Debian 12 alone; `vae --help`,
# `man vae`, `vae --version`; a short `vae train`; examples/consumer built against the
# installed package with find_package (shared) and with pkg-config, whose test ELBO must
# equal that `vae train`. Root only (debootstrap, chroot, mount).
#
#   scripts/deb_check.sh build/vae-suite_0.1.0_amd64.deb [CHROOT]   # CHROOT: /tmp/vae-deb-chroot
#
# A CHROOT that does not exist is made first: debootstrap --variant=minbase bookworm (about
# 130 MB from deb.debian.org), then g++, cmake, make, pkgconf and man-db in it (the tools a
# user would have to build the example). A fresh copy of it is used for each check, so
# nothing installed by an earlier check can satisfy a dependency.
set -euo pipefail
deb=$(realpath "$1")
base=${2:-/tmp/vae-deb-chroot}
root=$(cd "$(dirname "$0")/.." && pwd)
mnist=${VAE_DATA_DIR:-$root/../shared/data}/mnist
if [ ! -d "$base" ]; then
  command -v debootstrap >/dev/null || { echo "deb_check: apt-get install debootstrap"; exit 1; }
  debootstrap --variant=minbase bookworm "$base" http://deb.debian.org/debian
  chroot "$base" /bin/sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends g++ cmake make pkgconf man-db'
fi
c=$(mktemp -d /tmp/vae-deb-check.XXXXXX)
cleanup() { umount "$c/proc" 2>/dev/null || true; rm -rf "$c"; }
trap cleanup EXIT
cp -a "$base/." "$c/"
mount -t proc proc "$c/proc"
mkdir -p "$c/check/data/mnist"
cp "$deb" "$c/check/"
cp -r "$root/examples/consumer" "$c/check/"
cp "$mnist"/t10k-* "$mnist"/train-* "$c/check/data/mnist/"
cp /etc/resolv.conf "$c/etc/resolv.conf"

chroot "$c" /bin/bash -euo pipefail -c '
  export DEBIAN_FRONTEND=noninteractive OPENBLAS_NUM_THREADS=1 VAE_DATA_DIR=/check/data
  cd /check
  echo "== apt-get install ./$(basename '"$deb"')"
  apt-get install -y -qq --no-install-recommends ./*.deb > apt.log 2>&1 || { cat apt.log; exit 1; }
  grep -E "^(Setting up|The following NEW)" apt.log | sed "s/^/  /" | head -40
  echo "== vae --version; vae --help (first lines); man vae (first lines)"
  vae --version
  vae --help | head -4
  MANPAGER=cat COLUMNS=80 man vae 2>/dev/null | head -8
  MANPAGER=cat man -w vae-train
  echo "== vae train"
  set -- dataset=mnist train-size=600 test-size=200 epochs=1 batch=100 latent=4 hidden=32 iw-samples=5 iw-examples=20 seed=3
  args=(); for kv in "$@"; do args+=("--${kv%%=*}" "${kv#*=}"); done
  vae train "${args[@]}" --json --quiet > train.json
  echo "== examples/consumer: find_package(vae) (shared) and pkg-config"
  cmake -S consumer -B build-consumer -DCONSUMER_STATIC=OFF -DCMAKE_BUILD_TYPE=Release > cmake.log 2>&1 || { cat cmake.log; exit 1; }
  cmake --build build-consumer > build.log 2>&1 || { cat build.log; exit 1; }
  c++ -std=c++17 -O2 consumer/main.cpp -o consumer_pc $(pkg-config --cflags --libs vae)
  build-consumer/consumer run_a "$@" | tee a.out
  ./consumer_pc run_b "$@" > b.out
  a=$(sed -n "s/^test_elbo //p" a.out); b=$(sed -n "s/^test_elbo //p" b.out)
  d=$(sed -E "s/.*\"test_elbo\":([^,}]*).*/\\1/" train.json)
  echo "test ELBO: consumer (find_package) $a, consumer (pkg-config) $b, vae train $d"
  awk -v a="$a" -v b="$b" -v d="$d" "BEGIN { exit !(a + 0 == d + 0 && b + 0 == d + 0) }" \
    || { echo "FAIL: the ELBOs differ"; exit 1; }
  echo "deb check: ok"
'
