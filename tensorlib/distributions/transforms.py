"""Bijections (and a few non-bijections) between spaces, as ``torch.distributions.transforms``:
``y = t(x)``, ``x = t.inv(y)``, ``t.log_abs_det_jacobian(x, y)``; the building blocks of
:class:`TransformedDistribution` and of normalizing flows. All are written with tensorlib
ops, so gradients flow through the forward map, the inverse and the log-Jacobian.

>>> t = ComposeTransform([AffineTransform(0.0, 2.0), ExpTransform()])
>>> y = t(x); t.inv(y)                      # x again
>>> t.log_abs_det_jacobian(x, y)            # log 2 + 2 x
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .._tensor import Tensor
from ..ops.elementwise import softplus
from . import constraints
from .independent import sum_rightmost

__all__ = ["AbsTransform", "AffineTransform", "CatTransform", "ComposeTransform",
           "CorrCholeskyTransform", "CumulativeDistributionTransform", "ExpTransform",
           "IndependentTransform", "LowerCholeskyTransform", "PositiveDefiniteTransform",
           "PowerTransform", "ReshapeTransform", "SigmoidTransform", "SoftmaxTransform",
           "SoftplusTransform", "StackTransform", "StickBreakingTransform", "TanhTransform",
           "Transform", "identity_transform"]


def _zeros(shape, like: Tensor) -> Tensor:
    from ..creation import zeros
    return zeros(tuple(shape), dtype=like.dtype, device=like.device)


def _shape(v) -> tuple[int, ...]:
    return tuple(v.shape) if isinstance(v, Tensor) else ()


class Transform:
    """An invertible (when ``bijective``) map with a computable log-Jacobian.

    ``cache_size=1`` remembers the last ``(x, y)`` pair, so ``t.inv(t(x))`` returns ``x``
    itself (the same tensor, not a recomputation), as PyTorch's; ``cache_size=0`` (the
    default) recomputes every time.
    """

    bijective = False
    domain: constraints.Constraint = constraints.real
    codomain: constraints.Constraint = constraints.real

    def __init__(self, cache_size: int = 0):
        if cache_size not in (0, 1):
            raise ValueError(f"{type(self).__name__}: cache_size must be 0 or 1, got "
                             f"{cache_size!r}")
        self._cache_size = cache_size
        self._cached_x_y: tuple = (None, None)
        self._inv: Transform | None = None

    @property
    def event_dim(self) -> int:
        if self.domain.event_dim == self.codomain.event_dim:
            return self.domain.event_dim
        raise ValueError(f"{type(self).__name__}: event_dim is ambiguous (the domain has "
                         f"{self.domain.event_dim}, the codomain {self.codomain.event_dim}); "
                         f"read domain.event_dim or codomain.event_dim")

    @property
    def inv(self) -> Transform:
        """The inverse transform (``inv.inv`` is this one)."""
        if self._inv is None:
            self._inv = _InverseTransform(self)
        return self._inv

    @property
    def sign(self):
        """+1 or -1 (or a tensor of them) for a monotone increasing / decreasing map."""
        raise NotImplementedError(f"{type(self).__name__} has no sign (not monotone)")

    def with_cache(self, cache_size: int = 1) -> Transform:
        """This transform with ``cache_size`` (a new one when it differs)."""
        if self._cache_size == cache_size:
            return self
        if type(self).__init__ is Transform.__init__:
            return type(self)(cache_size=cache_size)
        raise NotImplementedError(f"{type(self).__name__}.with_cache is not implemented "
                                  f"(override it for a transform with parameters)")

    def __call__(self, x: Tensor) -> Tensor:
        if self._cache_size == 0:
            return self._call(x)
        x_old, y_old = self._cached_x_y
        if x is x_old:
            return y_old
        y = self._call(x)
        self._cached_x_y = (x, y)
        return y

    def _inv_call(self, y: Tensor) -> Tensor:
        if self._cache_size == 0:
            return self._inverse(y)
        x_old, y_old = self._cached_x_y
        if y is y_old:
            return x_old
        x = self._inverse(y)
        self._cached_x_y = (x, y)
        return x

    def _call(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def _inverse(self, y: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} is not invertible")

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        """``log |det dy/dx|``, over the batch (the ``event_dim`` last dims are summed)."""
        raise NotImplementedError(f"{type(self).__name__} has no log_abs_det_jacobian")

    def forward_shape(self, shape) -> tuple[int, ...]:
        return tuple(shape)

    def inverse_shape(self, shape) -> tuple[int, ...]:
        return tuple(shape)

    def __repr__(self) -> str:
        return type(self).__name__ + "()"

    def __eq__(self, other) -> bool:
        return self is other

    def __ne__(self, other) -> bool:
        return not self.__eq__(other)

    __hash__ = object.__hash__


def _same_type(self, other) -> bool:
    """Equality of stateless transforms (what ``kl_divergence`` of two
    TransformedDistributions compares)."""
    return type(other) is type(self)


class _Stateless(Transform):
    """A transform without parameters: equal to any of its type, rebuilt from the cache
    size alone."""

    __eq__ = _same_type
    __hash__ = Transform.__hash__

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else type(self)(cache_size)


def _same_value(a, b) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        a = a.detach().numpy() if isinstance(a, Tensor) else a
        b = b.detach().numpy() if isinstance(b, Tensor) else b
        return bool(np.shape(a) == np.shape(b) and np.all(np.asarray(a) == np.asarray(b)))
    return a == b


class _InverseTransform(Transform):
    """The inverse of a transform, sharing its cache."""

    def __init__(self, transform: Transform):
        super().__init__(transform._cache_size)
        self._inv = transform

    @property
    def domain(self):
        return self._inv.codomain

    @property
    def codomain(self):
        return self._inv.domain

    @property
    def bijective(self) -> bool:
        return self._inv.bijective

    @property
    def sign(self):
        return self._inv.sign

    @property
    def inv(self) -> Transform:
        return self._inv

    def __call__(self, x: Tensor) -> Tensor:
        return self._inv._inv_call(x)

    def __eq__(self, other) -> bool:
        return isinstance(other, _InverseTransform) and self._inv == other._inv

    __hash__ = Transform.__hash__

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        return -self._inv.log_abs_det_jacobian(y, x)

    def forward_shape(self, shape):
        return self._inv.inverse_shape(shape)

    def inverse_shape(self, shape):
        return self._inv.forward_shape(shape)

    def __repr__(self) -> str:
        return f"{self._inv!r}.inv"


class ComposeTransform(Transform):
    """``parts`` applied left to right; the log-Jacobian sums the parts', each summed over
    the event dims it does not itself cover (as PyTorch's).

    >>> flow = ComposeTransform([AffineTransform(1.0, 2.0), SigmoidTransform()])
    """

    def __init__(self, parts: Sequence[Transform], cache_size: int = 0):
        parts = list(parts)
        for p in parts:
            if not isinstance(p, Transform):
                raise TypeError(f"ComposeTransform: parts must be Transforms, got "
                                f"{type(p).__name__}")
        if cache_size:
            parts = [p.with_cache(cache_size) for p in parts]
        super().__init__(cache_size)
        self.parts = parts

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else ComposeTransform(self.parts,
                                                                            cache_size)

    @property
    def domain(self):
        if not self.parts:
            return constraints.real
        domain = self.parts[0].domain
        event_dim = self.parts[-1].codomain.event_dim
        for part in reversed(self.parts):
            event_dim += part.domain.event_dim - part.codomain.event_dim
            event_dim = max(event_dim, part.domain.event_dim)
        return constraints.independent(domain, event_dim - domain.event_dim)

    @property
    def codomain(self):
        if not self.parts:
            return constraints.real
        codomain = self.parts[-1].codomain
        event_dim = self.parts[0].domain.event_dim
        for part in self.parts:
            event_dim += part.codomain.event_dim - part.domain.event_dim
            event_dim = max(event_dim, part.codomain.event_dim)
        return constraints.independent(codomain, event_dim - codomain.event_dim)

    @property
    def bijective(self) -> bool:
        return all(p.bijective for p in self.parts)

    @property
    def sign(self):
        s = 1
        for p in self.parts:
            s = s * p.sign
        return s

    @property
    def inv(self) -> Transform:
        if self._inv is None:
            self._inv = ComposeTransform([p.inv for p in reversed(self.parts)])
            self._inv._inv = self
        return self._inv

    def __call__(self, x: Tensor) -> Tensor:
        for p in self.parts:
            x = p(x)
        return x

    def __eq__(self, other) -> bool:
        return isinstance(other, ComposeTransform) and self.parts == other.parts

    __hash__ = Transform.__hash__

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        if not self.parts:
            return x * 0.0
        xs = [x]
        for p in self.parts[:-1]:       # free when the parts cache
            xs.append(p(xs[-1]))
        xs.append(y)
        total = None
        event_dim = self.domain.event_dim
        for p, a, b in zip(self.parts, xs[:-1], xs[1:]):
            term = sum_rightmost(p.log_abs_det_jacobian(a, b), event_dim - p.domain.event_dim)
            total = term if total is None else total + term
            event_dim += p.codomain.event_dim - p.domain.event_dim
        return total

    def forward_shape(self, shape):
        for p in self.parts:
            shape = p.forward_shape(shape)
        return tuple(shape)

    def inverse_shape(self, shape):
        for p in reversed(self.parts):
            shape = p.inverse_shape(shape)
        return tuple(shape)

    def __repr__(self) -> str:
        return "ComposeTransform(" + ", ".join(repr(p) for p in self.parts) + ")"


identity_transform = ComposeTransform([])


class IndependentTransform(Transform):
    """``base_transform`` with ``reinterpreted_batch_ndims`` more rightmost dims counted as
    one event: the log-Jacobian sums over them.

    >>> IndependentTransform(ExpTransform(), 1).log_abs_det_jacobian(x, y)   # x.sum(-1)
    """

    def __init__(self, base_transform: Transform, reinterpreted_batch_ndims: int,
                 cache_size: int = 0):
        if not isinstance(base_transform, Transform):
            raise TypeError(f"IndependentTransform: base_transform must be a Transform, got "
                            f"{type(base_transform).__name__}")
        n = int(reinterpreted_batch_ndims)
        if n < 0:
            raise ValueError(f"IndependentTransform: reinterpreted_batch_ndims must be >= 0, "
                             f"got {n}")
        super().__init__(cache_size)
        self.base_transform = base_transform.with_cache(cache_size) if cache_size else \
            base_transform
        self.reinterpreted_batch_ndims = n

    def with_cache(self, cache_size: int = 1) -> Transform:
        if self._cache_size == cache_size:
            return self
        return IndependentTransform(self.base_transform, self.reinterpreted_batch_ndims,
                                    cache_size)

    @property
    def domain(self):
        return constraints.independent(self.base_transform.domain,
                                       self.reinterpreted_batch_ndims)

    @property
    def codomain(self):
        return constraints.independent(self.base_transform.codomain,
                                       self.reinterpreted_batch_ndims)

    @property
    def bijective(self) -> bool:
        return self.base_transform.bijective

    @property
    def sign(self):
        return self.base_transform.sign

    def _call(self, x):
        if x.ndim < self.domain.event_dim:
            raise ValueError(f"IndependentTransform: input of shape {tuple(x.shape)} has too "
                             f"few dims (the event has {self.domain.event_dim})")
        return self.base_transform(x)

    def _inverse(self, y):
        if y.ndim < self.codomain.event_dim:
            raise ValueError(f"IndependentTransform: input of shape {tuple(y.shape)} has too "
                             f"few dims (the event has {self.codomain.event_dim})")
        return self.base_transform.inv(y)

    def log_abs_det_jacobian(self, x, y):
        return sum_rightmost(self.base_transform.log_abs_det_jacobian(x, y),
                             self.reinterpreted_batch_ndims)

    def forward_shape(self, shape):
        return self.base_transform.forward_shape(shape)

    def inverse_shape(self, shape):
        return self.base_transform.inverse_shape(shape)

    def __repr__(self) -> str:
        return f"IndependentTransform({self.base_transform!r}, {self.reinterpreted_batch_ndims})"


class ReshapeTransform(Transform):
    """Reshapes the rightmost ``in_shape`` dims to ``out_shape`` (same number of elements);
    its log-Jacobian is 0.

    >>> ReshapeTransform((4,), (2, 2))(tl.zeros(3, 4)).shape       # (3, 2, 2)
    """

    bijective = True

    def __init__(self, in_shape, out_shape, cache_size: int = 0):
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        if int(np.prod(self.in_shape)) != int(np.prod(self.out_shape)):
            raise ValueError(f"ReshapeTransform: in_shape {self.in_shape} and out_shape "
                             f"{self.out_shape} hold different numbers of elements")
        super().__init__(cache_size)

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else ReshapeTransform(
            self.in_shape, self.out_shape, cache_size)

    @property
    def domain(self):
        return constraints.independent(constraints.real, len(self.in_shape))

    @property
    def codomain(self):
        return constraints.independent(constraints.real, len(self.out_shape))

    @staticmethod
    def _move(x: Tensor, src: tuple, dst: tuple, what: str) -> Tensor:
        k = len(src)
        if tuple(x.shape[x.ndim - k:]) != src or x.ndim < k:
            raise ValueError(f"ReshapeTransform: {what} of shape {tuple(x.shape)} does not "
                             f"end in {src}")
        return x.reshape(tuple(x.shape[:x.ndim - k]) + dst)

    def _call(self, x):
        return self._move(x, self.in_shape, self.out_shape, "input")

    def _inverse(self, y):
        return self._move(y, self.out_shape, self.in_shape, "inverse input")

    def log_abs_det_jacobian(self, x, y):
        return _zeros(x.shape[:x.ndim - len(self.in_shape)], x)

    def forward_shape(self, shape):
        return self._shape_swap(tuple(shape), self.in_shape, self.out_shape)

    def inverse_shape(self, shape):
        return self._shape_swap(tuple(shape), self.out_shape, self.in_shape)

    @staticmethod
    def _shape_swap(shape, src, dst):
        k = len(src)
        if len(shape) < k or shape[len(shape) - k:] != src:
            raise ValueError(f"ReshapeTransform: shape {shape} does not end in {src}")
        return shape[:len(shape) - k] + dst


class ExpTransform(_Stateless):
    """``y = exp(x)``."""

    bijective = True
    sign = 1
    codomain = constraints.positive

    def _call(self, x):
        return x.exp()

    def _inverse(self, y):
        return y.log()

    def log_abs_det_jacobian(self, x, y):
        return x


class PowerTransform(Transform):
    """``y = x ** exponent`` on (0, inf)."""

    bijective = True
    domain = constraints.positive
    codomain = constraints.positive

    def __init__(self, exponent, cache_size: int = 0):
        from .base import as_float
        super().__init__(cache_size)
        self.exponent = as_float(exponent)

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else PowerTransform(self.exponent,
                                                                          cache_size)

    @property
    def sign(self):
        return self.exponent.sign()

    def __eq__(self, other) -> bool:
        return isinstance(other, PowerTransform) and _same_value(self.exponent, other.exponent)

    __hash__ = Transform.__hash__

    def _call(self, x):
        return x ** self.exponent

    def _inverse(self, y):
        return y ** (1.0 / self.exponent)

    def log_abs_det_jacobian(self, x, y):
        return (self.exponent * y / x).abs().log()

    def forward_shape(self, shape):
        return tuple(np.broadcast_shapes(tuple(shape), _shape(self.exponent)))

    inverse_shape = forward_shape


def _clipped_sigmoid(x: Tensor) -> Tensor:
    fi = np.finfo(x.dtype)
    return x.sigmoid().clip(float(fi.tiny), 1.0 - float(fi.eps))


class SigmoidTransform(_Stateless):
    """``y = sigmoid(x)``, kept inside (0, 1) as PyTorch's (clipped to [tiny, 1 - eps])."""

    bijective = True
    sign = 1
    codomain = constraints.unit_interval

    def _call(self, x):
        return _clipped_sigmoid(x)

    def _inverse(self, y):
        fi = np.finfo(y.dtype)
        y = y.clip(float(fi.tiny), 1.0 - float(fi.eps))
        return y.log() - (-y).log1p()

    def log_abs_det_jacobian(self, x, y):
        return -softplus(-x) - softplus(x)


class TanhTransform(_Stateless):
    """``y = tanh(x)``, with the stable log-Jacobian ``2 (log 2 - x - softplus(-2 x))``
    (the squashing of SAC-style policies)."""

    bijective = True
    sign = 1
    codomain = constraints.interval(-1.0, 1.0)

    def _call(self, x):
        return x.tanh()

    def _inverse(self, y):
        return y.atanh()

    def log_abs_det_jacobian(self, x, y):
        return 2.0 * (math.log(2.0) - x - softplus(-2.0 * x))


class AbsTransform(_Stateless):
    """``y = |x|`` (not bijective: ``inv`` returns ``y``, the nonnegative preimage)."""

    codomain = constraints.positive

    def _call(self, x):
        return x.abs()

    def _inverse(self, y):
        return y


class AffineTransform(Transform):
    """``y = loc + scale * x`` (``scale`` nonzero), elementwise; with ``event_dim`` the
    log-Jacobian sums over that many rightmost dims.

    >>> AffineTransform(tl.zeros(3), tl.full((3,), 2.0), event_dim=1)
    """

    bijective = True

    def __init__(self, loc, scale, event_dim: int = 0, cache_size: int = 0):
        super().__init__(cache_size)
        self.loc, self.scale = loc, scale
        self._event_dim = int(event_dim)

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else AffineTransform(
            self.loc, self.scale, self._event_dim, cache_size)

    @property
    def event_dim(self) -> int:
        return self._event_dim

    def __eq__(self, other) -> bool:
        return (isinstance(other, AffineTransform) and self._event_dim == other._event_dim
                and _same_value(self.loc, other.loc) and _same_value(self.scale, other.scale))

    __hash__ = Transform.__hash__

    @property
    def domain(self):
        return constraints.independent(constraints.real, self._event_dim)

    codomain = domain

    @property
    def sign(self):
        if isinstance(self.scale, Tensor):
            return self.scale.sign()
        return 1 if self.scale > 0 else -1 if self.scale < 0 else 0

    def _call(self, x):
        return self.loc + self.scale * x

    def _inverse(self, y):
        return (y - self.loc) / self.scale

    def log_abs_det_jacobian(self, x, y):
        from ..ops.shape import broadcast_to
        if isinstance(self.scale, Tensor):
            r = self.scale.abs().log()
            shape = tuple(np.broadcast_shapes(tuple(r.shape), tuple(x.shape)))
            r = r if tuple(r.shape) == shape else broadcast_to(r, shape)
        else:
            from ..creation import full
            r = full(tuple(x.shape), math.log(abs(self.scale)), dtype=x.dtype, device=x.device)
        if self._event_dim:
            r = r.reshape(tuple(r.shape[:r.ndim - self._event_dim]) + (-1,)).sum(axis=-1)
        return r

    def forward_shape(self, shape):
        return tuple(np.broadcast_shapes(tuple(shape), _shape(self.loc), _shape(self.scale)))

    inverse_shape = forward_shape


class SoftmaxTransform(_Stateless):
    """Logits to probabilities over the last dim (not bijective: ``inv`` gives the log
    probabilities, one preimage of many)."""

    domain = constraints.real_vector
    codomain = constraints.simplex

    def _call(self, x):
        p = (x - x.max(axis=-1, keepdims=True).detach()).exp()
        return p / p.sum(axis=-1, keepdims=True)

    def _inverse(self, y):
        return y.log()


class _Pieces(Transform):
    """Shared by Stack/Cat: one transform per slice along ``dim``."""

    def __init__(self, tseq: Sequence[Transform], dim: int, cache_size: int):
        tseq = list(tseq)
        if not tseq or not all(isinstance(t, Transform) for t in tseq):
            raise TypeError(f"{type(self).__name__}: tseq must be a non-empty sequence of "
                            f"Transforms")
        super().__init__(cache_size)
        self.transforms = [t.with_cache(cache_size) for t in tseq] if cache_size else tseq
        self.dim = int(dim)

    @property
    def bijective(self) -> bool:
        return all(t.bijective for t in self.transforms)

    def _check_dim(self, x: Tensor) -> None:
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(f"{type(self).__name__}: dim {self.dim} is out of range for an "
                             f"input of shape {tuple(x.shape)}")

    # subclasses give _pieces(x) (x cut along dim) and _join(parts) (put back together)
    def _map(self, x: Tensor, fn) -> Tensor:
        return self._join([fn(t, xi) for t, xi in zip(self.transforms, self._pieces(x))])

    def _call(self, x):
        return self._map(x, lambda t, xi: t(xi))

    def _inverse(self, y):
        return self._map(y, lambda t, yi: t.inv(yi))


class StackTransform(_Pieces):
    """Applies ``tseq[i]`` to ``x.select(dim, i)`` and stacks the results along ``dim``.

    >>> StackTransform([ExpTransform(), identity_transform], dim=1)
    """

    def __init__(self, tseq: Sequence[Transform], dim: int = 0, cache_size: int = 0):
        super().__init__(tseq, dim, cache_size)

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else StackTransform(
            self.transforms, self.dim, cache_size)

    @property
    def domain(self):
        return constraints.stack([t.domain for t in self.transforms], self.dim)

    @property
    def codomain(self):
        return constraints.stack([t.codomain for t in self.transforms], self.dim)

    def _pieces(self, x: Tensor):
        self._check_dim(x)
        if x.shape[self.dim] != len(self.transforms):
            raise ValueError(f"StackTransform: input of shape {tuple(x.shape)} has "
                             f"{x.shape[self.dim]} slices along dim {self.dim}, but there "
                             f"are {len(self.transforms)} transforms")
        return x.unbind(self.dim)

    def _join(self, parts):
        from ..ops.shape import stack
        return stack(parts, axis=self.dim)

    def log_abs_det_jacobian(self, x, y):
        return self._join([t.log_abs_det_jacobian(xi, yi) for t, xi, yi in
                           zip(self.transforms, self._pieces(x), self._pieces(y))])


class CatTransform(_Pieces):
    """Applies ``tseq[i]`` to the i-th block of ``x`` along ``dim`` (blocks of ``lengths``,
    1 each by default) and concatenates the results.

    >>> CatTransform([ExpTransform(), identity_transform], dim=0, lengths=[2, 3])
    """

    def __init__(self, tseq: Sequence[Transform], dim: int = 0, lengths=None,
                 cache_size: int = 0):
        super().__init__(tseq, dim, cache_size)
        lengths = [1] * len(self.transforms) if lengths is None else [int(n) for n in lengths]
        if len(lengths) != len(self.transforms):
            raise ValueError(f"CatTransform: {len(lengths)} lengths for "
                             f"{len(self.transforms)} transforms")
        self.lengths = lengths

    def with_cache(self, cache_size: int = 1) -> Transform:
        return self if self._cache_size == cache_size else CatTransform(
            self.transforms, self.dim, self.lengths, cache_size)

    @property
    def event_dim(self) -> int:
        return max(t.event_dim for t in self.transforms)

    @property
    def domain(self):
        return constraints.cat([t.domain for t in self.transforms], self.dim, self.lengths)

    @property
    def codomain(self):
        return constraints.cat([t.codomain for t in self.transforms], self.dim, self.lengths)

    def _pieces(self, x: Tensor):
        self._check_dim(x)
        if x.shape[self.dim] != sum(self.lengths):
            raise ValueError(f"CatTransform: input of shape {tuple(x.shape)} has "
                             f"{x.shape[self.dim]} entries along dim {self.dim}, but lengths "
                             f"{self.lengths} sum to {sum(self.lengths)}")
        out, start = [], 0
        for n in self.lengths:
            out.append(x.narrow(self.dim, start, n))
            start += n
        return out

    def _join(self, parts):
        from ..ops.shape import cat
        return cat(parts, axis=self.dim)

    def log_abs_det_jacobian(self, x, y):
        from ..ops.shape import cat
        ed = self.event_dim
        dim = self.dim if self.dim < 0 else self.dim - x.ndim
        parts = []
        for t, xi, yi in zip(self.transforms, self._pieces(x), self._pieces(y)):
            j = t.log_abs_det_jacobian(xi, yi)
            if t.event_dim < ed:
                j = sum_rightmost(j, ed - t.event_dim)
            parts.append(j)
        # the cat dim survives in the Jacobian only when it is not inside the event
        if -dim > ed:
            return cat(parts, axis=dim + ed)
        total = parts[0]
        for j in parts[1:]:
            total = total + j
        return total


# the structured transforms live in their own module; they build on the classes above
from .transforms_extra import (CorrCholeskyTransform, CumulativeDistributionTransform,  # noqa: E402
                               LowerCholeskyTransform, PositiveDefiniteTransform,
                               SoftplusTransform, StickBreakingTransform)
