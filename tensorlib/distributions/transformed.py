"""TransformedDistribution: a base distribution pushed through a chain of transforms, with
the change-of-variables log-density (the normalizing-flow pattern), as PyTorch's.

>>> base = tl.distributions.Normal(tl.zeros(2), tl.ones(2))
>>> d = TransformedDistribution(base, [AffineTransform(1.0, 2.0), ExpTransform()])
>>> x = d.rsample((16,)); d.log_prob(x)               # (16, 2)
"""
from __future__ import annotations

from collections.abc import Sequence

from .._tensor import Tensor
from .base import Distribution, value_like
from .independent import Independent, sum_rightmost
from .transforms import ComposeTransform, Transform


class TransformedDistribution(Distribution):
    """``Y = t_n(... t_1(X))`` for ``X ~ base_distribution``.

    ``log_prob(y) = base.log_prob(x) - sum_i log|det J_i|`` (inverting each transform);
    ``cdf``/``icdf`` go through monotone transforms (their ``sign``); ``rsample`` keeps the
    gradient when the base has one. Batch and event shapes follow PyTorch's rules: a
    transform whose domain spans more dims than the base's event (``IndependentTransform``,
    ``ReshapeTransform``) folds base batch dims into the event.
    """

    arg_constraints = {}

    def __init__(self, base_distribution: Distribution,
                 transforms: Transform | Sequence[Transform],
                 validate_args: bool | None = None):
        if not isinstance(base_distribution, Distribution):
            raise TypeError(f"TransformedDistribution: base_distribution must be a "
                            f"Distribution, got {type(base_distribution).__name__}")
        if isinstance(transforms, Transform):
            transforms = [transforms]
        elif isinstance(transforms, (list, tuple)):
            if not all(isinstance(t, Transform) for t in transforms):
                raise TypeError("TransformedDistribution: transforms must be a Transform or "
                                "a list of Transforms")
            transforms = list(transforms)
        else:
            raise TypeError(f"TransformedDistribution: transforms must be a Transform or a "
                            f"list of Transforms, got {type(transforms).__name__}")
        self.transforms = transforms
        base_shape = tuple(base_distribution.batch_shape) + tuple(base_distribution.event_shape)
        base_event_dim = len(base_distribution.event_shape)
        t = ComposeTransform(transforms)
        if len(base_shape) < t.domain.event_dim:
            raise ValueError(f"TransformedDistribution: base_distribution needs at least "
                             f"{t.domain.event_dim} dims (batch + event) for these transforms, "
                             f"got shape {base_shape}")
        forward_shape = t.forward_shape(base_shape)
        expanded = t.inverse_shape(forward_shape)
        if base_shape != expanded:
            base_distribution = base_distribution.expand(
                expanded[:len(expanded) - base_event_dim])
        n = t.domain.event_dim - base_event_dim
        if n > 0:
            base_distribution = Independent(base_distribution, n)
        self.base_dist = base_distribution
        event_dim = max(t.codomain.event_dim,
                        base_event_dim + t.codomain.event_dim - t.domain.event_dim)
        cut = len(forward_shape) - event_dim
        super().__init__(forward_shape[:cut], forward_shape[cut:], validate_args=validate_args)
        self._transform = t

    _expand_params = ()

    def _expand_more(self, new, batch_shape) -> None:
        shape = tuple(batch_shape) + self.event_shape
        for t in reversed(self.transforms):
            shape = t.inverse_shape(shape)
        new.base_dist = self.base_dist.expand(shape[:len(shape)
                                                    - len(self.base_dist.event_shape)])

    @property
    def has_rsample(self) -> bool:
        return self.base_dist.has_rsample

    @property
    def support(self):
        return self._transform.codomain

    def sample(self, sample_shape=()) -> Tensor:
        from ..autograd.mode import no_grad
        with no_grad():
            x = self.base_dist.sample(sample_shape)
            for t in self.transforms:
                x = t(x)
        return x.detach()

    def rsample(self, sample_shape=()) -> Tensor:
        x = self.base_dist.rsample(sample_shape)
        for t in self.transforms:
            x = t(x)
        return x

    def _like(self) -> Tensor | None:
        for name in ("loc", "probs", "logits", "low", "rate", "concentration"):
            p = getattr(self._innermost(), name, None)
            if isinstance(p, Tensor):
                return p
        return None

    def _innermost(self) -> Distribution:
        d = self.base_dist
        while hasattr(d, "base_dist"):
            d = d.base_dist
        return d

    def _value(self, value) -> Tensor:
        like = self._like()
        return value_like(value, like) if like is not None else super()._value(value)

    def log_prob(self, value) -> Tensor:
        y = self._value(value)
        if self._validating:
            ok = self.support.check(y.detach())
            self._check(ok, "value must lie in the support of the transformed distribution "
                        f"({self.support!r})")
        event_dim = len(self.event_shape)
        lp = None
        for t in reversed(self.transforms):
            x = t.inv(y)
            event_dim += t.domain.event_dim - t.codomain.event_dim
            j = sum_rightmost(t.log_abs_det_jacobian(x, y), event_dim - t.domain.event_dim)
            lp = -j if lp is None else lp - j
            y = x
        base = sum_rightmost(self.base_dist.log_prob(y),
                             event_dim - len(self.base_dist.event_shape))
        return base if lp is None else lp + base

    def _monotonize_cdf(self, value: Tensor):
        sign = 1
        for t in self.transforms:
            sign = sign * t.sign
        if isinstance(sign, int) and sign == 1:
            return value
        return sign * (value - 0.5) + 0.5

    def cdf(self, value) -> Tensor:
        """The base cdf at the preimage, flipped where the chain decreases (every transform
        must be monotone: have a ``sign``)."""
        v = self._value(value)
        for t in reversed(self.transforms):
            v = t.inv(v)
        return self._monotonize_cdf(self.base_dist.cdf(v))

    def icdf(self, value) -> Tensor:
        v = self._monotonize_cdf(self._value(value))
        v = self.base_dist.icdf(v)
        for t in self.transforms:
            v = t(v)
        return v

    def __repr__(self) -> str:
        return (f"TransformedDistribution({self.base_dist!r}, {self.transforms!r}, "
                f"batch_shape={self.batch_shape}, event_shape={self.event_shape})")
