"""Numeric helpers composed of elementwise ops: ``isclose``, ``allclose``, ``lerp`` and
``nan_to_num``."""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from ._util import to_tensor


def isclose(input, other, rtol: float = 1e-5, atol: float = 1e-8,
            equal_nan: bool = False) -> Tensor:
    """Elementwise ``|input - other| <= atol + rtol * |other|`` (NumPy's test, so not
    symmetric); equal infinities are close, NaN is close to NaN only with ``equal_nan``."""
    a, b = to_tensor(input), to_tensor(other)
    with np.errstate(invalid="ignore"):     # inf - inf is NaN here, and not close
        near = (a - b).abs() <= atol + rtol * b.abs()
    close = (near & a.isfinite() & b.isfinite()) | (a == b)
    if equal_nan:
        close = close | (a.isnan() & b.isnan())
    return close


def allclose(input, other, rtol: float = 1e-5, atol: float = 1e-8,
              equal_nan: bool = False) -> bool:
    """Whether every element of :func:`isclose` holds (a Python bool: it reads the result)."""
    return bool(isclose(input, other, rtol, atol, equal_nan).all().item())


def lerp(start, end, weight) -> Tensor:
    """``start + weight * (end - start)``, differentiable in all three."""
    start, end = to_tensor(start), to_tensor(end)
    return start + weight * (end - start)


def nan_to_num(x, nan: float = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Tensor:
    """NaN to ``nan`` and infinities to ``posinf``/``neginf`` (the dtype's largest finite
    values by default); the gradient flows to the finite elements only."""
    from .elementwise import where
    x = to_tensor(x)
    if x.dtype.kind != "f":
        return x
    info = np.finfo(x.dtype)
    hi = float(info.max) if posinf is None else posinf
    lo = float(info.min) if neginf is None else neginf
    y = where(x.isnan(), nan, x)
    y = where(y == np.inf, hi, y)
    return where(y == -np.inf, lo, y)


def addcmul(x, tensor1, tensor2, *, value: float = 1) -> Tensor:
    """``x + value * tensor1 * tensor2`` (PyTorch's ``addcmul``), broadcasting."""
    x = to_tensor(x)
    p = to_tensor(tensor1) * tensor2
    return x + (p if value == 1 else p * value)


def addcdiv(x, tensor1, tensor2, *, value: float = 1) -> Tensor:
    """``x + value * tensor1 / tensor2`` (PyTorch's ``addcdiv``), broadcasting."""
    x = to_tensor(x)
    q = to_tensor(tensor1) / tensor2
    return x + (q if value == 1 else q * value)
