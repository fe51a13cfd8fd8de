#!/usr/bin/env bash
# Compiles every C sample with strict warnings against include/visioncore.h and out/lib/libvisioncore.so, then
# runs each one (from the repository root, so samples can reach ../shared-free bundled data by relative path).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p bindings/c/build
for src in bindings/c/*.c; do
  name=$(basename "$src" .c)
  gcc -std=c11 -Wall -Wextra -Werror -O2 -Iinclude "$src" -Lout/lib -lvisioncore -lm \
      -Wl,-rpath,"$PWD/out/lib" -o "bindings/c/build/$name"
  echo "-- $name"
  "bindings/c/build/$name"
done
