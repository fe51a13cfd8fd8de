#!/usr/bin/env python3
"""Times the OFFICIAL EXTD PyTorch model (clovaai/EXTD_Pytorch, network only, eval mode, no_grad) on the same
640x480 input as Benchmarks/EXTDBench, which runs this script beside its own numbers when torch is importable.

  tools/bench_extd_torch.py [threads] [runs]
Needs torch, numpy, Pillow, safetensors and a checkout of the official code (EXTD_REPO, default
/tmp/EXTD_Pytorch; see tools/fixtures/extd.py). Prints one line per variant: fastest / median wall ms, CPU ms.
"""
import importlib.util
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    runs = max(1, int(sys.argv[2]) if len(sys.argv) > 2 else 7)
    import numpy as np
    import torch
    from PIL import Image
    torch.set_num_threads(threads)
    spec = importlib.util.spec_from_file_location("extd_fixture", ROOT / "tools" / "fixtures" / "extd.py")
    fx = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fx)
    fx._install_shims()
    photo = Image.open(ROOT / "data" / "images" / "astronaut.png").convert("RGB").resize((640, 480), Image.BILINEAR)
    x = fx._to_input(np.array(photo))
    for v in fx.VARIANTS:
        net = fx._build(v)
        with torch.no_grad():
            net(x)
            wall = []
            cpu0 = time.process_time()
            for _ in range(runs):
                t0 = time.perf_counter()
                net(x)
                wall.append((time.perf_counter() - t0) * 1000)
            cpu = (time.process_time() - cpu0) * 1000 / runs
        wall.sort()
        print(f"extd_{v}   torch network {wall[0]:.1f} / {wall[len(wall) // 2]:.1f}, cpu {cpu:.1f}", flush=True)


if __name__ == "__main__":
    main()
