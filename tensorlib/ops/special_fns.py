"""Registry ops for special functions NumPy lacks: ``erfc``, ``erfinv``, ``lgamma``,
``digamma``, ``polygamma`` (n >= 1), ``i0``, ``i1``. The public names are in
:mod:`tensorlib.special`.

Forward kernels on the CPU: _ops' compiled maps for erfc, lgamma and digamma (float16 in
float32), and for erfinv where SciPy is not installed; SciPy's ``scipy.special`` for the
others when it is (tensorlib does not depend on it), else the NumPy fallbacks below (series
and asymptotic expansions). ``cupyx.scipy.special`` on GPUs. The vjps are written in these
ops, so every order of gradient works.
"""
from __future__ import annotations

import math

import numpy as np

from .. import _ops
from .._apply import apply
from .._tensor import Tensor
from . import elementwise as E
from .registry import OpDef, register
from ._util import (as_operands, elementwise_cost, float_infer, make_binary_infer,
                    promote_types, same_category, to_float, to_tensor, unbroadcast)

_UNSET = object()
_sc = _UNSET      # scipy.special, imported on first use: it costs ~20 MiB and 300 modules,
                  # which `import tensorlib` should not pay for ops most programs never call


def _scipy():
    """scipy.special when installed (optional: faster and exact), else None."""
    global _sc
    if _sc is _UNSET:
        try:
            import scipy.special as sc
        except ImportError:        # pragma: no cover - depends on the environment
            sc = None
        _sc = sc
    return _sc

_SQRT_PI = math.sqrt(math.pi)


def _out(v, x):
    return np.asarray(v, dtype=np.float64).astype(x.dtype, copy=False)


def _map(fn, x):
    """A scalar Python function over an array, in float64 (the slow, exact fallback)."""
    flat = x.astype(np.float64).ravel()
    res = np.fromiter((fn(float(v)) for v in flat), np.float64, flat.size)
    return _out(res.reshape(x.shape), x)


# --- NumPy fallbacks (float64 inside) ---------------------------------------------------------
def _lgamma_scalar(v: float) -> float:
    try:
        return math.lgamma(v)
    except ValueError:             # poles (0, -1, -2, ...): +inf, as PyTorch
        return math.inf


# Bernoulli numbers B2, B4, ..., B20
_B2K = [1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510, 43867 / 798,
        -174611 / 330]


def _polygamma_np(n: int, x):
    """(-1)^(n+1) n! zeta(n+1, x) for n >= 1: shift x up to n + 20 by the recurrence, then
    the Euler-Maclaurin tail."""
    x = np.asarray(x, np.float64)
    s = n + 1
    target = n + 20.0
    with np.errstate(all="ignore"):
        finite = x[np.isfinite(x)]      # (-inf in the input: ceil(inf) overflowed)
        lo = float(finite.min()) if finite.size else target
        steps = int(max(0, math.ceil(target - min(lo, target))))
        acc = np.zeros_like(x)
        xs = x.copy()
        for _ in range(steps):
            small = xs < target
            acc = np.where(small, acc + np.where(small, xs, 1.0) ** -s, acc)
            xs = np.where(small, xs + 1.0, xs)
        tail = xs ** (1 - s) / (s - 1) + 0.5 * xs ** -s
        rising = float(s)              # (s)_(2k-1): s (s+1) ... (s+2k-2)
        fact = 2.0                     # (2k)!
        for k in range(1, len(_B2K) + 1):
            if k > 1:
                rising *= (s + 2 * k - 3) * (s + 2 * k - 2)
                fact *= (2 * k - 1) * (2 * k)
            tail = tail + _B2K[k - 1] / fact * rising * xs ** (-s - 2 * k + 1)
        z = acc + tail
        z = np.where(np.isposinf(x), 0.0, z)
        z = np.where((x <= 0) & (x == np.floor(x)), np.inf, z)
        z = np.where(np.isneginf(x), np.nan, z)
        return (-1.0) ** (n + 1) * math.factorial(n) * z


def _i1_np(x):
    x = np.asarray(x, np.float64)
    a = np.abs(x)
    with np.errstate(all="ignore"):
        h = a / 2
        term = h.copy()
        total = term.copy()
        for k in range(1, 80):                             # (x/2)^(2k+1) / (k! (k+1)!)
            term = term * h * h / (k * (k + 1))
            total = total + term
        big = np.maximum(a, 30.0)
        s = np.ones_like(a)
        t = np.ones_like(a)
        for k in range(1, 30):                             # Hankel's expansion, nu = 1
            t = t * -(4.0 - (2 * k - 1) ** 2) / (k * 8.0 * big)
            s = s + t
        asym = np.exp(big) / np.sqrt(2 * np.pi * big) * s
        out = np.where(a < 30, total, asym)
        return np.where(np.isnan(x), np.nan, np.copysign(out, x))


# --- kernels per backend -----------------------------------------------------------------------
def _cpu(name, fallback):
    def k(x):
        sc = _scipy()
        if sc is not None:
            return _out(_fix(name, getattr(sc, name)(x), x, np), x)
        return fallback(x)
    return k


def _cuda(name):
    def k(x):
        from cupyx.scipy import special as cs
        import cupy
        return _fix(name, getattr(cs, name)(x), x, cupy).astype(x.dtype, copy=False)
    return k


def _fix(name, out, x, xp):
    if name == "gammaln":          # PyTorch: lgamma(-inf) = +inf (SciPy: -inf)
        return xp.where(xp.isneginf(x), xp.inf, out)
    if name == "erfinv":           # an odd function: erfinv(-0.0) = -0.0, as PyTorch (SciPy: 0)
        return xp.copysign(out, x.astype(out.dtype, copy=False))
    return out


def _zeta_minus_one(k: int) -> float:
    """zeta(k) - 1 for k >= 2 in double precision: nine terms, then Euler-Maclaurin at 10."""
    N = 10.0
    terms = [n ** -float(k) for n in range(2, 10)]
    terms += [N ** (1 - k) / (k - 1), 0.5 * N ** -k]
    rising, fact = float(k), 2.0
    for j in range(1, len(_B2K) + 1):
        if j > 1:
            rising *= (k + 2 * j - 3) * (k + 2 * j - 2)
            fact *= (2 * j - 1) * (2 * j)
        terms.append(_B2K[j - 1] / fact * rising * N ** (-k - 2 * j + 1))
    return math.fsum(terms)


_EULER = 0.57721566490153286061
# (-1)^k (zeta(k) - 1) / k, k = 2..31: the Taylor series of lgamma(2 + z) - z (1 - gamma)
_LG_COEF = [(-1) ** k * _zeta_minus_one(k) / k for k in range(2, 32)]


def _native(kernel: str, wide: bool = False):
    """The CPU kernel of _ops' vector map ``kernel(x, out)`` (or ``math_f64``'s map of that
    name when ``wide``): float64 in float64, other floats in float32 (float16 rounded back,
    as PyTorch computes it), or all in float64 when ``wide``."""
    def run(x):
        dt = np.float64 if wide or x.dtype == np.float64 else np.float32
        a = np.ascontiguousarray(x, dtype=dt)
        out = np.empty(a.shape, a.dtype)     # (ascontiguousarray makes a 0-d array 1-d)
        if wide:
            _ops.math_f64(kernel, a.reshape(-1), out.reshape(-1))
        else:
            getattr(_ops, kernel)(a.reshape(-1), out.reshape(-1))
        with np.errstate(over="ignore"):     # (beyond a narrower dtype's range: inf, silently)
            return out.reshape(x.shape).astype(x.dtype, copy=False)
    return run


# digamma: PyTorch's CPU formula compiled (_gamma.h), ~5x SciPy's psi; lgamma: 2-6 ns an
# element (_gamma.h, _lgamma_tmpl.h); erfc: float32 in float64 lanes (~5 ns an element;
# SciPy's took 23), float64 in vector lanes too (~8 ns, libm's 23); erfcx in float64 lanes
# for every float dtype (~8 ns; SciPy's Faddeeva ~40, and without SciPy a Python loop)
_digamma_cpu, _lgamma_cpu, _erfc_cpu = map(_native, ("digamma_into", "lgamma_into",
                                                     "erfc_into"))
_erfcx_cpu = _native("erfcx", wide=True)


ERFC = register(OpDef(
    "erfc", kernels={"cpu": _erfc_cpu, "cuda": _cuda("erfc")},
    vjp=lambda n, g: (g * (-2.0 / _SQRT_PI) * E.exp(-E.square(n.inputs[0])),),
    infer=float_infer, cost=elementwise_cost, doc="complementary error function 1 - erf(x)"))
ERFINV = register(OpDef(
    "erfinv", kernels={"cpu": _cpu("erfinv", _native("erfinv_into")),
                       "cuda": _cuda("erfinv")},
    vjp=lambda n, g: (g * (_SQRT_PI / 2) * E.exp(E.square(n.out)),), saves=False,
    saves_output=True, infer=float_infer, cost=elementwise_cost,
    doc="inverse error function"))
LGAMMA = register(OpDef(
    "lgamma", kernels={"cpu": _lgamma_cpu,
                       "cuda": _cuda("gammaln")},
    vjp=lambda n, g: (g * digamma(n.inputs[0]),), infer=float_infer, cost=elementwise_cost,
    doc="log |Gamma(x)|"))
DIGAMMA = register(OpDef(
    "digamma", kernels={"cpu": _digamma_cpu,
                        "cuda": _cuda("digamma")},
    vjp=lambda n, g: (g * polygamma(1, n.inputs[0]),), infer=float_infer,
    cost=elementwise_cost, doc="digamma: d/dx lgamma(x)"))


def _polygamma_cpu(x, *, n):
    sc = _scipy()
    if sc is not None:
        return _out(sc.polygamma(n, x), x)
    return _out(_polygamma_np(n, x), x)


def _polygamma_cuda(x, *, n):
    import cupy
    from cupyx.scipy import special as cs
    # n as a device array: CuPy's polygamma tests ``n == 0`` with cupy.where, which a
    # Python int's bool does not pass
    return cs.polygamma(cupy.asarray(n, dtype=x.dtype), x).astype(x.dtype, copy=False)


POLYGAMMA = register(OpDef(
    "polygamma", kernels={"cpu": _polygamma_cpu, "cuda": _polygamma_cuda},
    vjp=lambda nd, g: (g * polygamma(nd.attrs["n"] + 1, nd.inputs[0]),), infer=float_infer,
    cost=elementwise_cost, doc="n-th derivative of digamma (n >= 1)"))
I0 = register(OpDef(
    "i0", kernels={"cpu": _cpu("i0", lambda x: _out(np.i0(x.astype(np.float64)), x)),
                   "cuda": _cuda("i0")},
    vjp=lambda n, g: (g * i1(n.inputs[0]),), infer=float_infer, cost=elementwise_cost,
    doc="modified Bessel function of the first kind, order 0"))


def _i1_vjp(n, g):
    # I1'(x) = I0(x) - I1(x) / x, by its series below |x| = 1 (the difference cancels there:
    # the second derivative was 33% off at 1e-8); the rule modified_bessel_i1 uses
    from .special_more import _I1D, _order1_vjp     # (special_more imports this module)
    return _order1_vjp(n, g, _I1D, i0)


I1 = register(OpDef(
    "i1", kernels={"cpu": _cpu("i1", lambda x: _out(_i1_np(x), x)), "cuda": _cuda("i1")},
    vjp=_i1_vjp, saves_output=True, infer=float_infer, cost=elementwise_cost,
    doc="modified Bessel function of the first kind, order 1"))


def _unary(op: OpDef, x) -> Tensor:
    return apply(op, to_float(to_tensor(x)))


def erfc(x) -> Tensor:
    """``1 - erf(x)``, accurate where erf is near 1 (``tl.special.erfc(tl.tensor(6.0))``)."""
    return _unary(ERFC, x)


def erfinv(x) -> Tensor:
    """The inverse of ``erf`` on (-1, 1); +-inf at +-1, NaN outside."""
    return _unary(ERFINV, x)


def lgamma(x) -> Tensor:
    """``log|Gamma(x)|`` (+inf at the poles 0, -1, -2, ...), as ``torch.lgamma``."""
    return _unary(LGAMMA, x)


def digamma(x) -> Tensor:
    """``d/dx lgamma(x)`` (-inf at 0, NaN at negative integers), as ``torch.digamma``."""
    return _unary(DIGAMMA, x)


def polygamma(n: int, input) -> Tensor:
    """The ``n``-th derivative of digamma, as ``torch.polygamma(n, input)``; n = 0 is
    digamma."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"polygamma: n must be a non-negative integer, got {n!r}")
    if n == 0:
        return digamma(input)
    return apply(POLYGAMMA, to_float(to_tensor(input)), n=int(n))


def i0(x) -> Tensor:
    """Modified Bessel function of the first kind of order 0, as ``torch.special.i0``."""
    return _unary(I0, x)


def i1(x) -> Tensor:
    """Modified Bessel function of the first kind of order 1, as ``torch.special.i1``."""
    return _unary(I1, x)


# --- scaled functions: erfcx, i0e, i1e -------------------------------------------------------
# i0e and i1e: NumPy fallbacks, float64 inside. The scaled forms exist because the plain ones
# overflow: each switches to its asymptotic series where exp(|x|) would leave float64.
def _bessel_e_np(x, order: int):
    """exp(-|x|) I_order(x) for order 0 or 1: the series (through np.i0 / _i1_np) below 30,
    Hankel's expansion of the scaled function above, where I overflows from ~700."""
    x = np.asarray(x, np.float64)
    a = np.abs(x)
    with np.errstate(all="ignore"):
        near = np.where(a < 30, x, 0.0)
        series = (np.i0(near) if order == 0 else _i1_np(near)) * np.exp(-np.abs(near))
        big = np.maximum(a, 30.0)
        mu = 4.0 * order * order
        s = np.ones_like(big)
        t = np.ones_like(big)
        for k in range(1, 30):
            t = t * -(mu - (2 * k - 1) ** 2) / (k * 8.0 * big)
            s = s + t
        asym = s / np.sqrt(2 * np.pi * big)
        if order == 1:
            asym = np.copysign(asym, x)
        out = np.where(a < 30, series, asym)
        return np.where(np.isnan(x), np.nan, out)


def _erfcx_vjp(n, g):
    x = n.inputs[0]
    return (g * (2.0 * x * n.out - 2.0 / _SQRT_PI),)


def _i0e_vjp(n, g):
    x = n.inputs[0]
    return (g * (i1e(x) - E.sign(x) * n.out),)


def _i1e_vjp(n, g):
    x = n.inputs[0]
    nz = x != 0
    xs = E.where(nz, x, 1.0)
    # d/dx exp(-|x|) I1(x) = i0e(x) - i1e(x) (sign(x) + 1/x), 1/2 at 0
    return (g * E.where(nz, i0e(x) - n.out * (E.sign(x) + 1.0 / xs), 0.5),)


ERFCX = register(OpDef(
    "erfcx", kernels={"cpu": _erfcx_cpu,
                      "cuda": _cuda("erfcx")},
    vjp=_erfcx_vjp, saves_output=True, infer=float_infer, cost=elementwise_cost,
    doc="scaled complementary error function exp(x^2) erfc(x)"))
I0E = register(OpDef(
    "i0e", kernels={"cpu": _cpu("i0e", lambda x: _out(_bessel_e_np(x, 0), x)),
                    "cuda": _cuda("i0e")},
    vjp=_i0e_vjp, saves_output=True, infer=float_infer, cost=elementwise_cost,
    doc="exponentially scaled modified Bessel function of order 0, exp(-|x|) I0(x)"))
I1E = register(OpDef(
    "i1e", kernels={"cpu": _cpu("i1e", lambda x: _out(_bessel_e_np(x, 1), x)),
                    "cuda": _cuda("i1e")},
    vjp=_i1e_vjp, saves_output=True, infer=float_infer, cost=elementwise_cost,
    doc="exponentially scaled modified Bessel function of order 1, exp(-|x|) I1(x)"))


def erfcx(x) -> Tensor:
    """``exp(x^2) erfc(x)``, finite where the product overflows (``torch.special.erfcx``).

    >>> tl.special.erfcx(tl.tensor([0.0, 30.0]))      # [1., 0.0188]
    """
    return _unary(ERFCX, x)


def i0e(x) -> Tensor:
    """``exp(-|x|) I0(x)`` (``torch.special.i0e``), finite for every x."""
    return _unary(I0E, x)


def i1e(x) -> Tensor:
    """``exp(-|x|) I1(x)`` (``torch.special.i1e``), finite for every x."""
    return _unary(I1E, x)


# --- Hurwitz zeta --------------------------------------------------------------------------
def _zeta_np(s, q):
    """Hurwitz zeta sum_k (q + k)^-s, with Cephes' (and PyTorch's) special values: NaN for
    s < 1, inf at s = 1 and at q a non-positive integer, NaN for q < 0 with s not an integer.
    Terms up to q + k >= 20 + s summed, then the Euler-Maclaurin tail."""
    s, q = np.broadcast_arrays(np.asarray(s, np.float64), np.asarray(q, np.float64))
    with np.errstate(all="ignore"):
        target = 20.0 + np.where(np.isfinite(s), np.clip(s, 0, 60), 0.0)
        qf = np.where(np.isfinite(q), q, 0.0)
        steps = int(max(0.0, float(np.max(np.ceil(target - qf), initial=0.0))))
        acc = np.zeros(s.shape)
        qs = qf.copy()
        for _ in range(steps):
            small = qs < target
            acc = np.where(small, acc + np.where(small, qs, 1.0) ** -s, acc)
            qs = np.where(small, qs + 1.0, qs)
        tail = qs ** (1.0 - s) / (s - 1.0) + 0.5 * qs ** -s
        rising, fact = s.copy(), 2.0          # s (s+1) ... (s+2k-2) and (2k)!
        for k in range(1, len(_B2K) + 1):
            if k > 1:
                rising = rising * (s + 2 * k - 3) * (s + 2 * k - 2)
                fact *= (2 * k - 1) * (2 * k)
            tail = tail + _B2K[k - 1] / fact * rising * qs ** (-s - 2 * k + 1)
        z = acc + tail
        z = np.where(np.isposinf(q), 0.0, z)
        z = np.where((q < 0) & (s != np.floor(s)), np.nan, z)
        z = np.where((q <= 0) & (q == np.floor(q)), np.inf, z)
        z = np.where(s == 1, np.inf, z)
        return np.where((s < 1) | np.isnan(s) | np.isnan(q), np.nan, z)


def _zeta_cpu(s, q):
    sc = _scipy()
    out = sc.zeta(s, q) if sc is not None else _zeta_np(s, q)
    return np.asarray(out, np.float64).astype(np.result_type(s, q), copy=False)


def _zeta_cuda(s, q):
    from cupyx.scipy import special as cs
    return cs.zeta(s, q).astype(s.dtype, copy=False)


def _zeta_vjp(n, g):
    s, q = n.inputs
    if s._rg:
        raise NotImplementedError(
            "zeta: the derivative with respect to x (the first argument) is not implemented, "
            "as in PyTorch; detach x, or differentiate in q only")
    return None, unbroadcast(g * -s * zeta(s + 1.0, q), tuple(q.shape))


ZETA = register(OpDef(
    "zeta", kernels={"cpu": _zeta_cpu, "cuda": _zeta_cuda}, vjp=_zeta_vjp,
    infer=make_binary_infer("zeta"), cost=elementwise_cost,
    doc="Hurwitz zeta function sum_k (q + k)^-x"))


def zeta(x, q) -> Tensor:
    """The Hurwitz zeta function ``sum_k (q + k)^-x`` (``torch.special.zeta``; ``x`` or
    ``q`` may be a Python number). Differentiable in ``q`` (``-x zeta(x + 1, q)``); the
    derivative in ``x`` is not implemented, as in PyTorch.

    >>> tl.special.zeta(tl.tensor([2.0]), 1.0)        # pi^2 / 6
    tensor([1.6449])
    """
    a, b = same_category(*as_operands(x, q))
    a, b = to_float(a), to_float(b)
    if a.dtype != b.dtype:
        dt = promote_types(a.dtype, b.dtype)
        a, b = a.astype(dt), b.astype(dt)
    if a._device != b._device:
        raise RuntimeError(f"zeta: tensors on {a.device} and {b.device}")
    return apply(ZETA, a, b)
