#!/usr/bin/env python3
"""Fuzzes libvisioncore's image decoder: mutated PNG, JPEG (baseline, progressive, grey, CMYK) and BMP files must
decode or raise VisionCoreError, never crash. Not run by CI (minutes); run it after touching Image.swift or
upgrading stb. Each input is written to /tmp/visioncore-fuzz-last.bin before decoding, so a crash leaves it
behind. Uninitialised reads show up more often with glibc's malloc perturbation:

  MALLOC_PERTURB_=165 VISIONCORE_LIB=out/lib/libvisioncore.so PYTHONPATH=bindings/python \\
      python3 tools/fuzz_images.py [seed] [variants per source]

Needs numpy and Pillow (to produce the source files in several encodings).
"""
import io
import pathlib
import sys

import numpy as np
from PIL import Image

import visioncore as vc
from visioncore import image as vimg

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAST = pathlib.Path("/tmp/visioncore-fuzz-last.bin")


def sources():
    img = Image.open(ROOT / "Tests" / "VisionCoreTests" / "Fixtures" / "chelsea_crop_64x48.png").convert("RGB")
    variants = [("png", img, "PNG", {}), ("png-palette", img.convert("P"), "PNG", {}),
                ("png-rgba", img.convert("RGBA"), "PNG", {}), ("jpeg", img, "JPEG", {"quality": 80}),
                ("jpeg-progressive", img, "JPEG", {"quality": 80, "progressive": True}),
                ("jpeg-grey", img.convert("L"), "JPEG", {"quality": 70}),
                ("jpeg-444", img, "JPEG", {"quality": 90, "subsampling": 0}),
                ("jpeg-cmyk", img.convert("CMYK"), "JPEG", {"quality": 80}),
                ("bmp", img, "BMP", {}), ("bmp-grey", img.convert("L"), "BMP", {})]
    for name, im, fmt, kw in variants:
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        yield name, buf.getvalue()


def mutate(rng, data):
    d = bytearray(data)
    mode = rng.integers(0, 3)
    if mode == 0:  # a few bit flips anywhere
        for p in rng.integers(0, len(d), size=rng.integers(1, 8)):
            d[p] ^= 1 << int(rng.integers(0, 8))
    elif mode == 1:  # one random byte in the headers
        d[int(rng.integers(0, min(len(d), 300)))] = int(rng.integers(0, 256))
    else:  # truncation
        d = d[: int(rng.integers(0, len(d)))]
    return bytes(d)


def main(seed, count):
    rng = np.random.default_rng(seed)
    for name, data in sources():
        decoded = refused = 0
        for _ in range(count):
            d = mutate(rng, data)
            LAST.write_bytes(d)
            try:
                img = vimg.decode_image(d, channels=int(rng.integers(1, 5)))
                assert img.dtype == np.uint8 and img.ndim == 3 and min(img.shape) > 0
                decoded += 1
            except vc.VisionCoreError:
                refused += 1
        print(f"{name:18s} decoded {decoded:6d}  refused {refused:6d}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0, int(sys.argv[2]) if len(sys.argv) > 2 else 2000)
