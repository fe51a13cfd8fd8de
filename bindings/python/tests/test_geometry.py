"""visioncore.ops and functional.grid_sample against plain numpy references written from the documented semantics."""
import ctypes
import math

import numpy as np
import pytest

import visioncore as vc
import visioncore.functional as F
from visioncore import _decls, ops


def np_grid_sample(x, grid, align_corners):
    x, grid = x.astype(np.float64), grid.astype(np.float64)
    n, c, h, w = x.shape
    gx, gy = grid[..., 0], grid[..., 1]
    if align_corners:
        ix, iy = (gx + 1) / 2 * (w - 1), (gy + 1) / 2 * (h - 1)
    else:
        ix, iy = ((gx + 1) * w - 1) / 2, ((gy + 1) * h - 1) / 2
    x0, y0 = np.floor(ix).astype(np.int64), np.floor(iy).astype(np.int64)
    tx, ty = ix - x0, iy - y0
    out = np.zeros((n, grid.shape[1], grid.shape[2], c))
    b = np.arange(n)[:, None, None]
    for dy, wy in ((0, 1 - ty), (1, ty)):
        for dx, wx in ((0, 1 - tx), (1, tx)):
            xi, yi = x0 + dx, y0 + dy
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            vals = x.transpose(0, 2, 3, 1)[b, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
            out += (wy * wx * inside)[..., None] * vals
    return out.transpose(0, 3, 1, 2)


def np_roi_align(x, rois, out_size, scale, ratio, aligned):
    n, c, h, w = x.shape
    ph, pw = out_size
    out = np.zeros((len(rois), c, ph, pw))

    def interp(img, y, xx):
        if y < -1 or y > h or xx < -1 or xx > w:
            return np.zeros(c)
        y, xx = max(y, 0.0), max(xx, 0.0)
        yl, xl = int(y), int(xx)
        yh, xh = yl + 1, xl + 1
        if yl >= h - 1:
            yl = yh = h - 1
            y = float(yl)
        if xl >= w - 1:
            xl = xh = w - 1
            xx = float(xl)
        ly, lx = y - yl, xx - xl
        return ((1 - ly) * (1 - lx) * img[:, yl, xl] + (1 - ly) * lx * img[:, yl, xh]
                + ly * (1 - lx) * img[:, yh, xl] + ly * lx * img[:, yh, xh])

    off = 0.5 if aligned else 0.0
    for k, (bi, x1, y1, x2, y2) in enumerate(rois):
        img = x[int(bi)].astype(np.float64)
        sw, sh, ew, eh = x1 * scale - off, y1 * scale - off, x2 * scale - off, y2 * scale - off
        rw, rh = ew - sw, eh - sh
        if not aligned:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / ph, rw / pw
        gh = ratio if ratio > 0 else math.ceil(rh / ph)
        gw = ratio if ratio > 0 else math.ceil(rw / pw)
        count = max(gh * gw, 1)
        for p in range(ph):
            for q in range(pw):
                acc = np.zeros(c)
                for iy in range(gh):
                    y = sh + p * bh + (iy + 0.5) * bh / gh
                    for ix in range(gw):
                        acc += interp(img, y, sw + q * bw + (ix + 0.5) * bw / gw)
                out[k, :, p, q] = acc / count
    return out


def np_box_iou(a, b):
    area = lambda t: (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def np_nms(boxes, scores, thr, classes=None):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    iou = np_box_iou(boxes, boxes)
    classes = np.zeros(len(scores)) if classes is None else classes
    keep, dead = [], set()
    for i in order:
        if i in dead:
            continue
        keep.append(i)
        dead.update(j for j in order if classes[j] == classes[i] and iou[i, j] > thr)
    return np.array(keep, dtype=np.int64)


def random_boxes(rng, k, extent):
    xy = rng.uniform(-0.2 * extent, extent, size=(k, 2))
    wh = rng.uniform(0, 0.8 * extent, size=(k, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(np.float32)


@pytest.mark.parametrize("align_corners", [False, True])
def test_grid_sample_matches_numpy(align_corners):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 7, 9)).astype(np.float32)
    grid = rng.uniform(-1.3, 1.3, size=(2, 5, 4, 2)).astype(np.float32)
    y = F.grid_sample(x, grid, align_corners=align_corners)
    assert y.shape == (2, 3, 5, 4) and y.dtype == np.float32
    np.testing.assert_allclose(y, np_grid_sample(x, grid, align_corners), atol=1e-5)


def test_grid_sample_defaults_and_modes():
    x = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)
    grid = np.array([[[[-1, -1], [1, 1], [0, 0]]]], np.float32)
    np.testing.assert_allclose(F.grid_sample(x, grid), np_grid_sample(x, grid, False), atol=1e-6)
    np.testing.assert_allclose(F.grid_sample(vc.tensor(x), grid, align_corners=True).numpy(), [[[[0, 11, 5.5]]]])
    with pytest.raises(ValueError):
        F.grid_sample(x, grid, mode="nearest")
    with pytest.raises(ValueError):
        F.grid_sample(x, grid, padding_mode="border")
    with pytest.raises(vc.VisionCoreError, match="grid"):
        F.grid_sample(x, np.zeros((2, 1, 1, 2), np.float32))


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("out_size,scale,ratio", [((3, 3), 0.5, -1), ((2, 4), 1.0, 2), ((5, 5), 0.25, -1)])
def test_roi_align_matches_numpy(aligned, out_size, scale, ratio):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 11, 13)).astype(np.float32)
    boxes = random_boxes(rng, 8, 30 if scale < 1 else 14)
    rois = np.concatenate([rng.integers(0, 2, size=(8, 1)).astype(np.float32), boxes], axis=1)
    y = ops.roi_align(x, rois, out_size, spatial_scale=scale, sampling_ratio=ratio, aligned=aligned)
    np.testing.assert_allclose(y, np_roi_align(x, rois, out_size, scale, ratio, aligned), atol=1e-5)


def test_roi_align_list_of_boxes_and_errors():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 2, 8, 8)).astype(np.float32)
    b0, b1 = random_boxes(rng, 3, 8), random_boxes(rng, 2, 8)
    rois = np.concatenate([np.concatenate([np.zeros((3, 1)), b0], 1), np.concatenate([np.ones((2, 1)), b1], 1)]).astype(np.float32)
    np.testing.assert_allclose(ops.roi_align(x, [b0, b1], 2), ops.roi_align(x, rois, (2, 2)))
    with pytest.raises(vc.VisionCoreError, match="batch index"):
        ops.roi_align(x, np.array([[2, 0, 0, 1, 1]], np.float32), 2)
    with pytest.raises(vc.VisionCoreError):
        ops.roi_align(x, np.zeros((1, 4), np.float32), 2)
    with pytest.raises(vc.VisionCoreError):
        ops.roi_align(x, rois, 0)
    with pytest.raises(ValueError):
        ops.roi_align(x, [np.zeros((2, 5), np.float32)], 2)


def test_box_iou_matches_numpy():
    rng = np.random.default_rng(3)
    a, b = random_boxes(rng, 6, 10), random_boxes(rng, 4, 10)
    np.testing.assert_allclose(ops.box_iou(a, b), np_box_iou(a, b), rtol=1e-6, atol=1e-7)
    iou = ops.box_iou(a, a)
    np.testing.assert_allclose(np.diag(iou), 1, rtol=1e-6)
    np.testing.assert_array_equal(iou, iou.T)
    assert ops.box_iou(a, np.zeros((0, 4), np.float32)).shape == (6, 0)


def test_nms_and_batched_nms_match_numpy():
    rng = np.random.default_rng(4)
    for trial in range(10):
        n = 60
        centres = rng.integers(0, 4, size=n) * 8.0
        xy = np.stack([centres, np.zeros(n)], 1) + rng.uniform(0, 3, size=(n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(4, 7, size=(n, 2))], 1).astype(np.float32)
        scores = (rng.integers(0, 10, size=n) / 10).astype(np.float32)  # many ties
        classes = rng.integers(0, 3, size=n)
        for thr in (0.2, 0.5, 0.8):
            keep = ops.nms(boxes, scores, thr)
            assert keep.dtype == np.int64
            np.testing.assert_array_equal(keep, np_nms(boxes, scores, thr))
            np.testing.assert_array_equal(ops.batched_nms(boxes, scores, classes, thr), np_nms(boxes, scores, thr, classes))


def test_nms_errors_and_null_handles():
    b = np.zeros((3, 4), np.float32)
    with pytest.raises(vc.VisionCoreError, match="scores"):
        ops.nms(b, np.zeros(2, np.float32), 0.5)
    with pytest.raises(vc.VisionCoreError):
        ops.batched_nms(b, np.zeros(3, np.float32), np.zeros(4, np.int64), 0.5)
    with pytest.raises(vc.VisionCoreError, match="int64 or int32"):
        ops.batched_nms(b, np.zeros(3, np.float32), vc.tensor(np.zeros(3, np.float32)), 0.5)
    assert ops.nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).shape == (0,)
    out = ctypes.c_void_p()
    assert vc.lib.vc_nms(None, None, 0.5, ctypes.byref(out)) == _decls.VC_INVALID_ARGUMENT and not out.value
    assert b"NULL" in vc.lib.vc_last_error_message()
    t = vc.tensor(b)
    assert vc.lib.vc_box_iou(t._handle, t._handle, None) == _decls.VC_INVALID_ARGUMENT
    assert vc.lib.vc_grid_sample(t._handle, None, False, ctypes.byref(out)) == _decls.VC_INVALID_ARGUMENT
    assert vc.lib.vc_roi_align(None, t._handle, 2, 2, 1.0, -1, False, ctypes.byref(out)) == _decls.VC_INVALID_ARGUMENT
