"""Dropout layers."""
from __future__ import annotations

from .._tensor import Tensor
from . import functional as F
from .module import Module


class Dropout(Module):
    """Randomly zeroes elements with probability ``p`` during training (``torch.nn.Dropout``).

    In training mode (``module.train()``, the default) each element is zeroed
    independently with probability ``p`` and the others are scaled by ``1 / (1 - p)``, so
    the expected value is unchanged; in eval mode (``module.eval()``) it is the identity.
    The draws come from tensorlib's global generator (``tl.manual_seed``).

    Args:
        p: the probability of zeroing an element, in [0, 1] (0.5 by default).
        inplace: write the result into the input, as PyTorch's.

    >>> drop = nn.Dropout(p=0.5)
    >>> y = drop(tl.ones(1000))
    >>> sorted(set(y.tolist()))             # zeroed, or scaled by 1 / (1 - p)
    [0.0, 2.0]
    >>> drop.eval()(tl.ones(3))
    tensor([1., 1., 1.])
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.inplace = bool(inplace)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout1d(Dropout):
    """Zeroes whole channels of (N, C, L) with probability ``p`` in training."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout1d(x, self.p, self.training, self.inplace)


class Dropout2d(Dropout):
    """Zeroes whole feature maps of (N, C, H, W) with probability ``p`` in training."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout2d(x, self.p, self.training, self.inplace)


class Dropout3d(Dropout):
    """Zeroes whole volumes (channels) of (N, C, D, H, W) or (C, D, H, W) with probability
    ``p`` in training (PyTorch's ``nn.Dropout3d``)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout3d(x, self.p, self.training, self.inplace)


class AlphaDropout(Dropout):
    """Alpha dropout for SELU networks in training (keeps mean and variance); the identity
    in eval mode (PyTorch's ``nn.AlphaDropout``)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.alpha_dropout(x, self.p, self.training, self.inplace)


class FeatureAlphaDropout(Dropout):
    """Alpha dropout of whole channels of (N, C, ...) in training (PyTorch's
    ``nn.FeatureAlphaDropout``)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.feature_alpha_dropout(x, self.p, self.training, self.inplace)
