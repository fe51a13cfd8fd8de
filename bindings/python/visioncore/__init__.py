"""VisionCore: a CPU deep-learning library for computer vision (Python bindings over libvisioncore.so)."""
from . import functional
from . import image, ops
from .io import load_file, read_metadata, save_file
from ._lib import VisionCoreError, lib
from .tensor import Tensor, as_tensor, tensor

__all__ = ["Tensor", "VisionCoreError", "as_tensor", "tensor", "functional", "set_num_threads", "get_num_threads", "load_file", "save_file", "read_metadata",
           "__version__"]
__all__ += ["image", "ops"]

__version__ = lib.vc_version().decode()


def set_num_threads(n: int) -> None:
    """Sets the threads used by VisionCore's kernels and OpenBLAS."""
    from ._lib import check
    check(lib.vc_set_num_threads(int(n)))


def get_num_threads() -> int:
    return lib.vc_get_num_threads()
