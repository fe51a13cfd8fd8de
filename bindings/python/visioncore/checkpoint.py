"""Training checkpoints: named parameters, optimizer state and counters in one atomically written file.

    visioncore.save_checkpoint("run.ckpt", {"fc.weight": w, "fc.bias": b}, optimizer=opt, step=100, epoch=2)
    step, epoch = visioncore.load_checkpoint("run.ckpt", {"fc.weight": w, "fc.bias": b}, optimizer=opt)

Loading writes into the given tensors in place (the optimizer keeps training them) and checks everything
first: a checkpoint of another model or optimizer raises VisionCoreError naming the key and changes nothing.
"""
import ctypes

from ._lib import check, lib
from .tensor import Tensor

__all__ = ["save_checkpoint", "load_checkpoint"]


def _arrays(params):
    items = list(params.items())
    if not items:
        raise ValueError("checkpoint: params is empty")
    for name, t in items:
        if not isinstance(name, str) or not isinstance(t, Tensor):
            raise TypeError("checkpoint: params must map str names to visioncore.Tensor")
    n = len(items)
    handles = (ctypes.c_void_p * n)(*[t._handle for _, t in items])
    names = (ctypes.c_char_p * n)(*[name.encode() for name, _ in items])
    return handles, names, n


def save_checkpoint(path, params: dict, optimizer=None, step: int = 0, epoch: int = 0) -> None:
    handles, names, n = _arrays(params)
    check(lib.vc_checkpoint_save(str(path).encode(), handles, names, n,
                                 None if optimizer is None else optimizer._handle, int(step), int(epoch)))


def load_checkpoint(path, params: dict, optimizer=None):
    """Restores the checkpoint into `params` (and `optimizer`); returns (step, epoch)."""
    handles, names, n = _arrays(params)
    step, epoch = ctypes.c_int64(), ctypes.c_int64()
    check(lib.vc_checkpoint_load(str(path).encode(), handles, names, n,
                                 None if optimizer is None else optimizer._handle,
                                 ctypes.byref(step), ctypes.byref(epoch)))
    return step.value, epoch.value
