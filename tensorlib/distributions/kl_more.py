"""The KL pairs of torch.distributions.kl across families (and Binomial, Geometric, Cauchy,
HalfNormal with themselves), with PyTorch's formulas, so the same values and gradients; a
pair whose KL is infinite everywhere (p's support is not inside q's) gives a constant inf.
Imported by the package after every family is defined (Gumbel and Pareto import ``kl``)."""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from ..ops.elementwise import log1p, where
from ..ops.special_fns import digamma, lgamma
from .continuous import Normal, Uniform
from .continuous_bernoulli import ContinuousBernoulli
from .continuous_extra import Beta, Cauchy, Exponential, Gamma, Laplace
from .continuous_more import Gumbel, Pareto
from .derived import HalfNormal
from .discrete import Bernoulli
from .discrete_extra import Binomial, Geometric, Poisson
from .kl import _kl_normal, register_kl


_EULER = 0.57721566490153286061


def _inf_like(t: Tensor) -> Tensor:
    from ..creation import full_like
    return full_like(t.detach(), math.inf)


def _xlogx(t: Tensor) -> Tensor:
    from ..special import xlogy
    return xlogy(t, t)


def _register_infinite(pairs, param: str) -> None:
    def fn(p, q):
        return _inf_like(getattr(p, param))
    for tq in pairs[1]:
        register_kl(pairs[0], tq)(fn)


_register_infinite((Beta, (Pareto,)), "concentration1")
_register_infinite((ContinuousBernoulli, (Pareto,)), "probs")
_register_infinite((Exponential, (Beta, ContinuousBernoulli, Pareto, Uniform)), "rate")
_register_infinite((Gamma, (Beta, ContinuousBernoulli, Pareto, Uniform)), "concentration")
_register_infinite((Gumbel, (Beta, ContinuousBernoulli, Exponential, Gamma, Pareto, Uniform)),
                   "loc")
_register_infinite((Laplace, (Beta, ContinuousBernoulli, Exponential, Gamma, Pareto, Uniform)),
                   "loc")
_register_infinite((Normal, (Beta, ContinuousBernoulli, Exponential, Gamma, Pareto, Uniform)),
                   "loc")
_register_infinite((Pareto, (Beta, ContinuousBernoulli, Uniform)), "scale")
_register_infinite((Poisson, (Bernoulli, Binomial)), "rate")


@register_kl(Binomial, Binomial)
def _kl_binomial(p: Binomial, q: Binomial) -> Tensor:
    if bool((p.total_count < q.total_count).any()):
        raise NotImplementedError("kl_divergence: KL between Binomials where q.total_count > "
                                  "p.total_count is not implemented (as PyTorch)")
    kl = p.total_count * (p.probs * (p.logits - q.logits) + log1p(-p.probs)
                          - log1p(-q.probs))
    return where(p.total_count > q.total_count, math.inf, kl)


@register_kl(Geometric, Geometric)
def _kl_geometric(p: Geometric, q: Geometric) -> Tensor:
    return -p.entropy() - log1p(-q.probs) / p.probs - q.logits


@register_kl(HalfNormal, HalfNormal)
def _kl_halfnormal(p: HalfNormal, q: HalfNormal) -> Tensor:
    return _kl_normal(p.base_dist, q.base_dist)


@register_kl(Bernoulli, Poisson)
def _kl_bernoulli_poisson(p: Bernoulli, q: Poisson) -> Tensor:
    return -p.entropy() - (p.probs * q.rate.log() - q.rate)


@register_kl(Beta, ContinuousBernoulli)
def _kl_beta_continuous_bernoulli(p: Beta, q: ContinuousBernoulli) -> Tensor:
    return -p.entropy() - p.mean * q.logits - log1p(-q.probs) - q._log_norm()


@register_kl(Beta, Exponential)
def _kl_beta_exponential(p: Beta, q: Exponential) -> Tensor:
    a, b = p.concentration1, p.concentration0
    return -p.entropy() - q.rate.log() + q.rate * (a / (a + b))


@register_kl(Beta, Gamma)
def _kl_beta_gamma(p: Beta, q: Gamma) -> Tensor:
    a, b = p.concentration1, p.concentration0
    t2 = lgamma(q.concentration) - q.concentration * q.rate.log()
    t3 = (q.concentration - 1.0) * (digamma(a) - digamma(a + b))
    return -p.entropy() + t2 - t3 + q.rate * a / (a + b)


@register_kl(Beta, Normal)
def _kl_beta_normal(p: Beta, q: Normal) -> Tensor:
    a, b = p.concentration1, p.concentration0
    mean = a / (a + b)
    var_q = q.scale * q.scale
    t2 = 0.5 * (var_q * (2 * math.pi)).log()
    t3 = (mean * (1.0 - mean) / (a + b + 1.0) + mean * mean) * 0.5
    return -p.entropy() + t2 + (t3 - q.loc * mean + 0.5 * q.loc * q.loc) / var_q


@register_kl(Beta, Uniform)
def _kl_beta_uniform(p: Beta, q: Uniform) -> Tensor:
    result = -p.entropy() + (q.high - q.low).log()
    return where((q.low > 0.0) | (q.high < 1.0), math.inf, result)


@register_kl(ContinuousBernoulli, Exponential)
def _kl_continuous_bernoulli_exponential(p: ContinuousBernoulli, q: Exponential) -> Tensor:
    return -p.entropy() - q.rate.log() + q.rate * p.mean


@register_kl(ContinuousBernoulli, Normal)
def _kl_continuous_bernoulli_normal(p: ContinuousBernoulli, q: Normal) -> Tensor:
    t2 = 0.5 * (math.log(2.0 * math.pi) + (q.loc / q.scale) ** 2) + q.scale.log()
    t3 = (p.variance + p.mean * p.mean - 2.0 * q.loc * p.mean) / (2.0 * q.scale * q.scale)
    return -p.entropy() + t2 + t3


@register_kl(ContinuousBernoulli, Uniform)
def _kl_continuous_bernoulli_uniform(p: ContinuousBernoulli, q: Uniform) -> Tensor:
    result = -p.entropy() + (q.high - q.low).log()
    # as PyTorch's (which tests q.low >= 0 or q.high <= 1)
    return where((q.low >= 0.0) | (q.high <= 1.0), math.inf, result)


@register_kl(Exponential, Gamma)
def _kl_exponential_gamma(p: Exponential, q: Gamma) -> Tensor:
    ratio = q.rate / p.rate
    c = q.concentration
    return -c * ratio.log() + ratio + lgamma(c) + c * _EULER - (1.0 + _EULER)


@register_kl(Exponential, Gumbel)
def _kl_exponential_gumbel(p: Exponential, q: Gumbel) -> Tensor:
    prod = p.rate * q.scale
    ratio = q.loc / q.scale
    return prod.log() - 1.0 - ratio + ratio.exp() * prod / (prod + 1.0) + prod.reciprocal()


@register_kl(Exponential, Normal)
def _kl_exponential_normal(p: Exponential, q: Normal) -> Tensor:
    var_q = q.scale * q.scale
    rate2 = p.rate * p.rate
    t1 = 0.5 * (rate2 * var_q * (2 * math.pi)).log()
    return t1 - 1.0 + (rate2.reciprocal() - q.loc / p.rate + 0.5 * q.loc * q.loc) / var_q


@register_kl(Gamma, Exponential)
def _kl_gamma_exponential(p: Gamma, q: Exponential) -> Tensor:
    return -p.entropy() - q.rate.log() + q.rate * p.concentration / p.rate


@register_kl(Gamma, Gumbel)
def _kl_gamma_gumbel(p: Gamma, q: Gumbel) -> Tensor:
    a = p.concentration
    prod = p.rate * q.scale
    ratio = q.loc / q.scale
    t1 = (a - 1.0) * digamma(a) - lgamma(a) - a
    t2 = prod.log() + a / prod
    t3 = ratio.exp() * (1.0 + prod.reciprocal()) ** (-a) - ratio
    return t1 + t2 + t3


@register_kl(Gamma, Normal)
def _kl_gamma_normal(p: Gamma, q: Normal) -> Tensor:
    a = p.concentration
    var_q = q.scale * q.scale
    rate2 = p.rate * p.rate
    t1 = 0.5 * (rate2 * var_q * (2 * math.pi)).log() - a - lgamma(a)
    t2 = 0.5 * (a * a + a) / rate2
    t3 = q.loc * a / p.rate
    return t1 + (a - 1.0) * digamma(a) + (t2 - t3 + 0.5 * q.loc * q.loc) / var_q


@register_kl(Gumbel, Normal)
def _kl_gumbel_normal(p: Gumbel, q: Normal) -> Tensor:
    r = p.scale / q.scale
    t1 = (r / math.sqrt(2 * math.pi)).log()
    t2 = (math.pi * r * 0.5) ** 2 / 3
    t3 = ((p.loc + p.scale * _EULER - q.loc) / q.scale) ** 2 * 0.5
    return -t1 + t2 + t3 - (_EULER + 1.0)


@register_kl(Laplace, Normal)
def _kl_laplace_normal(p: Laplace, q: Normal) -> Tensor:
    var_q = q.scale * q.scale
    r = p.scale * p.scale / var_q
    t1 = 0.5 * (2.0 * r / math.pi).log()
    return -t1 + r + (0.5 * p.loc * p.loc - p.loc * q.loc + 0.5 * q.loc * q.loc) / var_q - 1.0


@register_kl(Normal, Gumbel)
def _kl_normal_gumbel(p: Normal, q: Gumbel) -> Tensor:
    m = p.loc / q.scale
    v = (p.scale / q.scale) ** 2
    lr = q.loc / q.scale
    return (-0.5 * v.log() + m - lr + (-m + 0.5 * v + lr).exp()
            - 0.5 * (1.0 + math.log(2 * math.pi)))


@register_kl(Normal, Laplace)
def _kl_normal_laplace(p: Normal, q: Laplace) -> Tensor:
    from ..special import erf
    d = p.loc - q.loc
    z = d / p.scale
    t1 = (p.scale / q.scale).log()
    t2 = math.sqrt(2 / math.pi) * p.scale * (-0.5 * z * z).exp()
    t3 = d * erf(math.sqrt(0.5) * z)
    return -t1 + (t2 + t3) / q.scale - 0.5 * (1.0 + math.log(0.5 * math.pi))


@register_kl(Pareto, Exponential)
def _kl_pareto_exponential(p: Pareto, q: Exponential) -> Tensor:
    prod = p.scale * q.rate
    result = ((p.alpha / prod).log() - p.alpha.reciprocal()
              + p.alpha * prod / (p.alpha - 1.0) - 1.0)
    return where(p.alpha <= 1, math.inf, result)


@register_kl(Pareto, Gamma)
def _kl_pareto_gamma(p: Pareto, q: Gamma) -> Tensor:
    common = p.scale.log() + p.alpha.reciprocal()
    t1 = p.alpha.log() - common
    t2 = lgamma(q.concentration) - q.concentration * q.rate.log()
    t3 = (1.0 - q.concentration) * common
    t4 = q.rate * p.alpha * p.scale / (p.alpha - 1.0)
    return where(p.alpha <= 1, math.inf, t1 + t2 + t3 + t4 - 1.0)


@register_kl(Pareto, Normal)
def _kl_pareto_normal(p: Pareto, q: Normal) -> Tensor:
    var2 = 2.0 * q.scale * q.scale
    common = p.scale / (p.alpha - 1.0)
    t1 = (math.sqrt(2 * math.pi) * q.scale * p.alpha / p.scale).log()
    t3 = p.alpha * common * common / (p.alpha - 2.0)
    t4 = (p.alpha * common - q.loc) ** 2
    return where(p.alpha <= 2, math.inf, t1 - p.alpha.reciprocal() + (t3 + t4) / var2 - 1.0)


@register_kl(Uniform, Beta)
def _kl_uniform_beta(p: Uniform, q: Beta) -> Tensor:
    w = p.high - p.low
    t2 = (q.concentration1 - 1.0) * (_xlogx(p.high) - _xlogx(p.low) - w) / w
    t3 = (q.concentration0 - 1.0) * (_xlogx(1.0 - p.high) - _xlogx(1.0 - p.low) + w) / w
    t4 = (lgamma(q.concentration1) + lgamma(q.concentration0)
          - lgamma(q.concentration1 + q.concentration0))
    return where((p.high > 1.0) | (p.low < 0.0), math.inf, t3 + t4 - w.log() - t2)


@register_kl(Uniform, ContinuousBernoulli)
def _kl_uniform_continuous_bernoulli(p: Uniform, q: ContinuousBernoulli) -> Tensor:
    result = -p.entropy() - p.mean * q.logits - log1p(-q.probs) - q._log_norm()
    # as PyTorch's (which tests p.high >= 1 or p.low <= 0)
    return where((p.high >= 1.0) | (p.low <= 0.0), math.inf, result)


@register_kl(Uniform, Exponential)
def _kl_uniform_exponential(p: Uniform, q: Exponential) -> Tensor:
    result = q.rate * (p.high + p.low) / 2 - ((p.high - p.low) * q.rate).log()
    return where(p.low < 0.0, math.inf, result)


@register_kl(Uniform, Gamma)
def _kl_uniform_gamma(p: Uniform, q: Gamma) -> Tensor:
    w = p.high - p.low
    t2 = lgamma(q.concentration) - q.concentration * q.rate.log()
    t3 = (1.0 - q.concentration) * (_xlogx(p.high) - _xlogx(p.low) - w) / w
    t4 = q.rate * (p.high + p.low) / 2
    return where(p.low < 0.0, math.inf, -w.log() + t2 + t3 + t4)


@register_kl(Uniform, Gumbel)
def _kl_uniform_gumbel(p: Uniform, q: Gumbel) -> Tensor:
    common = q.scale / (p.high - p.low)
    hi = (p.high - q.loc) / q.scale
    lo = (p.low - q.loc) / q.scale
    return common.log() + 0.5 * (hi + lo) - common * ((-hi).exp() - (-lo).exp())


@register_kl(Uniform, Pareto)
def _kl_uniform_pareto(p: Uniform, q: Pareto) -> Tensor:
    w = p.high - p.low
    t1 = (q.alpha * q.scale ** q.alpha * w).log()
    t2 = (_xlogx(p.high) - _xlogx(p.low) - w) / w
    return where(p.low < q.scale, math.inf, t2 * (q.alpha + 1.0) - t1)


@register_kl(Cauchy, Cauchy)
def _kl_cauchy(p: Cauchy, q: Cauchy) -> Tensor:
    t1 = ((p.scale + q.scale) ** 2 + (p.loc - q.loc) ** 2).log()
    return t1 - (4.0 * p.scale * q.scale).log()


# --- exponential families (the Bregman divergence) and Wishart --------------------------
from .exp_family import ExponentialFamily, kl_expfamily  # noqa: E402
from .wishart import Wishart  # noqa: E402

register_kl(ExponentialFamily, ExponentialFamily)(kl_expfamily)


@register_kl(Wishart, Wishart)
def _kl_wishart(p: Wishart, q: Wishart) -> Tensor:
    """The closed form (PyTorch reaches the same value through its Bregman rule, whose
    gradient misses ``p``'s parameters): with ``V = L L^T``,
    ``n_q (log|L_q| - log|L_p|) + n_p/2 (|L_q^-1 L_p|_F^2 - d) + log Gamma_d(n_q/2)
    - log Gamma_d(n_p/2) + (n_p - n_q)/2 psi_d(n_p/2)``."""
    from ..creation import tensor
    from ..linalg import solve_triangular
    from .lkj_cholesky import mvlgamma
    d = p.event_shape[-1]
    lp, lq = p._scale_tril, q._scale_tril
    logdet_p = lp.diagonal(axis1=-2, axis2=-1).log().sum(axis=-1)
    logdet_q = lq.diagonal(axis1=-2, axis2=-1).log().sum(axis=-1)
    m = solve_triangular(lq, lp, upper=False)
    trace = (m * m).sum(axis=(-2, -1))
    halves = tensor(np.arange(d, dtype=np.float64) / 2, dtype=lp.dtype, device=lp.device)
    mvdigamma = digamma((p.df / 2).unsqueeze(-1) - halves).sum(axis=-1)
    return (q.df * (logdet_q - logdet_p) + p.df / 2 * (trace - d)
            + mvlgamma(q.df / 2, d) - mvlgamma(p.df / 2, d)
            + (p.df - q.df) / 2 * mvdigamma)
