#!/usr/bin/env bash
# Everything to run on a GPU machine, in one go: GPU tests, `dalesim bench` (every kernel variant),
# the peers and the micro-benchmarks.
# Usage (from the project root, after `source .gpu/env.sh`): bench/gpu_checks.sh OUTDIR
# Expects the bundled binaries in .gpu/ (dalesim, dalesim_gpu_tests, dalesim_tests, and
# dalesim_micro_gpu for the micro-benchmarks: run when present).
set -uo pipefail
out=${1:?usage: bench/gpu_checks.sh OUTDIR}
mkdir -p "$out"
bin=${DALESIM_BIN:-.gpu/bin}
rc=0
# The test binaries were built elsewhere: tell them where the binary and the sources are here.
export DALESIM_BINARY="$PWD/$bin/dalesim" DALESIM_SOURCE_DIR="$PWD"
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv; git rev-parse HEAD 2>/dev/null; } > "$out/device.txt" 2>&1
"$bin/dalesim_gpu_tests" --gtest_output=json:"$out/gpu_tests.json" > "$out/gpu_tests.log" 2>&1 || rc=1
"$bin/dalesim_tests" > "$out/cpu_tests.log" 2>&1 || rc=1
# Every training kernel forced, with both product kernels (the JSON's "kernel" says what ran; plain
# `cuda`, the dispatcher's choice, is one of these per shape). v2 rows above its N limit are skipped.
"$bin/dalesim" bench --backends cpu,cuda:v1,cuda:v2,cuda:cublas:v1,cuda:cublas:v2 --cpu-budget 30 \
  --json "$out/bench.json" > "$out/bench.txt" 2> "$out/bench.log" || rc=1
# Micro-benchmarks: launch and sync, graph replay, shared/global memory bandwidth, batched SGEMM.
if [ -x "$bin/dalesim_micro_gpu" ]; then
  "$bin/dalesim_micro_gpu" --benchmark_out="$out/micro_gpu.json" --benchmark_out_format=json \
    > "$out/micro_gpu.txt" 2>&1 || rc=1
fi
for cfg in 256,128,64,100 64,512,64,100 1024,64,32,50; do
  tag=${cfg//,/_}
  "$bin/dalesim" bench --config "$cfg" --export-peers "$out/peer_$tag.h5" --peer-iterations 10 --peer-backend cuda \
    >> "$out/peers.log" 2>&1 || rc=1
  (cd bench/peers && python3 torch_peer.py "$out/peer_$tag.h5" --json "$out/torch_$tag.json") >> "$out/peers.log" 2>&1 || rc=1
  (cd bench/peers && python3 jax_peer.py "$out/peer_$tag.h5" --json "$out/jax_$tag.json") >> "$out/peers.log" 2>&1 || rc=1
  rm -f "$out/peer_$tag.h5"
done
echo "gpu_checks: rc=$rc" | tee -a "$out/device.txt"
exit $rc
