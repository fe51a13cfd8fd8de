"""Datasets, a deterministic loader, transforms and the mixing augmentations (CutMix, timm's Mixup, Mixup,
Cutout, VideoMix), so that a training loop can be written in Python:

    import visioncore as vc
    from visioncore import data

    train = data.FashionMNIST(train=True)                  # /usr/share/datasets/fashion-mnist
    loader = data.DataLoader(train, batch_size=128, shuffle=True, seed=0, num_workers=2,
                             transform=[data.RandomHorizontalFlip(), data.Normalize([0.2860], [0.3530])])
    cutmix = data.CutMix(alpha=1.0, num_classes=10, seed=0)
    for epoch in range(2):
        loader.set_epoch(epoch)
        for images, labels in loader:                      # visioncore Tensors [128, 1, 28, 28], int64 [128]
            images, targets = cutmix(images, labels)       # targets float32 [128, 10], rows sum to 1
            ...

Everything random is seeded: a loader's batches depend only on (seed, epoch, batch index) - not on
`num_workers` or timing - and a mixer draws from its own generator seeded at creation. Errors raise
`visioncore.VisionCoreError` with the library's message.
"""
import collections
import ctypes
import os

import numpy as np

from . import _decls
from ._lib import check, lib
from .tensor import Tensor, as_tensor

__all__ = ["Dataset", "FashionMNIST", "ImageFolder", "TensorDataset", "DataLoader", "Compose", "RandomResizedCrop",
           "RandomHorizontalFlip", "Resize", "CenterCrop", "Normalize", "ColorJitter", "CutMix", "Mixup", "TimmMixup",
           "Cutout", "VideoMix", "MixOutput"]


def _out(fn, *args):
    h = ctypes.c_void_p()
    check(fn(*args, ctypes.byref(h)))
    return h


class _Handle:
    """Owns one library handle, released by `_free` (a vc_*_free function) when the object goes away."""
    _free = None

    def __del__(self):
        h = getattr(self, "_handle", None)
        if h and lib is not None:
            type(self)._free(h)
            self._handle = None


# datasets

class Dataset(_Handle):
    """A dataset held by the library: `len(ds)`, `ds[i]` -> (input Tensor, label int), `ds.classes`."""
    _free = staticmethod(lib.vc_dataset_free)

    def __init__(self, handle):
        self._handle = handle

    def __len__(self) -> int:
        n = ctypes.c_int64()
        check(lib.vc_dataset_len(self._handle, ctypes.byref(n)))
        return n.value

    def __getitem__(self, index: int):
        index, n = int(index), len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} is out of range for a dataset of {n}")   # ends `for x in ds`
        x, y = ctypes.c_void_p(), ctypes.c_int64()
        check(lib.vc_dataset_get(self._handle, index, ctypes.byref(x), ctypes.byref(y)))
        return Tensor(x), y.value

    @property
    def num_classes(self) -> int:
        n = ctypes.c_int64()
        check(lib.vc_dataset_num_classes(self._handle, ctypes.byref(n)))
        return n.value

    @property
    def classes(self) -> list:
        names = []
        for i in range(self.num_classes):
            s = ctypes.c_char_p()
            check(lib.vc_dataset_class_name(self._handle, i, ctypes.byref(s)))
            names.append(s.value.decode("utf-8", "replace"))
        return names


class FashionMNIST(Dataset):
    """Fashion-MNIST from its IDX files (.gz or not) in `root` (default: /usr/share/datasets/fashion-mnist, from
    Debian's dataset-fashion-mnist). Examples are float32 [1, 28, 28] in [0, 1], labels 0...9."""

    def __init__(self, root=None, train: bool = True):
        super().__init__(_out(lib.vc_dataset_fashion_mnist, None if root is None else os.fsencode(root), int(bool(train))))


class ImageFolder(Dataset):
    """torchvision's ImageFolder: root/<class>/**/<image> (.jpg .jpeg .png .bmp), classes in sorted order;
    examples float32 RGB [3, H, W] in [0, 1]. `skip_unreadable=True` decodes every image once now and leaves
    out the ones that fail; otherwise such an image raises when it is loaded. `label_map_root` gives each image
    its ReLabel label map (<label_map_root>/<folder>/<stem>.safetensors, entry "label_map" [2, k, S, S]) for
    `DataLoader.relabel_batch`."""

    def __init__(self, root, skip_unreadable: bool = False, label_map_root=None):
        super().__init__(_out(lib.vc_dataset_image_folder, os.fsencode(root), int(bool(skip_unreadable)),
                              None if label_map_root is None else os.fsencode(label_map_root)))


class TensorDataset(Dataset):
    """In-memory examples: inputs [N, ...] (numpy or Tensor) and integer labels [N] (>= 0), both copied."""

    def __init__(self, inputs, labels):
        y = np.asarray(labels.numpy() if isinstance(labels, Tensor) else labels)
        if y.dtype.kind not in "iu":
            raise TypeError(f"labels must be integers, got {y.dtype}")
        x, t = as_tensor(inputs), as_tensor(y.astype(np.int64))    # held until the call returns
        super().__init__(_out(lib.vc_dataset_from_tensors, x._handle, t._handle))


# transforms (specifications; the loader builds them into one library pipeline)

class RandomResizedCrop:
    """torchvision's RandomResizedCrop (bilinear, antialiased)."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.scale, self.ratio = tuple(scale), tuple(ratio)

    def _add(self, h):
        check(lib.vc_transform_add_random_resized_crop(h, self.size[0], self.size[1], float(self.scale[0]),
                                                       float(self.scale[1]), float(self.ratio[0]), float(self.ratio[1])))


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def _add(self, h):
        check(lib.vc_transform_add_horizontal_flip(h, float(self.p)))


class Resize:
    """Resize(int) resizes the shorter side (torchvision); Resize((h, w)) resizes exactly."""

    def __init__(self, size):
        self.size = size

    def _add(self, h):
        hh, ww = (self.size, 0) if isinstance(self.size, int) else self.size
        check(lib.vc_transform_add_resize(h, int(hh), int(ww)))


class CenterCrop:
    def __init__(self, size):
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def _add(self, h):
        check(lib.vc_transform_add_center_crop(h, int(self.size[0]), int(self.size[1])))


class Normalize:
    def __init__(self, mean, std):
        self.mean, self.std = list(mean), list(std)

    def _add(self, h):
        if len(self.mean) != len(self.std):
            raise ValueError(f"Normalize: {len(self.mean)} means for {len(self.std)} stds")
        n = len(self.mean)
        check(lib.vc_transform_add_normalize(h, (ctypes.c_float * max(n, 1))(*self.mean),
                                             (ctypes.c_float * max(n, 1))(*self.std), n))


class ColorJitter:
    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0):
        self.args = (float(brightness), float(contrast), float(saturation), float(hue))

    def _add(self, h):
        check(lib.vc_transform_add_color_jitter(h, *self.args))


class Compose(_Handle):
    """Transforms applied in order to each [C, H, W] example; `compose(image, seed=0)` runs them once."""
    _free = staticmethod(lib.vc_transform_free)

    def __init__(self, transforms):
        self.transforms = list(transforms)
        self._handle = _out(lib.vc_transform_create)
        for t in self.transforms:
            if not hasattr(t, "_add"):
                raise TypeError(f"{t!r} is not a visioncore.data transform")
            t._add(self._handle)

    def _add(self, h):          # a Compose inside a Compose adds its steps
        for t in self.transforms:
            t._add(h)

    def __call__(self, image, seed: int = 0) -> Tensor:
        x = as_tensor(image)
        return Tensor(_out(lib.vc_transform_apply, self._handle, x._handle, int(seed)))


# loader

class DataLoader(_Handle):
    """PyTorch's DataLoader over a `Dataset`: iterating gives (inputs, labels) Tensors, one epoch per `for` loop.

    The order of epoch e comes from (seed, e) and each example's transform from (seed, e, index), so batches are
    the same across runs and for every `num_workers` (threads that build the next batches while the loop runs).
    Each full iteration moves to the next epoch; `set_epoch(e)` chooses one (as DistributedSampler's), and
    `loader.batch(i, epoch)` rebuilds any batch on its own (to resume mid-epoch)."""
    _free = staticmethod(lib.vc_loader_free)

    def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = True, drop_last: bool = False,
                 seed: int = 0, num_workers: int = 0, transform=None):
        if not isinstance(dataset, Dataset):
            raise TypeError("dataset must be a visioncore.data.Dataset (FashionMNIST, ImageFolder, TensorDataset)")
        if transform is not None and not isinstance(transform, Compose):
            transform = Compose(transform if isinstance(transform, (list, tuple)) else [transform])
        self.dataset, self.transform = dataset, transform
        self.batch_size, self.seed, self.num_workers = int(batch_size), int(seed), int(num_workers)
        self.epoch = 0
        if not 0 <= self.seed < 1 << 64:
            raise ValueError(f"seed must be in [0, 2**64), got {seed}")
        self._handle = _out(lib.vc_loader_create, dataset._handle, None if transform is None else transform._handle,
                            self.batch_size, int(bool(shuffle)), int(bool(drop_last)), self.seed, self.num_workers)

    def __len__(self) -> int:
        n = ctypes.c_int64()
        check(lib.vc_loader_num_batches(self._handle, ctypes.byref(n)))
        return n.value

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def batch(self, index: int, epoch=None):
        """Batch `index` of `epoch` (default: the current one) as (inputs, labels)."""
        x, y = ctypes.c_void_p(), ctypes.c_void_p()
        check(lib.vc_loader_batch(self._handle, self.epoch if epoch is None else int(epoch), int(index),
                                  ctypes.byref(x), ctypes.byref(y)))
        return Tensor(x), Tensor(y)

    def relabel_batch(self, index: int, epoch=None, num_classes: int = 1000, convention: str = "official"):
        """Batch `index` as (inputs, labels, soft targets [B, num_classes]): ReLabel's LabelPooling of each
        example's label map over its RandomResizedCrop box. `convention` 'official' reproduces the reference's
        box (rows read as x), 'geometric' the correct one. Feed the targets to CutMix, as ReLabel trains."""
        if convention not in ("official", "geometric"):
            raise ValueError(f"convention must be 'official' or 'geometric', got {convention!r}")
        x, y, t = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
        check(lib.vc_loader_batch_relabel(self._handle, self.epoch if epoch is None else int(epoch), int(index),
                                          int(num_classes), int(convention == "geometric"),
                                          ctypes.byref(x), ctypes.byref(y), ctypes.byref(t)))
        return Tensor(x), Tensor(y), Tensor(t)

    def __iter__(self):
        epoch = self.epoch
        for i in range(len(self)):
            yield self.batch(i, epoch)
        self.epoch = epoch + 1


# mixing

MixOutput = collections.namedtuple("MixOutput", "images targets lambdas boxes")
MixOutput.__doc__ = """What a mixer did: the mixed batch and float32 [N, K] targets (Tensors), each sample's weight of
its own target after the area correction (numpy float32 [N]) and the pasted or erased box per sample (numpy int64
[N, 4] top, bottom, left, right; [N, 6] with t0, t1 first for VideoMix; -1 where there is none)."""


class _Mixer(_Handle):
    _free = staticmethod(lib.vc_mixer_free)

    def __init__(self, handle):
        self._handle = handle

    def mix(self, x, target) -> MixOutput:
        """Mixes a float32 batch with class indices [N] or soft targets [N, K]."""
        x = as_tensor(np.asarray(x, dtype=np.float32)) if not isinstance(x, Tensor) else x
        if not isinstance(target, Tensor):
            t = np.asarray(target)
            target = as_tensor(t.astype(np.float32) if t.dtype.kind == "f" else t.astype(np.int64))
        outs = [ctypes.c_void_p() for _ in range(4)]
        check(lib.vc_mixer_apply(self._handle, x._handle, target._handle, *(ctypes.byref(o) for o in outs)))
        images, targets, lambdas, boxes = (Tensor(o) for o in outs)
        return MixOutput(images, targets, lambdas.numpy(), boxes.numpy())

    def manual_seed(self, seed: int) -> "_Mixer":
        """Restarts the generator as if created with `seed` (e.g. from (seed, epoch, step) to resume mid-run)."""
        check(lib.vc_mixer_reseed(self._handle, _seed(seed)))
        return self

    def __call__(self, x, target):
        """(mixed batch, soft targets), as timm's Mixup."""
        out = self.mix(x, target)
        return out.images, out.targets


def _seed(seed):
    seed = int(seed)
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return seed


class CutMix(_Mixer):
    """CutMix as the official clovaai/CutMix-PyTorch: with probability `prob`, lambda ~ Beta(alpha, alpha), a
    random partner per sample and one box of side sqrt(1 - lambda) pasted from it, lambda corrected to the
    pasted area. `label_smoothing` > 0 gives ReLabel's variant. `mixup_enabled = False` turns it off."""

    def __init__(self, alpha: float = 1.0, prob: float = 1.0, *, num_classes: int, label_smoothing: float = 0.0,
                 seed: int = 0):
        super().__init__(_out(lib.vc_mixer_cutmix, float(alpha), float(prob), int(num_classes), float(label_smoothing),
                              _seed(seed)))

    @property
    def mixup_enabled(self):
        return getattr(self, "_enabled", True)

    @mixup_enabled.setter
    def mixup_enabled(self, value):
        check(lib.vc_mixer_set_enabled(self._handle, int(bool(value))))
        self._enabled = bool(value)


class Mixup(_Mixer):
    """Mixup as facebookresearch/mixup-cifar10: lambda ~ Beta(alpha, alpha), a random partner, a blend of
    inputs and targets; any [N, ...] batch."""

    def __init__(self, alpha: float = 1.0, prob: float = 1.0, *, num_classes: int, label_smoothing: float = 0.0,
                 seed: int = 0):
        super().__init__(_out(lib.vc_mixer_mixup, float(alpha), float(prob), int(num_classes), float(label_smoothing),
                              _seed(seed)))


class TimmMixup(CutMix):
    """timm's `Mixup` (timm.data.Mixup): same arguments and call, `mixup_fn(x, target) -> (x, target)`; sample i
    is mixed with sample N-1-i, so the batch size must be even. `seed` replaces timm's global numpy RNG."""

    _MODES = {"batch": _decls.VC_MIX_MODE_BATCH, "pair": _decls.VC_MIX_MODE_PAIR, "elem": _decls.VC_MIX_MODE_ELEM}

    def __init__(self, mixup_alpha: float = 1.0, cutmix_alpha: float = 0.0, cutmix_minmax=None, prob: float = 1.0,
                 switch_prob: float = 0.5, mode: str = "batch", correct_lam: bool = True, label_smoothing: float = 0.1,
                 num_classes: int = 1000, seed: int = 0):
        if mode not in self._MODES:
            raise ValueError(f"mode must be one of {sorted(self._MODES)}, got {mode!r}")
        lo, hi = (0.0, 0.0) if cutmix_minmax is None else (float(cutmix_minmax[0]), float(cutmix_minmax[1]))
        _Mixer.__init__(self, _out(lib.vc_mixer_timm, float(mixup_alpha), float(cutmix_alpha), lo, hi, float(prob),
                                   float(switch_prob), self._MODES[mode], int(bool(correct_lam)), float(label_smoothing),
                                   int(num_classes), _seed(seed)))


class Cutout(_Mixer):
    """Cutout as uoguelph-mlrg/Cutout: `holes` squares of side `length` zeroed per image (apply after
    normalizing); targets are the labels as one-hot rows."""

    def __init__(self, length: int, holes: int = 1, *, num_classes: int, label_smoothing: float = 0.0, seed: int = 0):
        super().__init__(_out(lib.vc_mixer_cutout, int(length), int(holes), int(num_classes), float(label_smoothing),
                              _seed(seed)))


class VideoMix(_Mixer):
    """VideoMix on clips [N, C, T, H, W]: variant 'spatial', 'temporal' or 'spatio_temporal' cuboid pasted from
    a partner clip, labels mixed by the voxel fraction."""

    _VARIANTS = {"spatial": _decls.VC_VIDEOMIX_SPATIAL, "temporal": _decls.VC_VIDEOMIX_TEMPORAL,
                 "spatio_temporal": _decls.VC_VIDEOMIX_SPATIO_TEMPORAL}

    def __init__(self, variant: str = "spatial", alpha: float = 1.0, prob: float = 1.0, *, num_classes: int,
                 label_smoothing: float = 0.0, seed: int = 0):
        if variant not in self._VARIANTS:
            raise ValueError(f"variant must be one of {sorted(self._VARIANTS)}, got {variant!r}")
        super().__init__(_out(lib.vc_mixer_videomix, self._VARIANTS[variant], float(alpha), float(prob), int(num_classes),
                              float(label_smoothing), _seed(seed)))
