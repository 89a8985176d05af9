"""Independent: reinterpret batch dims of a distribution as event dims."""
from __future__ import annotations

from .._tensor import Tensor
from . import constraints
from .base import Distribution


def sum_rightmost(value: Tensor, n: int) -> Tensor:
    """``value`` summed over its last ``n`` dims."""
    return value if n == 0 else value.sum(axis=tuple(range(-n, 0)))


class Independent(Distribution):
    """``base_distribution`` with its rightmost ``reinterpreted_batch_ndims`` batch dims
    treated as event dims: ``log_prob`` and ``entropy`` sum over them, as PyTorch's.

    >>> d = tl.distributions.Independent(tl.distributions.Normal(mu, std), 1)  # (B, A)
    >>> d.batch_shape, d.event_shape            # (B,), (A,)
    >>> d.log_prob(a)                           # (B,): a diagonal Gaussian's log-density
    """

    arg_constraints = {}

    @property
    def support(self):
        return constraints.independent(self.base_dist.support, self.reinterpreted_batch_ndims)

    def __init__(self, base_distribution: Distribution, reinterpreted_batch_ndims: int,
                 validate_args: bool | None = None):
        if not isinstance(base_distribution, Distribution):
            raise TypeError(f"Independent: base_distribution must be a Distribution, got "
                            f"{type(base_distribution).__name__}")
        n = int(reinterpreted_batch_ndims)
        shape = tuple(base_distribution.batch_shape) + tuple(base_distribution.event_shape)
        nb = len(base_distribution.batch_shape)
        if not 0 <= n <= nb:
            raise ValueError(f"Independent: reinterpreted_batch_ndims must be in [0, "
                             f"len(base_distribution.batch_shape)] = [0, {nb}], got {n}")
        self.base_dist = base_distribution
        self.reinterpreted_batch_ndims = n
        cut = len(shape) - len(base_distribution.event_shape) - n
        super().__init__(shape[:cut], shape[cut:], validate_args=validate_args)

    _expand_params = ()

    def _expand_more(self, new, batch_shape) -> None:
        n = self.reinterpreted_batch_ndims
        new.base_dist = self.base_dist.expand(
            batch_shape + tuple(self.base_dist.batch_shape[len(self.base_dist.batch_shape) - n:]))

    @property
    def has_rsample(self) -> bool:
        return self.base_dist.has_rsample

    @property
    def has_enumerate_support(self) -> bool:
        return self.reinterpreted_batch_ndims == 0 and self.base_dist.has_enumerate_support

    @property
    def mean(self) -> Tensor:
        return self.base_dist.mean

    @property
    def mode(self) -> Tensor:
        return self.base_dist.mode

    @property
    def variance(self) -> Tensor:
        return self.base_dist.variance

    def sample(self, sample_shape=()) -> Tensor:
        return self.base_dist.sample(sample_shape)

    def rsample(self, sample_shape=()) -> Tensor:
        return self.base_dist.rsample(sample_shape)

    def log_prob(self, value) -> Tensor:
        return sum_rightmost(self.base_dist.log_prob(value), self.reinterpreted_batch_ndims)

    def entropy(self) -> Tensor:
        return sum_rightmost(self.base_dist.entropy(), self.reinterpreted_batch_ndims)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        if self.reinterpreted_batch_ndims > 0:
            raise NotImplementedError("Independent: enumerate_support over reinterpreted "
                                      "batch dims is not implemented (as PyTorch)")
        return self.base_dist.enumerate_support(expand=expand)

    def __repr__(self) -> str:
        return (f"Independent({self.base_dist!r}, {self.reinterpreted_batch_ndims}, "
                f"event_shape={self.event_shape})")
