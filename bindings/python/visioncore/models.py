"""visioncore.models: pretrained detectors and the classifier registry. FaceDetector runs EXTD
(clovaai/EXTD_Pytorch) with the official weights bundled in data/weights/extd (MIT licence); create_model and
list_models (visioncore.classification) build timm-named classifiers."""
import ctypes
import os

import numpy as np

from ._lib import call, check, lib
from .classification import Model, create_model, list_models
from .image import load_image
from .tensor import Tensor, as_tensor

__all__ = ["FaceDetector", "Model", "create_model", "list_models"]


class FaceDetector:
    """EXTD face detector: model "extd_32", "extd_48" or "extd_64"; weights a safetensors file with the official
    key names, or None for the bundled weights (found above libvisioncore.so, $VISIONCORE_EXTD_WEIGHTS or the
    current directory). Loading weights of another variant raises VisionCoreError naming the bad keys."""

    def __init__(self, model="extd_32", weights=None):
        self._handle = None
        h = ctypes.c_void_p()
        path = None if weights is None else os.fsencode(weights)
        check(lib.vc_face_detector_create(str(model).encode(), path, ctypes.byref(h)))
        self._handle = h
        self.model = str(model)

    def detect(self, image, score_threshold=0.5, scale=None) -> np.ndarray:
        """Faces in `image` (a path, or a uint8 [H, W, 3] RGB array) as a float32 [K, 5] array of rows
        (x1, y1, x2, y2, score) in the image's pixels, best first. scale None follows the official demo
        (sqrt(1700*1200/(H*W))); 1.0 runs the network at the image's own resolution."""
        if isinstance(image, (str, bytes, os.PathLike)):
            image = load_image(image, channels=3)
        if scale is not None and not scale > 0:
            raise ValueError(f"FaceDetector.detect: scale must be positive (or None), got {scale!r}")
        t = image if isinstance(image, Tensor) else as_tensor(np.ascontiguousarray(image))
        out = call(lib.vc_face_detector_detect, self._handle, t._handle, float(score_threshold),
                   0.0 if scale is None else float(scale))
        return Tensor(out).numpy().reshape(-1, 5)

    def __del__(self):
        if getattr(self, "_handle", None):
            lib.vc_face_detector_free(self._handle)
            self._handle = None

    def __repr__(self):
        return f"FaceDetector(model={self.model!r})"
