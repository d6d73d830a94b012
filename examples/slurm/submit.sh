#!/bin/bash
# Submits a dalesim sweep as a Slurm job array (N shards, at most THROTTLE running at once, one GPU
# each) and a merge job that starts only when every shard succeeded.
#   examples/slurm/submit.sh SWEEP.toml [N_SHARDS] [THROTTLE]
# Environment: OUTDIR (default results/<sweep file name>), DALESIM (the binary, default `dalesim`),
# DALESIM_BACKEND (auto, cuda or cpu), SBATCH_ARGS (extra sbatch options for both jobs, e.g.
# "--partition=gpu --account=lab").
set -euo pipefail

sweep=${1:?usage: submit.sh SWEEP.toml [N_SHARDS] [THROTTLE]}
n_shards=${2:-8}
throttle=${3:-4}
here=$(cd "$(dirname "$0")" && pwd)
sweep=$(realpath "$sweep")
name=$(basename "$sweep" .toml)
export SWEEP=$sweep
export OUTDIR=$(realpath -m "${OUTDIR:-results/$name}")
export N_SHARDS=$n_shards
export MERGED=${MERGED:-$OUTDIR/$name.h5}
mkdir -p "$OUTDIR"
# Fail now, not in every array task, when the sweep file is bad.
"${DALESIM:-dalesim}" validate "$sweep" >/dev/null

# shellcheck disable=SC2086
array=$(sbatch --parsable ${SBATCH_ARGS:-} --array="0-$((n_shards - 1))%$throttle" \
  --output="$OUTDIR/shard-%a.log" "$here/sweep-array.sbatch")
array=${array%%;*}
# shellcheck disable=SC2086
merge=$(sbatch --parsable ${SBATCH_ARGS:-} --dependency="afterok:$array" --kill-on-invalid-dep=yes \
  --output="$OUTDIR/merge.log" "$here/merge.sbatch")
merge=${merge%%;*}
echo "array job $array ($n_shards shards, $throttle at a time) -> $OUTDIR/shard-*.h5"
echo "merge job $merge (after every shard succeeded) -> $MERGED"
