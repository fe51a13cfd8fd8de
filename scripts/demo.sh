#!/usr/bin/env bash
# The main job: installs what is missing, builds VisionCore, and runs the demo on the bundled photo (or on the
# image given as the first argument): load, normalize, resize, convolutions, pooling, softmax; writes the edge map.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh >/dev/null
out/bin/vc demo "$@"
