"""Softmax, normalization, interpolation and padding with torch.nn.functional's names and semantics."""
import ctypes
import math

from . import _decls
from ._lib import call, lib
from .functional import _op, _wrap
from .tensor import Tensor, as_tensor

__all__ = ["softmax", "log_softmax", "batch_norm", "layer_norm", "group_norm", "interpolate", "pad"]


def _int64_array(values):
    values = [int(v) for v in values]
    return (ctypes.c_int64 * max(len(values), 1))(*values), len(values)


def softmax(input, dim, _stacklevel=3, dtype=None):
    """Softmax along `dim` (required, as torch recommends). float32 only."""
    if dim is None:
        raise ValueError("softmax: dim is required")
    return _op(lib.vc_softmax, input, post=(int(dim),))


def log_softmax(input, dim, _stacklevel=3, dtype=None):
    """log(softmax(input)) along `dim`, computed stably."""
    if dim is None:
        raise ValueError("log_softmax: dim is required")
    return _op(lib.vc_log_softmax, input, post=(int(dim),))


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Inference batch norm with running statistics; training mode is not implemented yet."""
    if training:
        raise ValueError("batch_norm: training=True is not supported yet (inference only)")
    return _op(lib.vc_batch_norm, input, running_mean, running_var, weight, bias, post=(float(eps),))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer norm over the trailing dims `normalized_shape` (an int or a sequence)."""
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    arr, n = _int64_array(normalized_shape)
    x = as_tensor(input)
    w = None if weight is None else as_tensor(weight)
    b = None if bias is None else as_tensor(bias)
    handle = call(lib.vc_layer_norm, x._handle, arr, n, None if w is None else w._handle,
                  None if b is None else b._handle, float(eps))
    return _wrap(Tensor(handle), input, weight, bias)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group norm of (N, C, ...) with `num_groups` dividing C; weight and bias are per channel."""
    x = as_tensor(input)
    w = None if weight is None else as_tensor(weight)
    b = None if bias is None else as_tensor(bias)
    handle = call(lib.vc_group_norm, x._handle, int(num_groups), None if w is None else w._handle,
                  None if b is None else b._handle, float(eps))
    return _wrap(Tensor(handle), input, weight, bias)


def _pair(v, name):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"interpolate: {name} must have 2 entries for a 4-D input, got {v!r}")
        return tuple(v)
    return (v, v)


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resizes (N, C, H, W) input like torch's F.interpolate; modes 'nearest' and 'bilinear'."""
    modes = {"nearest": _decls.VC_INTERP_NEAREST, "bilinear": _decls.VC_INTERP_BILINEAR}
    if mode not in modes:
        raise ValueError(f"interpolate: mode must be 'nearest' or 'bilinear', got {mode!r}")
    if antialias:
        raise ValueError("interpolate: antialias is not supported")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    x = as_tensor(input)
    oh = ow = 0
    sh = sw = 0.0
    if size is not None:
        oh, ow = (int(s) for s in _pair(size, "size"))
        if oh <= 0 or ow <= 0:
            raise ValueError(f"interpolate: size must be positive, got {size!r}")
    else:
        sh, sw = (float(s) for s in _pair(scale_factor, "scale_factor"))
        if recompute_scale_factor:
            # torch then derives the ratio from the computed output size instead of 1/scale.
            shape = x.shape
            if len(shape) != 4:
                raise ValueError(f"interpolate: input must be 4-D (N, C, H, W), got shape {shape}")
            oh, ow = math.floor(shape[2] * sh), math.floor(shape[3] * sw)
            sh = sw = 0.0
    ac = -1 if align_corners is None else int(bool(align_corners))
    return _op(lib.vc_interpolate, input, post=(oh, ow, sh, sw, modes[mode], ac))


def pad(input, pad, mode="constant", value=None):
    """Pads the trailing dims; `pad` lists (left, right, top, bottom, ...) from the last dim, negatives crop."""
    modes = {"constant": _decls.VC_PAD_CONSTANT, "reflect": _decls.VC_PAD_REFLECT,
             "replicate": _decls.VC_PAD_REPLICATE}
    if mode not in modes:
        raise ValueError(f"pad: mode must be 'constant', 'reflect' or 'replicate', got {mode!r}")
    if value is not None and mode != "constant" and value != 0:
        raise ValueError(f"pad: value is only used with mode 'constant', not {mode!r}")
    arr, n = _int64_array(pad)
    return _op(lib.vc_pad, input, post=(arr, n, modes[mode], float(0.0 if value is None else value)))
