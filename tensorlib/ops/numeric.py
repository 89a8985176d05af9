"""Numeric helpers composed of elementwise ops: ``isclose``, ``allclose``, ``lerp`` and
``nan_to_num``."""
from __future__ import annotations

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from ._util import elementwise_cost, to_tensor
from .registry import OpDef, register


def isclose(input, other, rtol: float = 1e-5, atol: float = 1e-8,
            equal_nan: bool = False) -> Tensor:
    """Elementwise ``|input - other| <= atol + rtol * |other|`` (NumPy's test, so not
    symmetric); equal infinities are close, NaN is close to NaN only with ``equal_nan``."""
    a, b = to_tensor(input), to_tensor(other)
    if a.dtype == np.bool_ or b.dtype == np.bool_:
        # as PyTorch: bools compare as the default float (bool - bool is refused)
        from .. import _dtypes
        a = a.astype(_dtypes.default_float) if a.dtype == np.bool_ else a
        b = b.astype(_dtypes.default_float) if b.dtype == np.bool_ else b
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
    if isinstance(start, Tensor) and isinstance(end, Tensor):
        _check_lerp("lerp", start, end, weight)
    start, end = to_tensor(start), to_tensor(end)
    if _number(weight) and start._data.shape == end._data.shape \
            and start._data.dtype in _FLOATS and _untracked(start, end):
        out = np.empty(start._data.shape, start._data.dtype)
        if _lerp_kernel(start._data, end._data, weight, out):
            from .._tensor import _wrap
            return _wrap(out, start._device, False, None, 0)
    return start + weight * (end - start)


def _check_lerp(name: str, start: Tensor, end: Tensor, weight) -> None:
    """PyTorch's rules: ``end`` of ``start``'s dtype (a float64 ``end`` would otherwise
    promote the result, or be rounded into a float32 ``self`` silently) and shapes that
    broadcast, named for ``name`` rather than for the subtraction inside."""
    from ..errors import DTypeError, ShapeError
    from ._util import broadcast_shapes
    if end.dtype != start.dtype:
        raise DTypeError(f"{name}: expected dtype {start.dtype} for `end` but got dtype "
                         f"{end.dtype}, as PyTorch requires")
    shapes = [tuple(start.shape), tuple(end.shape)]
    if isinstance(weight, Tensor):
        shapes.append(tuple(weight.shape))
    try:
        broadcast_shapes(name, *shapes)
    except ValueError as e:
        raise ShapeError(str(e)) from None


def lerp_(self: Tensor, end, weight):
    """The direct form of ``self.lerp_(end, weight)`` when nothing is recorded (a number
    ``weight``, ``end`` of self's shape and float dtype): self updated in place in one pass,
    version bumped; None otherwise (the general in-place form then runs)."""
    if isinstance(end, Tensor):
        _check_lerp("lerp_", self, end, weight)
    if not (_number(weight) and isinstance(end, Tensor) and _untracked(self, end)):
        return None
    if not _lerp_kernel(self._data, end._data, weight, self._data):
        return None
    self._version[0] += 1
    return self


def _nan_to_num_cpu(x, *, nan, posinf, neginf):
    from .. import _ops
    if x.dtype in (np.float32, np.float64):
        # one fused pass (NumPy's takes five); the values are cast to the dtype here, as
        # PyTorch's (1e300 in float32 is inf), so the kernel never converts out of range
        info = np.finfo(x.dtype)
        with np.errstate(over="ignore"):
            vals = [float(x.dtype.type(v)) for v in (
                nan, info.max if posinf is None else posinf,
                info.min if neginf is None else neginf)]
        out = np.empty(x.shape, x.dtype)
        _ops.nan_to_num_into(np.ascontiguousarray(x).reshape(-1), out.reshape(-1), *vals)
        return out
    if posinf is None and neginf is None and x.dtype.kind == "f":
        # the default bounds: clip maps +-inf to them in one pass (np.nan_to_num takes
        # five), leaving only NaN, which is rare, to patch
        info = np.finfo(x.dtype)
        out = np.clip(x, info.min, info.max)
        m = np.isnan(out)
        if m.any():
            np.copyto(out, nan, where=m, casting="unsafe")
        return out
    return np.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)


def _nan_to_num_fwd(xp, x, *, nan, posinf, neginf):
    return xp.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)


def _nan_to_num_vjp(n, g):
    from .elementwise import where
    # identity on the finite elements, constant elsewhere; for complex values an element
    # with a non-finite real or imaginary part is replaced, so it gets no gradient either
    return (where(n.inputs[0].isfinite(), g, 0.0),)


def _nan_to_num_onnx(ctx, n):
    x = ctx.name(n.inputs[0])
    dt = np.dtype(n.inputs[0].dtype)
    info = np.finfo(dt)
    a = n.attrs
    nan, hi, lo = (np.asarray(v, dt) for v in (
        a["nan"], info.max if a["posinf"] is None else a["posinf"],
        info.min if a["neginf"] is None else a["neginf"]))
    y = ctx.op("Where", [ctx.op("IsNaN", [x]), ctx.const(nan), x])
    y = ctx.op("Where", [ctx.op("IsInf", [x], detect_negative=0), ctx.const(hi), y])
    return ctx.op("Where", [ctx.op("IsInf", [x], detect_positive=0), ctx.const(lo), y])


def _same_infer(x, **attrs):
    return x


NAN_TO_NUM = register(OpDef(
    "nan_to_num", _nan_to_num_fwd, kernels={"cpu": _nan_to_num_cpu}, vjp=_nan_to_num_vjp,
    saves=True, infer=_same_infer, cost=elementwise_cost, onnx=_nan_to_num_onnx,
    complex="rule",
    doc="NaN to nan, +inf to posinf, -inf to neginf (None: the dtype's largest/smallest "
        "finite value); complex values in their real and imaginary parts."))


def nan_to_num(x, nan: float | None = 0.0, posinf: float | None = None,
               neginf: float | None = None) -> Tensor:
    """NaN to ``nan`` and infinities to ``posinf``/``neginf`` (by default the dtype's largest
    and smallest finite values), as ``torch.nan_to_num``; a complex tensor has both its real
    and imaginary parts replaced; integer and bool tensors are returned as they are. Each
    replacement is chosen from the input value alone (an infinite ``nan`` is kept), and
    ``nan=None`` means 0, as PyTorch's. The gradient flows to the finite elements only (0
    elsewhere).

    >>> tl.nan_to_num(tl.tensor([float("nan"), 1.0, float("-inf")]), neginf=-9.0)
    tensor([ 0.,  1., -9.])
    """
    x = to_tensor(x)
    if x.dtype.kind not in "fc":
        return x
    return apply(NAN_TO_NUM, x, nan=0.0 if nan is None else float(nan),
                 posinf=None if posinf is None else float(posinf),
                 neginf=None if neginf is None else float(neginf))


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
