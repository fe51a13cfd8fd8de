#!/usr/bin/env python3
"""Writes the seed corpora of Fuzz/corpus/<target>/ (small valid inputs the fuzzers mutate). Run once; the
output is committed. Needs numpy and Pillow (for the image seeds)."""
import io
import json
import pathlib
import struct

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"
FIXTURES = ROOT.parent / "Tests" / "VisionCoreTests" / "Fixtures"


def write(target, name, data):
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def safetensors(tensors, metadata=None, pad=True):
    header, blobs, off = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-(8 + len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def main():
    rng = np.random.default_rng(0)
    f32 = rng.standard_normal(6).astype("<f4")
    write("fuzz_safetensors", "all_dtypes.safetensors", safetensors({
        "f32": ("F32", [2, 3], f32.tobytes()),
        "f16": ("F16", [3], np.array([1.5, -0.0, 65504], "<f2").tobytes()),
        "bf16": ("BF16", [2], (np.array([1.0, -2.5], "<f4").view("<u4") >> 16).astype("<u2").tobytes()),
        "i64": ("I64", [2], np.array([-1, 1 << 40], "<i8").tobytes()),
        "i32": ("I32", [1, 1], np.array([7], "<i4").tobytes()),
        "u8": ("U8", [4], bytes([0, 1, 254, 255])),
    }, metadata={"format": "pt", "note": "caf\u00e9 \\u"}))
    write("fuzz_safetensors", "empty_and_scalar.safetensors", safetensors({
        "scalar": ("F32", [], np.array([3.0], "<f4").tobytes()),
        "empty": ("F32", [0, 4], b""),
    }, pad=False))
    write("fuzz_safetensors", "no_tensors.safetensors", safetensors({}, metadata={}))
    write("fuzz_safetensors", "format_fixture.safetensors", (FIXTURES / "safetensors_format.safetensors").read_bytes())

    for i, text in enumerate([
        '{"a":[1,2.5,-3e-7,true,false,null],"b":{"c":"\\u00e9\\ud83d\\ude00\\n"}}',
        '[]', '{}', '"x"', '-0', '1E+400', '[[[[[[[[[[1]]]]]]]]]]', ' {"dtype":"F32","shape":[2,3],"data_offsets":[0,24]} ',
        '{"__metadata__":{"k":"v"},"t":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}',
        '123456789012345678901234567890', '0.1', '"\\/\\b\\f\\r\\t\\"\\\\"',
    ]):
        write("fuzz_json", f"seed{i}.json", text.encode())

    img = Image.open(FIXTURES / "chelsea_crop_64x48.png").convert("RGB").resize((16, 12))
    for name, im, fmt, kw in [("png", img, "PNG", {}), ("png_palette", img.convert("P"), "PNG", {}),
                              ("png_rgba", img.convert("RGBA"), "PNG", {}), ("png_grey", img.convert("L"), "PNG", {}),
                              ("jpeg", img, "JPEG", {"quality": 80}),
                              ("jpeg_progressive", img, "JPEG", {"quality": 80, "progressive": True}),
                              ("jpeg_grey", img.convert("L"), "JPEG", {"quality": 70}),
                              ("bmp", img, "BMP", {}), ("bmp_grey", img.convert("L"), "BMP", {})]:
        buf = io.BytesIO()
        im.save(buf, fmt, **kw)
        # The first byte is the channel count the target asks for (mod 6).
        for ch in (3, 1) if name in ("png", "jpeg") else (3,):
            write("fuzz_image", f"{name}_c{ch}.bin", bytes([ch]) + buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray((np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)).save(buf, "PNG")
    write("fuzz_image", "png16_c4.bin", bytes([4]) + buf.getvalue())

    # IDX files (the first byte picks plain 0 or gzip-compressed 1), each element type once.
    import gzip
    def idx(code, dims, raw):
        return bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + raw
    seeds = {"u8": idx(0x08, [2, 3, 4], bytes(range(24))), "i8": idx(0x09, [5], bytes([0, 1, 255, 128, 7])),
             "i16": idx(0x0B, [2, 2], struct.pack(">4h", 1, -2, 300, -32768)),
             "i32": idx(0x0C, [3], struct.pack(">3i", 7, -1, 2**31 - 1)),
             "f32": idx(0x0D, [2, 1], struct.pack(">2f", 1.5, -0.25)), "f64": idx(0x0E, [1], struct.pack(">d", 3.25))}
    for name, data in seeds.items():
        write("fuzz_idx", f"{name}.bin", b"\x00" + data)
    write("fuzz_idx", "u8_gz.bin", b"\x01" + gzip.compress(seeds["u8"], mtime=0))

    # Structured targets: random byte programs of a few lengths are enough to start from.
    for target in ("fuzz_capi", "fuzz_op_params"):
        for i, n in enumerate([8, 32, 96, 256, 600]):
            write(target, f"seed{i}.bin", rng.integers(0, 256, n, dtype=np.uint8).tobytes())


if __name__ == "__main__":
    main()
