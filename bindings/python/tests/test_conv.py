"""Convolution and pooling through the Python bindings, against small numpy / scipy references (no torch)."""
import math

import numpy as np
import pytest
import scipy.signal

import visioncore as vc
import visioncore.functional as F


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ---- numpy references (float64) ----

def conv2d_ref(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, pad_hw=None):
    """Cross-correlation by one einsum per kernel tap; pad_hw = ((top, bottom), (left, right)) overrides padding."""
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    if pad_hw is None:
        ph, pw = pair(padding)
        pad_hw = ((ph, ph), (pw, pw))
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0)) + tuple(pad_hw))
    n, cin, h, wd = x.shape
    cout, cg, kh, kw = w.shape
    ho, wo = (h - dh * (kh - 1) - 1) // sh + 1, (wd - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, cout, ho, wo))
    og = cout // groups
    for g in range(groups):
        xg, wg = x[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og].astype(np.float64)
        for ky in range(kh):
            for kx in range(kw):
                patch = xg[:, :, ky * dh: ky * dh + sh * (ho - 1) + 1: sh, kx * dw: kx * dw + sw * (wo - 1) + 1: sw]
                out[:, g * og:(g + 1) * og] += np.einsum("nchw,oc->nohw", patch, wg[:, :, ky, kx])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def conv_transpose2d_ref(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Every input pixel scatters kernel-weighted copies into a full-size output, which is then cropped."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = pair(stride), pair(padding), pair(output_padding), pair(dilation)
    n, cin, h, wd = x.shape
    _, og, kh, kw = w.shape
    ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    wo = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    full = np.zeros((n, og * groups, (h - 1) * sh + dh * (kh - 1) + 1 + oph, (wd - 1) * sw + dw * (kw - 1) + 1 + opw))
    cg = cin // groups
    for g in range(groups):
        xg, wg = x[:, g * cg:(g + 1) * cg].astype(np.float64), w[g * cg:(g + 1) * cg].astype(np.float64)
        for ky in range(kh):
            for kx in range(kw):
                full[:, g * og:(g + 1) * og, ky * dh: ky * dh + sh * (h - 1) + 1: sh,
                     kx * dw: kx * dw + sw * (wd - 1) + 1: sw] += np.einsum("nchw,co->nohw", xg, wg[:, :, ky, kx])
    out = full[:, :, ph:ph + ho, pw:pw + wo]
    if b is not None:
        out = out + b.reshape(1, -1, 1, 1)
    return out


def pool_out(size, k, s, p, d, ceil):
    n = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)
    o = n // s + 1
    if ceil and (o - 1) * s >= size + p:
        o -= 1
    return o


def max_pool2d_ref(x, k, s=None, p=0, d=1, ceil=False):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = pair(k), pair(s if s is not None else k), pair(p), pair(d)
    n, c, h, w = x.shape
    ho, wo = pool_out(h, kh, sh, ph, dh, ceil), pool_out(w, kw, sw, pw, dw, ceil)
    out = np.full((n, c, ho, wo), -np.inf)
    for oy in range(ho):
        for ox in range(wo):
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * sh - ph + ky * dh, ox * sw - pw + kx * dw
                    if 0 <= iy < h and 0 <= ix < w:
                        out[:, :, oy, ox] = np.maximum(out[:, :, oy, ox], x[:, :, iy, ix])  # NaN propagates
    return out


def avg_pool2d_ref(x, k, s=None, p=0, ceil=False, count_include_pad=True):
    (kh, kw), (sh, sw), (ph, pw) = pair(k), pair(s if s is not None else k), pair(p)
    n, c, h, w = x.shape
    ho, wo = pool_out(h, kh, sh, ph, 1, ceil), pool_out(w, kw, sw, pw, 1, ceil)
    out = np.zeros((n, c, ho, wo))
    for oy in range(ho):
        for ox in range(wo):
            y0, x0 = oy * sh - ph, ox * sw - pw
            y1, x1 = min(y0 + kh, h + ph), min(x0 + kw, w + pw)
            window = x[:, :, max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)].astype(np.float64)
            div = (y1 - y0) * (x1 - x0) if count_include_pad else window.shape[2] * window.shape[3]
            out[:, :, oy, ox] = window.sum(axis=(2, 3)) / div
    return out


def adaptive_avg_pool2d_ref(x, size):
    ho, wo = pair(size)
    h, w = x.shape[-2:]
    out = np.zeros(x.shape[:-2] + (ho, wo))
    for oy in range(ho):
        for ox in range(wo):
            y0, y1 = oy * h // ho, math.ceil((oy + 1) * h / ho)
            x0, x1 = ox * w // wo, math.ceil((ox + 1) * w / wo)
            out[..., oy, ox] = x[..., y0:y1, x0:x1].astype(np.float64).mean(axis=(-2, -1))
    return out


def close(a, b):
    np.testing.assert_allclose(np.asarray(a, np.float64), b, rtol=1e-5, atol=1e-5)


rng = np.random.default_rng(0)


def randn(*shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---- tests ----

@pytest.mark.parametrize("n,cin,cout,h,w,k,stride,padding,dilation,groups", [
    (1, 3, 5, 7, 9, 3, 1, 0, 1, 1),
    (3, 3, 5, 7, 9, 3, 2, 1, 1, 1),
    (2, 4, 6, 7, 9, (3, 5), (2, 1), (2, 1), (2, 1), 2),
    (1, 5, 3, 7, 9, 1, 1, 0, 1, 1),
    (3, 5, 5, 7, 9, 3, 1, 1, 1, 5),
    (1, 3, 3, 12, 19, 3, 2, 2, 2, 3),
    (1, 3, 6, 8, 8, 5, 1, 2, 1, 3),
])
def test_conv2d_matches_numpy(n, cin, cout, h, w, k, stride, padding, dilation, groups):
    kh, kw = pair(k)
    x, wt, b = randn(n, cin, h, w), randn(cout, cin // groups, kh, kw), randn(cout)
    y = F.conv2d(x, wt, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert isinstance(y, np.ndarray)
    close(y, conv2d_ref(x, wt, b, stride, padding, dilation, groups))


def test_conv2d_single_channel_matches_scipy_correlate():
    x, wt = randn(1, 1, 11, 13), randn(1, 1, 4, 3)
    close(F.conv2d(x, wt), scipy.signal.correlate(x[0, 0].astype(np.float64), wt[0, 0].astype(np.float64), mode="valid")[None, None])
    full = scipy.signal.correlate(np.pad(x[0, 0], 2).astype(np.float64), wt[0, 0].astype(np.float64), mode="valid")
    close(F.conv2d(x, wt, padding=2), full[None, None])


def test_conv2d_string_padding_and_tensor_inputs():
    x, w_odd, w_even = randn(2, 3, 7, 9), randn(4, 3, 3, 3), randn(4, 3, 4, 2)
    close(F.conv2d(x, w_odd, padding="valid"), conv2d_ref(x, w_odd))
    close(F.conv2d(x, w_odd, padding="same"), conv2d_ref(x, w_odd, padding=1))
    # Even kernels: total padding k - 1 is odd, the extra row/column goes to the bottom/right (as PyTorch).
    y = F.conv2d(x, w_even, padding="same")
    assert y.shape == (2, 4, 7, 9)
    close(y, conv2d_ref(x, w_even, pad_hw=((1, 2), (0, 1))))
    y = F.conv2d(x, w_even, padding="same", dilation=(1, 2))
    close(y, conv2d_ref(x, w_even, dilation=(1, 2), pad_hw=((1, 2), (1, 1))))
    t = F.conv2d(vc.tensor(x), vc.tensor(w_even), padding="same")
    assert isinstance(t, vc.Tensor)
    close(t.numpy(), conv2d_ref(x, w_even, pad_hw=((1, 2), (0, 1))))
    with pytest.raises(ValueError):
        F.conv2d(x, w_odd, padding="same", stride=2)
    with pytest.raises(ValueError):
        F.conv2d(x, w_odd, padding="full")


def test_conv2d_unbatched_and_non_contiguous_numpy():
    x = randn(2, 9, 3, 7).transpose(0, 2, 1, 3)  # a non-contiguous numpy view
    wt = randn(4, 3, 3, 3)
    close(F.conv2d(x, wt, padding=1), conv2d_ref(np.ascontiguousarray(x), wt, padding=1))
    close(F.conv2d(x[1], wt, padding=1), conv2d_ref(np.ascontiguousarray(x[1:2]), wt, padding=1)[0])


@pytest.mark.parametrize("n,cin,cout,h,w,k,stride,padding,output_padding,groups,dilation", [
    (1, 4, 6, 7, 9, 3, 1, 0, 0, 1, 1),
    (3, 4, 6, 7, 9, 3, 2, 1, 1, 1, 1),
    (1, 4, 2, 5, 6, 4, 2, 1, 0, 1, 1),
    (2, 4, 6, 7, 9, (3, 2), (3, 2), (1, 0), (2, 1), 2, (1, 2)),
    (1, 3, 3, 6, 5, 3, 2, 1, (1, 0), 3, 1),
])
def test_conv_transpose2d_matches_numpy(n, cin, cout, h, w, k, stride, padding, output_padding, groups, dilation):
    kh, kw = pair(k)
    x, wt, b = randn(n, cin, h, w), randn(cin, cout // groups, kh, kw), randn(cout)
    y = F.conv_transpose2d(x, wt, b, stride=stride, padding=padding, output_padding=output_padding,
                           groups=groups, dilation=dilation)
    close(y, conv_transpose2d_ref(x, wt, b, stride, padding, output_padding, groups, dilation))


@pytest.mark.parametrize("shape,k,s,p,d,ceil", [
    ((1, 3, 7, 9), 3, None, 0, 1, False),
    ((2, 3, 7, 9), 3, 2, 1, 1, True),
    ((2, 3, 8, 11), (2, 3), 2, 0, 1, True),
    ((1, 2, 9, 7), (3, 2), 3, 1, 1, True),
    ((1, 2, 2, 2), 3, 2, 0, 1, True),
    ((2, 3, 10, 12), (2, 3), (2, 1), 1, (3, 2), True),
    ((1, 1, 40, 41), 4, 4, (2, 1), 1, True),
])
def test_pooling_matches_numpy(shape, k, s, p, d, ceil):
    x = randn(*shape)
    close(F.max_pool2d(x, k, s, p, d, ceil_mode=ceil), max_pool2d_ref(x, k, s, p, d, ceil))
    if d == 1:
        for include in (True, False):
            close(F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=include),
                  avg_pool2d_ref(x, k, s, p, ceil, include))


def test_max_pool_nan_and_stride_defaults():
    x = np.full((1, 1, 4, 4), -5, np.float32)
    x[0, 0, 1, 1] = np.nan
    y = F.max_pool2d(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and (y.ravel()[1:] == -5).all()
    assert F.max_pool2d(x, 2, stride=[]).shape == (1, 1, 2, 2)
    assert F.avg_pool2d(x[0], (2, 1)).shape == (1, 2, 4)


@pytest.mark.parametrize("size", [1, (1, 1), (3, 4), (5, 2), (7, 9), (14, 20), (None, 3)])
def test_adaptive_avg_pool_matches_numpy(size):
    x = randn(2, 3, 7, 9)
    expected = adaptive_avg_pool2d_ref(x, (7 if size[0] is None else size[0], size[1]) if isinstance(size, tuple) else size)
    close(F.adaptive_avg_pool2d(x, size), expected)
    close(F.adaptive_avg_pool2d(vc.tensor(x[0]), size).numpy(), expected[0])


def test_errors():
    x = np.zeros((1, 4, 6, 6), np.float32)
    with pytest.raises(vc.VisionCoreError, match="groups"):
        F.conv2d(x, np.zeros((2, 4, 3, 3), np.float32), groups=3)
    with pytest.raises(vc.VisionCoreError, match="input channels"):
        F.conv2d(x, np.zeros((2, 3, 3, 3), np.float32))
    with pytest.raises(vc.VisionCoreError, match="larger than the padded input"):
        F.conv2d(x, np.zeros((2, 4, 7, 7), np.float32))
    with pytest.raises(vc.VisionCoreError, match="stride"):
        F.conv2d(x, np.zeros((2, 4, 3, 3), np.float32), stride=0)
    with pytest.raises(vc.VisionCoreError, match="padding"):
        F.conv2d(x, np.zeros((2, 4, 3, 3), np.float32), padding=-1)
    with pytest.raises(vc.VisionCoreError, match="bias"):
        F.conv2d(x, np.zeros((2, 4, 3, 3), np.float32), np.zeros(3, np.float32))
    with pytest.raises(vc.VisionCoreError):
        F.conv2d(np.zeros((6, 6), np.float32), np.zeros((2, 4, 3, 3), np.float32))
    with pytest.raises(vc.VisionCoreError, match="output padding"):
        F.conv_transpose2d(x, np.zeros((4, 2, 3, 3), np.float32), stride=2, output_padding=2)
    with pytest.raises(vc.VisionCoreError, match="half of kernel"):
        F.max_pool2d(x, 2, padding=2)
    with pytest.raises(vc.VisionCoreError):
        F.avg_pool2d(x, 7)
    with pytest.raises(vc.VisionCoreError, match="positive"):
        F.adaptive_avg_pool2d(x, (0, 2))
    with pytest.raises(ValueError):
        F.max_pool2d(x, 2, return_indices=True)
    with pytest.raises(ValueError):
        F.avg_pool2d(x, 2, divisor_override=3)
    with pytest.raises(ValueError):
        F.conv2d(x, np.zeros((2, 4, 3, 3), np.float32), stride=(1, 2, 3))


def test_c_entry_points_refuse_null_and_bad_flags():
    import ctypes
    from visioncore._lib import lib
    x, w = vc.tensor(np.zeros((1, 2, 5, 5), np.float32)), vc.tensor(np.zeros((3, 2, 3, 3), np.float32))
    one, zero = (ctypes.c_int64 * 2)(1, 1), (ctypes.c_int64 * 2)(0, 0)
    out = ctypes.c_void_p()
    assert lib.vc_conv2d(x._handle, w._handle, None, None, zero, one, 1, ctypes.byref(out)) == vc._lib._decls.VC_INVALID_ARGUMENT
    assert "stride is NULL" in lib.vc_last_error_message().decode()
    assert lib.vc_conv2d(None, w._handle, None, one, zero, one, 1, ctypes.byref(out)) != 0
    assert lib.vc_conv2d(x._handle, w._handle, None, one, zero, one, 1, None) != 0
    assert lib.vc_conv_transpose2d(x._handle, None, None, one, zero, zero, 1, one, ctypes.byref(out)) != 0
    k = (ctypes.c_int64 * 2)(2, 2)
    assert lib.vc_max_pool2d(x._handle, k, None, zero, one, 2, ctypes.byref(out)) == vc._lib._decls.VC_INVALID_ARGUMENT
    assert lib.vc_max_pool2d(x._handle, None, None, zero, one, 0, ctypes.byref(out)) != 0
    assert lib.vc_avg_pool2d(x._handle, k, None, None, 0, 1, ctypes.byref(out)) != 0
    assert lib.vc_adaptive_avg_pool2d(x._handle, -1, 2, ctypes.byref(out)) != 0
    assert not out.value
    # NULL stride means stride = kernel size.
    assert lib.vc_max_pool2d(x._handle, k, None, zero, one, 1, ctypes.byref(out)) == 0
    assert vc.Tensor(out).shape == (1, 2, 3, 3)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_threaded_kernels_work_in_a_forked_child():
    """The worker pool's threads do not survive fork: the child starts its own instead of waiting on them."""
    import os
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 8, 40, 40)).astype(np.float32)
    wt = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    want = np.asarray(F.conv2d(x, wt, padding=1))  # starts the parent's workers
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if np.array_equal(np.asarray(F.conv2d(x, wt, padding=1)), want) else 2
        finally:
            os._exit(code)
    deadline = __import__("time").time() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if __import__("time").time() > deadline:
            os.kill(pid, 9)
            pytest.fail("the forked child hung in a threaded kernel")
        __import__("time").sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0

