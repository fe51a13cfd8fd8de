"""Geometric sampling functions of visioncore.functional (torch.nn.functional names and semantics)."""
from ._lib import call, lib
from .tensor import Tensor, as_tensor

__all__ = ["grid_sample"]


def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """Samples `input` [N, C, H, W] at the normalized (x, y) locations of `grid` [N, Ho, Wo, 2] -> [N, C, Ho, Wo].

    As torch.nn.functional.grid_sample with mode="bilinear" and padding_mode="zeros" (the only ones supported;
    others raise ValueError). align_corners=None means False, as in PyTorch. NaN or infinite grid values give
    NaN; locations outside the image fade to 0.
    """
    if mode != "bilinear":
        raise ValueError(f"grid_sample: only mode='bilinear' is supported, got {mode!r}")
    if padding_mode != "zeros":
        raise ValueError(f"grid_sample: only padding_mode='zeros' is supported, got {padding_mode!r}")
    x, g = as_tensor(input), as_tensor(grid)
    out = Tensor(call(lib.vc_grid_sample, x._handle, g._handle, bool(align_corners)))
    return out if isinstance(input, Tensor) or isinstance(grid, Tensor) else out.numpy()
