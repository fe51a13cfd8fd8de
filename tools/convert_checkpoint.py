#!/usr/bin/env python3
"""Converts PyTorch checkpoints (.pth / .pt / .pkl, including the legacy pre-1.6 non-zip pickle format of the
official EXTD weights) to safetensors with the same key names, so that VisionCore can load them.

  tools/convert_checkpoint.py EXTD_32.pth [EXTD_32.safetensors]
  tools/convert_checkpoint.py --check EXTD_32.pth data/weights/extd/EXTD_32.safetensors   (compare, write nothing)

A checkpoint may be a plain state_dict or a dict holding one under "state_dict", "model", "weight" or "net"
(EXTD's train.py saves the plain dict); a "module." prefix left by DataParallel is removed. Needs torch and
safetensors (pip install torch safetensors); CI never runs tools/.

Official classifier checkpoints are renamed to timm's keys, which VisionCore's models use (`--source`, detected
from the keys by default):
  naver-pit       naver-ai/pit: pools.N.* -> transformers.{N+1}.pool.* (timm's checkpoint_filter_fn)
  clovaai-rexnet  clovaai/rexnet rexnetv1.py: features.0/1 -> stem, features.3..18.out.* -> features.0..15
                  (conv_exp / conv_dw / se / conv_pwl), features.19/20 -> features.16, output.1 -> head.fc
  torchvision, timm, extd   kept as they are (torchvision's ResNet keys are timm's)
Loading the result into the model (VisionCore or timm) lists any missing, unexpected or mis-shaped keys.
"""
import re
import argparse
import pathlib
import sys


def load_state_dict(path):
    import torch
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # old pickles with non-tensor objects; only for files you trust
        print(f"note: weights_only load failed ({type(e).__name__}); retrying with full unpickling", file=sys.stderr)
        obj = torch.load(str(path), map_location="cpu", weights_only=False)
    for key in ("state_dict", "model", "weight", "net"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise SystemExit(f"{path}: expected a state_dict (a dict of tensors), got {type(obj).__name__}")
    out = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise SystemExit(f"{path}: entry {k!r} is a {type(v).__name__}, not a tensor")
        name = k[len("module."):] if k.startswith("module.") else k
        out[name] = v.detach().cpu().contiguous()
    return out


def detect_source(state):
    if any(k.startswith("pools.") for k in state):
        return "naver-pit"
    if "features.3.out.0.weight" in state and "output.1.weight" in state:
        return "clovaai-rexnet"
    return "timm"


def rename_pit(state):
    return {re.sub(r"^pools\.(\d+)\.", lambda m: f"transformers.{int(m.group(1)) + 1}.pool.", k): v for k, v in state.items()}


def rename_rexnet(state):
    """clovaai/rexnet's flat Sequentials to timm's RexNet modules (seeds_classification.md 2.5)."""
    out = {}
    blocks = sorted({int(m.group(1)) for k in state if (m := re.match(r"features\.(\d+)\.out\.", k))})
    penultimate = blocks[-1] + 1 if blocks else 19
    for k, v in state.items():
        m = re.match(r"features\.(\d+)\.(.*)$", k)
        if k.startswith("output.1."):
            out["head.fc." + k[len("output.1."):]] = v.flatten(1) if k.endswith("weight") else v
        elif m and int(m.group(1)) in (0, 1):
            out[("stem.conv." if m.group(1) == "0" else "stem.bn.") + m.group(2)] = v
        elif m and int(m.group(1)) in (penultimate, penultimate + 1):
            part = "conv." if int(m.group(1)) == penultimate else "bn."
            out[f"features.{penultimate - 3}.{part}{m.group(2)}"] = v
        elif m and int(m.group(1)) in blocks:
            i = int(m.group(1))
            rest = m.group(2)[len("out."):]
            expanded = f"features.{i}.out.6.weight" in state or f"features.{i}.out.7.weight" in state
            se = f"features.{i}.out.5.fc.0.weight" in state
            # Sequential positions of each part, by block kind (t = 1; t = 6 without / with SE).
            if not expanded:
                names = {"0": "conv_dw.conv", "1": "conv_dw.bn", "3": "conv_pwl.conv", "4": "conv_pwl.bn"}
            elif not se:
                names = {"0": "conv_exp.conv", "1": "conv_exp.bn", "3": "conv_dw.conv", "4": "conv_dw.bn",
                         "6": "conv_pwl.conv", "7": "conv_pwl.bn"}
            else:
                names = {"0": "conv_exp.conv", "1": "conv_exp.bn", "3": "conv_dw.conv", "4": "conv_dw.bn",
                         "5.fc.0": "se.fc1", "5.fc.1": "se.bn", "5.fc.3": "se.fc2", "7": "conv_pwl.conv", "8": "conv_pwl.bn"}
            prefix = next((p for p in sorted(names, key=len, reverse=True) if rest.startswith(p + ".")), None)
            if prefix is None:
                raise SystemExit(f"{k}: not a ReXNet block entry this converter knows")
            out[f"features.{i - 3}.{names[prefix]}.{rest[len(prefix) + 1:]}"] = v
        else:
            raise SystemExit(f"{k}: not a clovaai/rexnet key this converter knows")
    return out


RENAMES = {"naver-pit": rename_pit, "clovaai-rexnet": rename_rexnet}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=pathlib.Path)
    ap.add_argument("output", type=pathlib.Path, nargs="?")
    ap.add_argument("--check", action="store_true", help="compare with an existing safetensors file instead")
    ap.add_argument("--source", choices=["auto", "naver-pit", "clovaai-rexnet", "torchvision", "timm", "extd"],
                    default="auto", help="key layout of the checkpoint (default: detected)")
    args = ap.parse_args()
    state = load_state_dict(args.checkpoint)
    source = detect_source(state) if args.source == "auto" else args.source
    state = RENAMES.get(source, lambda s: s)(state)
    out = args.output or args.checkpoint.with_suffix(".safetensors")
    if args.check:
        from safetensors.torch import load_file
        other = load_file(str(out))
        if set(other) != set(state):
            raise SystemExit(f"key sets differ: only in checkpoint {sorted(set(state) - set(other))[:8]}, "
                             f"only in {out.name} {sorted(set(other) - set(state))[:8]}")
        bad = [k for k in state if state[k].dtype != other[k].dtype or not bool((state[k] == other[k]).all())]
        if bad:
            raise SystemExit(f"{len(bad)} tensors differ, e.g. {bad[:8]}")
        print(f"{args.checkpoint} and {out}: {len(state)} tensors, identical")
        return
    from safetensors.torch import save_file
    params = sum(v.numel() for k, v in state.items()
                 if v.is_floating_point() and not k.endswith(("running_mean", "running_var")))
    save_file(state, str(out), metadata={"source": args.checkpoint.name, "format": "pt"})
    print(f"wrote {out}: {len(state)} tensors, {params} learnable parameters (BN running stats excluded)")


if __name__ == "__main__":
    main()
