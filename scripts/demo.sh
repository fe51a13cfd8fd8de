#!/usr/bin/env bash
# The main job: installs what is missing, builds VisionCore, finds the faces in the bundled photo (or in the
# image given as the first argument) with the EXTD face detector and its official weights, writing an annotated
# copy, then trains a small ResNet on Fashion-MNIST with CutMix and AdamP for 30 steps (well under a minute).
#   scripts/demo.sh ops [IMAGE]   the pipeline-of-ops demo instead
#   scripts/demo.sh train-full    the full Fashion-MNIST run (15 epochs, about 7 minutes on 2 cores; checkpoint and
#                                 metrics in out/train-fmnist)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh >/dev/null
if [ "${1:-}" = "ops" ]; then
  shift
  exec out/bin/vc demo "$@"
fi
# The recipe of the full run; the short run stops it after 30 steps and evaluates on 2000 test images.
train=(out/bin/vc train --model resnet_fmnist --dataset fashion-mnist --mix cutmix --mix-alpha 1 --mix-prob 0.25
       --optimizer adamp --lr 2e-3 --weight-decay 1e-4 --schedule cosine --batch-size 128 --epochs 15 --seed 0)
if [ "${1:-}" = "train-full" ]; then
  shift
  exec "${train[@]}" --out out/train-fmnist "$@"
fi
out/bin/vc detect-faces "${1:-data/images/astronaut.png}" --out out/demo/faces.png
echo
exec "${train[@]}" --max-steps 30 --log-every 10 --eval-limit 2000 --out out/demo/train-fmnist
