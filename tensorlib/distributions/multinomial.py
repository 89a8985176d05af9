"""The Multinomial distribution: counts of ``total_count`` independent Categorical draws, as
``torch.distributions.Multinomial``."""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ..ops.elementwise import where
from ..ops.indexing import scatter_add
from ..ops.special_fns import lgamma
from . import constraints
from .base import _raw
from .base import Distribution
from .discrete import OverCategorical
from .discrete_extra import Binomial


class Multinomial(OverCategorical, Distribution):
    """Counts over the K classes (the last dim of ``probs`` or ``logits``) after
    ``total_count`` independent draws; ``event_shape`` is ``(K,)`` and a sample has the
    probabilities' float dtype, as PyTorch's. ``total_count`` is one int for the whole batch
    (PyTorch supports no other); ``log_prob`` needs only the counts, whatever they sum to.

    >>> d = tl.distributions.Multinomial(10, tl.ones(6) / 6)      # ten rolls of a fair die
    >>> counts = d.sample((500,))                                  # (500, 6), rows sum to 10
    >>> d.log_prob(counts)                                         # (500,)
    """

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.multinomial(self.total_count)

    def __init__(self, total_count: int = 1, probs=None, logits=None,
                 validate_args: bool | None = None):
        if isinstance(total_count, Tensor) or not isinstance(total_count, (int, np.integer)) \
                or isinstance(total_count, bool):
            raise NotImplementedError(f"Multinomial: inhomogeneous total_count is not supported "
                                      f"(give one int, as PyTorch), got "
                                      f"{type(total_count).__name__}")
        if total_count < 0:
            raise ValueError(f"Multinomial: total_count must be non-negative, got {total_count}")
        self.total_count = int(total_count)
        self._over_categorical(probs, logits, validate_args)

    @property
    def param_shape(self) -> tuple[int, ...]:
        return tuple(self.probs.shape)

    @property
    def mean(self) -> Tensor:
        return self.probs * self.total_count

    @property
    def variance(self) -> Tensor:
        return self.total_count * self.probs * (1.0 - self.probs)

    def sample(self, sample_shape=()) -> Tensor:
        """Counts of shape ``sample_shape + batch_shape + (K,)``, each summing to
        ``total_count`` (no gradient)."""
        from ..creation import ones, zeros
        if isinstance(sample_shape, int):
            sample_shape = (sample_shape,)
        sample_shape = tuple(sample_shape)
        # total_count class draws, moved to the last dim and counted per class
        idx, ok = self._categorical._sample((self.total_count,) + sample_shape)
        idx = idx.permute(*range(1, idx.ndim), 0)
        counts = zeros(*self._extended_shape(sample_shape), dtype=np.int64,
                       device=self.probs.device)
        counts = scatter_add(counts, -1, idx, ones(*idx.shape, dtype=np.int64,
                                                   device=self.probs.device))
        counts = counts.astype(self.probs.dtype)
        # rows of invalid probabilities: NaN counts where they could not raise (GPU, capture)
        return counts if ok is None else where(ok.unsqueeze(-1), counts, math.nan)

    def log_prob(self, value) -> Tensor:
        """``log(n! / prod(x_k!) * prod(p_k ** x_k))`` with ``n`` the value's own total."""
        v = self._value(value)
        if v.dtype.kind != "f":
            v = v.astype(self.probs.dtype)
        if self._validating:
            a = _raw(v)
            if a.ndim < 1 or a.shape[-1] != self.event_shape[0]:
                raise ValueError(f"Multinomial: value of shape {tuple(a.shape)} must end in the "
                                 f"event shape {self.event_shape}")
            self._check(_raw(self.support.check(v)) & ((a % 1 == 0) | (a != a)).all(axis=-1),
                        f"values must be counts of the {self.event_shape[0]} classes (non-"
                        f"negative integers) summing to at most total_count="
                        f"{self.total_count}")
        shape = np.broadcast_shapes(tuple(v.shape), tuple(self.logits.shape))
        logits, v = self.logits.broadcast_to(shape), v.broadcast_to(shape)
        log_factorial_n = lgamma(v.sum(axis=-1) + 1.0)
        log_factorial_xs = lgamma(v + 1.0).sum(axis=-1)
        # a class of probability 0 (logit -inf) counted 0 times adds 0, not -inf * 0 = NaN
        logits = where((v == 0) & (logits == -math.inf), 0.0, logits)
        return log_factorial_n - log_factorial_xs + (logits * v).sum(axis=-1)

    def entropy(self) -> Tensor:
        """PyTorch's formula: ``n H(p) - log n! + sum_k E[log x_k!]``, with each count
        ``x_k`` Binomial(n, p_k)."""
        from ..creation import arange
        n = self.total_count
        cat_entropy = self._categorical.entropy()
        term1 = n * cat_entropy - math.lgamma(n + 1)
        if n == 0:
            return term1
        probs = self.probs
        k = arange(1, n + 1, dtype=probs.dtype, device=probs.device)
        k = k.reshape((-1,) + (1,) * probs.ndim)
        binomial = Binomial(n, probs=probs, validate_args=False)
        term2 = (binomial.log_prob(k).exp() * lgamma(k + 1.0)).sum(axis=0).sum(axis=-1)
        return term1 + term2
