#!/usr/bin/env python3
"""Randomized parity of VisionCore's reductions, softmax, norms, interpolate, pad and indexing ops with PyTorch.

Needs torch and a built library (VISIONCORE_LIB or out/lib); never run by CI. Prints the worst error per op and
exits 1 on any mismatch beyond the stated tolerance.

  PYTHONPATH=bindings/python python3 tools/parity_norm.py [--cases 200]
"""
import sys

import numpy as np
import torch
import torch.nn.functional as TF

import visioncore as vc
import visioncore.functional as F

failures = []


def check(name, ours, ref, atol, rtol=0.0):
    ref = ref.detach().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    ours = np.asarray(ours)
    if ours.shape != ref.shape:
        failures.append(f"{name}: shape {ours.shape} vs {ref.shape}")
        return
    if not np.allclose(ours, ref, atol=atol, rtol=rtol, equal_nan=True):
        err = np.nanmax(np.abs(ours.astype(np.float64) - ref.astype(np.float64)))
        failures.append(f"{name}: max error {err}")


def main(cases):
    rng = np.random.default_rng(0)
    for c in range(cases):
        n, ch = int(rng.integers(1, 3)), int(rng.integers(1, 5))
        h, w = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        x = rng.normal(size=(n, ch, h, w)).astype(np.float32)
        t = torch.from_numpy(x)
        # interpolate: sizes and scale factors, both modes, align_corners variants
        oh, ow = int(rng.integers(1, 25)), int(rng.integers(1, 25))
        check(f"nearest size {x.shape}->{(oh, ow)}", F.interpolate(x, size=(oh, ow)), TF.interpolate(t, size=(oh, ow)), 0)
        for ac in (False, True):
            check(f"bilinear size {x.shape}->{(oh, ow)} ac={ac}", F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=ac),
                  TF.interpolate(t, size=(oh, ow), mode="bilinear", align_corners=ac), 1e-5, 1e-5)
        sf = (float(rng.choice([0.5, 0.75, 1.3, 1.7, 2.0, 2.5, 3.0])), float(rng.choice([0.6, 1.0, 1.5, 2.0, 3.3])))
        if int(h * sf[0]) >= 1 and int(w * sf[1]) >= 1:
            check(f"nearest scale {x.shape} {sf}", F.interpolate(x, scale_factor=sf), TF.interpolate(t, scale_factor=sf), 0)
            check(f"bilinear scale {x.shape} {sf}", F.interpolate(x, scale_factor=sf, mode="bilinear"),
                  TF.interpolate(t, scale_factor=sf, mode="bilinear"), 1e-5, 1e-5)
        # pad
        p = [int(v) for v in rng.integers(0, min(h, w), size=4)] if min(h, w) > 1 else [0, 0, 0, 0]
        check(f"pad reflect {x.shape} {p}", F.pad(x, p, mode="reflect"), TF.pad(t, p, mode="reflect"), 0)
        check(f"pad replicate {x.shape} {p}", F.pad(x, p, mode="replicate"), TF.pad(t, p, mode="replicate"), 0)
        pc = [int(v) for v in rng.integers(-1, 3, size=4)]
        if h + pc[2] + pc[3] >= 0 and w + pc[0] + pc[1] >= 0:
            check(f"pad constant {x.shape} {pc}", F.pad(x, pc, value=0.5), TF.pad(t, pc, value=0.5), 0)
        # softmax / reductions / norms
        d = int(rng.integers(0, 4))
        check(f"softmax {x.shape} dim {d}", F.softmax(x, d), TF.softmax(t, d), 1e-6, 1e-5)
        check(f"log_softmax {x.shape} dim {d}", F.log_softmax(x, d), TF.log_softmax(t, d), 1e-5, 1e-5)
        dims = tuple(sorted(set(int(v) for v in rng.integers(0, 4, size=int(rng.integers(1, 4))))))
        check(f"sum {dims}", vc.sum(x, dims), t.sum(dims), 1e-5, 1e-5)
        check(f"mean {dims}", vc.mean(x, dims, keepdim=True), t.mean(dims, keepdim=True), 1e-6, 1e-5)
        check(f"amax {dims}", vc.amax(x, dims), t.amax(dims), 0)
        if np.prod([x.shape[i] for i in dims]) > 1:
            check(f"var {dims}", vc.var(x, dims), t.var(dims), 1e-5, 1e-5)
        check(f"argmax dim {d}", vc.argmax(x, d), t.argmax(d), 0)
        check(f"batch_norm {x.shape}", F.batch_norm(x, x[0, :, 0, 0], np.abs(x[-1, :, -1, -1]) + 0.1),
              TF.batch_norm(t, t[0, :, 0, 0], t[-1, :, -1, -1].abs() + 0.1), 1e-5, 1e-5)
        check(f"layer_norm {x.shape}", F.layer_norm(x, (h, w)), TF.layer_norm(t, (h, w)), 1e-4, 1e-4)
        g = int(rng.choice([k for k in range(1, ch + 1) if ch % k == 0]))
        check(f"group_norm {x.shape} g{g}", F.group_norm(x, g), TF.group_norm(t, g), 1e-4, 1e-4)
        k = int(rng.integers(0, w + 1))
        v, i = vc.topk(x, k, dim=3)
        tv, ti = torch.topk(t, k, dim=3)
        check(f"topk values {x.shape} k{k}", v, tv, 0)
        check(f"topk gather {x.shape} k{k}", np.take_along_axis(x, i, 3), tv, 0)
    for f in failures[:40]:
        print("MISMATCH", f)
    print(f"{cases} random cases, {len(failures)} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[sys.argv.index("--cases") + 1]) if "--cases" in sys.argv else 200))
