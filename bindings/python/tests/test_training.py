"""Training through the Python API: a small CNN learns a synthetic task; cross_entropy against numpy; a run
resumed from a checkpoint in new processes continues bit for bit."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import visioncore as vc
import visioncore.nn.functional as F

HERE = pathlib.Path(__file__).resolve().parent


def synthetic(n, rng):
    """8x8 images whose bright quadrant (top-left, top-right, bottom) gives the class, plus noise."""
    y = rng.integers(0, 3, n)
    x = rng.normal(0, 0.3, (n, 1, 8, 8)).astype(np.float32)
    for i, c in enumerate(y):
        if c == 0:
            x[i, 0, :4, :4] += 1
        elif c == 1:
            x[i, 0, :4, 4:] += 1
        else:
            x[i, 0, 4:, :] += 1
    return x, y.astype(np.int64)


def init_params(seed):
    rng = np.random.default_rng(seed)
    shapes = {"conv1.weight": (8, 1, 3, 3), "conv1.bias": (8,), "conv2.weight": (8, 8, 3, 3), "conv2.bias": (8,),
              "fc.weight": (3, 8), "fc.bias": (3,)}
    return {k: vc.tensor((rng.normal(size=s) * (0.3 if len(s) > 1 else 0.01)).astype(np.float32), requires_grad=True)
            for k, s in shapes.items()}


def forward(p, x):
    h = F.max_pool2d(F.relu(F.conv2d(x, p["conv1.weight"], p["conv1.bias"], padding=1)), 2)
    h = F.relu(F.conv2d(h, p["conv2.weight"], p["conv2.bias"], padding=1))
    return F.linear(F.adaptive_avg_pool2d(h, 1).reshape(-1, 8), p["fc.weight"], p["fc.bias"])


def test_small_cnn_learns_a_synthetic_task():
    rng = np.random.default_rng(0)
    p = init_params(1)
    opt = vc.optim.AdamP(list(p.items()), lr=0.02, weight_decay=1e-4)
    for _ in range(80):
        x, y = synthetic(32, rng)
        loss = F.cross_entropy(forward(p, vc.tensor(x)), vc.tensor(y), label_smoothing=0.05)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, y = synthetic(500, np.random.default_rng(99))
    with vc.no_grad():
        accuracy = (forward(p, vc.tensor(x)).numpy().argmax(1) == y).mean()
    assert accuracy >= 0.95, f"accuracy {accuracy}"


def test_cross_entropy_matches_numpy():
    rng = np.random.default_rng(2)
    logits, target = rng.normal(size=(6, 4)).astype(np.float32), np.array([0, 3, 1, -100, 2, 2])
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    valid = target != -100
    nll = -logp[np.arange(6)[valid], target[valid]]
    smooth = -logp[valid].mean(1)
    expected = ((1 - 0.1) * nll + 0.1 * smooth).mean()
    np.testing.assert_allclose(F.cross_entropy(logits, target, label_smoothing=0.1), expected, rtol=1e-5)
    with pytest.raises(vc.VisionCoreError, match="out of range"):
        F.cross_entropy(logits, np.array([0, 9, 1, 1, 2, 2]))
    with pytest.raises(ValueError):
        F.cross_entropy(logits, target, reduction="avg")


RESUME_SCRIPT = r'''
import sys, numpy as np, visioncore as vc
sys.path.insert(0, sys.argv[1])
from test_training import init_params, forward, synthetic
import visioncore.nn.functional as F
mode, ckpt, out, steps = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
p = init_params(1 if mode != "resume" else 7)        # a resumed run starts from other weights
opt = vc.optim.AdamP(list(p.items()), lr=0.02, weight_decay=1e-4, nesterov=True)
start = 0
if mode == "resume":
    start, _ = vc.load_checkpoint(ckpt, p, optimizer=opt)
for step in range(start, start + steps):
    x, y = synthetic(16, np.random.default_rng(step))   # the data stream is a function of the step
    loss = F.cross_entropy(forward(p, vc.tensor(x)), vc.tensor(y))
    opt.zero_grad(); loss.backward(); opt.step()
if mode == "first":
    vc.save_checkpoint(ckpt, p, optimizer=opt, step=start + steps)
vc.save_file({k: t.numpy() for k, t in p.items()}, out)
'''


def test_resume_in_new_processes_is_bit_exact(tmp_path):
    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT)
    env = dict(os.environ)
    ckpt, straight, resumed = tmp_path / "run.ckpt", tmp_path / "straight.safetensors", tmp_path / "resumed.safetensors"

    def run(mode, out, steps):
        subprocess.run([sys.executable, str(script), str(HERE), mode, str(ckpt), str(out), str(steps)], env=env, check=True)

    run("straight", straight, 10)
    run("first", tmp_path / "half.safetensors", 5)
    run("resume", resumed, 5)
    a, b = vc.load_file(straight), vc.load_file(resumed)
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs after resuming"


def test_checkpoint_of_another_model_is_refused(tmp_path):
    p = init_params(3)
    opt = vc.optim.SGD(list(p.items()), lr=0.1)
    vc.save_checkpoint(tmp_path / "a.ckpt", p, optimizer=opt, step=3)
    other = dict(p, **{"fc.weight": vc.tensor(np.zeros((5, 8), np.float32), requires_grad=True)})
    before = other["conv1.weight"].numpy().copy()
    with pytest.raises(vc.VisionCoreError, match=r"fc.weight: checkpoint \[3, 8\], model \[5, 8\]"):
        vc.load_checkpoint(tmp_path / "a.ckpt", other)
    np.testing.assert_array_equal(other["conv1.weight"].numpy(), before)
    assert vc.load_checkpoint(tmp_path / "a.ckpt", p, optimizer=opt) == (3, 0)


def test_schedulers_follow_torch_formulas():
    w = vc.tensor(np.ones(3, np.float32), requires_grad=True)
    opt = vc.optim.SGD([w], lr=0.1)
    sched = vc.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        (w * w).sum().backward()
        opt.step()
        opt.zero_grad()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    np.testing.assert_allclose(lrs, [0.1, 0.05, 0.05, 0.025, 0.025])
    opt2 = vc.optim.AdamW([w], lr=1.0)
    cos = vc.optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=4)
    got = []
    for _ in range(4):
        cos.step()
        got.append(opt2.param_groups[0]["lr"])
    np.testing.assert_allclose(got, [0.5 * (1 + np.cos(np.pi * t / 4)) for t in range(1, 5)], atol=1e-12)
    with pytest.raises(vc.VisionCoreError, match="stepSize must be at least 1"):
        vc.optim.lr_scheduler.StepLR(opt, step_size=0)
