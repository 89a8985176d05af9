"""``ExponentialFamily``: the base class of the distributions whose density is
``p_F(x; theta) = exp(<t(x), theta> - F(theta) + k(x))``, as ``torch.distributions``'.

A subclass gives its natural parameters ``theta`` (``_natural_params``), the log normalizer
``F`` (``_log_normalizer``) and the expected carrier measure ``E[k(x)]``
(``_mean_carrier_measure``); ``entropy`` and the KL divergence between two members of the
same family then follow from the Bregman divergence of ``F`` (Nielsen & Nock, "Entropies and
cross-entropies of exponential families"), with the gradient of ``F`` taken by autograd.
tensorlib's Normal, Exponential, Gamma, Beta, Dirichlet, Poisson, Bernoulli and Wishart are
subclasses (they keep their closed-form entropies and KL divergences, as PyTorch's).
"""
from __future__ import annotations

from .._tensor import Tensor
from .base import Distribution


def _bregman_grads(params: tuple, log_normalizer) -> tuple[list, Tensor, tuple]:
    """``params`` (a detached copy that requires grad for those that do not), ``F`` at
    them, and ``dF`` with its graph: the result stays differentiable in the distribution's
    parameters (PyTorch detaches them, so its KL has no gradient in ``p``)."""
    from ..autograd.engine import grad
    from ..autograd.mode import enable_grad, is_grad_enabled
    keep = is_grad_enabled()
    with enable_grad():
        leaves = [p if keep and p.requires_grad else p.detach().requires_grad_()
                  for p in params]
        lg = log_normalizer(*leaves)
        grads = grad(lg.sum(), leaves, create_graph=True)
    return leaves, lg, grads


def _plain(result: Tensor, params: tuple) -> Tensor:
    """``result`` detached when no parameter needs a gradient (the graph made for the
    log normalizer's gradient is then of no use)."""
    from ..autograd.mode import is_grad_enabled
    if is_grad_enabled() and any(t.requires_grad for t in params):
        return result
    return result.detach()


class ExponentialFamily(Distribution):
    """Base class of exponential-family distributions (``torch.distributions.
    ExponentialFamily``). Subclasses define ``_natural_params`` (a tuple of tensors),
    ``_log_normalizer(*natural_params)`` and ``_mean_carrier_measure``; ``entropy()``
    is then ``F(theta) - <theta, grad F(theta)> - E[k(x)]``, and ``kl_divergence`` between
    two distributions of the same subclass (without a closed-form rule) is the Bregman
    divergence ``F(theta_q) - F(theta_p) - <theta_q - theta_p, grad F(theta_p)>``.

    >>> class MyExp(tl.distributions.ExponentialFamily):
    ...     _natural_params = property(lambda self: (-self.rate,))
    ...     _mean_carrier_measure = 0
    ...     def _log_normalizer(self, x): return -(-x).log()
    """

    @property
    def _natural_params(self) -> tuple[Tensor, ...]:
        raise NotImplementedError(f"{type(self).__name__}: an ExponentialFamily subclass "
                                  "must define _natural_params")

    def _log_normalizer(self, *natural_params: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__}: an ExponentialFamily subclass "
                                  "must define _log_normalizer")

    @property
    def _mean_carrier_measure(self):
        raise NotImplementedError(f"{type(self).__name__}: an ExponentialFamily subclass "
                                  "must define _mean_carrier_measure for entropy()")

    def entropy(self) -> Tensor:
        """The entropy from the Bregman divergence of the log normalizer (PyTorch's)."""
        result = -self._mean_carrier_measure
        leaves, lg, grads = _bregman_grads(self._natural_params, self._log_normalizer)
        result = lg + result
        for th, g in zip(leaves, grads):
            result = result - (th * g).reshape(tuple(self.batch_shape) + (-1,)).sum(axis=-1)
        return _plain(result, self._natural_params)


def kl_expfamily(p: ExponentialFamily, q: ExponentialFamily) -> Tensor:
    """KL(p || q) for two members of one exponential family: the Bregman divergence of the
    log normalizer between the natural parameters (PyTorch's rule)."""
    if type(p) is not type(q):
        raise NotImplementedError(
            f"kl_divergence: no rule for {type(p).__name__} and {type(q).__name__} (add one "
            "with register_kl; as different exponential families, the Bregman divergence "
            "does not give their KL)")
    import numpy as np
    leaves, lg, grads = _bregman_grads(p._natural_params, p._log_normalizer)
    q_params = q._natural_params
    result = q._log_normalizer(*q_params) - lg
    nb = len(np.broadcast_shapes(tuple(p.batch_shape), tuple(q.batch_shape)))
    for pn, qn, g in zip(leaves, q_params, grads):
        term = (qn - pn) * g
        # the dims past the batch (a natural parameter may lack the event dims, as
        # Wishart's degrees of freedom; PyTorch's sum there also folds in the batch)
        k = max(term.ndim - nb, 0)
        result = result - (term.sum(axis=tuple(range(-k, 0))) if k else term)
    return _plain(result, tuple(p._natural_params) + tuple(q_params))
