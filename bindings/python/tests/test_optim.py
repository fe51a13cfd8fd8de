"""visioncore.optim against torch.optim and the adamp package (skipped where they are not installed)."""
import numpy as np
import pytest

import visioncore as vc


def orthogonal_grad(rng, p):
    """A gradient orthogonal to each output channel of p (what batch norm after a conv gives), in float64."""
    a = rng.normal(size=p.shape)
    a2, w2 = a.reshape(p.shape[0], -1), p.reshape(p.shape[0], -1).astype(np.float64)
    return (a2 - (a2 * w2).sum(1, keepdims=True) / (w2 * w2).sum(1, keepdims=True) * w2).reshape(p.shape)


def run_visioncore(make, init, grads_of, steps):
    params = [vc.tensor(v.copy(), requires_grad=True) for v in init]
    opt = make(params)
    for t in range(steps):
        opt.zero_grad()
        loss = None
        for p, g in zip(params, grads_of(t, [p.numpy() for p in params])):
            term = (p * g.astype(np.float32)).sum()
            loss = term if loss is None else loss + term
        loss.backward()
        opt.step()
    return [p.numpy() for p in params]


def run_torch(make, init, grads_of, steps):
    torch = pytest.importorskip("torch")
    params = [torch.tensor(v.copy(), requires_grad=True) for v in init]
    opt = make(params)
    for t in range(steps):
        opt.zero_grad()
        for p, g in zip(params, grads_of(t, [p.detach().numpy() for p in params])):
            p.grad = torch.tensor(g.astype(np.float32))
        opt.step()
    return [p.detach().numpy() for p in params]


def fixture():
    rng = np.random.default_rng(1)
    init = [rng.normal(size=s).astype(np.float32) * 0.5 for s in [(8, 4, 3, 3), (5, 7), (5,)]]

    def grads_of(t, values):
        r = np.random.default_rng(100 + t)
        return [orthogonal_grad(r, values[0]), r.normal(size=(5, 7)), r.normal(size=5)]
    return init, grads_of


@pytest.mark.parametrize("nesterov", [False, True])
def test_adamp_matches_the_adamp_package(nesterov):
    adamp = pytest.importorskip("adamp")
    init, grads_of = fixture()
    ours = run_visioncore(lambda ps: vc.optim.AdamP(ps, lr=1e-2, betas=(0.9, 0.999), weight_decay=1e-2, delta=0.1,
                                                    wd_ratio=0.1, nesterov=nesterov), init, grads_of, 12)
    ref = run_torch(lambda ps: adamp.AdamP(ps, lr=1e-2, weight_decay=1e-2, nesterov=nesterov), init, grads_of, 12)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=2e-6)


def test_sgdp_and_torch_optimizers_match():
    torch = pytest.importorskip("torch")
    adamp = pytest.importorskip("adamp")
    init, grads_of = fixture()
    pairs = [
        (lambda ps: vc.optim.SGDP(ps, lr=0.1, momentum=0.9, weight_decay=1e-3),
         lambda ps: adamp.SGDP(ps, lr=0.1, momentum=0.9, weight_decay=1e-3)),
        (lambda ps: vc.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True),
         lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True)),
        (lambda ps: vc.optim.AdamW(ps, lr=1e-2, weight_decay=0.1),
         lambda ps: torch.optim.AdamW(ps, lr=1e-2, weight_decay=0.1)),
        (lambda ps: vc.optim.Adam(ps, lr=1e-2, amsgrad=True),
         lambda ps: torch.optim.Adam(ps, lr=1e-2, amsgrad=True)),
    ]
    for ours_make, ref_make in pairs:
        ours = run_visioncore(ours_make, init, grads_of, 12)
        ref = run_torch(ref_make, init, grads_of, 12)
        for a, b in zip(ours, ref):
            np.testing.assert_allclose(a, b, rtol=2e-6, atol=2e-6)


def test_groups_learning_rate_and_state(tmp_path):
    w = vc.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    b = vc.tensor(np.zeros(3, np.float32), requires_grad=True)
    opt = vc.optim.SGD([{"params": [("fc.weight", w)]}, {"params": [("fc.bias", b)], "weight_decay": 0.0}],
                       lr=0.1, momentum=0.9, weight_decay=1e-2)
    (w.sum() + b.sum()).backward()
    opt.param_groups[1]["lr"] = 0.0   # as a scheduler would
    opt.step()
    np.testing.assert_allclose(w.numpy(), 1 - 0.1 * (1 + 1e-2), rtol=1e-6)
    np.testing.assert_array_equal(b.numpy(), 0)
    path = tmp_path / "opt.safetensors"
    opt.save_state(path)
    other = vc.optim.SGD([{"params": [("fc.weight", w)]}, {"params": [("fc.bias", b)]}], lr=0.5)
    other.load_state(path)
    assert [g["lr"] for g in other.param_groups] == [0.1, 0.0]
    wrong = vc.optim.Adam([("fc.weight", w), ("fc.bias", b)])
    with pytest.raises(vc.VisionCoreError, match="SGD optimizer, not Adam"):
        wrong.load_state(path)


def test_bad_input():
    frozen = vc.tensor(np.zeros(3, np.float32))
    with pytest.raises(vc.VisionCoreError, match="does not require gradients"):
        vc.optim.AdamP([frozen])
    w = vc.tensor(np.zeros(3, np.float32), requires_grad=True)
    with pytest.raises(vc.VisionCoreError, match="invalid learning rate"):
        vc.optim.SGD([w], lr=-1.0)
    with pytest.raises(vc.VisionCoreError, match="beta parameter at index 1"):
        vc.optim.Adam([w], betas=(0.9, 1.5))
    with pytest.raises(ValueError, match="lr is required"):
        vc.optim.SGDP([w])
    opt = vc.optim.SGD([w], lr=0.1)
    w.requires_grad = True   # a new leaf: the optimizer would no longer train this handle's data
    with pytest.raises(vc.VisionCoreError, match="no longer the tensor"):
        opt.step()
