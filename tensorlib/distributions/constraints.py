"""Constraints: the support of a distribution and the domain / codomain of a transform, as
``torch.distributions.constraints`` (``check(value)`` gives a bool tensor over the batch,
``event_dim`` says how many rightmost dims one point spans).

>>> constraints.positive.check(tl.tensor([1.0, -1.0]))     # tensor([True, False])
"""
from __future__ import annotations

from .._tensor import Tensor


class Constraint:
    """A region of values; ``check`` is elementwise over all but the ``event_dim`` last dims."""

    is_discrete = False
    event_dim = 0

    def check(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return type(self).__name__.lstrip("_") + "()"


class _Real(Constraint):
    def check(self, value: Tensor) -> Tensor:
        return value == value                          # False only at NaN


class _GreaterThan(Constraint):
    def __init__(self, lower_bound: float):
        self.lower_bound = lower_bound

    def check(self, value: Tensor) -> Tensor:
        return value > self.lower_bound

    def __repr__(self) -> str:
        return f"GreaterThan(lower_bound={self.lower_bound})"


class _Interval(Constraint):
    """``[lower, upper]`` (``open`` excludes both ends)."""

    def __init__(self, lower_bound: float, upper_bound: float, open: bool = False):
        self.lower_bound, self.upper_bound, self.open = lower_bound, upper_bound, open

    def check(self, value: Tensor) -> Tensor:
        if self.open:
            return (value > self.lower_bound) & (value < self.upper_bound)
        return (value >= self.lower_bound) & (value <= self.upper_bound)

    def __repr__(self) -> str:
        return f"Interval(lower_bound={self.lower_bound}, upper_bound={self.upper_bound})"


class _Simplex(Constraint):
    event_dim = 1

    def check(self, value: Tensor) -> Tensor:
        return (value >= 0).all(axis=-1) & ((value.sum(axis=-1) - 1.0).abs() < 1e-6)


class _Independent(Constraint):
    """``base`` with ``reinterpreted_batch_ndims`` more dims folded into one point."""

    def __init__(self, base: Constraint, reinterpreted_batch_ndims: int):
        self.base_constraint = base
        self.reinterpreted_batch_ndims = int(reinterpreted_batch_ndims)

    @property
    def is_discrete(self) -> bool:
        return self.base_constraint.is_discrete

    @property
    def event_dim(self) -> int:
        return self.base_constraint.event_dim + self.reinterpreted_batch_ndims

    def check(self, value: Tensor) -> Tensor:
        ok = self.base_constraint.check(value)
        n = self.reinterpreted_batch_ndims
        return ok.all(axis=tuple(range(-n, 0))) if n else ok

    def __repr__(self) -> str:
        return f"Independent({self.base_constraint!r}, {self.reinterpreted_batch_ndims})"


def independent(base: Constraint, reinterpreted_batch_ndims: int) -> Constraint:
    """``base`` over ``reinterpreted_batch_ndims`` more rightmost dims (``base`` at 0)."""
    return base if reinterpreted_batch_ndims == 0 else _Independent(base, reinterpreted_batch_ndims)


real = _Real()
real_vector = _Independent(real, 1)
positive = _GreaterThan(0.0)
unit_interval = _Interval(0.0, 1.0)
open_unit_interval = _Interval(0.0, 1.0, open=True)
simplex = _Simplex()


def interval(lower_bound: float, upper_bound: float) -> Constraint:
    """The closed interval ``[lower_bound, upper_bound]``."""
    return _Interval(lower_bound, upper_bound)


def greater_than(lower_bound: float) -> Constraint:
    """The values above ``lower_bound``."""
    return _GreaterThan(lower_bound)
