"""visioncore.image: read, write, convert and resize images (PNG, JPEG and BMP through stb in libvisioncore).

Images are numpy uint8 arrays of shape [H, W, C] (C = 1, 2, 3 or 4) or [H, W]; network inputs are float32
[C, H, W] arrays made by `to_tensor`. Corrupt or unreadable files raise visioncore.VisionCoreError.
"""
import ctypes
import os

import numpy as np

from . import _decls
from ._lib import call, check, lib
from .tensor import Tensor, as_tensor

__all__ = ["load_image", "decode_image", "encode_image", "save_image", "resize_image", "to_tensor"]

_FILTERS = {"bilinear": _decls.VC_RESIZE_BILINEAR, "bicubic": _decls.VC_RESIZE_BICUBIC, "box": _decls.VC_RESIZE_BOX,
            "catmull_rom": _decls.VC_RESIZE_CATMULL_ROM, "mitchell": _decls.VC_RESIZE_MITCHELL,
            "bspline": _decls.VC_RESIZE_BSPLINE}
_FORMATS = {"png": _decls.VC_IMAGE_PNG, "jpeg": _decls.VC_IMAGE_JPEG, "jpg": _decls.VC_IMAGE_JPEG}


def load_image(path, channels=3) -> np.ndarray:
    """Loads a PNG, JPEG or BMP file as a uint8 [H, W, channels] array (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA)."""
    return Tensor(call(lib.vc_image_load, os.fsencode(path), int(channels))).numpy()


def decode_image(data, channels=3) -> np.ndarray:
    """Decodes PNG, JPEG or BMP bytes (bytes, bytearray, memoryview or a uint8 array) to uint8 [H, W, channels]."""
    buf = np.frombuffer(bytes(data), dtype=np.uint8) if not isinstance(data, np.ndarray) else np.ascontiguousarray(data, np.uint8)
    ptr = buf.ctypes.data_as(ctypes.c_void_p) if buf.size else None
    return Tensor(call(lib.vc_image_decode, ptr, buf.size, int(channels))).numpy()


def encode_image(image, format="png", quality=95) -> bytes:
    """Encodes a uint8 [H, W, C] or [H, W] image as "png" or "jpeg" (quality 1..100) and returns the bytes."""
    if format not in _FORMATS:
        raise ValueError(f"encode_image: format must be 'png' or 'jpeg', got {format!r}")
    t = as_tensor(image)
    return Tensor(call(lib.vc_image_encode, t._handle, _FORMATS[format], int(quality))).numpy().tobytes()


def save_image(image, path, quality=95) -> None:
    """Saves a uint8 [H, W, C] or [H, W] image as PNG or JPEG, chosen by the extension (.png, .jpg, .jpeg)."""
    t = as_tensor(image)
    check(lib.vc_image_save(t._handle, os.fsencode(path), int(quality)))


def resize_image(image, size, filter="bilinear"):
    """Resizes to size = (height, width): a uint8 [H, W, C] / [H, W] image stays uint8 HWC; a float32 [C, H, W] or
    [N, C, H, W] array is resized per plane. filter: bilinear (tent; antialiased when shrinking), bicubic (stb's
    Catmull-Rom up / Mitchell down), box, catmull_rom, mitchell or bspline. Cubic overshoot is clamped."""
    if filter not in _FILTERS:
        raise ValueError(f"resize_image: filter must be one of {sorted(_FILTERS)}, got {filter!r}")
    h, w = (int(v) for v in size)
    t = as_tensor(image)
    out = Tensor(call(lib.vc_image_resize, t._handle, h, w, _FILTERS[filter]))
    return out if isinstance(image, Tensor) else out.numpy()


def to_tensor(image, mean=None, std=None):
    """uint8 [H, W, C] (or [H, W]) image -> float32 [C, H, W]: x / 255, then (x - mean) / std per channel
    (mean and std: C values or one; both None for no normalisation), like torchvision's ToTensor + Normalize."""
    if (mean is None) != (std is None):
        raise ValueError("to_tensor: give both mean and std, or neither")
    t = as_tensor(image)
    if mean is None:
        out = call(lib.vc_image_to_tensor, t._handle, None, None, 0)
    else:
        m = np.atleast_1d(np.asarray(mean, dtype=np.float32))
        s = np.atleast_1d(np.asarray(std, dtype=np.float32))
        if m.ndim != 1 or m.shape != s.shape:
            raise ValueError(f"to_tensor: mean and std must be sequences of the same length, got {m.shape} and {s.shape}")
        out = call(lib.vc_image_to_tensor, t._handle, m.ctypes.data_as(ctypes.POINTER(ctypes.c_float)),
                   s.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), m.size)
    out = Tensor(out)
    return out if isinstance(image, Tensor) else out.numpy()
