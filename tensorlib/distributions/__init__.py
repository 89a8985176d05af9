"""Probability distributions with PyTorch's interface: sampling (``rsample`` keeps the
gradient through the sample), ``log_prob``, ``entropy`` and ``kl_divergence``.

>>> q = tl.distributions.Normal(mu, sigma)
>>> z = q.rsample()                            # differentiable in mu and sigma
>>> kl = tl.distributions.kl_divergence(q, tl.distributions.Normal(0.0, 1.0)).sum()

Families: Normal, Uniform, Exponential, Laplace, LogNormal, Cauchy, Gamma, Beta, Dirichlet,
StudentT, MultivariateNormal (all with ``rsample``; Gamma, Beta, Dirichlet and StudentT by
implicit reparameterization of the gamma draw), Bernoulli, Categorical, OneHotCategorical,
Poisson, Binomial, Geometric, and Independent.
"""
from .base import Distribution
from .continuous import Normal, Uniform
from .continuous_extra import (Beta, Cauchy, Dirichlet, Exponential, Gamma, Laplace, LogNormal,
                               StudentT)
from .discrete import Bernoulli, Categorical, OneHotCategorical
from .discrete_extra import Binomial, Geometric, Poisson
from .independent import Independent
from .kl import kl_divergence, register_kl
from .multivariate import MultivariateNormal

__all__ = ["Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "Dirichlet", "Distribution",
           "Exponential", "Gamma", "Geometric", "Independent", "Laplace", "LogNormal",
           "MultivariateNormal", "Normal", "OneHotCategorical", "Poisson", "StudentT", "Uniform",
           "kl_divergence", "register_kl"]
