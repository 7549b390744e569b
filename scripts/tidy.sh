#!/usr/bin/env bash
# clang-tidy 14 with .clang-tidy over the library (lib/), over the folders and files
# given, or over what a change touches (--changed: what scripts/test.sh runs).
# Needs build/compile_commands.json (scripts/build.sh, or any configure of build/).
#   scripts/tidy.sh                      # lib/ (about 300 s of CPU: 47 files)
#   scripts/tidy.sh cli lib/store        # folders
#   scripts/tidy.sh lib/util/nearest.cpp # files (a header: the .cpp files that include it)
#   scripts/tidy.sh --changed [BASE]     # the change since BASE (see find_base below)
#   scripts/tidy.sh --times lib/data     # and the seconds each file took
#   scripts/tidy.sh --list --changed     # only the files it would check
# A finding in a header counts only when the header is in one of the folders checked
# (--changed: anywhere in lib/ and cli/).
# Exit 0: no finding; 1: findings (printed); 2: cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cxx_files.sh
root=$(pwd)
build=${VAE_TIDY_BUILD:-build}
times=0
list=0
changed=0
base=
while [ $# -gt 0 ]; do
  case "$1" in
    --times) times=1; shift ;;
    --list) list=1; shift ;;
    --changed)
      changed=1; shift
      if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then base=$1; shift; fi ;;
    *) break ;;
  esac
done
[ -f "$build/compile_commands.json" ] || {
  echo "tidy: $build/compile_commands.json is missing: configure first (scripts/build.sh)"; exit 2; }
tidy=$(find_clang_tidy)
build_abs=$(cd "$build" && pwd)
scope=(lib cli)  # what --changed looks at: the library and the program

# The repository's .cpp and .hpp files that include (directly or through other headers)
# one of the headers given on stdin. Includes are resolved as the build resolves them:
# beside the including file, under lib/ (the layers' include folders), or from the root.
includers() {
  local seeds
  seeds=$(mktemp)
  cat > "$seeds"
  awk 'FILENAME == ARGV[1] { known[$0] = 1; next }
       FILENAME == ARGV[2] { seen[$0] = 1; queue[n++] = $0; next }
       {
         file = $0; sub(/:.*/, "", file)
         inc = $0; sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
         dir = file; sub(/\/[^\/]*$/, "", dir)
         split(dir "/" inc " lib/" inc " " inc, cand, " ")
         for (c = 1; c <= 3; ++c) if (cand[c] in known) { by[cand[c]] = by[cand[c]] " " file; break }
       }
       END {
         for (q = 0; q < n; ++q) {
           k = split(by[queue[q]], users, " ")
           for (u = 1; u <= k; ++u) if (!(users[u] in seen)) { seen[users[u]] = 1; queue[n++] = users[u]; print users[u] }
         }
       }' <(cxx_files) "$seeds" <(cxx_files | xargs grep -H '^#include "' || true)
  rm -f "$seeds"
}

# The .cpp files of the scope among the file names on stdin.
in_scope_cpp() { grep -E "^($(IFS='|'; echo "${scope[*]}"))/.*\.cpp$" || true; }

# --changed: the files changed since BASE, committed or not (new files too). BASE is, in
# order: the argument; the merge base with main (or origin/main) when it is not HEAD, as
# on a branch; HEAD~1, as on main itself or a fresh clone of it (for a merge commit: the
# whole branch it merged). A changed .clang-tidy checks the whole scope.
find_base() {
  if [ -z "$base" ]; then
    local b
    for main in main origin/main; do
      b=$(git merge-base HEAD "$main" 2> /dev/null) || continue
      [ "$b" = "$(git rev-parse HEAD)" ] || { base=$b; break; }
    done
  fi
  [ -n "$base" ] || base=$(git rev-parse -q --verify HEAD~1) || {
    echo "tidy: no base to compare with (no main, no HEAD~1): give one (--changed BASE)" >&2; exit 2; }
}
changed_files() {
  { git diff --name-only --diff-filter=d "$base" --; git ls-files --others --exclude-standard; } | sort -u
}

targets=()
dirs=()
files=()
if [ "$changed" -eq 1 ]; then
  [ $# -eq 0 ] || { echo "tidy: --changed takes no folders or files"; exit 2; }
  find_base
  all=$(changed_files)
  echo "tidy: changes since $(git rev-parse --short "$base")"
  dirs=("${scope[@]}")
  in_scope=$(grep -E "^($(IFS='|'; echo "${scope[*]}"))/" <<< "$all" || true)
  if grep -qx '.clang-tidy' <<< "$all"; then
    targets=("${scope[@]}")  # new checks: every file
  else
    mapfile -t files < <({ grep -E '\.cpp$' <<< "$in_scope" || true; grep -E '\.hpp$' <<< "$in_scope" | includers; } \
                          | in_scope_cpp | sort -u)
    [ ${#files[@]} -gt 0 ] || { echo "tidy: no C++ change in ${scope[*]}: nothing to check"; exit 0; }
  fi
else
  targets=("$@")
  [ ${#targets[@]} -gt 0 ] || targets=(lib)
fi
for t in "${targets[@]}"; do
  t=${t%/}
  if [ -d "$t" ]; then
    dirs+=("$t")
    mapfile -t -O ${#files[@]} files < <(cxx_files | grep -E "^$t/.*\.cpp$" || true)
    # A folder of headers only (lib/nn, lib/prob, lib/tensor): through the sources including them.
    cxx_files | grep -qE "^$t/.*\.cpp$" \
      || mapfile -t -O ${#files[@]} files < <(cxx_files | grep -E "^$t/.*\.hpp$" | includers | in_scope_cpp)
  elif [ -f "$t" ]; then
    dirs+=("$(dirname "$t")")
    case "$t" in
      *.cpp) files+=("$t") ;;
      *) mapfile -t -O ${#files[@]} files < <(echo "$t" | includers | in_scope_cpp) ;;
    esac
  else
    echo "tidy: no such file or folder: $t"; exit 2
  fi
done
[ ${#files[@]} -gt 0 ] || { echo "tidy: no .cpp file in: ${targets[*]}"; exit 2; }
mapfile -t files < <(printf '%s\n' "${files[@]}" | sort -u)
[ "$list" -eq 0 ] || { printf '%s\n' "${files[@]}"; exit 0; }
# The layers' headers are included through build/layers/NAME/NAME -> lib/NAME (the build
# lets a layer see only the layers below it), so a header of lib/X has two paths.
header_paths() {
  local d
  for d in "$@"; do
    case "$d" in
      lib) echo "$root/lib/"; echo "$build_abs/layers/[a-z_]+/[a-z_]+/" ;;
      lib/*) echo "$root/$d/"; echo "$build_abs/layers/${d#lib/}/${d#lib/}/" ;;
      *) echo "$root/$d/" ;;
    esac
  done
}
header_filter="^($(header_paths $(printf '%s\n' "${dirs[@]}" | sort -u) | sed 's/[.]/\\./g' | paste -sd '|'))"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# One log per file (parallel runs do not mix), with its exit code and its seconds.
tidy_one() {
  local log start rc=0
  log="$logs/$(tr / _ <<< "$1")"
  start=$(date +%s.%N)
  # -Wno-error: a build configured with VAE_WERROR would turn clang's warnings into errors,
  # and a file that does not compile is a failure (exit 2) rather than a finding.
  "$tidy" -p "$build" --quiet --extra-arg=-Wno-error --header-filter="$header_filter" "$1" > "$log.out" 2> "$log.err" \
    || rc=$?
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
