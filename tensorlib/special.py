"""``tl.special``: PyTorch's ``torch.special`` functions, differentiable (grad of grad too).

>>> import tensorlib as tl
>>> tl.special.erfinv(tl.tensor([0.0, 0.5]))           # [0., 0.4769]
>>> tl.special.xlogy(tl.tensor([0.0, 2.0]), tl.tensor([0.0, 3.0]))   # [0., 2.1972]

Forward kernels of the functions NumPy lacks (erfc, erfcx, erfinv, gammaln, digamma,
polygamma, i0, i0e, i1, i1e, zeta; the Bessel functions, airy_ai, gammainc, gammaincc) use SciPy
when it is installed and NumPy forms otherwise (see ``tensorlib/ops/special_fns.py`` and
``tensorlib/ops/special_more.py``); the rest are composed of tensorlib ops.
"""
from __future__ import annotations

import math

import numpy as np

from . import _dtypes
from ._tensor import Tensor
from .ops import elementwise as E
from .ops.elementwise import erf, exp2, expm1, log1p
from .ops.rounding import round  # noqa: A004  (torch.special.round's name)
from .ops.elementwise import sigmoid as expit
from .ops.nn_act import log_softmax as _log_softmax
from .ops.nn_act import softmax as _softmax
from .ops.reduction import logsumexp as _logsumexp
from .ops.special_fns import digamma, erfc, erfinv, i0, i1, polygamma
from .ops.special_fns import erfcx, i0e, i1e, zeta
from .ops.special_fns import lgamma as gammaln
from .ops.special_more import (airy_ai, bessel_j0, bessel_j1, bessel_y0, bessel_y1, gammainc,
                               gammaincc, modified_bessel_i0, modified_bessel_i1,
                               modified_bessel_k0, modified_bessel_k1, scaled_modified_bessel_k0,
                               scaled_modified_bessel_k1, spherical_bessel_j0)
from .ops._util import float_operands, to_float, to_tensor

psi = digamma

__all__ = ["airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "gammainc",
           "gammaincc", "modified_bessel_i0", "modified_bessel_i1", "modified_bessel_k0",
           "modified_bessel_k1", "scaled_modified_bessel_k0", "scaled_modified_bessel_k1",
           "spherical_bessel_j0", "chebyshev_polynomial_t", "chebyshev_polynomial_u",
           "chebyshev_polynomial_v",
           "chebyshev_polynomial_w", "digamma", "entr", "erf", "erfc", "erfcx", "erfinv", "exp2",
           "expit", "expm1", "gammaln", "hermite_polynomial_h", "hermite_polynomial_he",
           "laguerre_polynomial_l", "legendre_polynomial_p", "round",
           "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u",
           "shifted_chebyshev_polynomial_v", "shifted_chebyshev_polynomial_w",
           "i0", "i0e", "i1", "i1e", "log1p", "log_ndtr", "log_softmax", "logit", "logsumexp",
           "multigammaln", "ndtr", "ndtri", "polygamma", "psi", "sinc", "softmax", "xlog1py",
           "xlogy", "zeta"]


def _float_pair(x, y) -> tuple[Tensor, Tensor]:
    # torch.result_type's dtype (float16 with int64: float16; a 0-d float64 does not widen
    # float32), Python ints exact (uint8 with -2: -2.0)
    return float_operands(x, y)


def _xlog(x, y, fn, pole: float) -> Tensor:
    """``x * fn(y)``, 0 where x == 0 (unless y is NaN), with PyTorch's gradients: x's is
    ``fn(y)``, 0 where x == 0 and y is at or below ``pole`` (where fn(y) is -inf or NaN); y's
    is ``x * fn'(y)`` everywhere, so NaN at (0, pole) (0 / 0) and wherever y is NaN."""
    a, b = _float_pair(x, y)
    from .autograd import no_grad
    with no_grad(), np.errstate(divide="ignore", invalid="ignore"):
        # where x == 0 and fn(y) is infinite or outside the domain (not NaN: that stays NaN,
        # value and gradients): value 0, through a safe fn so no gradient is 0 * inf
        held = (a == 0) & E.logical_not(E.isfinite(fn(b))) & E.logical_not(E.isnan(b))
        at_pole = held & (b == pole)
    # at the pole, 0 * sqrt|y - pole|: the value 0, and y's gradient 0 * inf = NaN, as 0 / 0
    # (elsewhere sqrt(1): a zero gradient through a finite derivative)
    zero = E.sqrt(E.abs(E.where(at_pole, b - pole, 1.0))) * 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return a * E.where(held, zero, fn(E.where(held, pole + 1.0, b)))


def xlogy(input, other) -> Tensor:
    """``x * log(y)``, 0 where x == 0 (unless y is NaN), as ``torch.special.xlogy``.

    >>> tl.special.xlogy(tl.tensor([0.0, 1.0]), 0.0)        # [0., -inf]
    """
    return _xlog(input, other, E.log, 0.0)


def xlog1py(input, other) -> Tensor:
    """``x * log1p(y)``, 0 where x == 0 (unless y is NaN), as ``torch.special.xlog1py``."""
    return _xlog(input, other, E.log1p, -1.0)


def _nan_grad(x: Tensor, bad: Tensor) -> Tensor:
    """NaN where ``bad``, with a NaN gradient there (``sqrt(-1)``), 1 with a zero gradient
    elsewhere: the value and derivative of a function outside its domain."""
    return E.sqrt(E.where(bad, x * 0.0 - 1.0, 1.0))


def _log_pole(x: Tensor, at: Tensor) -> Tensor:
    """``log(x)`` where ``at`` (x == 0 there: -inf, derivatives 1/x = inf, -1/x^2 = -inf),
    0 elsewhere; ``+ 0.0`` makes -0.0 a +0.0, so its derivative is +inf too."""
    return E.log(E.where(at, x + 0.0, 1.0))


def _logit(p: Tensor) -> Tensor:
    inside = (p > 0) & (p < 1)
    ps = E.where(inside, p, 0.5)
    lo, hi = p == 0, p == 1
    # the poles through functions with logit's behaviour there (log p at 0, -log1p(-p) at 1):
    # -inf / inf with the gradient +inf and second derivatives -inf / inf, the limits
    # (PyTorch's second derivative is NaN there)
    edge = E.where(lo, _log_pole(p, lo), E.where(hi, -log1p(-E.where(hi, p, 0.0)),
                                                  _nan_grad(p, E.logical_not(inside | lo | hi))))
    return E.where(inside, E.log(ps / (1.0 - ps)), edge)


_QUIET = {"divide": "ignore", "invalid": "ignore", "over": "ignore"}


def logit(input, eps: float | None = None) -> Tensor:
    """``log(p / (1 - p))``, as ``torch.special.logit``: -inf / inf at 0 / 1 (gradient +inf
    there), NaN (and NaN gradient) outside [0, 1]. With ``eps``, p is first clamped to
    [eps, 1 - eps]: the gradient is 0 strictly outside, ``1 / (p (1 - p))`` at the bounds
    and NaN at NaN (as PyTorch's scalar kernel; its vectorised one gives 0 there).

    >>> tl.special.logit(tl.tensor([0.5, 0.0]), eps=1e-6)     # [0., -13.8155]
    """
    p = to_float(to_tensor(input))
    if eps is not None:
        lo, hi = float(eps), 1.0 - float(eps)
        p = E.where(p < lo, lo, E.where(p > hi, hi, p))     # NaN passes, with its gradient
    with np.errstate(**_QUIET):         # the poles and NaNs are intended
        return _logit(p)


# sin(t) / t = sum_k (-1)^k t^(2k) / (2k + 1)!: to k = 10 the truncation is below 1e-22 for
# |t| < 1, and so are its derivatives' (highest power first, for Horner in t^2)
_SINC_SERIES = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(10, -1, -1))


def sinc(input) -> Tensor:
    """Normalised sinc ``sin(pi x) / (pi x)``, 1 at 0, as ``torch.special.sinc``. For
    ``|pi x| < 1`` it is its Taylor series (to ``(pi x)^20``), so the derivatives of every order
    stay accurate near 0, where the quotient's cancel (PyTorch's third derivative at 1e-9
    is ~1e11 off), and are exact at 0: first 0, second ``-pi^2 / 3`` (PyTorch: NaN)."""
    x = to_float(to_tensor(input))
    if x.dtype == np.float16:       # in float32, rounded once, as PyTorch (and the README)
        return sinc(x.astype(np.float32)).astype(np.float16)
    small = E.abs(x) < 1.0 / math.pi
    t = E.where(small, x, 0.0) * math.pi
    series = _polevl(t * t, _SINC_SERIES)
    px = E.where(small, 1.0, x) * math.pi
    return E.where(small, series, E.sin(px) / px)


def entr(input) -> Tensor:
    """Elementwise entropy ``-x log(x)``: 0 at 0, -inf for x < 0, as ``torch.special.entr``;
    its gradient is PyTorch's ``-(log x + 1)`` everywhere: +inf at 0, NaN for x < 0 and NaN,
    -inf at +inf (second derivative ``-1/x``; NaN for x < 0, where PyTorch gives -1/x)."""
    x = to_float(to_tensor(input))
    pos = (x > 0) & (x < math.inf)
    main = pos | E.isnan(x)
    xs = E.where(main, x, 1.0)
    zero, neg, inf = x == 0, x < 0, x == math.inf
    xi = E.where(inf, x, 1.0)
    # the edges through functions with entr's derivatives there: sqrt x at 0 (0; +inf,
    # -inf), -x^1.5 at +inf (-inf; -inf, -0), log(0 * atan x) below 0 (-inf; NaN; atan keeps
    # -inf finite, where 0 * x was NaN)
    with np.errstate(**_QUIET):
        edge = E.where(zero, E.sqrt(E.where(zero, x + 0.0, 1.0)),
                       E.where(inf, -xi ** 1.5,
                               E.log(E.where(neg, E.atan(E.where(neg, x, -1.0)) * 0.0,
                                             1.0))))
        return E.where(main, -xs * E.log(xs), edge)


def ndtr(input) -> Tensor:
    """Standard normal CDF ``(1 + erf(x / sqrt 2)) / 2``, from erfc so the lower tail keeps its
    precision, as ``torch.special.ndtr``."""
    # sqrt(0.5) is correctly rounded (1 / sqrt(2) is one ulp off): in the tails erfc's
    # relative error is about 2 t^2 times its argument's, 3e-13 at x = -37 for that ulp
    return 0.5 * erfc(to_float(to_tensor(input)) * -math.sqrt(0.5))


# Cephes' ndtri (S. L. Moshier, Cephes Math Library 2.1, 1989; also scipy's and torch's):
# rational approximations, P with its leading coefficient first, Q with a leading 1 implied
_NDTRI_P0 = (-5.99633501014107895267E1, 9.80010754185999661536E1, -5.66762857469070293439E1,
             1.39312609387279679503E1, -1.23916583867381258016E0)
_NDTRI_Q0 = (1.95448858338141759834E0, 4.67627912898881538453E0, 8.63602421390890590575E1,
             -2.25462687854119370527E2, 2.00260212380060660359E2, -8.20372256168333339912E1,
             1.59056225126211695515E1, -1.18331621121330003142E0)
_NDTRI_P1 = (4.05544892305962419923E0, 3.15251094599893866154E1, 5.71628192246421288162E1,
             4.40805073893200834700E1, 1.46849561928858024014E1, 2.18663306850790267539E0,
             -1.40256079171354495875E-1, -3.50424626827848203418E-2,
             -8.57456785154685413611E-4)
_NDTRI_Q1 = (1.57799883256466749731E1, 4.53907635128879210584E1, 4.13172038254672030440E1,
             1.50425385692907503408E1, 2.50464946208309415979E0, -1.42182922854787788574E-1,
             -3.80806407691578277194E-2, -9.33259480895457427372E-4)
_NDTRI_P2 = (3.23774891776946035970E0, 6.91522889068984211695E0, 3.93881025292474443415E0,
             1.33303460815807542389E0, 2.01485389549179081538E-1, 1.23716634817820021358E-2,
             3.01581553508235416007E-4, 2.65806974686737550832E-6, 6.23974539184983293730E-9)
_NDTRI_Q2 = (6.02427039364742014255E0, 3.67983563856160859403E0, 1.37702099489081330271E0,
             2.16236993594496635890E-1, 1.34204006088543189037E-2, 3.28014464682127739104E-4,
             2.89247864745380683936E-6, 6.79019408009981274425E-9)
_EXP_M2 = 0.1353352832366127       # exp(-2): below it (and above 1 - it) the tail formula
_S2PI = 2.50662827463100050242E0      # sqrt(2 pi)


def _polevl(x: Tensor, coefs) -> Tensor:     # Horner, highest power first
    r = x * coefs[0] + coefs[1]
    for c in coefs[2:]:
        r = r * x + c
    return r


def _p1evl(x: Tensor, coefs) -> Tensor:     # the same with a leading coefficient 1
    r = x + coefs[0]
    for c in coefs[1:]:
        r = r * x + c
    return r


def ndtri(input) -> Tensor:
    """Inverse of :func:`ndtr`, as ``torch.special.ndtri`` (Cephes' algorithm, as torch and
    scipy): ``p - 1/2`` through a rational function for p in (exp(-2), 1 - exp(-2)), else
    ``z = sqrt(-2 log q)``, q = min(p, 1 - p), through ``z - log(z)/z - R(1/z)/z``, so the
    tails keep full relative precision down to the smallest p. -inf at 0, inf at 1, NaN
    outside [0, 1]; the gradient is +inf at 0 and 1, NaN outside. Differentiable through
    those formulas (in the tails the gradient ``sqrt(2 pi) exp(x^2 / 2)`` stays finite down
    to p ~ 1e-300)."""
    p = to_float(to_tensor(input))
    upper = p > 1.0 - _EXP_M2
    q = E.where(upper, 1.0 - p, p)          # exact for p >= 1/2
    central = q > _EXP_M2
    tail = E.logical_not(central) & (q > 0)
    # each branch evaluated on safe stand-ins where it is not taken, so that neither sends
    # inf or NaN into the other's gradient
    y = E.where(central, p, 0.5) - 0.5
    y2 = y * y
    x_mid = (y + y * (y2 * _polevl(y2, _NDTRI_P0) / _p1evl(y2, _NDTRI_Q0))) * _S2PI
    z = E.sqrt(-2.0 * E.log(E.where(tail, q, 0.01)))
    r = 1.0 / z
    near = r * _polevl(r, _NDTRI_P1) / _p1evl(r, _NDTRI_Q1)      # z < 8: q > exp(-32)
    far = r * _polevl(r, _NDTRI_P2) / _p1evl(r, _NDTRI_Q2)
    x_tail = z - E.log(z) / z - E.where(z < 8.0, near, far)
    out = E.where(central, x_mid, E.where(upper, x_tail, -x_tail))
    lo, hi = p == 0, p == 1
    # the poles through log p and -log1p(-p): -inf / inf with PyTorch's gradient +inf there
    # (second derivative -inf / inf); NaN with a NaN gradient outside [0, 1] and at NaN
    with np.errstate(**_QUIET):
        edge = E.where(lo, _log_pole(p, lo), E.where(hi, -log1p(-E.where(hi, p, 0.0)),
                                                      _nan_grad(p, ~(central | tail | lo | hi))))
        return E.where(central | tail, out, edge)


def log_ndtr(input) -> Tensor:
    """``log(ndtr(x))``, as ``torch.special.log_ndtr``, to about 1e-15 relative:
    ``log1p(-ndtr(-x))`` for x > 0 (``log(ndtr(x))`` rounds to 0 from x ~ 8 and loses digits
    before); ``log(ndtr(x))`` down to the switch, -20 in float64 (-10 in float32: ndtr
    stays normal to about -37 and -13); below it the normal tail's asymptotic series to 12
    terms, whose truncation error at the switch is below rounding."""
    x = to_float(to_tensor(input))
    cut = -20.0 if x.dtype == np.float64 else -10.0
    tail = x < cut
    pos = x > 0
    # each branch evaluated where it is valid only, so none sends NaN into the gradient
    xt = E.where(tail, x, cut)
    mid = E.log(ndtr(E.where(tail | pos, -1.0, x)))
    right = log1p(-ndtr(-E.where(pos, x, 1.0)))
    r = 1.0 / (xt * xt)
    u = -23.0 * r                   # sum_{k=1..12} (-1)^k (2k-1)!! r^k, by Horner
    for k in range(11, 0, -1):
        u = -(2 * k - 1) * r * (1.0 + u)
    asym = -0.5 * xt * xt - E.log(-xt) - 0.5 * math.log(2 * math.pi) + log1p(u)
    return E.where(tail, asym, E.where(pos, right, mid))


def _with_dtype(x, dtype) -> Tensor:
    x = to_tensor(x)
    return x.astype(_dtypes.as_dtype(dtype)) if dtype is not None else x


def softmax(input, dim: int, *, dtype=None) -> Tensor:
    """``torch.special.softmax``: softmax along ``dim`` (after casting to ``dtype``)."""
    return _softmax(_with_dtype(input, dtype), dim=dim)


def log_softmax(input, dim: int, *, dtype=None) -> Tensor:
    """``torch.special.log_softmax``: log-softmax along ``dim`` (after casting to ``dtype``)."""
    return _log_softmax(_with_dtype(input, dtype), dim=dim)


def logsumexp(input, dim, keepdim: bool = False) -> Tensor:
    """``torch.special.logsumexp``: ``log(sum(exp(x)))`` over ``dim`` (int or tuple), stable."""
    return _logsumexp(input, axis=dim, keepdims=keepdim)


def multigammaln(input, p: int) -> Tensor:
    """The log of the multivariate gamma function of dimension ``p``,
    ``p (p - 1) / 4 log(pi) + sum_{j < p} lgamma(x - j / 2)`` (``torch.special.multigammaln``
    and ``torch.mvlgamma``); differentiable, from ``lgamma``.

    >>> tl.special.multigammaln(tl.tensor([2.5]), 3)          # [1.8810]
    """
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
        raise ValueError(f"multigammaln: p must be a positive integer, got {p!r}")
    x = to_float(to_tensor(input))
    out = gammaln(x)
    for j in range(1, int(p)):
        out = out + gammaln(x - 0.5 * j)
    return out + p * (p - 1) / 4 * math.log(math.pi)


# --- orthogonal polynomials (torch.special.*_polynomial_*), PyTorch's kernels step by step ---
def _top(n) -> int:
    """The largest degree asked for (a host read of a device array)."""
    return int(n.max()) if n.size else 1


def _cheb(first):
    """Chebyshev-type three-term recurrence ``r = 2 u q - p`` from (1, first(u))."""
    def rec(u, n, xp):
        p, q = xp.ones_like(u), first(u)
        for k in range(2, _top(n) + 1):
            p, q = xp.where(k <= n, q, p), xp.where(k <= n, (u + u) * q - p, q)
        return xp.where(n == 0, 1.0, q)
    return rec


def _rec(first, step):
    """A recurrence run for k = 1 .. n - 1 from (1, first(x)): ``step(k, x, p, q)``."""
    def rec(u, n, xp):
        p, q = xp.ones_like(u), first(u)
        for k in range(1, _top(n)):
            p, q = xp.where(k < n, q, p), xp.where(k < n, step(k, u, p, q), q)
        return xp.where(n == 0, 1.0, q)
    return rec


def _edges_t(u, n, xp):
    """T: +-1 at |u| == 1, ``cos(n acos u)`` for n > 6 inside."""
    return [(xp.abs(u) == 1, xp.where((u > 0) | (n % 2 == 0), 1.0, -1.0)),
            ((n > 6) & (xp.abs(u) < 1), xp.cos(n * xp.arccos(xp.clip(u, -1, 1))))]


def _edges_u(limit):
    def edges(u, n, xp):
        a = xp.arccos(xp.clip(u, -1, 1))
        s = xp.sin(a)
        closed = xp.where(s != 0, xp.sin((n + 1) * a) / xp.where(s != 0, s, 1.0),
                          (n + 1) * xp.cos((n + 1) * a) / u)
        return [(xp.abs(u) == 1, xp.where((u > 0) | (n % 2 == 0), n + 1.0, -(n + 1.0))),
                ((n > limit) & (xp.abs(u) < 1), closed)]
    return edges


def _edges_v(limit):
    def edges(u, n, xp):
        a = xp.arccos(xp.clip(u, -1, 1))
        odd = xp.where(n % 2 == 0, 2.0 * n + 1, -(2.0 * n + 1))
        c = xp.cos(a / 2)
        closed = xp.where(xp.sin(a / 2) != 1, xp.cos((n + 0.5) * a) / xp.where(c != 0, c, 1.0),
                          odd)
        return [(xp.abs(u) == 1, xp.where(u > 0, 1.0, odd)),
                ((n > limit) & (xp.abs(u) < 1), closed)]
    return edges


def _edges_w(limit):
    def edges(u, n, xp):
        a = xp.arccos(xp.clip(u, -1, 1))
        at1 = xp.where(u > 0, 2.0 * n + 1, xp.where(n % 2 == 0, 1.0, -1.0))
        s = xp.sin(a / 2)
        closed = xp.where(xp.cos(a / 2) != 1, xp.sin((n + 0.5) * a) / xp.where(s != 0, s, 1.0),
                          at1)
        return [(xp.abs(u) == 1, at1), ((n > limit) & (xp.abs(u) < 1), closed)]
    return edges


def _hermite_limit(u, n, xp):
    return [((n > 0) & (n > (128 if u.dtype == np.float32 else 512)), math.nan)]


def _legendre_edges(u, n, xp):
    return [(xp.abs(u) == 1, xp.where((u > 0) | (n % 2 == 0), 1.0, -1.0))]


_POLYS = {
    # kind: (special values and closed forms, recurrence)
    "t": (_edges_t, _cheb(lambda u: u)),
    "u": (_edges_u(8), _cheb(lambda u: u + u)),
    "v": (_edges_v(8), _cheb(lambda u: u + u - 1.0)),
    "w": (_edges_w(8), _cheb(lambda u: u + u + 1.0)),
}
# the shifted ones switch to their closed forms at other n (as PyTorch: 6, 6, 6, 4)
_SHIFTED = {"t": _edges_t, "u": _edges_u(6), "v": _edges_v(6), "w": _edges_w(4)}


def _poly_fwd(xp, u, n, *, kind: str):
    """PyTorch's kernels step by step: n truncated to an integer, 0 for n < 0, the special
    values first, then the closed forms, then the recurrence (numpy or cupy arrays)."""
    edges, rec, shifted = _KINDS[kind]
    with np.errstate(all="ignore"):
        if shifted:
            u = u + u - u.dtype.type(1.0)
        nn = xp.trunc(xp.nan_to_num(n.astype(np.float64))).astype(np.int64)
        u, nn = xp.broadcast_arrays(u, nn)
        out = rec(u, xp.maximum(nn, 0), xp)
        for mask, val in reversed(edges(u, nn, xp)):
            out = xp.where(mask, val, out)
        return xp.where(nn < 0, 0.0, out).astype(u.dtype)


def _poly_infer(u, n, *, kind):
    from .ops._util import broadcast_shapes
    return broadcast_shapes(kind, u[0], n[0]), u[1]


def _poly(name: str, input, n, kind: str) -> Tensor:
    """One registry op for all twelve (``orthogonal_poly``, by ``kind``). Not
    differentiable, as PyTorch's: the output never requires grad."""
    from ._apply import apply
    kind_of_n = n.dtype.kind if isinstance(n, Tensor) else np.asarray(n).dtype.kind
    if kind_of_n not in "biuf":
        raise TypeError(f"{name}: n must be a real number or tensor, got {n!r}")
    xt, nt = to_tensor(input), to_tensor(n)
    floats = [t.dtype for t, given in ((xt, input), (nt, n))
              if isinstance(given, Tensor) and t.dtype.kind == "f"]
    dt = np.result_type(*floats) if floats else to_float(to_tensor(0)).dtype
    return apply(ORTHOGONAL_POLY, xt.detach().astype(dt), nt.detach(), kind=kind)


def _make_poly(name: str):
    def fn(input, n) -> Tensor:
        return _poly(name, input, n, name)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"``torch.special.{name}(input, n)``: the polynomial of degree n (a number or "
                  "a tensor, broadcast with input; truncated to an integer, 0 for n < 0) at "
                  "input, evaluated as PyTorch does. Not differentiable, as PyTorch's: the "
                  "result never requires grad.")
    return fn


def _laguerre_edges(u, n, xp):
    return [(u == 0, 1.0)]


_hermite_h = _rec(lambda u: u + u, lambda k, u, p, q: (u + u) * q - (2 * k) * p)
_hermite_he = _rec(lambda u: u, lambda k, u, p, q: u * q - k * p)
_laguerre = _rec(lambda u: 1.0 - u,
                 lambda k, u, p, q: (((k + k) + (1.0 - u)) * q - k * p) / (k + 1))
_legendre = _rec(lambda u: u, lambda k, u, p, q: ((k + k + 1) * u * q - k * p) / (k + 1))
# kind: (special values and closed forms, recurrence, shifted to [0, 1])
_KINDS = {**{f"chebyshev_polynomial_{k}": (e, r, False) for k, (e, r) in _POLYS.items()},
          **{f"shifted_chebyshev_polynomial_{k}": (_SHIFTED[k], _POLYS[k][1], True)
             for k in _POLYS},
          "hermite_polynomial_h": (_hermite_limit, _hermite_h, False),
          "hermite_polynomial_he": (_hermite_limit, _hermite_he, False),
          "laguerre_polynomial_l": (_laguerre_edges, _laguerre, False),
          "legendre_polynomial_p": (_legendre_edges, _legendre, False)}


def _register_poly():
    from .ops.registry import OpDef, register
    return register(OpDef("orthogonal_poly", _poly_fwd, vjp=None, saves=False,
                          infer=_poly_infer,
                          doc="torch.special's orthogonal polynomials of degree n at x"))


ORTHOGONAL_POLY = _register_poly()
chebyshev_polynomial_t = _make_poly("chebyshev_polynomial_t")
chebyshev_polynomial_u = _make_poly("chebyshev_polynomial_u")
chebyshev_polynomial_v = _make_poly("chebyshev_polynomial_v")
chebyshev_polynomial_w = _make_poly("chebyshev_polynomial_w")
shifted_chebyshev_polynomial_t = _make_poly("shifted_chebyshev_polynomial_t")
shifted_chebyshev_polynomial_u = _make_poly("shifted_chebyshev_polynomial_u")
shifted_chebyshev_polynomial_v = _make_poly("shifted_chebyshev_polynomial_v")
shifted_chebyshev_polynomial_w = _make_poly("shifted_chebyshev_polynomial_w")
hermite_polynomial_h = _make_poly("hermite_polynomial_h")
hermite_polynomial_he = _make_poly("hermite_polynomial_he")
laguerre_polynomial_l = _make_poly("laguerre_polynomial_l")
legendre_polynomial_p = _make_poly("legendre_polynomial_p")
