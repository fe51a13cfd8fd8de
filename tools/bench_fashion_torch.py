#!/usr/bin/env python3
"""PyTorch's side of Benchmarks/FashionBench: the `vc train` Fashion-MNIST recipe in PyTorch.

Same model (timm ResNet, BasicBlock x [1, 1, 1, 1], planes 32-64-128-256, in_chans 1 = VisionCore's
resnet_fmnist), batch 128 with drop_last, random horizontal flip + normalize (0.2860, 0.3530), official
clovaai CutMix (alpha 1, prob 0.25), AdamP (the `adamp` package, weight decay 1e-4) with a per-iteration cosine
schedule, cross-entropy on the mixed soft targets. Prints one `torch_epoch_s <seconds>` line per epoch (training
time; with --max-steps the epoch's time is extrapolated from the steps run) and `torch_test_acc <fraction>`.
"""
import argparse
import gzip
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--epochs", type=int, default=1)
p.add_argument("--max-steps", type=int, default=0, help="steps per epoch to time (0: the whole epoch)")
p.add_argument("--batch", type=int, default=128)
p.add_argument("--lr", type=float, default=2e-3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
np.random.seed(a.seed)


def idx(name):
    with gzip.open(f"{a.root}/{name}", "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(split):
    x = torch.from_numpy(idx(f"{split}-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
    return (x - 0.2860) / 0.3530, torch.from_numpy(idx(f"{split}-labels-idx1-ubyte.gz").astype(np.int64))


xtr, ytr = load("train")
xte, yte = load("t10k")

from timm.models.resnet import BasicBlock, ResNet  # noqa: E402
from adamp import AdamP  # noqa: E402

model = ResNet(block=BasicBlock, layers=[1, 1, 1, 1], channels=(32, 64, 128, 256), in_chans=1, num_classes=10)
opt = AdamP(model.parameters(), lr=a.lr, weight_decay=1e-4)
steps_per_epoch = len(xtr) // a.batch
total = a.epochs * steps_per_epoch
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: (1 + math.cos(math.pi * t / total)) / 2)


def rand_bbox(size, lam):  # clovaai/CutMix-PyTorch train.py
    W, H = size[2], size[3]
    cut_rat = np.sqrt(1. - lam)
    cut_w, cut_h = int(W * cut_rat), int(H * cut_rat)
    cx, cy = np.random.randint(W), np.random.randint(H)
    return (np.clip(cx - cut_w // 2, 0, W), np.clip(cy - cut_h // 2, 0, H),
            np.clip(cx + cut_w // 2, 0, W), np.clip(cy + cut_h // 2, 0, H))


for epoch in range(a.epochs):
    model.train()
    order = torch.randperm(len(xtr))
    steps = a.max_steps or steps_per_epoch
    t0 = time.perf_counter()
    for b in range(steps):
        ids = order[b * a.batch:(b + 1) * a.batch]
        x, y = xtr[ids].clone(), ytr[ids]
        flip = torch.rand(len(ids)) < 0.5
        x[flip] = x[flip].flip(3)
        if np.random.rand(1) < 0.25:
            lam = np.random.beta(1.0, 1.0)
            perm = torch.randperm(x.size(0))
            x1, y1, x2, y2 = rand_bbox(x.size(), lam)
            x[:, :, x1:x2, y1:y2] = x[perm, :, x1:x2, y1:y2]
            lam = 1 - ((x2 - x1) * (y2 - y1) / (x.size(-1) * x.size(-2)))
            out = model(x)
            loss = F.cross_entropy(out, y) * lam + F.cross_entropy(out, y[perm]) * (1. - lam)
        else:
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    dt = time.perf_counter() - t0
    print(f"torch_epoch_s {dt * steps_per_epoch / steps:.2f}", flush=True)
    model.eval()
    with torch.no_grad():
        correct = sum((model(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum().item() for i in range(0, len(xte), 500))
    print(f"torch_test_acc {correct / len(xte):.4f}", flush=True)
