"""visioncore.image: decoding against independently built files, round trips, resizing, conversion and errors."""
import ctypes
import pathlib
import struct
import zlib

import numpy as np
import pytest

import visioncore as vc
from visioncore import _decls
from visioncore import image as vimg

ROOT = pathlib.Path(__file__).resolve().parents[3]
FIXTURE = ROOT / "Tests" / "VisionCoreTests" / "Fixtures" / "chelsea_crop_64x48.png"


def make_png(pixels, width=None, height=None):
    """An RGB PNG written with Python's zlib (independent of stb)."""
    h, w, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width or w, height or h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def test_decode_independent_png():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(30, 40, 3), dtype=np.uint8)
    img = vimg.decode_image(make_png(pixels))
    assert img.dtype == np.uint8 and img.shape == (30, 40, 3)
    np.testing.assert_array_equal(img, pixels)
    rgba = vimg.decode_image(make_png(pixels), channels=4)
    np.testing.assert_array_equal(rgba[..., :3], pixels)
    assert (rgba[..., 3] == 255).all()


def test_load_fixture_and_round_trips(tmp_path):
    img = vimg.load_image(FIXTURE)
    assert img.shape == (48, 64, 3)
    np.testing.assert_array_equal(img[0, 0], [148, 103, 64])
    assert int(img.astype(np.int64).sum()) == 872343
    for c in (1, 2, 3, 4):
        a = np.random.default_rng(c).integers(0, 256, size=(9, 7, c), dtype=np.uint8)
        np.testing.assert_array_equal(vimg.decode_image(vimg.encode_image(a), channels=c), a)
    grey = vimg.load_image(FIXTURE, channels=1)
    assert grey.shape == (48, 64, 1)
    vimg.save_image(img, tmp_path / "x.png")
    np.testing.assert_array_equal(vimg.load_image(tmp_path / "x.png"), img)
    vimg.save_image(img, str(tmp_path / "x.jpg"), quality=95)
    back = vimg.load_image(tmp_path / "x.jpg").astype(np.int32)
    assert np.abs(back - img).mean() < 3
    vimg.save_image(img[..., 0], tmp_path / "grey.png")
    assert vimg.load_image(tmp_path / "grey.png", channels=1).shape == (48, 64, 1)


def test_to_tensor_matches_numpy():
    img = vimg.load_image(FIXTURE)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    expected = ((img.astype(np.float64) / 255 - mean) / std).transpose(2, 0, 1)
    np.testing.assert_allclose(vimg.to_tensor(img, mean, std), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(vimg.to_tensor(img), img.transpose(2, 0, 1) / 255.0, atol=1e-7)
    with pytest.raises(vc.VisionCoreError):
        vimg.to_tensor(img, [0.5, 0.5], [0.5, 0.5])
    with pytest.raises(vc.VisionCoreError):
        vimg.to_tensor(img, [0.5], [0.0])
    with pytest.raises(ValueError):
        vimg.to_tensor(img, mean=[0.5])


def test_resize():
    img = vimg.load_image(FIXTURE)
    np.testing.assert_array_equal(vimg.resize_image(img, (48, 64)), img)
    small = vimg.resize_image(img, (24, 32), filter="box")
    # Halving with the box filter averages 2x2 blocks (to rounding).
    blocks = img.astype(np.float64).reshape(24, 2, 32, 2, 3).mean(axis=(1, 3))
    assert np.abs(small - blocks).max() <= 1
    chw = vimg.to_tensor(img)
    up = vimg.resize_image(chw, (100, 130), filter="bicubic")
    assert up.shape == (3, 100, 130) and up.dtype == np.float32
    assert up.min() >= chw.min() and up.max() <= chw.max()
    for f in ("bilinear", "bicubic", "box", "catmull_rom", "mitchell", "bspline"):
        assert vimg.resize_image(img, (10, 11), filter=f).shape == (10, 11, 3)
    with pytest.raises(ValueError):
        vimg.resize_image(img, (10, 10), filter="lanczos")
    with pytest.raises(vc.VisionCoreError):
        vimg.resize_image(img, (0, 10))


def test_corrupt_and_missing_files(tmp_path):
    data = FIXTURE.read_bytes()
    bad = tmp_path / "bad.png"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(vc.VisionCoreError) as e:
        vimg.load_image(bad)
    assert e.value.status == _decls.VC_FORMAT_ERROR and "bad.png" in str(e.value)
    with pytest.raises(vc.VisionCoreError) as e:
        vimg.load_image(tmp_path / "missing.png")
    assert e.value.status == _decls.VC_IO_ERROR and "missing.png" in str(e.value)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(vc.VisionCoreError, match="empty"):
        vimg.load_image(tmp_path / "empty.png")
    with pytest.raises(vc.VisionCoreError, match="too large|exceeds|Very large"):
        vimg.decode_image(make_png(np.zeros((2, 2, 3), np.uint8), width=100000, height=100000))
    with pytest.raises(vc.VisionCoreError):
        vimg.decode_image(b"not an image at all")
    with pytest.raises(vc.VisionCoreError):
        vimg.decode_image(b"")
    with pytest.raises(vc.VisionCoreError, match="channels"):
        vimg.load_image(FIXTURE, channels=5)
    with pytest.raises(vc.VisionCoreError, match="gif"):
        vimg.save_image(np.zeros((2, 2, 3), np.uint8), tmp_path / "x.gif")
    with pytest.raises(vc.VisionCoreError):
        vimg.save_image(np.zeros((2, 2, 3), np.float32), tmp_path / "x.png")
    with pytest.raises(vc.VisionCoreError):
        vimg.encode_image(np.zeros((2, 2, 3), np.uint8), "jpeg", quality=101)


def test_bit_flips_never_crash():
    data = bytearray(FIXTURE.read_bytes())
    rng = np.random.default_rng(5)
    outcomes = set()
    for _ in range(100):
        b = bytearray(data)
        for pos in rng.integers(0, len(b), size=3):
            b[pos] ^= 1 << int(rng.integers(0, 8))
        try:
            img = vimg.decode_image(bytes(b))
            assert img.shape[2] == 3
            outcomes.add("ok")
        except vc.VisionCoreError:
            outcomes.add("error")
    assert outcomes


def test_null_inputs():
    out = ctypes.c_void_p()
    assert vc.lib.vc_image_load(None, 3, ctypes.byref(out)) == _decls.VC_INVALID_ARGUMENT
    assert vc.lib.vc_image_decode(None, 10, 3, ctypes.byref(out)) == _decls.VC_INVALID_ARGUMENT
    assert vc.lib.vc_image_save(None, b"/tmp/x.png", 90) == _decls.VC_INVALID_ARGUMENT
    assert vc.lib.vc_image_to_tensor(None, None, None, 0, ctypes.byref(out)) == _decls.VC_INVALID_ARGUMENT
    t = vc.tensor(np.zeros((2, 2, 3), np.uint8))
    assert vc.lib.vc_image_to_tensor(t._handle, None, None, 3, ctypes.byref(out)) == _decls.VC_INVALID_ARGUMENT
    assert vc.lib.vc_image_resize(t._handle, 4, 4, 99, ctypes.byref(out)) == _decls.VC_INVALID_ARGUMENT
    assert vc.lib.vc_image_encode(t._handle, 7, 90, ctypes.byref(out)) == _decls.VC_INVALID_ARGUMENT
    assert not out.value
