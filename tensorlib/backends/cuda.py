"""``tl.backends.cuda``: PyTorch's CUDA switches (``torch.backends.cuda``): the cuBLAS
``matmul`` precision flags and the scaled-dot-product-attention kernel choices.

``matmul.allow_tf32`` is another view of :func:`tl.set_float32_matmul_precision`, as in
PyTorch (True is "high", False "highest"). tensorlib records these flags and changes
nothing by them: its GPU matmuls go through CuPy's cuBLAS with CuPy's defaults (TF32
off), and ``F.scaled_dot_product_attention`` has one implementation, whatever kernels
are enabled.

>>> tl.backends.cuda.matmul.allow_tf32 = True
>>> tl.get_float32_matmul_precision()
'high'
"""
from __future__ import annotations

__all__ = ["cudnn_sdp_enabled", "enable_cudnn_sdp", "enable_flash_sdp", "enable_math_sdp",
           "enable_mem_efficient_sdp", "flash_sdp_enabled", "is_built", "math_sdp_enabled",
           "matmul", "mem_efficient_sdp_enabled"]


class _CuBLAS:
    """``tl.backends.cuda.matmul``: the cuBLAS precision flags; an unknown name raises,
    as PyTorch's does (a typo would otherwise be a silent no-op)."""

    __slots__ = ("allow_fp16_reduced_precision_reduction",
                 "allow_bf16_reduced_precision_reduction", "allow_fp16_accumulation")

    def __init__(self) -> None:
        self.allow_fp16_reduced_precision_reduction = True      # torch's defaults
        self.allow_bf16_reduced_precision_reduction = True
        self.allow_fp16_accumulation = False

    @property
    def allow_tf32(self) -> bool:
        from ..ops.torch_settings import get_float32_matmul_precision
        return get_float32_matmul_precision() != "highest"

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        from ..ops.torch_settings import set_float32_matmul_precision
        set_float32_matmul_precision("high" if value else "highest")

    def __setattr__(self, name: str, value) -> None:
        if name != "allow_tf32" and name not in self.__slots__:
            raise AttributeError(f"tl.backends.cuda.matmul: unknown attribute {name!r}; "
                                 f"known: allow_tf32, {', '.join(self.__slots__)}")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return (f"<tl.backends.cuda.matmul allow_tf32={self.allow_tf32}, "
                + ", ".join(f"{k}={getattr(self, k)}" for k in self.__slots__) + ">")


matmul = _CuBLAS()

_sdp = {"flash": True, "mem_efficient": True, "math": True, "cudnn": True}


def is_built() -> bool:
    """Whether tensorlib can run on CUDA here: CuPy is installed (GPU or not), as
    ``torch.backends.cuda.is_built`` says whether PyTorch was built with CUDA."""
    try:
        import cupy  # noqa: F401
    except Exception:       # noqa: BLE001 - not installed, or a broken install
        return False
    return True


def enable_flash_sdp(enabled: bool) -> None:
    """Record whether attention may use the flash kernel (tensorlib has one kernel)."""
    _sdp["flash"] = bool(enabled)


def flash_sdp_enabled() -> bool:
    """What :func:`enable_flash_sdp` set (True by default)."""
    return _sdp["flash"]


def enable_mem_efficient_sdp(enabled: bool) -> None:
    """Record whether attention may use the memory-efficient kernel (recorded only)."""
    _sdp["mem_efficient"] = bool(enabled)


def mem_efficient_sdp_enabled() -> bool:
    """What :func:`enable_mem_efficient_sdp` set (True by default)."""
    return _sdp["mem_efficient"]


def enable_math_sdp(enabled: bool) -> None:
    """Record whether attention may use the math kernel (recorded only)."""
    _sdp["math"] = bool(enabled)


def math_sdp_enabled() -> bool:
    """What :func:`enable_math_sdp` set (True by default)."""
    return _sdp["math"]


def enable_cudnn_sdp(enabled: bool) -> None:
    """Record whether attention may use the cuDNN kernel (recorded only)."""
    _sdp["cudnn"] = bool(enabled)


def cudnn_sdp_enabled() -> bool:
    """What :func:`enable_cudnn_sdp` set (True by default)."""
    return _sdp["cudnn"]
