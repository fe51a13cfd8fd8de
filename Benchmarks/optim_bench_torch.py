"""PyTorch side of Benchmarks/OptimBench: one torch.optim.AdamW step over 25M parameters (five 5M tensors),
single-tensor (the CPU default) and foreach paths, best of 10, and one adamp.AdamP step over five [1000, 5000]
weights, best of 5; prints the ratios to VisionCore's times."""
import argparse
import time

import torch

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--visioncore-ms", type=float, default=None)
ap.add_argument("--visioncore-adamp-ms", type=float, default=None)
a = ap.parse_args()
torch.set_num_threads(a.threads)
g = torch.Generator().manual_seed(1)
for foreach in (False, True):
    params = [(torch.randn(5_000_000, generator=g) * 0.02).requires_grad_() for _ in range(5)]
    for p in params:
        p.grad = torch.randn(5_000_000, generator=g) * 1e-3
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05, foreach=foreach)
    opt.step()
    best = float("inf")
    for _ in range(10):
        t0 = time.perf_counter()
        opt.step()
        best = min(best, time.perf_counter() - t0)
    ratio = f", VisionCore/PyTorch = {a.visioncore_ms / (best * 1e3):.2f}" if a.visioncore_ms else ""
    print(f"PyTorch {torch.__version__} AdamW step (foreach={foreach}), {a.threads} threads: {best * 1e3:.1f} ms{ratio}")

try:
    import adamp
except ImportError:
    adamp = None
if adamp is not None:
    params = [(torch.randn(1000, 5000, generator=g) * 0.02).requires_grad_() for _ in range(5)]
    for p in params:
        p.grad = torch.randn(1000, 5000, generator=g) * 1e-3
    opt = adamp.AdamP(params, lr=1e-3, weight_decay=1e-2)
    opt.step()
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        opt.step()
        best = min(best, time.perf_counter() - t0)
    ratio = f", VisionCore/adamp = {a.visioncore_adamp_ms / (best * 1e3):.2f}" if a.visioncore_adamp_ms else ""
    print(f"adamp {adamp.__version__ if hasattr(adamp, '__version__') else '0.3.0'} AdamP step, {a.threads} threads: {best * 1e3:.1f} ms{ratio}")
