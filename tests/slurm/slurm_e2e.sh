#!/usr/bin/env bash
# A real Slurm, end to end: starts a one-node Slurm on this machine (munged,
# slurmctld, slurmd from Debian's munge and slurm-wlm, as root, configuration and
# state in a temporary folder, loopback only), submits sweeps/quickstart.toml at a
# reduced budget as a 2-task job array plus the merge job (`vae sweep slurm
# --submit`), waits, and checks that the merged database holds the same run ids and
# bit for bit the same final metrics as a local `vae sweep run` of the same sweep,
# and gives the same `vae table`. The daemons are stopped through their pid files
# whatever happens. Where Slurm cannot start, it says why in one line and fails.
#
#   tests/slurm/slurm_e2e.sh [VAE_BINARY]        (ctest: label slurm)
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
vae=$(readlink -f "${1:-$repo/build/vae}")
timeout_s=${SLURM_E2E_TIMEOUT:-900}
# quickstart at a reduced budget; the local run gets the same overrides
sets=(--set epochs=2 --set train-size=5000 --set iw-examples=200)

fail() { echo "slurm e2e: FAILED: $*"; exit 1; }

[ -x "$vae" ] || fail "no vae program at $vae (build first)"
[ "$(id -u)" -eq 0 ] || fail "needs root to start munged, slurmctld and slurmd (running as $(id -un))"
for b in munged slurmctld slurmd sbatch squeue scontrol sqlite3; do
  command -v "$b" >/dev/null || fail "$b not found: install munge, slurm-wlm and sqlite3 (scripts/setup.sh)"
done

T=$(mktemp -d /tmp/vae-slurm.XXXXXX)
chmod 755 "$T"  # munged wants every folder above its socket to be searchable
export SLURM_CONF=$T/slurm.conf

stop_pidfile() {  # name: TERM, up to 20 s, then KILL
  local f=$T/$1.pid pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL "$pid" 2>/dev/null
}
cleanup() {
  if [ -s "$T/slurmctld.pid" ] && kill -0 "$(cat "$T/slurmctld.pid")" 2>/dev/null; then
    scancel --quiet --user=root 2>/dev/null  # jobs of this test's cluster only (SLURM_CONF)
    for _ in $(seq 1 60); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.5; done
  fi
  stop_pidfile slurmd
  stop_pidfile slurmctld
  stop_pidfile munged
  if [ -n "${KEEP_SLURM_E2E:-}" ]; then echo "slurm e2e: kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

# two free loopback ports
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 1 50); do
  port=$((20000 + RANDOM % 20000))
  port_free "$port" && port_free $((port + 1)) && break
done

host=$(hostname -s)
cpus=$(nproc)
mkdir -p "$T/state" "$T/spool" "$T/munge" "$T/mungekey" "$T/work"
chmod 700 "$T/mungekey"
head -c 1024 /dev/urandom > "$T/mungekey/munge.key"
chmod 400 "$T/mungekey/munge.key"
cat > "$T/slurm.conf" <<EOF
ClusterName=vaetest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$T/munge/munge.socket
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=kill_invalid_depend
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/slurmctld.log
SlurmdLogFile=$T/slurmd.log
ReturnToService=2
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
# no cgroup plugin is used (proctrack/linuxproc, task/none): nothing to configure
echo "CgroupPlugin=autodetect" > "$T/cgroup.conf"

last_line() { [ -s "$1" ] && tail -1 "$1" | cut -c1-200 || echo "(no log)"; }
munged --socket="$T/munge/munge.socket" --key-file="$T/mungekey/munge.key" --pid-file="$T/munged.pid" \
  --log-file="$T/munged.log" --seed-file="$T/mungekey/seed" >/dev/null 2>&1 \
  || fail "munged did not start: $(last_line "$T/munged.log")"
slurmctld -f "$T/slurm.conf" >/dev/null 2>&1 || fail "slurmctld did not start: $(last_line "$T/slurmctld.log")"
slurmd -f "$T/slurm.conf" >/dev/null 2>&1 || fail "slurmd did not start: $(last_line "$T/slurmd.log")"
up=""
for _ in $(seq 1 60); do
  state=$(sinfo -h -N -o %t 2>/dev/null | head -1)
  case "$state" in idle*|mix*|alloc*) up=1; break ;; esac
  sleep 0.5
done
[ -n "$up" ] || fail "the node did not come up (state '${state:-none}'): $(last_line "$T/slurmd.log")"
echo "slurm e2e: one-node Slurm up ($host, $cpus CPUs, ports $port-$((port + 1)), $T)"

cd "$T/work" || fail "cannot enter $T/work"
sweep=$repo/sweeps/quickstart.toml
export OPENBLAS_NUM_THREADS=1
t0=$(date +%s)
requeue=()
[ -n "${SLURM_E2E_REQUEUE:-}" ] && requeue=(--requeue)
submit=$("$vae" sweep slurm "$sweep" --array 2 --cpus-per-task 1 --db "$T/merged.db" --workdir "$T/work/slurm" \
  "${sets[@]}" "${requeue[@]}" --submit 2>"$T/submit.err") || fail "vae sweep slurm --submit: $(tr '\n' ' ' < "$T/submit.err")"
array_job=$(sed -n 's/^array job //p' <<<"$submit")
merge_job=$(sed -n 's/^merge job //p' <<<"$submit")
[ -n "$array_job" ] && [ -n "$merge_job" ] || fail "no job ids in the output of vae sweep slurm: $submit"
echo "slurm e2e: submitted array job $array_job (2 tasks) and merge job $merge_job"

if [ -n "${SLURM_E2E_REQUEUE:-}" ]; then
  # preempt the array mid-run as a scheduler would: scontrol requeue signals every
  # process of the tasks (SIGTERM, then SIGKILL after KillWait) and queues them again
  for _ in $(seq 1 600); do
    mid=0
    for d in "$T"/work/slurm/shard_*.db; do
      [ -f "$d" ] || continue
      n=$(sqlite3 "$d" "SELECT count(*) FROM runs WHERE status = 'running' AND epochs_done >= 1" 2>/dev/null)
      mid=$((mid + ${n:-0}))
    done
    [ "$mid" -gt 0 ] && break
    sleep 0.2
  done
  [ "${mid:-0}" -gt 0 ] || fail "no run of the array got past its first epoch to preempt"
  scontrol requeue "$array_job" || fail "scontrol requeue $array_job failed"
  echo "slurm e2e: requeued array job $array_job with $mid runs mid-training"
fi

# the same sweep locally, meanwhile
"$vae" sweep run "$sweep" --db "$T/local.db" --jobs 2 "${sets[@]}" --quiet --no-table 2>"$T/local.err" \
  || fail "local vae sweep run failed: $(tail -1 "$T/local.err")"

while [ -n "$(squeue -h -j "$array_job,$merge_job" 2>/dev/null)" ]; do
  [ $(($(date +%s) - t0)) -lt "$timeout_s" ] || fail "jobs not finished after ${timeout_s}s: $(squeue -h -j "$array_job,$merge_job" -o '%i %T %r' | tr '\n' ';')"
  sleep 2
done
merge_state=$(scontrol show job "$merge_job" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -1)
if [ "$merge_state" != "COMPLETED" ]; then
  for f in "$T"/work/slurm/logs/*.log; do [ -f "$f" ] && { echo "== $f"; tail -5 "$f"; }; done
  fail "merge job $merge_job ended $merge_state (array: $(scontrol show job "$array_job" | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | sort | uniq -c | tr '\n' ' '))"
fi
echo "slurm e2e: array and merge jobs completed in $(($(date +%s) - t0)) s"

# the merged database against the local run
q() { sqlite3 -cmd "ATTACH '$T/local.db' AS l" "$T/merged.db" "$1"; }
check() {  # name, actual, expected
  if [ "$2" = "$3" ]; then echo "ok    $1: $2"; else echo "FAIL  $1: $2 (expected $3)"; bad=1; fi
}
bad=0
check "runs done (local)" "$(q "SELECT count(*) FROM l.runs WHERE status = 'done'")" 8
check "runs done (merged)" "$(q "SELECT count(*) FROM runs WHERE status = 'done'")" 8
check "run ids only in one database" "$(q "SELECT count(*) FROM (SELECT run_id FROM runs EXCEPT SELECT run_id FROM l.runs) \
  UNION ALL SELECT count(*) FROM (SELECT run_id FROM l.runs EXCEPT SELECT run_id FROM runs)" | tr '\n' ' ')" "0 0 "
# timings (names ending in _s) aside: a run resumed after its last epoch has no training time
check "final metric values" "$(q "SELECT count(*) FROM metrics WHERE substr(name, -2) <> '_s'")" \
  "$(q "SELECT count(*) FROM l.metrics WHERE substr(name, -2) <> '_s'")"
# EXCEPT compares REAL values exactly: bit for bit
check "final metrics that differ" "$(q "SELECT count(*) FROM (SELECT run_id, name, value FROM metrics \
  WHERE substr(name, -2) <> '_s' EXCEPT SELECT run_id, name, value FROM l.metrics)")" 0
check "epoch metrics that differ" "$(q "SELECT count(*) FROM (SELECT run_id, epoch, name, value FROM epoch_metrics \
  WHERE substr(name, -2) <> '_s' EXCEPT SELECT run_id, epoch, name, value FROM l.epoch_metrics)")" 0
check "successful attempts" "$(q "SELECT count(*) FROM attempts WHERE outcome = 'done'")" 8
check "runs done twice" "$(q "SELECT count(*) FROM (SELECT run_id FROM attempts WHERE outcome = 'done' \
  GROUP BY run_id HAVING count(*) > 1)")" 0
if [ -n "${SLURM_E2E_REQUEUE:-}" ]; then
  echo "      attempts: $(q "SELECT group_concat(outcome || ':' || n, ' ') FROM (SELECT outcome, count(*) n FROM attempts GROUP BY outcome)")"
  check "attempts stopped by the requeue and resumed" "$(q "SELECT count(*) > 0 FROM attempts WHERE attempt > 1")" 1
fi
check "sweep membership" "$(q "SELECT count(*) FROM sweep_runs JOIN sweeps USING (sweep_id) WHERE name = 'quickstart'")" 8
[ -n "${SLURM_E2E_REQUEUE:-}" ] || check "shards (sessions) in the merged database" "$(q "SELECT count(DISTINCT session_id) FROM attempts")" 2
check "BLAS threads of every attempt" "$(q "SELECT group_concat(DISTINCT blas_threads) FROM attempts")" 1
check "integrity_check" "$(q "PRAGMA integrity_check")" ok
"$vae" table --sweep quickstart --db "$T/local.db" > "$T/table_local.txt" 2>&1
"$vae" table --sweep quickstart --db "$T/merged.db" > "$T/table_merged.txt" 2>&1
if diff -q "$T/table_local.txt" "$T/table_merged.txt" >/dev/null && [ -s "$T/table_local.txt" ]; then
  echo "ok    vae table: the same for both databases"; cat "$T/table_merged.txt"
else
  echo "FAIL  vae table differs:"; diff "$T/table_local.txt" "$T/table_merged.txt"; bad=1
fi
[ "$bad" -eq 0 ] || fail "the merged database differs from the local run (above)"
echo "slurm e2e: passed"
