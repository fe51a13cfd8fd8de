"""torch-level (not torch.nn.functional) tensor operations: reductions, joining, splitting and indexing.

Like visioncore.functional: numpy arrays in give numpy arrays out, Tensors in give Tensors out.
"""
import collections
import ctypes

from . import _decls
from ._lib import call, check, lib
from .tensor import Tensor, as_tensor

__all__ = ["sum", "mean", "amax", "amin", "argmax", "argmin", "var", "cat", "stack", "split", "gather",
           "index_select", "topk"]

_ALL = -(2 ** 63)  # vc_argmax's "whole tensor" axis (INT64_MIN)

topk_result = collections.namedtuple("topk_result", ["values", "indices"])


def _wrap(result, *inputs):
    if any(isinstance(x, Tensor) for x in inputs):
        return result
    return result.numpy()


def _axes(dim):
    if dim is None:
        dims = ()
    elif isinstance(dim, int):
        dims = (dim,)
    else:
        dims = tuple(int(d) for d in dim)
    return (ctypes.c_int64 * max(len(dims), 1))(*dims), len(dims)


def _reduce(op, input, dim, keepdim):
    x = as_tensor(input)
    arr, n = _axes(dim)
    return _wrap(Tensor(call(lib.vc_reduce, op, x._handle, arr, n, int(bool(keepdim)))), input)


def sum(input, dim=None, keepdim=False):
    """Sum over `dim` (an int, a tuple, or None for all); integer inputs sum into int64."""
    return _reduce(_decls.VC_REDUCE_SUM, input, dim, keepdim)


def mean(input, dim=None, keepdim=False):
    return _reduce(_decls.VC_REDUCE_MEAN, input, dim, keepdim)


def amax(input, dim=(), keepdim=False):
    """Maximum over `dim` (() or None = all); NaN propagates."""
    return _reduce(_decls.VC_REDUCE_MAX, input, dim, keepdim)


def amin(input, dim=(), keepdim=False):
    return _reduce(_decls.VC_REDUCE_MIN, input, dim, keepdim)


def argmax(input, dim=None, keepdim=False):
    """int64 index of the maximum along `dim`, or in the flattened input when dim is None."""
    x = as_tensor(input)
    return _wrap(Tensor(call(lib.vc_argmax, x._handle, _ALL if dim is None else int(dim), int(bool(keepdim)))), input)


def argmin(input, dim=None, keepdim=False):
    x = as_tensor(input)
    return _wrap(Tensor(call(lib.vc_argmin, x._handle, _ALL if dim is None else int(dim), int(bool(keepdim)))), input)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    """Variance over `dim`; correction defaults to 1 (unbiased) as torch.var; unbiased=False means 0."""
    if correction is None:
        correction = 0 if unbiased is False else 1
    x = as_tensor(input)
    arr, n = _axes(dim)
    return _wrap(Tensor(call(lib.vc_var, x._handle, arr, n, int(correction), int(bool(keepdim)))), input)


def _join(fn, tensors, dim):
    tensors = list(tensors)
    if not tensors:
        raise ValueError("expected a non-empty sequence of tensors")
    ts = [as_tensor(t) for t in tensors]
    handles = (ctypes.c_void_p * len(ts))(*[t._handle for t in ts])
    return _wrap(Tensor(call(fn, handles, len(ts), int(dim))), *tensors)


def cat(tensors, dim=0):
    """Concatenates along an existing dim (torch.cat); all tensors share a dtype."""
    return _join(lib.vc_concat, tensors, dim)


def stack(tensors, dim=0):
    """Stacks equal-shaped tensors along a new dim (torch.stack)."""
    return _join(lib.vc_stack, tensors, dim)


def split(tensor, split_size_or_sections, dim=0):
    """torch.split: pieces of an int size (the last may be smaller) or of the listed sizes; a tuple."""
    x = as_tensor(tensor)
    shape = x.shape
    if not shape:
        raise ValueError("split: cannot split a zero-dimensional tensor")
    d = dim + len(shape) if dim < 0 else dim
    if not 0 <= d < len(shape):
        raise IndexError(f"split: dim {dim} is out of range for {len(shape)} dimensions")
    if isinstance(split_size_or_sections, int):
        step = split_size_or_sections
        if step <= 0:
            raise ValueError(f"split: split size must be positive, got {step}")
        n = shape[d]
        sizes = [min(step, n - i) for i in range(0, n, step)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
    arr = (ctypes.c_int64 * max(len(sizes), 1))(*sizes)
    outs = (ctypes.c_void_p * max(len(sizes), 1))()
    check(lib.vc_split(x._handle, arr, len(sizes), int(dim), outs, len(sizes)))
    return tuple(_wrap(Tensor(outs[i]), tensor) for i in range(len(sizes)))


def gather(input, dim, index):
    """torch.gather with an int64 index of input's rank; indices must be in [0, size)."""
    x, i = as_tensor(input), as_tensor(index)
    return _wrap(Tensor(call(lib.vc_gather, x._handle, int(dim), i._handle)), input, index)


def index_select(input, dim, index):
    x, i = as_tensor(input), as_tensor(index)
    return _wrap(Tensor(call(lib.vc_index_select, x._handle, int(dim), i._handle)), input, index)


def topk(input, k, dim=-1, largest=True, sorted=True):
    """(values, int64 indices) of the k largest/smallest along dim; NaN ranks highest; ties: lower index first."""
    x = as_tensor(input)
    values, indices = ctypes.c_void_p(), ctypes.c_void_p()
    check(lib.vc_topk(x._handle, int(k), int(dim), int(bool(largest)), int(bool(sorted)),
                      ctypes.byref(values), ctypes.byref(indices)))
    v, i = Tensor(values), Tensor(indices)
    return topk_result(_wrap(v, input), _wrap(i, input))
