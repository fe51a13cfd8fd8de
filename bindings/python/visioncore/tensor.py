"""visioncore.Tensor: an owned handle to a libvisioncore tensor, convertible to and from numpy."""
import ctypes

import numpy as np

from . import _decls
from ._lib import call, check, lib

_NP_TO_VC = {np.dtype(np.float32): _decls.VC_FLOAT32, np.dtype(np.int32): _decls.VC_INT32,
             np.dtype(np.int64): _decls.VC_INT64, np.dtype(np.uint8): _decls.VC_UINT8}
_VC_TO_NP = {v: k for k, v in _NP_TO_VC.items()}


def _shape_array(shape):
    shape = tuple(int(d) for d in shape)
    return (ctypes.c_int64 * max(len(shape), 1))(*shape), len(shape)


class Tensor:
    """A tensor owned by libvisioncore. Build one with `Tensor.from_numpy(array)` or `visioncore.tensor(...)`;
    read it back with `.numpy()` (a copy)."""

    __slots__ = ("_handle",)

    def __init__(self, handle):
        if not handle:
            raise ValueError("Tensor needs a live handle; use Tensor.from_numpy")
        self._handle = handle

    @staticmethod
    def from_numpy(array) -> "Tensor":
        """Copies a numpy array (float32, int32, int64, uint8; bool becomes uint8, float64 becomes float32)."""
        a = np.asarray(array)
        if a.dtype == np.bool_:
            a = a.astype(np.uint8)
        elif a.dtype == np.float64 or a.dtype == np.float16:
            a = a.astype(np.float32)
        if a.dtype not in _NP_TO_VC:
            raise TypeError(f"unsupported dtype {a.dtype}: use float32, int32, int64 or uint8")
        if not a.flags.c_contiguous:
            a = np.ascontiguousarray(a)  # (only when needed: it turns a 0-d array into shape (1,))
        shape, ndim = _shape_array(a.shape)
        return Tensor(call(lib.vc_tensor_from_buffer, _NP_TO_VC[a.dtype], shape, ndim,
                           a.ctypes.data_as(ctypes.c_void_p), a.nbytes))

    @property
    def shape(self) -> tuple:
        ndim = ctypes.c_int32()
        check(lib.vc_tensor_ndim(self._handle, ctypes.byref(ndim)))
        buf = (ctypes.c_int64 * max(ndim.value, 1))()
        check(lib.vc_tensor_shape(self._handle, buf, ndim.value))
        return tuple(buf[i] for i in range(ndim.value))

    @property
    def dtype(self) -> np.dtype:
        d = ctypes.c_int32()
        check(lib.vc_tensor_dtype(self._handle, ctypes.byref(d)))
        return _VC_TO_NP[d.value]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        n = ctypes.c_int64()
        check(lib.vc_tensor_numel(self._handle, ctypes.byref(n)))
        return n.value

    def numpy(self) -> np.ndarray:
        """A numpy copy of the elements."""
        out = np.empty(self.shape, dtype=self.dtype)
        check(lib.vc_tensor_copy_to(self._handle, out.ctypes.data_as(ctypes.c_void_p), out.nbytes))
        return out

    def reshape(self, *shape) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = shape[0]
        arr, ndim = _shape_array(shape)
        return Tensor(call(lib.vc_tensor_reshape, self._handle, arr, ndim))

    def permute(self, *dims) -> "Tensor":
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = dims[0]
        arr, ndim = _shape_array(dims)
        return Tensor(call(lib.vc_tensor_permute, self._handle, arr, ndim))

    # autograd (torch semantics)

    @property
    def requires_grad(self) -> bool:
        """Whether gradients flow to this tensor."""
        flag = ctypes.c_int32()
        check(lib.vc_tensor_requires_grad(self._handle, ctypes.byref(flag)))
        return bool(flag.value)

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        check(lib.vc_tensor_set_requires_grad(self._handle, int(bool(value))))

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        self.requires_grad = requires_grad
        return self

    @property
    def grad(self):
        """The accumulated gradient (a Tensor), or None before any backward."""
        out = ctypes.c_void_p()
        check(lib.vc_tensor_grad(self._handle, ctypes.byref(out)))
        return Tensor(out) if out.value else None

    def zero_grad(self) -> None:
        check(lib.vc_tensor_zero_grad(self._handle))

    def backward(self, gradient=None) -> None:
        """Back-propagates into the leaves; `gradient` is needed unless the tensor has one element."""
        g = None if gradient is None else as_tensor(gradient)
        check(lib.vc_tensor_backward(self._handle, None if g is None else g._handle))

    def detach(self) -> "Tensor":
        return Tensor(call(lib.vc_tensor_detach, self._handle))

    # arithmetic (broadcasting; operands of another dtype are converted to this tensor's dtype)

    def _binary(self, op, other, swap=False):
        o = other if isinstance(other, Tensor) else Tensor.from_numpy(np.asarray(other, dtype=self.dtype))
        a, b = (o, self) if swap else (self, o)
        return Tensor(call(lib.vc_binary, op, a._handle, b._handle))

    def __add__(self, other):
        return self._binary(_decls.VC_ADD, other)

    def __radd__(self, other):
        return self._binary(_decls.VC_ADD, other, swap=True)

    def __sub__(self, other):
        return self._binary(_decls.VC_SUB, other)

    def __rsub__(self, other):
        return self._binary(_decls.VC_SUB, other, swap=True)

    def __mul__(self, other):
        return self._binary(_decls.VC_MUL, other)

    def __rmul__(self, other):
        return self._binary(_decls.VC_MUL, other, swap=True)

    def __truediv__(self, other):
        return self._binary(_decls.VC_DIV, other)

    def __rtruediv__(self, other):
        return self._binary(_decls.VC_DIV, other, swap=True)

    def __pow__(self, other):
        return self._binary(_decls.VC_POW, other)

    def __neg__(self):
        return Tensor(call(lib.vc_unary, _decls.VC_NEG, self._handle, 0.0))

    def __matmul__(self, other):
        o = as_tensor(other)
        return Tensor(call(lib.vc_matmul, self._handle, o._handle))

    def _reduce(self, op, dim, keepdim):
        dims = () if dim is None else (dim,) if isinstance(dim, int) else tuple(dim)
        arr = (ctypes.c_int64 * max(len(dims), 1))(*dims)
        return Tensor(call(lib.vc_reduce, op, self._handle, arr, len(dims), int(bool(keepdim))))

    def sum(self, dim=None, keepdim=False) -> "Tensor":
        return self._reduce(_decls.VC_REDUCE_SUM, dim, keepdim)

    def mean(self, dim=None, keepdim=False) -> "Tensor":
        return self._reduce(_decls.VC_REDUCE_MEAN, dim, keepdim)

    def item(self) -> float:
        return self.numpy().item()

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def __repr__(self) -> str:
        return f"visioncore.Tensor(shape={self.shape}, dtype={self.dtype})"

    def __del__(self):
        h = getattr(self, "_handle", None)
        if h and lib is not None:
            lib.vc_tensor_free(h)
            self._handle = None


def as_tensor(x) -> Tensor:
    """A Tensor from a Tensor (returned as is), a numpy array or anything numpy accepts."""
    return x if isinstance(x, Tensor) else Tensor.from_numpy(x)


def tensor(data, requires_grad: bool = False) -> Tensor:
    """A new Tensor holding a copy of `data` (a numpy array, nested lists or a scalar), like torch.tensor;
    Python floats become float32."""
    a = np.asarray(data)
    t = Tensor.from_numpy(a.astype(np.float32) if a.dtype == np.float64 else a)
    if requires_grad:
        t.requires_grad = True
    return t


class no_grad:
    """Context manager (and decorator) that turns gradient recording off on this thread, as torch.no_grad."""

    def __enter__(self):
        flag = ctypes.c_int32()
        check(lib.vc_is_grad_enabled(ctypes.byref(flag)))
        self._previous = flag.value
        check(lib.vc_set_grad_enabled(0))
        return self

    def __exit__(self, *exc):
        check(lib.vc_set_grad_enabled(self._previous))
        return False

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        return wrapper


def set_grad_enabled(enabled: bool) -> None:
    """Turns gradient recording on or off on this thread."""
    check(lib.vc_set_grad_enabled(int(bool(enabled))))
