#!/usr/bin/env bash
# The CPU backend's benchmark, in one go: `dalesim bench` on the three target configurations and
# over N = 32..512, each at 1 and 2 threads (the same-run sgemm reference beside every row), the
# PyTorch CPU peer on the target configurations at 1 and 2 threads, then the summary and the plot.
# Usage (from the project root, after building into build/): bench/cpu_checks.sh OUTDIR
set -uo pipefail
out=${1:?usage: bench/cpu_checks.sh OUTDIR}
mkdir -p "$out"
bin=${DALESIM_BIN:-build/dalesim}
py=/usr/bin/python3
rc=0
{
  echo "commit: $(git rev-parse HEAD 2>/dev/null)"
  lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|L2|L3|Flags)'
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out/machine.txt"
targets=(64,128,32,50 16,64,32,50 16,256,32,50)
args=()
for c in "${targets[@]}"; do args+=(--config "$c"); done
"$bin" bench --backends cpu "${args[@]}" --threads 1,2 --iterations 20 --json "$out/targets.json" \
  > "$out/targets.txt" 2> "$out/bench.log" || rc=1
args=()
for n in 32 64 128 256 512; do args+=(--config "16,$n,32,50"); done
"$bin" bench --backends cpu "${args[@]}" --threads 1,2 --iterations 10 --json "$out/scaling.json" \
  > "$out/scaling.txt" 2>> "$out/bench.log" || rc=1
for c in "${targets[@]}"; do
  tag=${c//,/_}
  # One iteration checked: at N >= 128 Adam's first steps (lr sign(g) where g is at rounding level)
  # carry the peers' float rounding into the loss by 1e-3 within five iterations, the engine's
  # and PyTorch's summation orders differing; the first iteration's losses agree to 1e-7.
  "$bin" bench --config "$c" --export-peers "$out/peer_$tag.h5" --peer-iterations 1 --peer-backend cpu \
    >> "$out/peers.log" 2>&1 || rc=1
  for t in 1 2; do
    "$py" bench/peers/torch_peer.py "$out/peer_$tag.h5" --device cpu --iterations 5 --threads "$t" \
      --json "$out/torch_${tag}_t$t.json" >> "$out/peers.log" 2>&1 || rc=1
  done
  rm -f "$out/peer_$tag.h5"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"
"$py" bench/cpu_report.py "$out" > "$out/summary.md" || rc=1
echo "cpu_checks: rc=$rc" | tee -a "$out/machine.txt"
exit $rc
