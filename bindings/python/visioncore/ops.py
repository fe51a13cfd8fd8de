"""visioncore.ops: detection operators with the names, arguments and semantics of torchvision.ops.

Inputs are numpy arrays (or anything numpy accepts) or visioncore Tensors; results are numpy arrays when no input
was a Tensor, Tensors otherwise. Boxes are (x1, y1, x2, y2) float32 rows.
"""
import numpy as np

from ._lib import call, lib
from .tensor import Tensor, as_tensor

__all__ = ["roi_align", "nms", "batched_nms", "box_iou"]


def _float32(x):
    return x if isinstance(x, Tensor) else Tensor.from_numpy(np.asarray(x, dtype=np.float32))


def _result(handle, *inputs):
    t = Tensor(handle)
    return t if any(isinstance(x, Tensor) for x in inputs) else t.numpy()


def _rois(boxes):
    """[K, 5] rois from a [K, 5] array/Tensor or a list of [Li, 4] per-image arrays (batch index = list position)."""
    if isinstance(boxes, (list, tuple)):
        parts = []
        for i, b in enumerate(boxes):
            b = np.asarray(b.numpy() if isinstance(b, Tensor) else b, dtype=np.float32)
            if b.ndim != 2 or b.shape[1] != 4:
                raise ValueError(f"roi_align: boxes[{i}] must have shape [L, 4], got {b.shape}")
            parts.append(np.concatenate([np.full((b.shape[0], 1), i, np.float32), b], axis=1))
        return Tensor.from_numpy(np.concatenate(parts, axis=0) if parts else np.zeros((0, 5), np.float32))
    return _float32(boxes)


def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoIAlign of `input` [N, C, H, W] over `boxes` -> [K, C, oh, ow] (torchvision.ops.roi_align).

    boxes: a [K, 5] array of (batch_index, x1, y1, x2, y2), or a list of [Li, 4] arrays, one per image.
    output_size: an int or an (oh, ow) pair. sampling_ratio <= 0 uses ceil(box size / output size) samples per
    bin and axis. aligned=True shifts boxes by -0.5 pixel (pixel-exact); False keeps the legacy behaviour.
    """
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    oh, ow = (int(v) for v in output_size)
    x, r = as_tensor(input), _rois(boxes)
    handle = call(lib.vc_roi_align, x._handle, r._handle, oh, ow, float(spatial_scale), int(sampling_ratio),
                  bool(aligned))
    return _result(handle, input, *(boxes if isinstance(boxes, (list, tuple)) else [boxes]))


def nms(boxes, scores, iou_threshold):
    """Indices (int64) of the boxes kept by non-maximum suppression, by decreasing score (torchvision.ops.nms).

    A box is dropped when its IoU with a kept, higher-scoring box is greater than iou_threshold; equal scores
    keep index order and NaN scores come first.
    """
    b, s = _float32(boxes), _float32(scores)
    return _result(call(lib.vc_nms, b._handle, s._handle, float(iou_threshold)), boxes, scores)


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS done independently per category `idxs` (int [N]); kept indices of all categories by decreasing score
    (torchvision.ops.batched_nms)."""
    b, s = _float32(boxes), _float32(scores)
    i = idxs if isinstance(idxs, Tensor) else Tensor.from_numpy(np.asarray(idxs, dtype=np.int64))
    return _result(call(lib.vc_batched_nms, b._handle, s._handle, i._handle, float(iou_threshold)), boxes, scores, idxs)


def box_iou(boxes1, boxes2):
    """Pairwise IoU [N, M] of boxes1 [N, 4] and boxes2 [M, 4] (torchvision.ops.box_iou)."""
    a, b = _float32(boxes1), _float32(boxes2)
    return _result(call(lib.vc_box_iou, a._handle, b._handle), boxes1, boxes2)
