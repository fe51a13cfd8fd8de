#!/usr/bin/env python3
"""Converts PyTorch checkpoints (.pth / .pt / .pkl, including the legacy pre-1.6 non-zip pickle format of the
official EXTD weights) to safetensors with the same key names, so that VisionCore can load them.

  tools/convert_checkpoint.py EXTD_32.pth [EXTD_32.safetensors]
  tools/convert_checkpoint.py --check EXTD_32.pth data/weights/extd/EXTD_32.safetensors   (compare, write nothing)

A checkpoint may be a plain state_dict or a dict holding one under "state_dict", "model", "weight" or "net"
(EXTD's train.py saves the plain dict); a "module." prefix left by DataParallel is removed. Needs torch and
safetensors (pip install torch safetensors); CI never runs tools/.
"""
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", type=pathlib.Path)
    ap.add_argument("output", type=pathlib.Path, nargs="?")
    ap.add_argument("--check", action="store_true", help="compare with an existing safetensors file instead")
    args = ap.parse_args()
    state = load_state_dict(args.checkpoint)
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
