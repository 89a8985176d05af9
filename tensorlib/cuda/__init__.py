"""CUDA support: device queries, memory statistics and tensorlib's own GPU kernels.

Everything here imports without CuPy and without a GPU: queries answer
``False``/``0`` and kernels are only compiled when a CUDA tensor first needs
them. Kernel sources live in :mod:`tensorlib.cuda.sources` as plain CUDA C++
so the test suite can compile-check them through NVRTC on machines with no GPU.

>>> import tensorlib as tl
>>> tl.cuda.is_available()
False
"""
from __future__ import annotations

from ._runtime import (current_device, device_count, empty_cache, get_device_name,
                       get_device_properties, is_available, max_memory_allocated,
                       max_memory_reserved, memory_allocated, memory_reserved, memory_stats,
                       pin_memory, reset_peak_memory_stats, set_device, synchronize)
from .bindings import install as _install
from .bindings import missing_cuda_kernels

__all__ = ["current_device", "device_count", "empty_cache", "get_device_name",
           "get_device_properties", "is_available", "max_memory_allocated",
           "max_memory_reserved", "memory_allocated", "memory_reserved", "memory_stats",
           "missing_cuda_kernels", "pin_memory", "reset_peak_memory_stats", "set_device",
           "synchronize", "install_kernels", "manual_seed", "manual_seed_all", "seed",
           "seed_all", "initial_seed", "is_bf16_supported"]


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """False: tensorlib has no bfloat16 dtype on any device, so code that picks bfloat16
    when this says True (``torch.cuda.is_bf16_supported()``) takes its float16 or float32
    path. ``including_emulation`` is accepted as PyTorch's."""
    return False


# tensorlib draws random numbers on the host from one generator for every device (then
# copies them), so PyTorch's CUDA seeding (a seed_everything() helper's torch.cuda.
# manual_seed_all) seeds that generator: the same sequence on the CPU and the GPU
def manual_seed(seed: int) -> None:
    """Seed the generator CUDA tensors draw from (tensorlib's one global generator)."""
    from ..random import manual_seed as _seed
    _seed(seed)


def manual_seed_all(seed: int) -> None:
    """As :func:`manual_seed`: one generator serves every GPU."""
    manual_seed(seed)


def seed() -> int:
    """Seed the global generator from fresh entropy; returns the seed."""
    from ..random import seed as _seed
    return _seed()


def seed_all() -> int:
    return seed()


def initial_seed() -> int:
    from ..random import initial_seed as _initial
    return _initial()


def install_kernels() -> list[str]:
    """Install tensorlib's CUDA kernels on every registered op that has one.

    Called when ``tensorlib.cuda`` is imported; call it again after registering
    more ops (it is idempotent). Returns the names of the ops it bound.
    """
    return _install()


install_kernels()
from . import amp  # noqa: E402,F401  (torch.cuda.amp: autocast, GradScaler)
