"""Elementwise ops: unary math, activations, binary arithmetic, comparisons."""
from __future__ import annotations

import functools
import math

import numpy as np

from ..errors import DTypeError
from .._state import state
from ..amp.cast import autocast_call
from ..amp.policy import AUTOCAST_OPS
from .. import _dtypes, _ops
from .._apply import apply
from .._tensor import Tensor
from .registry import OpDef, register
from ._util import (as_operands, bool_infer, check_alpha, elementwise_cost, float_infer,
                    float_operands, half_opmath, half_opmath_operand, make_binary_infer, real_infer,
                    same_category, same_infer, to_float, to_tensor, torch_promote,
                    unbroadcast)


def _erf_cpu(x):
    # the kernel works on flat (>= 1-d) buffers, and float16 in float32: back to x's dtype
    return _ops.erf(x).reshape(x.shape).astype(x.dtype, copy=False)


def _erf_cuda(x):
    from cupyx.scipy.special import erf
    return erf(x)


# NumPy ufunc name -> the public tensorlib function computing it (Tensor.__array_ufunc__:
# np.exp(t) is tl.exp(t), recorded and differentiable)
UFUNC_PUBLIC: dict = {}


def _unary(name, *, ufunc=None, fwd=None, kernels=None, vjp=None, saves=True,
           saves_output=False, floating=True, infer=None, doc=""):
    op = register(OpDef(name, fwd, ufunc=ufunc, kernels=kernels, vjp=vjp,
                        infer=infer or (float_infer if floating else same_infer),
                        cost=elementwise_cost, saves=saves, saves_output=saves_output, doc=doc))
    if floating and name in AUTOCAST_OPS:      # (exp, log, ...: on an autocast list)
        def public(x: Tensor) -> Tensor:
            if state.autocast is not None:
                return autocast_call(public, name, x)
            return apply(op, to_float(to_tensor(x)))
    elif floating:
        def public(x: Tensor) -> Tensor:
            return apply(op, to_float(to_tensor(x)))
    else:
        def public(x: Tensor) -> Tensor:
            return apply(op, to_tensor(x))
    public.__name__ = public.__qualname__ = name
    public.__doc__ = doc or f"Elementwise {name}."
    if ufunc is not None:
        UFUNC_PUBLIC.setdefault(ufunc, public)
    return op, public


def _zero_grad(n, g):
    return (zeros_like(n.inputs[0]),)


def zeros_like(x):
    from ..creation import zeros_like as z
    return z(x)


# --- unary math --------------------------------------------------------------
NEG, neg = _unary("neg", ufunc="negative", vjp=lambda n, g: (-g,), saves=False, floating=False)
NEG.complex = "holomorphic"
def _abs_vjp(n, g):
    x = n.inputs[0]
    if x._data.dtype.kind == "c":       # |z|' is z / |z| (PyTorch's sgn; 0 at 0)
        from .complex import sgn as _sgn
        return (g * _sgn(x),)
    return (g * sign(x),)


ABS, abs = _unary("abs", ufunc="abs", vjp=_abs_vjp, floating=False, infer=real_infer)
ABS.complex = "rule"
def _sign_fwd(xp, x):
    # as PyTorch: a bool is its own sign, and NaN's sign is 0 (so abs's gradient there is 0)
    if x.dtype.kind == "b":
        return x.copy()
    out = xp.sign(x)
    if x.dtype.kind == "f":
        if xp is np:    # NaN is rare: a mask test, not a where() over every element (2.5x)
            out = np.asarray(out)       # (0-d: NumPy's sign gives a scalar)
            nan = np.isnan(out)
            if nan.any():
                out[nan] = 0
        else:           # (a GPU: no host sync)
            out = xp.where(xp.isnan(out), x.dtype.type(0), out)
    return out


SIGN, sign = _unary("sign", fwd=_sign_fwd, vjp=_zero_grad, saves=False, floating=False)


def _no_complex(name, hint):
    """A ``check`` refusing complex inputs with PyTorch's reason (the op's ``complex`` is
    "forward" so that this message, not the gate's generic one, is what the user sees)."""
    def check(*arrays, **attrs):
        for a in arrays:
            if a.dtype.kind == "c":
                raise DTypeError(f"{name}: {hint}")
    return check


SIGN.complex = "forward"
SIGN.check = _no_complex("sign", "unlike NumPy, sign is not defined for complex tensors "
                                 "(as PyTorch's); use tl.sgn for z / |z|")
UFUNC_PUBLIC.setdefault("sign", sign)
EXP, exp = _unary("exp", ufunc="exp", vjp=lambda n, g: (g * n.out,), saves=False,
                  saves_output=True)
EXP.complex = "holomorphic"
EXP2, exp2 = _unary("exp2", ufunc="exp2", vjp=lambda n, g: (g * n.out * math.log(2.0),),
                    saves=False, saves_output=True)
LOG, log = _unary("log", ufunc="log", vjp=lambda n, g: (g / n.inputs[0],))
EXP2.complex = LOG.complex = "holomorphic"
exp.__doc__ = """The exponential ``e ** x`` of each element (``torch.exp``).

    Integer and bool inputs give the default float dtype, as PyTorch; large inputs
    overflow to ``inf`` (float32 beyond about 88.7). The gradient is ``exp(x)``.

    >>> tl.exp(tl.tensor([0.0, 1.0]))
    tensor([1.0000, 2.7183])
    """
log.__doc__ = """The natural logarithm of each element (``torch.log``).

    Integer and bool inputs give the default float dtype, as PyTorch. ``log(0)`` is
    ``-inf`` and a negative input gives NaN (no error); the gradient is ``1 / x``.

    >>> tl.log(tl.tensor([1.0, 2.718281828, 100.0]))
    tensor([0.0000, 1.0000, 4.6052])
    """
LOG2, log2 = _unary("log2", ufunc="log2",
                    vjp=lambda n, g: (g / (n.inputs[0] * math.log(2.0)),))
LOG1P, log1p = _unary("log1p", ufunc="log1p", vjp=lambda n, g: (g / (n.inputs[0] + 1.0),))
EXPM1, expm1 = _unary("expm1", ufunc="expm1", vjp=lambda n, g: (g * (n.out + 1.0),),
                      saves=False, saves_output=True)


def _sqrt_vjp(n, g):
    with np.errstate(divide="ignore", invalid="ignore"):   # at 0: inf (0/0: nan), as PyTorch
        return (g * 0.5 / n.out,)


SQRT, sqrt = _unary("sqrt", ufunc="sqrt", vjp=_sqrt_vjp, saves=False, saves_output=True)


def _rsqrt_fwd(xp, x):
    return 1.0 / xp.sqrt(x)


RSQRT, rsqrt = _unary("rsqrt", fwd=_rsqrt_fwd,
                      vjp=lambda n, g: (g * -0.5 * n.out * n.out * n.out,), saves=False,
                      saves_output=True)
SQUARE, _square = _unary("square", ufunc="square", vjp=lambda n, g: (g * 2.0 * n.inputs[0],),
                         floating=False)
LOG2.complex = LOG1P.complex = EXPM1.complex = "holomorphic"
SQRT.complex = RSQRT.complex = SQUARE.complex = "holomorphic"


def square(x: Tensor) -> Tensor:
    """Elementwise ``x * x``; a bool tensor gives int64, as PyTorch's.

    >>> tl.square(tl.tensor([True, False]))         # tensor([1, 0]) (int64)
    """
    x = to_tensor(x)
    return _square(x.astype(_dtypes.int64) if x._data.dtype.kind == "b" else x)


UFUNC_PUBLIC["square"] = square
RECIPROCAL, reciprocal = _unary("reciprocal", fwd=lambda xp, x: 1.0 / x,
                                vjp=lambda n, g: (-g * n.out * n.out,), saves=False,
                                saves_output=True)
SIN, sin = _unary("sin", ufunc="sin", vjp=lambda n, g: (g * cos(n.inputs[0]),))
COS, cos = _unary("cos", ufunc="cos", vjp=lambda n, g: (-g * sin(n.inputs[0]),))
TAN, tan = _unary("tan", ufunc="tan", vjp=lambda n, g: (g * (1.0 + n.out * n.out),),
                  saves=False, saves_output=True)

# inverse trigonometric and hyperbolic functions (NumPy's arc* names are aliases)
ASIN, asin = _unary("asin", ufunc="arcsin", vjp=lambda n, g: (g * rsqrt(1.0 - square(
    n.inputs[0])),))
ACOS, acos = _unary("acos", ufunc="arccos", vjp=lambda n, g: (-g * rsqrt(1.0 - square(
    n.inputs[0])),))
ATAN, atan = _unary("atan", ufunc="arctan", vjp=lambda n, g: (g / (1.0 + square(
    n.inputs[0])),))
SINH, sinh = _unary("sinh", ufunc="sinh", vjp=lambda n, g: (g * cosh(n.inputs[0]),))
COSH, cosh = _unary("cosh", ufunc="cosh", vjp=lambda n, g: (g * sinh(n.inputs[0]),))
ASINH, asinh = _unary("asinh", ufunc="arcsinh", vjp=lambda n, g: (g * rsqrt(square(
    n.inputs[0]) + 1.0),))
# rsqrt(x - 1) rsqrt(x + 1), not rsqrt(x**2 - 1): the same for real x, and for complex x
# the derivative of the principal branch (PyTorch's)
ACOSH, acosh = _unary("acosh", ufunc="arccosh", vjp=lambda n, g: (
    g * (rsqrt(n.inputs[0] - 1.0) * rsqrt(n.inputs[0] + 1.0)),))
ATANH, atanh = _unary("atanh", ufunc="arctanh", vjp=lambda n, g: (g / (1.0 - square(
    n.inputs[0])),))
arcsin, arccos, arctan, arcsinh, arccosh, arctanh = asin, acos, atan, asinh, acosh, atanh
# their rules are holomorphic expressions of x (PyTorch's complex derivatives are their
# conjugates, e.g. acosh: g * conj(rsqrt(x**2 - 1)), the branch used here too)
for _op in (RECIPROCAL, SIN, COS, TAN, ASIN, ACOS, ATAN, SINH, COSH, ASINH, ACOSH, ATANH):
    _op.complex = "holomorphic"

# Backward ops of tanh and sigmoid are ops of their own (one kernel call instead of three);
# their own vjps keep grad-of-grad working.
def _tanh_grad_vjp(n, gg):
    g, y = n.inputs
    return (gg * (1.0 - y * y) if g._rg else None,
            gg * g * y * -2.0 if y._rg else None)


def _sigmoid_grad_vjp(n, gg):
    g, y = n.inputs
    return (gg * y * (1.0 - y) if g._rg else None,
            gg * g * (1.0 - 2.0 * y) if y._rg else None)


TANH_GRAD = register(OpDef("tanh_grad", lambda xp, g, y: g * (1 - y * y),
                           infer=make_binary_infer("tanh_grad"), cost=elementwise_cost,
                           vjp=_tanh_grad_vjp))
SIGMOID_GRAD = register(OpDef("sigmoid_grad", lambda xp, g, y: g * y * (1 - y),
                              infer=make_binary_infer("sigmoid_grad"), cost=elementwise_cost,
                              vjp=_sigmoid_grad_vjp))
TANH, tanh = _unary("tanh", ufunc="tanh", vjp=lambda n, g: (apply(TANH_GRAD, g, n.out),),
                    saves=False, saves_output=True)
TANH.complex = TANH_GRAD.complex = SIGMOID_GRAD.complex = "holomorphic"
ERF, erf = _unary("erf", kernels={"cpu": _erf_cpu, "cuda": _erf_cuda},
                  vjp=lambda n, g: (g * (2.0 / math.sqrt(math.pi)) * exp(-square(n.inputs[0])),))


def _sigmoid(xp, x):
    if x.dtype.kind == "c":     # (|x| and x >= 0 mean nothing here): PyTorch's formula
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return 1.0 / (1.0 + xp.exp(-x))
    # exp of a non-positive number only: no overflow for large |x|
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


FUSED_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))     # the fused kernels' dtypes
_F32 = (np.dtype(np.float32),)


def f32_map(kernel, fallback, attrs=(), min_size=0, dtypes=_F32):
    """A CPU kernel ``(x, **attrs) -> y``: _ops' one-pass map ``kernel(x, out, *attrs)`` for a
    contiguous ``x`` of ``min_size`` elements or more whose dtype is among ``dtypes`` (float32
    alone by default), else ``fallback(np, x, **attrs)``; ``attrs`` names the op attributes
    the kernel takes."""
    def run(x, **kw):
        if x.dtype in dtypes and x.flags.c_contiguous and x.size >= min_size:
            out = np.empty_like(x)
            kernel(x.reshape(-1), out.reshape(-1), *[kw[k] for k in attrs])
            return out
        return fallback(np, x, **kw)
    return run


def fused_grad(kernel, fallback, dtypes=_F32, attrs=()):
    """The CPU kernel of an activation's backward ``(g, x, **attrs) -> dx``: _ops' one-pass
    map ``kernel(g, x, out, *attrs)`` when g and x share a dtype among ``dtypes``, else
    ``fallback(np, g, x, **attrs)``; ``attrs`` names the op attributes the kernel takes."""
    def run(g, x, **kw):
        if g.dtype != x.dtype or x.dtype not in dtypes:
            return fallback(np, g, x, **kw)
        # a broadcast g (a sum's backward) is copied out: one pass, where NumPy's composite
        # takes several
        shape = x.shape
        if g.shape != shape:
            shape = np.broadcast_shapes(g.shape, shape)
            g, x = np.broadcast_to(g, shape), np.broadcast_to(x, shape)
        g, x = np.ascontiguousarray(g).reshape(-1), np.ascontiguousarray(x).reshape(-1)
        out = np.empty_like(x)
        if attrs:
            kernel(g, x, out, *[kw[k] for k in attrs])
        else:
            kernel(g, x, out)
        return out.reshape(shape)     # (ascontiguousarray makes a 0-d array 1-d)
    return run


def _numpy_has_svml() -> bool:
    """Whether NumPy's float32 exp, log, expm1 and log1p run on vector code (its AVX-512 loops
    and SVML, on CPUs with AVX-512). Elsewhere expm1 and log1p are a libm call per element,
    and exp, exp2, log and log2 took 2.3-3.6 ns an element on an AVX2 Zen 3 core."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:     # NumPy 1.x
        from numpy.core._multiarray_umath import __cpu_features__ as features
    return bool(features.get("AVX512_SKX"))


# Below this many elements the math maps leave a float32 array to NumPy's loop: the map's
# call (buffer checks, a fresh output, the name's dispatch) costs ~1-2 µs, as much as NumPy's
# libm loop spends on a few hundred exps (a 4-element exp: 0.7 µs in NumPy, 6 through the map)
MAP_MIN = 256


def _ufunc_map(kernel, ufunc, min_size=0, kernel64=None):
    """_ops' one-pass float32 map ``kernel(x, out)`` standing in for the NumPy ``ufunc``
    (which takes arrays of fewer than ``min_size`` elements, strided ones and other dtypes),
    ``kernel64`` likewise for float64 arrays when given, with ``.ufunc_out(x, out=None)``
    (the ufunc's calling convention) for graph fusion's in-place chains."""
    f32, f64 = np.dtype(np.float32), np.dtype(np.float64)

    def pick(x):
        # (the size first: W1b's 4-float exps and tanhs pay one test on their way to NumPy)
        if x.size >= min_size and x.flags.c_contiguous:
            dt = x.dtype
            return kernel if dt == f32 else kernel64 if dt == f64 else None
        return None

    def run(x):
        k = pick(x)
        if k is None:
            return ufunc(x)
        out = np.empty_like(x)
        k(x.reshape(-1), out.reshape(-1))
        return out

    def ufunc_out(x, out=None):
        if out is None:
            return run(x)
        k = pick(x)
        if k is not None and x.dtype == out.dtype and x.shape == out.shape \
                and out.flags.c_contiguous:
            k(x.reshape(-1), out.reshape(-1))
            return out
        return ufunc(x, out=out)
    run.ufunc_out = ufunc_out
    return run


# where NumPy's are scalar, float32 expm1 and log1p take _ops' vectorised maps (~2 ulp), and
# tanh too (~3 ulp; NumPy's took 2.7 ms a million floats on an AVX2 Zen core, this 0.9 ms);
# exp, exp2, log and log2 too (<= 1.25 ulp, subnormals and IEEE special values kept; 1.0 ns
# an element on one AVX2 Zen 3 core against NumPy's 1.6-4.7, and threaded from 256k
# elements), and the hyperbolic functions, their inverses, atan, asin and acos (<= 4 ulp;
# 0.6-4.2 ns an element against NumPy's 11-29), sin and cos (<= 1.6 ulp; 1.2 ns against 1.6)
# and tan (<= 2.5 ulp; 1.3 ns against 15); float64 exp, log, expm1, log1p and tanh too (<= 1.2
# ulp, 1.5 for log1p, 3.1 for tanh; 3-7 ns an element against NumPy's 6-16), and float64 exp2,
# log2, sin, cos and tan (<= 1.1 ulp, 2.2 for tan; 3-5 ns against NumPy's 5-24: glibc's sin
# reduces exactly, slowly), the hyperbolic functions, their inverses, atan, asin and acos (<= 2.5
# ulp; 3-7 ns against 8-27); ELU and softplus, float32 and float64, always take their one-pass
# kernels (three to six NumPy passes otherwise)
if not _numpy_has_svml():
    for _op, _k32 in ((EXPM1, _ops.expm1_f32), (LOG1P, _ops.log1p_f32), (TANH, _ops.tanh_f32)):
        _op.set_kernel("cpu", _ufunc_map(_k32, getattr(np, _op.ufunc), 0,
                                         functools.partial(_ops.math_f64, _op.name)))
    for _op in (EXP, EXP2, LOG, LOG2, SINH, COSH, ASINH, ACOSH, ATANH, ATAN, ASIN, ACOS, SIN,
                COS, TAN):
        _op.set_kernel("cpu", _ufunc_map(
            functools.partial(_ops.math_f32, _op.name), getattr(np, _op.ufunc), MAP_MIN,
            functools.partial(_ops.math_f64, _op.name) if _op.name in _ops.MATH_F64 else None))
def _f64_map(name: str, fallback):
    """``fallback(xp, x)``, except that a contiguous float64 ``x`` of MAP_MIN elements or more
    takes _ops' float64 map ``name`` (on every CPU)."""
    def run(xp, x):
        if x.dtype == np.float64 and x.flags.c_contiguous and x.size >= MAP_MIN:
            out = np.empty_like(x)
            _ops.math_f64(name, x.reshape(-1), out.reshape(-1))
            return out
        return fallback(xp, x)
    return run


# sign and rsqrt in one pass on every CPU (NumPy's sign is followed by a NaN test, and 1 / sqrt
# is two passes): 1M floats 0.22 and 0.36 ms on one AVX2 Zen 3 core, against 0.56 and 0.64;
# float64 sign and rsqrt too (sign 0.6 ms against 1.3)
SIGN.set_kernel("cpu", f32_map(functools.partial(_ops.math_f32, "sign"),
                               _f64_map("sign", _sign_fwd), min_size=MAP_MIN))
RSQRT.set_kernel("cpu", f32_map(functools.partial(_ops.math_f32, "rsqrt"),
                                _f64_map("rsqrt", _rsqrt_fwd), min_size=MAP_MIN))

# float32: the LSTM kernels' vectorised sigmoid (1.4e-7 relative; NumPy's where() over an
# unpredictable mask made the formula above 20x slower than its exp); float64 its own map
# (2.4 ulp; the formula took 11x PyTorch's time)
_sigmoid_cpu = f32_map(_ops.sigmoid_f32, _f64_map("sigmoid", _sigmoid))


SIGMOID, sigmoid = _unary("sigmoid", fwd=_sigmoid, kernels={"cpu": _sigmoid_cpu},
                          vjp=lambda n, g: (apply(SIGMOID_GRAD, g, n.out),), saves=False,
                          saves_output=True)
SIGMOID.complex = "holomorphic"


def _clip_keeps_signed_zeros(dt) -> bool:
    """Whether NumPy's ``clip(x, 0, inf)`` is ``x < 0 ? 0 : x`` for ``dt``, signed zeros
    included (-0.0 stays -0.0, +0.0 stays +0.0); probed: which operand a tie returns is
    NumPy's unspecified choice (``maximum(x, 0)`` gives +0.0 for float32, -0.0 for float16)."""
    x = np.array([-0.0, 0.0, -1.0, 2.0] * 16, dt)
    out = np.clip(x, dt.type(0), dt.type(np.inf))
    return bool((np.signbit(out) == (x == 0) & np.signbit(x)).all() and (out >= 0).all())


# relu(-0.0) is -0.0, as PyTorch's (x < 0 ? 0 : x); a clip against +inf does it in one
# vectorised pass (faster than maximum; a where() would be 10x slower)
_RELU_BY_CLIP = {dt: _clip_keeps_signed_zeros(dt)
                 for dt in map(np.dtype, (np.float16, np.float32, np.float64))}
# the ufunc np.clip calls after its argument checks, which cost 3 of a 16-float relu's 4 µs
_clip_ufunc = getattr(getattr(np, "_core", getattr(np, "core", None)), "umath", np).clip


def _relu(xp, x):
    # a zero of x's dtype: NumPy takes a Python 0 through a 10x slower mixed-type loop
    zero = x.dtype.type(0)
    if x.dtype.kind != "f":
        return xp.maximum(x, zero)
    if xp is np and _RELU_BY_CLIP.get(x.dtype):
        return _clip_ufunc(x, zero, x.dtype.type(np.inf))
    return xp.where(x < zero, zero, x)


def _relu_vjp(n, g):
    from .nn_act import relu_grad   # one fused pass (Cython on the CPU)
    return (relu_grad(g, n.inputs[0]),)


def _relu_cpu(x):
    # float32: one vectorised pass, threaded from 1M elements (NumPy's maximum is neither);
    # below 4096 elements NumPy's call costs less than the kernel's buffer setup
    if x.dtype == np.float32 and x.flags.c_contiguous and x.size >= 4096:
        out = np.empty_like(x)
        _ops.relu_f32(x.reshape(-1), out.reshape(-1))
        return out
    return _relu(np, x)


RELU, relu = _unary("relu", fwd=_relu, vjp=_relu_vjp, floating=False)
RELU.set_kernel("cpu", _relu_cpu)

# rounding: piecewise constant, zero gradient
FLOOR, floor = _unary("floor", ufunc="floor", vjp=_zero_grad, saves=False, floating=False)
CEIL, ceil = _unary("ceil", ufunc="ceil", vjp=_zero_grad, saves=False, floating=False)
ROUND, round = _unary("round", fwd=lambda xp, x: xp.round(x), vjp=_zero_grad, saves=False,
                      floating=False)
TRUNC, trunc = _unary("trunc", ufunc="trunc", vjp=_zero_grad, saves=False, floating=False)

ISNAN, isnan = _unary("isnan", ufunc="isnan", floating=False, infer=bool_infer)
ISINF, isinf = _unary("isinf", ufunc="isinf", floating=False, infer=bool_infer)
ISFINITE, isfinite = _unary("isfinite", ufunc="isfinite", floating=False, infer=bool_infer)
LOGICAL_NOT, logical_not = _unary("logical_not", ufunc="logical_not", floating=False,
                                  infer=bool_infer)
ISNAN.complex = ISINF.complex = ISFINITE.complex = LOGICAL_NOT.complex = "forward"


# --- parametrised activations --------------------------------------------------
# where() over a sign mask is ~20x slower than arithmetic on the CPU (the branch on each
# element cannot be predicted): the activations below are written without it
def _leaky_into(xp, x, t, out, negative_slope):
    """leaky_relu of ``x`` into ``out`` through the buffer ``t`` (x's shape; ``out`` may be
    ``t`` or ``x``): x for x > 0, else slope * x, the larger of the two when slope <= 1, the
    smaller above (max/min: where() over a sign mask is ~20x slower)."""
    xp.multiply(x, x.dtype.type(negative_slope), out=t)
    if negative_slope == 0:     # x = inf: 0 * inf is NaN, which max() would pick
        xp.copyto(t, x, where=x == xp.inf)
    return (xp.maximum if negative_slope <= 1 else xp.minimum)(x, t, out=out)


def _leaky_fwd(xp, x, negative_slope):
    # into the product's buffer (one allocation: a second one doubled the time)
    t = xp.empty_like(x)
    return _leaky_into(xp, x, t, t, negative_slope)


_LEAKY_BLOCK = 1 << 18     # elements per block of the in-place form (1 MiB of float32)


def leaky_relu_into(a: np.ndarray, negative_slope: float) -> np.ndarray:
    """leaky_relu of the NumPy array ``a`` written into ``a`` itself (``F.leaky_relu_``'s
    kernel when autograd and capture are not listening). Contiguous arrays go by blocks
    through one cache-sized buffer, so no array of ``a``'s size is allocated."""
    if a.dtype == np.float32 and a.flags.c_contiguous:     # one pass, in place
        flat = a.reshape(-1)
        _ops.leaky_relu_f32(flat, flat, negative_slope)
        return a
    if a.size <= _LEAKY_BLOCK or not (a.flags.c_contiguous or a.flags.f_contiguous):
        _leaky_into(np, a, np.empty_like(a), a, negative_slope)
        return a
    flat = a.reshape(-1, order="A")         # a view in memory order, C or Fortran
    tmp = np.empty(_LEAKY_BLOCK, a.dtype)
    for i in range(0, flat.size, _LEAKY_BLOCK):
        blk = flat[i:i + _LEAKY_BLOCK]
        _leaky_into(np, blk, tmp[:blk.size], blk, negative_slope)
    return a


def _leaky_grad_fwd(xp, g, x, negative_slope):
    # g * (1 for x > 0, else slope): (1 - slope) + slope is exactly 1 for most slopes
    slope = g.dtype.type(negative_slope)
    one = g.dtype.type(1)
    if (one - slope) + slope != one:        # (e.g. slope -0.3 in float32: 0.99999994)
        return xp.where(x > 0, one, slope).astype(g.dtype, copy=False) * g
    m = (x > 0).astype(g.dtype)
    m *= one - slope
    m += slope
    if m.shape != g.shape:      # (g and x broadcast against each other)
        return m * g
    m *= g
    return m


def _leaky_grad_vjp(n, gg):
    from .nn_act import _zero_grad
    return apply(LEAKY_RELU_GRAD, gg, n.inputs[1], **n.attrs), _zero_grad(n.inputs[1])


# leaky_relu's backward as an op of (g, x), as relu_grad: linear in g, piecewise constant in
# x (zeros, as PyTorch, so a second derivative w.r.t. x is zeros, not "x was not used")
# (float32 in one pass each: x > 0 ? x : slope x, x > 0 ? g : slope g, threaded from 1M
# elements; the NumPy forms take two to four passes on one thread)
LEAKY_RELU_GRAD = register(OpDef(
    "leaky_relu_grad", _leaky_grad_fwd,
    kernels={"cpu": fused_grad(_ops.leaky_relu_grad_f32, _leaky_grad_fwd,
                               attrs=("negative_slope",))},
    infer=make_binary_infer("leaky_relu_grad"), cost=elementwise_cost, saves=(1,),
    vjp=_leaky_grad_vjp))
LEAKY_RELU = register(OpDef(
    "leaky_relu", _leaky_fwd,
    kernels={"cpu": f32_map(_ops.leaky_relu_f32, _leaky_fwd, ("negative_slope",))},
    infer=same_infer, cost=elementwise_cost,
    vjp=lambda n, g: (apply(LEAKY_RELU_GRAD, g, n.inputs[0], **n.attrs),)))


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``x`` for x > 0, else ``negative_slope * x``."""
    return apply(LEAKY_RELU, to_float(to_tensor(x)), negative_slope=float(negative_slope))


def _elu_fwd(xp, x, alpha):
    # alpha * expm1(min(x, 0)) + max(x, 0): one of the two terms is 0 at each x
    zero = x.dtype.type(0)
    out = xp.expm1(xp.minimum(x, zero))
    if alpha != 1.0:
        out *= x.dtype.type(alpha)
    out += xp.maximum(x, zero)
    return out


def _elu_grad_fwd(xp, g, x, alpha):
    # g alpha exp(x) at and below 0, else g (NaN: g, as PyTorch): fmin gives exp(0) = 1 for
    # x > 0 and NaN, and alpha e + (1 - alpha) [not x <= 0] is then 1 there, alpha e elsewhere
    e = xp.exp(xp.fmin(x, x.dtype.type(0)))
    if alpha != 1.0:
        e *= x.dtype.type(alpha)
        e += (~(x <= 0)).astype(x.dtype) * x.dtype.type(1.0 - alpha)
    return (g * e).astype(xp.result_type(g, x), copy=False)


def _elu_grad_vjp(n, gg):
    # linear in g; in x, g alpha exp(x) where x <= 0 (0 above)
    from ._util import unbroadcast
    g, x = n.inputs
    alpha = n.attrs["alpha"]
    dx = None
    if x._rg:
        dx = unbroadcast(gg * g * (exp(minimum(x, 0.0)) * alpha) * (x <= 0).astype(x.dtype),
                         x._data.shape)
    return (unbroadcast(apply(ELU_GRAD, gg, x, alpha=alpha), g._data.shape) if g._rg else None,
            dx)


# ELU's backward as an op of (g, x): one pass with the vectorised exp on the CPU (NumPy's exp,
# min and products were 1.8x PyTorch's backward)
ELU_GRAD = register(OpDef(
    "elu_grad", _elu_grad_fwd,
    kernels={"cpu": fused_grad(_ops.elu_grad_into, _elu_grad_fwd, FUSED_FLOATS, ("alpha",))},
    infer=make_binary_infer("elu_grad"), cost=elementwise_cost, vjp=_elu_grad_vjp))
ELU = register(OpDef(
    "elu", _elu_fwd,
    kernels={"cpu": f32_map(_ops.elu_into, _elu_fwd, ("alpha",), dtypes=FUSED_FLOATS)},
    infer=same_infer, cost=elementwise_cost,
    vjp=lambda n, g: (apply(ELU_GRAD, g, n.inputs[0], **n.attrs),)))


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """``x`` for x > 0, else ``alpha * (exp(x) - 1)``."""
    return apply(ELU, to_float(to_tensor(x)), alpha=float(alpha))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _tanh_u(x):
    """u = sqrt(2/pi) (x + 0.044715 x^3) of GELU's tanh form (arrays or tensors)"""
    return _SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)


def _tanh_du(x):
    """u' = sqrt(2/pi) (1 + 3 0.044715 x^2)"""
    return _SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * x * x)


def _gelu_fwd(xp, x, approximate):
    if approximate == "tanh":
        return (0.5 * x * (1.0 + xp.tanh(_tanh_u(x)))).astype(x.dtype, copy=False)
    if xp is np:
        e = _erf_cpu(x * x.dtype.type(1.0 / math.sqrt(2.0)))
    else:
        from cupyx.scipy.special import erf as cerf
        e = cerf(x / math.sqrt(2.0))
    return (0.5 * x * (1.0 + e)).astype(x.dtype, copy=False)


def _gelu_cpu(x, approximate):
    # one vectorised pass (_gelu_vec.h, _simd_math.h, _simd_f64.h) instead of five (seven for
    # tanh) NumPy ones; the exact GELU keeps its accuracy in the left tail, where 1 + erf
    # cancels
    if x.flags.c_contiguous and x.dtype in FUSED_FLOATS:
        out = np.empty_like(x)
        kernel = _ops.gelu_into if approximate == "none" else _ops.gelu_tanh_into
        kernel(x.reshape(-1), out.reshape(-1))
        return out
    return _gelu_fwd(np, x, approximate)


def _cdf_pdf(x):
    cdf = 0.5 * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))
    pdf = exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))
    return cdf, pdf


def _gelu_vjp(n, g):
    return (apply(GELU_GRAD, g, n.inputs[0], approximate=n.attrs["approximate"]),)


def _gelu_grad_fwd(xp, g, x, approximate="none"):
    if approximate == "tanh":
        t, du = xp.tanh(_tanh_u(x)), _tanh_du(x)
        return (g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)).astype(x.dtype,
                                                                            copy=False)
    c = x.dtype.type(1.0 / math.sqrt(2.0))
    if xp is np:
        e = _erf_cpu(x * c)
    else:
        from cupyx.scipy.special import erf as cerf
        e = cerf(x * c)
    pdf = xp.exp(-0.5 * x * x) * x.dtype.type(1.0 / math.sqrt(2.0 * math.pi))
    return (g * (0.5 * (1.0 + e) + x * pdf)).astype(x.dtype, copy=False)


def flat_pair(x, y, dtypes=FUSED_FLOATS):
    """``x``, ``y`` as flat C-contiguous arrays for a one-pass _ops kernel when they share one
    shape and one dtype among ``dtypes``; None otherwise (the caller's NumPy path)."""
    if x.shape != y.shape or x.dtype != y.dtype or x.dtype not in dtypes:
        return None
    return np.ascontiguousarray(x).reshape(-1), np.ascontiguousarray(y).reshape(-1)


_gelu_grad_exact = fused_grad(_ops.gelu_grad_into, _gelu_grad_fwd, FUSED_FLOATS)
_gelu_grad_tanh = fused_grad(_ops.gelu_tanh_grad_into, _gelu_grad_fwd, FUSED_FLOATS)


def _gelu_grad_cpu(g, x, approximate="none"):
    if approximate == "tanh":
        return _gelu_grad_tanh(g, x, approximate="tanh")
    return _gelu_grad_exact(g, x)
# tanh's and sigmoid's backward at their outputs: one pass (1.6x PyTorch as composites)
TANH_GRAD.set_kernel("cpu", fused_grad(_ops.tanh_grad_into, TANH_GRAD.fwd, FUSED_FLOATS))
SIGMOID_GRAD.set_kernel("cpu", fused_grad(_ops.sigmoid_grad_into, SIGMOID_GRAD.fwd,
                                          FUSED_FLOATS))


def _gelu_grad_vjp(n, gg):
    # exact: d/dg: Phi + x phi; d/dx of g (Phi + x phi) = g phi (2 - x^2). tanh form: d/dg:
    # 0.5 (1 + t) + 0.5 x (1 - t^2) u'; d/dx: g (1 - t^2) (u' - x t u'^2 + 0.5 x u''), u'' =
    # 6 0.044715 sqrt(2/pi) x
    g, x = n.inputs
    if n.attrs.get("approximate", "none") == "tanh":
        t, du = tanh(_tanh_u(x)), _tanh_du(x)
        sech2 = 1.0 - t * t
        dg = 0.5 * (1.0 + t) + 0.5 * x * sech2 * du
        dx = sech2 * (du - x * t * du * du + (3 * 0.044715 * _SQRT_2_OVER_PI) * x * x)
    else:
        cdf, pdf = _cdf_pdf(x)
        dg, dx = cdf + x * pdf, pdf * (2.0 - x * x)
    return (unbroadcast(gg * dg, g._data.shape) if g._rg else None,
            unbroadcast(gg * g * dx, x._data.shape) if x._rg else None)


GELU = register(OpDef("gelu", _gelu_fwd, kernels={"cpu": _gelu_cpu}, infer=same_infer,
                      cost=elementwise_cost, vjp=_gelu_vjp))
GELU_GRAD = register(OpDef("gelu_grad", _gelu_grad_fwd, kernels={"cpu": _gelu_grad_cpu},
                           infer=make_binary_infer("gelu_grad"), cost=elementwise_cost,
                           vjp=_gelu_grad_vjp,
                           doc="GELU's backward, g * (Phi(x) + x phi(x)) (or its tanh form's, "
                               "approximate='tanh'), in one op."))


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """GELU; ``approximate='tanh'`` for the tanh approximation."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return apply(GELU, to_float(to_tensor(x)), approximate=approximate)


def silu(x: Tensor) -> Tensor:
    """x * sigmoid(x)."""
    x = to_float(to_tensor(x))
    return apply(SILU, x)


def _silu_fwd(xp, x):
    return x * _sigmoid(xp, x)


SILU = register(OpDef(
    "silu", _silu_fwd, kernels={"cpu": f32_map(_ops.silu_into, _silu_fwd, dtypes=FUSED_FLOATS)},
    infer=same_infer,
    cost=elementwise_cost, vjp=lambda n, g: (apply(SILU_GRAD, g, n.inputs[0]),)))


def _silu_grad_fwd(xp, g, x):
    s = _sigmoid(xp, x)
    return g * (s * (1.0 + x * (1.0 - s)))


def _silu_grad_vjp(n, gg):
    # d/dg: silu'(x); d/dx of g silu'(x) = g s (1 - s) (2 + x (1 - 2 s))
    g, x = n.inputs
    s = sigmoid(x)
    return (unbroadcast(gg * (s * (1.0 + x * (1.0 - s))), g._data.shape) if g._rg else None,
            unbroadcast(gg * g * (s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))), x._data.shape)
            if x._rg else None)


SILU_GRAD = register(OpDef("silu_grad", _silu_grad_fwd,
                           kernels={"cpu": fused_grad(_ops.silu_grad_into, _silu_grad_fwd,
                                                      FUSED_FLOATS)},
                           infer=make_binary_infer("silu_grad"), cost=elementwise_cost,
                           vjp=_silu_grad_vjp,
                           doc="SiLU's backward, g s (1 + x (1 - s)), s = sigmoid(x), in one op."))


def _hardswish_fwd(xp, x):
    r = xp.clip(x + x.dtype.type(3), x.dtype.type(0), x.dtype.type(6))
    r *= x
    r /= x.dtype.type(6)
    return r


def _hardswish_grad_fwd(xp, g, x):
    # PyTorch 2.13's breakpoints: 0 at and below -3, g at and above 3 (and at NaN)
    d = xp.where(x < 3, x / x.dtype.type(3) + x.dtype.type(0.5), x.dtype.type(1))
    return xp.where(x <= -3, xp.zeros((), g.dtype), g * d)


def _hardswish_grad_vjp(n, gg):
    # linear in g; d/dx of g (x/3 + 1/2) on (-3, 3) is g / 3, 0 elsewhere
    g, x = n.inputs
    inside = ((x > -3.0) & (x < 3.0)).astype(x.dtype)
    return (unbroadcast(apply(HARDSWISH_GRAD, gg, x), g._data.shape) if g._rg else None,
            unbroadcast(gg * g * inside / 3.0, x._data.shape) if x._rg else None)


HARDSWISH_GRAD = register(OpDef(
    "hardswish_grad", _hardswish_grad_fwd,
    kernels={"cpu": fused_grad(_ops.hardswish_grad_f32, _hardswish_grad_fwd)},
    infer=make_binary_infer("hardswish_grad"), cost=elementwise_cost, vjp=_hardswish_grad_vjp,
    doc="Hardswish's backward (0 at and below -3, g at and above 3, else g (x/3 + 1/2))."))
HARDSWISH = register(OpDef(
    "hardswish", _hardswish_fwd, kernels={"cpu": f32_map(_ops.hardswish_f32, _hardswish_fwd)},
    infer=same_infer,
    cost=elementwise_cost, vjp=lambda n, g: (apply(HARDSWISH_GRAD, g, n.inputs[0]),)))


def _softplus_fwd(xp, x, beta, threshold):
    # log(1 + exp(bx)) = max(bx, 0) + log1p(exp(-|bx|)): no overflow, and ~15x faster than
    # logaddexp; x itself above the threshold (a mask that is rarely true: a cheap where)
    bx = x * x.dtype.type(beta) if beta != 1.0 else x
    soft = xp.asarray(xp.abs(bx))      # (a 0-d input gives a scalar: out= needs an array)
    xp.negative(soft, out=soft)
    xp.exp(soft, out=soft)
    xp.log1p(soft, out=soft)
    soft += xp.maximum(bx, x.dtype.type(0))
    if beta != 1.0:
        soft /= x.dtype.type(beta)
    return xp.where(bx > threshold, x, soft)


def _softplus_cpu(x, beta, threshold):
    if beta == 0.0:     # (the kernel divides by beta: NumPy's inf/nan with its warnings)
        return _softplus_fwd(np, x, beta, threshold)
    return _softplus_map(x, beta=beta, threshold=threshold)


def _softplus_grad_fwd(xp, g, x, beta, threshold):
    # g where beta x > threshold, else g sigmoid(beta x)
    bx = x * x.dtype.type(beta) if beta != 1.0 else x
    d = _sigmoid(xp, bx)
    return xp.where(bx > threshold, g, g * d).astype(xp.result_type(g, x), copy=False)


def _softplus_grad_vjp(n, gg):
    # linear in g; in x, g beta s (1 - s) with s = sigmoid(beta x), 0 above the threshold
    from ._util import unbroadcast
    g, x = n.inputs
    beta, threshold = n.attrs["beta"], n.attrs["threshold"]
    dx = None
    if x._rg:
        bx = x * beta
        s = sigmoid(bx)
        dx = unbroadcast(gg * g * (s * (1.0 - s) * beta) * (bx <= threshold).astype(x.dtype),
                         x._data.shape)
    return (unbroadcast(apply(SOFTPLUS_GRAD, gg, x, **n.attrs), g._data.shape) if g._rg
            else None, dx)


# softplus' backward as an op of (g, x): one pass with the vectorised sigmoid on the CPU
# (the composite's product, sigmoid, comparison and where were 1.4x PyTorch's backward)
SOFTPLUS_GRAD = register(OpDef(
    "softplus_grad", _softplus_grad_fwd,
    kernels={"cpu": fused_grad(_ops.softplus_grad_into, _softplus_grad_fwd, FUSED_FLOATS,
                               ("beta", "threshold"))},
    infer=make_binary_infer("softplus_grad"), cost=elementwise_cost, vjp=_softplus_grad_vjp))
_softplus_map = f32_map(_ops.softplus_into, _softplus_fwd, ("beta", "threshold"),
                        dtypes=FUSED_FLOATS)
SOFTPLUS = register(OpDef(
    "softplus", _softplus_fwd, kernels={"cpu": _softplus_cpu}, infer=same_infer,
    cost=elementwise_cost,
    vjp=lambda n, g: (apply(SOFTPLUS_GRAD, g, n.inputs[0], **n.attrs),)))


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``; just ``x`` where ``beta * x > threshold``."""
    if state.autocast is not None:
        return autocast_call(softplus, "softplus", x, beta, threshold)
    return apply(SOFTPLUS, to_float(to_tensor(x)), beta=float(beta), threshold=float(threshold))


def _clip_fwd(xp, x, min, max, strict=False):
    clip = _clip_ufunc if xp is np else xp.clip
    if min is not None and max is not None:
        lo, hi = x.dtype.type(min), x.dtype.type(max)
        if lo > hi:     # max everywhere (NaN stays NaN), as PyTorch's clamp: said explicitly,
            return xp.minimum(xp.maximum(x, lo), hi)    # as some CuPy versions' clip give min
        return clip(x, lo, hi)                  # one pass, not two
    if x.dtype.kind == "f" and (min is None) != (max is None):
        # one-sided: clip against an infinite other side is one vectorised pass, about 3x
        # faster than NumPy's maximum/minimum with a scalar (NaN still propagates)
        inf = x.dtype.type(np.inf)
        return clip(x, -inf if min is None else x.dtype.type(min),
                    inf if max is None else x.dtype.type(max))
    out = x
    if min is not None:
        out = xp.maximum(out, x.dtype.type(min))
    if max is not None:
        out = xp.minimum(out, x.dtype.type(max))
    return out if out is not x else x.copy()


def clip_mask(n) -> Tensor | None:
    """Where a clip node passes derivatives (None: everywhere): the closed interval
    [min, max] (clamp's rule; nowhere when min > max), or with ``strict`` only inside
    (min, max) (the hardtanh family's rule). Its vjp and its forward-mode rule read it."""
    x, lo, hi = n.inputs[0], n.attrs["min"], n.attrs["max"]
    strict = n.attrs.get("strict", False)
    mask = None
    if lo is not None:
        mask = x > lo if strict else x >= lo
    if hi is not None:
        m2 = x < hi if strict else x <= hi
        mask = m2 if mask is None else logical_and(mask, m2)
    return mask


def _clip_vjp(n, g):
    a = n.attrs
    if a.get("strict") and a["min"] is not None and a["max"] is not None:
        # the hardtanh family's backward: one fused pass, where the mask takes four
        return (apply(CLIP_INTERIOR_GRAD, g, n.inputs[0], min=a["min"], max=a["max"]),)
    mask = clip_mask(n)
    return (g if mask is None else where(mask, g, 0.0),)


CLIP = register(OpDef("clip", _clip_fwd, infer=same_infer, cost=elementwise_cost,
                      vjp=_clip_vjp,
                      doc="Limit values to [min, max] (Python numbers); the gradient passes "
                          "where min <= x <= max, or where min < x < max with strict=True."))


def _clip_interior_grad_fwd(xp, g, x, *, min, max):
    inside = (x > x.dtype.type(min)) & (x < x.dtype.type(max))
    return xp.where(inside, g, xp.zeros((), g.dtype))


def _clip_interior_grad_vjp(n, gg):
    # linear in g with a piecewise-constant mask: nothing flows to x
    g, x = n.inputs
    if not g._rg:
        return None, None
    return unbroadcast(apply(CLIP_INTERIOR_GRAD, gg, x, **n.attrs), g._data.shape), None


CLIP_INTERIOR_GRAD = register(OpDef(
    "clip_interior_grad", _clip_interior_grad_fwd,
    kernels={"cpu": fused_grad(_ops.hardtanh_grad_into, _clip_interior_grad_fwd,
                               dtypes=FUSED_FLOATS, attrs=("min", "max"))},
    vjp=_clip_interior_grad_vjp,
    infer=lambda g, x, **a: (np.broadcast_shapes(g[0], x[0]), np.dtype(g[1])),
    cost=elementwise_cost,
    doc="The backward of clip(strict=True) (hardtanh, relu6, hardsigmoid) in one pass: g "
        "where min < x < max, else 0 (NaN included)."))


def clip(x: Tensor, min=None, max=None) -> Tensor:
    """Limit values to [min, max], as PyTorch's ``clamp``/``clip``: each bound is a number,
    a tensor (broadcast against ``x``) or None; with min > max the result is max.

    The gradient passes to ``x`` where min <= x <= max, and to a tensor bound where it is
    the value taken (``x < min``, ``x > max``). With a tensor bound, a NaN in ``x`` or the
    bound gives NaN there, as PyTorch (gradient 0 to all three). Integer and bool inputs
    with a float bound give the default float dtype, as PyTorch.

    >>> tl.clamp(tl.tensor([-2.0, 0.5, 3.0]), min=-1.0, max=1.0)
    tensor([-1.0000,  0.5000,  1.0000])
    >>> tl.tensor([-2, 5]).clamp(min=0)
    tensor([0, 5])
    """
    x = to_tensor(x)
    if min is None and max is None:
        from ..errors import InputError
        raise InputError("clamp: at least one of 'min' or 'max' must not be None (as "
                         "PyTorch's); with neither there is nothing to clamp")
    if _any_complex(x, min, max):
        raise DTypeError("clamp: not supported for complex tensors (as PyTorch's); clamp "
                        "z.real and z.imag, or the magnitude z.abs(), instead")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        return _clip_by_tensors(x, min, max)
    kind = x._data.dtype.kind
    if kind in "iub":   # promote as PyTorch: int/bool with a float bound gives the default
        bounds = [v for v in (min, max) if v is not None]   # float, bool with an int, int64
        if any(isinstance(v, (float, np.floating)) for v in bounds):
            x = x.astype(_dtypes.default_float)
        elif kind == "b" and any(not isinstance(v, (bool, np.bool_)) for v in bounds):
            x = x.astype(_dtypes.int64)
        elif kind in "iu":
            min, max = _int_bound(min, x._data.dtype), _int_bound(max, x._data.dtype)
    return apply(CLIP, x, min=min, max=max)


def _any_complex(*values) -> bool:
    return any(isinstance(v, (complex, np.complexfloating)) or
               (isinstance(v, Tensor) and v._data.dtype.kind == "c") for v in values)


def _int_bound(v, dt):
    """A Python int bound in an integer dtype as PyTorch converts it: exactly in range, and
    for an unsigned dtype a negative one down to -max wraps (uint8 with -3: 253)."""
    if v is None or isinstance(v, (bool, np.bool_)):
        return v
    info = np.iinfo(dt)
    if info.min <= v <= info.max:
        return v
    if dt.kind == "u" and -info.max <= v < 0:
        return int(v) + info.max + 1
    raise OverflowError(f"clamp: the bound {v} cannot be converted to {dt} without overflow "
                        f"(its range is {info.min} to {info.max})")


def _clip_by_tensors(x: Tensor, lo, hi) -> Tensor:
    if state.tracer is None and not (state.grad_enabled and any(
            isinstance(t, Tensor) and t.requires_grad for t in (x, lo, hi))):
        # no gradient to route: maximum/minimum propagate NaN in one pass each
        out = x if lo is None else maximum(x, lo)
        return out if hi is None else minimum(out, hi)
    out = x if lo is None else _clip_side(x, lo, True)
    return out if hi is None else _clip_side(out, hi, False)


def _clip_side(out: Tensor, bound, low: bool) -> Tensor:
    """One side of a clip by a tensor bound, as PyTorch's: NaN in ``out`` or the bound gives
    NaN with no gradient to either; the gradient goes to ``out`` where it is kept (ties
    included: where(), not maximum, which would split it) and to the bound where it is
    taken."""
    if not isinstance(bound, Tensor):    # a number takes a float input's dtype (0.4 in f64)
        from ..creation import tensor as _tensor
        bound = _tensor(bound, dtype=out.dtype if out.dtype.kind == "f" else None,
                        device=out.device)
    keep = out >= bound if low else out <= bound
    taken = out < bound if low else out > bound
    floating = out.dtype.kind == "f" or bound.dtype.kind == "f"
    # for ints keep/taken cover everything; for floats the rest is where a NaN is
    other = where(taken, bound, math.nan) if floating else bound
    return where(keep, out, other)


def clip_interior(x: Tensor, min: float, max: float) -> Tensor:
    """``clip`` to [min, max] whose gradient passes only strictly inside (min, max), as
    PyTorch's hardtanh, relu6 and hardsigmoid (0 at the breakpoints, like relu's at 0)."""
    return apply(CLIP, to_tensor(x), min=min, max=max, strict=True)


clamp = clip


# --- binary arithmetic --------------------------------------------------------
def _binary(name, *, ufunc=None, fwd=None, vjp=None, saves=True, saves_output=False,
            result_dtype=None, doc=""):
    op = register(OpDef(name, fwd, ufunc=ufunc, vjp=vjp,
                        infer=make_binary_infer(name, result_dtype), cost=elementwise_cost,
                        saves=saves, saves_output=saves_output, doc=doc, promote=True))

    # an out-of-range Python int meeting an integer tensor wraps for the ops computing in its
    # dtype, as PyTorch's and the operators (tensorlib._tensor_methods._WRAPS)
    wrap = name in ("add", "sub", "mul", "floordiv", "mod", "eq", "ne", "lt", "le", "gt", "ge")
    # (input, other): PyTorch's parameter names, so other= works at no cost to positional calls
    if name in AUTOCAST_OPS:                   # (pow: on CUDA's float32 list)
        def public(input, other) -> Tensor:
            if state.autocast is not None:
                return autocast_call(public, name, input, other)
            return apply(op, *as_operands(input, other, wrap=wrap))
    elif name in ("mul", "floordiv"):
        def public(input, other) -> Tensor:
            if half_opmath_operand(input, other):       # float16 with a scalar: in float32
                return half_opmath(op, input, other)
            return apply(op, *as_operands(input, other, wrap=wrap))
    else:
        def public(input, other) -> Tensor:
            return apply(op, *as_operands(input, other, wrap=wrap))
    public.__name__ = public.__qualname__ = name
    public.__doc__ = doc or f"Elementwise {name} with NumPy broadcasting."
    if ufunc is not None:
        UFUNC_PUBLIC.setdefault(ufunc, public)
    return op, public


def _shapes(n):
    return n.inputs[0]._data.shape, n.inputs[1]._data.shape


def _add_vjp(n, g):
    sa, sb = _shapes(n)
    return unbroadcast(g, sa), unbroadcast(g, sb)


def _sub_vjp(n, g):
    sa, sb = _shapes(n)
    return unbroadcast(g, sa), unbroadcast(-g, sb)


def _mul_vjp(n, g):
    a, b = n.inputs
    return (unbroadcast(g * b, a._data.shape) if a._rg else None,
            unbroadcast(g * a, b._data.shape) if b._rg else None)


def _like(g, x):
    # div promotes inside its kernel (see _div_fwd): a gradient in the input's own dtype; a
    # complex one for a real input stays complex (complex_grad takes its real part)
    if g._data.dtype == x._data.dtype or (g._data.dtype.kind == "c" != x._data.dtype.kind):
        return g
    return g.astype(x._data.dtype)


def _div_vjp(n, g):
    a, b = n.inputs
    ga = g / b
    return (_like(unbroadcast(ga, a._data.shape), a) if a._rg else None,
            _like(unbroadcast(-ga * a / b, b._data.shape), b) if b._rg else None)


def _div_dtype(da, nda, db, ndb):
    dt = torch_promote(da, nda, db, ndb)
    return dt if dt.kind in "fc" else np.dtype(_dtypes.default_float)


def _div_fwd(xp, a, b):
    # PyTorch's true division: both operands go straight to the float dtype it computes in.
    # The op promotes here rather than in apply (promote=False): apply's category rule would
    # first cast a 0-d tensor(-2) meeting a uint8 tensor to uint8 (254)
    if a.dtype is b.dtype and a.dtype.kind == "f":     # (the common case: nothing to decide)
        return xp.true_divide(a, b)
    if a.dtype.kind == "c" or b.dtype.kind == "c":
        # z / 0 is nan+nanj or inf, as PyTorch, without NumPy's warnings
        dt = _div_dtype(a.dtype, a.ndim, b.dtype, b.ndim)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return xp.true_divide(a.astype(dt, copy=False), b.astype(dt, copy=False))
    dt = _div_dtype(a.dtype, a.ndim, b.dtype, b.ndim)
    if a.dtype != dt:
        a = a.astype(dt)
    if b.dtype != dt:
        b = b.astype(dt)
    return xp.true_divide(a, b)


def _pow_vjp(n, g):
    # a**(b-1) is inf at a == 0 for b < 1 (masked to 0 where b == 0) and log(a) nan for a < 0:
    # the values PyTorch gives, without NumPy's warnings
    with np.errstate(divide="ignore", invalid="ignore"):
        return _pow_vjp_impl(n, g)


def _pow_vjp_complex(n, g):
    # PyTorch's pow_backward_self/_exponent: g * conj(b a**(b-1)), 0 where b == 0; and
    # g * conj(a**b log a), 0 where a == 0 and b is real and >= 0 (apply made both operands
    # one complex dtype)
    from .complex import conj, imag, real
    a, b = n.inputs
    ga = gb = None
    if a._rg:
        zero_b = b == 0
        d = b * power(a, where(zero_b, 1.0, b - 1))
        ga = unbroadcast(where(zero_b, 0.0, g * conj(d)), a._data.shape)
    if b._rg:
        zero = (a == 0) & (imag(b) == 0) & (real(b) >= 0)
        d = power(a, b) * log(where(zero, 1.0, a))
        gb = unbroadcast(where(zero, 0.0, g * conj(d)), b._data.shape)
    return ga, gb


def _pow_vjp_impl(n, g):
    a, b = n.inputs
    if a._data.dtype.kind == "c" or b._data.dtype.kind == "c":
        return _pow_vjp_complex(n, g)
    ga = gb = None
    if a._rg:  # d/da a**b = b a**(b-1), taken as 0 where b == 0 (also at a == 0)
        if not b._rg and b._data.ndim == 0 and b._data != 0:  # constant exponent: no mask
            ga = g * b * power(a, b - 1)
        else:
            # the exponent where b == 0 is 1, not -1: the masked branch then has a finite
            # derivative, so a second derivative at a == 0 is 0 (as PyTorch), not 0 * inf
            zero_b = b == 0
            ga = where(zero_b, 0.0, g * b * power(a, where(zero_b, 1.0, b - 1)))
        ga = unbroadcast(ga, a._data.shape)
    if b._rg:  # d/db a**b = a**b log a, taken as 0 where a == 0 and b >= 0 (as PyTorch:
        # 0 ** b with b < 0 gives inf * -inf = -inf)
        # a ** b again rather than the saved output: the output may be changed in place
        # afterwards (``sq = d ** 2; sq *= 0.5``), which PyTorch allows for a constant exponent
        zero = (a == 0) & (b >= 0)
        gb = unbroadcast(where(zero, 0.0, g * power(a, b) * log(where(zero, 1.0, a))),
                         b._data.shape)
    return ga, gb


def _mod_vjp(n, g):
    # (the divisor's part only when asked for: NumPy's float floor_divide is a libm fmod per
    # element, 27 ms of x % 0.7's 28 ms backward on 1M floats)
    a, b = n.inputs
    return (unbroadcast(g, a._data.shape) if a._rg else None,
            unbroadcast(-g * floor_divide(a, b), b._data.shape) if b._rg else None)


def _max_vjp_bin(loses):
    # PyTorch's rule: ties split the gradient in halves; each operand gets none only where
    # it strictly lost, so where either is NaN (neither loses) both get all of it, not
    # only the one the a > b mask happened to favour
    def vjp(n, g):
        a, b = n.inputs
        share = where(a == b, 0.5, 1.0).astype(g.dtype)
        return (unbroadcast(where(loses(a, b), 0.0, g * share), a._data.shape)
                if a._rg else None,
                unbroadcast(where(loses(b, a), 0.0, g * share), b._data.shape)
                if b._rg else None)
    return vjp


def _floordiv_vjp(n, g):
    a, b = n.inputs
    return zeros_like(a), zeros_like(b)


ADD, _add = _binary("add", ufunc="add", vjp=_add_vjp, saves=False)
SUB, _sub = _binary("sub", ufunc="subtract", vjp=_sub_vjp, saves=False)
ADD.complex = SUB.complex = "holomorphic"


def _scaled(a, b, alpha, op: str):
    # ``alpha * b`` computed in the result's dtype, as PyTorch: promoting first keeps
    # int32 * 2 or float16 * 3 from overflowing before meeting an int64/float64 ``a``
    # (a Python int wraps into an integer tensor's dtype, as the product does in PyTorch);
    # alpha itself is checked against that dtype as PyTorch's (a float alpha for an integer
    # result, or one that does not fit, raises)
    a, b = same_category(*as_operands(a, b, wrap=True))
    dt = np.result_type(a._data.dtype, b._data.dtype)
    if b._data.dtype != dt:
        b = b.astype(dt)
    return a, b * check_alpha(alpha, dt, op, negate=op == "sub")


def add(input, other, *, alpha=None) -> Tensor:
    """Elementwise ``input + alpha * other`` with NumPy broadcasting (``alpha``: PyTorch's
    scale of ``other``, default 1)."""
    if alpha is None or alpha == 1:
        return _add(input, other)
    return _add(*_scaled(input, other, alpha, "add"))


def sub(input, other, *, alpha=None) -> Tensor:
    """Elementwise ``input - alpha * other`` with NumPy broadcasting (``alpha``: PyTorch's
    scale of ``other``, default 1)."""
    if alpha is None or alpha == 1:
        return _sub(input, other)
    return _sub(*_scaled(input, other, alpha, "sub"))
MUL, mul = _binary("mul", ufunc="multiply", vjp=_mul_vjp, saves="others")
MUL.complex = "holomorphic"
DIV, _true_divide = _binary("div", fwd=_div_fwd, vjp=_div_vjp)
DIV.promote = False     # (the kernel promotes: see _div_fwd)
DIV.complex = "holomorphic"


def true_divide(a, b) -> Tensor:
    """Elementwise ``a / b`` with NumPy broadcasting, in floating point: integer and bool
    operands compute in the default float dtype, as PyTorch's (``uint8 / tensor(-2)`` divides
    by -2).

    >>> tl.true_divide(tl.tensor([6, 5], dtype=tl.uint8), tl.tensor(-2))   # [-3., -2.5]
    """
    if half_opmath_operand(a, b):               # float16 / scalar: in float32, as PyTorch
        return half_opmath(DIV, a, b)
    return apply(DIV, *float_operands(a, b))


def _div_infer(a, b, **attrs):
    # true division of integers gives the default float, as the kernel does (the graph
    # recorded int64, and ONNX exported an integer Div that truncates)
    shape = make_binary_infer("div")(a, b)[0]
    return shape, _div_dtype(a[1], len(a[0]), b[1], len(b[0]))


DIV.infer = _div_infer
FLOORDIV, floor_divide = _binary("floordiv", ufunc="floor_divide", vjp=_floordiv_vjp,
                                 saves=False)
MOD, mod = _binary("mod", ufunc="remainder", vjp=_mod_vjp)


def _f32_pair(kernel, a, b, *args, dtypes=_F32):
    """``kernel(a, b, out, *args)`` of _ops (pow_f32, fmod_into) for a C-contiguous ``a`` of
    :data:`MAP_MIN` elements or more and a ``b`` of its dtype (one of ``dtypes``, float32
    alone by default) and shape (C-contiguous) or of one element that broadcasts to it; None
    for other operands (NumPy's part)."""
    if (a.dtype == b.dtype and a.dtype in dtypes and a.size >= MAP_MIN and a.flags.c_contiguous
            and ((b.size == 1 and b.ndim <= a.ndim)
                 or (b.shape == a.shape and b.flags.c_contiguous))):
        out = np.empty_like(a)
        kernel(a.reshape(-1), b.reshape(-1), out.reshape(-1), *args)
        return out
    return None


def _fmod_array(a, b, remainder=False):
    """C's ``fmod`` of float arrays (the sign of ``a``), exact, as PyTorch's bit for bit;
    ``remainder``: PyTorch's remainder (see _mod_cpu). float32 and float64 take
    _ops.fmod_into (vector lanes, ~1-2 ns an element against libm's ~20), others NumPy's libm
    loop."""
    r = _f32_pair(_ops.fmod_into, a, b, remainder, dtypes=FUSED_FLOATS)
    if r is not None:
        return r
    with np.errstate(invalid="ignore", divide="ignore"):     # NaN, as PyTorch, silently
        r = np.fmod(a, b)
    r = r if isinstance(r, np.ndarray) else np.array(r)      # (0-d operands: a scalar)
    if remainder:
        np.add(r, b, out=r, where=(r != 0) & ((r < 0) != (b < 0)))
    return r


def _mod_cpu(a, b, **kw):
    """PyTorch's float remainder, bit for bit: ``r = fmod(a, b)``, then ``r + b`` (rounded in
    the input dtype) where r is nonzero and its sign differs from b's; NumPy's ``remainder``
    differs in the sign of a zero result (PyTorch keeps fmod's, the sign of a)."""
    if kw or a.dtype.kind != "f":
        return np.remainder(a, b, **kw)
    return _fmod_array(a, b, remainder=True)


def _fmod_cpu(a, b, **kw):
    if kw or a.dtype.kind != "f":
        return np.fmod(a, b, **kw)
    return _fmod_array(a, b)


def _fmod_vjp(n, g):
    a, b = n.inputs
    return (unbroadcast(g, a._data.shape) if a._rg else None,
            unbroadcast(-g * trunc(a / b), b._data.shape) if b._rg else None)


MOD.set_kernel("cpu", _mod_cpu)
# C's fmod of floats (torch.fmod; integers keep their exact path in torch_api.fmod)
FMOD, _ = _binary("fmod", fwd=lambda xp, a, b: xp.fmod(a, b), vjp=_fmod_vjp,
                 doc="C's fmod of floats: the remainder with the sign of the dividend.")
FMOD.set_kernel("cpu", _fmod_cpu)


def _integer_zero_check(name):
    # NumPy's integer // and % by zero give 0 (with a warning at most); PyTorch raises
    def check(a, b, **attrs):
        if b.dtype.kind in "iub" and a.dtype.kind in "iub" and bool((b == 0).any()):
            if 0 in np.broadcast_shapes(a.shape, b.shape):
                return      # nothing is divided: an empty result, as PyTorch's
            from ..errors import IntegerDivisionError
            raise IntegerDivisionError(f"{name}: integer division by zero")
    return check


FLOORDIV.check = _integer_zero_check("floordiv")
MOD.check = _integer_zero_check("mod")


def _div_trunc_float(a: Tensor, b: Tensor) -> Tensor:
    """``trunc(a / b)`` of float operands with PyTorch's zero gradient everywhere: the chain
    through the division gave 0 * (1 / b) = NaN wherever the quotient is inf or NaN
    (x / 0, 0 / 0). With a gradient to track, the quotient is taken off the tape and tied
    back through floor_divide (zero gradient) under a where() that never selects it."""
    if not (state.grad_enabled and any(isinstance(t, Tensor) and t._rg for t in (a, b))):
        return trunc(true_divide(a, b))
    from ..creation import zeros
    q = trunc(true_divide(*(t.detach() if isinstance(t, Tensor) else t for t in (a, b))))
    never = zeros((), dtype=_dtypes.bool_, device=q.device)
    return where(never, floor_divide(a, b).astype(q.dtype), q)


def div(input, other, *, rounding_mode: str | None = None) -> Tensor:
    """Elementwise ``a / b`` with NumPy broadcasting (true division: integers give the
    default float dtype).

    ``rounding_mode`` as PyTorch's: ``"trunc"`` rounds the quotient toward zero, ``"floor"``
    toward minus infinity (``a // b``); both keep integer inputs integer and have a zero
    gradient.
    """
    a, b = input, other
    if rounding_mode is None:
        return true_divide(a, b)
    if rounding_mode == "floor":
        return floor_divide(a, b)
    if rounding_mode != "trunc":
        raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', got "
                         f"{rounding_mode!r}")
    if half_opmath_operand(a, b):               # float16 with a scalar: in float32, as PyTorch
        f32 = np.float32
        b = b.astype(f32) if isinstance(b, Tensor) else b
        return _div_trunc_float(a.astype(f32), b).astype(np.float16)
    # a Python int wraps into an integer tensor's dtype, as PyTorch's (uint8 with -3: 253)
    a, b = as_operands(a, b, wrap=True)
    kinds = a._data.dtype.kind + b._data.dtype.kind
    if "c" in kinds:
        return trunc(true_divide(a, b))     # (refused by trunc, with its message)
    if "f" in kinds:
        return _div_trunc_float(a, b)       # as PyTorch: trunc(a / b), not a // b corrected
    # integers, exactly, in the dtype PyTorch computes in (a 0-d tensor(-2) meeting uint8 is
    # 254 there): the floor quotient, one up where it was rounded down below zero
    a, b = same_category(a, b)
    q = floor_divide(a, b)
    inexact = logical_and(mod(a, b) != 0, logical_xor(a < 0, b < 0))
    return where(inexact, q + 1, q)
def _int_pow(xp, a, b):
    """Integer (and bool) powers as PyTorch's: a negative exponent gives 1 ** b = 1,
    (-1) ** b = +-1 and 0 elsewhere (1 / a ** -b truncated, 0 ** -1 included), where NumPy
    raises; bool ** bool is only defined for a 0-d exponent (PyTorch's Python bool)."""
    if a.dtype.kind == "b" and b.dtype.kind == "b":
        if b.ndim:
            raise NotImplementedError("pow: not implemented for bool ** bool tensors; "
                                      "convert one first, e.g. x.long() ** y")
        return a | ~b       # x ** True is x, x ** False is 1
    neg = b < 0
    if not neg.any():
        return xp.power(a, b)
    # (a negative Python int exponent is refused before it gets here, as PyTorch's; a 0-d
    # tensor one computes there)
    dt = xp.result_type(a, b)
    out = xp.power(a, xp.where(neg, b.dtype.type(0), b)).astype(dt, copy=False)
    small = (a == 1).astype(dt)
    if dt.kind == "i" and a.dtype.kind == "i":
        odd = (b % 2).astype(bool)
        small = xp.where((a == -1) & odd, dt.type(-1), xp.where(a == -1, dt.type(1), small))
    return xp.where(neg, small, out)


def _pow_cuda(a, b):
    from ..backends import cupy
    cp = cupy()
    if a.dtype.kind in "biu" and b.dtype.kind in "biu":
        return _int_pow(cp, a, b)
    return cp.power(a, b)


def _pow_cpu(a, b):
    if a.dtype.kind in "biu" and b.dtype.kind in "biu":
        return _int_pow(np, a, b)
    # NumPy's float power takes ~100x longer on negative bases (a float32 cube of 1M
    # normals: 47 ms, against 0.3 ms as two products): small integer exponents multiply
    if (b.ndim == 0 and a.dtype.kind == "f" and np.result_type(a, b) == a.dtype
            and b.dtype.kind in "fiu"):
        e = b.item()
        if e == 2:
            return a * a
        if e == 3:
            return a * a * a
        if e == 4:
            sq = a * a
            return sq * sq
    if _POW_MAP:
        r = _f32_pair(_ops.pow_f32, a, b)
        if r is not None:
            return r
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # 0 ** -1 = inf, quietly
        return np.power(a, b)


# float32 pow in float64 lanes where NumPy's powf is a libm call per element (no AVX-512):
# within 0.5 ulp, 1M floats 6.3 ms on one AVX2 Zen 3 core against NumPy's 10.9
_POW_MAP = not _numpy_has_svml()


POW, _power = _binary("pow", ufunc="power", vjp=_pow_vjp)
POW.set_kernel("cpu", _pow_cpu)
POW.set_kernel("cuda", _pow_cuda)
POW.complex = "rule"


def power(input, exponent) -> Tensor:
    """Elementwise ``a ** b`` with NumPy broadcasting and PyTorch's integer rules: a tensor
    (with dims) of negative integer exponents gives 1 ** -n = 1, (-1) ** -n = +-1, else 0; a
    negative Python int exponent of an integer tensor raises (so does a 0-d tensor one, which
    PyTorch computes); a Python int base wraps into an integer tensor's dtype
    (``(-3) ** uint8`` is 253 ** uint8); ``bool ** True`` stays bool.

    >>> tl.pow(tl.tensor([2, 1, -1]), tl.tensor([-1, -2, -3]))      # tensor([0, 1, -1])
    """
    a, b = input, exponent
    if state.autocast is not None:
        return autocast_call(power, "pow", a, b)
    if (isinstance(a, Tensor) and a._data.dtype.kind in "biu" and not isinstance(b, bool)
            and isinstance(b, (int, np.integer)) and b < 0):
        # before the exponent meets the dtype (uint8 ** -1 would not fit)
        raise RuntimeError(f"pow: integers to negative integer powers are not allowed "
                           f"({a._data.dtype} ** {b}); compute in floating point instead: "
                           f"x.float() ** {b}")
    return _power(*as_operands(a, b, wrap=not isinstance(a, Tensor)))


UFUNC_PUBLIC["power"] = power
MAXIMUM, maximum = _binary("maximum", ufunc="maximum", vjp=_max_vjp_bin(lambda a, b: a < b))
MINIMUM, minimum = _binary("minimum", ufunc="minimum", vjp=_max_vjp_bin(lambda a, b: a > b))
subtract, multiply, divide, remainder, pow = sub, mul, div, mod, power

# comparisons and logic: no gradient
EQ, eq = _binary("eq", ufunc="equal", result_dtype=_dtypes.bool_)
NE, ne = _binary("ne", ufunc="not_equal", result_dtype=_dtypes.bool_)
LT, lt = _binary("lt", ufunc="less", result_dtype=_dtypes.bool_)
LE, le = _binary("le", ufunc="less_equal", result_dtype=_dtypes.bool_)
GT, gt = _binary("gt", ufunc="greater", result_dtype=_dtypes.bool_)
GE, ge = _binary("ge", ufunc="greater_equal", result_dtype=_dtypes.bool_)
LOGICAL_AND, logical_and = _binary("logical_and", ufunc="logical_and",
                                   result_dtype=_dtypes.bool_)
LOGICAL_OR, logical_or = _binary("logical_or", ufunc="logical_or", result_dtype=_dtypes.bool_)
LOGICAL_XOR, logical_xor = _binary("logical_xor", ufunc="logical_xor",
                                   result_dtype=_dtypes.bool_)
not_equal, less, less_equal, greater, greater_equal = ne, lt, le, gt, ge


def _use_outer_kernels() -> None:
    # a[:, None] op b[None, :] (after collapsing dims) in float32/float64: _ops' outer kernel,
    # NumPy's values bit for bit where NumPy's broadcast loop is 4-5x slower; every other
    # shape and dtype goes on to the op's plain kernel. apply takes ``op.outer`` only for
    # inputs of different shapes, so same-shape calls (most, and the tiny ones whose
    # per-call cost matters) never pay for the pattern check
    import functools
    for op, code in ((ADD, 0), (SUB, 1), (MUL, 3), (DIV, 4), (MAXIMUM, 6), (MINIMUM, 8),
                     (EQ, 10), (NE, 11), (LT, 12), (LE, 13), (GT, 14), (GE, 15)):
        op.outer = functools.partial(_ops.binary_kernel, op.cpu, code)


_use_outer_kernels()
EQ.complex = NE.complex = "forward"
for _op in (LOGICAL_AND, LOGICAL_OR, LOGICAL_XOR):
    _op.complex = "forward"
for _op in (LT, LE, GT, GE):    # ordering complex numbers: refused with PyTorch's reason
    _op.complex = "forward"
    _op.check = _no_complex(_op.name, "complex numbers have no order (PyTorch refuses them "
                                      "too); compare z.real or z.abs() instead")


def equal(a, b) -> bool:
    """Whether ``a`` and ``b`` have the same shape and the same elements: a Python bool, as
    ``torch.equal`` (the elementwise comparison is :func:`eq`).

    >>> tl.equal(tl.ones(2), tl.ones(2))
    True
    """
    a, b = to_tensor(a), to_tensor(b)
    return tuple(a.shape) == tuple(b.shape) and bool(eq(a, b).all())


# bitwise ops: integers and booleans (on booleans they are the logical ones); no gradient
def _integer_check(name):
    def check(*arrays, **attrs):
        for a in arrays:
            if a.dtype.kind not in "biu":
                raise TypeError(f"{name}: needs integer or boolean tensors, got {a.dtype}")
    return check


def _bitwise(name, ufunc, n_in, doc):
    # promote: PyTorch's category rule, so a 0-d tensor(1) keeps an int8 tensor int8
    op = register(OpDef(name, ufunc=ufunc, check=_integer_check(name), cost=elementwise_cost,
                        infer=same_infer if n_in == 1 else make_binary_infer(name, None),
                        saves=False, doc=doc, promote=n_in == 2))
    if n_in == 1:
        def public(x) -> Tensor:
            return apply(op, to_tensor(x))
    else:
        def public(input, other) -> Tensor:
            return apply(op, *as_operands(input, other, wrap=True))
    public.__name__ = public.__qualname__ = name
    public.__doc__ = doc
    return op, public


BITWISE_AND, bitwise_and = _bitwise("bitwise_and", "bitwise_and", 2,
                                    "Elementwise bitwise AND of integer or boolean tensors "
                                    "(``a & b``).")
BITWISE_OR, bitwise_or = _bitwise("bitwise_or", "bitwise_or", 2,
                                  "Elementwise bitwise OR (``a | b``).")
BITWISE_XOR, bitwise_xor = _bitwise("bitwise_xor", "bitwise_xor", 2,
                                    "Elementwise bitwise XOR (``a ^ b``).")
BITWISE_NOT, bitwise_not = _bitwise("bitwise_not", "invert", 1,
                                    "Elementwise bitwise NOT (``~x``): ``-x - 1`` on signed "
                                    "integers, logical not on booleans.")
LEFT_SHIFT, left_shift = _bitwise("left_shift", "left_shift", 2,
                                  "Elementwise ``a << b`` of integer tensors.")
RIGHT_SHIFT, right_shift = _bitwise("right_shift", "right_shift", 2,
                                    "Elementwise ``a >> b`` of integer tensors "
                                    "(arithmetic on signed integers).")


# --- binary functions of floats ------------------------------------------------
def _float_binary(name, ufunc, vjp, saves_output=False, doc=""):
    op, _ = _binary(name, ufunc=ufunc, vjp=vjp, saves_output=saves_output, doc=doc)

    def public(input, other) -> Tensor:
        if _any_complex(input, other):      # (atan2, hypot, logaddexp: real functions)
            raise DTypeError(f"{name}: complex tensors are not supported (as PyTorch's)")
        # int with float16: float16; int with int: the default float, each int straight to
        # it (a 0-d tensor(-3) meeting uint8 stays -3), as PyTorch
        return apply(op, *float_operands(input, other))
    public.__name__ = public.__qualname__ = name
    public.__doc__ = doc
    return op, public


def _atan2_vjp(n, g):
    # (x, -y) / (x^2 + y^2); 0 where x^2 + y^2 == 0 (the origin, or both underflowing), as
    # PyTorch, with the denominator replaced there too so that grad of grad stays finite
    y, x = n.inputs
    r2 = square(x) + square(y)
    at0 = r2 == 0
    r2 = where(at0, 1.0, r2)
    return (unbroadcast(where(at0, 0.0, g * x / r2), y._data.shape) if y._rg else None,
            unbroadcast(where(at0, 0.0, -g * y / r2), x._data.shape) if x._rg else None)


def _logaddexp_vjp(n, g):
    # PyTorch's 1 / (1 + exp(b - a)) = sigmoid(a - b): 1 and 0 at (inf, finite), where
    # exp(a - out) is exp(inf - inf) = NaN; NaN at (inf, inf) and (-inf, -inf), as PyTorch
    a, b = n.inputs
    with np.errstate(invalid="ignore"):
        d = a - b
    return (unbroadcast(g * sigmoid(d), a._data.shape) if a._rg else None,
            unbroadcast(g * sigmoid(-d), b._data.shape) if b._rg else None)


def _hypot_vjp(n, g):
    a, b = n.inputs
    return (unbroadcast(g * a / n.out, a._data.shape) if a._rg else None,
            unbroadcast(g * b / n.out, b._data.shape) if b._rg else None)


def _ufunc_map2(kernel, ufunc, kernel64=None):
    """A binary op's CPU kernel: _ops' one-pass float32 map ``kernel(a, b, out)`` and float64
    map ``kernel64`` (either may be None) for arrays of one shape and dtype, both C-contiguous
    (the common case), of :data:`MAP_MIN` elements or more, else the NumPy ``ufunc``
    (broadcasts, scalars, other dtypes, small arrays); ``.ufunc_out(a, b, out=None)`` as
    _ufunc_map's."""
    kernels = {dt: k for dt, k in zip(FUSED_FLOATS, (kernel, kernel64)) if k is not None}

    def pick(a, b):
        if (type(a) is np.ndarray and type(b) is np.ndarray and a.size >= MAP_MIN
                and a.dtype == b.dtype and a.shape == b.shape
                and a.flags.c_contiguous and b.flags.c_contiguous):
            return kernels.get(a.dtype)
        return None

    def run(a, b):
        # (small: at once)
        k = pick(a, b) if type(a) is np.ndarray and a.size >= MAP_MIN else None
        if k is None:
            return ufunc(a, b)
        out = np.empty_like(a)
        k(a.reshape(-1), b.reshape(-1), out.reshape(-1))
        return out

    def ufunc_out(a, b, out=None):
        if out is None:
            return run(a, b)
        k = pick(a, b)
        if (k is not None and type(out) is np.ndarray and out.dtype == a.dtype
                and out.shape == a.shape and out.flags.c_contiguous):
            k(a.reshape(-1), b.reshape(-1), out.reshape(-1))
            return out
        return ufunc(a, b, out=out)
    run.ufunc_out = ufunc_out
    return run


ATAN2, atan2 = _float_binary("atan2", "arctan2", _atan2_vjp,
                             doc="The angle of the point (x, y): ``atan2(y, x)``, in "
                                 "[-pi, pi].")
LOGADDEXP, logaddexp = _float_binary("logaddexp", "logaddexp", _logaddexp_vjp,
                                     doc="log(exp(a) + exp(b)) without overflow.")
HYPOT, hypot = _float_binary("hypot", "hypot", _hypot_vjp, saves_output=True,
                             doc="sqrt(a**2 + b**2) without overflow.")
arctan2 = atan2
if not _numpy_has_svml():     # (see the unary maps above; float32 atan2 3.1 ulp, hypot 0.5;
    for _op in (ATAN2, HYPOT):  # float64 1.6 and 1.2, 4 and 2 ns against NumPy's 33 and 21)
        _op.set_kernel("cpu", _ufunc_map2(functools.partial(_ops.math2_f32, _op.name),
                                          getattr(np, _op.ufunc),
                                          functools.partial(_ops.math2_f64, _op.name)))
# float64 logaddexp on every CPU (NumPy's is a libm exp and log1p an element, 6x PyTorch's)
LOGADDEXP.set_kernel("cpu", _ufunc_map2(None, np.logaddexp,
                                        functools.partial(_ops.math2_f64, "logaddexp")))


# --- where --------------------------------------------------------------------
def _where_infer(c, a, b):
    from ._util import broadcast_shapes
    if np.dtype(c[1]) != np.bool_:
        raise TypeError(f"where: condition must be bool, got {c[1]}")
    return broadcast_shapes("where", c[0], a[0], b[0]), np.result_type(a[1], b[1])


def _where_vjp(n, g):
    c, a, b = n.inputs
    return (None, unbroadcast(where(c, g, 0.0), a._data.shape),
            unbroadcast(where(c, 0.0, g), b._data.shape))


_WORDS = {4: np.uint32, 8: np.uint64}
_WHERE_MIN = 1 << 12      # below this NumPy's own where costs less than the setup


def _flat_branch(x, shape):
    """A where branch as a flat array of its elements or of its one value (0-d, or a value
    broadcast to ``shape``: all strides 0, as a sum's gradient), None where neither fits."""
    if x.shape == shape and x.flags.c_contiguous:
        return x.reshape(-1)
    if x.ndim == 0 or (x.shape == shape and x.size and not any(x.strides)):
        return x[(0,) * x.ndim].reshape(1)
    return None     # (a branch with more dims than the condition: NumPy broadcasts it)


def _where_cpu(c, a, b):
    # a select over bit patterns (_ops.where_bits) where the shapes need no broadcasting but
    # single values: NumPy's where branches per element (~15x slower on a random condition)
    dt = a.dtype
    if (c.size >= _WHERE_MIN and dt == b.dtype and dt.kind in "fiu" and dt.itemsize in _WORDS
            and c.dtype == np.bool_ and c.flags.c_contiguous):
        fa, fb = _flat_branch(a, c.shape), _flat_branch(b, c.shape)
        if fa is not None and fb is not None:
            w = _WORDS[dt.itemsize]
            out = np.empty(c.shape, dt)
            _ops.where_bits(c.reshape(-1).view(np.uint8), fa.view(w), fb.view(w),
                            out.reshape(-1).view(w))
            return out
    return np.where(c, a, b)


# the backward reads the condition, not the branches' values: changing a branch in place
# later is fine (a view's write-back is a where over its base)
WHERE = register(OpDef("where", lambda xp, c, a, b: xp.where(c, a, b), infer=_where_infer,
                       cost=elementwise_cost, vjp=_where_vjp, saves=(0,),
                       complex="holomorphic", kernels={"cpu": _where_cpu}))


def where(condition, input, other) -> Tensor:
    """``input`` where ``condition`` else ``other`` (broadcast); Python scalars are weak."""
    x, y = input, other
    condition = to_tensor(condition)
    if condition._data.dtype != np.bool_:
        raise TypeError(f"where: condition must be a bool tensor, got {condition.dtype}")
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        from ..creation import tensor
        x = tensor(x, device=condition.device)   # the condition's device, not the default
    # a Python int stored in a uint8 branch wraps as PyTorch's (where(c, u8, -1): 255)
    x, y = as_operands(x, y, fill="where")
    if x._data.dtype is not y._data.dtype:      # an integer branch takes the float's dtype
        from ._util import same_category
        x, y = same_category(x, y)
    return apply(WHERE, condition, x, y)
