"""VisionCore: a CPU deep-learning library for computer vision (Python bindings over libvisioncore.so).

- `visioncore.Tensor`, `visioncore.tensor(...)`: data held by the library; `.numpy()` copies it back.
- `visioncore.functional`: torch.nn.functional names (conv2d, linear, softmax, layer_norm, interpolate, ...).
- `visioncore.sum/mean/amax/.../cat/stack/split/gather/index_select/topk`: torch.* tensor functions.
- `visioncore.optim`: SGD, Adam, AdamW (torch.optim) and AdamP, SGDP (adamp), updating parameters in place.
- `visioncore.ops`: torchvision.ops (roi_align, nms, batched_nms, box_iou).
- `visioncore.image`: load/decode/encode/save/resize images, to_tensor.
- `visioncore.FaceDetector` (`visioncore.models`): EXTD face detection with the bundled official weights.
- `visioncore.create_model(name, num_classes=...)`, `list_models()`: timm-named classifiers (ResNet, ReXNet, PiT)
  that load timm's safetensors, with timm's eval transform (`model.transform(path)`).
- `visioncore.load_file/save_file/read_metadata`: safetensors, as safetensors.numpy.
- `visioncore.data`: FashionMNIST, ImageFolder, TensorDataset, a deterministic DataLoader, transforms, and the
  mixing augmentations CutMix, TimmMixup (timm's Mixup), Mixup, Cutout, VideoMix returning soft targets.
Errors raise `visioncore.VisionCoreError` with the library's message. Set VISIONCORE_LIB to use another library.
"""
from . import classification, data, functional, image, models, nn, ops, optim
from ._lib import VisionCoreError, check, lib
from ._tensor_ops import *  # noqa: F401,F403
from ._tensor_ops import __all__ as _tensor_ops_all
from .checkpoint import load_checkpoint, save_checkpoint
from .classification import Model, create_model, imagenet_class_names, list_models, resolve_data_config
from .io import load_file, read_metadata, save_file
from .models import FaceDetector
from .tensor import Tensor, as_tensor, no_grad, set_grad_enabled, tensor

__all__ = ["Tensor", "VisionCoreError", "as_tensor", "tensor", "no_grad", "set_grad_enabled", "data", "functional", "image", "models", "nn", "ops", "optim",
           "FaceDetector", "Model", "create_model", "list_models", "resolve_data_config", "imagenet_class_names",
           "set_num_threads",
           "get_num_threads", "load_file", "save_file", "read_metadata", "save_checkpoint", "load_checkpoint", "__version__"] + _tensor_ops_all

__version__ = lib.vc_version().decode()


def set_num_threads(n: int) -> None:
    """Sets the threads used by VisionCore's kernels (1...256); OpenBLAS always runs on one of them."""
    check(lib.vc_set_num_threads(int(n)))


def get_num_threads() -> int:
    """The threads VisionCore's kernels use."""
    return lib.vc_get_num_threads()
