"""VisionCore: a CPU deep-learning library for computer vision (Python bindings over libvisioncore.so)."""
from . import functional
from . import image, models, ops
from .io import load_file, read_metadata, save_file
from .models import FaceDetector
from ._lib import VisionCoreError, lib
from .tensor import Tensor, as_tensor, tensor
from ._tensor_ops import *  # noqa: F401,F403  (sum, mean, amax, amin, argmax, argmin, var, cat, stack, split, gather, index_select, topk)
from ._tensor_ops import __all__ as _tensor_ops_all

__all__ = ["Tensor", "VisionCoreError", "as_tensor", "tensor", "functional", "set_num_threads", "get_num_threads", "load_file", "save_file", "read_metadata",
           "__version__"] + _tensor_ops_all
__all__ += ["image", "models", "ops", "FaceDetector"]

__version__ = lib.vc_version().decode()


def set_num_threads(n: int) -> None:
    """Sets the threads used by VisionCore's kernels and OpenBLAS."""
    from ._lib import check
    check(lib.vc_set_num_threads(int(n)))


def get_num_threads() -> int:
    return lib.vc_get_num_threads()
