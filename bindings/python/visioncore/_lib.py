"""Loads libvisioncore.so and declares its functions from the generated _decls.py.

The library is found at $VISIONCORE_LIB when set, else next to this package (an installed copy), else in the
repository's out/lib (after scripts/build.sh).
"""
import ctypes
import os
import pathlib

from . import _decls


class VisionCoreError(RuntimeError):
    """An error reported by libvisioncore; `status` is the VC_* code, the message is the library's."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _find_library() -> str:
    env = os.environ.get("VISIONCORE_LIB")
    if env:
        return env
    here = pathlib.Path(__file__).resolve().parent
    for candidate in (here / "libvisioncore.so", here.parents[2] / "out" / "lib" / "libvisioncore.so"):
        if candidate.exists():
            return str(candidate)
    raise ImportError("libvisioncore.so not found: build it with scripts/build.sh or set VISIONCORE_LIB")


lib = ctypes.CDLL(_find_library())
for _name, (_restype, _argtypes) in _decls.FUNCTIONS.items():
    _fn = getattr(lib, _name)
    _fn.restype = _restype
    _fn.argtypes = _argtypes


def check(status: int) -> None:
    """Raises VisionCoreError carrying the library's message when `status` is not VC_OK."""
    if status != _decls.VC_OK:
        raise VisionCoreError(status, lib.vc_last_error_message().decode("utf-8", "replace"))


def call(fn, *args) -> "ctypes.c_void_p":
    """Calls a `vc_*` function whose last argument is `vc_tensor **out` and returns the new handle."""
    out = ctypes.c_void_p()
    check(fn(*args, ctypes.byref(out)))
    return out
