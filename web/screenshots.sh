#!/usr/bin/env bash
# Screenshots of every view of `vae serve` on a results database, taken with headless
# Chromium (the pictures in README.md and results/figures/ui/):
#
#   web/screenshots.sh DB SWEEP RUN_ID [OUT_DIR]
#
# sweeps.png, sweep_table.png (rows latent, cols beta, test_nll), runs.png (latent=20 by
# test_nll), compare.png (latent 20, seed 0, every beta), run.png (RUN_ID: draw a picture
# for it first with `vae draw samples --run RUN_ID --db DB --out FILE.png` to see one).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
db=$1 sweep=$2 run=$3 out=${4:-$root/results/figures/ui}
vae=${VAE:-$root/build/vae}
mkdir -p "$out"
work=$(mktemp -d)
"$vae" serve --db "$db" --port 0 > "$work/serve.log" 2>&1 &
serve_pid=$!
trap 'kill $serve_pid; rm -rf "$work"' EXIT
until grep -q http "$work/serve.log"; do sleep 0.1; done
url=$(grep -o 'http://[0-9.:]*/' "$work/serve.log")
shot() {  # NAME HEIGHT HASH
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
    --disable-component-update --disable-sync --hide-scrollbars --user-data-dir="$work/chromium-$1" \
    --virtual-time-budget=3000 --window-size=1400,"$2" --screenshot="$out/$1.png" "$url#/$3" 2>/dev/null
  echo "$out/$1.png: $url#/$3"
}
ids=$(sqlite3 -readonly "$db" "SELECT group_concat(run_id) FROM (SELECT r.run_id FROM sweep_runs sr
  JOIN sweeps s USING (sweep_id) JOIN runs r USING (run_id)
  JOIN params l ON l.run_id = r.run_id AND l.key = 'latent' AND l.value = 20
  JOIN params e ON e.run_id = r.run_id AND e.key = 'seed' AND e.value = 0
  WHERE s.name = '$sweep' AND r.status = 'done' ORDER BY sr.position)")
shot sweeps 420 "sweeps"
shot sweep_table 960 "sweep/$sweep?rows=latent&cols=beta&metric=test_nll"
shot runs 1000 "runs?sweep=$sweep&where=latent%3D20&sort=test_nll"
shot compare 1560 "compare?ids=$ids"
shot run 1500 "run/$run"
