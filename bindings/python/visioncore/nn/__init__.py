"""visioncore.nn: as torch.nn, for now its `functional` namespace (ops and losses)."""
from . import functional

__all__ = ["functional"]
