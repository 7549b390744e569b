#!/usr/bin/env bash
# The whole test suite: the format check, clang-tidy on what the change touches
# (VAE_TIDY=all: on lib/ and cli/ whole), the Release build under ctest, then the library
# and unit tests rebuilt with AddressSanitizer + UndefinedBehaviorSanitizer and run there.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
export OPENBLAS_NUM_THREADS=1

echo "== format (clang-format 14) =="
scripts/check_format.sh

# Before the build, so that a finding stops the run early: configuring is enough.
# Over the whole library (lib/ and cli/) it takes ~300 s of CPU, so by default only what
# the change touches (scripts/tidy.sh --changed: the .cpp files changed since the merge
# base with main, or since HEAD~1 on main, and those including a changed header).
echo "== clang-tidy 14 (${VAE_TIDY:-changed}) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DVAE_BUILD_BENCH=OFF -DVAE_WERROR=ON > build.log 2>&1 \
  || { cat build.log; exit 1; }
case "${VAE_TIDY:-changed}" in
  changed) scripts/tidy.sh --changed ;;
  all) scripts/tidy.sh lib cli ;;
  *) echo "VAE_TIDY is changed or all, not '$VAE_TIDY'"; exit 2 ;;
esac

# Warnings are errors here (VAE_WERROR): a change that adds one does not pass.
VAE_WERROR=ON scripts/build.sh

# The sanitizer build (below) starts now, at the lowest priority, while ctest runs: it gets
# only the CPU the tests leave idle (waiting on processes, one-core tests), then all of it.
# -O0: the sanitizers need no speed, and compiling is most of this build's time (the model
# tests in double: tests/test_iaf.cpp alone takes 98 s of CPU at -O1, 50 s at -O0, and its
# cases run in 4 and 11 s). The finite-difference checks ([gradcheck]) only compare numbers,
# like the files left out of this build, and run in the Release build; the paths they
# exercise run here in the other model tests.
asan_build="cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS=-O0 -DVAE_SANITIZE=ON \
  -DVAE_BUILD_BENCH=OFF -DVAE_WERROR=ON && nice -n 19 cmake --build build-asan -j$jobs --target vae_tests"
setsid bash -c "$asan_build" > build-asan.log 2>&1 &
asan_pid=$!  # its own process group: a failing ctest stops the whole build with it
trap 'kill -- -$asan_pid 2>/dev/null || true' EXIT

echo "== tests (Release) =="
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer) =="
wait $asan_pid || { tail -50 build-asan.log; exit 1; }
trap - EXIT
# The sanitized tests in $jobs processes at once (Catch2 runs one test at a time): each
# takes every $jobs-th test name, escaped for Catch's test specs. OpenBLAS's own threads
# and assembly are outside our code: no leak check of its pool.
# (Catch2 v2 exits with the number of tests listed: not an error.)
build-asan/vae_tests '~[e2e]~[slow]~[.]~[gradcheck]' --list-test-names-only > build-asan/names.txt || true
sed -e '/^$/d' -e 's/\\/\\\\/g; s/,/\\,/g; s/\[/\\[/g; s/\]/\\]/g' build-asan/names.txt > build-asan/tests.txt
[ -s build-asan/tests.txt ] || { echo "no tests listed by build-asan/vae_tests"; exit 1; }
pids=()
for ((i = 0; i < jobs; i++)); do
  awk -v n="$jobs" -v i="$i" 'NR % n == i' build-asan/tests.txt > "build-asan/shard$i.txt"
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    build-asan/vae_tests -f "build-asan/shard$i.txt" > "build-asan/shard$i.log" 2>&1 &
  pids+=($!)
done
failed=0
for ((i = 0; i < jobs; i++)); do
  if wait "${pids[$i]}"; then tail -2 "build-asan/shard$i.log"; else cat "build-asan/shard$i.log"; failed=1; fi
done
[ "$failed" -eq 0 ] || { echo "tests under the sanitizers failed"; exit 1; }
echo "tests under the sanitizers: $(wc -l < build-asan/tests.txt) test cases passed"
