"""Connectionist temporal classification: ``F.ctc_loss``, as PyTorch's.

The loss of one sample is ``-log p(target | log_probs)``, summed over every alignment of the
target to the ``input_length`` frames: the target with a blank between labels and at both
ends (the extended labels, 2 S + 1 of them), each frame staying on its label, moving to the
next, or skipping a blank between two different labels.

Two registry ops, both computed in log space with NumPy, vectorised over the batch and the
extended labels, looping over time only:

- ``ctc_loss(log_probs, targets, input_lengths, target_lengths)``: the per-sample negative
  log-likelihood, shape (N,), from the forward variables alpha, and alpha itself (an output
  kept for the backward, (T, N, 2 S + 3) for padded (N, S) targets, (T, 2 sum(S_n) + N)
  for concatenated ones (each sample's positions side by side: the widest target is known
  only from the values));
- ``ctc_loss_grad(log_probs, targets, input_lengths, target_lengths, alpha, g)``: its gradient
  w.r.t. ``log_probs`` from alpha and beta (beta is alpha run over the time-reversed sample). This
  is the true derivative of the loss w.r.t. ``log_probs`` as given; PyTorch's own backward
  returns ``exp(log_probs) - posterior``, which is the derivative only after a log-softmax
  backward. Its own gradient (double backward) is not implemented, as in PyTorch.

Both kernels read the targets and lengths each call (padded (N, S) or concatenated targets),
so a captured graph replays correctly with new ones. Reductions, unbatched inputs and
``zero_infinity`` are tensorlib ops around the first op. There is no ONNX form.
"""
from __future__ import annotations

import numpy as np

from .._apply import apply
from .._state import state
from .._tensor import Tensor
from ..amp.cast import autocast_call
from . import elementwise as E
from ._util import to_tensor
from .nn_util import as_float_tensor, check_reduction, io_cost
from .registry import OpDef, register

# "minus infinity" inside the recursion: finite, so that the per-position maximum taken for
# a stable log-sum-exp is never -inf (which would give -inf - -inf = NaN); a log-likelihood
# below _IMPOSSIBLE is an impossible alignment (an infinite loss)
_NEG = -1e30
_IMPOSSIBLE = -1e29


# --- checks, made by the kernels before they compute (a replayed graph gets new values) -------
def _check_values(T: int, C: int, targets, il, tl, blank: int) -> None:
    """The lengths, blank and target values; ``targets`` is (N, S) padded or concatenated."""
    op = "ctc_loss"
    if not 0 <= blank < C:
        raise ValueError(f"{op}: blank={blank} must be a class index in [0, {C}) "
                         f"(log_probs has {C} classes)")
    if il.size and (il.min() < 0 or il.max() > T):
        v = int(il.min()) if il.min() < 0 else int(il.max())
        raise ValueError(f"{op}: input_lengths must be in [0, {T}] (the {T} frames of "
                         f"log_probs), got {v}")
    if tl.size and tl.min() < 0:
        raise ValueError(f"{op}: target_lengths must be >= 0, got {int(tl.min())}")
    if targets.ndim == 2:
        S = targets.shape[1]
        if tl.size and tl.max() > S:
            raise ValueError(f"{op}: target_lengths must be at most {S} (padded targets of "
                             f"shape {tuple(targets.shape)}), got {int(tl.max())}")
        used = np.arange(S)[None, :] < tl[:, None]
        vals = targets[used]
    else:
        total = int(tl.sum())
        if total != targets.shape[0]:
            raise ValueError(f"{op}: concatenated targets of length {targets.shape[0]} must "
                             f"hold sum(target_lengths) = {total} labels")
        vals = targets
    if vals.size:
        bad = (vals < 0) | (vals >= C)
        if bad.any():
            raise ValueError(f"{op}: target label {int(vals[bad][0])} is out of range for "
                             f"{C} classes")
        if (vals == blank).any():
            raise ValueError(f"{op}: targets contain the blank label {blank} within their "
                             "target_lengths; labels must be other classes (padding past a "
                             "target's length may be anything)")


class _Problem:
    """One batch set up for the recursion: ``ext`` (N, L) extended labels, ``lpe`` (T, N, 2 + L)
    their log-probabilities per frame and ``skip`` (N, 2 + L) 0 where a position may be
    entered from two positions back, else _NEG; both with two guard columns of _NEG in front
    of each sample's row (see ``_alpha``)."""

    def __init__(self, lp, targets, il, tl, blank: int):
        T, N, C = lp.shape
        il = np.asarray(il, np.int64).reshape(-1)
        tl = np.asarray(tl, np.int64).reshape(-1)
        targets = np.asarray(targets)
        if targets.dtype.kind not in "iu":
            raise TypeError(f"ctc_loss: targets must be integers, got {targets.dtype}")
        if il.shape != (N,) or tl.shape != (N,) or targets.ndim not in (1, 2) or (
                targets.ndim == 2 and targets.shape[0] != N):
            raise ValueError(f"ctc_loss: for log_probs of shape {tuple(lp.shape)}, the "
                             f"targets must be (N, S) or 1-d and both lengths ({N},); got "
                             f"{tuple(targets.shape)}, {il.shape}, {tl.shape}")
        if T == 0 or N == 0 or C == 0:
            raise ValueError(f"ctc_loss: log_probs of shape {tuple(lp.shape)} is empty")
        _check_values(T, C, targets, il, tl, blank)
        S = int(tl.max())
        pos = np.arange(S)
        used = pos[None, :] < tl[:, None]
        if targets.ndim == 2:
            labels = targets[:, :S].astype(np.int64)
        elif targets.size:      # concatenated: sample n's labels follow those of samples < n
            start = np.cumsum(tl) - tl
            labels = targets.astype(np.int64)[np.minimum(start[:, None] + pos[None, :],
                                                         targets.shape[0] - 1)]
        else:
            labels = np.zeros((N, S), np.int64)
        L = 2 * S + 1
        ext = np.full((N, L), blank, np.int64)
        ext[:, 1::2] = np.where(used, labels, blank)
        self.T, self.N, self.C, self.L = T, N, C, L
        self.il, self.tl, self.ext = il, tl, ext
        self.lpe = _guarded(np.maximum(lp[:, np.arange(N)[:, None], ext], _NEG))
        self.skip = _skip(ext, lp.dtype)

    def loglik(self, la):
        """(N,) log p(target) from the alphas (T, N, L): the last frame's last two positions
        (-inf where the target cannot be aligned)."""
        N, il, tl = self.N, self.il, self.tl
        t = np.maximum(il - 1, 0)
        n = np.arange(N)
        end = la[t, n, 2 * tl]
        before = np.where(tl > 0, la[t, n, np.maximum(2 * tl - 1, 0)], _NEG)
        ll = np.logaddexp(end, before)
        # no frames: only the empty target is possible (probability 1)
        ll = np.where(il == 0, np.where(tl == 0, 0.0, _NEG), ll)
        return np.where(ll < _IMPOSSIBLE, -np.inf, ll)

    def reversal(self):
        """(T, N, L) flat indices into a (T, N, L) array that reverse each sample over its own
        frames and extended labels (an involution there; clipped elsewhere, where values are
        never read)."""
        T, N, L = self.T, self.N, self.L
        tr = np.clip(self.il[None, :] - 1 - np.arange(T)[:, None], 0, T - 1)      # (T, N)
        sr = np.clip(2 * self.tl[:, None] - np.arange(L)[None, :], 0, L - 1)      # (N, L)
        return (tr * N + np.arange(N)[None, :])[:, :, None] * L + sr[None]


def _guarded(a):
    """(..., L) -> (..., 2 + L) with two columns of _NEG in front."""
    out = np.empty(a.shape[:-1] + (a.shape[-1] + 2,), a.dtype)
    out[..., :2] = _NEG
    out[..., 2:] = a
    return out


def _skip(ext, dtype):
    """(N, 2 + L): 0 where position s may be entered from s - 2 (s a label differing from the
    label two positions back), _NEG elsewhere (guards included)."""
    N, L = ext.shape
    ok = np.zeros((N, L), bool)
    ok[:, 3::2] = ext[:, 3::2] != ext[:, 1:-2:2]
    return _guarded(np.where(ok, 0.0, _NEG).astype(dtype))


def _alpha(lpe, skip):
    """Forward variables (T, N, 2 + L) (the guards included) from ``lpe`` (T, N, 2 + L): the
    log of the summed probability of every path prefix that starts at position 0 or 1 in
    frame 0 and is at position s in frame t.

    The batch is one flat row per frame, each sample's positions after two guard cells, so
    that positions s, s - 1 and s - 2 are three contiguous slices (NumPy is several times
    faster on them than on 2-d slices). A guard's own update reads the previous sample's
    last positions; it is set back to _NEG after each frame."""
    T, N, W = lpe.shape
    dt = lpe.dtype
    X = np.full((T, N, W), _NEG, dt)
    X[0, :, 2:4] = lpe[0, :, 2:4]
    X2 = X.reshape(T, N * W)
    lp2 = lpe.reshape(T, N * W)
    sk = skip.reshape(-1)[2:]
    n = N * W - 2
    m = np.empty(n, dt)
    # the three shifted terms in one block, so that one exp call serves them all
    q = np.empty((3, n), dt)
    stay_m, step_m, c = q
    # NumPy's float64 exp takes a slow path (~10x) for results that underflow; a term more
    # than 60 below the maximum (which contributes exactly 1) cannot change the sum in
    # float64, so clamping there changes no bit. (float32's exp has no such slow path.)
    low = dt.type(-60.0) if dt == np.float64 else None
    for t in range(1, T):
        prev, cur = X2[t - 1], X2[t, 2:]
        stay, step = prev[2:], prev[1:-1]
        np.add(prev[:-2], sk, out=c)
        # log(exp(stay) + exp(step) + exp(c)), shifted by the largest of the three
        np.maximum(stay, step, out=m)
        np.maximum(m, c, out=m)
        np.subtract(stay, m, out=stay_m)
        np.subtract(step, m, out=step_m)
        np.subtract(c, m, out=c)
        if low is not None:
            np.maximum(q, low, out=q)
        np.exp(q, out=q)
        np.add(stay_m, step_m, out=cur)
        cur += c
        np.log(cur, out=cur)
        cur += m
        cur += lp2[t, 2:]
        # the guards back to _NEG: a NaN or inf in one sample's frames (its padding past its
        # input length too) would otherwise reach the next sample through them
        X[t, :, :2] = _NEG
    return X


# --- kernels ------------------------------------------------------------------------------------
def _loss_fwd(lp, targets, il, tl, *, blank):
    """(loss (N,), the alphas kept for the backward, in a shape the input shapes tell): the
    guarded alphas (T, N, 2 S + 3) for padded (N, S) targets; for concatenated ones (their
    widest target is known only from the values) each sample's 2 S_n + 1 positions side by
    side, (T, 2 sum(S_n) + N)."""
    p = _Problem(lp, targets, il, tl, blank)
    X = _alpha(p.lpe, p.skip)
    loss = (-p.loglik(X[:, :, 2:])).astype(lp.dtype)
    return loss, _saved_alpha(X, p, np.asarray(targets), lp.dtype)


def _ragged(p, width: int):
    """Flat (N * width) columns of each sample's positions 0..2 S_n, its row ``width`` long
    with its positions ``width - p.L`` in (the concatenated targets' layout of the alphas)."""
    off = width - p.L
    n = np.repeat(np.arange(p.N), 2 * p.tl + 1)
    s = np.arange(n.size) - np.repeat(np.cumsum(2 * p.tl + 1) - (2 * p.tl + 1), 2 * p.tl + 1)
    return n * width + off + s


def _saved_alpha(X, p, targets, dtype):
    if targets.ndim != 2:
        return X.reshape(X.shape[0], -1)[:, _ragged(p, X.shape[2])]
    width = 2 * targets.shape[1] + 3
    if X.shape[2] == width:
        return X
    out = np.full(X.shape[:2] + (width,), _NEG, dtype)    # targets padded past the longest
    out[:, :, :X.shape[2]] = X
    return out


def _grad_fwd(lp, targets, il, tl, alpha, g, *, blank):
    g = np.asarray(g, lp.dtype).reshape(-1)
    p = _Problem(lp, targets, il, tl, blank)
    T, N, C, L = p.T, p.N, p.C, p.L
    # beta is alpha over each sample reversed in time and in extended labels (the moves and
    # skips allowed are symmetric), read back in the original order
    rev = p.reversal()
    lpe = p.lpe[:, :, 2:]
    rlpe = _guarded(np.take(lpe, rev))
    rskip = _skip(_reversed_ext(p), lp.dtype)
    targets = np.asarray(targets)
    if alpha.ndim == 3 and alpha.shape[:2] == (T, N) and alpha.shape[2] >= L + 2:
        la = alpha[:, :, 2:2 + L]       # the forward's alphas
        lb = np.take(_alpha(rlpe, rskip)[:, :, 2:], rev)
    elif targets.ndim == 1 and alpha.shape == (T, 2 * targets.shape[0] + N):
        la = np.full((T, N, L), _NEG, lp.dtype)     # the concatenated targets' layout
        la.reshape(T, N * L)[:, _ragged(p, L)] = alpha
        lb = np.take(_alpha(rlpe, rskip)[:, :, 2:], rev)
    else:       # (not kept: a hand-made graph) one recursion runs both, the reversed
        # samples after the others (half the NumPy calls of two)
        both = _alpha(np.concatenate([p.lpe, rlpe], axis=1), np.concatenate([p.skip, rskip]))
        la = both[:, :N, 2:]
        lb = np.take(both[:, N:, 2:], rev)
    ll = p.loglik(la)
    valid = (np.arange(T)[:, None, None] < p.il[None, :, None]) & \
        (np.arange(L)[None, None, :] <= 2 * p.tl[None, :, None])
    finite = np.isfinite(ll)
    valid &= finite[None, :, None]
    # the posterior of position s in frame t: alpha beta / p(target), the frame's
    # probability (counted in both alpha and beta) taken out once
    z = la + lb
    z -= lpe
    z -= np.where(finite, ll, 0.0).astype(lp.dtype)[None, :, None]
    # clamped for float64 exp's slow underflow path (see _alpha): a posterior below e**-700
    # comes out e**-700; positions outside the alignments are zeroed after
    low = lp.dtype.type(-700.0)
    z = np.where(valid, z, low)
    np.maximum(z, low, out=z)
    gamma = np.exp(z, out=z)
    gamma *= valid
    # d loss / d lp[t, n, c] = -(the summed posteriors of the positions holding class c)
    idx = (np.arange(T)[:, None, None] * N + np.arange(N)[None, :, None]) * C + p.ext[None]
    post = np.bincount(idx.reshape(-1), gamma.reshape(-1), minlength=T * N * C)
    out = post.reshape(T, N, C) * -g.astype(np.float64)[None, :, None]
    # an impossible target: NaN over its frames (as PyTorch), unless its loss is unused (a
    # zero upstream gradient, as zero_infinity gives)
    bad = ~finite & (g != 0)
    if bad.any():
        out[(np.arange(T)[:, None] < p.il[None, :]) & bad[None, :]] = np.nan
    return out.astype(lp.dtype)


def _reversed_ext(p):
    """Each sample's extended labels reversed over its own 2 S + 1 positions (clipped past)."""
    sr = np.clip(2 * p.tl[:, None] - np.arange(p.L)[None, :], 0, p.L - 1)
    return np.take_along_axis(p.ext, sr, axis=1)


def _via_host(kernel):
    """A CUDA kernel running ``kernel`` on host copies: the recursion is a loop over frames of
    small array operations, each of which would be a kernel launch on the GPU."""
    def run(*arrays, **attrs):
        from ..backends import cupy
        out = kernel(*[a.get() for a in arrays], **attrs)
        if isinstance(out, tuple):
            return tuple(cupy().asarray(o) for o in out)
        return cupy().asarray(out)
    return run


# --- shapes, cost, backward rules ---------------------------------------------------------------
def _check_ranks(op, lps, ts, ils, tls) -> None:
    if len(lps) != 3:
        raise ValueError(f"{op}: log_probs of shape {tuple(lps)} must be 3-d (T, N, C)")
    if len(ts) not in (1, 2):
        raise ValueError(f"{op}: targets of shape {tuple(ts)} must be (N, S) padded or 1-d "
                         "concatenated")
    for name, s in (("input_lengths", ils), ("target_lengths", tls)):
        if len(s) != 1:
            raise ValueError(f"{op}: {name} of shape {tuple(s)} must be 1-d (N,)")


def _loss_infer(lp, targets, il, tl, *, blank):
    _check_ranks("ctc_loss", lp[0], targets[0], il[0], tl[0])
    (T, N, _), ts = lp[0], targets[0]
    if len(ts) == 2:
        kept = (T, N, None if ts[1] is None else 2 * ts[1] + 3)
    else:
        kept = (T, None if ts[0] is None or N is None else 2 * ts[0] + N)
    return ((N,), lp[1]), (kept, lp[1])


def _grad_infer(lp, targets, il, tl, alpha, g, *, blank):
    _check_ranks("ctc_loss_grad", lp[0], targets[0], il[0], tl[0])
    return tuple(lp[0]), lp[1]


def _flops(i, o, **a):
    (T, N, _), ts = i[0][0], i[1][0]
    T, N = T or 1, N or 1
    S = (ts[1] if len(ts) == 2 else (ts[0] or 1) // N) or 1
    return 20 * T * N * (2 * S + 1)


def _loss_vjp(n, g, g_alpha):
    lp, targets, il, tl = n.inputs
    if not lp._rg or g is None:     # (the alphas are internal: no gradient flows into them)
        return None, None, None, None
    grad = apply(CTC_LOSS_GRAD, lp, targets, il, tl, n.output(1).detach(), g,
                 blank=n.attrs["blank"])
    return grad, None, None, None


def _grad_vjp(n, gg):
    raise NotImplementedError(
        "ctc_loss: the gradient of ctc_loss's gradient (double backward) is not implemented, "
        "as in PyTorch; take the loss's gradient without create_graph=True, or leave the CTC "
        "loss out of the part of the model differentiated twice")


CTC_LOSS = register(OpDef(
    "ctc_loss", kernels={"cpu": _loss_fwd, "cuda": _via_host(_loss_fwd)}, vjp=_loss_vjp,
    infer=_loss_infer, cost=io_cost(_flops), saves=True, saves_output=(1,),
    doc="Per-sample CTC negative log-likelihood (N,) of log_probs (T, N, C), and the "
        "forward variables its backward reuses."))
CTC_LOSS_GRAD = register(OpDef(
    "ctc_loss_grad", kernels={"cpu": _grad_fwd, "cuda": _via_host(_grad_fwd)}, vjp=_grad_vjp,
    infer=_grad_infer, cost=io_cost(lambda i, o, **a: 2 * _flops(i, o)), saves=False,
    doc="d ctc_loss / d log_probs, times the upstream gradient per sample, from the "
        "forward's alphas."))


# --- public API ----------------------------------------------------------------------------------
def _lengths(x, name: str, n: int, unbatched: bool) -> Tensor:
    """Lengths as an int64 tensor of shape (n,), from a tensor, a list/tuple or an int."""
    op = "ctc_loss"
    if isinstance(x, Tensor):
        if x._data.dtype.kind not in "iu":
            raise TypeError(f"{op}: {name} must hold integers, got {x._data.dtype}")
        t = x
    else:
        a = np.asarray(x)
        if a.dtype.kind not in "iu":
            raise TypeError(f"{op}: {name} must hold ints (a tensor, list or tuple), "
                            f"got {x!r}")
        t = to_tensor(a.astype(np.int64))
    want = "a single length" if unbatched else f"{n} lengths (one per sample)"
    if t.ndim > 1 or t._data.size != n:
        raise ValueError(f"{op}: {name} of shape {tuple(t.shape)} must hold {want}")
    if t.ndim == 0:
        t = t.reshape(1)
    return t if t._data.dtype == np.int64 else t.astype(np.int64)


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    """Connectionist temporal classification loss, as ``torch.nn.functional.ctc_loss``.

    ``log_probs``: (T, N, C) log-probabilities over C classes per frame (usually a
    ``log_softmax`` over the last axis), or (T, C) for one sample. ``targets``: (N, S) padded
    label sequences, or all targets concatenated into one 1-d sequence (of length
    ``sum(target_lengths)``); integers, never ``blank``. ``input_lengths`` / ``target_lengths``:
    the frames and labels used per sample (tensors, lists or tuples of ints). A target that
    cannot fit its frames has an infinite loss; ``zero_infinity=True`` makes that loss (and its
    gradient) zero. ``reduction``: 'none' (per sample), 'sum', or 'mean' (each loss divided by
    its target length, at least 1, then averaged over the batch). float32 or float64.

    Gradient: the exact derivative of the loss, ``-posterior`` (per frame, the occupation
    probability of each class under the alignments, scaled by the reduction) with respect to
    ``log_probs`` itself. PyTorch's kernel instead returns ``exp(log_probs) - posterior``,
    which folds in the Jacobian of a ``log_softmax`` it assumes was applied. So when
    ``log_probs`` comes out of ``log_softmax`` inside the graph (the usual case), the gradients
    of the logits are the same in both libraries. When ``log_probs`` is a leaf (normalised
    outside the graph), ``log_probs.grad`` lacks PyTorch's ``exp(log_probs)`` term (scaled as
    the rest of the gradient, by the reduction and the incoming gradient). This divergence is
    intentional: tensorlib's is the true gradient (it matches finite differences), PyTorch's is
    not.

    >>> lp = tl.randn(50, 2, 20).log_softmax(2)
    >>> loss = F.ctc_loss(lp, tl.tensor([[1, 2, 3], [4, 5, 0]]), [50, 40], [3, 2])
    """
    if state.autocast is not None:
        return autocast_call(ctc_loss, "ctc_loss", log_probs, targets, input_lengths,
                             target_lengths, blank, reduction, zero_infinity)
    op = "ctc_loss"
    check_reduction(op, reduction)
    lp = as_float_tensor(log_probs, op, "log_probs")
    tg = to_tensor(targets)
    if tg._data.dtype.kind not in "iu":
        raise TypeError(f"{op}: targets must be integer class indices, got {tg._data.dtype}")
    if isinstance(blank, (bool, np.bool_)) or not isinstance(blank, (int, np.integer)):
        raise TypeError(f"{op}: blank must be an int, got {blank!r}")
    unbatched = lp.ndim == 2
    if lp.ndim not in (2, 3):
        raise ValueError(f"{op}: log_probs of shape {tuple(lp.shape)} must be 3-d (T, N, C), "
                         "or 2-d (T, C) for one sample")
    if unbatched:
        if not (tg.ndim == 1 or (tg.ndim == 2 and tg.shape[0] == 1)):
            raise ValueError(f"{op}: for unbatched log_probs {tuple(lp.shape)}, targets of "
                             f"shape {tuple(tg.shape)} must be 1-d (S,)")
        lp, tg = lp.reshape(lp.shape[0], 1, lp.shape[1]), tg.reshape(1, -1)
    T, N, C = lp.shape
    if T == 0 or N == 0 or C == 0:
        raise ValueError(f"{op}: log_probs of shape {tuple(lp.shape)} is empty")
    if tg.ndim == 2 and tg.shape[0] != N:
        raise ValueError(f"{op}: padded targets of shape {tuple(tg.shape)} must have one row "
                         f"per sample ({N}, S)")
    if tg.ndim not in (1, 2):
        raise ValueError(f"{op}: targets of shape {tuple(tg.shape)} must be (N, S) padded or "
                         "1-d concatenated")
    il = _lengths(input_lengths, "input_lengths", N, unbatched)
    tl_ = _lengths(target_lengths, "target_lengths", N, unbatched)
    loss = apply(CTC_LOSS, lp, tg, il, tl_, blank=int(blank))[0]
    if zero_infinity:
        loss = E.where(loss == float("inf"), 0.0, loss)
    if reduction == "mean":
        return (loss / tl_.astype(lp.dtype).clip(min=1)).mean()
    if reduction == "sum":
        return loss.sum()
    return loss.reshape(()) if unbatched else loss


__all__ = ["ctc_loss"]
