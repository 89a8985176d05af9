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


_BAD_PROBS = ("probs must be finite and non-negative (probability tensor contains either inf, "
              "nan or element < 0)")
_SAFE = float(np.finfo(np.float64).max) / 2
_ZERO_ROW = "a row of probs sums to 0 (invalid multinomial distribution)"


def invalid_probs(who: str, zero_row: bool) -> InputError:
    """The error for weights no draw can come from, the same in an eager call and in the
    replay of a captured graph (the draw op's check raises it): ``who`` is ``"multinomial"``
    (``tl.multinomial``'s messages) or a distribution's name (its ``sample``'s message)."""
    if who == "multinomial":
        return InputError(f"multinomial: {_ZERO_ROW if zero_row else _BAD_PROBS}")
    return InputError(
        f"{who}.sample: probability tensor contains either inf, NaN or an element < 0 (NaN "
        "logits, or every logit of a row -inf, i.e. all actions masked); the parameters hold "
        "values no draw can come from (NaN parameters usually mean the model that produced "
        "them diverged: check its loss and learning rate)")


def check_weights(w: np.ndarray, total: np.ndarray, who: str) -> None:
    """Raise :func:`invalid_probs` unless every row of ``w`` (..., K) is finite and
    non-negative with a positive ``total`` (its float64 sums; finite weights whose sum
    overflows to inf are accepted, as PyTorch)."""
    # a NaN or negative weight fails the min (NaN compares False); inf makes a total inf
    if w.min() >= 0 and total.max() < np.inf and total.min() > 0:
        return
    if not (bool(np.isfinite(w).all()) and w.min() >= 0):
        raise invalid_probs(who, False)
    if (total <= 0).any():
        raise invalid_probs(who, True)


def _cannot_overflow(w: np.ndarray) -> bool:
    """Whether ``w`` is non-negative (no NaN) with a float64 row sum that cannot overflow:
    the common case, checked without np.errstate (which costs more than a small draw)."""
    return w.min() >= 0 and (w.dtype.itemsize < 8 or float(w.max()) <= _SAFE / w.shape[-1])


def _positive_finite(total: np.ndarray) -> bool:
    if total.size == 1:     # one row (an acting step): one float, not two reductions
        return 0.0 < float(total.flat[0]) < np.inf
    return bool(total.min() > 0) and bool(total.max() < np.inf)


def _checked_rows(w: np.ndarray, who: str | None, cumulative: bool) -> np.ndarray:
    """``w``'s float64 cdf along the last dim (``cumulative``; its last column is the row
    totals), else its row totals, after :func:`check_weights`
    (skipped when ``who`` is None): the one validation of multinomial's op check and of the
    samplers' cdf. ``w`` is non-empty."""
    # (np.add.accumulate is np.cumsum without its Python-level dispatch)
    acc = np.add.accumulate if cumulative else np.add.reduce
    if _cannot_overflow(w):
        out = acc(w, axis=-1, dtype=np.float64)
        if who is None or _positive_finite(out[..., -1] if cumulative else out):
            return out
    with np.errstate(over="ignore", invalid="ignore"):
        out = acc(w, axis=-1, dtype=np.float64)
    if who is not None:
        check_weights(w, out[..., -1] if cumulative else out, who)
    return out


def checked_cdf(w: np.ndarray, who: str | None) -> np.ndarray:
    """The float64 cumulative weights of ``w`` (..., K) along the last dim, after
    :func:`check_weights` (skipped when ``who`` is None). Finite weights whose float64 sum
    overflows are scaled by their row's largest first."""
    if not w.size:
        return np.add.accumulate(w, axis=-1, dtype=np.float64)
    cdf = _checked_rows(w, who, True)
    if cdf[..., -1].max() < np.inf:
        return cdf
    w64 = w.astype(np.float64)
    with np.errstate(invalid="ignore"):
        return np.cumsum(w64 / w64.max(axis=-1, keepdims=True), axis=-1)


def _draw_check(w, u, who="multinomial"):
    # the op's check, run before the kernel in eager calls, traces and replays alike, so a
    # captured graph refuses what the eager call refuses (and with the same error)
    if type(w) is not np.ndarray or not w.size:
        return
    _checked_rows(w, who, False)


def search_draws(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The inverse-CDF draws for uniforms ``u`` (..., k) in [0, 1) against the checked
    cumulative weights ``cdf`` (..., K): the first class whose cdf reaches ``(1 - u) *
    total``, so a class of weight 0 is never drawn."""
    t = (1.0 - u) * cdf[..., -1:]
    K = cdf.shape[-1]
    if u.shape[-1] == 1 and K <= _COUNT_MAX_K:      # one draw per row: no (k, K) broadcast
        return np.argmax(cdf >= t, axis=-1, keepdims=True)
    if K <= _COUNT_MAX_K and u.size * K <= 1 << 20:
        # t <= total == cdf[..., -1] (a product by 1 - u <= 1 never rounds above it), so a
        # cdf entry reaching t exists: argmax of the first True is the answer, in one pass
        return np.argmax(cdf[..., None, :] >= t[..., :, None], axis=-1)
    return cdf_search(cdf, t)


def _draw_fwd(xp, w, u, who="multinomial"):
    # the generic (CuPy) form, O(k K) per row as a count of the cdf entries below u; a row
    # of invalid weights draws the out-of-range class K (checked on the device: no host sync)
    cdf = xp.cumsum(w.astype(np.float64), axis=-1)
    total = cdf[..., -1:]
    t = (1.0 - u) * total
    idx = (cdf[..., None, :] < t[..., :, None]).sum(axis=-1).astype(np.int64)
    K = w.shape[-1]
    ok = (w >= 0).all(axis=-1, keepdims=True) & (total > 0) & (total < np.inf)
    return xp.where(ok, xp.minimum(idx, K - 1), K)


def _draw_cpu(w, u, who="multinomial"):
    return search_draws(checked_cdf(w, None), u)


MULTINOMIAL_DRAW = register(OpDef(
    "multinomial_draw", _draw_fwd, kernels={"cpu": _draw_cpu}, check=_draw_check,
    infer=lambda w, u, **a: (tuple(u[0]), np.dtype(np.int64)),
    cost=lambda i, o, **a: (int(np.prod(i[0][0])) + int(np.prod(i[1][0])) *
                            max(1, int(np.log2(max(2, i[0][0][-1])))),
                            8 * (int(np.prod(i[0][0])) + 2 * int(np.prod(i[1][0])))),
    saves=False,
    doc="class indices drawn by inverse CDF: w (..., K) non-negative weights, u (..., k) "
        "uniform in [0, 1); the first class whose cumulative weight reaches (1 - u) * total. "
        "Invalid rows (NaN, inf, negative, all 0) raise on the CPU (the message names "
        "``who``) and draw the out-of-range class K on a GPU"))


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
    replacement (with, or one draw either way: inverse CDF, one uniform per draw and a search
    of the row's cumulative weights, O(K + k log K); without: the Gumbel-top-k trick, O(K)
    per row, each class at most once). A class of weight 0 is never drawn. Negative, inf or
    NaN weights, or a row summing to 0, raise an InputError (PyTorch's RuntimeError), also
    when a captured graph replays on the CPU (with one draw or replacement; on a GPU such a
    row draws the out-of-range class K, without a host sync). ``generator`` (a
    ``tl.Generator``) makes the draws reproducible within tensorlib.

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
    lead = tuple(w.shape[:-1])
    wd = w._data
    if state.tracer is None and type(wd) is np.ndarray and w.size:
        # eager on the CPU: the checks and the draw in NumPy, one cumulative sum for both
        cdf = checked_cdf(wd, "multinomial")
        if replacement or k == 1:
            from ..random import rng
            from .._tensor import _wrap
            from ..creation import _made
            u = rng(generator).random(lead + (k,))    # rand(*lead, k, dtype=float64)'s draw
            return _made(_wrap(search_draws(cdf, u), w._device, False, None, 0))
        nz = np.count_nonzero(wd, axis=-1)
        if (nz < k).any():
            raise InputError(f"multinomial: {k} samples without replacement from a row "
                             f"with only {int(nz.min())} non-zero probabilities")
    if replacement or k == 1:
        # one draw is the same distribution with or without replacement: inverse CDF
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
