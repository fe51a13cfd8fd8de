#!/usr/bin/env bash
# Sanitizer pass (minutes; not run by CI): the Swift tests in a debug build under AddressSanitizer with leak
# detection, and the C samples built with gcc -fsanitize=address,undefined against an ASan build of the library.
#
#   scripts/sanitize.sh            # both
#   scripts/sanitize.sh swift      # only the Swift tests under ASan
#   scripts/sanitize.sh c          # only the C samples
#
# Notes (reference/anchors_style_reliability.md B7): `swift test --sanitize=undefined` is refused on Linux, and
# safe Swift traps on overflow and out-of-bounds by itself, so UBSan covers the C code only (the samples, and
# the fuzz build covers stb and CKernels with ASan). LSan comes with ASan on Linux.
set -euo pipefail
cd "$(dirname "$0")/.."
export VISIONCORE_MARCH=${VISIONCORE_MARCH:-x86-64-v3}
what=${1:-all}
start=$(date +%s)
# The Swift runtime's backtracer and ASan both want the fatal signals; let ASan report.
export SWIFT_BACKTRACE=enable=no

if [ "$what" = all ] || [ "$what" = swift ]; then
  echo "== swift test --sanitize=address (debug)"
  ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/scripts/lsan.supp:print_suppressions=0 \
    swift test --sanitize=address --scratch-path .build-fuzz-asan 2>&1 \
    | grep -vE '^\[[0-9]+/[0-9]+\]|^(◇|↳) |^✔ (Suite|Test [a-zA-Z0-9_]+\()|^Test Suite|Executed 0 tests' | tail -n 60
  test "${PIPESTATUS[0]}" -eq 0
  echo "swift tests clean under ASan+LSan ($(( $(date +%s) - start )) s)"
fi

if [ "$what" = all ] || [ "$what" = c ]; then
  echo "== C samples with gcc -fsanitize=address,undefined"
  # Against the release library (static Swift runtime, as shipped): gcc's ASan replaces malloc/free for the whole
  # process, so overflows of the samples' buffers, double frees and leaks of library-allocated memory are
  # caught; the library's own code is covered by the Swift ASan run above and by the fuzzers.
  swift build -c release --product visioncore -Xswiftc -static-stdlib --scratch-path .build-fuzz-static \
    -Xlinker --exclude-libs -Xlinker ALL -Xlinker --version-script="$PWD/scripts/exports.map" 2>&1 | tail -n 3
  lib=$(swift build -c release --scratch-path .build-fuzz-static --show-bin-path)
  out=.build-fuzz-static/csamples
  mkdir -p "$out"
  for src in bindings/c/*.c; do
    name=$(basename "$src" .c)
    gcc -std=c11 -Wall -Wextra -Werror -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined \
      -fno-omit-frame-pointer -I include "$src" -L "$lib" -lvisioncore -Wl,-rpath,"$lib" -lm -o "$out/$name"
    echo "-- $name"
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$out/$name" >/dev/null
  done
  echo "C samples clean under ASan+UBSan ($(( $(date +%s) - start )) s)"
fi
