"""``tl.backends.mps``: Apple's Metal backend, which tensorlib does not have
(``torch.backends.mps``). Scripts that pick a device test it first:

>>> device = "mps" if tl.backends.mps.is_available() else "cpu"      # "cpu"
"""
from __future__ import annotations

__all__ = ["is_available", "is_built", "is_macos13_or_newer"]


def is_available() -> bool:
    """False: tensorlib has no Metal (MPS) backend."""
    return False


def is_built() -> bool:
    """False: tensorlib is never built with Metal (MPS) support."""
    return False


def is_macos13_or_newer(major: int = 13, minor: int = 0) -> bool:
    """False, as PyTorch answers where MPS is not built."""
    return False
