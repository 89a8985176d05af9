"""Sampling from given probabilities: ``bernoulli`` and ``multinomial``, drawn through
``tl.rand`` so that a captured graph draws anew on every replay."""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from ..errors import InputError
from ..autograd.mode import state
from ._util import to_tensor


def bernoulli(input, p: float | None = None, *, generator=None) -> Tensor:
    """Draws of 1 or 0, as PyTorch's ``bernoulli``: ``bernoulli(input)`` draws 1 with the
    probability ``input`` holds (elementwise, in [0, 1], floating point) in ``input``'s
    dtype; ``bernoulli(input, p)`` draws 1 with the scalar probability ``p`` in ``input``'s
    shape and dtype (any dtype: only the shape and dtype of ``input`` are used).

    >>> tl.bernoulli(tl.tensor([0.0, 1.0]))                 # tensor([0., 1.])
    >>> tl.bernoulli(tl.zeros(2, 3), 0.5, generator=g)       # a (2, 3) mask of 0s and 1s
    """
    from ..creation import rand
    x = to_tensor(input)
    if p is not None:
        if isinstance(p, Tensor):
            if p.numel() != 1:
                raise ValueError(f"bernoulli: p must be a number, got a tensor of shape "
                                 f"{tuple(p.shape)}; pass the probabilities as input")
            p = p.item()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
            raise TypeError(f"bernoulli: p must be a number, got {type(p).__name__}")
        if not 0 <= p <= 1:
            raise ValueError(f"bernoulli: p must lie in [0, 1], got p={p}")
        # float64 draws, as Tensor.bernoulli_ makes them: the same generator state gives
        # the same mask through either spelling, whatever input's dtype
        u = rand(*x.shape, generator=generator, dtype=np.float64, device=x.device)
        return (u < float(p)).astype(x.dtype)
    if x.dtype.kind != "f":
        raise TypeError(f"bernoulli: probabilities must be floating point, got {x.dtype}")
    if state.tracer is None and x.size and not bool(((x >= 0) & (x <= 1)).all().item()):
        raise ValueError("bernoulli: probabilities must lie in [0, 1]")
    u = rand(*x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return (u < x.detach()).astype(x.dtype)


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
        raise InputError(f"multinomial: probs must be a 1-d or 2-d float tensor, got "
                         f"{w.dtype} of shape {tuple(w.shape)}")
    k = int(num_samples)
    K = w.shape[-1]
    if k < 1:
        raise InputError(f"multinomial: num_samples must be positive, got {num_samples}")
    if not replacement and k > K:
        raise InputError(f"multinomial: cannot draw {k} samples without replacement from "
                         f"{K} classes")
    if state.tracer is None and w.size:
        wd = w.numpy()
        if (wd < 0).any() or not np.isfinite(wd).all():
            raise InputError("multinomial: probs must be finite and non-negative")
        nz = (wd > 0).sum(axis=-1)
        if (nz == 0).any():
            raise InputError("multinomial: a row of probs sums to 0")
        if not replacement and (nz < k).any():
            raise InputError(f"multinomial: {k} samples without replacement from a row with "
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
    # log(0) = -inf: a class of weight 0 is never drawn. Spelled with where, not log(0), so
    # that no replay of a captured graph (whose kernels run outside any errstate) warns
    from .elementwise import where
    pos = w > 0
    logw = where(pos, where(pos, w, 1.0).log(), -np.inf)
    return topk(logw + gumbel, k, axis=-1)[1]
