"""``tl.special``: PyTorch's ``torch.special`` functions, differentiable (grad of grad too).

>>> import tensorlib as tl
>>> tl.special.erfinv(tl.tensor([0.0, 0.5]))           # [0., 0.4769]
>>> tl.special.xlogy(tl.tensor([0.0, 2.0]), tl.tensor([0.0, 3.0]))   # [0., 2.1972]

Forward kernels of the functions NumPy lacks (erfc, erfcx, erfinv, gammaln, digamma,
polygamma, i0, i0e, i1, i1e, zeta) use SciPy when it is installed and NumPy fallbacks otherwise (see
``tensorlib/ops/special_fns.py``); the rest are composed of tensorlib ops.
"""
from __future__ import annotations

import math

import numpy as np

from . import _dtypes
from ._tensor import Tensor
from .ops import elementwise as E
from .ops.elementwise import erf, expm1, log1p
from .ops.elementwise import sigmoid as expit
from .ops.nn_act import log_softmax as _log_softmax
from .ops.nn_act import softmax as _softmax
from .ops.reduction import logsumexp as _logsumexp
from .ops.special_fns import digamma, erfc, erfinv, i0, i1, polygamma
from .ops.special_fns import erfcx, i0e, i1e, zeta
from .ops.special_fns import lgamma as gammaln
from .ops._util import as_operands, to_float, to_tensor

psi = digamma

__all__ = ["digamma", "entr", "erf", "erfc", "erfcx", "erfinv", "expit", "expm1", "gammaln",
           "i0", "i0e", "i1", "i1e", "log1p", "log_ndtr", "log_softmax", "logit", "logsumexp",
           "multigammaln", "ndtr", "ndtri", "polygamma", "psi", "sinc", "softmax", "xlog1py",
           "xlogy", "zeta"]


def _float_pair(x, y) -> tuple[Tensor, Tensor]:
    a, b = as_operands(x, y)
    a, b = to_float(a), to_float(b)
    if a.dtype != b.dtype:
        dt = np.promote_types(a.dtype, b.dtype)
        a, b = a.astype(dt), b.astype(dt)
    return a, b


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


def logit(input, eps: float | None = None) -> Tensor:
    """``log(p / (1 - p))``; with ``eps``, p is first clamped to [eps, 1 - eps] (gradient 0
    outside), as ``torch.special.logit``.

    >>> tl.special.logit(tl.tensor([0.5, 0.0]), eps=1e-6)     # [0., -13.8155]
    """
    p = to_float(to_tensor(input))
    if eps is not None:
        p = p.clip(float(eps), 1.0 - float(eps))
    return E.log(p / (1.0 - p))


def sinc(input) -> Tensor:
    """Normalised sinc ``sin(pi x) / (pi x)``, 1 at 0 (gradient 0 there), as
    ``torch.special.sinc``."""
    x = to_float(to_tensor(input))
    zero = x == 0
    px = E.where(zero, 1.0, x) * math.pi
    return E.where(zero, 1.0, E.sin(px) / px)


def entr(input) -> Tensor:
    """Elementwise entropy ``-x log(x)``: 0 at 0, -inf for x < 0, as ``torch.special.entr``."""
    x = to_float(to_tensor(input))
    pos = x > 0
    val = -x * E.log(E.where(pos, x, 1.0))
    return E.where(pos, val, E.where(x == 0, 0.0, E.where(E.isnan(x), x, -math.inf)))


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
    outside [0, 1]. Differentiable through those formulas (in the tails the gradient
    ``sqrt(2 pi) exp(x^2 / 2)`` stays finite down to p ~ 1e-300)."""
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
    out = E.where(p == 0, -math.inf, E.where(p == 1, math.inf, out))
    return E.where((p >= 0) & (p <= 1), out, math.nan)


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
