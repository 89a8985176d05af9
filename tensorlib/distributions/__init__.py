"""Probability distributions with PyTorch's interface: sampling (``rsample`` keeps the
gradient through the sample), ``log_prob``, ``entropy`` and ``kl_divergence``.

>>> q = tl.distributions.Normal(mu, sigma)
>>> z = q.rsample()                            # differentiable in mu and sigma
>>> kl = tl.distributions.kl_divergence(q, tl.distributions.Normal(0.0, 1.0)).sum()
"""
from .base import Distribution
from .continuous import Normal, Uniform
from .discrete import Bernoulli, Categorical, OneHotCategorical
from .independent import Independent
from .kl import kl_divergence, register_kl

__all__ = ["Bernoulli", "Categorical", "Distribution", "Independent", "Normal",
           "OneHotCategorical", "Uniform", "kl_divergence", "register_kl"]
