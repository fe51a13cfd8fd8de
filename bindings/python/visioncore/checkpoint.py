"""Training checkpoints: named parameters, optimizer state and counters in one atomically written file.

    visioncore.save_checkpoint("run.ckpt", {"fc.weight": w, "fc.bias": b}, optimizer=opt, step=100, epoch=2)
    step, epoch = visioncore.load_checkpoint("run.ckpt", {"fc.weight": w, "fc.bias": b}, optimizer=opt)

`params` may also be a `visioncore.Model` (create_model): then its whole state dict (BatchNorm statistics too),
its dropout generators and, optionally, a scheduler's state are saved and restored with it.

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


def _is_model(params):
    from .classification import Model
    return isinstance(params, Model)


def _handle(obj):
    return None if obj is None else obj._handle


def save_checkpoint(path, params, optimizer=None, step: int = 0, epoch: int = 0, scheduler=None) -> None:
    if _is_model(params):
        check(lib.vc_model_checkpoint_save(str(path).encode(), params._handle, _handle(optimizer), _handle(scheduler),
                                           int(step), int(epoch)))
        return
    if scheduler is not None:
        raise ValueError("save_checkpoint: a scheduler is saved with a visioncore.Model, not with a dict of tensors")
    handles, names, n = _arrays(params)
    check(lib.vc_checkpoint_save(str(path).encode(), handles, names, n,
                                 None if optimizer is None else optimizer._handle, int(step), int(epoch)))


def load_checkpoint(path, params, optimizer=None, scheduler=None):
    """Restores the checkpoint into `params` (a dict of tensors or a Model), `optimizer` and (with a Model)
    `scheduler`; returns (step, epoch)."""
    step, epoch = ctypes.c_int64(), ctypes.c_int64()
    if _is_model(params):
        check(lib.vc_model_checkpoint_load(str(path).encode(), params._handle, _handle(optimizer), _handle(scheduler),
                                           ctypes.byref(step), ctypes.byref(epoch)))
        if optimizer is not None:
            optimizer._pull_lrs()  # the restored rates
        return step.value, epoch.value
    if scheduler is not None:
        raise ValueError("load_checkpoint: a scheduler is restored with a visioncore.Model, not with a dict of tensors")
    handles, names, n = _arrays(params)
    check(lib.vc_checkpoint_load(str(path).encode(), handles, names, n,
                                 None if optimizer is None else optimizer._handle,
                                 ctypes.byref(step), ctypes.byref(epoch)))
    if optimizer is not None:
        optimizer._pull_lrs()  # the restored rates
    return step.value, epoch.value
