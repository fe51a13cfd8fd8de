"""The timm-style classification API: create_model, load/save, eval/train, forward with autograd, parameters
that an optimizer trains, timm's eval transform, and errors for bad input."""
import pathlib

import numpy as np
import pytest

import visioncore as vc
import visioncore.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parents[3]
CHELSEA = ROOT / "data" / "images" / "chelsea.png"
# Parameter counts of timm's models (issue 4 and timm's model cards).
TIMM_PARAMS = {"resnet18": 11689512, "resnet50": 25557032, "rexnet_100": 4796873, "pit_ti_224": 4847272}


@pytest.fixture(scope="module")
def name():
    """A CNN of the registry (any input size keeps the tests small): resnet18 when present."""
    names = vc.list_models()
    assert names, "the classifier registry is empty"
    for candidate in ("resnet18", "rexnet_100", "resnet34", "resnet50"):
        if candidate in names:
            return candidate
    cnn = [n for n in names if not n.startswith("pit")]
    assert cnn, f"no CNN among {names}"
    return cnn[0]


def batch(n=2, side=64, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 3, side, side)).astype(np.float32)


def test_list_models():
    names = vc.list_models()
    assert len(names) == len(set(names)) and all(isinstance(n, str) and n for n in names)
    for n in names:
        assert n in vc.list_models(n[:3] + "*")
    assert vc.list_models("no_such_family*") == []
    assert vc.models.list_models() == names


def test_create_forward_shapes_and_modes(name):
    m = vc.create_model(name, num_classes=10)
    assert m.name == name and m.training and m.num_classes == 10
    x = batch()
    y = m(x)
    assert isinstance(y, vc.Tensor) and y.shape == (2, 10)
    assert m.forward(vc.tensor(x)).shape == (2, 10)
    f = m.forward_features(x)
    assert f.ndim == 4 and f.shape[0] == 2
    assert m.forward_head(f, pre_logits=True).shape == (2, m.num_features)
    assert m.forward_head(f).shape == (2, 10)
    assert m.eval() is m and not m.training
    assert m.train().training
    headless = vc.create_model(name, num_classes=0).eval()
    assert headless(x).shape == (2, headless.num_features)
    assert "visioncore.Model" in repr(m)


def test_parameters_counts_and_config(name):
    m = vc.create_model(name)
    named = m.named_parameters()
    assert len(named) == len({k for k, _ in named})
    assert m.num_params == sum(t.numel() for _, t in named)
    if name in TIMM_PARAMS:
        assert m.num_params == TIMM_PARAMS[name]
    assert [k for k, _ in named] == [k for k in m.state_dict() if k in dict(named)]
    cfg = m.pretrained_cfg
    assert cfg["input_size"][0] == 3 and cfg["interpolation"] in ("bilinear", "bicubic")
    assert 0 < cfg["crop_pct"] <= 1 and len(cfg["mean"]) == len(cfg["std"]) == 3
    assert vc.resolve_data_config(m)["crop_mode"] == "center"
    # timm's resolve_data_config({}, model=timm.create_model(name)), recorded by tools/fixtures/eval_transform.py
    timm = vc.load_file(ROOT / "Tests" / "VisionCoreTests" / "Fixtures" / "eval_transform.safetensors")
    if f"cfg.{name}.input_size" in timm:
        assert cfg["input_size"] == tuple(timm[f"cfg.{name}.input_size"])
        assert cfg["crop_pct"] == timm[f"cfg.{name}.crop_pct_milli"] / 1000
        assert cfg["interpolation"] == ("bilinear", "bicubic")[int(timm[f"cfg.{name}.interp"])]
        assert np.array_equal(np.float32(cfg["mean"]), timm[f"cfg.{name}.mean"])
        assert np.array_equal(np.float32(cfg["std"]), timm[f"cfg.{name}.std"])


def test_forward_records_graph_and_no_grad(name):
    m = vc.create_model(name, num_classes=3)
    out = m(batch(side=32))
    assert out.requires_grad
    out.sum().backward()
    grads = [t.grad for t in m.parameters()]
    assert all(g is not None for g in grads)
    assert any(np.abs(g.numpy()).sum() > 0 for g in grads)
    m.zero_grad()
    assert all(t.grad is None for t in m.parameters())
    with vc.no_grad():
        assert not m(batch(side=32)).requires_grad


def test_one_training_step_lowers_the_loss(name):
    m = vc.create_model(name, num_classes=5, seed=3)
    x, y = batch(4, 48, seed=1), np.array([0, 3, 1, 4], np.int64)
    params = m.named_parameters()
    before = {k: t.numpy() for k, t in params}
    opt = vc.optim.AdamP(params, lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-2, delta=0.1, wd_ratio=0.1, nesterov=False)
    losses = []
    for _ in range(3):
        loss = F.cross_entropy(m(x), y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < losses[0], losses
    # the optimizer wrote into the model's own storage
    state = m.state_dict()
    changed = [k for k, _ in params if not np.array_equal(state[k], before[k])]
    assert len(changed) == len(params)
    for k, t in params:
        np.testing.assert_array_equal(t.numpy(), state[k])


def test_save_load_roundtrip(name, tmp_path):
    a = vc.create_model(name, num_classes=7, seed=1).eval()
    b = vc.create_model(name, num_classes=7, seed=2).eval()
    x = batch(1, 40)
    assert not np.array_equal(a(x).numpy(), b(x).numpy())
    path = tmp_path / "a.safetensors"
    a.save(path)
    assert b.load_state_dict(path) is b
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    c = vc.create_model(name, num_classes=7, seed=3).eval()
    c.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a(x).numpy(), c(x).numpy())
    assert set(vc.load_file(path)) == set(a.state_dict())
    d = vc.create_model(name, num_classes=7, checkpoint_path=path).eval()
    np.testing.assert_array_equal(a(x).numpy(), d(x).numpy())


def test_transform(name):
    m = vc.create_model(name)
    _, h, w = m.pretrained_cfg["input_size"]
    t = m.transform(CHELSEA)
    assert t.shape == (1, 3, h, w) and t.dtype == np.float32
    img = vc.image.load_image(CHELSEA)
    np.testing.assert_array_equal(m.transform(img).numpy(), t.numpy())
    np.testing.assert_array_equal(m.transform(vc.tensor(img)).numpy(), t.numpy())
    mean, std = np.array(m.pretrained_cfg["mean"]), np.array(m.pretrained_cfg["std"])
    lo, hi = (0 - mean) / std, (1 - mean) / std
    arr = t.numpy()[0]
    assert all(lo[c] - 1e-5 <= arr[c].min() and arr[c].max() <= hi[c] + 1e-5 for c in range(3))
    names = vc.imagenet_class_names()
    assert len(names) == 1000 and names[281] == "tabby"


def test_bad_input_raises(name, tmp_path):
    with pytest.raises(vc.VisionCoreError, match="unknown model 'no_such_model'"):
        vc.create_model("no_such_model")
    for kwargs in ({"num_classes": -1}, {"in_chans": 0}, {"drop_path_rate": 1.5}, {"drop_path_rate": float("nan")},
                   {"num_classes": 1 << 40}):
        with pytest.raises(vc.VisionCoreError):
            vc.create_model(name, **kwargs)
    with pytest.raises(ValueError):
        vc.create_model(name, pretrained=True)
    m = vc.create_model(name).eval()
    with pytest.raises(vc.VisionCoreError):
        m(np.zeros((3, 32, 32), np.float32))             # not a batch
    with pytest.raises(vc.VisionCoreError):
        m(np.zeros((1, 4, 32, 32), np.float32))          # wrong channel count
    with pytest.raises(vc.VisionCoreError):
        m(vc.tensor(np.zeros((1, 3, 32, 32), np.uint8)))  # pixels, not a normalised tensor
    with pytest.raises(vc.VisionCoreError):
        m.transform(np.zeros((20, 20, 4), np.uint8))     # RGBA array
    with pytest.raises(vc.VisionCoreError):
        m.transform(ROOT / "data" / "images" / "README.md")
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": nonsense}")
    with pytest.raises(vc.VisionCoreError):
        m.load_state_dict(corrupt)
    with pytest.raises(vc.VisionCoreError):
        m.load_state_dict(tmp_path / "missing.safetensors")
    other = tmp_path / "other.safetensors"
    vc.create_model(name, num_classes=10).save(other)
    x = batch(1, 32)
    before = m(x).numpy()
    with pytest.raises(vc.VisionCoreError, match="shape mismatches") as e:
        m.load_state_dict(other)
    assert "[10," in str(e.value) and "[1000," in str(e.value)
    np.testing.assert_array_equal(m(x).numpy(), before)  # unchanged
    with pytest.raises(vc.VisionCoreError, match="missing keys"):
        m.load_state_dict({"not.a.key": np.zeros(3, np.float32)})
    m.load_state_dict(dict(m.state_dict(), extra=np.zeros(1, np.float32)), strict=False)
    with pytest.raises(TypeError):
        m.load_state_dict(42)
    if "pit_ti_224" in vc.list_models():   # a fixed position-embedding grid: only its own input size
        pit = vc.create_model("pit_ti_224").eval()
        with pytest.raises(vc.VisionCoreError):
            pit(np.zeros((1, 3, 64, 64), np.float32))
        assert pit(pit.transform(CHELSEA)).shape == (1, 1000)


def test_model_checkpoint_resumes_bit_exactly(name, tmp_path):
    """N steps straight equal N/2 steps, checkpoint (model with BatchNorm statistics, optimizer, scheduler), restore
    into fresh objects, N/2 steps."""
    x, y = batch(2, 32, seed=4), np.array([1, 2], np.int64)

    def setup():
        m = vc.create_model(name, num_classes=3, seed=9)
        opt = vc.optim.AdamW(m.named_parameters(), lr=1e-3)
        return m, opt, vc.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    def steps(m, opt, sched, k):
        for _ in range(k):
            loss = F.cross_entropy(m(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()

    m, opt, sched = setup()
    steps(m, opt, sched, 4)
    straight = m.state_dict()

    m, opt, sched = setup()
    steps(m, opt, sched, 2)
    path = tmp_path / "run.ckpt"
    vc.save_checkpoint(path, m, optimizer=opt, scheduler=sched, step=2, epoch=1)
    m2, opt2, sched2 = setup()
    assert vc.load_checkpoint(path, m2, optimizer=opt2, scheduler=sched2) == (2, 1)
    steps(m2, opt2, sched2, 2)
    resumed = m2.state_dict()
    assert list(resumed) == list(straight)
    for k in straight:
        np.testing.assert_array_equal(resumed[k], straight[k], err_msg=k)
    # a checkpoint of another model is refused and changes nothing
    other = vc.create_model(name, num_classes=4)
    before = other.state_dict()
    with pytest.raises(vc.VisionCoreError):
        vc.load_checkpoint(path, other)
    for k, v in other.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
