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

The first derivative is exact to that precision; a second derivative through it is not
implemented (PyTorch's is not either) and raises rather than come out wrong.
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


class _StandardGammaGrad(Function):
    """``dx/dalpha`` as a tensor; differentiating it again raises."""

    @staticmethod
    def forward(ctx, alpha, x):
        no_capture("the gradient of a Gamma/Beta/Dirichlet/StudentT rsample")
        return _like(standard_gamma_grad(_host(alpha._data), _host(x._data)), x)

    @staticmethod
    def backward(ctx, g):
        raise NotImplementedError(
            "the second derivative of a Gamma/Beta/Dirichlet/StudentT rsample with respect "
            "to the concentration (its implicit reparameterization gradient) is not "
            "implemented, as in PyTorch")


class _StandardGamma(Function):
    """A draw of Gamma(alpha, 1) per element of ``alpha``, differentiable in ``alpha`` by
    implicit reparameterization."""

    @staticmethod
    def forward(ctx, alpha):
        from ..random import rng
        no_capture("sampling a Gamma, Beta, Dirichlet or StudentT distribution")
        a = _host(alpha._data).astype(np.float64)
        x = np.asarray(rng().standard_gamma(a))
        # a draw that underflows (tiny concentrations) is the least positive normal number,
        # as PyTorch's: log_prob stays finite
        x = np.maximum(x.astype(alpha.dtype), np.finfo(alpha.dtype).tiny)
        out = _like(x, alpha)
        ctx.save_for_backward(alpha, out)
        return out

    @staticmethod
    def backward(ctx, g):
        alpha, x = ctx.saved_tensors
        return g * _StandardGammaGrad.apply(alpha, x.detach())


def standard_gamma(alpha: Tensor) -> Tensor:
    """Gamma(alpha, 1) draws, one per element, from the global generator. Under graph
    capture, without gradient, the draws are tensorlib ops over ``tl.randn`` / ``tl.rand``
    (:func:`_standard_gamma_ops`), which a replay redoes: a different method than eager
    NumPy, so a seed gives other values (the same distribution)."""
    if state.tracer is not None:
        from ..autograd.mode import is_grad_enabled
        if alpha.requires_grad and is_grad_enabled():
            from ..graph.tracer import CaptureError
            raise CaptureError(
                "rsample of a Gamma, Beta, Dirichlet or StudentT distribution with gradient "
                "cannot be captured in a graph: its implicit reparameterization gradient is "
                "computed on the host (NumPy). Inside tl.function use .sample() or draw under "
                "tl.no_grad(); differentiate through the draw outside tl.function")
        return _standard_gamma_ops(alpha.detach())
    return _StandardGamma.apply(alpha)


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
