#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ and runs each for SECONDS
# (default 10) over a copy of its seed corpus; exits non-zero on any crash, leak, timeout or
# sanitizer report. docs/fuzzing.md says how to run longer and reproduce a crash.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${1:-10}"
build="${DALESIM_FUZZ_BUILD_DIR:-build-fuzz}"
jobs="${DALESIM_FUZZ_BUILD_JOBS:-2}"
targets=(fuzz_sweep fuzz_h5_reader)

# -O1 and line tables: the usual fuzzing trade-off between speed and readable stack traces;
# asserts stay on (no NDEBUG).
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DDALESIM_ENABLE_CUDA=OFF -DDALESIM_BUILD_TESTS=OFF -DDALESIM_BUILD_BENCH=OFF -DDALESIM_BUILD_FUZZ=ON >/dev/null
cmake --build "$build" -j"$jobs" --target "${targets[@]}"

# Fuzzing writes new inputs into the corpus directory: work on a copy, never on the source tree.
work="$(mktemp -d "${TMPDIR:-/tmp}/dalesim-fuzz-XXXXXX")"
trap 'rm -rf "$work"' EXIT

# Sweep texts a little longer than the largest example sweep; HDF5 inputs as big as the seed
# files (libFuzzer would truncate longer ones). -timeout: an input running this long (s) is a hang.
declare -A max_len=([fuzz_sweep]=4096 [fuzz_h5_reader]=131072)
declare -A corpus=([fuzz_sweep]=sweep [fuzz_h5_reader]=h5)
declare -A dict=([fuzz_sweep]=tests/fuzz/sweep.dict [fuzz_h5_reader]=)

# libhdf5 leaks some of its own allocations on corrupt files (see lsan.supp and docs/fuzzing.md).
export LSAN_OPTIONS="suppressions=$PWD/tests/fuzz/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

# fuzz_h5_reader's per-process directory goes under TMPDIR; libFuzzer ends a process without
# running exit handlers when a target fails, so the directory lives in $work, removed above.
export TMPDIR="$work"

passed=0
failed=0
for t in "${targets[@]}"; do
  mkdir -p "$work/${corpus[$t]}" "$work/artifacts-$t"
  cp tests/fuzz/corpus/"${corpus[$t]}"/* "$work/${corpus[$t]}/"
  args=(-max_total_time="$seconds" -max_len="${max_len[$t]}" -timeout=10 -rss_limit_mb=2048
        -artifact_prefix="$work/artifacts-$t/" -print_final_stats=1)
  [ -n "${dict[$t]}" ] && args+=(-dict="${dict[$t]}")
  echo "run_fuzz: $t for ${seconds} s"
  if "$build/tests/fuzz/$t" "${args[@]}" "$work/${corpus[$t]}" >"$work/$t.log" 2>&1; then
    passed=$((passed + 1))
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$t.log" || true
  else
    failed=$((failed + 1))
    tail -n 60 "$work/$t.log"
    # Keep what reproduces it: the artifacts leave the temporary directory for build-fuzz/.
    mkdir -p "$build/artifacts"
    cp -r "$work/artifacts-$t" "$build/artifacts/" 2>/dev/null || true
    echo "run_fuzz: $t FAILED; crash inputs copied to $build/artifacts/artifacts-$t/" >&2
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
