#!/usr/bin/env bash
# Builds everything and runs every test: the header checks, the Swift tests, the Python tests and the C samples.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export VISIONCORE_MARCH=${VISIONCORE_MARCH:-x86-64-v3}
start=$(date +%s)
echo "== build"
scripts/build.sh
echo "== header"
python3 scripts/gen_header.py --check
scripts/check_symbols.sh out/lib/libvisioncore.so
python3 bindings/python/tools/gen_decls.py --check
echo "== swift tests"
# Release mode: the SIMD paths that ship are the ones tested (and tests run faster); -enable-testing keeps @testable.
swift test -c release -Xswiftc -enable-testing --scratch-path .build-test 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\]|^(◇|↳) |^✔ (Suite|Test [a-zA-Z0-9_]+\()|^Test Suite|Executed 0 tests' | tail -n 80
test "${PIPESTATUS[0]}" -eq 0
echo "== python tests"
VISIONCORE_LIB=$PWD/out/lib/libvisioncore.so PYTHONPATH=$PWD/bindings/python python3 -m pytest -q bindings/python/tests
echo "== C samples"
bindings/c/run_samples.sh
echo "== fuzz (libFuzzer + ASan, VISIONCORE_FUZZ_SECONDS per target; 0 skips)"
VISIONCORE_FUZZ_SECONDS=${VISIONCORE_FUZZ_SECONDS:-15} scripts/fuzz.sh
echo "all tests passed in $(( $(date +%s) - start )) s"
