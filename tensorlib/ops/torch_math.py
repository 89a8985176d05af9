"""PyTorch's elementwise functions that tensorlib lacked, as composites of registry ops
(autograd, grad of grad and capture follow): ``float_power``, ``ldexp``, ``log10``,
``logaddexp2``, ``deg2rad``/``rad2deg``, ``fmax``/``fmin``, ``heaviside``, ``gcd``/``lcm``,
``frexp``, ``angle``, ``isposinf``/``isneginf``/``isreal``, ``mvlgamma``, ``hardshrink``,
``positive`` and ``nextafter`` (eager: it reads the values on the host).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from . import elementwise as E
from ._util import (_is_scalar, as_operands, same_category, to_float, to_tensor,
                    weak_scalar)

__all__ = [
    "angle", "deg2rad", "float_power", "fmax", "fmin", "frexp", "gcd", "hardshrink",
    "heaviside", "isneginf", "isposinf", "isreal", "lcm", "ldexp", "log10", "logaddexp2",
    "mvlgamma", "nextafter", "positive", "rad2deg",
]

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)


def _pair(op: str, a, b) -> tuple[Tensor, Tensor]:
    """Operands promoted as PyTorch's binary ops (weak Python scalars, float wins)."""
    a, b = same_category(*as_operands(a, b))
    if a.dtype != b.dtype:
        dt = np.result_type(a.dtype, b.dtype)
        a, b = a.astype(dt), b.astype(dt)
    return a, b


def float_power(input, exponent) -> Tensor:
    """``input ** exponent`` computed in float64 (``torch.float_power``: the result is
    float64 whatever the inputs' dtypes; complex128 when either is complex)."""
    # Python numbers go straight to float64: through a small dtype first, uint8 meeting -2
    # overflowed and float16 meeting 2**40 became inf
    if not _is_scalar(input) or not isinstance(exponent, Tensor):
        input = to_tensor(input)
    if not _is_scalar(exponent):
        exponent = to_tensor(exponent)
    # complex anywhere: complex128, as PyTorch's
    wide = np.complex128 if any(
        isinstance(v, (complex, np.complexfloating)) or
        (isinstance(v, Tensor) and v.dtype.kind == "c") for v in (input, exponent)) \
        else np.float64
    ref = (input if isinstance(input, Tensor) else exponent).astype(wide)
    a = input.astype(wide) if isinstance(input, Tensor) else \
        weak_scalar(_as_float(input), ref)
    b = exponent.astype(wide) if isinstance(exponent, Tensor) else \
        weak_scalar(_as_float(exponent), ref)
    return E.power(a, b)


def _as_float(v):
    return v if isinstance(v, (float, complex)) else float(v)


def ldexp(input, other) -> Tensor:
    """``input * 2 ** other`` (``torch.ldexp``; integer inputs give the default float)."""
    a, b = _pair("ldexp", input, other)
    a = to_float(a)
    return a * E.exp2(b.astype(a.dtype))


def log10(input) -> Tensor:
    """Base-10 logarithm (``torch.log10``; integers give the default float)."""
    return E.log(to_float(to_tensor(input))) * (1.0 / _LN10)


def logaddexp2(input, other) -> Tensor:
    """``log2(2**input + 2**other)`` without overflow (``torch.logaddexp2``; floating point
    only, as PyTorch's)."""
    a, b = _pair("logaddexp2", input, other)
    if a.dtype.kind != "f":
        raise TypeError(f"logaddexp2: expects floating-point inputs, got {a.dtype}")
    return E.logaddexp(a * _LN2, b * _LN2) * (1.0 / _LN2)


def deg2rad(input) -> Tensor:
    """Degrees to radians (``torch.deg2rad``; integers give the default float)."""
    return to_float(to_tensor(input)) * (math.pi / 180.0)


def rad2deg(input) -> Tensor:
    """Radians to degrees (``torch.rad2deg``)."""
    return to_float(to_tensor(input)) * (180.0 / math.pi)


def _nan_pick(a: Tensor, b: Tensor, larger: bool) -> Tensor:
    # the gradient goes to the picked operand whole (ties to ``a``), as PyTorch's fmax/fmin
    take_a = ((a >= b) if larger else (a <= b))
    if a.dtype.kind == "f":
        take_a = take_a | E.isnan(b)
    return E.where(take_a, a, b)


def fmax(input, other) -> Tensor:
    """Elementwise maximum that ignores NaN (NaN only where both are), as ``torch.fmax``."""
    a, b = _pair("fmax", input, other)
    return _nan_pick(a, b, True)


def fmin(input, other) -> Tensor:
    """Elementwise minimum that ignores NaN, as ``torch.fmin``."""
    a, b = _pair("fmin", input, other)
    return _nan_pick(a, b, False)


def heaviside(input, values) -> Tensor:
    """The Heaviside step: 0 below zero, 1 above, ``values`` at zero (``torch.heaviside``;
    ``input`` and ``values`` must share a dtype). Not differentiable, as PyTorch's."""
    x, v = to_tensor(input), to_tensor(values)
    if x.dtype != v.dtype:
        raise TypeError(f"heaviside: input ({x.dtype}) and values ({v.dtype}) must have the "
                        "same dtype")
    x, v = x.detach(), v.detach()
    step = (x > 0).astype(x.dtype)
    return E.where(x == 0, v, step)


def _integers(op: str, a, b) -> tuple[Tensor, Tensor]:
    a, b = _pair(op, a, b)
    if a.dtype.kind not in "iu" or b.dtype.kind not in "iu":
        raise TypeError(f"{op}: expects integer tensors, got {a.dtype} and {b.dtype}")
    return a, b


def _c_remainder(a: Tensor, b: Tensor) -> Tensor:
    """C's ``a % b`` for integers (sign of ``a``; ``b`` nonzero), from the floor remainder so
    that nothing is negated (``-a`` wraps for INT_MIN)."""
    r = E.mod(a, b)
    if a.dtype.kind == "u":
        return r
    return E.where((r != 0) & ((a < 0) != (b < 0)), r - b, r)


def gcd(input, other) -> Tensor:
    """Greatest common divisor (``torch.gcd``; integers only), by PyTorch's algorithm:
    ``a, b = |a|, |b|`` and Euclid with C's remainder, so the results are PyTorch's also
    where ``|INT_MIN|`` wraps: non-negative except ``gcd(INT_MIN, 0) = INT_MIN`` and the
    few pairs such as ``gcd(INT_MIN, 5) = -1`` where PyTorch's is negative too.

    Eagerly the loop stops when every pair is done; under capture it runs the worst case for
    the dtype (Fibonacci numbers)."""
    from ..autograd.mode import state
    a, b = _integers("gcd", input, other)
    shape = tuple(np.broadcast_shapes(tuple(a.shape), tuple(b.shape)))
    a, b = E.abs(a.broadcast_to(shape)), E.abs(b.broadcast_to(shape))
    rounds = int(np.ceil(np.iinfo(a.dtype).bits * 1.45)) + 3
    for _ in range(rounds):
        if state.tracer is None and not bool((a != 0).any().item()):
            break
        nz = a != 0
        r = _c_remainder(b, E.where(nz, a, 1))
        a, b = E.where(nz, r, 0), E.where(nz, a, b)
    return b


def lcm(input, other) -> Tensor:
    """Least common multiple (``torch.lcm``; integers only; 0 when either is 0):
    ``|a / gcd(a, b) * b|`` as PyTorch computes it (in int for int8/int16), wrapping where
    that overflows."""
    a, b = _integers("lcm", input, other)
    g = gcd(a, b)
    # g divides a exactly, so floor and C's truncating division agree
    q = E.floor_divide(a, E.where(g == 0, 1, g))
    if q.dtype.itemsize < 4:
        # C promotes int8/int16 to int: |q * b| is taken before the product wraps
        return E.abs(q.astype(np.int32) * b.astype(np.int32)).astype(q.dtype)
    return E.abs(q * b)


class frexp_result(NamedTuple):
    """``(mantissa, exponent)`` of :func:`frexp` (``torch.return_types.frexp``)."""
    mantissa: Tensor
    exponent: Tensor


def frexp(input) -> frexp_result:
    """Split into mantissa in [0.5, 1) (by magnitude) and int32 exponent, ``input =
    mantissa * 2 ** exponent`` (``torch.frexp``; floating point only; 0, inf and NaN keep
    exponent 0). The mantissa is differentiable (``grad / 2 ** exponent``)."""
    x = to_tensor(input)
    if x.dtype.kind != "f":
        raise TypeError(f"frexp: only supports floating-point dtypes, got {x.dtype}")
    wide = x.detach().astype(np.float64)      # float32's subnormals are normal in float64
    mag = E.abs(wide)
    ok = E.isfinite(wide) & (mag > 0)
    safe = E.where(ok, mag, 1.0)
    e = E.floor(E.log2(safe)) + 1.0
    # log2 rounds near powers of two: move the exponent by one where the mantissa left
    # [0.5, 1); dividing by a power of two is exact
    m = safe / E.exp2(e)
    e = E.where(m >= 1.0, e + 1.0, E.where(m < 0.5, e - 1.0, e))
    e = E.where(ok, e, 0.0)
    # 2 ** -e in two halves: for subnormals 2 ** -e itself overflows the dtype; each product
    # by a power of two is exact
    h1 = E.floor(-e * 0.5)
    mant = x * E.exp2(h1).astype(x.dtype) * E.exp2(-e - h1).astype(x.dtype)
    return frexp_result(mant, e.astype(np.int32))


def angle(input) -> Tensor:
    """The argument of each element: pi for negative reals, 0 otherwise, NaN for NaN
    (``torch.angle`` on real tensors; integers give the default float). Piecewise constant:
    a zero gradient, as PyTorch's (the result requires grad when ``input`` does)."""
    from .reduction import zero_grad_link
    x = to_float(to_tensor(input))
    if x._data.dtype.kind == "c":
        from .complex import ANGLE
        return apply(ANGLE, x)
    out = (x.detach() < 0).astype(x.dtype) * math.pi
    out = E.where(E.isnan(x), x.detach(), out)
    return out + zero_grad_link(x) if x.requires_grad else out


def isposinf(input) -> Tensor:
    """Whether each element is +inf (``torch.isposinf``)."""
    x = to_tensor(input)
    return E.isinf(x) & (x > 0) if x.dtype.kind == "f" else x != x


def isneginf(input) -> Tensor:
    """Whether each element is -inf (``torch.isneginf``)."""
    x = to_tensor(input)
    return E.isinf(x) & (x < 0) if x.dtype.kind == "f" else x != x


def isreal(input) -> Tensor:
    """Whether each element has a zero imaginary part: all True for real dtypes
    (``torch.isreal``)."""
    x = to_tensor(input)
    if x.dtype.kind == "c":
        from .. import creation
        return creation.tensor(np.imag(x.numpy()) == 0, device=x.device)
    from ..creation import full
    return full(tuple(x.shape), True, device=x.device)


def mvlgamma(input, p: int) -> Tensor:
    """The multivariate log-gamma of dimension ``p``: ``sum_i lgamma(x - i / 2) + p (p - 1)
    / 4 log(pi)`` for i in 0 .. p-1 (``torch.mvlgamma``)."""
    from .special_fns import lgamma
    x = to_float(to_tensor(input))
    if not isinstance(p, (int, np.integer)) or isinstance(p, bool) or p < 1:
        raise ValueError(f"mvlgamma: p has to be an integer >= 1, got {p!r}")
    out = lgamma(x)
    for i in range(1, int(p)):
        out = out + lgamma(x - i / 2.0)
    return out + p * (p - 1) / 4.0 * math.log(math.pi)


def hardshrink(input, lambd: float = 0.5) -> Tensor:
    """0 where ``|x| <= lambd``, else ``x`` (``torch.hardshrink``; NaN stays NaN)."""
    x = to_tensor(input)
    return E.where(E.abs(x) <= lambd, 0.0 if x.dtype.kind == "f" else 0, x)


def positive(input) -> Tensor:
    """``input`` itself (``torch.positive``; bool tensors are refused, as PyTorch's)."""
    x = to_tensor(input)
    if x.dtype == np.bool_:
        raise TypeError("positive: the + operator on a bool tensor is not supported; use "
                        "logical ops instead")
    return x


def nextafter(input, other) -> Tensor:
    """The next floating-point value after ``input`` towards ``other`` (``torch.nextafter``).
    Eager only: it reads the values on the host (refused under capture); not
    differentiable, as PyTorch's."""
    from .._tensor import _wrap
    from ..backends import xp_of
    a, b = _pair("nextafter", input, other)
    if a.dtype.kind != "f":
        raise TypeError(f"nextafter: expects floating-point tensors, got {a.dtype}")
    a._read("nextafter (computed on the host's values)")
    b._read("nextafter (computed on the host's values)")
    xp = xp_of(a._data)
    # C99: y where x == y (NumPy's float16 loop gives x: nextafter(-0.0, 0.0) was -0.0)
    out = xp.where(a._data == b._data, b._data, xp.nextafter(a._data, b._data))
    return _wrap(xp.asarray(out), a._device, False, None, 0)

