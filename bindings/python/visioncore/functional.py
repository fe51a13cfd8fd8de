"""visioncore.functional: operations with the names, arguments and semantics of torch.nn.functional.

Every function takes Tensors or numpy arrays and returns a numpy array when its inputs were numpy arrays, a
Tensor otherwise.
"""
from . import _decls
from ._lib import call, lib
from .tensor import Tensor, as_tensor

__all__ = ["relu", "relu6", "leaky_relu", "silu", "gelu", "sigmoid", "tanh", "hardswish", "hardsigmoid", "prelu",
           "linear", "matmul", "softmax", "log_softmax", "batch_norm", "layer_norm", "group_norm", "interpolate",
           "pad",
           "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d"]


def _wrap(result, *inputs):
    """Numpy in, numpy out: a Tensor result is converted when no input was a Tensor."""
    if any(isinstance(x, Tensor) for x in inputs):
        return result
    return result.numpy()


def _op(fn, *inputs, extra=(), post=()):
    """Calls `fn(*handles, *extra, *post, &out)` keeping the converted inputs alive during the call."""
    tensors = [None if x is None else as_tensor(x) for x in inputs]
    handles = [None if t is None else t._handle for t in tensors]
    return _wrap(Tensor(call(fn, *extra, *handles, *post)), *inputs)


def _unary(op, x, parameter=0.0):
    return _op(lib.vc_unary, x, extra=(op,), post=(parameter,))


def relu(input, inplace=False):
    return _unary(_decls.VC_RELU, input)


def relu6(input, inplace=False):
    return _unary(_decls.VC_RELU6, input)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    return _unary(_decls.VC_LEAKY_RELU, input, negative_slope)


def silu(input, inplace=False):
    return _unary(_decls.VC_SILU, input)


def gelu(input, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return _unary(_decls.VC_GELU_ERF if approximate == "none" else _decls.VC_GELU_TANH, input)


def sigmoid(input):
    return _unary(_decls.VC_SIGMOID, input)


def tanh(input):
    return _unary(_decls.VC_TANH, input)


def hardswish(input, inplace=False):
    return _unary(_decls.VC_HARD_SWISH, input)


def hardsigmoid(input, inplace=False):
    return _unary(_decls.VC_HARD_SIGMOID, input)


def prelu(input, weight):
    return _op(lib.vc_prelu, input, weight)


def linear(input, weight, bias=None):
    return _op(lib.vc_linear, input, weight, bias)


def matmul(input, other):
    return _op(lib.vc_matmul, input, other)


from ._f_norm import *  # noqa: E402,F401,F403  (softmax, normalization, interpolate, pad)
from . import _f_geo  # noqa: E402
from ._f_geo import *  # noqa
__all__ += _f_geo.__all__

# Convolution and pooling live in their own module, which needs _op and _wrap above: import it last.
from ._f_conv import *  # noqa: E402,F401,F403
