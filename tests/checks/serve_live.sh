#!/usr/bin/env bash
# The live view of `vae serve` while a sweep runs with --jobs 2: one headless Chromium
# page on the sweeps view, never reloaded, sampled every 2 s beside the database's own
# counts; then the runners' log is searched for a busy/locked error (the server must
# never block them). Prints the timeline and a verdict; writes the samples and two
# screenshots (running, finished) to OUT (default results/figures/ui/live).
#
#   tests/checks/serve_live.sh [SWEEP_FILE] [-- --set epochs=2 ...]
#
# Needs Debian's chromium and node; installs playwright-core (npm) once into
# $VAE_PLAYWRIGHT_DIR (default ~/.cache/vae-playwright) to drive the page.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
sweep_file=${1:-$root/sweeps/quickstart.toml}
shift || true
[ "${1:-}" = "--" ] && shift
vae=${VAE:-$root/build/vae}
out=${OUT:-$root/results/figures/ui/live}
pw=${VAE_PLAYWRIGHT_DIR:-$HOME/.cache/vae-playwright}
if [ ! -d "$pw/node_modules/playwright-core" ]; then
  mkdir -p "$pw" && (cd "$pw" && npm install --no-audit --no-fund --silent playwright-core@1)
fi
work=$(mktemp -d)
db=$work/live.db
name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$sweep_file" | head -1)
export OPENBLAS_NUM_THREADS=1
echo "load: $(uptime)"
"$vae" sweep run "$sweep_file" --jobs 2 --db "$db" --runs-dir "$work/runs" "$@" > "$work/sweep.log" 2>&1 &
sweep_pid=$!
until [ -f "$db" ] && sqlite3 -readonly "$db" "SELECT 1 FROM sweeps WHERE name = '$name'" 2>/dev/null | grep -q 1; do sleep 0.2; done
"$vae" serve --db "$db" --port 0 > "$work/serve.log" 2>&1 &
serve_pid=$!
until grep -q http "$work/serve.log"; do sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*/' "$work/serve.log")
mkdir -p "$(dirname "$out")"
node "$root/tests/checks/serve_live.cjs" "$pw" "$url" "$db" "$name" "$out.json" "$out"
sweep_rc=0
wait $sweep_pid || sweep_rc=$?
kill $serve_pid
echo "sweep exit code: $sweep_rc; load: $(uptime)"
if grep -Eiq 'busy|locked' "$work/sweep.log"; then
  echo "FAIL: the runners logged a busy/locked error:"; grep -Ei 'busy|locked' "$work/sweep.log"; exit 1
fi
echo "no busy or locked error in the runners' log ($work/sweep.log)"
