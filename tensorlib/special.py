"""``tl.special``: PyTorch's ``torch.special`` functions, differentiable (grad of grad too).

>>> import tensorlib as tl
>>> tl.special.erfinv(tl.tensor([0.0, 0.5]))           # [0., 0.4769]
>>> tl.special.xlogy(tl.tensor([0.0, 2.0]), tl.tensor([0.0, 3.0]))   # [0., 2.1972]

Forward kernels of the functions NumPy lacks (erfc, erfinv, gammaln, digamma, polygamma,
i0, i1) use SciPy when it is installed and NumPy fallbacks otherwise (see
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
from .ops.special_fns import lgamma as gammaln
from .ops._util import as_operands, to_float, to_tensor

psi = digamma

__all__ = ["digamma", "entr", "erf", "erfc", "erfinv", "expit", "expm1", "gammaln", "i0", "i1",
           "log1p", "log_ndtr", "log_softmax", "logit", "logsumexp", "ndtr", "ndtri",
           "polygamma", "psi", "sinc", "softmax", "xlog1py", "xlogy"]


def _float_pair(x, y) -> tuple[Tensor, Tensor]:
    a, b = as_operands(x, y)
    a, b = to_float(a), to_float(b)
    if a.dtype != b.dtype:
        dt = np.promote_types(a.dtype, b.dtype)
        a, b = a.astype(dt), b.astype(dt)
    return a, b


def _xlog(x, y, fn) -> Tensor:
    a, b = _float_pair(x, y)
    from .autograd import no_grad
    with no_grad(), np.errstate(divide="ignore", invalid="ignore"):
        # where x == 0 and log(y) is not finite (y = 0, inf, below the domain): value 0, and
        # a safe log so no gradient is 0 * inf; elsewhere x * log(y), whose x-gradient is
        # log(y) also at x == 0, as PyTorch's
        held = (a == 0) & E.logical_not(E.isfinite(fn(b)))
    out = E.where(held, 0.0, a * fn(E.where(held, 1.0, b)))
    return E.where(E.isnan(b), math.nan, out)


def xlogy(input, other) -> Tensor:
    """``x * log(y)``, 0 where x == 0 (unless y is NaN), as ``torch.special.xlogy``.

    >>> tl.special.xlogy(tl.tensor([0.0, 1.0]), 0.0)        # [0., -inf]
    """
    return _xlog(input, other, E.log)


def xlog1py(input, other) -> Tensor:
    """``x * log1p(y)``, 0 where x == 0 (unless y is NaN), as ``torch.special.xlog1py``."""
    return _xlog(input, other, E.log1p)


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
    return 0.5 * erfc(to_float(to_tensor(input)) * (-1.0 / math.sqrt(2.0)))


def ndtri(input) -> Tensor:
    """Inverse of :func:`ndtr`: ``sqrt 2 * erfinv(2p - 1)``, as ``torch.special.ndtri`` (its
    relative precision drops for p below about 1e-8, where 2p - 1 rounds)."""
    return math.sqrt(2.0) * erfinv(2.0 * to_float(to_tensor(input)) - 1.0)


_LOG_NDTR_TAIL = -10.0


def log_ndtr(input) -> Tensor:
    """``log(ndtr(x))``, as ``torch.special.log_ndtr``: below x = -10 the asymptotic series
    of the normal tail (log of ndtr underflowed to -inf there, with a NaN gradient, from
    about x = -38 in float64 and -13 in float32); above, the log of :func:`ndtr`."""
    x = to_float(to_tensor(input))
    tail = x < _LOG_NDTR_TAIL
    # each branch evaluated where it is valid only, so neither sends NaN into the gradient
    xt = E.where(tail, x, _LOG_NDTR_TAIL)
    head = E.log(ndtr(E.where(tail, 0.0, x)))
    r = 1.0 / (xt * xt)
    series = 1.0 + r * (-1.0 + r * (3.0 + r * (-15.0 + r * (105.0 + r * -945.0))))
    asym = -0.5 * xt * xt - E.log(-xt) - 0.5 * math.log(2 * math.pi) + E.log(series)
    return E.where(tail, asym, head)


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
