"""Sampling from given probabilities: ``bernoulli`` and ``multinomial``, drawn through
``tl.rand`` so that a captured graph draws anew on every replay."""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from ..autograd.mode import state
from ._util import to_tensor


def bernoulli(p, generator=None) -> Tensor:
    """1 with probability ``p`` (elementwise, in [0, 1]), else 0, in ``p``'s dtype."""
    from ..creation import rand
    p = to_tensor(p)
    if p.dtype.kind != "f":
        raise TypeError(f"bernoulli: probabilities must be floating point, got {p.dtype}")
    if state.tracer is None and p.size and not bool(((p >= 0) & (p <= 1)).all().item()):
        raise ValueError("bernoulli: probabilities must lie in [0, 1]")
    u = rand(*p.shape, generator=generator, dtype=p.dtype, device=p.device)
    return (u < p.detach()).astype(p.dtype)


def multinomial(probs, num_samples: int, replacement: bool = False,
                generator=None) -> Tensor:
    """Class indices drawn from the non-negative weights ``probs`` ((K,) or (N, K), need not
    sum to 1), as PyTorch's ``multinomial``: ``num_samples`` per row, with or without
    replacement (without: the Gumbel-top-k trick, each class at most once).

    >>> tl.multinomial(tl.tensor([0.1, 0.0, 0.9]), 2)      # e.g. tensor([2, 0])
    """
    from ..creation import rand
    from .sorting import topk
    w = to_tensor(probs)
    if w.ndim not in (1, 2) or w.dtype.kind != "f":
        raise ValueError(f"multinomial: probs must be a 1-d or 2-d float tensor, got "
                         f"{w.dtype} of shape {tuple(w.shape)}")
    k = int(num_samples)
    K = w.shape[-1]
    if k < 1:
        raise ValueError(f"multinomial: num_samples must be positive, got {num_samples}")
    if not replacement and k > K:
        raise ValueError(f"multinomial: cannot draw {k} samples without replacement from "
                         f"{K} classes")
    if state.tracer is None and w.size:
        wd = w.numpy()
        if (wd < 0).any() or not np.isfinite(wd).all():
            raise ValueError("multinomial: probs must be finite and non-negative")
        nz = (wd > 0).sum(axis=-1)
        if (nz == 0).any():
            raise ValueError("multinomial: a row of probs sums to 0")
        if not replacement and (nz < k).any():
            raise ValueError(f"multinomial: {k} samples without replacement from a row with "
                             f"only {int(nz.min())} non-zero probabilities")
    w = w.detach().astype(np.float64)
    lead = tuple(w.shape[:-1])
    if replacement:             # inverse CDF: the first class whose cumulative weight exceeds u
        cdf = w.cumsum(axis=-1)
        u = rand(*lead, k, generator=generator, dtype=np.float64, device=w.device)
        u = u * cdf[..., -1:]
        idx = (cdf.unsqueeze(-2) <= u.unsqueeze(-1)).astype(np.int64).sum(axis=-1)
        return idx.clip(0, K - 1)
    u = rand(*lead, K, generator=generator, dtype=np.float64, device=w.device)
    gumbel = -(-(u.clip(1e-300, None)).log()).log()
    with np.errstate(divide="ignore"):      # log(0) = -inf: a class of weight 0 is never drawn
        logw = w.log()
    return topk(logw + gumbel, k, axis=-1)[1]
