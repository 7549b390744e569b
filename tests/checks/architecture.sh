#!/usr/bin/env bash
# ARCHITECTURE.md's layer table against the code: every layer it names is a folder of lib/
# and a layer of CMakeLists.txt's VAE_LAYERS with the same dependencies, every lib/ folder
# is in the table, and every dependency it draws is real (some file of the layer includes
# a header of it). Run by ctest (architecture_map).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
fail=0
say() { echo "ARCHITECTURE.md: $*"; fail=1; }
norm() { tr ' ' '\n' | sed '/^$/d;/^-$/d' | sort | tr '\n' ' '; }

# | `layer` | what | dep dep |  (rows of the table under "## Layers")
table=$(awk '/^## Layers/{on=1; next} /^## /{on=0} on && /^\| `[a-z]+` \|/' ARCHITECTURE.md)
[ -n "$table" ] || { echo "ARCHITECTURE.md: no layer table under '## Layers'"; exit 1; }
declare -A doc
while IFS= read -r row; do
  layer=$(echo "$row" | sed -E 's/^\| `([a-z]+)`.*/\1/')
  deps=$(echo "$row" | awk -F'|' '{print $4}' | norm)
  doc[$layer]="$deps"
done <<< "$table"

# "layer:dep dep" entries of VAE_LAYERS
declare -A cmake
while IFS= read -r entry; do
  layer=${entry%%:*}
  cmake[$layer]=$(echo "${entry#*:}" | norm)
done < <(awk '/^set\(VAE_LAYERS/{on=1} on {print} on && /\)/{exit}' CMakeLists.txt | grep -oE '"[a-z]+:[a-z ]*"' | tr -d '"')

for layer in "${!doc[@]}"; do
  [ -d "lib/$layer" ] || say "layer '$layer' has no folder lib/$layer"
  [ "${cmake[$layer]+set}" ] || { say "layer '$layer' is not in CMakeLists.txt's VAE_LAYERS"; continue; }
  [ "${doc[$layer]}" == "${cmake[$layer]}" ] ||
    say "layer '$layer' may include '${doc[$layer]}' here but '${cmake[$layer]}' in CMakeLists.txt"
  for dep in ${doc[$layer]}; do
    grep -rqE "#include \"$dep/" "lib/$layer" || say "layer '$layer' is drawn on '$dep' but includes nothing of it"
  done
done
for dir in lib/*/; do
  layer=$(basename "$dir")
  [ "${doc[$layer]+set}" ] || say "lib/$layer is not in the layer table"
done
[ "$fail" -eq 0 ] && echo "ARCHITECTURE.md: ${#doc[@]} layers, each with its folder, its CMake target's dependencies, and each dependency used"
exit "$fail"
