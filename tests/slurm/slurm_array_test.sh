#!/bin/bash
# Integration test of examples/slurm/ on a real Slurm: starts munged, slurmctld and slurmd for
# localhost only (ports on 127.0.0.1, everything in a temporary directory), submits a sweep as a
# job array with a dependent merge job through examples/slurm/submit.sh, waits for both, and checks
# that the merged file equals a single-process run of the same sweep value by value.
#   tests/slurm/slurm_array_test.sh DALESIM_BINARY SOURCE_DIR
# Exit 77 (skipped) with the reason when Slurm cannot be installed or started here.
set -euo pipefail

dalesim=$(realpath "${1:?usage: slurm_array_test.sh DALESIM_BINARY SOURCE_DIR}")
src=$(realpath "${2:?usage: slurm_array_test.sh DALESIM_BINARY SOURCE_DIR}")
deadline=$((SECONDS + ${SLURM_TEST_TIMEOUT:-240}))
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; show_logs; exit 1; }

[ "$(id -u)" = 0 ] || skip "starting slurmctld, slurmd and munged for a test needs root"
for c in munged slurmctld slurmd sbatch squeue sinfo scontrol h5diff; do
  command -v "$c" >/dev/null ||
    skip "$c not found (Debian packages munge, slurmctld, slurmd, slurm-client, hdf5-tools; .ci/install-deps)"
done

tmp=$(mktemp -d /tmp/dalesim-slurm.XXXXXX)
chmod 755 "$tmp"  # munged wants its socket's directory searchable by all
export SLURM_CONF=$tmp/slurm.conf
show_logs() {
  for f in "$tmp"/*.log "$tmp"/results/*.log; do
    [ -f "$f" ] && { echo "---- $f"; tail -n 20 "$f"; }
  done
  return 0
}
stop_daemons() {
  for p in slurmd slurmctld munged; do
    [ -f "$tmp/$p.pid" ] && kill "$(cat "$tmp/$p.pid")" 2>/dev/null || true
  done
  sleep 0.5
  for p in slurmd slurmctld munged; do
    [ -f "$tmp/$p.pid" ] && kill -9 "$(cat "$tmp/$p.pid")" 2>/dev/null || true
  done
  [ -n "${KEEP_SLURM_TEST:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap stop_daemons EXIT

# ---- munge: a fresh key and socket of our own ------------------------------------------------
dd if=/dev/urandom of="$tmp/munge.key" bs=1024 count=1 status=none
chmod 600 "$tmp/munge.key"
munged --force --key-file="$tmp/munge.key" --socket="$tmp/munge.sock" --pid-file="$tmp/munged.pid" \
  --log-file="$tmp/munged.log" --seed-file="$tmp/munged.seed" ||
  skip "munged did not start: $(tail -n 3 "$tmp/munged.log" 2>/dev/null)"

# ---- slurm.conf for one node, this host, on loopback ---------------------------------------------
host=$(hostname -s)
cpus=$(nproc)
port=$((20000 + RANDOM % 20000))
mkdir -p "$tmp/state" "$tmp/spool" "$tmp/results"
cat > "$SLURM_CONF" <<CONF
ClusterName=dalesimtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge.sock
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=sched_interval=1
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=1000 Gres=gpu:2 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
# Two stand-in GPU device files (copies of /dev/null): the array's --gres=gpu:1 is scheduled as on
# a GPU node; the test trains on the CPU backend, whose results are deterministic per replica.
mknod "$tmp/gpu0" c 1 3 && mknod "$tmp/gpu1" c 1 3 || skip "cannot create stand-in GPU device files"
echo "NodeName=$host Name=gpu File=$tmp/gpu[0-1]" > "$tmp/gres.conf"

slurmctld -i || skip "slurmctld did not start: $(tail -n 3 "$tmp/slurmctld.log" 2>/dev/null)"
slurmd -N "$host" || skip "slurmd did not start: $(tail -n 3 "$tmp/slurmd.log" 2>/dev/null)"
until [ "$(sinfo -h -n "$host" -o %t 2>/dev/null)" = idle ]; do
  [ $SECONDS -lt $((deadline - 210)) ] || { show_logs; skip "the Slurm node did not become idle: $(sinfo -h -o '%t %E' 2>&1)"; }
  sleep 0.5
done
echo "slurm up in ${SECONDS}s: $(sinfo -h -o '%P %D %t %C %G')"

# ---- the sweep: mixed shapes, through the example scripts -------------------------------------
cat > "$tmp/slurm-test.toml" <<'TOML'
name = "slurm-test"
[model]
arch = "mix"
n_units = 8
[task]
name = "adding"
T = 6
batch = 4
[train]
n_steps = 9
log_every = 3
checkpoint_every = 4
[sweep]
seeds = 2
[sweep.grid]
"model.alpha_init" = [0.3, 0.7]
"model.n_units" = [6, 12, 20]
TOML
cd "$tmp"
submitted=$(OUTDIR=$tmp/results DALESIM=$dalesim DALESIM_BACKEND=cpu SBATCH_ARGS="--cpus-per-task=1" \
  "$src/examples/slurm/submit.sh" "$tmp/slurm-test.toml" 3 2)
echo "$submitted"
array=$(sed -n 's/^array job \([0-9]*\).*/\1/p' <<<"$submitted")
merge=$(sed -n 's/^merge job \([0-9]*\).*/\1/p' <<<"$submitted")
[ -n "$array" ] && [ -n "$merge" ] || fail "submit.sh printed no job ids"
scontrol show job "$array" | grep -q "ArrayTaskThrottle=2" || fail "the array is not throttled to 2 tasks"
scontrol show job "$merge" | grep -q "Dependency=afterok:${array}" || fail "the merge job does not depend on the array"

while squeue -h -j "$array,$merge" 2>/dev/null | grep -q .; do
  [ $SECONDS -lt $deadline ] || { squeue; fail "jobs still queued or running at the time limit"; }
  sleep 1
done
echo "array and merge finished in ${SECONDS}s"
[ -f "$tmp/results/slurm-test.h5" ] || fail "no merged file"
for k in 0 1 2; do
  grep -q "shard $k/3" "$tmp/results/shard-$k.log" || fail "task $k did not train shard $k/3"
done

# ---- compare with one process ----------------------------------------------------------------
env -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_COUNT -u SLURM_ARRAY_TASK_MIN \
  "$dalesim" run "$tmp/slurm-test.toml" --backend cpu -q -o "$tmp/single.h5" >/dev/null 2>&1
for group in /replicas /history /checkpoints; do
  h5diff -c "$tmp/single.h5" "$tmp/results/slurm-test.h5" "$group" "$group" >"$tmp/h5diff.log" 2>&1 ||
    { cat "$tmp/h5diff.log"; fail "$group of the merged file differs from a single-process run"; }
done
for attr in status sweep_hash n_replicas sweep_axes; do
  a=$(h5dump -a "/$attr" "$tmp/single.h5" | sed -n '/DATA/,$p')
  b=$(h5dump -a "/$attr" "$tmp/results/slurm-test.h5" | sed -n '/DATA/,$p')
  [ "$a" = "$b" ] || fail "root attribute $attr differs"
done
echo "3 array tasks + merge equal a single-process run; ${SECONDS}s"

# ---- a task stopped at its time limit: SIGTERM to the batch script, save, requeue, resume --------
# (what --signal=B:TERM@120 does before the limit, sent now by `scancel --signal=TERM --batch`)
sed -e "s/^n_steps = 9/n_steps = 1500/" -e 's/^"model.n_units" = .*/"model.n_units" = [24]/' \
  -e 's/^"model.alpha_init" = .*/"model.alpha_init" = [0.5]/' -e 's/^seeds = 2/seeds = 1/' \
  "$tmp/slurm-test.toml" > "$tmp/requeue.toml"
mkdir -p "$tmp/requeue"
job=$(sbatch --parsable --array=0-0 --cpus-per-task=1 --output="$tmp/requeue/task.log" \
  --export=ALL,SWEEP=$tmp/requeue.toml,OUTDIR=$tmp/requeue,DALESIM=$dalesim,DALESIM_BACKEND=cpu \
  "$src/examples/slurm/sweep-array.sbatch")
job=${job%%;*}
out=$tmp/requeue/shard-0000.h5
until grep -q '"event":"step","step":[1-9][0-9][0-9]' "$out.progress" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || fail "the requeue test's task did not start training"
  sleep 0.2
done
scancel --signal=TERM --batch "${job}_0" || fail "scancel --signal=TERM failed"
while squeue -h -j "$job" 2>/dev/null | grep -q .; do
  [ $SECONDS -lt $deadline ] || { squeue; fail "the requeued task did not finish by the time limit"; }
  # A requeued job may be held until its begin time; let it start now.
  scontrol update JobId="${job}_0" StartTime=now >/dev/null 2>&1 || true
  sleep 0.5
done
grep -q "stopped by SIGTERM" "$tmp/requeue/task.log" || fail "the task was not stopped by SIGTERM at a save point"
grep -q "requeueing" "$tmp/requeue/task.log" || fail "the stopped task did not requeue itself"
[ "$(grep -c '"event":"start"' "$out.progress")" -ge 2 ] || fail "the task did not start a second time"
grep -q '"first_step":[1-9]' "$out.progress" || fail "the second start did not resume (first_step 0)"
[ ! -L "$out" ] || fail "the resumed shard is still unfinished"
env -u SLURM_ARRAY_TASK_ID -u SLURM_ARRAY_TASK_COUNT -u SLURM_ARRAY_TASK_MIN \
  "$dalesim" run "$tmp/requeue.toml" --backend cpu --threads 1 -q -o "$tmp/requeue-single.h5" >/dev/null 2>&1
for group in /replicas /history /checkpoints /resume; do
  h5diff "$tmp/requeue-single.h5" "$out" "$group" "$group" >"$tmp/h5diff.log" 2>&1 ||
    { cat "$tmp/h5diff.log"; fail "$group of the stopped, requeued and resumed task differs from one run"; }
done
echo "PASS: 3 array tasks + merge on Slurm ($(sinfo -V)) equal a single-process run; a task stopped by SIGTERM requeued itself and resumed to the same file; ${SECONDS}s"
