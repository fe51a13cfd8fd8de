"""The C ABI contract, exercised through ctypes: bad handles, NULL pointers, wrong sizes and absurd shapes give a
status code and a message, never a crash; error messages are per thread."""
import ctypes
import threading

import numpy as np
import pytest

import visioncore as vc
from visioncore import _decls
from visioncore._lib import lib


def new_tensor(shape=(2, 3)):
    out = ctypes.c_void_p()
    arr = (ctypes.c_int64 * len(shape))(*shape)
    assert lib.vc_tensor_create(_decls.VC_FLOAT32, arr, len(shape), ctypes.byref(out)) == _decls.VC_OK
    return out


def last_error():
    return lib.vc_last_error_message().decode()


def test_double_free_and_foreign_handles_are_reported():
    t = new_tensor()
    assert lib.vc_tensor_free(t) == _decls.VC_OK
    assert lib.vc_tensor_free(t) == _decls.VC_INVALID_HANDLE
    assert "double free" in last_error()
    assert lib.vc_tensor_free(None) == _decls.VC_OK
    m = ctypes.c_void_p()
    assert lib.vc_tensor_map_create(ctypes.byref(m)) == _decls.VC_OK
    # A map handle passed where a tensor is expected is refused, and the map survives.
    assert lib.vc_tensor_free(m) == _decls.VC_INVALID_HANDLE
    out = ctypes.c_void_p()
    assert lib.vc_unary(_decls.VC_RELU, m, 0.0, ctypes.byref(out)) == _decls.VC_INVALID_HANDLE
    assert not out.value
    assert lib.vc_tensor_map_free(m) == _decls.VC_OK
    forged = ctypes.c_void_p(0x1234)
    assert lib.vc_tensor_ndim(forged, ctypes.byref(ctypes.c_int32())) == _decls.VC_INVALID_HANDLE


def test_null_pointers_and_bad_sizes():
    out = ctypes.c_void_p()
    shape = (ctypes.c_int64 * 2)(2, 3)
    assert lib.vc_tensor_create(_decls.VC_FLOAT32, None, 2, ctypes.byref(out)) == _decls.VC_INVALID_ARGUMENT
    assert lib.vc_tensor_create(_decls.VC_FLOAT32, shape, 2, None) == _decls.VC_INVALID_ARGUMENT
    assert lib.vc_tensor_create(99, shape, 2, ctypes.byref(out)) == _decls.VC_INVALID_ARGUMENT
    assert "dtype" in last_error()
    assert lib.vc_tensor_create(_decls.VC_FLOAT32, shape, -1, ctypes.byref(out)) == _decls.VC_INVALID_ARGUMENT
    huge = (ctypes.c_int64 * 3)(1 << 30, 1 << 30, 1 << 30)
    assert lib.vc_tensor_create(_decls.VC_FLOAT32, huge, 3, ctypes.byref(out)) == _decls.VC_OUT_OF_MEMORY
    neg = (ctypes.c_int64 * 2)(2, -3)
    assert lib.vc_tensor_create(_decls.VC_FLOAT32, neg, 2, ctypes.byref(out)) == _decls.VC_INVALID_ARGUMENT
    buf = (ctypes.c_float * 5)()
    assert lib.vc_tensor_from_buffer(_decls.VC_FLOAT32, shape, 2, buf, 20, ctypes.byref(out)) == _decls.VC_SHAPE_MISMATCH
    assert lib.vc_tensor_from_buffer(_decls.VC_FLOAT32, shape, 2, None, 24, ctypes.byref(out)) == _decls.VC_INVALID_ARGUMENT
    t = new_tensor()
    assert lib.vc_tensor_copy_to(t, buf, 20) == _decls.VC_SHAPE_MISMATCH
    assert lib.vc_tensor_shape(t, None, 2) == _decls.VC_INVALID_ARGUMENT
    assert lib.vc_tensor_shape(t, shape, 1) == _decls.VC_INVALID_ARGUMENT
    assert lib.vc_unary(999, t, 0.0, ctypes.byref(out)) == _decls.VC_INVALID_ARGUMENT
    lib.vc_tensor_free(t)


def test_error_messages_are_per_thread():
    messages = {}

    def worker(i):
        out = ctypes.c_void_p()
        shape = (ctypes.c_int64 * 2)(2, -i - 1)
        lib.vc_tensor_create(_decls.VC_FLOAT32, shape, 2, ctypes.byref(out))
        messages[i] = last_error()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for i in range(4):
        assert f"-{i + 1}" in messages[i]


def test_tensor_views_through_python():
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = vc.Tensor.from_numpy(a)
    np.testing.assert_array_equal(t.reshape(6, -1).numpy(), a.reshape(6, -1))
    np.testing.assert_array_equal(t.permute(2, 0, 1).numpy(), a.transpose(2, 0, 1))
    with pytest.raises(vc.VisionCoreError, match="invalid for 24 elements"):
        t.reshape(5, 5)
    with pytest.raises(vc.VisionCoreError):
        t.permute(0, 0, 1)


def test_thread_count_setting_and_determinism():
    x = np.random.default_rng(1).normal(size=200_000).astype(np.float32)
    before = vc.get_num_threads()
    try:
        vc.set_num_threads(1)
        one = vc.functional.gelu(x)
        vc.set_num_threads(2)
        two = vc.functional.gelu(x)
        np.testing.assert_array_equal(one, two)
        with pytest.raises(vc.VisionCoreError):
            vc.set_num_threads(0)
    finally:
        vc.set_num_threads(before)
