"""Probability distributions with PyTorch's interface: sampling (``rsample`` keeps the
gradient through the sample), ``log_prob``, ``entropy`` and ``kl_divergence``.

>>> q = tl.distributions.Normal(mu, sigma)
>>> z = q.rsample()                            # differentiable in mu and sigma
>>> kl = tl.distributions.kl_divergence(q, tl.distributions.Normal(0.0, 1.0)).sum()

Families: Normal, Uniform, Exponential, Laplace, LogNormal, Cauchy, Gamma, Beta, Dirichlet,
StudentT, MultivariateNormal (all with ``rsample``; Gamma, Beta, Dirichlet and StudentT by
implicit reparameterization of the gamma draw), Bernoulli, Categorical, OneHotCategorical,
Poisson, Binomial, Geometric, and Independent; LowRankMultivariateNormal, ContinuousBernoulli,
RelaxedBernoulli, RelaxedOneHotCategorical (reparameterized), MixtureSameFamily, and
TransformedDistribution over the bijections of ``tl.distributions.transforms``.
"""
from . import constraints, transforms
from .base import Distribution
from .continuous import Normal, Uniform
from .continuous_bernoulli import ContinuousBernoulli
from .continuous_extra import (Beta, Cauchy, Dirichlet, Exponential, Gamma, Laplace, LogNormal,
                               StudentT)
from .discrete import Bernoulli, Categorical, OneHotCategorical
from .discrete_extra import Binomial, Geometric, Poisson
from .independent import Independent
from .kl import kl_divergence, register_kl
from .lowrank_mvn import LowRankMultivariateNormal
from .mixture import MixtureSameFamily
from .multivariate import MultivariateNormal
from .relaxed import (ExpRelaxedCategorical, LogitRelaxedBernoulli, RelaxedBernoulli,
                      RelaxedOneHotCategorical)
from .transformed import TransformedDistribution

__all__ = ["Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "ContinuousBernoulli",
           "Dirichlet", "Distribution", "ExpRelaxedCategorical", "Exponential", "Gamma",
           "Geometric", "Independent", "Laplace", "LogNormal", "LogitRelaxedBernoulli",
           "LowRankMultivariateNormal", "MixtureSameFamily", "MultivariateNormal", "Normal",
           "OneHotCategorical", "Poisson", "RelaxedBernoulli", "RelaxedOneHotCategorical",
           "StudentT", "TransformedDistribution", "Uniform", "constraints", "kl_divergence",
           "register_kl", "transforms"]
