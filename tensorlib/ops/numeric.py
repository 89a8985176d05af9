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


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _lerp_kernel(x: np.ndarray, end: np.ndarray, weight, out: np.ndarray) -> bool:
    """``out = x + weight * (end - x)`` in NumPy float32/float64 with one temporary, in
    PyTorch's two forms (``end - (end - x) * (1 - weight)`` from weight 0.5 on, so that
    weight 1 gives ``end`` exactly) and its rounding (the weight in the tensors' dtype;
    ``out`` may be ``x``): one pass of ``_ops.lerp_into`` over contiguous arrays, NumPy's
    three otherwise. False where it does not apply."""
    if x.dtype not in _FLOATS or end.dtype != x.dtype or end.shape != x.shape \
            or not out.flags.writeable:
        return False
    w = float(weight)
    if x.flags.c_contiguous and end.flags.c_contiguous and out.flags.c_contiguous:
        from .. import _ops
        _ops.lerp_into(x.reshape(-1), end.reshape(-1), w, out.reshape(-1))
        return True
    if abs(w) < 0.5:
        d = np.asarray(np.subtract(end, x))     # (0-d: NumPy returns a scalar)
        np.multiply(d, x.dtype.type(w), out=d)
        np.add(x, d, out=out)
    else:
        d = np.asarray(np.subtract(x, end))     # (x - end) * (1 - w) + end
        np.multiply(d, x.dtype.type(1.0 - w), out=d)
        np.add(end, d, out=out)
    return True


def _untracked(*ts) -> bool:
    """No record to make: no capture, CPU NumPy arrays, no gradient to track."""
    from ..autograd.mode import state
    if state.tracer is not None or state.fwd_ad is not None:    # (forward AD: via apply)
        return False
    for t in ts:
        if type(t._data) is not np.ndarray or t._device.type != "cpu":
            return False
    return not (state.grad_enabled and any(t._rg for t in ts))


def _number(w) -> bool:
    return isinstance(w, (int, float, np.floating, np.integer)) and not isinstance(w, bool)


def lerp(start, end, weight) -> Tensor:
    """``start + weight * (end - start)`` (``torch.lerp``), differentiable in all three;
    ``weight`` a number or a tensor, broadcasting."""
    start, end = to_tensor(start), to_tensor(end)
    if _number(weight) and start._data.shape == end._data.shape \
            and start._data.dtype in _FLOATS and _untracked(start, end):
        out = np.empty(start._data.shape, start._data.dtype)
        if _lerp_kernel(start._data, end._data, weight, out):
            from .._tensor import _wrap
            return _wrap(out, start._device, False, None, 0)
    return start + weight * (end - start)


def lerp_(self: Tensor, end, weight):
    """The direct form of ``self.lerp_(end, weight)`` when nothing is recorded (a number
    ``weight``, ``end`` of self's shape and float dtype): self updated in place in one pass,
    version bumped; None otherwise (the general in-place form then runs)."""
    if not (_number(weight) and isinstance(end, Tensor) and _untracked(self, end)):
        return None
    if not _lerp_kernel(self._data, end._data, weight, self._data):
        return None
    self._version[0] += 1
    return self


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
