"""Reductions, softmax, normalization, interpolate, pad and indexing ops against small numpy references."""
import math

import numpy as np
import pytest
import scipy.special

import visioncore as vc
import visioncore.functional as F

rng = np.random.default_rng(0)


def randn(*shape):
    return rng.normal(size=shape).astype(np.float32)


# ---- numpy references (torch semantics) ----

def np_bilinear(x, oh, ow, align_corners, scale=None):
    """F.interpolate(mode='bilinear') by definition: half-pixel centres clamped at 0, or align_corners."""
    n, c, ih, iw = x.shape

    def taps(i, o, s):
        if o == i:
            src = np.arange(o, dtype=np.float64)
        elif align_corners:
            src = np.arange(o) * ((i - 1) / (o - 1) if o > 1 else 0.0)
        else:
            r = 1.0 / s if s else i / o
            src = np.maximum((np.arange(o) + 0.5) * r - 0.5, 0)
        i0 = np.minimum(np.floor(src).astype(int), i - 1)
        i1 = np.minimum(i0 + 1, i - 1)
        lam = np.clip(src - i0, 0, 1)
        return i0, i1, lam

    y0, y1, ly = taps(ih, oh, scale and scale[0])
    x0, x1, lx = taps(iw, ow, scale and scale[1])
    xd = x.astype(np.float64)
    top = xd[:, :, y0][:, :, :, x0] * (1 - lx) + xd[:, :, y0][:, :, :, x1] * lx
    bot = xd[:, :, y1][:, :, :, x0] * (1 - lx) + xd[:, :, y1][:, :, :, x1] * lx
    return top * (1 - ly)[:, None] + bot * ly[:, None]


def np_nearest(x, oh, ow, scale=None):
    ih, iw = x.shape[2:]

    def idx(i, o, s):
        if o == i:
            return np.arange(o)
        r = np.float32(1.0 / s) if s else np.float32(i) / np.float32(o)
        return np.minimum(np.floor(np.arange(o, dtype=np.float32) * r).astype(int), i - 1)

    return x[:, :, idx(ih, oh, scale and scale[0])][:, :, :, idx(iw, ow, scale and scale[1])]


def np_group_norm(x, g, w, b, eps):
    n, c = x.shape[:2]
    xg = x.astype(np.float64).reshape(n, g, -1)
    y = ((xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, keepdims=True) + eps)).reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    return y * w.reshape(shape) + b.reshape(shape)


# ---- tests ----

def test_reductions_match_numpy():
    x = randn(3, 17, 21)
    xt = np.ascontiguousarray(x.transpose(2, 0, 1))
    for dim in (None, 0, 1, (0, 2), (2, 0), -1):
        npdim = dim if dim is None or isinstance(dim, int) else tuple(dim)
        np.testing.assert_allclose(vc.sum(x, dim), x.astype(np.float64).sum(npdim), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(vc.mean(x, dim, keepdim=True), x.mean(npdim, keepdims=True), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(vc.amax(x, dim if dim is not None else ()), x.max(npdim))
        np.testing.assert_array_equal(vc.amin(x, dim), x.min(npdim))
        np.testing.assert_allclose(vc.var(x, dim), x.astype(np.float64).var(npdim, ddof=1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(vc.var(x, dim, correction=0), x.var(npdim), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vc.sum(xt, (1, 2)), xt.astype(np.float64).sum((1, 2)), rtol=1e-5, atol=1e-5)
    assert vc.argmax(x) == np.argmax(x)
    np.testing.assert_array_equal(vc.argmax(x, 1), np.argmax(x, 1))
    np.testing.assert_array_equal(vc.argmin(x, 2, keepdim=True), np.argmin(x, 2)[..., None])
    ints = np.array([[2**31 - 1, 2**31 - 1], [-3, 4]], np.int32)
    assert vc.sum(ints, 1).dtype == np.int64
    np.testing.assert_array_equal(vc.sum(ints, 1), ints.astype(np.int64).sum(1))


def test_softmax_and_log_softmax():
    for shape, dim in (((8, 1000), -1), ((2, 5, 7, 3), 1), ((4, 33), 0)):
        x = randn(*shape) * 5
        ref = scipy.special.softmax(x.astype(np.float64), axis=dim)
        np.testing.assert_allclose(F.softmax(x, dim), ref, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(F.log_softmax(x, dim=dim), scipy.special.log_softmax(x.astype(np.float64), axis=dim),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(F.softmax(x, dim).sum(dim), 1, rtol=1e-5)
    big = np.array([[1000, 1001, -1000]], np.float32)
    assert np.isfinite(F.log_softmax(big, 1)).all()


def test_batch_layer_group_norm():
    x = randn(2, 6, 5, 7)
    m, v, w, b = randn(6), np.abs(randn(6)) + 0.1, randn(6), randn(6)
    ref = (x - m[:, None, None]) / np.sqrt(v[:, None, None] + 1e-5) * w[:, None, None] + b[:, None, None]
    np.testing.assert_allclose(F.batch_norm(x, m, v, w, b), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(F.batch_norm(x, m, v), (x - m[:, None, None]) / np.sqrt(v[:, None, None] + 1e-5),
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError):
        F.batch_norm(x, m, v, training=True)
    lw, lb = randn(5, 7), randn(5, 7)
    xd = x.astype(np.float64)
    mu, var = xd.mean((2, 3), keepdims=True), xd.var((2, 3), keepdims=True)
    np.testing.assert_allclose(F.layer_norm(x, (5, 7), lw, lb, eps=1e-6), (xd - mu) / np.sqrt(var + 1e-6) * lw + lb,
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(F.layer_norm(x, 7), (xd - xd.mean(-1, keepdims=True)) / np.sqrt(xd.var(-1, keepdims=True) + 1e-5),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(F.group_norm(x, 3, w, b), np_group_norm(x, 3, w, b, 1e-5), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(F.group_norm(x, 2), np_group_norm(x, 2, np.ones(6), np.zeros(6), 1e-5), rtol=1e-4, atol=1e-5)


def test_interpolate_matches_numpy():
    x = randn(2, 3, 5, 9)
    for size in ((7, 9), (10, 18), (3, 4), (1, 1), (11, 5)):
        np.testing.assert_array_equal(F.interpolate(x, size=size), np_nearest(x, *size))
        for ac in (False, True):
            np.testing.assert_allclose(F.interpolate(x, size=size, mode="bilinear", align_corners=ac),
                                       np_bilinear(x, *size, ac), rtol=1e-5, atol=1e-5)
    for s in (2.0, 0.5, (1.7, 0.6)):
        sh, sw = s if isinstance(s, tuple) else (s, s)
        oh, ow = math.floor(5 * sh), math.floor(9 * sw)
        np.testing.assert_array_equal(F.interpolate(x, scale_factor=s), np_nearest(x, oh, ow, (sh, sw)))
        np.testing.assert_allclose(F.interpolate(x, scale_factor=s, mode="bilinear"),
                                   np_bilinear(x, oh, ow, False, (sh, sw)), rtol=1e-5, atol=1e-5)
    t = vc.tensor(x)
    assert isinstance(F.interpolate(t, size=4), vc.Tensor)


def test_pad_modes():
    x = randn(2, 3, 4, 5)
    np.testing.assert_array_equal(F.pad(x, (1, 2)), np.pad(x, ((0, 0), (0, 0), (0, 0), (1, 2))))
    np.testing.assert_array_equal(F.pad(x, (1, 2, 3, 0), value=7.5),
                                  np.pad(x, ((0, 0), (0, 0), (3, 0), (1, 2)), constant_values=7.5))
    np.testing.assert_array_equal(F.pad(x, (2, 1, 1, 3), mode="reflect"), np.pad(x, ((0, 0), (0, 0), (1, 3), (2, 1)), mode="reflect"))
    np.testing.assert_array_equal(F.pad(x, (2, 1, 1, 3), mode="replicate"), np.pad(x, ((0, 0), (0, 0), (1, 3), (2, 1)), mode="edge"))
    np.testing.assert_array_equal(F.pad(x, (-1, 2)), np.pad(x, ((0, 0),) * 3 + ((0, 2),))[..., 1:])
    ints = np.arange(6, dtype=np.uint8).reshape(2, 3)
    np.testing.assert_array_equal(F.pad(ints, (1, 1), value=9), np.pad(ints, ((0, 0), (1, 1)), constant_values=9))


def test_cat_stack_split_gather_topk():
    for dt in (np.float32, np.int32, np.int64, np.uint8):
        a, b = (np.arange(24).reshape(2, 3, 4) % 11).astype(dt), (np.arange(8).reshape(2, 1, 4)).astype(dt)
        np.testing.assert_array_equal(vc.cat([a, b], dim=1), np.concatenate([a, b], 1))
        np.testing.assert_array_equal(vc.stack([a, a], dim=-1), np.stack([a, a], -1))
        parts = vc.split(a, 3, dim=2)
        assert [p.shape for p in parts] == [(2, 3, 3), (2, 3, 1)]
        np.testing.assert_array_equal(vc.cat(parts, 2), a)
        parts = vc.split(a, [1, 2], dim=1)
        np.testing.assert_array_equal(parts[1], a[:, 1:])
        idx = np.array([[[3, 0, 1, 1]], [[2, 2, 0, 3]]], np.int64)
        np.testing.assert_array_equal(vc.gather(a, 2, idx[:, :, :2]), np.take_along_axis(a[:, :1], idx[:, :, :2], 2))
        np.testing.assert_array_equal(vc.index_select(a, 2, np.array([3, 0, 0])), a[:, :, [3, 0, 0]])
    x = randn(4, 50)
    v, i = vc.topk(x, 5)
    ref_i = np.argsort(-x, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_array_equal(v, np.take_along_axis(x, ref_i, 1))
    v, i = vc.topk(x, 3, dim=0, largest=False)
    np.testing.assert_array_equal(i, np.argsort(x, axis=0, kind="stable")[:3])


def test_errors_raise_visioncore_error():
    x = randn(2, 3)
    with pytest.raises(vc.VisionCoreError, match="out of range"):
        vc.gather(x, 1, np.array([[3]], np.int64))
    with pytest.raises(vc.VisionCoreError, match="index -1"):
        vc.index_select(x, 0, np.array([-1]))
    with pytest.raises(vc.VisionCoreError):
        vc.cat([x, randn(2, 4)], 0)
    with pytest.raises(vc.VisionCoreError):
        vc.sum(x, (0, 2))
    with pytest.raises(vc.VisionCoreError):
        vc.topk(x, 4)
    with pytest.raises(vc.VisionCoreError):
        F.softmax(x, 2)
    with pytest.raises(vc.VisionCoreError):
        F.layer_norm(x, (2,))
    with pytest.raises(vc.VisionCoreError):
        F.group_norm(randn(2, 6, 3), 4)
    with pytest.raises(vc.VisionCoreError):
        F.pad(x, (3, 3), mode="reflect")
    with pytest.raises(vc.VisionCoreError, match="align_corners"):
        F.interpolate(randn(1, 1, 4, 4), size=2, align_corners=True)
    with pytest.raises(vc.VisionCoreError):
        vc.split(x, [1, 1], 1)
    with pytest.raises(ValueError):
        F.interpolate(randn(1, 1, 4, 4))
