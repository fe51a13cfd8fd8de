import numpy as np
import pytest
import scipy.special

import visioncore as vc
import visioncore.functional as F


def test_roundtrip_all_dtypes():
    for dt in (np.float32, np.int32, np.int64, np.uint8):
        a = (np.arange(24).reshape(2, 3, 4) % 7).astype(dt)
        t = vc.Tensor.from_numpy(a)
        assert t.shape == (2, 3, 4) and t.dtype == dt
        np.testing.assert_array_equal(t.numpy(), a)


def test_activations_match_scipy():
    x = np.linspace(-8, 8, 1001, dtype=np.float32)
    np.testing.assert_allclose(F.relu(x), np.maximum(x, 0))
    np.testing.assert_allclose(F.sigmoid(x), scipy.special.expit(x.astype(np.float64)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(F.gelu(x), x * scipy.special.ndtr(x.astype(np.float64)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(F.tanh(x), np.tanh(x.astype(np.float64)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(F.leaky_relu(x, 0.2), np.where(x >= 0, x, 0.2 * x), rtol=1e-7)


def test_linear_and_matmul_match_numpy():
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(5, 7)).astype(np.float32), rng.normal(size=(3, 7)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    np.testing.assert_allclose(F.linear(x, w, b), x @ w.T + b, rtol=1e-5, atol=1e-5)
    a, c = rng.normal(size=(2, 1, 4, 6)).astype(np.float32), rng.normal(size=(3, 6, 5)).astype(np.float32)
    np.testing.assert_allclose(F.matmul(a, c), np.matmul(a, c), rtol=1e-5, atol=1e-5)


def test_errors_carry_the_library_message():
    with pytest.raises(vc.VisionCoreError, match="cannot be multiplied"):
        F.matmul(np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32))
    with pytest.raises(vc.VisionCoreError, match="float32"):
        F.relu(np.zeros(3, np.int32))
    with pytest.raises(TypeError):
        vc.Tensor.from_numpy(np.zeros(3, np.complex64))
