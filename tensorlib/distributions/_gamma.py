"""The standard gamma draw with its implicit reparameterization gradient, the regularized
lower incomplete gamma function, and the host-side draws of the distributions that NumPy
samples (gamma, Poisson, binomial).

Implicit reparameterization (Figurnov et al., 2018): a draw ``x ~ Gamma(alpha, 1)`` moves with
``alpha`` as its quantile at a fixed probability does, ``dx/dalpha = -dP(alpha, x)/dalpha /
p(x; alpha)``. Both that derivative and ``P`` itself are computed here from integrals whose
integrands keep one sign (no cancellation):

* below ``m = exp(digamma(alpha))`` (``x <= m``), with ``t = x exp(-s)``,
  ``P = x p(x) int_0^inf exp(g) ds`` and ``dx/dalpha = x int_0^inf exp(g) (s + psi - log x) ds``,
  ``g(s) = -alpha s - x expm1(-s)``;
* above it, with ``t = x exp(s)``, ``Q = 1 - P = x p(x) int_0^inf exp(h) ds`` and
  ``dx/dalpha = x int_0^inf exp(h) (s + log x - psi) ds``, ``h(s) = alpha s - x expm1(s)``,

(``psi - log x >= 0`` in the first, ``<= 0`` in the second: ``E[log X] = psi(alpha)``), by
double-exponential quadrature on the host in float64: exp-sinh over ``(0, inf)``, and for the
upper integral tanh-sinh over ``[0, L]`` first, where ``L = log(max(alpha, 1) / x)`` is where
``exp(h)`` starts its fall. Against mpmath the relative error is below 1e-11 for ``alpha`` in
[1e-4, 1e5] and probabilities from 1e-12 to 1 - 1e-14.

That quadrature is the reference; the backward of a draw uses PyTorch's closed-form
approximations instead (:func:`standard_gamma_grad_approx`, relative error about 2e-3, about
100x faster), eagerly with the quadrature for the few far-tail draws where they are off by
more, and under graph capture in tensorlib ops (:func:`standard_gamma_grad_fast`), so a
captured step can differentiate through ``rsample``. A second derivative through the draw is
not implemented (PyTorch's is not either) and raises rather than come out wrong.
"""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ..autograd.function import Function
from ..autograd.mode import state
from .base import _host

_H, _T = 1.0 / 24.0, 4.5
_K = np.arange(-round(_T / _H), round(_T / _H) + 1) * _H
_SH = 0.5 * math.pi * np.sinh(_K)
_ES = np.exp(_SH)                                      # exp-sinh nodes on (0, inf)
_EW = _H * 0.5 * math.pi * np.cosh(_K) * _ES
_TS = 0.5 * (1.0 + np.tanh(_SH))                       # tanh-sinh nodes on (0, 1)
_TW = _H * 0.25 * math.pi * np.cosh(_K) / np.cosh(_SH) ** 2
_CHUNK = 2048


def no_capture(what: str) -> None:
    """Raise under graph capture: ``what`` draws or computes on the host (NumPy), which a
    captured graph would freeze into a constant instead of redoing on each run."""
    if state.tracer is not None:
        from ..graph.tracer import CaptureError
        raise CaptureError(f"{what} runs on the host (NumPy) and cannot be captured in a graph "
                           "(each replay would repeat the traced values); call it outside "
                           "tl.function")


def _special(name: str, a: np.ndarray) -> np.ndarray:
    """digamma / lgamma of a float64 array through tensorlib's kernels (SciPy when there)."""
    from ..creation import tensor
    from ..ops import special_fns
    return getattr(special_fns, name)(tensor(a))._data


def _integrals(alpha: np.ndarray, x: np.ndarray, psi: np.ndarray, lower: np.ndarray):
    """``(I0, I1)`` for 1-d float64 arrays of positive finite ``alpha`` and ``x``: the
    integrals of the module docstring (lower or upper form per element)."""
    i0, i1 = np.empty_like(x), np.empty_like(x)
    for lo in (True, False):
        idx = np.nonzero(lower == lo)[0]
        for start in range(0, idx.size, _CHUNK):
            j = idx[start:start + _CHUNK]
            a, xx, ps = alpha[j, None], x[j, None], psi[j, None]
            lx = np.log(xx)
            with np.errstate(over="ignore", invalid="ignore", under="ignore"):
                if lo:
                    c = 1.0 / (a - xx + np.sqrt(xx))
                    s, w = c * _ES, c * _EW
                    e = w * np.exp(-a * s - xx * np.expm1(-s))
                    lin = s + ps - lx
                else:
                    cut = np.maximum(np.log(np.maximum(a, 1.0) / xx), 0.0)
                    c = 1.0 / (np.maximum(xx - a, 0.0) + np.sqrt(np.maximum(np.maximum(a, xx),
                                                                            1.0)))
                    s = np.concatenate([cut * _TS, cut + c * _ES], axis=1)
                    w = np.concatenate([cut * _TW, c * _EW], axis=1)
                    e = w * np.exp(a * s - xx * np.expm1(s))
                    lin = s + lx - ps
                e = np.where(np.isfinite(e), e, 0.0)      # a guard: no term overflows
            i0[j] = e.sum(axis=1)
            i1[j] = (e * lin).sum(axis=1)
    return i0, i1


def _prepare(alpha, x):
    a = np.asarray(alpha, dtype=np.float64)
    xx = np.asarray(x, dtype=np.float64)
    a, xx = np.broadcast_arrays(a, xx)
    shape = a.shape
    a, xx = a.ravel(), xx.ravel()
    ok = (a > 0) & np.isfinite(a) & (xx > 0) & np.isfinite(xx)
    return shape, a, xx, ok


def _i1(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    psi = _special("digamma", a)
    return _integrals(a, x, psi, np.log(x) <= psi)[1]


def standard_gamma_grad(alpha, x) -> np.ndarray:
    """``dx/dalpha`` of a standard gamma draw ``x`` at concentration ``alpha`` (float64, host);
    0 at ``x == 0``, NaN at invalid arguments."""
    shape, a, xx, ok = _prepare(alpha, x)
    out = np.where(xx == 0, 0.0, math.nan)
    if ok.any():
        out[ok] = xx[ok] * _i1(a[ok], xx[ok])
    return out.reshape(shape)


def gammainc_grad_alpha(alpha, x) -> np.ndarray:
    """``dP(alpha, x)/dalpha = -p(x; alpha) dx/dalpha`` (float64, host), 0 where ``x`` is 0 or
    infinite (P is constant there)."""
    shape, a, xx, ok = _prepare(alpha, x)
    out = np.where((xx == 0) | (xx == math.inf), 0.0, math.nan)
    if ok.any():
        a1, x1 = a[ok], xx[ok]
        with np.errstate(under="ignore"):
            xdens = np.exp(a1 * np.log(x1) - x1 - _special("lgamma", a1))     # x p(x)
        out[ok] = -xdens * _i1(a1, x1)
    return out.reshape(shape)


def gammainc(alpha, x) -> np.ndarray:
    """The regularized lower incomplete gamma function ``P(alpha, x)`` (float64, host):
    0 for ``x <= 0``, 1 at ``x = inf``, NaN at a NaN or a non-positive ``alpha``."""
    shape, a, xx, ok = _prepare(alpha, x)
    out = np.full(a.shape, math.nan)
    good_a = a > 0
    out[good_a & (xx <= 0)] = 0.0
    out[good_a & (xx == math.inf)] = 1.0
    out[(a == math.inf) & np.isfinite(xx) & (xx > 0)] = 0.0
    if ok.any():
        a1, x1 = a[ok], xx[ok]
        psi = _special("digamma", a1)
        lx = np.log(x1)
        lower = lx <= psi
        i0, _ = _integrals(a1, x1, psi, lower)
        with np.errstate(under="ignore"):
            part = np.exp(a1 * lx - x1 - _special("lgamma", a1)) * i0
        out[ok] = np.where(lower, part, 1.0 - part)
    return np.clip(out, 0.0, 1.0).reshape(shape)


def _like(arr: np.ndarray, t: Tensor) -> Tensor:
    from ..creation import tensor
    return tensor(np.asarray(arr).astype(t.dtype, copy=False), device=t.device)


# Jankowiak & Obermeyer's (2018) bivariate rational approximation of ``log(dx/dalpha)`` in
# ``u = log(x / alpha)`` and ``v = log(alpha)``, as fitted for PyTorch's _standard_gamma_grad:
# row r holds the coefficients of u**r; columns 0-3 the numerator, 4-7 the denominator in v
_RATIONAL = ((0.16009398, -0.094634809, 0.025146376, -0.0030648343,
              1.0, 0.32668115, 0.10406089, 0.0014179084),
             (0.53487893, 0.1298071, 0.065735949, -0.0015649758,
              0.16639465, 0.020070113, -0.0035938915, -0.00058392623),
             (0.040121004, -0.0065914022, -0.0026286047, -0.0013441777,
              0.017050642, -0.0021309326, 0.00085092367, -1.5247877e-07))


class _NumPyMath:
    log, exp, sqrt, where = np.log, np.exp, np.sqrt, np.where


class _TensorMath:
    @staticmethod
    def log(t):
        return t.log()

    @staticmethod
    def exp(t):
        return t.exp()

    @staticmethod
    def sqrt(t):
        return t.sqrt()

    @staticmethod
    def where(c, a, b):
        from ..ops.elementwise import where
        return where(c, a, b)


def _series(m, a, x, psi):
    """``x < 0.8``: -dP/dalpha / p(x) from the series of P and of its alpha-derivative,
    the common factor ``x ** alpha`` cancelled (no under/overflow at tiny x)."""
    numer, denom = 1.0, a
    s1, s2 = 1.0 / denom, 1.0 / (denom * denom)
    for i in range(1, 6):
        numer = numer * (-x / i)
        denom = denom + 1.0
        s1 = s1 + numer / denom
        s2 = s2 + numer / (denom * denom)
    return -x * m.exp(x) * ((m.log(x) - psi) * s1 - s2)


def _saddle(m, a, x):
    """``alpha > 8``: Rice's saddle-point expansion; a polynomial within 10% of alpha."""
    near = (x >= 0.9 * a) & (x <= 1.1 * a)
    n1 = 1.0 + 24.0 * a * (1.0 + 12.0 * a)
    n2 = (1440.0 * a * a + 6.0 * x * (53.0 - 120.0 * x) - 65.0 * x * x / a
          + a * (107.0 + 3600.0 * x))
    poly = n1 * n2 / (1244160.0 * a * a * a * a)
    xf = m.where(near, a * 0.5, x)              # the far form is never 0 / 0 here
    lr = m.log(xf / a)
    den = m.sqrt(8.0 * a)
    t2 = den / (a - xf)
    t3 = (xf - a - a * lr).clip(1e-300, None) ** -1.5
    t23 = m.where(xf < a, t2 - t3, t2 + t3)
    t1 = lr * t23 - m.sqrt(2.0 / a) * (a + xf) / ((a - xf) * (a - xf))
    stirling = 1.0 + 1.0 / (12.0 * a) * (1.0 + 1.0 / (24.0 * a))
    return m.where(near, poly, -stirling * xf * t1 / den)


def _rational(m, a, x):
    u, v = m.log(x / a), m.log(a)
    cv = [c0 + u * (c1 + u * c2) for c0, c1, c2 in zip(*_RATIONAL)]
    p = cv[0] + v * (cv[1] + v * (cv[2] + v * cv[3]))
    q = cv[4] + v * (cv[5] + v * (cv[6] + v * cv[7]))
    return m.exp(p / q)


def standard_gamma_grad_approx(alpha, x) -> np.ndarray:
    """``dx/dalpha`` of standard gamma draws (float64, host, NumPy), to a relative error of
    about 2e-3 (up to 7% in far upper tails; :func:`standard_gamma_grad` is the accurate
    one). The regimes are PyTorch's ``_standard_gamma_grad``'s (Jankowiak & Obermeyer, 2018):

    * ``x < 0.8``: the series of ``P(alpha, x)`` and of its ``alpha``-derivative (6 terms);
    * ``alpha > 8``: Rice's saddle-point expansion (a polynomial within 10% of ``alpha``);
    * otherwise the rational approximation ``exp(p(u, v) / q(u, v))`` (``_RATIONAL``).

    0 at ``x == 0``, NaN at invalid arguments; each regime is computed on its elements only."""
    shape, a, xx, ok = _prepare(alpha, x)
    out = np.where(xx == 0, 0.0, math.nan)
    small, big = ok & (xx < 0.8), ok & (xx >= 0.8) & (a > 8.0)
    rest = ok & (xx >= 0.8) & (a <= 8.0)
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        if small.any():
            a1 = a[small]
            out[small] = _series(_NumPyMath, a1, xx[small], _special("digamma", a1))
        if big.any():
            out[big] = _saddle(_NumPyMath, a[big], xx[big])
        if rest.any():
            out[rest] = _rational(_NumPyMath, a[rest], xx[rest])
    # as PyTorch: a series that over/underflows to NaN gives 0
    out[small & np.isnan(out)] = 0.0
    return out.reshape(shape)


def standard_gamma_grad_fast(alpha: Tensor, x: Tensor) -> Tensor:
    """:func:`standard_gamma_grad_approx` in tensorlib ops, for graph capture (every regime
    is computed everywhere, its inputs kept in range, and ``where`` picks); ``alpha`` and
    ``x`` of one shape; computed in float64, returned in ``x``'s dtype."""
    from ..ops.elementwise import where
    from ..ops.special_fns import digamma
    m = _TensorMath
    dt = x.dtype
    a = alpha.astype(np.float64) if alpha.dtype != np.float64 else alpha
    xx = x.astype(np.float64) if dt != np.float64 else x
    small, big = xx < 0.8, a > 8.0
    series = _series(m, a, where(small & (xx > 0), xx, 0.5), digamma(a))
    series = where(series == series, series, 0.0)
    ab = where(big, a, 9.0)
    asym = _saddle(m, ab, where(big & ~small, xx, ab * 0.5))
    rational = _rational(m, a, where(small, 1.0, xx))
    out = where(small, series, where(big, asym, rational))
    out = where(xx > 0, out, 0.0)
    return out.astype(dt) if dt != np.float64 else out


class _StandardGammaGrad(Function):
    """``dx/dalpha`` as a tensor (:func:`standard_gamma_grad_fast`); differentiating it
    again raises (the approximation's derivative is not the second derivative)."""

    @staticmethod
    def forward(ctx, alpha, x):
        if state.tracer is not None:
            return standard_gamma_grad_fast(alpha, x)
        a, xx = np.broadcast_arrays(_host(alpha._data).astype(np.float64),
                                    _host(x._data).astype(np.float64))
        out = standard_gamma_grad_approx(a, xx)
        # where the approximation is off by more than ~2e-3 (far tails, and x >= 0.8 at
        # alpha < 0.1: under 4% of the draws) the quadrature, as cheap there as accurate
        r = np.sqrt(a)
        with np.errstate(invalid="ignore"):
            tail = (xx >= 0.8) & ((a < 0.1) | ((a <= 20) & ((xx > a + 4 * r + 4)
                                                             | (xx < a - 3 * r))))
        if tail.any():
            out[tail] = standard_gamma_grad(a[tail], xx[tail])
        return _like(out, x)

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError(
            "the second derivative of a Gamma/Beta/Dirichlet/StudentT rsample with respect "
            "to the concentration (its implicit reparameterization gradient) is not "
            "implemented, as in PyTorch")


def _host_standard_gamma(alpha: Tensor) -> Tensor:
    from ..random import rng
    no_capture("sampling a Gamma, Beta, Dirichlet or StudentT distribution")
    a = _host(alpha._data).astype(np.float64)
    x = np.asarray(rng().standard_gamma(a))
    # a draw that underflows (tiny concentrations) is the least positive normal number,
    # as PyTorch's: log_prob stays finite
    x = np.maximum(x.astype(alpha.dtype), np.finfo(alpha.dtype).tiny)
    return _like(x, alpha)


class _ImplicitGamma(Function):
    """Standard gamma draws ``x`` (made without gradient) tied to ``alpha`` by implicit
    reparameterization: the gradient in ``alpha`` is ``g * dx/dalpha``."""

    @staticmethod
    def forward(ctx, alpha, x):
        ctx.save_for_backward(alpha, x)
        return x

    @staticmethod
    def backward(ctx, g):
        alpha, x = ctx.saved_tensors
        # alpha attached: differentiating this gradient again reaches the raising backward
        return g * _StandardGammaGrad.apply(alpha, x.detach()), None


def standard_gamma(alpha: Tensor) -> Tensor:
    """Gamma(alpha, 1) draws, one per element, from the global generator, differentiable in
    ``alpha`` by implicit reparameterization (:func:`standard_gamma_grad_fast`). Under graph
    capture the draws are tensorlib ops over ``tl.randn`` / ``tl.rand``
    (:func:`_standard_gamma_ops`), which a replay redoes: a different method than eager
    NumPy, so a seed gives other values (the same distribution)."""
    from ..autograd.mode import is_grad_enabled
    if state.tracer is not None:
        x = _standard_gamma_ops(alpha.detach())
    else:
        x = _host_standard_gamma(alpha.detach())
    if alpha.requires_grad and is_grad_enabled():
        return _ImplicitGamma.apply(alpha, x)
    return x


_PROPOSALS = 16


def _standard_gamma_ops(alpha: Tensor) -> Tensor:
    """Gamma(alpha, 1) draws as tensor ops: Marsaglia and Tsang's method (2000) with
    ``_PROPOSALS`` proposals per element drawn at once (a graph has fixed shapes, so no
    open-ended rejection loop), the first accepted one kept; for ``alpha < 1`` the boost
    ``Gamma(alpha + 1) * u ** (1 / alpha)``. A proposal is accepted with probability above
    0.95 for every ``alpha >= 1``, so all of them failing has odds below 1e-20; such a draw,
    and one of a non-positive or NaN ``alpha``, is NaN rather than biased."""
    from ..creation import rand, randn
    from ..ops.elementwise import where
    from ..ops.indexing import take_along_axis
    dt = alpha.dtype
    a = alpha.astype(np.float64)
    shape = tuple(a.shape)
    small = a < 1.0
    d = where(small, a + 1.0, a) - 1.0 / 3.0
    c = 1.0 / where(d > 0, 9.0 * d, math.nan).sqrt()     # d <= 0: a bad alpha, NaN draw
    z = randn(_PROPOSALS, *shape, dtype=np.float64, device=a.device)
    u = rand(_PROPOSALS, *shape, dtype=np.float64, device=a.device)
    v = (1.0 + c * z) ** 3
    pos = v > 0
    v_pos = where(pos, v, 1.0)          # log of a rejected v <= 0 is never used
    accept = pos & ((1.0 - u).log() < 0.5 * z * z + d - d * v_pos + d * v_pos.log())
    first = accept.astype(np.int64).argmax(axis=0).unsqueeze(0)
    x = take_along_axis(d * v_pos, first, 0).squeeze(0)
    x = where(accept.any(axis=0), x, math.nan)
    ub = rand(*shape, dtype=np.float64, device=a.device)
    x = where(small, x * ((1.0 - ub).log() / a).exp(), x)
    # an underflowing draw is the least positive normal number, as the eager draw's
    tiny = float(np.finfo(dt).tiny)
    x = x.astype(dt)
    return where(x < tiny, tiny, x)


class _GammaIncGradA(Function):
    """``dP(alpha, x)/dalpha = -p(x; alpha) dx/dalpha``; differentiating it again raises."""

    @staticmethod
    def forward(ctx, alpha, x):
        no_capture("the gradient of Gamma.cdf in the concentration")
        return _like(gammainc_grad_alpha(_host(alpha._data), _host(x._data)), x)

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError("the second derivative of Gamma.cdf with respect to the "
                                  "concentration is not implemented")


class _GammaInc(Function):
    """``P(alpha, x)``: differentiable in ``x`` to any order (its derivative is the gamma
    density, in tensorlib ops), in ``alpha`` to first order."""

    @staticmethod
    def forward(ctx, alpha, x):
        no_capture("Gamma.cdf")
        ctx.save_for_backward(alpha, x)
        return _like(gammainc(_host(alpha._data), _host(x._data)), x)

    @staticmethod
    def backward(ctx, g):
        from ..ops.elementwise import where
        from ..ops.special_fns import lgamma
        from ..special import xlogy
        alpha, x = ctx.saved_tensors
        ga = gx = None
        if ctx.needs_input_grad[1]:
            pos = x > 0
            xs = where(pos, x, 1.0)
            dens = (xlogy(alpha - 1.0, xs) - xs - lgamma(alpha)).exp()
            gx = g * where(pos, dens, 0.0)
        if ctx.needs_input_grad[0]:
            ga = g * _GammaIncGradA.apply(alpha, x)
        return ga, gx


def regularized_gamma_p(alpha: Tensor, x: Tensor) -> Tensor:
    """``P(alpha, x)`` (``torch.special.gammainc``) of same-shaped float tensors."""
    return _GammaInc.apply(alpha, x)


def host_draw(what: str, fn, like: Tensor) -> Tensor:
    """``fn(numpy_generator)`` (an array) as a tensor of ``like``'s dtype and device, drawn
    from the global generator; raises under graph capture."""
    from ..random import rng
    no_capture(what)
    return _like(np.asarray(fn(rng())), like)
