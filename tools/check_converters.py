#!/usr/bin/env python3
"""Checks tools/convert_checkpoint.py's renames of the official classifier code against timm: the official model
with random weights (and randomized BatchNorm statistics), renamed, must load into timm's model with strict=True
and give the same logits.

  OFFICIAL_DIR=/tmp/official tools/check_converters.py
OFFICIAL_DIR holds rexnetv1.py from github.com/clovaai/rexnet and pit.py from github.com/naver-ai/pit (read,
never committed). Needs torch, timm and einops. Prints the largest logit difference per model.
"""
import importlib.util
import os
import pathlib
import sys
import types

import torch
import timm

OFFICIAL = pathlib.Path(os.environ.get("OFFICIAL_DIR", "/tmp/official"))
ROOT = pathlib.Path(__file__).resolve().parent.parent


def load(path, name, edits=()):
    src = path.read_text()
    for old, new in edits:
        src = src.replace(old, new)
    mod = types.ModuleType(name)
    sys.modules[name] = mod
    exec(compile(src, str(path), "exec"), mod.__dict__)
    return mod


def compare(official, timm_name, rename, x):
    model = timm.create_model(timm_name).eval()
    model.load_state_dict(rename(official.state_dict()), strict=True)
    with torch.no_grad():
        a, b = official(x), model(x)
    if isinstance(a, tuple):  # official distilled PiT returns both heads in eval mode too
        a = (a[0] + a[1]) / 2
    diff = (a - b).abs().max().item()
    print(f"{timm_name}: strict load ok, max |logit difference| {diff:.3g}")
    return diff


def main():
    cc = load(ROOT / "tools" / "convert_checkpoint.py", "convert_checkpoint")
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    worst = 0.0
    rexnet = load(OFFICIAL / "rexnetv1.py", "official_rexnet")
    for width, name in [(1.0, "rexnet_100"), (1.3, "rexnet_130"), (1.5, "rexnet_150"), (2.0, "rexnet_200")]:
        torch.manual_seed(0)
        m = rexnet.ReXNetV1(width_mult=width).eval()
        for bn in (b for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.5, 0.5); bn.running_var.uniform_(0.5, 1.5)
            bn.weight.data.uniform_(0.5, 1.5); bn.bias.data.uniform_(-0.2, 0.2)
        assert cc.detect_source(m.state_dict()) == "clovaai-rexnet"
        worst = max(worst, compare(m, name, cc.rename_rexnet, x))
    # The official file passes `drop=` to timm's Block, which current timm calls `proj_drop`.
    pit = load(OFFICIAL / "pit.py", "official_pit", [("drop=drop_rate", "proj_drop=drop_rate"), ("@register_model", "")])
    for fn, name in [("pit_ti", "pit_ti_224"), ("pit_s", "pit_s_224"), ("pit_ti_distilled", "pit_ti_distilled_224")]:
        torch.manual_seed(0)
        m = getattr(pit, fn)(pretrained=False).eval()
        for p in m.parameters():
            p.data.normal_(0, 0.05)
        assert cc.detect_source(m.state_dict()) == "naver-pit"
        worst = max(worst, compare(m, name, cc.rename_pit, x))
    if worst > 1e-4:
        raise SystemExit(f"converted models differ from the official ones by {worst}")


if __name__ == "__main__":
    main()
