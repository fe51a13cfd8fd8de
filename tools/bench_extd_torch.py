#!/usr/bin/env python3
"""Times the OFFICIAL EXTD PyTorch model (clovaai/EXTD_Pytorch, network only, eval mode, no_grad) and the same
network exported to ONNX and run by ONNX Runtime, on the same 640x480 input as Benchmarks/EXTDBench, which runs
this script beside its own numbers when torch is importable.

  tools/bench_extd_torch.py [threads] [runs]
Needs torch, numpy, Pillow, safetensors and a checkout of the official code (EXTD_REPO, default
/tmp/EXTD_Pytorch; see tools/fixtures/extd.py); onnxruntime and onnx for the ONNX Runtime column. Prints one line
per variant: `extd_V torch MIN MEDIAN CPU ort MIN MEDIAN CPU` (ms; nan when ONNX Runtime is missing).
"""
import importlib.util
import os
import pathlib
import sys
import tempfile
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
    def timed(fn):
        fn()
        wall = []
        cpu0 = time.process_time()
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            wall.append((time.perf_counter() - t0) * 1000)
        cpu = (time.process_time() - cpu0) * 1000 / runs
        wall.sort()
        return wall[0], wall[len(wall) // 2], cpu

    class NetworkOnly(torch.nn.Module):
        """The official forward without its priors (rebuilt in Python on every call): loc and conf only."""
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            loc, conf, _ = self.net(x)
            return loc, conf

    for v in fx.VARIANTS:
        net = fx._build(v)
        with torch.no_grad():
            t = timed(lambda: net(x))
        o = (float("nan"),) * 3
        try:
            import onnxruntime as ort
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "extd.onnx")
                with torch.no_grad():
                    torch.onnx.export(NetworkOnly(net), x, path, opset_version=17, dynamo=False)
                so = ort.SessionOptions()
                so.intra_op_num_threads = threads
                so.inter_op_num_threads = 1
                sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
                xn = x.numpy()
                name = sess.get_inputs()[0].name
                o = timed(lambda: sess.run(None, {name: xn}))
        except ImportError:
            pass
        print(f"extd_{v} torch {t[0]:.1f} {t[1]:.1f} {t[2]:.1f} ort {o[0]:.1f} {o[1]:.1f} {o[2]:.1f}", flush=True)


if __name__ == "__main__":
    main()
