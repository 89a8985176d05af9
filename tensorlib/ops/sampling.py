"""Sampling from given probabilities: ``bernoulli`` and ``multinomial``, drawn through
``tl.rand`` so that a captured graph draws anew on every replay."""
from __future__ import annotations

import numpy as np

from .._apply import apply
from .._tensor import Tensor
from ..errors import InputError
from ..autograd.mode import state
from .registry import OpDef, register
from ._util import to_tensor

# up to this many classes a row is searched by counting the cdf entries below each draw
# (one vectorised pass over all rows); above it, one binary search per row
_COUNT_MAX_K = 32


def cdf_search(cdf: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The first index ``i`` with ``cdf[..., i] >= target`` along the last dims ((..., K) and
    (..., k), same leading dims): ``searchsorted(side='left')`` row by row, int64, clipped
    to ``K - 1``. With ``target`` in ``(0, total]`` and ``cdf`` a cumulative sum of
    non-negative weights, a class of weight 0 (``cdf[i] == cdf[i - 1]`` or ``cdf[0] == 0``)
    is never the answer."""
    K = cdf.shape[-1]
    lead = cdf.shape[:-1]
    c2 = cdf.reshape(-1, K)
    t2 = target.reshape(c2.shape[0], -1)
    if K <= _COUNT_MAX_K:
        out = np.empty(t2.shape, np.int64)
        step = max(1, (1 << 22) // max(1, t2.shape[1] * K))   # bounded temporaries
        for r in range(0, c2.shape[0], step):
            out[r:r + step] = np.count_nonzero(
                c2[r:r + step, None, :] < t2[r:r + step, :, None], axis=-1)
    else:
        out = np.empty(t2.shape, np.int64)
        for r in range(c2.shape[0]):
            out[r] = np.searchsorted(c2[r], t2[r], side="left")
    np.minimum(out, K - 1, out=out)
    return out.reshape(lead + (t2.shape[1],))


def _draw_fwd(xp, w, u):
    # the generic (CuPy) form: O(k K) per row, as a count of the cdf entries below u
    cdf = xp.cumsum(w.astype(np.float64), axis=-1)
    t = (1.0 - u) * cdf[..., -1:]
    idx = (cdf[..., None, :] < t[..., :, None]).sum(axis=-1).astype(np.int64)
    return xp.minimum(idx, w.shape[-1] - 1)


def _draw_cpu(w, u):
    with np.errstate(over="ignore"):
        cdf = np.cumsum(w, axis=-1, dtype=np.float64)
    if cdf.size and not np.isfinite(cdf[..., -1]).all():
        # finite weights whose sum overflows: scaled by each row's largest first
        w64 = w.astype(np.float64)
        cdf = np.cumsum(w64 / w64.max(axis=-1, keepdims=True), axis=-1)
    return cdf_search(cdf, (1.0 - u) * cdf[..., -1:])


MULTINOMIAL_DRAW = register(OpDef(
    "multinomial_draw", _draw_fwd, kernels={"cpu": _draw_cpu},
    infer=lambda w, u: (tuple(u[0]), np.dtype(np.int64)),
    cost=lambda i, o, **a: (int(np.prod(i[0][0])) + int(np.prod(i[1][0])) *
                            max(1, int(np.log2(max(2, i[0][0][-1])))),
                            8 * (int(np.prod(i[0][0])) + 2 * int(np.prod(i[1][0])))),
    saves=False,
    doc="class indices drawn by inverse CDF: w (..., K) non-negative weights, u (..., k) "
        "uniform in [0, 1); the first class whose cumulative weight reaches (1 - u) * total "
        "(a binary search per draw on the CPU)"))


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
    replacement (with: a binary search of each row's cumulative weights per draw,
    O(K + k log K); without: the Gumbel-top-k trick, O(K) per row, each class at most once).
    A class of weight 0 is never drawn. Negative, inf or NaN weights, or a row summing to 0,
    raise an InputError (PyTorch's RuntimeError); in a captured graph they are not checked.
    ``generator`` (a ``tl.Generator``) makes the draws reproducible within tensorlib.

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
        # two passes: a NaN makes the min NaN, an inf makes the sum inf (PyTorch's checks)
        with np.errstate(invalid="ignore", over="ignore"):
            lo, total = wd.min(axis=-1), wd.sum(axis=-1, dtype=np.float64)
        if not (bool((lo >= 0).all()) and (bool(np.isfinite(total).all())
                                           or bool(np.isfinite(wd).all()))):
            raise InputError("multinomial: probs must be finite and non-negative (probability "
                             "tensor contains either inf, nan or element < 0)")
        if bool((total <= 0).any()):
            raise InputError("multinomial: a row of probs sums to 0 (invalid multinomial "
                             "distribution)")
        if not replacement:
            nz = np.count_nonzero(wd, axis=-1)
            if (nz < k).any():
                raise InputError(f"multinomial: {k} samples without replacement from a row "
                                 f"with only {int(nz.min())} non-zero probabilities")
    lead = tuple(w.shape[:-1])
    if replacement:
        # inverse CDF, a binary search per draw: O(K + k log K) per row, no (k, K) temporary
        u = rand(*lead, k, generator=generator, dtype=np.float64, device=w.device)
        return apply(MULTINOMIAL_DRAW, w.detach(), u)
    w = w.detach().astype(np.float64)
    u = rand(*lead, K, generator=generator, dtype=np.float64, device=w.device)
    gumbel = -(-(u.clip(1e-300, None)).log()).log()
    # log(0) = -inf: a class of weight 0 is never drawn. Spelled with where, not log(0), so
    # that no replay of a captured graph (whose kernels run outside any errstate) warns
    from .elementwise import where
    pos = w > 0
    logw = where(pos, where(pos, w, 1.0).log(), -np.inf)
    return topk(logw + gumbel, k, axis=-1)[1]


def binomial(count, prob, generator=None) -> Tensor:
    """Draws from Binomial(``count``, ``prob``) elementwise, as ``torch.binomial``: ``count``
    (whole numbers of trials, >= 0) and ``prob`` (in [0, 1]) are floating tensors of one
    dtype that broadcast together; the result has their broadcast shape and that dtype.
    ``generator`` (a ``tl.Generator``) makes the draws reproducible within tensorlib (the
    stream is NumPy's, not PyTorch's). Not differentiable; drawn on the host, so it cannot
    be captured in a graph.

    >>> tl.binomial(tl.full((3,), 10.0), tl.full((3,), 0.5))   # e.g. tensor([4., 6., 5.])
    """
    from ..random import Generator, rng
    from ..creation import tensor
    from ..distributions._gamma import no_capture
    c, p = to_tensor(count), to_tensor(prob)
    if c.dtype.kind != "f" or p.dtype.kind != "f":
        raise TypeError(f"binomial: count and prob must be floating-point tensors, got "
                        f"{c.dtype} and {p.dtype}")
    if c.dtype != p.dtype:
        raise TypeError(f"binomial: count and prob must have one dtype, got {c.dtype} and "
                        f"{p.dtype}")
    if generator is not None and not isinstance(generator, Generator):
        raise TypeError(f"binomial: generator must be a tl.Generator, got "
                        f"{type(generator).__name__}")
    try:
        shape = np.broadcast_shapes(tuple(c.shape), tuple(p.shape))
    except ValueError:
        raise ValueError(f"binomial: count of shape {tuple(c.shape)} and prob of shape "
                         f"{tuple(p.shape)} do not broadcast") from None
    no_capture("tl.binomial")
    n = c.detach().numpy().astype(np.float64)
    q = p.detach().numpy().astype(np.float64)
    if n.size and not (np.isfinite(n).all() and (n >= 0).all() and (n % 1 == 0).all()):
        raise ValueError("binomial: count must hold finite non-negative whole numbers")
    if q.size and not ((q >= 0) & (q <= 1)).all():
        raise ValueError("binomial: prob must lie in [0, 1] (got a value outside, or NaN)")
    draws = rng(generator).binomial(np.broadcast_to(n, shape).astype(np.int64),
                                    np.broadcast_to(q, shape))
    return tensor(np.asarray(draws).astype(c.dtype), device=c.device)
