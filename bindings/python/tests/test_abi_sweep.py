"""A sweep over every function of include/visioncore.h (through the generated declarations): called with NULL
pointers and zero or absurd scalars, or with one live tensor and NULL elsewhere, each must return an error status
and leave NULL outputs - never crash. New exports are covered automatically."""
import ctypes

import pytest

from visioncore import _decls
from visioncore._lib import lib

STATUSES = {v for k, v in vars(_decls).items() if k.startswith("VC_") and k in (
    "VC_OK", "VC_INVALID_ARGUMENT", "VC_SHAPE_MISMATCH", "VC_DTYPE_MISMATCH", "VC_IO_ERROR", "VC_FORMAT_ERROR",
    "VC_OUT_OF_MEMORY", "VC_UNSUPPORTED", "VC_INVALID_HANDLE", "VC_INTERNAL_ERROR")}
# Functions without a status, or for which all-zero arguments are valid.
NOT_STATUS = {"vc_last_error_message", "vc_version", "vc_get_num_threads"}
ZERO_OK = {"vc_tensor_free", "vc_tensor_map_free", "vc_optimizer_free", "vc_scheduler_free",
           "vc_face_detector_free", "vc_model_free", "vc_dataset_free", "vc_transform_free", "vc_loader_free",
           "vc_mixer_free"}
# Scalar-only functions and the argument values that are valid for them.
VALID_SCALARS = {"vc_set_grad_enabled": (0, 1)}
FALLIBLE = sorted(n for n, (ret, _) in _decls.FUNCTIONS.items() if ret is ctypes.c_int32 and n not in NOT_STATUS)


def zero_args(argtypes, scalar):
    args = []
    for t in argtypes:
        if t in (ctypes.c_float, ctypes.c_double):
            args.append(float(scalar))
        elif t in (ctypes.c_int32, ctypes.c_int64, ctypes.c_ssize_t, ctypes.c_size_t, ctypes.c_uint64, ctypes.c_int,
                   ctypes.c_uint8, ctypes.c_bool):
            args.append(scalar if t not in (ctypes.c_size_t, ctypes.c_uint64, ctypes.c_uint8, ctypes.c_bool) else abs(scalar) % 256 if t is ctypes.c_uint8 else abs(scalar))
        else:
            args.append(None)
    return args


@pytest.mark.parametrize("name", FALLIBLE)
@pytest.mark.parametrize("scalar", [0, -1, 1 << 40])
def test_null_and_absurd_arguments_fail_cleanly(name, scalar):
    fn = getattr(lib, name)
    _, argtypes = _decls.FUNCTIONS[name]
    if name == "vc_set_num_threads" and scalar == 1 << 40:
        scalar = (1 << 31) - 1
    args = zero_args(argtypes, scalar)
    status = fn(*args)
    lib.vc_set_grad_enabled(1)   # the sweep may have switched this thread's grad mode off
    assert status in STATUSES
    if name in ZERO_OK or ctypes.c_int32(scalar).value in VALID_SCALARS.get(name, ()):
        assert status == _decls.VC_OK
    elif name != "vc_set_num_threads" or scalar <= 0:
        assert status != _decls.VC_OK, f"{name} accepted NULL/zero arguments"
        assert lib.vc_last_error_message().decode()


@pytest.mark.parametrize("name", [n for n in FALLIBLE if any(t is ctypes.c_void_p for t in _decls.FUNCTIONS[n][1])])
def test_one_live_tensor_and_null_outputs(name):
    """The first handle argument gets a live 1x1x1x1 tensor; every other pointer stays NULL (including outputs)."""
    shape = (ctypes.c_int64 * 4)(1, 1, 1, 1)
    t = ctypes.c_void_p()
    assert lib.vc_tensor_create(_decls.VC_FLOAT32, shape, 4, ctypes.byref(t)) == _decls.VC_OK
    _, argtypes = _decls.FUNCTIONS[name]
    args = zero_args(argtypes, 1)
    first = argtypes.index(ctypes.c_void_p)
    args[first] = t
    status = getattr(lib, name)(*args)
    assert status in STATUSES
    has_pointer_args = any(isinstance(t, type) and issubclass(t, ctypes._Pointer) for t in argtypes)
    if name not in ZERO_OK and name != "vc_tensor_free" and has_pointer_args:
        assert status != _decls.VC_OK, f"{name} succeeded with NULL outputs"
    if name != "vc_tensor_free":
        lib.vc_tensor_free(t)
