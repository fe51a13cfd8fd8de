#!/usr/bin/env bash
# Installs what VisionCore needs on a fresh Debian machine, when missing: OpenBLAS, stb, zlib, Python headers,
# Fashion-MNIST (Debian's dataset-fashion-mnist, under /usr/share/datasets/fashion-mnist), numpy, scipy and
# pytest. Safe to run repeatedly.
set -euo pipefail
need=()
dpkg -s libopenblas-dev >/dev/null 2>&1 || need+=(libopenblas-dev)
dpkg -s libstb-dev >/dev/null 2>&1 || need+=(libstb-dev)
dpkg -s python3-dev >/dev/null 2>&1 || need+=(python3-dev)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need+=(zlib1g-dev)
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || need+=(dataset-fashion-mnist)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq || true
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
py=${PYTHON:-python3}
for mod in numpy scipy pytest; do
  $py -c "import $mod" 2>/dev/null || { echo "setup: pip install $mod"; $py -m pip install -q "$mod"; }
done
