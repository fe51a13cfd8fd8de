#!/usr/bin/env python3
"""PyTorch's side of Benchmarks/TrainBench: torchvision resnet18, AdamW, cross-entropy; prints `torch_ms <median>`."""
import argparse
import time

import torch
import torchvision

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=5)
p.add_argument("--batch", type=int, default=8)
p.add_argument("--size", type=int, default=224)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
model = torchvision.models.resnet18()
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
x, y = torch.randn(a.batch, 3, a.size, a.size), torch.randint(0, 1000, (a.batch,))
times = []
for i in range(a.steps + 1):
    t0 = time.perf_counter()
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    if i > 0:
        times.append(time.perf_counter() - t0)
times.sort()
print(f"torch_ms {times[len(times) // 2] * 1000:.1f}")
