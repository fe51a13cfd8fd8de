"""visioncore.nn.functional: torch.nn.functional's ops (re-exported from visioncore.functional) and losses.

Losses are differentiable: `loss = cross_entropy(logits, target); loss.backward()` reaches the logits' leaves.
"""
from .. import _decls
from .._lib import call, lib
from ..functional import *  # noqa: F401,F403
from ..functional import __all__ as _functional_all
from ..tensor import Tensor, as_tensor

__all__ = list(_functional_all) + ["cross_entropy", "mse_loss", "l1_loss", "smooth_l1_loss",
                                   "binary_cross_entropy_with_logits"]

_REDUCTIONS = {"none": _decls.VC_REDUCTION_NONE, "mean": _decls.VC_REDUCTION_MEAN, "sum": _decls.VC_REDUCTION_SUM}


def _loss(kind, input, target, param=0.0, ignore_index=-100, reduction="mean"):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")
    x, t = as_tensor(input), as_tensor(target)
    result = Tensor(call(lib.vc_loss, kind, x._handle, t._handle, float(param), int(ignore_index), _REDUCTIONS[reduction]))
    return result if isinstance(input, Tensor) or isinstance(target, Tensor) else result.numpy()


def cross_entropy(input, target, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Class indices (int64) or class probabilities (float32, the logits' shape) as target."""
    return _loss(_decls.VC_LOSS_CROSS_ENTROPY, input, target, label_smoothing, ignore_index, reduction)


def mse_loss(input, target, reduction="mean"):
    return _loss(_decls.VC_LOSS_MSE, input, target, reduction=reduction)


def l1_loss(input, target, reduction="mean"):
    return _loss(_decls.VC_LOSS_L1, input, target, reduction=reduction)


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    return _loss(_decls.VC_LOSS_SMOOTH_L1, input, target, beta, reduction=reduction)


def binary_cross_entropy_with_logits(input, target, reduction="mean"):
    return _loss(_decls.VC_LOSS_BCE_WITH_LOGITS, input, target, reduction=reduction)
