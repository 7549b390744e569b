#!/usr/bin/env bash
# The installed library as a user meets it: `cmake --install` of this build into a
# temporary prefix, examples/consumer built against it with find_package(vae) (shared and
# static) and with pkg-config, each run; their test ELBO must equal that of the installed
# `vae train` with the same settings, to the last bit. Also the installed program's
# --version, man pages and bash completion. Reuses the built library: builds only the consumer.
#   tests/install/consumer_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=1

prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log"
libdir=$(dirname "$(find "$prefix" -name libvae.so -print -quit)")
[ -n "$libdir" ] || { echo "FAIL: no libvae.so installed"; exit 1; }
for f in include/vae/vae.hpp bin/vae share/man/man1/vae.1 share/man/man1/vae-train.1 \
         share/bash-completion/completions/vae; do
  [ -f "$prefix/$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done
[ -f "$libdir/libvae.a" ] && [ -f "$libdir/cmake/vae/vaeConfig.cmake" ] && [ -f "$libdir/pkgconfig/vae.pc" ] \
  || { echo "FAIL: libvae.a, vaeConfig.cmake or vae.pc missing in $libdir"; exit 1; }
# Internals are not installed: the one public header only.
[ "$(find "$prefix/include" -type f | wc -l)" -eq 1 ] || { echo "FAIL: headers besides vae/vae.hpp installed"; exit 1; }
"$prefix/bin/vae" --version | grep -q "vae (vae-suite)"
# The completion offers commands and a command's options.
words=$(PATH="$prefix/bin:$PATH" bash -c "source '$prefix/share/bash-completion/completions/vae'
  COMP_WORDS=(vae tr); COMP_CWORD=1; _vae; echo \${COMPREPLY[*]}
  COMP_WORDS=(vae train --late); COMP_CWORD=2; _vae; echo \${COMPREPLY[*]}")
[ "$words" = $'train\n--latent' ] || { echo "FAIL: completion gave: $words"; exit 1; }

settings=(dataset=mnist train-size=600 test-size=200 epochs=1 batch=100 latent=4 hidden=32
          iw-samples=5 iw-examples=20 seed=3)
cli_args=()
for kv in "${settings[@]}"; do cli_args+=("--${kv%%=*}" "${kv#*=}"); done

# find_package(vae): shared and static.
cmake -S "$src/examples/consumer" -B "$tmp/consumer" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" > "$tmp/consumer.log" 2>&1 || { cat "$tmp/consumer.log"; exit 1; }
cmake --build "$tmp/consumer" -j2 >> "$tmp/consumer.log" 2>&1 || { cat "$tmp/consumer.log"; exit 1; }
# pkg-config: one compiler line.
PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --exists vae
c++ -std=c++17 -O2 "$src/examples/consumer/main.cpp" -o "$tmp/consumer_pc" \
  $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs vae)

# The example on the header's own page compiles and links as printed there.
sed -n '/^\/\/   #include <cstdio>/,/^\/\/   }/s/^\/\/   \{0,1\}//p' "$prefix/include/vae/vae.hpp" > "$tmp/doc_example.cpp"
[ "$(wc -l < "$tmp/doc_example.cpp")" -ge 20 ] || { echo "FAIL: no example found in vae/vae.hpp"; exit 1; }
c++ -std=c++17 "$tmp/doc_example.cpp" -o "$tmp/doc_example" \
  $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs vae)

elbo_of() { sed -n 's/^test_elbo //p'; }
a=$("$tmp/consumer/consumer" "$tmp/run_a" "${settings[@]}" | tee "$tmp/a.out" | elbo_of)
b=$("$tmp/consumer/consumer_static" "$tmp/run_b" "${settings[@]}" | elbo_of)
c=$(LD_LIBRARY_PATH="$libdir" "$tmp/consumer_pc" "$tmp/run_c" "${settings[@]}" | elbo_of)
d=$("$prefix/bin/vae" train "${cli_args[@]}" --json --quiet | /usr/bin/python3 -c \
  'import json, sys; print(repr(json.loads(sys.stdin.readline())["test_elbo"]))')
cat "$tmp/a.out"
echo "test ELBO: find_package shared $a, static $b, pkg-config $c; vae train $d"
/usr/bin/python3 - "$a" "$b" "$c" "$d" <<'PY'
import sys
a, b, c, d = (float(v) for v in sys.argv[1:])
assert a == b == c == d, f"not equal: {a!r} {b!r} {c!r} {d!r}"
assert -1000 < d < 0, f"not an ELBO of MNIST: {d!r}"
PY
echo "consumer test: ok"
