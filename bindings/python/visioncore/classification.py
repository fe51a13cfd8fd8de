"""Image classification mirroring timm: `create_model(name, num_classes=...)`, `model.load_state_dict(path)`,
`model.eval()`, `model(x)`, `list_models()`, and timm's eval transform (`model.transform(image)`,
`resolve_data_config(model)`).

    model = visioncore.create_model("resnet50").eval()
    model.load_state_dict("resnet50.safetensors")          # timm's key names; strict by default
    logits = model(model.transform("cat.png"))              # visioncore.Tensor [1, 1000]

Parameters are visioncore Tensors sharing the model's storage and gradients, so torch-style training works:

    opt = visioncore.optim.AdamP(model.parameters(), lr=1e-3)
    loss = visioncore.nn.functional.cross_entropy(model(x), y); opt.zero_grad(); loss.backward(); opt.step()
"""
import ctypes
import fnmatch
import os

import numpy as np

from . import _decls
from ._lib import call, check, lib
from .io import _Map
from .tensor import Tensor, as_tensor

__all__ = ["Model", "create_model", "list_models", "resolve_data_config", "imagenet_class_names"]


def list_models(filter: str = "") -> list:
    """The model names create_model accepts, in registry order; `filter` is a wildcard pattern as timm's
    (e.g. "rexnet*")."""
    n = ctypes.c_int64()
    check(lib.vc_model_list_count(ctypes.byref(n)))
    names = []
    for i in range(n.value):
        s = ctypes.c_char_p()
        check(lib.vc_model_list_name(i, ctypes.byref(s)))
        names.append(s.value.decode())
    return [m for m in names if not filter or fnmatch.fnmatch(m, filter)]


def _input_tensor(x) -> Tensor:
    if isinstance(x, Tensor):
        return x
    a = np.asarray(x)
    if a.dtype != np.float32:
        a = a.astype(np.float32)
    return as_tensor(a)


class Model:
    """A classification model of the registry (ResNet, ReXNet, PiT by timm name). Create it with
    `create_model`. Like a torch module it starts in training mode; call `.eval()` for inference."""

    def __init__(self, handle):
        self._handle = handle
        name = ctypes.c_char_p()
        check(lib.vc_model_name(handle, ctypes.byref(name)))
        self.name = name.value.decode()

    # state

    def load_state_dict(self, state_dict, strict: bool = True) -> "Model":
        """Loads weights: a path to a safetensors file with timm's key names, or a dict name -> array/Tensor.
        Mismatched weights (another model, another num_classes) raise VisionCoreError listing the missing,
        unexpected and mis-shaped keys; the model is then unchanged. Returns the model."""
        if isinstance(state_dict, (str, bytes, os.PathLike)):
            if not strict:
                from .io import load_file
                return self.load_state_dict(load_file(state_dict), strict=False)
            check(lib.vc_model_load(self._handle, os.fsencode(state_dict)))
            return self
        if not isinstance(state_dict, dict):
            raise TypeError(f"load_state_dict expects a path or a dict, got {type(state_dict).__name__}")
        h = ctypes.c_void_p()
        check(lib.vc_tensor_map_create(ctypes.byref(h)))
        m = _Map(h)
        for name, value in state_dict.items():
            if not isinstance(name, str):
                raise TypeError(f"state dict keys must be str, got {type(name).__name__}")
            t = value if isinstance(value, Tensor) else Tensor.from_numpy(np.asarray(value))
            check(lib.vc_tensor_map_set(m.handle, name.encode(), t._handle, _decls.VC_STORE_NATIVE))
        check(lib.vc_model_load_state_dict(self._handle, m.handle, int(bool(strict))))
        return self

    def state_dict(self) -> dict:
        """Parameters and buffers by timm's key names, as numpy copies, in PyTorch's order."""
        h = ctypes.c_void_p()
        check(lib.vc_model_state_dict(self._handle, ctypes.byref(h)))
        m = _Map(h)
        n = ctypes.c_int64()
        check(lib.vc_tensor_map_count(m.handle, ctypes.byref(n)))
        out = {}
        for i in range(n.value):
            name = ctypes.c_char_p()
            check(lib.vc_tensor_map_name(m.handle, i, ctypes.byref(name)))
            out[name.value.decode()] = Tensor(call(lib.vc_tensor_map_get, m.handle, name.value)).numpy()
        return out

    def save(self, path) -> None:
        """Writes the state dict to a safetensors file (timm's key names), atomically."""
        check(lib.vc_model_save(self._handle, os.fsencode(path)))

    # modes

    def train(self, mode: bool = True) -> "Model":
        check(lib.vc_model_set_training(self._handle, int(bool(mode))))
        return self

    def eval(self) -> "Model":
        return self.train(False)

    @property
    def training(self) -> bool:
        flag = ctypes.c_int32()
        check(lib.vc_model_is_training(self._handle, ctypes.byref(flag)))
        return bool(flag.value)

    # forward

    def forward(self, x) -> Tensor:
        """Logits [N, num_classes] of a float32 [N, C, H, W] batch (a Tensor or a numpy array). Records the graph
        for `.backward()` unless inside `visioncore.no_grad()`."""
        t = _input_tensor(x)  # held until the call returns (a temporary would free its handle first)
        return Tensor(call(lib.vc_model_forward, self._handle, t._handle))

    __call__ = forward

    def forward_features(self, x) -> Tensor:
        """The trunk's output before pooling ([N, C, h, w] for CNNs, tokens [N, T + h*w, C] for PiT)."""
        t = _input_tensor(x)
        return Tensor(call(lib.vc_model_forward_features, self._handle, t._handle))

    def forward_head(self, x, pre_logits: bool = False) -> Tensor:
        """Pooling and classifier on forward_features' output ([N, num_features] with pre_logits=True)."""
        t = _input_tensor(x)
        return Tensor(call(lib.vc_model_forward_head, self._handle, t._handle, int(bool(pre_logits))))

    # parameters

    def named_parameters(self) -> list:
        """[(name, Tensor)] in PyTorch's order; the Tensors share the model's data and gradients (an optimizer
        over them trains the model). Read them with .numpy(); setting requires_grad on one detaches it."""
        n = ctypes.c_int64()
        check(lib.vc_model_parameter_count(self._handle, ctypes.byref(n)))
        out = []
        for i in range(n.value):
            name = ctypes.c_char_p()
            check(lib.vc_model_parameter_name(self._handle, i, ctypes.byref(name)))
            out.append((name.value.decode(), Tensor(call(lib.vc_model_parameter, self._handle, i))))
        return out

    def parameters(self) -> list:
        return [t for _, t in self.named_parameters()]

    def zero_grad(self) -> None:
        check(lib.vc_model_zero_grad(self._handle))

    @property
    def num_params(self) -> int:
        """Number of parameter elements (sum of p.numel(), as timm counts them)."""
        n = ctypes.c_int64()
        check(lib.vc_model_num_params(self._handle, 0, ctypes.byref(n)))
        return n.value

    @property
    def num_classes(self) -> int:
        n = ctypes.c_int64()
        check(lib.vc_model_num_classes(self._handle, ctypes.byref(n), None))
        return n.value

    @property
    def num_features(self) -> int:
        n = ctypes.c_int64()
        check(lib.vc_model_num_classes(self._handle, None, ctypes.byref(n)))
        return n.value

    # data config and transform

    @property
    def pretrained_cfg(self) -> dict:
        """timm's pretrained cfg fields: input_size, mean, std, crop_pct, interpolation, num_classes."""
        size = (ctypes.c_int64 * 3)()
        mean, std = (ctypes.c_float * 4)(), (ctypes.c_float * 4)()
        crop, interp = ctypes.c_double(), ctypes.c_int32()
        check(lib.vc_model_input_config(self._handle, size, mean, std, 4, ctypes.byref(crop), ctypes.byref(interp)))
        c = size[0]
        # float32 values printed shortest (0.485, not 0.48500001430511475), as timm's config has them
        return {"input_size": tuple(size), "mean": tuple(float(str(np.float32(v))) for v in mean[:c]),
                "std": tuple(float(str(np.float32(v))) for v in std[:c]), "crop_pct": crop.value,
                "interpolation": "bilinear" if interp.value == _decls.VC_RESIZE_BILINEAR else "bicubic",
                "num_classes": self.num_classes}

    def transform(self, image) -> Tensor:
        """timm's eval transform for this model of a path or a uint8 [H, W, C] image (numpy or Tensor):
        float32 [1, C, H, W]. The resize is bit-exact with PIL's."""
        if isinstance(image, (str, bytes, os.PathLike)):
            return Tensor(call(lib.vc_image_eval_transform_file, os.fsencode(image), self._handle))
        t = image if isinstance(image, Tensor) else as_tensor(np.ascontiguousarray(image))
        return Tensor(call(lib.vc_image_eval_transform, t._handle, self._handle))

    def __del__(self):
        h = getattr(self, "_handle", None)
        if h and lib is not None:
            lib.vc_model_free(h)
            self._handle = None

    def __repr__(self):
        return f"visioncore.Model({self.name!r}, num_classes={self.num_classes}, num_params={self.num_params})"


def create_model(model_name: str, pretrained: bool = False, num_classes: int = None, in_chans: int = 3,
                 drop_path_rate: float = 0.0, seed: int = 0, checkpoint_path: str = None) -> Model:
    """timm.create_model: a freshly initialized model (seeded by `seed`), in training mode. `num_classes`
    defaults to the model's (1000); 0 removes the classifier. Weights load from `checkpoint_path` (timm-format
    safetensors); `pretrained=True` needs one, as nothing is downloaded."""
    if pretrained and not checkpoint_path:
        raise ValueError("create_model: pretrained=True needs checkpoint_path (a timm-format safetensors file); "
                         "VisionCore downloads nothing")
    h = ctypes.c_void_p()
    nc = 1000 if num_classes is None else int(num_classes)
    check(lib.vc_model_create(str(model_name).encode(), nc, int(in_chans), float(drop_path_rate),
                              int(seed) & 0xFFFFFFFFFFFFFFFF, ctypes.byref(h)))
    model = Model(h)
    if checkpoint_path:
        model.load_state_dict(checkpoint_path)
    return model


def resolve_data_config(model: Model) -> dict:
    """timm.data.resolve_data_config({}, model=model): input_size, interpolation, mean, std, crop_pct,
    crop_mode."""
    cfg = model.pretrained_cfg
    return {"input_size": cfg["input_size"], "interpolation": cfg["interpolation"], "mean": cfg["mean"],
            "std": cfg["std"], "crop_pct": cfg["crop_pct"], "crop_mode": "center"}


def imagenet_class_names() -> list:
    """The 1000 ImageNet-1k class names (torchvision's), by class index."""
    names = []
    for i in range(1000):
        s = ctypes.c_char_p()
        check(lib.vc_imagenet_class_name(i, ctypes.byref(s)))
        names.append(s.value.decode())
    return names
