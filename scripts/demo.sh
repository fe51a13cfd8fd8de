#!/usr/bin/env bash
# The main job: installs what is missing, builds VisionCore, and finds the faces in the bundled photo (or in
# the image given as the first argument) with the EXTD face detector and its official weights, writing an
# annotated copy. `scripts/demo.sh ops [IMAGE]` runs the pipeline-of-ops demo instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh >/dev/null
if [ "${1:-}" = "ops" ]; then
  shift
  exec out/bin/vc demo "$@"
fi
exec out/bin/vc detect-faces "${1:-data/images/astronaut.png}" --out out/demo/faces.png
