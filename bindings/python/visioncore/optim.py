"""visioncore.optim: torch.optim-style optimizers over libvisioncore tensors that require gradients.

    w = visioncore.tensor(np.zeros((5, 7), np.float32), requires_grad=True)
    opt = visioncore.optim.AdamP([w], lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-2, delta=0.1, wd_ratio=0.1,
                                 nesterov=False)
    loss.backward(); opt.step(); opt.zero_grad()

Parameters are updated in place (every handle to them sees the new values). `params` is an iterable of
Tensors, of (name, Tensor) pairs (names key the saved state), or of dicts {"params": [...], **options} for
parameter groups, as in torch. `param_groups[i]["lr"]` may be changed between steps (schedulers do).
SGD, Adam and AdamW follow torch.optim; AdamP and SGDP follow the `adamp` 0.3.0 package.
"""
import ctypes
import json

from ._lib import check, lib
from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "AdamP", "SGDP", "lr_scheduler"]


class Optimizer:
    """Base class: holds the library's optimizer handle and torch-like `param_groups`."""

    _kind = ""

    def __init__(self, params, defaults):
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        tensors, names, ids, options = [], [], [], []
        self.param_groups = []
        for gi, g in enumerate(groups):
            opts = {k: v for k, v in g.items() if k != "params"}
            for k in opts:
                if k not in defaults:
                    raise ValueError(f"{self._kind}: unknown option '{k}'")
            full = dict(defaults, **opts)
            if full.get("lr") is None:
                raise ValueError(f"{self._kind}: lr is required")
            members = []
            for p in g["params"]:
                name, t = p if isinstance(p, tuple) else (str(len(tensors)), p)
                if not isinstance(t, Tensor):
                    raise TypeError(f"{self._kind}: parameters must be visioncore.Tensor, got {type(t).__name__}")
                tensors.append(t)
                names.append(name.encode())
                ids.append(gi)
                members.append(t)
            options.append({k: (list(v) if isinstance(v, tuple) else v) for k, v in full.items()})
            self.param_groups.append(dict(full, params=members))
        n = len(tensors)
        handles = (ctypes.c_void_p * n)(*[t._handle for t in tensors])
        cnames = (ctypes.c_char_p * n)(*names)
        cids = (ctypes.c_int64 * n)(*ids)
        self._handle = ctypes.c_void_p()
        check(lib.vc_optimizer_create(self._kind.encode(), handles, n, cnames, cids,
                                      json.dumps(options).encode(), ctypes.byref(self._handle)))
        self._lrs = [g["lr"] for g in self.param_groups]

    def _sync_lrs(self):
        for i, g in enumerate(self.param_groups):
            if g["lr"] != self._lrs[i]:
                check(lib.vc_optimizer_set_lr(self._handle, i, float(g["lr"])))
                self._lrs[i] = g["lr"]

    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure() if given (called first)."""
        loss = closure() if closure is not None else None
        self._sync_lrs()
        check(lib.vc_optimizer_step(self._handle))
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        check(lib.vc_optimizer_zero_grad(self._handle))

    def save_state(self, path) -> None:
        """Writes the optimizer state (hyper-parameters, steps, moments) to a safetensors file, atomically."""
        self._sync_lrs()
        check(lib.vc_optimizer_save_state(self._handle, str(path).encode()))

    def load_state(self, path) -> None:
        """Loads a state written by save_state (same kind, parameter names and shapes), including the rates."""
        check(lib.vc_optimizer_load_state(self._handle, str(path).encode()))
        self._pull_lrs()

    def _pull_lrs(self):
        """Reads the rates the library holds (after a load or a scheduler step) into param_groups."""
        for i, g in enumerate(self.param_groups):
            lr = ctypes.c_double()
            check(lib.vc_optimizer_get_lr(self._handle, i, ctypes.byref(lr)))
            g["lr"] = self._lrs[i] = lr.value

    def __del__(self):
        h = getattr(self, "_handle", None)
        if h and lib is not None:
            lib.vc_optimizer_free(h)
            self._handle = None


class SGD(Optimizer):
    """torch.optim.SGD(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False)."""
    _kind = "SGD"

    def __init__(self, params, lr=None, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov))


class Adam(Optimizer):
    """torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)."""
    _kind = "Adam"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))


class AdamW(Adam):
    """torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False)."""
    _kind = "AdamW"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


class AdamP(Optimizer):
    """adamp.AdamP(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, delta=0.1, wd_ratio=0.1,
    nesterov=False)."""
    _kind = "AdamP"

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, delta=0.1, wd_ratio=0.1,
                 nesterov=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, delta=delta,
                                      wd_ratio=wd_ratio, nesterov=nesterov))


class SGDP(Optimizer):
    """adamp.SGDP(params, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False, eps=1e-8, delta=0.1,
    wd_ratio=0.1)."""
    _kind = "SGDP"

    def __init__(self, params, lr=None, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, eps=1e-8,
                 delta=0.1, wd_ratio=0.1):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, eps=eps, delta=delta, wd_ratio=wd_ratio))


class _LRSchedulers:
    """visioncore.optim.lr_scheduler: StepLR, MultiStepLR, CosineAnnealingLR and WarmupCosineLR, stepped with
    `.step()` like torch's (per epoch, or per iteration with `steps_per_epoch`)."""

    class _Scheduler:
        _kind = ""

        def __init__(self, optimizer, options):
            optimizer._sync_lrs()
            self.optimizer = optimizer
            self._handle = ctypes.c_void_p()
            check(lib.vc_scheduler_create(self._kind.encode(), optimizer._handle, json.dumps(options).encode(),
                                          ctypes.byref(self._handle)))
            optimizer._pull_lrs()

        def step(self):
            self.optimizer._sync_lrs()
            check(lib.vc_scheduler_step(self._handle))
            self.optimizer._pull_lrs()

        def get_last_lr(self):
            return [g["lr"] for g in self.optimizer.param_groups]

        def __del__(self):
            h = getattr(self, "_handle", None)
            if h and lib is not None:
                lib.vc_scheduler_free(h)
                self._handle = None

    class StepLR(_Scheduler):
        _kind = "step"

        def __init__(self, optimizer, step_size, gamma=0.1, steps_per_epoch=1):
            super().__init__(optimizer, {"step_size": step_size, "gamma": gamma, "steps_per_epoch": steps_per_epoch})

    class MultiStepLR(_Scheduler):
        _kind = "multistep"

        def __init__(self, optimizer, milestones, gamma=0.1, steps_per_epoch=1):
            super().__init__(optimizer, {"milestones": list(milestones), "gamma": gamma, "steps_per_epoch": steps_per_epoch})

    class WarmupCosineLR(_Scheduler):
        _kind = "cosine"

        def __init__(self, optimizer, warmup, total, warmup_start_factor=1 / 3, min_lr=0.0, steps_per_epoch=1):
            super().__init__(optimizer, {"warmup": warmup, "total": total, "warmup_start_factor": warmup_start_factor,
                                         "min_lr": min_lr, "steps_per_epoch": steps_per_epoch})

    class CosineAnnealingLR(WarmupCosineLR):
        def __init__(self, optimizer, T_max, eta_min=0.0):
            super().__init__(optimizer, warmup=0, total=T_max, min_lr=eta_min)


lr_scheduler = _LRSchedulers
