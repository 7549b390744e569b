#!/usr/bin/env bash
# clang-tidy 14 with .clang-tidy over the library (lib/), or over the folders and files
# given; a finding in a header counts only when the header is in one of those folders.
# Needs build/compile_commands.json (scripts/build.sh, or any configure of build/).
#   scripts/tidy.sh                      # lib/
#   scripts/tidy.sh cli lib/store        # folders
#   scripts/tidy.sh lib/util/nearest.cpp # files (a header: the .cpp files of its folder)
#   scripts/tidy.sh --times lib/data     # and the seconds each file took
# Exit 0: no finding; 1: findings (printed); 2: cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cxx_files.sh
root=$(pwd)
build=${VAE_TIDY_BUILD:-build}
times=0
if [ "${1:-}" = "--times" ]; then times=1; shift; fi
[ -f "$build/compile_commands.json" ] || {
  echo "tidy: $build/compile_commands.json is missing: configure first (scripts/build.sh)"; exit 2; }
tidy=$(find_clang_tidy)

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(lib)
files=()
dirs=()
for t in "${targets[@]}"; do
  t=${t%/}
  if [ -d "$t" ]; then
    dirs+=("$t")
  elif [ -f "$t" ]; then
    case "$t" in
      *.cpp) files+=("$t"); dirs+=("$(dirname "$t")") ;;
      *) t=$(dirname "$t"); dirs+=("$t") ;;  # a header: through the sources of its folder
    esac
  else
    echo "tidy: no such file or folder: $t"; exit 2
  fi
  [ -f "$t" ] || mapfile -t -O ${#files[@]} files < <(cxx_files | grep -E "^$t/.*\.cpp$" || true)
done
[ ${#files[@]} -gt 0 ] || { echo "tidy: no .cpp file in: ${targets[*]}"; exit 2; }
mapfile -t files < <(printf '%s\n' "${files[@]}" | sort -u)
header_filter="^$root/($(printf '%s\n' "${dirs[@]}" | sort -u | sed 's/[.]/\\./g' | paste -sd '|'))/"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# One log per file (parallel runs do not mix), with its exit code and its seconds.
tidy_one() {
  local log start rc=0
  log="$logs/$(tr / _ <<< "$1")"
  start=$(date +%s.%N)
  "$tidy" -p "$build" --quiet --header-filter="$header_filter" "$1" > "$log.out" 2> "$log.err" || rc=$?
  echo "$rc" > "$log.rc"
  echo "$(date +%s.%N) - $start" | bc > "$log.time"
}
export -f tidy_one
export tidy build header_filter logs
start=$(date +%s)
printf '%s\0' "${files[@]}" | xargs -0 -n 1 -P "$(nproc 2>/dev/null || echo 2)" bash -c 'tidy_one "$1"' _
elapsed=$(( $(date +%s) - start ))

findings=0
failed=0
for f in "${files[@]}"; do
  log="$logs/$(tr / _ <<< "$f")"
  [ "$times" -eq 0 ] || printf '%6.1f s  %s\n' "$(cat "$log.time")" "$f"
  cat "$log.out"
  if [ "$(cat "$log.rc")" -ne 0 ]; then  # it could not compile the file: not a finding, a failure
    failed=1
    cat "$log.err"
    echo "tidy: $tidy failed on $f (exit $(cat "$log.rc"))"
  fi
  findings=$(( findings + $(grep -c ': warning: ' "$log.out" || true) ))
done
echo "tidy: ${#files[@]} files, $findings findings, ${elapsed} s (header filter: $header_filter)"
[ "$failed" -eq 0 ] || exit 2
[ "$findings" -eq 0 ]
