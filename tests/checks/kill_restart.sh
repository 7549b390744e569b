#!/usr/bin/env bash
# Crash-safety of `vae sweep run` (issue: sweep runner, done-when 3): run one sweep,
# SIGKILL it KILLS times at random moments, restart it after each kill, let the
# last start finish, then check the database: exactly the expected runs, each done
# once (one 'done' attempt, every epoch recorded once, final metrics present), no
# run left queued or running, PRAGMA integrity_check ok. With --reference REF.db
# (the same sweep run without interruption) the final metrics must also be equal.
#
# A kill is, at random: the runner alone (its workers die with it, PR_SET_PDEATHSIG),
# the runner's whole process group at once (power loss), or one worker followed
# two seconds later by the process group.
#
#   tests/checks/kill_restart.sh SWEEP.toml DB [--kills 10] [--min 5] [--max 45]
#       [--seed 1] [--reference REF.db] [--vae build/vae] [-- sweep run options]
set -euo pipefail
sweep=$1 db=$2; shift 2
kills=10 tmin=5 tmax=45 seed=1 ref="" vae=build/vae
while [[ $# -gt 0 ]]; do
  case $1 in
    --kills) kills=$2; shift 2 ;;
    --min) tmin=$2; shift 2 ;;
    --max) tmax=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --reference) ref=$2; shift 2 ;;
    --vae) vae=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "kill_restart.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
extra=("$@")
RANDOM=$seed
export OPENBLAS_NUM_THREADS=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT

start_runner() {
  setsid "$vae" sweep run "$sweep" --db "$db" --jobs 2 --no-table -q "${extra[@]}" >>"$log" 2>&1 &
  runner=$!
}

for ((k = 1; k <= kills; k++)); do
  start_runner
  delay=$((tmin + RANDOM % (tmax - tmin + 1)))
  sleep "$delay"
  if ! kill -0 "$runner" 2>/dev/null; then
    echo "kill $k: the sweep finished before the kill (after < ${delay} s); stopping early" >&2
    wait "$runner" || true
    break
  fi
  kind=$((RANDOM % 3))
  case $kind in
    0) what="runner"; kill -9 "$runner" ;;
    1) what="process group"; kill -9 -- "-$runner" ;;
    2) what="worker, then process group"
       worker=$(pgrep -P "$runner" | head -1 || true)
       [[ -n $worker ]] && kill -9 "$worker"
       sleep 2; kill -9 -- "-$runner" 2>/dev/null || true ;;
  esac
  wait "$runner" 2>/dev/null || true
  pkill -9 -g "$runner" 2>/dev/null || true  # nothing of the killed sweep survives
  done_now=$(sqlite3 "$db" "SELECT count(*) FROM runs WHERE status = 'done'")
  echo "kill $k after ${delay} s: SIGKILL $what; runs done so far: $done_now"
done

echo "final start, to completion"
start_runner
wait "$runner" && rc=0 || rc=$?
echo "final runner exit code: $rc"

name=$(sqlite3 "$db" "SELECT name FROM sweeps ORDER BY updated_at DESC LIMIT 1")
expected=$("$vae" sweep run "$sweep" --db "$db" --dry-run "${extra[@]}" | sed -n 's/.* \([0-9][0-9]*\) runs = .*/\1/p' | head -1)
q() { sqlite3 "$db" "$1"; }
fail=0
check() {  # check DESCRIPTION ACTUAL EXPECTED
  if [[ "$2" == "$3" ]]; then echo "ok    $1: $2"; else echo "FAIL  $1: $2 (expected $3)"; fail=1; fi
}
in_sweep="run_id IN (SELECT run_id FROM sweep_runs JOIN sweeps USING (sweep_id) WHERE name = '$name')"
epochs="(SELECT value FROM params p WHERE p.run_id = r.run_id AND key = 'epochs')"
check "runs in the sweep" "$(q "SELECT count(*) FROM runs WHERE $in_sweep")" "$expected"
check "runs done" "$(q "SELECT count(*) FROM runs WHERE $in_sweep AND status = 'done'")" "$expected"
check "runs with other than one 'done' attempt" \
  "$(q "SELECT count(*) FROM runs r WHERE $in_sweep AND (SELECT count(*) FROM attempts a WHERE a.run_id = r.run_id AND outcome = 'done') != 1")" 0
check "runs whose epochs are not exactly 1..epochs" \
  "$(q "SELECT count(*) FROM runs r WHERE $in_sweep AND (SELECT count(DISTINCT epoch) || ',' || min(epoch) || ',' || max(epoch) FROM epoch_metrics e WHERE e.run_id = r.run_id) != ($epochs || ',1,' || $epochs)")" 0
check "runs without test_nll" \
  "$(q "SELECT count(*) FROM runs r WHERE $in_sweep AND NOT EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = r.run_id AND name = 'test_nll')")" 0
check "integrity_check" "$(q "PRAGMA integrity_check")" ok
echo "attempts: $(q "SELECT count(*) FROM attempts a WHERE $in_sweep") in all, $(q "SELECT count(*) FROM runs WHERE $in_sweep AND attempts > 1") runs resumed at least once, outcomes: $(q "SELECT group_concat(outcome || '=' || n, ' ') FROM (SELECT outcome, count(*) n FROM attempts WHERE $in_sweep GROUP BY outcome)")"
if [[ -n $ref ]]; then
  diff_n=$(sqlite3 "$db" "ATTACH '$ref' AS ref; SELECT count(*) FROM metrics m JOIN ref.metrics r USING (run_id, name) WHERE m.$in_sweep AND name IN ('test_nll', 'test_elbo', 'test_kl', 'test_rec') AND m.value IS NOT r.value")
  same_n=$(sqlite3 "$db" "ATTACH '$ref' AS ref; SELECT count(DISTINCT run_id) FROM metrics m JOIN ref.metrics r USING (run_id, name) WHERE m.$in_sweep AND name = 'test_nll'")
  echo "runs compared with the uninterrupted reference: $same_n"
  check "final metrics differing from the reference (bit for bit)" "$diff_n" 0
fi
[[ $fail == 0 ]] && echo "all checks passed" || { echo "some checks FAILED"; exit 1; }
