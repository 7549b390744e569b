#!/usr/bin/env bash
# Fails (exit 1) when a C++ source differs from what .clang-format makes of it,
# naming each such file and printing the command that fixes them.
#   scripts/check_format.sh                 # every C++ file of the repository
#   scripts/check_format.sh lib/util/*.cpp  # some files
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cxx_files.sh
clang_format=$(find_clang_format)
if [ $# -gt 0 ]; then files=("$@"); else mapfile -t files < <(cxx_files); fi
[ ${#files[@]} -gt 0 ] || exit 0
for f in "${files[@]}"; do [ -f "$f" ] || { echo "format: no such file: $f"; exit 2; }; done
# For a batch of files: the name of each file clang-format would change, "!name" for
# a batch it failed on otherwise; printed at once, so parallel batches do not mix.
check_files() {
  local out rc=0 bad
  out=$("$clang_format" --style=file --dry-run --Werror -- "$@" 2>&1) || rc=$?
  bad=$(sed -n 's/^\(.*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' <<< "$out" | sort -u)
  if [ "$rc" -ne 0 ] && [ -z "$bad" ]; then bad=$(printf '!%s\n' "$@"); fi
  [ -z "$bad" ] || printf '%s\n' "$bad"
}
export -f check_files
export clang_format
out=$(printf '%s\0' "${files[@]}" | xargs -0 -n 20 -P "$(nproc 2>/dev/null || echo 2)" bash -c 'check_files "$@"' _ | sort)
failed=$(sed -n 's/^!//p' <<< "$out")
bad=$(grep -v '^!' <<< "$out" || true)
if [ -n "$failed" ]; then
  echo "format: $clang_format failed on:" $failed
  exit 2
fi
if [ -n "$bad" ]; then
  echo "format: $(wc -l <<< "$bad") files are not formatted as .clang-format says:"
  sed 's/^/  /' <<< "$bad"
  echo "fix with: scripts/format.sh" $bad
  exit 1
fi
echo "format: ok (${#files[@]} files)"
