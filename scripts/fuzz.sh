#!/usr/bin/env bash
# Builds the libFuzzer targets (Fuzz/build.sh) and runs each for SECONDS_PER_TARGET seconds (default 30), starting
# from the checked-in seeds (Fuzz/corpus/<target>) plus what earlier runs found (.build-fuzz/corpus/<target>).
# Fails on any crash, sanitizer report, timeout or broken oracle, and saves the input to Fuzz/crashes/.
# Skips cleanly (exit 0) when the toolchain has no libFuzzer runtime.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [target...]    (default: $VISIONCORE_FUZZ_SECONDS, else 30; 0 skips)
#   Fuzz/crashes/<target>-crash-<sha1> is replayed with: .build-fuzz/bin/<target> Fuzz/crashes/<file>
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-${VISIONCORE_FUZZ_SECONDS:-30}}
shift $(( $# > 0 ? 1 : 0 ))
if [ "$seconds" = 0 ]; then echo "fuzz: skipped (0 seconds per target)"; exit 0; fi
export VISIONCORE_MARCH=${VISIONCORE_MARCH:-x86-64-v3}
export FUZZ_BUILD=${FUZZ_BUILD:-$PWD/.build-fuzz}
start=$(date +%s)
Fuzz/build.sh "$@"
rc=$?
if [ $rc -eq 3 ]; then echo "fuzz: skipped (no libFuzzer runtime in this toolchain)"; exit 0; fi
[ $rc -eq 0 ] || { echo "fuzz: build failed" >&2; exit $rc; }
echo "fuzz: built in $(( $(date +%s) - start )) s"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in Fuzz/Sources/fuzz_*.swift; do targets+=("$(basename "$f" .swift)"); done
fi
mkdir -p Fuzz/crashes
# The Swift runtime's crash backtracer fights ASan's own report; leaks are checked by LSan after every input.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
failed=()
for t in "${targets[@]}"; do
  work=$FUZZ_BUILD/corpus/$t
  mkdir -p "$work"
  log=$FUZZ_BUILD/$t.log
  # First the inputs of past crashes (each must now pass), then the timed run.
  regressions=(Tests/VisionCoreTests/Fixtures/regressions/$t-*)
  if [ -e "${regressions[0]}" ] && ! "$FUZZ_BUILD/bin/$t" "${regressions[@]}" >"$log" 2>&1; then
    echo "fuzz: $t FAILED on a regression input; log $log" >&2
    grep -E 'FUZZ ORACLE|ERROR: |SUMMARY|Fatal error|Running: ' "$log" | tail -8 >&2
    failed+=("$t")
    continue
  fi
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: the library refuses sizes its limits name, anything
  # that still asks for gigabytes here is a finding.
  "$FUZZ_BUILD/bin/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="Fuzz/crashes/$t-" "$work" "Fuzz/corpus/$t" >"$log" 2>&1
  status=$?
  runs=$(grep -oE '^Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo "?")
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
  if [ $status -eq 0 ]; then
    echo "fuzz: $t ok ($runs runs in ${seconds} s, $cov)"
  else
    echo "fuzz: $t FAILED (exit $status); log $log" >&2
    grep -E 'FUZZ ORACLE|ERROR: |SUMMARY|Fatal error|Test unit written' "$log" | head -8 >&2
    failed+=("$t")
  fi
done
echo "fuzz: done in $(( $(date +%s) - start )) s"
if [ ${#failed[@]} -gt 0 ]; then echo "fuzz: crashes in ${failed[*]} (inputs in Fuzz/crashes/)" >&2; exit 1; fi
