#!/usr/bin/env python3
"""Regenerates the golden fixtures in Tests/VisionCoreTests/Fixtures from the reference implementations.

Each tools/fixtures/NAME.py defines generate() -> dict of name -> numpy array or torch tensor; this script
writes Tests/VisionCoreTests/Fixtures/NAME.safetensors. Needs torch, torchvision and safetensors
(pip install torch torchvision safetensors); CI never runs it, the committed fixtures are what the tests read.

  tools/gen_fixtures.py            all fixture sets
  tools/gen_fixtures.py conv norm  only these
"""
import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "VisionCoreTests" / "Fixtures"


def main(names):
    import numpy as np
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    sources = sorted((ROOT / "tools" / "fixtures").glob("*.py"))
    for src in sources:
        if names and src.stem not in names:
            continue
        spec = importlib.util.spec_from_file_location(f"fixtures_{src.stem}", src)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        tensors = {}
        for key, value in mod.generate().items():
            t = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
            if t.dtype == torch.float64:
                t = t.float()
            tensors[key] = t.contiguous()
        metadata = getattr(mod, "METADATA", None)
        path = OUT / f"{src.stem}.safetensors"
        save_file(tensors, str(path), metadata=metadata)
        print(f"wrote {path.relative_to(ROOT)}: {len(tensors)} tensors, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main(set(sys.argv[1:]))
