"""Constraints: the support of a distribution and the domain / codomain of a transform, as
``torch.distributions.constraints`` (``check(value)`` gives a bool tensor over the batch,
``event_dim`` says how many rightmost dims one point spans).

>>> constraints.positive.check(tl.tensor([1.0, -1.0]))     # tensor([True, False])
>>> constraints.interval(0.0, 2.0).check(tl.tensor([1.0, 3.0]))   # tensor([True, False])

Parameterized constraints (``greater_than``, ``interval``, ``cat``, ...) are the classes
themselves, as PyTorch's, so ``biject_to.register(constraints.interval)`` registers them all.
"""
from __future__ import annotations

import operator
from collections.abc import Callable, Sequence

import numpy as np

from .._tensor import Tensor


class Constraint:
    """A region of values; ``check`` is elementwise over all but the ``event_dim`` last dims."""

    is_discrete = False
    event_dim = 0

    def check(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return type(self).__name__.lstrip("_") + "()"


def _full_bool(shape, fill: bool, like: Tensor) -> Tensor:
    from ..creation import full
    return full(tuple(shape), fill, dtype="bool", device=like.device)


def _all_last(ok: Tensor, n: int) -> Tensor:
    """``ok`` reduced with ``all`` over its ``n`` rightmost dims."""
    return ok.all(axis=tuple(range(-n, 0))) if n else ok


def _check_event_dims(name: str, value: Tensor, n: int) -> None:
    if value.ndim < n:
        raise ValueError(f"{name}.check: expected a value with at least {n} dims, got shape "
                         f"{tuple(value.shape)}")


# ------------------------------------------------------------------ placeholders

class _Dependent(Constraint):
    """The support of a variable that depends on other variables (no simple check).

    >>> constraints.dependent(is_discrete=False, event_dim=0)
    """

    def __init__(self, *, is_discrete=NotImplemented, event_dim=NotImplemented):
        self._is_discrete = is_discrete
        self._event_dim = event_dim

    @property
    def is_discrete(self) -> bool:
        if self._is_discrete is NotImplemented:
            raise NotImplementedError(".is_discrete cannot be determined statically")
        return self._is_discrete

    @property
    def event_dim(self) -> int:
        if self._event_dim is NotImplemented:
            raise NotImplementedError(".event_dim cannot be determined statically")
        return self._event_dim

    def __call__(self, *, is_discrete=NotImplemented, event_dim=NotImplemented) -> _Dependent:
        if is_discrete is NotImplemented:
            is_discrete = self._is_discrete
        if event_dim is NotImplemented:
            event_dim = self._event_dim
        return _Dependent(is_discrete=is_discrete, event_dim=event_dim)

    def check(self, value: Tensor) -> Tensor:
        raise ValueError("Cannot determine validity of dependent constraint")


def is_dependent(constraint) -> bool:
    """Whether ``constraint`` is a dependent placeholder (nothing to check or transform)."""
    return isinstance(constraint, _Dependent)


class _DependentProperty(property, _Dependent):
    """A property on a distribution instance, a :class:`_Dependent` on the class.

    >>> class Uniform(Distribution):
    ...     @constraints.dependent_property(is_discrete=False, event_dim=0)
    ...     def support(self):
    ...         return constraints.interval(self.low, self.high)
    """

    def __init__(self, fn: Callable | None = None, *, is_discrete=NotImplemented,
                 event_dim=NotImplemented):
        property.__init__(self, fn)
        self._is_discrete = is_discrete
        self._event_dim = event_dim

    def __call__(self, fn: Callable) -> _DependentProperty:
        return _DependentProperty(fn, is_discrete=self._is_discrete, event_dim=self._event_dim)


# ------------------------------------------------------------------ real lines and intervals

class _Real(Constraint):
    """The extended real line (everything but NaN)."""

    def check(self, value: Tensor) -> Tensor:
        return value == value                          # False only at NaN


class _Bounded(Constraint):
    """Values within the bounds a subclass names: ``_bounds`` pairs each bound's attribute
    with the comparison a value must pass against it (``_integer``: whole numbers only)."""

    _bounds: tuple = ()
    _integer = False

    def __init__(self, *bounds):
        for (name, _), v in zip(self._bounds, bounds):
            setattr(self, name, v)

    def _tests(self) -> tuple:
        return self._bounds

    def check(self, value: Tensor) -> Tensor:
        ok = (value % 1 == 0) if self._integer else None
        for name, cmp in self._tests():
            c = cmp(value, getattr(self, name))
            ok = c if ok is None else ok & c
        return ok

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)}" for name, _ in self._bounds)
        return f"{type(self).__name__[1:]}({args})"


class _GreaterThan(_Bounded):
    """``(lower_bound, inf]``.

    >>> constraints.greater_than(1.0).check(tl.tensor([1.0, 2.0]))   # [False, True]
    """

    _bounds = (("lower_bound", operator.gt),)


class _GreaterThanEq(_Bounded):
    """``[lower_bound, inf)``."""

    _bounds = (("lower_bound", operator.ge),)


class _LessThan(_Bounded):
    """``[-inf, upper_bound)``."""

    _bounds = (("upper_bound", operator.lt),)


class _Interval(_Bounded):
    """``[lower_bound, upper_bound]`` (``open`` excludes both ends).

    >>> constraints.interval(-1.0, 1.0)
    """

    _bounds = (("lower_bound", operator.ge), ("upper_bound", operator.le))

    def __init__(self, lower_bound, upper_bound, open: bool = False):
        super().__init__(lower_bound, upper_bound)
        self.open = open

    def _tests(self) -> tuple:
        return ((("lower_bound", operator.gt), ("upper_bound", operator.lt)) if self.open
                else self._bounds)


class _HalfOpenInterval(_Bounded):
    """``[lower_bound, upper_bound)``."""

    _bounds = (("lower_bound", operator.ge), ("upper_bound", operator.lt))


# ------------------------------------------------------------------ discrete

class _Boolean(Constraint):
    """The two values ``{0, 1}``."""

    is_discrete = True

    def check(self, value: Tensor) -> Tensor:
        return (value == 0) | (value == 1)


class _OneHot(Constraint):
    """One-hot vectors over the last dim."""

    is_discrete = True
    event_dim = 1

    def check(self, value: Tensor) -> Tensor:
        is_boolean = (value == 0) | (value == 1)
        return is_boolean.all(axis=-1) & (value.sum(axis=-1) == 1)


class _IntegerInterval(_Bounded):
    """The integers in ``[lower_bound, upper_bound]``."""

    is_discrete = True
    _integer = True
    _bounds = (("lower_bound", operator.ge), ("upper_bound", operator.le))


class _IntegerLessThan(_Bounded):
    """The integers in ``(-inf, upper_bound]``."""

    is_discrete = True
    _integer = True
    _bounds = (("upper_bound", operator.le),)


class _IntegerGreaterThan(_Bounded):
    """The integers in ``[lower_bound, inf)``."""

    is_discrete = True
    _integer = True
    _bounds = (("lower_bound", operator.ge),)


class _Multinomial(Constraint):
    """Nonnegative counts summing to at most ``upper_bound`` (PyTorch's weaker check)."""

    is_discrete = True
    event_dim = 1

    def __init__(self, upper_bound):
        self.upper_bound = upper_bound

    def check(self, value: Tensor) -> Tensor:
        return (value >= 0).all(axis=-1) & (value.sum(axis=-1) <= self.upper_bound)


# ------------------------------------------------------------------ vectors and matrices

class _Simplex(Constraint):
    """Nonnegative vectors summing to 1 over the last dim."""

    event_dim = 1

    def check(self, value: Tensor) -> Tensor:
        return (value >= 0).all(axis=-1) & ((value.sum(axis=-1) - 1.0).abs() < 1e-6)


class _LowerTriangular(Constraint):
    """Lower-triangular square matrices."""

    event_dim = 2

    def check(self, value: Tensor) -> Tensor:
        _check_event_dims("lower_triangular", value, 2)
        return (value.tril() == value).all(axis=(-2, -1))


class _LowerCholesky(Constraint):
    """Lower-triangular matrices with a positive diagonal (Cholesky factors)."""

    event_dim = 2

    def check(self, value: Tensor) -> Tensor:
        _check_event_dims("lower_cholesky", value, 2)
        from ..ops.diagonal import diagonal
        lower = (value.tril() == value).all(axis=(-2, -1))
        return lower & (diagonal(value, 0, -2, -1) > 0).all(axis=-1)


class _CorrCholesky(Constraint):
    """Cholesky factors of correlation matrices: lower Cholesky with unit-norm rows."""

    event_dim = 2

    def check(self, value: Tensor) -> Tensor:
        _check_event_dims("corr_cholesky", value, 2)
        # as PyTorch's: 10 eps per row entry of slack on the row norms
        tol = float(np.finfo(value.dtype).eps) * value.shape[-1] * 10
        v = value.detach()
        row_norm = (v * v).sum(axis=-1).sqrt()
        return _LowerCholesky().check(value) & ((row_norm - 1.0).abs() <= tol).all(axis=-1)


class _Square(Constraint):
    """Square matrices."""

    event_dim = 2

    def check(self, value: Tensor) -> Tensor:
        _check_event_dims(type(self).__name__.lstrip("_").lower(), value, 2)
        return _full_bool(value.shape[:-2], value.shape[-2] == value.shape[-1], value)


class _Symmetric(_Square):
    """Symmetric square matrices (to ``atol=1e-6``)."""

    def check(self, value: Tensor) -> Tensor:
        square = super().check(value)
        if not bool(square.all()):
            return square
        from ..ops.numeric import isclose
        return isclose(value, value.mT, atol=1e-6).all(axis=(-2, -1))


def _eigvalsh(value: Tensor) -> Tensor:
    from ..linalg import eigvalsh
    return eigvalsh(value.detach())


class _PositiveSemidefinite(_Symmetric):
    """Symmetric matrices with nonnegative eigenvalues."""

    def check(self, value: Tensor) -> Tensor:
        sym = super().check(value)
        if not bool(sym.all()):
            return sym
        return (_eigvalsh(value) >= 0).all(axis=-1)


class _PositiveDefinite(_Symmetric):
    """Symmetric matrices with positive eigenvalues."""

    def check(self, value: Tensor) -> Tensor:
        sym = super().check(value)
        if not bool(sym.all()):
            return sym
        return (_eigvalsh(value) > 0).all(axis=-1)


# ------------------------------------------------------------------ combinators

class _Independent(Constraint):
    """``base`` with ``reinterpreted_batch_ndims`` more dims folded into one point."""

    def __init__(self, base: Constraint, reinterpreted_batch_ndims: int):
        if not isinstance(base, Constraint):
            raise TypeError(f"independent: base must be a Constraint, got {type(base).__name__}")
        n = int(reinterpreted_batch_ndims)
        if n < 0:
            raise ValueError(f"independent: reinterpreted_batch_ndims must be >= 0, got {n}")
        self.base_constraint = base
        self.reinterpreted_batch_ndims = n

    @property
    def is_discrete(self) -> bool:
        return self.base_constraint.is_discrete

    @property
    def event_dim(self) -> int:
        return self.base_constraint.event_dim + self.reinterpreted_batch_ndims

    def check(self, value: Tensor) -> Tensor:
        ok = self.base_constraint.check(value)
        n = self.reinterpreted_batch_ndims
        if ok.ndim < n:
            raise ValueError(f"independent.check: expected a value with at least "
                             f"{self.event_dim} dims, got shape {tuple(value.shape)}")
        return _all_last(ok, n)

    def __repr__(self) -> str:
        return f"Independent({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


def independent(base: Constraint, reinterpreted_batch_ndims: int) -> Constraint:
    """``base`` over ``reinterpreted_batch_ndims`` more rightmost dims (``base`` at 0).

    >>> constraints.independent(constraints.positive, 1).event_dim      # 1
    """
    return base if reinterpreted_batch_ndims == 0 else _Independent(base, reinterpreted_batch_ndims)


# the registries look a constructor function up to the class it builds
independent.constraint_type = _Independent


class MixtureSameFamilyConstraint(Constraint):
    """The support of a :class:`MixtureSameFamily`: the component's, checked with the
    mixture dim added back."""

    def __init__(self, base_constraint: Constraint):
        if not isinstance(base_constraint, Constraint):
            raise TypeError(f"MixtureSameFamilyConstraint: base_constraint must be a "
                            f"Constraint, got {type(base_constraint).__name__}")
        self.base_constraint = base_constraint

    @property
    def is_discrete(self) -> bool:
        return self.base_constraint.is_discrete

    @property
    def event_dim(self) -> int:
        return self.base_constraint.event_dim

    def check(self, value: Tensor) -> Tensor:
        _check_event_dims("MixtureSameFamilyConstraint", value, self.event_dim)
        ok = self.base_constraint.check(value.unsqueeze(-1 - self.event_dim))
        keep = value.ndim - self.event_dim
        return ok.reshape(tuple(ok.shape[:keep]) + (-1,)).all(axis=-1)

    def __repr__(self) -> str:
        return f"MixtureSameFamilyConstraint({self.base_constraint!r})"


def _check_cseq(name: str, cseq) -> list[Constraint]:
    cseq = list(cseq)
    if not cseq or not all(isinstance(c, Constraint) for c in cseq):
        raise TypeError(f"{name}: cseq must be a non-empty sequence of Constraints")
    return cseq


def _check_dim(name: str, dim: int, value: Tensor) -> None:
    if not -value.ndim <= dim < value.ndim:
        raise ValueError(f"{name}.check: dim {dim} is out of range for a value of shape "
                         f"{tuple(value.shape)}")


class _Cat(Constraint):
    """``cseq[i]`` on the i-th block (``lengths[i]`` long, 1 by default) along ``dim``.

    >>> constraints.cat([constraints.real, constraints.positive], dim=-1, lengths=[2, 1])
    """

    def __init__(self, cseq: Sequence[Constraint], dim: int = 0, lengths=None):
        self.cseq = _check_cseq("cat", cseq)
        self.lengths = [1] * len(self.cseq) if lengths is None else [int(n) for n in lengths]
        if len(self.lengths) != len(self.cseq):
            raise ValueError(f"cat: {len(self.lengths)} lengths for {len(self.cseq)} "
                             f"constraints")
        self.dim = int(dim)

    @property
    def is_discrete(self) -> bool:
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self) -> int:
        return max(c.event_dim for c in self.cseq)

    def check(self, value: Tensor) -> Tensor:
        from ..ops.shape import cat as cat_
        _check_dim("cat", self.dim, value)
        if value.shape[self.dim] != sum(self.lengths):
            raise ValueError(f"cat.check: value of shape {tuple(value.shape)} has "
                             f"{value.shape[self.dim]} entries along dim {self.dim}, but "
                             f"lengths {self.lengths} sum to {sum(self.lengths)}")
        checks, start = [], 0
        for c, n in zip(self.cseq, self.lengths):
            checks.append(c.check(value.narrow(self.dim, start, n)))
            start += n
        return cat_(checks, axis=self.dim)

    def __repr__(self) -> str:
        return f"Cat({self.cseq!r}, dim={self.dim}, lengths={self.lengths})"


class _Stack(Constraint):
    """``cseq[i]`` on ``value.select(dim, i)``, stacked along ``dim``.

    >>> constraints.stack([constraints.real, constraints.positive], dim=-1)
    """

    def __init__(self, cseq: Sequence[Constraint], dim: int = 0):
        self.cseq = _check_cseq("stack", cseq)
        self.dim = int(dim)

    @property
    def is_discrete(self) -> bool:
        return any(c.is_discrete for c in self.cseq)

    @property
    def event_dim(self) -> int:
        dim = max(c.event_dim for c in self.cseq)
        # a negative stack dim inside the event makes the stacked dim part of it
        return dim + 1 if self.dim + dim < 0 else dim

    def check(self, value: Tensor) -> Tensor:
        from ..ops.shape import stack as stack_
        _check_dim("stack", self.dim, value)
        if value.shape[self.dim] != len(self.cseq):
            raise ValueError(f"stack.check: value of shape {tuple(value.shape)} has "
                             f"{value.shape[self.dim]} slices along dim {self.dim}, but there "
                             f"are {len(self.cseq)} constraints")
        return stack_([c.check(v) for c, v in zip(self.cseq, value.unbind(self.dim))],
                      axis=self.dim)

    def __repr__(self) -> str:
        return f"Stack({self.cseq!r}, dim={self.dim})"


# ------------------------------------------------------------------ the public names
# (parameterized constraints are their classes, as PyTorch's)

dependent = _Dependent()
dependent_property = _DependentProperty
boolean = _Boolean()
one_hot = _OneHot()
nonnegative_integer = _IntegerGreaterThan(0)
positive_integer = _IntegerGreaterThan(1)
integer_interval = _IntegerInterval
real = _Real()
real_vector = _Independent(real, 1)
positive = _GreaterThan(0.0)
nonnegative = _GreaterThanEq(0.0)
greater_than = _GreaterThan
greater_than_eq = _GreaterThanEq
less_than = _LessThan
multinomial = _Multinomial
unit_interval = _Interval(0.0, 1.0)
open_unit_interval = _Interval(0.0, 1.0, open=True)
interval = _Interval
half_open_interval = _HalfOpenInterval
simplex = _Simplex()
lower_triangular = _LowerTriangular()
lower_cholesky = _LowerCholesky()
corr_cholesky = _CorrCholesky()
square = _Square()
symmetric = _Symmetric()
positive_semidefinite = _PositiveSemidefinite()
positive_definite = _PositiveDefinite()
cat = _Cat
stack = _Stack

__all__ = ["Constraint", "MixtureSameFamilyConstraint", "boolean", "cat", "corr_cholesky",
           "dependent", "dependent_property", "greater_than", "greater_than_eq",
           "half_open_interval", "independent", "integer_interval", "interval", "is_dependent",
           "less_than", "lower_cholesky", "lower_triangular", "multinomial", "nonnegative",
           "nonnegative_integer", "one_hot", "open_unit_interval", "positive",
           "positive_definite", "positive_integer", "positive_semidefinite", "real",
           "real_vector", "simplex", "square", "stack", "symmetric", "unit_interval"]
