"""Convolution and pooling for visioncore.functional, with torch.nn.functional names, arguments and semantics.

Sizes, strides, paddings and dilations are ints or (height, width) pairs. Inputs are [N, C, H, W] or [C, H, W].
"""
import ctypes
import numbers

import numpy as np

from ._lib import call, lib
from .functional import _op, _wrap
from .tensor import Tensor, as_tensor

__all__ = ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]


def _pair(value, name):
    """(h, w) from an int or a sequence of one or two ints."""
    if isinstance(value, numbers.Integral):
        return int(value), int(value)
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    if len(items) == 1:
        items = items * 2
    if len(items) != 2 or not all(isinstance(v, numbers.Integral) for v in items):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(items[0]), int(items[1])


def _c_pair(value, name):
    return (ctypes.c_int64 * 2)(*_pair(value, name))


def _same_padding(weight, dilation, stride):
    """PyTorch's padding='same' for stride 1: total d*(k-1) per axis, the odd element going to the bottom/right.

    Returns the symmetric padding to request and whether the first output row/column must be dropped (when a total
    is odd, both sides get the larger half and the one extra leading output is cropped)."""
    if _pair(stride, "stride") != (1, 1):
        raise ValueError("conv2d: padding='same' is not supported for strided convolutions")
    shape = weight.shape if isinstance(weight, (Tensor, np.ndarray)) else np.asarray(weight).shape
    if len(shape) != 4:
        raise ValueError(f"conv2d: weight must have 4 dimensions, got shape {tuple(shape)}")
    pads, crops = [], []
    for k, d in zip(shape[2:], _pair(dilation, "dilation")):
        total = d * (k - 1)
        pads.append((total + 1) // 2)
        crops.append(total % 2)
    return tuple(pads), tuple(crops)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution; weight [Cout, Cin/groups, kh, kw]; padding is an int, a pair, 'valid' or 'same' (stride 1)."""
    crops = (0, 0)
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            padding, crops = _same_padding(weight, dilation, stride)
        else:
            raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    post = (_c_pair(stride, "stride"), _c_pair(padding, "padding"), _c_pair(dilation, "dilation"), int(groups))
    if crops == (0, 0):
        return _op(lib.vc_conv2d, input, weight, bias, post=post)
    tensors = [None if t is None else as_tensor(t) for t in (input, weight, bias)]
    result = Tensor(call(lib.vc_conv2d, *[None if t is None else t._handle for t in tensors], *post))
    for axis, crop in zip((-2, -1), crops):
        if crop:
            result = Tensor(call(lib.vc_tensor_slice, result._handle, axis, crop, 2**62, 1))
    return _wrap(result, input, weight, bias)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution; weight [Cin, Cout/groups, kh, kw]."""
    return _op(lib.vc_conv_transpose2d, input, weight, bias,
               post=(_c_pair(stride, "stride"), _c_pair(padding, "padding"),
                     _c_pair(output_padding, "output_padding"), int(groups), _c_pair(dilation, "dilation")))


def _stride_or_default(stride):
    """None (or an empty sequence, as torch accepts) means stride = kernel_size: passed to the library as NULL."""
    if stride is None or (not isinstance(stride, numbers.Integral) and len(stride) == 0):
        return None
    return _c_pair(stride, "stride")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling; padding counts as -inf and NaN propagates. return_indices is not supported."""
    if return_indices:
        raise ValueError("max_pool2d: return_indices=True is not supported")
    return _op(lib.vc_max_pool2d, input,
               post=(_c_pair(kernel_size, "kernel_size"), _stride_or_default(stride), _c_pair(padding, "padding"),
                     _c_pair(dilation, "dilation"), 1 if ceil_mode else 0))


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling. divisor_override is not supported."""
    if divisor_override is not None:
        raise ValueError("avg_pool2d: divisor_override is not supported")
    return _op(lib.vc_avg_pool2d, input,
               post=(_c_pair(kernel_size, "kernel_size"), _stride_or_default(stride), _c_pair(padding, "padding"),
                     1 if ceil_mode else 0, 1 if count_include_pad else 0))


def adaptive_avg_pool2d(input, output_size):
    """Adaptive average pooling to output_size (an int or a pair; None in the pair keeps that input size)."""
    if isinstance(output_size, numbers.Integral):
        size = (int(output_size), int(output_size))
    else:
        size = tuple(output_size)
        if len(size) != 2:
            raise ValueError(f"adaptive_avg_pool2d: output_size must be an int or a pair, got {output_size!r}")
        if None in size:
            shape = input.shape if isinstance(input, (Tensor, np.ndarray)) else np.asarray(input).shape
            size = tuple(shape[-2 + i] if s is None else s for i, s in enumerate(size))
        size = _pair(size, "output_size")
    return _op(lib.vc_adaptive_avg_pool2d, input, post=size)
