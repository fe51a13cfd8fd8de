#!/usr/bin/env bash
# Builds the self-contained release library (static Swift stdlib, no toolchain needed at run time) into
# out/lib/libvisioncore.so, the `vc` command-line tool into out/bin/vc, and the kernel benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."
export VISIONCORE_MARCH=${VISIONCORE_MARCH:-x86-64-v3}
mkdir -p out/lib out/bin
swift build -c release --product visioncore -Xswiftc -static-stdlib --scratch-path .build-static \
  -Xlinker --exclude-libs -Xlinker ALL -Xlinker --version-script="$PWD/scripts/exports.map"
cp "$(swift build -c release --scratch-path .build-static --show-bin-path)/libvisioncore.so" out/lib/
swift build -c release --product vc --scratch-path .build-release
swift build -c release --product KernelBench --scratch-path .build-release
swift build -c release --product TrainBench --scratch-path .build-release
swift build -c release --product FashionBench --scratch-path .build-release
bin=$(swift build -c release --scratch-path .build-release --show-bin-path)
cp "$bin/vc" "$bin/KernelBench" "$bin/TrainBench" "$bin/FashionBench" out/bin/
echo "built out/lib/libvisioncore.so, out/bin/vc, out/bin/KernelBench, out/bin/TrainBench, out/bin/FashionBench"
