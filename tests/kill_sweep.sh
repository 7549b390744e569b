#!/usr/bin/env bash
# Crash test of the sweep runner: starts a sweep, kills the runner with SIGKILL at
# a random moment, restarts it, N times; then lets it finish and checks that the
# database holds exactly the expected runs, each done once, every epoch recorded
# once, and passes PRAGMA integrity_check.
#
#   tests/kill_sweep.sh [VAE_BINARY] [KILLS] [SWEEP_FILE] [JOBS]
#
# Defaults: build/vae, 10 kills, a 12-run sweep of small MNIST trainings, 2 jobs.
set -euo pipefail

vae=${1:-build/vae}
kills=${2:-10}
sweep=${3:-}
jobs=${4:-2}
work=$(mktemp -d /tmp/vae-kill.XXXXXX)
trap 'rm -rf "$work"' EXIT
db=$work/results.db

if [ -z "$sweep" ]; then
  sweep=$work/kill.toml
  cat > "$sweep" <<'EOF'
name = "kill_test"
seeds = 3
[base]
train-size = 10000
test-size = 500
epochs = 6
hidden = [128]
iw-samples = 20
iw-examples = 200
[grid]
latent = [2, 5]
beta = [1, 4]
EOF
fi

expected=$("$vae" sweep run "$sweep" --db "$db" --dry-run | sed -n 's/.*: \([0-9]*\) runs = .*/\1/p')
epochs=$(sed -n 's/^epochs *= *\([0-9]*\).*/\1/p' "$sweep" | head -1)
echo "sweep $sweep: $expected runs of $epochs epochs; $kills kills at random moments"

for i in $(seq 1 "$kills"); do
  "$vae" sweep run "$sweep" --db "$db" --jobs "$jobs" --quiet --no-table 2>>"$work/log" &
  pid=$!
  # a random moment: 0.2 .. 4 s after the start
  sleep "$(awk -v s=$RANDOM 'BEGIN { srand(s); printf "%.2f", 0.2 + 3.8 * rand() }')"
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    sleep 0.2  # workers die with the runner (PR_SET_PDEATHSIG)
    state=$(sqlite3 "$db" "SELECT group_concat(status || ':' || n, ' ') FROM (SELECT status, count(*) n FROM runs GROUP BY status)")
    echo "kill $i: $state"
  else
    wait "$pid" || true
    echo "kill $i: the sweep had already finished"
  fi
done

"$vae" sweep run "$sweep" --db "$db" --jobs "$jobs" --quiet --no-table
q() { sqlite3 "$db" "$1"; }
fail=0
check() {  # name, actual, expected
  if [ "$2" = "$3" ]; then echo "ok    $1: $2"; else echo "FAIL  $1: $2 (expected $3)"; fail=1; fi
}
check "runs" "$(q 'SELECT count(*) FROM runs')" "$expected"
check "runs done" "$(q "SELECT count(*) FROM runs WHERE status = 'done'")" "$expected"
check "successful attempts" "$(q "SELECT count(*) FROM attempts WHERE outcome = 'done'")" "$expected"
check "runs done twice" "$(q "SELECT count(*) FROM (SELECT run_id FROM attempts WHERE outcome = 'done' GROUP BY run_id HAVING count(*) > 1)")" "0"
check "runs with epochs 1..$epochs each once" "$(q "SELECT count(*) FROM (SELECT run_id FROM epoch_metrics GROUP BY run_id HAVING count(DISTINCT epoch) = $epochs AND max(epoch) = $epochs)")" "$expected"
check "final metric rows per run" "$(q "SELECT count(DISTINCT n) FROM (SELECT count(*) n FROM metrics GROUP BY run_id)")" "1"
check "open attempts" "$(q "SELECT count(*) FROM attempts WHERE outcome IS NULL")" "0"
check "integrity_check" "$(q 'PRAGMA integrity_check')" "ok"
echo "attempts: $(q "SELECT group_concat(outcome || ':' || n, ' ') FROM (SELECT outcome, count(*) n FROM attempts GROUP BY outcome)")"
echo "resumed from a checkpoint: $(q "SELECT count(*) FROM attempts WHERE attempt > 1 AND resumed_from_epoch > 0") attempts"
exit $fail
