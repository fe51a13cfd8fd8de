"""Safetensors files, as `safetensors.numpy`: load_file(path) -> dict of arrays, save_file(dict, path, metadata)."""
import ctypes

import numpy as np

from . import _decls
from ._lib import check, lib
from .tensor import Tensor

__all__ = ["load_file", "save_file", "read_metadata"]


class _Map:
    """Owns a vc_tensor_map handle."""

    def __init__(self, handle):
        self.handle = handle

    def __del__(self):
        if self.handle:
            lib.vc_tensor_map_free(self.handle)
            self.handle = None


def _load(path) -> _Map:
    h = ctypes.c_void_p()
    check(lib.vc_safetensors_load(str(path).encode(), ctypes.byref(h)))
    return _Map(h)


def load_file(filename) -> dict:
    """Reads a safetensors file into a dict of numpy arrays (F16 gives float16; BF16, which numpy lacks, float32)."""
    m = _load(filename)
    n = ctypes.c_int64()
    check(lib.vc_tensor_map_count(m.handle, ctypes.byref(n)))
    out = {}
    for i in range(n.value):
        name = ctypes.c_char_p()
        check(lib.vc_tensor_map_name(m.handle, i, ctypes.byref(name)))
        t = ctypes.c_void_p()
        check(lib.vc_tensor_map_get(m.handle, name.value, ctypes.byref(t)))
        stored = ctypes.c_int32()
        check(lib.vc_tensor_map_stored_dtype(m.handle, name.value, ctypes.byref(stored)))
        array = Tensor(t).numpy()
        out[name.value.decode()] = array.astype(np.float16) if stored.value == _decls.VC_STORE_F16 else array
    return out


def read_metadata(filename) -> dict:
    """The `__metadata__` strings of a safetensors file."""
    m = _load(filename)
    n = ctypes.c_int64()
    check(lib.vc_tensor_map_metadata_count(m.handle, ctypes.byref(n)))
    meta = {}
    for i in range(n.value):
        k, v = ctypes.c_char_p(), ctypes.c_char_p()
        check(lib.vc_tensor_map_metadata(m.handle, i, ctypes.byref(k), ctypes.byref(v)))
        meta[k.value.decode()] = v.value.decode()
    return meta


def save_file(tensor_dict: dict, filename, metadata: dict = None) -> None:
    """Writes numpy arrays (float32/float16/int32/int64/uint8/bool) to a safetensors file, atomically."""
    h = ctypes.c_void_p()
    check(lib.vc_tensor_map_create(ctypes.byref(h)))
    m = _Map(h)
    for name, value in tensor_dict.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, got {type(name).__name__}")
        a = value.numpy() if isinstance(value, Tensor) else np.asarray(value)
        stored = _decls.VC_STORE_F16 if a.dtype == np.float16 else _decls.VC_STORE_NATIVE
        t = Tensor.from_numpy(a)
        check(lib.vc_tensor_map_set(m.handle, name.encode(), t._handle, stored))
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError("metadata keys and values must be str")
        check(lib.vc_tensor_map_set_metadata(m.handle, k.encode(), v.encode()))
    check(lib.vc_safetensors_save(m.handle, str(filename).encode()))
