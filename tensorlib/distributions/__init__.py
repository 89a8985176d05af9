"""Probability distributions with PyTorch's interface: sampling (``rsample`` keeps the
gradient through the sample), ``log_prob``, ``entropy`` and ``kl_divergence``.

>>> q = tl.distributions.Normal(mu, sigma)
>>> z = q.rsample()                            # differentiable in mu and sigma
>>> kl = tl.distributions.kl_divergence(q, tl.distributions.Normal(0.0, 1.0)).sum()

Families: Normal, Uniform, Exponential, Laplace, LogNormal, Cauchy, Gamma, Beta, Dirichlet,
StudentT, MultivariateNormal (all with ``rsample``; Gamma, Beta, Dirichlet and StudentT by
implicit reparameterization of the gamma draw; inside ``tl.function`` they sample without
gradient), Bernoulli, Categorical, OneHotCategorical,
Poisson, Binomial, Geometric, Multinomial, and Independent; LowRankMultivariateNormal,
ContinuousBernoulli, RelaxedBernoulli, RelaxedOneHotCategorical (reparameterized),
MixtureSameFamily, LKJCholesky (correlation-matrix Cholesky factors), Wishart
(positive-definite matrices), LogisticNormal, HalfNormal, HalfCauchy, Chi2,
Gumbel, Weibull, Pareto, GeneralizedPareto, Kumaraswamy, InverseGamma, FisherSnedecor
(reparameterized), VonMises, NegativeBinomial, OneHotCategoricalStraightThrough, and
TransformedDistribution over the bijections of ``tl.distributions.transforms`` (also
exported here, as PyTorch's). ``biject_to(constraint)`` / ``transform_to(constraint)`` give a
transform from unconstrained space onto a constraint (``constraint_registry``).

>>> u = tl.zeros(3, requires_grad=True)
>>> probs = tl.distributions.biject_to(tl.distributions.constraints.simplex)(u)   # 4-simplex
"""
from . import constraint_registry, constraints, transforms
from .base import Distribution
from .exp_family import ExponentialFamily
from .constraint_registry import biject_to, transform_to
from .continuous import Normal, Uniform
from .continuous_bernoulli import ContinuousBernoulli
from .continuous_extra import (
                               Beta,
                               Cauchy,
                               Dirichlet,
                               Exponential,
                               Gamma,
                               Laplace,
                               LogNormal,
                               StudentT,
)
from .continuous_more import (
                               FisherSnedecor,
                               GeneralizedPareto,
                               Gumbel,
                               InverseGamma,
                               Kumaraswamy,
                               Pareto,
                               VonMises,
                               Weibull,
)
from .derived import Chi2, HalfCauchy, HalfNormal, LogisticNormal
from .discrete import Bernoulli, Categorical, OneHotCategorical
from .discrete_extra import Binomial, Geometric, Poisson
from .discrete_more import NegativeBinomial, OneHotCategoricalStraightThrough
from .independent import Independent
from .kl import kl_divergence, register_kl
from . import kl_more  # noqa: F401,E402  (registers the cross-family KL pairs)
from .lkj_cholesky import LKJCholesky
from .lowrank_mvn import LowRankMultivariateNormal
from .mixture import MixtureSameFamily
from .multinomial import Multinomial
from .multivariate import MultivariateNormal
from .relaxed import (
                               ExpRelaxedCategorical,
                               LogitRelaxedBernoulli,
                               RelaxedBernoulli,
                               RelaxedOneHotCategorical,
)
from .transformed import TransformedDistribution
from .transforms import (
                               AbsTransform,
                               AffineTransform,
                               CatTransform,
                               ComposeTransform,
                               CorrCholeskyTransform,
                               CumulativeDistributionTransform,
                               ExpTransform,
                               IndependentTransform,
                               LowerCholeskyTransform,
                               PositiveDefiniteTransform,
                               PowerTransform,
                               ReshapeTransform,
                               SigmoidTransform,
                               SoftmaxTransform,
                               SoftplusTransform,
                               StackTransform,
                               StickBreakingTransform,
                               TanhTransform,
                               Transform,
                               identity_transform,
)
from .wishart import Wishart

__all__ = ["Bernoulli", "Beta", "Binomial", "Categorical", "Cauchy", "ContinuousBernoulli",
           "Dirichlet", "Distribution", "ExpRelaxedCategorical", "Exponential",
           "ExponentialFamily", "Gamma",
           "Geometric", "Independent", "Laplace", "LogNormal", "LogitRelaxedBernoulli",
           "LowRankMultivariateNormal", "MixtureSameFamily", "MultivariateNormal", "Normal",
           "OneHotCategorical", "Poisson", "RelaxedBernoulli", "RelaxedOneHotCategorical",
           "StudentT", "TransformedDistribution", "Uniform", "constraints", "kl_divergence",
           "register_kl", "transforms", "AbsTransform", "AffineTransform", "CatTransform",
           "ComposeTransform", "CorrCholeskyTransform", "CumulativeDistributionTransform",
           "ExpTransform", "IndependentTransform", "LowerCholeskyTransform",
           "PositiveDefiniteTransform", "PowerTransform", "ReshapeTransform",
           "SigmoidTransform", "SoftmaxTransform", "SoftplusTransform", "StackTransform",
           "StickBreakingTransform", "TanhTransform", "Transform", "biject_to",
           "constraint_registry", "identity_transform", "transform_to", "LKJCholesky",
           "Wishart", "Chi2", "HalfCauchy", "HalfNormal", "LogisticNormal", "Multinomial",
           "FisherSnedecor", "GeneralizedPareto", "Gumbel", "InverseGamma", "Kumaraswamy",
           "NegativeBinomial", "OneHotCategoricalStraightThrough", "Pareto", "VonMises",
           "Weibull"]
