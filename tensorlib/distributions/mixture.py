"""MixtureSameFamily: a Categorical choice among the components of one batched distribution
(a Gaussian mixture model is ``MixtureSameFamily(Categorical(w), Normal(mu, sigma))``).

>>> mix = Categorical(logits=tl.zeros(3))
>>> gmm = MixtureSameFamily(mix, Normal(tl.tensor([-2.0, 0.0, 2.0]), tl.ones(3)))
>>> gmm.log_prob(tl.tensor([0.5, 1.0]))        # (2,), differentiable in all parameters
"""
from __future__ import annotations

from .._tensor import Tensor
from ..ops.indexing import take_along_axis
from ..ops.nn_act import log_softmax
from . import constraints
from .base import Distribution, value_like
from .discrete import Categorical


class MixtureSameFamily(Distribution):
    """The mixture whose k-th component is slice k of the rightmost batch dim of
    ``component_distribution``, weighted by ``mixture_distribution`` (a Categorical over
    those k). ``log_prob`` is a logsumexp over components; no ``rsample`` (as PyTorch).
    """

    arg_constraints = {}

    @property
    def support(self):
        return constraints.MixtureSameFamilyConstraint(self.component_distribution.support)

    has_rsample = False
    _expand_params = ()

    def _expand_more(self, new, batch_shape) -> None:
        # as PyTorch: both parts take the new batch shape (the components' plus their dim)
        new.component_distribution = self.component_distribution.expand(
            tuple(batch_shape) + (self._num_component,))
        new.mixture_distribution = self.mixture_distribution.expand(batch_shape)

    def __init__(self, mixture_distribution: Categorical, component_distribution: Distribution,
                 validate_args: bool | None = None):
        if not isinstance(mixture_distribution, Categorical):
            raise ValueError(f"MixtureSameFamily: mixture_distribution must be a Categorical, "
                             f"got {type(mixture_distribution).__name__}")
        if not isinstance(component_distribution, Distribution):
            raise ValueError(f"MixtureSameFamily: component_distribution must be a "
                             f"Distribution, got {type(component_distribution).__name__}")
        cbs = tuple(component_distribution.batch_shape)
        if len(cbs) < 1:
            raise ValueError("MixtureSameFamily: component_distribution needs a batch dim of "
                             "components (its rightmost batch dim), got batch_shape ()")
        mbs, cdbs = tuple(mixture_distribution.batch_shape), cbs[:-1]
        for a, b in zip(reversed(mbs), reversed(cdbs)):
            if a != 1 and b != 1 and a != b:
                raise ValueError(f"MixtureSameFamily: mixture_distribution batch_shape {mbs} "
                                 f"does not match component_distribution batch_shape {cdbs} "
                                 f"(its batch_shape without the components dim)")
        km, kc = mixture_distribution.num_classes, cbs[-1]
        if km != kc:
            raise ValueError(f"MixtureSameFamily: mixture_distribution has {km} components, "
                             f"component_distribution {kc} (its rightmost batch dim)")
        self.mixture_distribution = mixture_distribution
        self.component_distribution = component_distribution
        self._num_component = km
        self._event_ndims = len(component_distribution.event_shape)
        super().__init__(cdbs, component_distribution.event_shape, validate_args=validate_args)

    def _pad(self, x: Tensor) -> Tensor:
        return x.unsqueeze(-1 - self._event_ndims)

    def _pad_mixture_dimensions(self, x: Tensor) -> Tensor:
        # as PyTorch (including its special case of a one-dim mixture batch)
        nb, nm = len(self.batch_shape), len(self.mixture_distribution.batch_shape)
        pad = 0 if nm == 1 else nb - nm
        s = tuple(x.shape)
        return x.reshape(s[:-1] + (1,) * pad + s[-1:] + (1,) * self._event_ndims)

    @property
    def mean(self) -> Tensor:
        probs = self._pad_mixture_dimensions(self.mixture_distribution.probs)
        return (probs * self.component_distribution.mean).sum(axis=-1 - self._event_ndims)

    @property
    def variance(self) -> Tensor:
        """The law of total variance: E[Var | k] + Var[E | k]."""
        probs = self._pad_mixture_dimensions(self.mixture_distribution.probs)
        c = self.component_distribution
        ax = -1 - self._event_ndims
        d = c.mean - self._pad(self.mean)
        return (probs * c.variance).sum(axis=ax) + (probs * d * d).sum(axis=ax)

    def _x(self, value) -> Tensor:
        like = self.mixture_distribution.probs
        return self._pad(value_like(value, like))

    def cdf(self, value) -> Tensor:
        cdf_x = self.component_distribution.cdf(self._x(value))
        return (cdf_x * self.mixture_distribution.probs).sum(axis=-1)

    def log_prob(self, value) -> Tensor:
        lp = self.component_distribution.log_prob(self._x(value))        # (S, B, k)
        return (lp + log_softmax(self.mixture_distribution.logits, -1)).logsumexp(axis=-1)

    def sample(self, sample_shape=()) -> Tensor:
        from ..autograd.mode import no_grad
        if isinstance(sample_shape, int):
            sample_shape = (sample_shape,)
        es = tuple(self.event_shape)
        gather_dim = len(tuple(sample_shape)) + len(self.batch_shape)
        with no_grad():
            k = self.mixture_distribution.sample(sample_shape)            # (S, Bm)
            comp = self.component_distribution.sample(sample_shape)       # (S, B, k, E)
            # a mixture batch that broadcasts against the components' is broadcast first
            ns, nbm = len(tuple(sample_shape)), len(self.mixture_distribution.batch_shape)
            k = k.reshape(tuple(k.shape[:ns]) + (1,) * (len(self.batch_shape) - nbm)
                          + tuple(k.shape[ns:]))
            k = k.broadcast_to(tuple(comp.shape[:gather_dim]))
            idx = k.reshape(tuple(k.shape) + (1,) * (len(es) + 1))
            idx = idx.broadcast_to(tuple(comp.shape[:gather_dim]) + (1,) + es)
            out = take_along_axis(comp, idx, gather_dim)
        return out.squeeze(gather_dim).detach()

    def __repr__(self) -> str:
        return (f"MixtureSameFamily({self.mixture_distribution!r}, "
                f"{self.component_distribution!r})")
