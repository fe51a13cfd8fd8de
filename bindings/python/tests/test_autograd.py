"""Autograd through the Python API, checked against finite differences in numpy."""
import numpy as np
import pytest

import visioncore as vc
import visioncore.functional as F


def test_mlp_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 5)).astype(np.float32)
    w = vc.tensor(rng.normal(size=(3, 5)).astype(np.float32) * 0.5, requires_grad=True)
    b = vc.tensor(np.zeros(3, np.float32), requires_grad=True)
    assert w.requires_grad and w.grad is None
    loss = (F.gelu(F.linear(vc.tensor(x), w, b)) ** 2).mean()
    loss.backward()
    gw = w.grad.numpy()

    def f(wv):
        h = x @ wv.T
        g = h * 0.5 * (1 + np.vectorize(__import__("math").erf)(h / np.sqrt(2)))
        return float((g.astype(np.float64) ** 2).mean())

    w0, eps = w.numpy().astype(np.float64), 1e-3
    numeric = np.zeros_like(w0)
    for i in np.ndindex(*w0.shape):
        p, m = w0.copy(), w0.copy()
        p[i] += eps
        m[i] -= eps
        numeric[i] = (f(p) - f(m)) / (2 * eps)
    np.testing.assert_allclose(gw, numeric, rtol=2e-2, atol=2e-4)
    np.testing.assert_allclose(b.grad.numpy().shape, (3,))


def test_accumulation_zero_grad_detach_and_no_grad():
    w = vc.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (w * w).sum().backward()
    (w * 1.0).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [3, 5, 7])
    w.zero_grad()
    assert w.grad is None
    assert not (w.detach() * 2).requires_grad
    with vc.no_grad():
        assert not (w * 2).requires_grad
    assert (w * 2).requires_grad
    with pytest.raises(vc.VisionCoreError, match="gradient"):
        (w * 2).backward()                      # non-scalar without a gradient
    (w * 2).backward(np.ones(3, np.float32))
    with pytest.raises(vc.VisionCoreError):
        vc.tensor(np.arange(3)).requires_grad = True   # int64 cannot require grad


def test_conv_training_step_decreases_the_loss():
    rng = np.random.default_rng(1)
    x = vc.tensor(rng.normal(size=(2, 3, 8, 8)).astype(np.float32))
    w = vc.tensor(rng.normal(size=(4, 3, 3, 3)).astype(np.float32) * 0.2, requires_grad=True)
    target = vc.tensor(np.zeros((2, 4, 4, 4), np.float32))
    losses = []
    for _ in range(5):
        y = F.max_pool2d(F.relu(F.conv2d(x, w, padding=1)), 2)
        loss = ((y - target) ** 2).mean()
        losses.append(loss.item())
        w.zero_grad()
        loss.backward()
        with vc.no_grad():
            w_new = w.detach() - w.grad * 0.5
        w = vc.tensor(w_new.numpy(), requires_grad=True)
    assert losses[-1] < losses[0] * 0.9
