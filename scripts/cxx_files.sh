# Sourced by format.sh, check_format.sh and tidy.sh.

# The repository's own C++ files: tracked, or new and not ignored (third-party code
# is not in the repository; build folders are ignored).
cxx_files() { git ls-files --cached --others --exclude-standard -- '*.cpp' '*.hpp' '*.h' '*.cc' | sort -u; }

# clang-format 14, the version .clang-format is written for (others format differently).
find_clang_format() {
  local c
  for c in clang-format-14 clang-format; do
    if command -v "$c" > /dev/null && "$c" --version | grep -q 'version 14\.'; then echo "$c"; return; fi
  done
  echo "clang-format 14 not found (Debian: apt-get install clang-format-14)" >&2
  exit 2
}

# clang-tidy 14, the version .clang-tidy is written for (its check names and options).
find_clang_tidy() {
  local c
  for c in clang-tidy-14 clang-tidy; do
    if command -v "$c" > /dev/null && "$c" --version | grep -q 'version 14\.'; then echo "$c"; return; fi
  done
  echo "clang-tidy 14 not found (Debian: apt-get install clang-tidy-14)" >&2
  exit 2
}
