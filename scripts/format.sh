#!/usr/bin/env bash
# Formats the C++ sources in place with .clang-format (clang-format 14, Debian's
# clang-format package): every tracked .cpp/.hpp, or only the files given.
#   scripts/format.sh                 # the whole tree
#   scripts/format.sh cli/main.cpp    # some files
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/cxx_files.sh
clang_format=$(find_clang_format)
if [ $# -gt 0 ]; then files=("$@"); else mapfile -t files < <(cxx_files); fi
[ ${#files[@]} -gt 0 ] || exit 0
printf '%s\0' "${files[@]}" | xargs -0 -n 20 -P "$(nproc 2>/dev/null || echo 2)" "$clang_format" -i --style=file
