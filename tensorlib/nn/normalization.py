"""Normalisation layers: BatchNorm1d/2d/3d, LayerNorm, RMSNorm, GroupNorm."""
from __future__ import annotations

from ..autograd.mode import no_grad

from .. import creation
from .._dtypes import int64
from .._tensor import Tensor
from . import functional as F
from . import init
from .linear import _as_int, _positive
from .module import Module, _defers_copies
from .parameter import Parameter


def _norm_shape(shape, layer: str) -> tuple[int, ...]:
    """``normalized_shape`` (an integer or a sequence of them, NumPy integers included) as
    a tuple of plain ints, as PyTorch's LayerNorm / RMSNorm take it."""
    i = _as_int(shape)
    if i is not None:
        return (i,)
    try:
        ns = tuple(_as_int(s) for s in shape)
    except TypeError:       # not iterable (a float)
        ns = (None,)
    if any(s is None or s < 0 for s in ns):
        raise TypeError(f"{layer}: normalized_shape must be an int or a sequence of ints, "
                        f"got {shape!r}")
    return ns


class _BatchNorm(Module):
    _dims: tuple[int, ...] = ()
    # PyTorch's _NormBase version: 2 added num_batches_tracked (older checkpoints lack it)
    _version = 2

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__()
        num_features = _positive("num_features", type(self).__name__, num_features)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        kw = dict(dtype=dtype, device=device)
        if affine:
            self.weight = Parameter(creation.ones(num_features, **kw))
            # bias=False (PyTorch's keyword): the affine map without its shift
            self.register_parameter("bias", Parameter(creation.zeros(num_features, **kw))
                                    if bias else None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", creation.zeros(num_features, **kw))
            self.register_buffer("running_var", creation.ones(num_features, **kw))
            self.register_buffer("num_batches_tracked", creation.zeros((), dtype=int64,
                                                                       device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    @_defers_copies
    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict,
                              strict: bool, missing_keys: list, unexpected_keys: list,
                              error_msgs: list) -> None:
        # as PyTorch: a checkpoint older than version 2 (or without metadata, as a plain
        # dict) may lack num_batches_tracked; it then keeps its current value
        version = local_metadata.get("version")
        key = prefix + "num_batches_tracked"
        if ((version is None or version < 2) and self.track_running_stats
                and key not in state_dict):
            state_dict[key] = (self.num_batches_tracked if self.num_batches_tracked is not None
                               else creation.zeros((), dtype=int64))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked._data[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            if self.bias is not None:
                init.zeros_(self.bias)

    def _check_input(self, x: Tensor) -> None:
        if x.ndim not in self._dims:
            dims = " or ".join(map(str, self._dims))
            raise ValueError(f"{type(self).__name__}: expected a {dims}-d input, got shape "
                             f"{tuple(x.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        use_batch = self.training or self.running_mean is None
        momentum = self.momentum
        if self.training and self.track_running_stats:
            # tensor ops, not Python numbers: a captured step (tl.function) replays them
            with no_grad():
                self.num_batches_tracked.add_(1)
                if momentum is None:  # cumulative moving average
                    momentum = 1.0 / self.num_batches_tracked.astype(self.running_mean.dtype)
        track = self.training and self.track_running_stats
        return F.batch_norm(x, self.running_mean if track or not use_batch else None,
                            self.running_var if track or not use_batch else None,
                            self.weight, self.bias, use_batch,
                            0.0 if momentum is None else momentum, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L), per channel C
    (``torch.nn.BatchNorm1d``): ``(x - mean) / sqrt(var + eps) * weight + bias``.

    In training the batch's statistics (over N and L) normalise and update the running
    ones (``momentum`` 0.1, PyTorch's convention: ``running = (1 - m) running + m batch``,
    the variance unbiased); in eval mode the running statistics are used. ``affine``
    gives the learnable ``weight``/``bias`` (C,), ``track_running_stats=False`` always
    uses the batch's.

    >>> bn = nn.BatchNorm1d(4)
    >>> y = bn(tl.randn(8, 4) * 3 + 1)
    >>> y.shape, abs(y.mean().item()) < 1e-5
    ((8, 4), True)
    """
    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W), per channel C: ``(x - mean) / sqrt(var +
    eps) * weight + bias``. In training the batch's statistics are used and the running
    ones updated (``momentum``; None: a cumulative average); in ``eval()`` the running ones.

    >>> bn = nn.BatchNorm2d(3)
    >>> bn(tl.randn(4, 3, 2, 2)).shape, bn.running_mean.shape
    ((4, 3, 2, 2), (3,))
    """
    _dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation over (N, C, D, H, W), per channel C."""
    _dims = (5,)


class _InstanceNorm(_BatchNorm):
    """Per-sample, per-channel normalisation over the spatial positions. By default no
    affine and no running statistics (PyTorch's defaults); with ``track_running_stats``
    the running statistics normalise in eval mode."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None,
                 dtype=None, *, bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats,
                         device=device, dtype=dtype, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        unbatched = x.ndim == self._dims[0]
        if unbatched:
            x = x.unsqueeze(0)
        use_input = self.training or not self.track_running_stats
        track = self.training and self.track_running_stats
        # (num_batches_tracked stays 0, as in PyTorch: momentum is never cumulative here)
        y = F.instance_norm(x, self.running_mean if track or not use_input else None,
                            self.running_var if track or not use_input else None,
                            self.weight, self.bias, use_input, self.momentum or 0.0, self.eps)
        return y.squeeze(0) if unbatched else y


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) or (C, L)."""
    _dims = (2, 3)


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) or (C, H, W)."""
    _dims = (3, 4)


class LayerNorm(Module):
    """Normalises each sample over its trailing ``normalized_shape`` dims to mean 0 and
    variance 1 (biased, plus ``eps``), then applies an elementwise ``weight`` and ``bias`` of
    that shape (``elementwise_affine=False``: none; ``bias=False``: weight only), as PyTorch's.

    >>> ln = nn.LayerNorm(4)
    >>> y = ln(tl.tensor([[1.0, 2.0, 3.0, 4.0]]))
    >>> abs(y.mean().item()) < 1e-6, ln.weight.shape, ln.bias.shape
    (True, (4,), (4,))
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, device=None, dtype=None):
        super().__init__()
        ns = _norm_shape(normalized_shape, type(self).__name__)
        self.normalized_shape, self.eps = ns, eps
        self.elementwise_affine = elementwise_affine
        kw = dict(dtype=dtype, device=device)
        if elementwise_affine:
            self.weight = Parameter(creation.ones(ns, **kw))
            self.register_parameter("bias", Parameter(creation.zeros(ns, **kw)) if bias else None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class RMSNorm(Module):
    """Root-mean-square normalisation over the trailing ``normalized_shape`` dims, with an
    elementwise scale ``weight`` (PyTorch's ``RMSNorm``; ``eps=None``: the dtype's machine
    epsilon, see ``F.rms_norm``)."""

    def __init__(self, normalized_shape, eps: float | None = None,
                 elementwise_affine: bool = True, device=None, dtype=None):
        super().__init__()
        ns = _norm_shape(normalized_shape, type(self).__name__)
        self.normalized_shape, self.eps = ns, eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(creation.ones(ns, dtype=dtype, device=device))
        else:
            self.register_parameter("weight", None)

    def reset_parameters(self) -> None:
        if self.weight is not None:
            init.ones_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        return F.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Normalises (N, C, ...) over groups of channels, with a per-channel affine."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device=None, dtype=None, *, bias: bool = True):
        super().__init__()
        num_groups = _positive("num_groups", "GroupNorm", num_groups)
        num_channels = _positive("num_channels", "GroupNorm", num_channels)
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps, self.affine = (num_groups, num_channels,
                                                                    eps, affine)
        kw = dict(dtype=dtype, device=device)
        if affine:
            self.weight = Parameter(creation.ones(num_channels, **kw))
            self.register_parameter("bias", Parameter(creation.zeros(num_channels, **kw))
                                    if bias else None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of (N, C, D, H, W) or (C, D, H, W)."""
    _dims = (4, 5)
