#!/usr/bin/env python3
"""Checks every registered full-size classifier against timm: same random weights (BatchNorm statistics and
affine randomized, so that BN bugs show), eval-mode logits within 1e-4 relative L2, and equal parameter counts.
The committed Swift fixtures use reduced configs of the same code paths; this script covers the full sizes.

  tools/check_timm_parity.py [name ...]         (default: every name of visioncore.list_models())
Needs torch, timm, safetensors and the built library (scripts/build.sh, or VISIONCORE_LIB). Minutes for all.
"""
import pathlib
import sys
import tempfile

import numpy as np
import torch
import timm
from safetensors.torch import save_file

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "bindings" / "python"))
import visioncore as vc  # noqa: E402


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_((torch.rand(m.bias.shape, generator=g) - 0.5) * 0.4)
        if "pit" in type(model).__name__.lower():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def main(names):
    # Registry models without a timm counterpart (resnet_fmnist, a user's registered ones) have nothing to compare.
    names = names or [n for n in vc.list_models() if n in set(timm.list_models())]
    failures = []
    for i, name in enumerate(names):
        torch.manual_seed(i)
        ref = timm.create_model(name, pretrained=False).eval()
        randomize(ref, i)
        size = ref.pretrained_cfg["input_size"]
        x = torch.randn(2, *size, generator=torch.Generator().manual_seed(100 + i))
        with torch.no_grad():
            want = ref(x).numpy()
        with tempfile.TemporaryDirectory() as d:
            path = pathlib.Path(d) / f"{name}.safetensors"
            save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(path))
            model = vc.create_model(name).eval()
            model.load_state_dict(str(path))
        with vc.no_grad():
            got = model(x.numpy()).numpy()
        rel = float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))
        params = sum(p.numel() for p in ref.parameters())
        ok = rel < 1e-4 and model.num_params == params
        print(f"{name:24s} relative L2 {rel:.2e}  params {model.num_params:,} / timm {params:,}  {'ok' if ok else 'FAIL'}",
              flush=True)
        if not ok:
            failures.append(name)
    if failures:
        raise SystemExit(f"differ from timm: {', '.join(failures)}")


if __name__ == "__main__":
    main(sys.argv[1:])
