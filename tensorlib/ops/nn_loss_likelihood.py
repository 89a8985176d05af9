"""Negative log-likelihood losses for regression and counts: Gaussian and Poisson
(PyTorch's definitions), composed of core ops."""
from __future__ import annotations

import math

from .._state import state
from ..amp.cast import autocast_call
from .._tensor import Tensor
from . import elementwise as E
from .nn_loss import _pair, _reduce, legacy_reduction
from .nn_util import as_float_tensor, check_reduction


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """``0.5 * (log(var) + (input - target)**2 / var)`` (+ ``0.5 log 2 pi`` with ``full``):
    ``input`` is a predicted mean, ``var`` its predicted variance (broadcast against it).
    Variances below ``eps`` are raised to ``eps`` in value only, as in PyTorch, so their
    gradient still flows; a negative variance raises ValueError, as PyTorch's."""
    check_reduction("gaussian_nll_loss", reduction)
    x, y = _pair("gaussian_nll_loss", input, target)
    v = as_float_tensor(var, "gaussian_nll_loss", "var")
    if v.ndim == x.ndim - 1 and tuple(v.shape) == tuple(x.shape[:-1]):
        v = v.unsqueeze(-1)                     # one variance per sample (homoscedastic)
    if state.tracer is None and bool((v < 0).any()):
        # PyTorch's check (a captured graph, which cannot raise on data, clamps instead)
        raise ValueError("gaussian_nll_loss: var has negative entry/entries")
    v = v + (v.clip(eps, None) - v).detach()
    d = x - y
    loss = 0.5 * (v.log() + d * d / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)


def poisson_nll_loss(input, target, log_input: bool = True, full: bool = False,
                     eps: float = 1e-8, reduction: str = "mean", *,
                     size_average: bool | None = None, reduce: bool | None = None) -> Tensor:
    """The Poisson negative log-likelihood of counts ``target`` with rate ``exp(input)``
    (``log_input``) or ``input``; ``full`` adds Stirling's approximation of ``log(target!)``
    for targets above 1."""
    reduction = legacy_reduction(size_average, reduce, reduction)
    if state.autocast is not None:
        return autocast_call(poisson_nll_loss, "poisson_nll_loss", input, target, log_input, full,
                             eps, reduction)
    check_reduction("poisson_nll_loss", reduction)
    x, y = _pair("poisson_nll_loss", input, target)
    loss = x.exp() - y * x if log_input else x - y * (x + eps).log()
    if full:
        safe = E.where(y > 1, y, 2.0)
        stirling = safe * safe.log() - safe + 0.5 * (2 * math.pi * safe).log()
        loss = loss + E.where(y > 1, stirling, 0.0)
    return _reduce(loss, reduction)

