"""visioncore.data through the C ABI: datasets, the deterministic loader, transforms, the mixing augmentations,
their errors, a sweep of the data handles with absurd arguments, and a short training loop."""
import ctypes
import hashlib
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import visioncore as vc
import visioncore.nn.functional as F
from visioncore import _decls, data
from visioncore._lib import lib

FMNIST = "/usr/share/datasets/fashion-mnist"
HAVE_FMNIST = os.path.exists(os.path.join(FMNIST, "t10k-images-idx3-ubyte.gz"))
HERE = pathlib.Path(__file__).resolve().parent


def synthetic(n=20, c=1, h=8, w=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, c, h, w), dtype=np.float32), np.arange(n) % 5


def epoch_digest(loader, epoch):
    """A hash of every batch of an epoch (inputs and labels)."""
    h = hashlib.sha256()
    for i in range(len(loader)):
        x, y = loader.batch(i, epoch)
        h.update(x.numpy().tobytes())
        h.update(y.numpy().tobytes())
    return h.hexdigest()


# datasets and loader

def test_tensor_dataset_and_loader_shapes():
    x, y = synthetic(10)
    ds = data.TensorDataset(x, y)
    assert len(ds) == 10 and ds.num_classes == 5 and ds.classes == ["0", "1", "2", "3", "4"]
    img, label = ds[3]
    np.testing.assert_array_equal(img.numpy(), x[3])
    assert label == 3 and ds[-1][1] == y[-1]
    loader = data.DataLoader(ds, batch_size=4, shuffle=False)
    batches = list(loader)
    assert len(loader) == 3 and [b[0].shape for b in batches] == [(4, 1, 8, 8), (4, 1, 8, 8), (2, 1, 8, 8)]
    assert batches[0][0].dtype == np.float32 and batches[0][1].dtype == np.int64
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), y)
    assert len(data.DataLoader(ds, batch_size=4, drop_last=True)) == 2
    # shuffled: a permutation of the examples, different per epoch, each for-loop moves to the next epoch
    loader = data.DataLoader(ds, batch_size=3, shuffle=True, seed=5)
    e0 = np.concatenate([b[0].numpy() for b in loader])
    e1 = np.concatenate([b[0].numpy() for b in loader])
    assert loader.epoch == 2
    assert sorted(map(bytes, e0)) == sorted(map(bytes, x)) and not np.array_equal(e0, e1)
    loader.set_epoch(0)
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in loader]), e0)


def test_loader_is_deterministic_across_workers_orders_and_runs():
    x, y = synthetic(37, c=3, h=12, w=12)
    ds = data.TensorDataset(x, y)
    tf = [data.RandomResizedCrop(8, scale=(0.3, 1.0)), data.RandomHorizontalFlip(), data.Normalize([0.5], [0.25])]
    digests = {}
    for workers in (0, 1, 3):
        loader = data.DataLoader(ds, batch_size=5, shuffle=True, seed=11, num_workers=workers, transform=tf)
        digests[workers] = [epoch_digest(loader, e) for e in (0, 1)]
    assert digests[0] == digests[1] == digests[3]
    assert digests[0][0] != digests[0][1]
    # in-order iteration (prefetching with workers) equals random access
    loader = data.DataLoader(ds, batch_size=5, shuffle=True, seed=11, num_workers=2, transform=tf)
    it = [(a.numpy(), b.numpy()) for a, b in loader]
    for i in (6, 0, 3):
        a, b = loader.batch(i, 0)
        np.testing.assert_array_equal(a.numpy(), it[i][0])
        np.testing.assert_array_equal(b.numpy(), it[i][1])
    assert it[0][0].shape == (5, 3, 8, 8)
    # another seed gives other batches
    other = data.DataLoader(ds, batch_size=5, shuffle=True, seed=12, num_workers=0, transform=tf)
    assert epoch_digest(other, 0) != digests[0][0]
    # and a fresh process gives the same ones
    script = ("import sys, numpy as np; sys.path.insert(0, sys.argv[1]); import test_data as t; from visioncore import data;"
              "x, y = t.synthetic(37, c=3, h=12, w=12); ds = data.TensorDataset(x, y);"
              "tf = [data.RandomResizedCrop(8, scale=(0.3, 1.0)), data.RandomHorizontalFlip(), data.Normalize([0.5], [0.25])];"
              "print(t.epoch_digest(data.DataLoader(ds, batch_size=5, shuffle=True, seed=11, num_workers=2, transform=tf), 1))")
    out = subprocess.run([sys.executable, "-c", script, str(HERE)], capture_output=True, text=True, timeout=120, env=os.environ)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == digests[0][1]


def test_transforms():
    img = np.random.default_rng(1).random((3, 10, 16), dtype=np.float32)
    flip = data.Compose([data.RandomHorizontalFlip(p=1.0)])
    np.testing.assert_array_equal(flip(img).numpy(), img[:, :, ::-1])
    norm = data.Compose([data.Normalize([0.5, 0.5, 0.5], [2.0, 2.0, 2.0])])
    np.testing.assert_allclose(norm(img).numpy(), (img - 0.5) / 2, rtol=1e-6)
    crop = data.Compose([data.Resize(20), data.CenterCrop(12)])
    assert crop(img).shape == (3, 12, 12)
    nested = data.Compose([crop, data.RandomHorizontalFlip(p=1.0)])
    np.testing.assert_array_equal(nested(img).numpy(), crop(img).numpy()[:, :, ::-1])
    with pytest.raises(TypeError):
        data.Compose([lambda x: x])
    rrc = data.Compose([data.RandomResizedCrop((6, 7)), data.ColorJitter(0.4, 0.4, 0.4, 0.1)])
    a, b = rrc(img, seed=3).numpy(), rrc(img, seed=3).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 6, 7) and not np.array_equal(a, rrc(img, seed=4).numpy())
    with pytest.raises(vc.VisionCoreError, match="p must be in"):
        data.Compose([data.RandomHorizontalFlip(p=2)])
    with pytest.raises(vc.VisionCoreError):
        data.Compose([data.Normalize([0.5], [0.0])])
    with pytest.raises(vc.VisionCoreError, match="Normalize"):
        data.Compose([data.Normalize([0.5, 0.5], [1, 1])])(img)     # 2 values for 3 channels


@pytest.mark.skipif(not HAVE_FMNIST, reason="Fashion-MNIST not installed (Debian's dataset-fashion-mnist)")
def test_fashion_mnist():
    ds = data.FashionMNIST(train=False)
    assert len(ds) == 10000 and ds.num_classes == 10 and ds.classes[9] == "Ankle boot"
    x, label = ds[0]
    a = x.numpy()
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and 0 <= label <= 9
    assert a.min() >= 0 and a.max() <= 1 and a.max() > 0.5
    loader = data.DataLoader(ds, batch_size=256, shuffle=True, seed=0, num_workers=2)
    xb, yb = next(iter(loader))
    assert xb.shape == (256, 1, 28, 28) and yb.shape == (256,)
    assert len(set(yb.numpy().tolist())) == 10


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls, n in (("cat", 2), ("ant", 3)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            vc.image.save_image(rng.integers(0, 255, (6, 9, 3), dtype=np.uint8), tmp_path / cls / f"{i}.png")
    vc.image.save_image(rng.integers(0, 255, (6, 9), dtype=np.uint8), tmp_path / "cat" / "grey.png")
    ds = data.ImageFolder(tmp_path)
    assert ds.classes == ["ant", "cat"] and len(ds) == 6
    x, label = ds[5]                       # cat/grey.png: replicated to RGB
    assert x.shape == (3, 6, 9) and label == 1
    g = x.numpy()
    np.testing.assert_array_equal(g[0], g[1])
    assert [ds[i][1] for i in range(6)] == [0, 0, 0, 1, 1, 1]
    (tmp_path / "cat" / "broken.png").write_bytes(b"\x89PNG not really")
    ds = data.ImageFolder(tmp_path)
    with pytest.raises(vc.VisionCoreError, match="broken.png"):
        ds[5]                              # cat/: 0.png, 1.png, broken.png, grey.png
    loader = data.DataLoader(ds, batch_size=7, shuffle=False)
    with pytest.raises(vc.VisionCoreError, match="broken.png"):
        next(iter(loader))
    assert len(data.ImageFolder(tmp_path, skip_unreadable=True)) == 6
    with pytest.raises(vc.VisionCoreError) as e:
        data.ImageFolder(tmp_path / "missing")
    assert e.value.status == _decls.VC_IO_ERROR


def test_relabel_targets_from_label_maps(tmp_path):
    """Constant label maps: the RoIAlign average of any crop is the map's value, so the pooled target is the
    softmax of the dense scores (zeros for absent classes), whatever the crop; CutMix then mixes those rows."""
    k, K, S = 3, 6, 5
    rng = np.random.default_rng(0)
    expected = {}
    for cls in ("a", "b"):
        (tmp_path / "img" / cls).mkdir(parents=True)
        (tmp_path / "maps" / cls).mkdir(parents=True)
        for i in range(3):
            vc.image.save_image(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8), tmp_path / "img" / cls / f"{i}.png")
            scores, classes = rng.random(k).astype(np.float32) * 4, rng.choice(K, k, replace=False).astype(np.float32)
            m = np.zeros((2, k, S, S), np.float32)
            m[0] = scores[:, None, None]
            m[1] = classes[:, None, None]
            vc.save_file({"label_map": m}, str(tmp_path / "maps" / cls / f"{i}.safetensors"))
            dense = np.zeros(K)
            dense[classes.astype(int)] = scores
            expected[(cls, i)] = np.exp(dense) / np.exp(dense).sum()
    ds = data.ImageFolder(tmp_path / "img", label_map_root=tmp_path / "maps")
    order = [(c, i) for c in ("a", "b") for i in range(3)]
    for convention in ("official", "geometric"):
        loader = data.DataLoader(ds, batch_size=4, shuffle=False, seed=3, num_workers=1,
                                 transform=[data.RandomResizedCrop(8), data.RandomHorizontalFlip()])
        x, y, t = loader.relabel_batch(0, num_classes=K, convention=convention)
        assert x.shape == (4, 3, 8, 8) and t.shape == (4, K)
        np.testing.assert_allclose(t.numpy(), np.stack([expected[order[i]] for i in range(4)]), rtol=1e-5, atol=1e-6)
    images, soft = data.CutMix(num_classes=K, label_smoothing=0.1, seed=0)(x, t)
    np.testing.assert_allclose(soft.numpy().sum(1), 1, rtol=1e-5)
    # without crops, without maps, or with too few classes: errors
    plain = data.DataLoader(ds, batch_size=2, transform=[data.Resize((8, 8))])
    with pytest.raises(vc.VisionCoreError, match="crop"):
        plain.relabel_batch(0, num_classes=K)
    with pytest.raises(vc.VisionCoreError, match="label maps"):
        data.DataLoader(data.ImageFolder(tmp_path / "img"), batch_size=2, transform=[data.RandomResizedCrop(8)]).relabel_batch(0, num_classes=K)
    with pytest.raises(vc.VisionCoreError):
        loader.relabel_batch(0, num_classes=2)      # class indices up to 5
    with pytest.raises(ValueError):
        loader.relabel_batch(0, num_classes=K, convention="transposed")


def test_dataset_and_loader_errors(tmp_path):
    with pytest.raises(vc.VisionCoreError) as e:
        data.FashionMNIST(root=tmp_path)
    assert e.value.status == _decls.VC_IO_ERROR and "dataset-fashion-mnist" in str(e.value)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03garbage")
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(vc.VisionCoreError) as e:
        data.FashionMNIST(root=tmp_path, train=False)
    assert e.value.status == _decls.VC_FORMAT_ERROR
    x, y = synthetic(6)
    ds = data.TensorDataset(x, y)
    with pytest.raises(IndexError):
        ds[6]
    assert [label for _, label in ds] == list(y)          # iteration stops at the end
    assert lib.vc_dataset_get(ds._handle, 6, ctypes.byref(ctypes.c_void_p()), ctypes.byref(ctypes.c_int64())) \
        == _decls.VC_INVALID_ARGUMENT and "outside 0..<6" in lib.vc_last_error_message().decode()
    big = data.TensorDataset(x[:2], [0, 1_000_000])       # class names made on demand, not a million at once
    name = ctypes.c_char_p()
    assert big.num_classes == 1_000_001
    assert lib.vc_dataset_class_name(big._handle, 999_999, ctypes.byref(name)) == _decls.VC_OK and name.value == b"999999"
    with pytest.raises(vc.VisionCoreError, match="outside"):
        data.TensorDataset(x[:1], [1 << 20])
    with pytest.raises(vc.VisionCoreError, match="label -1"):
        data.TensorDataset(x, -np.ones(6, dtype=np.int64))
    with pytest.raises(vc.VisionCoreError):
        data.TensorDataset(x, y[:5])
    for kwargs in ({"batch_size": 0}, {"batch_size": 1 << 40}, {"num_workers": 300}, {"num_workers": -1},
                   {"batch_size": 7, "drop_last": True}):
        with pytest.raises(vc.VisionCoreError):
            data.DataLoader(ds, **kwargs)
    loader = data.DataLoader(ds, batch_size=4)
    for i, epoch in ((2, 0), (-1, 0), (0, -1)):
        with pytest.raises(vc.VisionCoreError):
            loader.batch(i, epoch)
    # examples of different sizes: the transform must make them one size
    mixed_sizes = data.TensorDataset(np.zeros((4, 3, 8, 8), np.float32), [0, 1, 0, 1])
    bad = data.DataLoader(mixed_sizes, batch_size=2, transform=[data.Resize(5)])   # square -> all 5x5: fine
    assert bad.batch(0)[0].shape == (2, 3, 5, 5)


# mixing

def constant_batch(n, c=3, h=16, w=16):
    """Image i is filled with the value i, so every pixel tells which sample it came from."""
    return np.repeat(np.arange(n, dtype=np.float32), c * h * w).reshape(n, c, h, w)


def test_cutmix_lambda_is_the_pasted_area_and_targets_match():
    n, k = 8, 10
    cutmix = data.CutMix(alpha=1.0, num_classes=k, seed=3)
    checked = 0
    for _ in range(10):
        x = constant_batch(n)
        out = cutmix.mix(x, np.arange(n))
        m, t, lam, boxes = out.images.numpy(), out.targets.numpy(), out.lambdas, out.boxes
        assert m.shape == x.shape and t.shape == (n, k) and t.dtype == np.float32 and boxes.shape == (n, 4)
        np.testing.assert_allclose(t.sum(1), 1, rtol=1e-6)
        top, bottom, left, right = boxes[0]
        area = (bottom - top) * (right - left)
        assert (boxes == boxes[0]).all()                     # one box for the batch
        np.testing.assert_allclose(lam, 1 - area / (16 * 16), rtol=1e-6)
        for i in range(n):
            own = (m[i] == i)
            assert own.mean() == pytest.approx(lam[i]) or area == 0 or (m[i] == i).all()
            if area and not own.all():
                partner = int(m[i, 0, top, left])
                assert (m[i, :, top:bottom, left:right] == partner).all()
                assert t[i, i] == pytest.approx(lam[i]) and t[i, partner] == pytest.approx(1 - lam[i])
                checked += 1
    assert checked > 10
    # reproducible per seed, different draws per call
    a, b = data.CutMix(num_classes=k, seed=9), data.CutMix(num_classes=k, seed=9)
    x = constant_batch(n)
    first = a.mix(x, np.arange(n))
    np.testing.assert_array_equal(first.images.numpy(), b.mix(x, np.arange(n)).images.numpy())
    assert any(not np.array_equal(a.mix(x, np.arange(n)).boxes, first.boxes) for _ in range(5))
    # reseeding restarts the stream: the next mix equals a fresh mixer's first
    a.manual_seed(9)
    np.testing.assert_array_equal(a.mix(x, np.arange(n)).images.numpy(), first.images.numpy())
    # switched off: no mixing, targets only one-hot
    a.mixup_enabled = False
    off = a.mix(x, np.arange(n))
    np.testing.assert_array_equal(off.images.numpy(), x)
    np.testing.assert_array_equal(off.targets.numpy(), np.eye(k, dtype=np.float32)[:n])


def test_timm_mixup_modes_and_smoothing():
    n, k, eps = 6, 5, 0.1
    x = constant_batch(n, h=12, w=12)
    y = np.array([0, 1, 2, 3, 4, 0])
    for mode in ("batch", "pair", "elem"):
        mix = data.TimmMixup(mixup_alpha=0.8, cutmix_alpha=1.0, mode=mode, label_smoothing=eps, num_classes=k, seed=1)
        images, targets = mix(vc.tensor(x), vc.tensor(y))
        t = targets.numpy()
        assert images.shape == x.shape and t.shape == (n, k)
        np.testing.assert_allclose(t.sum(1), 1, rtol=1e-5)
        assert t.min() >= eps / k - 1e-6
    # timm pairs sample i with N-1-i: with mixup only, image i is lam*i + (1-lam)*(N-1-i)
    mix = data.TimmMixup(mixup_alpha=1.0, cutmix_alpha=0.0, label_smoothing=0.0, num_classes=k, seed=2)
    out = mix.mix(x, y)
    lam = out.lambdas[0]
    np.testing.assert_allclose(out.images.numpy()[:, 0, 0, 0], lam * np.arange(n) + (1 - lam) * np.arange(n)[::-1], rtol=1e-5)
    with pytest.raises(vc.VisionCoreError, match="even"):
        mix(constant_batch(5), np.arange(5) % k)
    with pytest.raises(vc.VisionCoreError):
        data.TimmMixup(mixup_alpha=0, cutmix_alpha=0, num_classes=k)
    with pytest.raises(ValueError):
        data.TimmMixup(mode="rows", num_classes=k)


def test_mixup_cutout_videomix():
    n, k = 4, 4
    x = constant_batch(n, h=8, w=8)
    out = data.Mixup(alpha=0.4, num_classes=k, seed=0).mix(x, np.arange(n))
    lam = out.lambdas[0]
    m, t = out.images.numpy(), out.targets.numpy()
    for i in range(n):
        partner = int(np.argmax(t[i] - np.eye(k)[i] * lam)) if lam < 1 else i
        np.testing.assert_allclose(m[i], lam * i + (1 - lam) * partner, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t.sum(1), 1, rtol=1e-6)
    # Cutout: the box is zero, the rest unchanged, targets one-hot
    out = data.Cutout(length=4, num_classes=k, seed=0).mix(x + 1, np.arange(n))
    m = out.images.numpy()
    for i, (top, bottom, left, right) in enumerate(out.boxes):
        assert (m[i, :, top:bottom, left:right] == 0).all()
        assert (m[i] == 0).sum() == 3 * (bottom - top) * (right - left)
    np.testing.assert_array_equal(out.targets.numpy(), np.eye(k, dtype=np.float32))
    # VideoMix: lambda is the voxel fraction the clip keeps
    clips = np.repeat(np.arange(n, dtype=np.float32), 2 * 4 * 8 * 8).reshape(n, 2, 4, 8, 8)
    for variant in ("spatial", "temporal", "spatio_temporal"):
        vm = data.VideoMix(variant, num_classes=k, seed=5)
        for _ in range(3):
            out = vm.mix(clips, np.arange(n))
            t0, t1, top, bottom, left, right = out.boxes[0]
            assert out.boxes.shape == (n, 6)
            vol = (t1 - t0) * (bottom - top) * (right - left)
            np.testing.assert_allclose(out.lambdas, 1 - vol / (4 * 8 * 8), rtol=1e-6)
            np.testing.assert_allclose(out.targets.numpy().sum(1), 1, rtol=1e-6)
            if variant == "temporal" and vol:
                assert (t0, top, left, bottom, right) == (t0, 0, 0, 8, 8)
    with pytest.raises(vc.VisionCoreError):
        vm.mix(x, np.arange(n))      # 4-D is not a clip batch


def test_mixing_errors():
    x = constant_batch(4)
    for make in (lambda: data.CutMix(alpha=0, num_classes=3), lambda: data.CutMix(alpha=-1, num_classes=3),
                 lambda: data.CutMix(prob=1.5, num_classes=3), lambda: data.Mixup(num_classes=0),
                 lambda: data.CutMix(num_classes=1 << 40), lambda: data.Cutout(0, num_classes=3),
                 lambda: data.VideoMix(alpha=float("nan"), num_classes=3),
                 lambda: data.CutMix(num_classes=3, label_smoothing=1.0)):
        with pytest.raises(vc.VisionCoreError):
            make()
    cutmix = data.CutMix(num_classes=3, seed=0)
    with pytest.raises(vc.VisionCoreError, match="outside 0..<3"):
        cutmix(x, np.array([0, 1, 2, 3]))
    with pytest.raises(vc.VisionCoreError, match="too small"):
        cutmix(x[:1], np.array([0]))
    with pytest.raises(vc.VisionCoreError):
        cutmix(x[0], np.array([0]))                     # not [N, C, H, W]
    with pytest.raises(vc.VisionCoreError):
        cutmix(x, np.zeros((4, 2), np.float32))         # soft targets of the wrong width
    with pytest.raises(vc.VisionCoreError):
        cutmix(vc.tensor(x.astype(np.int32)), np.arange(4) % 3)   # images must be float32
    # a failed call does not advance the generator
    a, b = data.CutMix(num_classes=3, seed=4), data.CutMix(num_classes=3, seed=4)
    with pytest.raises(vc.VisionCoreError):
        a(x, np.array([0, 1, 2, 5]))
    np.testing.assert_array_equal(a.mix(x, np.arange(4) % 3).boxes, b.mix(x, np.arange(4) % 3).boxes)
    # only CutMix and timm's Mixup have an off switch
    mixup = data.Mixup(num_classes=3)
    assert lib.vc_mixer_set_enabled(mixup._handle, 0) == _decls.VC_UNSUPPORTED
    assert b"CutMix" in lib.vc_last_error_message()


# the data handles with NULL outputs, absurd scalars and handles of the wrong kind

def test_data_handles_refuse_bad_arguments():
    x, y = synthetic(6)
    ds = data.TensorDataset(x, y)
    tf = data.Compose([])
    loader = data.DataLoader(ds, batch_size=2)
    mixer = data.CutMix(num_classes=5)
    handles = {"dataset": ds._handle, "transform": tf._handle, "loader": loader._handle, "mixer": mixer._handle}
    kinds = {"vc_dataset_": "dataset", "vc_transform_": "transform", "vc_loader_": "loader", "vc_mixer_": "mixer"}
    names = [n for n in _decls.FUNCTIONS if any(n.startswith(p) for p in kinds) and not n.endswith("_free")]
    assert len(names) >= 20
    # valid with these values: a flip with p = 0, a jitter that changes nothing, switching a mixer off; any seed
    ok_at_zero = {"vc_transform_add_horizontal_flip", "vc_transform_add_color_jitter", "vc_mixer_set_enabled"}
    calls = 0
    for name in names:
        kind = next(v for p, v in kinds.items() if name.startswith(p))
        _, argtypes = _decls.FUNCTIONS[name]
        if ctypes.c_void_p not in argtypes:
            continue
        for scalar in (-1, 1 << 40, 0):
            for live in (handles[kind], handles["mixer" if kind != "mixer" else "dataset"]):
                args = []
                for t in argtypes:
                    if t in (ctypes.c_float, ctypes.c_double):
                        args.append(float(scalar))
                    elif t in (ctypes.c_uint64, ctypes.c_size_t):
                        args.append(abs(scalar))
                    elif t is ctypes.c_int32:
                        args.append(min(scalar, (1 << 31) - 1))
                    elif t is ctypes.c_int64:
                        args.append(scalar)
                    else:
                        args.append(None)
                args[argtypes.index(ctypes.c_void_p)] = live
                status = getattr(lib, name)(*args)
                calls += 1
                if live == handles[kind] and (name in ok_at_zero and scalar == 0 or name == "vc_mixer_reseed"):
                    assert status == _decls.VC_OK, name
                else:
                    assert status != _decls.VC_OK, (name, scalar, live == handles[kind])
                    assert lib.vc_last_error_message().decode()
    assert calls > 100
    # the objects still work afterwards
    assert len(ds) == 6 and len(loader) == 3
    assert loader.batch(2)[0].shape == (2, 1, 8, 8)
    # freeing a handle of another kind is refused and leaves it alive
    assert lib.vc_loader_free(ds._handle) == _decls.VC_INVALID_HANDLE and len(ds) == 6


# a short training loop: the docs/data.md example in small

def tiny_net(seed, classes=10):
    rng = np.random.default_rng(seed)
    shapes = {"c1.w": (16, 1, 3, 3), "c1.b": (16,), "c2.w": (32, 16, 3, 3), "c2.b": (32,), "fc.w": (classes, 32 * 7 * 7), "fc.b": (classes,)}
    return {k: vc.tensor((rng.normal(size=s) * (np.sqrt(2 / np.prod(s[1:])) if len(s) > 1 else 0)).astype(np.float32),
                         requires_grad=True) for k, s in shapes.items()}


def forward(p, x):
    h = F.max_pool2d(F.relu(F.conv2d(x, p["c1.w"], p["c1.b"], padding=1)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, p["c2.w"], p["c2.b"], padding=1)), 2)
    return F.linear(h.reshape(-1, 32 * 7 * 7), p["fc.w"], p["fc.b"])


def test_short_training_loop_with_cutmix():
    if HAVE_FMNIST:
        train, test = data.FashionMNIST(train=False), None       # the 10k test split: quicker to open
    else:                                                        # synthetic: the class is the bright row band
        rng = np.random.default_rng(0)
        yy = rng.integers(0, 10, 2000)
        xx = rng.normal(0, 0.2, (2000, 1, 28, 28)).astype(np.float32)
        for i, c in enumerate(yy):
            xx[i, 0, c * 2:c * 2 + 3] += 1
        train = data.TensorDataset(xx, yy)
    loader = data.DataLoader(train, batch_size=64, shuffle=True, seed=0, num_workers=2,
                             transform=[data.RandomHorizontalFlip(), data.Normalize([0.2860], [0.3530])])
    cutmix = data.CutMix(alpha=1.0, prob=0.5, num_classes=10, seed=0)
    p = tiny_net(0)
    opt = vc.optim.AdamP(list(p.items()), lr=0.01)
    losses = []
    for step, (images, labels) in enumerate(loader):
        if step == 80:
            break
        images, targets = cutmix(images, labels)
        loss = F.cross_entropy(forward(p, images), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert np.mean(losses[-10:]) < np.mean(losses[:5]) - 0.3, losses
    eval_loader = data.DataLoader(train, batch_size=500, shuffle=True, seed=99, transform=[data.Normalize([0.2860], [0.3530])])
    x, y = eval_loader.batch(0)
    with vc.no_grad():
        accuracy = (forward(p, x).numpy().argmax(1) == y.numpy()).mean()
    assert accuracy > 0.6, accuracy


@pytest.mark.skipif(not HAVE_FMNIST, reason="Fashion-MNIST not installed (Debian's dataset-fashion-mnist)")
def test_docs_training_example_runs():
    """The Python example of docs/data.md, run as written; 60 steps of CutMix + AdamP learn most of the task."""
    doc = (HERE.parents[2] / "docs" / "data.md").read_text()
    section = doc[doc.index("## Python (`visioncore.data`)"):]
    code = section[section.index("```python\n") + 10:section.index("\n```", section.index("```python"))]
    scope = {}
    exec(compile(code, "docs/data.md", "exec"), scope)
    assert scope["accuracy"] > 0.6, scope["accuracy"]
