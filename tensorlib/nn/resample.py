"""Resizing and patch layers: Upsample (and PyTorch's fixed-mode UpsamplingNearest2d /
UpsamplingBilinear2d), PixelShuffle/PixelUnshuffle, Unfold/Fold (padding layers:
:mod:`.padding`)."""
from __future__ import annotations

from .._tensor import Tensor
from . import functional as F
from .module import Module
from .pooling import _plain


def _float_factor(scale_factor):
    """PyTorch keeps a scale factor as float(s) (its repr shows ``2.0``), and a zero one as
    None."""
    if isinstance(scale_factor, (tuple, list)):
        return tuple(float(f) for f in scale_factor)
    return float(scale_factor) if scale_factor else None


class Upsample(Module):
    """Resize the spatial dims (see ``F.interpolate``): give ``size`` or ``scale_factor``
    (kept as float(s), as PyTorch's)."""

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: bool | None = None,
                 recompute_scale_factor: bool | None = None):
        super().__init__()
        # integers of any kind (NumPy's too) as plain ints, as PyTorch's repr shows them
        self.size, self.scale_factor = _plain(size), _float_factor(scale_factor)
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self) -> str:
        what = f"scale_factor={self.scale_factor!r}" if self.scale_factor is not None else \
            f"size={self.size!r}"
        return f"{what}, mode={self.mode!r}"


class PixelShuffle(Module):
    """(N, C*r*r, H, W) -> (N, C, H*r, W*r)."""

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(x, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """(N, C, H*r, W*r) -> (N, C*r*r, H, W)."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_unshuffle(x, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class Unfold(Module):
    """Sliding blocks as columns: (N, C, H, W) -> (N, C * kh * kw, L) (``F.unfold``)."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def forward(self, x: Tensor) -> Tensor:
        return F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class Fold(Unfold):
    """The adjoint of Unfold: (N, C * kh * kw, L) -> (N, C, H, W), overlaps summed."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1):
        super().__init__(kernel_size, dilation, padding, stride)
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return F.fold(x, self.output_size, self.kernel_size, self.dilation, self.padding,
                      self.stride)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, " + super().extra_repr()


class _FixedUpsample(Upsample):
    _mode, _align = "nearest", None

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, self._mode, self._align)


class UpsamplingNearest2d(_FixedUpsample):
    """Nearest-neighbour upsampling of (N, C, H, W) (PyTorch's ``nn.UpsamplingNearest2d``)."""


class UpsamplingBilinear2d(_FixedUpsample):
    """Bilinear upsampling of (N, C, H, W) with ``align_corners=True``, as PyTorch's
    ``nn.UpsamplingBilinear2d``."""
    _mode, _align = "bilinear", True
