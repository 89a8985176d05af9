"""KL divergences KL(p || q) between distributions, looked up by their types."""
from __future__ import annotations

import math
from collections.abc import Callable

from .._tensor import Tensor
from ..ops.elementwise import log, where
from ..ops.special_fns import digamma, lgamma
from .base import Distribution
from .continuous import Normal, Uniform
from .continuous_bernoulli import ContinuousBernoulli
from .continuous_extra import Beta, Dirichlet, Exponential, Gamma, Laplace, LogNormal
from .discrete import Bernoulli, Categorical, OneHotCategorical
from .discrete_extra import Poisson
from .independent import Independent, sum_rightmost
from .lowrank_mvn import (LowRankMultivariateNormal, lowrank_logdet, lowrank_mahalanobis,
                          woodbury_a)
from .multivariate import MultivariateNormal, _batch_solve, half_log_det, mahalanobis
from .transformed import TransformedDistribution

_KL: dict[tuple[type, type], Callable] = {}


def register_kl(type_p: type, type_q: type):
    """Decorator: register ``fn(p, q)`` as KL(p || q) for these two distribution types."""
    def deco(fn):
        _KL[(type_p, type_q)] = fn
        return fn
    return deco


def kl_divergence(p: Distribution, q: Distribution) -> Tensor:
    """KL(p || q), elementwise over the batch shape; differentiable in both."""
    for tp in type(p).__mro__:
        for tq in type(q).__mro__:
            fn = _KL.get((tp, tq))
            if fn is not None:
                return fn(p, q)
    raise NotImplementedError(f"kl_divergence: no rule for {type(p).__name__} and "
                              f"{type(q).__name__} (add one with register_kl)")


@register_kl(Normal, Normal)
def _kl_normal(p: Normal, q: Normal) -> Tensor:
    r = p.scale / q.scale
    d = (p.loc - q.loc) / q.scale
    return 0.5 * (r * r + d * d - 1.0) - log(r)


@register_kl(Bernoulli, Bernoulli)
def _kl_bernoulli(p: Bernoulli, q: Bernoulli) -> Tensor:
    from ..ops.elementwise import softplus
    # log p - log q and log(1-p) - log(1-q) from the logits, without log(0)
    t1 = p.probs * (softplus(-q.logits) - softplus(-p.logits))
    t2 = (1.0 - p.probs) * (softplus(q.logits) - softplus(p.logits))
    # probs of exactly 0 or 1 had their logits clamped, which would make the KL finite; logits
    # given directly are exact (a probs that underflowed from them is not a true 0)
    if getattr(q, "_from_probs", True):
        t1 = where(q.probs == 0, math.inf, t1)
        t2 = where(q.probs == 1, math.inf, t2)
    return where(p.probs == 0, 0.0, t1) + where(p.probs == 1, 0.0, t2)


@register_kl(Categorical, Categorical)
def _kl_categorical(p: Categorical, q: Categorical) -> Tensor:
    # where p has probability 0 the term is 0; masking the log ratio (not the product)
    # also keeps the gradient finite there (0 * -inf would be NaN)
    zero = p.probs == 0
    t = p.probs * where(zero, 0.0, p.logits - q.logits)
    # a class q cannot draw that p can: infinite (q's logit there is only clamped)
    return where((q.probs == 0) & ~zero, math.inf, t).sum(axis=-1)


@register_kl(OneHotCategorical, OneHotCategorical)
def _kl_onehot_categorical(p: OneHotCategorical, q: OneHotCategorical) -> Tensor:
    return _kl_categorical(p._categorical, q._categorical)


@register_kl(Independent, Independent)
def _kl_independent(p: Independent, q: Independent) -> Tensor:
    if p.reinterpreted_batch_ndims != q.reinterpreted_batch_ndims:
        raise NotImplementedError("kl_divergence: Independent distributions that reinterpret "
                                  "different numbers of batch dims")
    return sum_rightmost(kl_divergence(p.base_dist, q.base_dist), p.reinterpreted_batch_ndims)


@register_kl(Uniform, Uniform)
def _kl_uniform(p: Uniform, q: Uniform) -> Tensor:
    inside = (q.low <= p.low) & (p.high <= q.high)
    return where(inside, log((q.high - q.low) / (p.high - p.low)), math.inf)


@register_kl(Uniform, Normal)
def _kl_uniform_normal(p: Uniform, q: Normal) -> Tensor:
    width = p.high - p.low
    t1 = log(math.sqrt(2 * math.pi) * q.scale / width)
    t2 = width * width / 12
    t3 = ((p.high + p.low - 2 * q.loc) / 2) ** 2
    return t1 + 0.5 * (t2 + t3) / (q.scale * q.scale)


@register_kl(Exponential, Exponential)
def _kl_exponential(p: Exponential, q: Exponential) -> Tensor:
    r = q.rate / p.rate
    return r - log(r) - 1.0


@register_kl(Laplace, Laplace)
def _kl_laplace(p: Laplace, q: Laplace) -> Tensor:
    r = p.scale / q.scale
    d = (p.loc - q.loc).abs()
    return -log(r) + d / q.scale + r * (-d / p.scale).exp() - 1.0


@register_kl(Gamma, Gamma)
def _kl_gamma(p: Gamma, q: Gamma) -> Tensor:
    a, b, c, d = p.concentration, p.rate, q.concentration, q.rate
    return (c * log(b / d) + lgamma(c) - lgamma(a) + (a - c) * digamma(a)
            + (d - b) * (a / b))


@register_kl(Beta, Beta)
def _kl_beta(p: Beta, q: Beta) -> Tensor:
    a1, b1, a2, b2 = p.concentration1, p.concentration0, q.concentration1, q.concentration0
    s1, s2 = a1 + b1, a2 + b2
    return (lgamma(a2) + lgamma(b2) + lgamma(s1) - lgamma(a1) - lgamma(b1) - lgamma(s2)
            + (a1 - a2) * digamma(a1) + (b1 - b2) * digamma(b1) + (s2 - s1) * digamma(s1))


@register_kl(Dirichlet, Dirichlet)
def _kl_dirichlet(p: Dirichlet, q: Dirichlet) -> Tensor:
    cp, cq = p.concentration, q.concentration
    sp, sq = cp.sum(axis=-1), cq.sum(axis=-1)
    t = (cp - cq) * (digamma(cp) - digamma(sp).unsqueeze(-1))
    return lgamma(sp) - lgamma(sq) - (lgamma(cp) - lgamma(cq)).sum(axis=-1) + t.sum(axis=-1)


@register_kl(Poisson, Poisson)
def _kl_poisson(p: Poisson, q: Poisson) -> Tensor:
    # as PyTorch: rate_p (log rate_p - log rate_q) - (rate_p - rate_q); NaN at rate_p = 0
    return p.rate * (log(p.rate) - log(q.rate)) - (p.rate - q.rate)


@register_kl(LogNormal, LogNormal)
def _kl_lognormal(p: LogNormal, q: LogNormal) -> Tensor:
    return _kl_normal(p.base_dist, q.base_dist)


@register_kl(MultivariateNormal, MultivariateNormal)
def _kl_mvn(p: MultivariateNormal, q: MultivariateNormal) -> Tensor:
    if p.event_shape != q.event_shape:
        raise ValueError(f"kl_divergence: MultivariateNormals of different event shapes "
                         f"({p.event_shape} and {q.event_shape})")
    n = p.event_shape[0]
    lp, lq = p._unbroadcasted_scale_tril, q._unbroadcasted_scale_tril
    m = _batch_solve(lq, lp)                       # Lq^-1 Lp: tr(Sq^-1 Sp) = |m|_F^2
    term2 = (m * m).sum(axis=(-2, -1))
    term3 = mahalanobis(lq, q.loc - p.loc)
    return half_log_det(lq) - half_log_det(lp) + 0.5 * (term2 + term3 - n)


def _check_events(p: Distribution, q: Distribution) -> None:
    if p.event_shape != q.event_shape:
        raise ValueError(f"kl_divergence: {type(p).__name__} and {type(q).__name__} of "
                         f"different event shapes ({p.event_shape} and {q.event_shape})")


def _trace_xxt(x: Tensor) -> Tensor:
    """``tr(X X^T)`` over the last two dims."""
    return (x * x).sum(axis=(-2, -1))


def _lowrank_parts(p: LowRankMultivariateNormal):
    return p._unbroadcasted_cov_factor, p._unbroadcasted_cov_diag, p._capacitance_tril


@register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)
def _kl_lowrank_lowrank(p: LowRankMultivariateNormal, q: LowRankMultivariateNormal) -> Tensor:
    _check_events(p, q)
    pw, pd, pc = _lowrank_parts(p)
    qw, qd, qc = _lowrank_parts(q)
    term1 = lowrank_logdet(qw, qd, qc) - lowrank_logdet(pw, pd, pc)
    term3 = lowrank_mahalanobis(qw, qd, q.loc - p.loc, qc)
    # tr(Sq^-1 Sp) with Sq^-1 = qD^-1 - A^T A and Sp = pD + pW pW^T
    a = woodbury_a(qw, qd, qc)
    term2 = ((pd / qd).sum(axis=-1) + _trace_xxt(pw * qd.rsqrt().unsqueeze(-1))
             - _trace_xxt(a * pd.sqrt().unsqueeze(-2)) - _trace_xxt(a @ pw))
    return 0.5 * (term1 + term2 + term3 - p.event_shape[0])


@register_kl(MultivariateNormal, LowRankMultivariateNormal)
def _kl_mvn_lowrank(p: MultivariateNormal, q: LowRankMultivariateNormal) -> Tensor:
    _check_events(p, q)
    qw, qd, qc = _lowrank_parts(q)
    lp = p._unbroadcasted_scale_tril.tril()
    term1 = lowrank_logdet(qw, qd, qc) - 2.0 * half_log_det(lp)
    term3 = lowrank_mahalanobis(qw, qd, q.loc - p.loc, qc)
    a = woodbury_a(qw, qd, qc)
    term2 = _trace_xxt(lp * qd.rsqrt().unsqueeze(-1)) - _trace_xxt(a @ lp)
    return 0.5 * (term1 + term2 + term3 - p.event_shape[0])


@register_kl(LowRankMultivariateNormal, MultivariateNormal)
def _kl_lowrank_mvn(p: LowRankMultivariateNormal, q: MultivariateNormal) -> Tensor:
    _check_events(p, q)
    pw, pd, pc = _lowrank_parts(p)
    lq = q._unbroadcasted_scale_tril
    term1 = 2.0 * half_log_det(lq) - lowrank_logdet(pw, pd, pc)
    term3 = mahalanobis(lq, q.loc - p.loc)
    from ..ops.torch_api import diag_embed
    # tr(Sq^-1 Sp) = |Lq^-1 pW|_F^2 + |Lq^-1 sqrt(pD)|_F^2
    term2 = _trace_xxt(_batch_solve(lq, pw)) + _trace_xxt(_batch_solve(lq, diag_embed(pd.sqrt())))
    return 0.5 * (term1 + term2 + term3 - p.event_shape[0])


@register_kl(TransformedDistribution, TransformedDistribution)
def _kl_transformed(p: TransformedDistribution, q: TransformedDistribution) -> Tensor:
    # as PyTorch: only through the same transforms, where KL is the bases'
    if p.transforms != q.transforms:
        raise NotImplementedError("kl_divergence: TransformedDistributions with different "
                                  "transforms")
    if p.event_shape != q.event_shape:
        raise NotImplementedError("kl_divergence: TransformedDistributions of different "
                                  "event shapes")
    return kl_divergence(p.base_dist, q.base_dist)


@register_kl(ContinuousBernoulli, ContinuousBernoulli)
def _kl_continuous_bernoulli(p: ContinuousBernoulli, q: ContinuousBernoulli) -> Tensor:
    return (p.mean * (p.logits - q.logits) + p._log_norm() + (-p.probs).log1p()
            - q._log_norm() - (-q.probs).log1p())

