"""Scaled dot-product attention (a composite: matmul, softmax op, matmul)."""
from __future__ import annotations

import math

import numpy as np

from .._state import state
from ..amp.cast import autocast_call
from .._tensor import Tensor
from ..errors import ShapeError
from .nn_act import softmax
from .nn_layers import dropout
from .nn_util import as_float_tensor, same_dtype
from .shape import concatenate
from ._util import broadcast_shapes, to_tensor


def causal_mask(L: int, S: int, device=None) -> Tensor:
    """(L, S) bool, True above the diagonal (the positions causal attention hides). Built
    from ``arange`` comparisons, not a constant, so that under capture with None dims it
    follows the sequence lengths it runs with."""
    from ..creation import arange
    return arange(S, device=device)[None, :] > arange(L, device=device)[:, None]


# causal attention on at least this many query rows runs block by block (_causal_blocks)
_CAUSAL_BLOCK_MIN = 256


def _causal_blocks(q: Tensor, k: Tensor, v: Tensor, s: float) -> Tensor:
    """is_causal attention by blocks of query rows: the rows r0..r1-1 see only the keys
    0..r1-1, so the matmuls and the softmax skip the hidden upper blocks (about half the
    work; the backward, through the same slices, skips them too). Only the block on the
    diagonal needs a mask. Values as the masked full softmax: a hidden key's weight is 0.
    One difference: a NaN in a hidden value row reaches no output here (the masked path and
    PyTorch's multiply it by a zero weight, which spreads it to every row)."""
    from ..creation import arange
    L, S = q.shape[-2], k.shape[-2]
    # ~16 blocks of >= 64 rows: the saving is (1 - 1/nb) / 2 of the work, and each block
    # costs a handful of op calls forward and backward
    nb = max(2, min(16, L // 64))
    B = -(-L // nb)
    qs = q * s if s != 1.0 else q
    kt = k.swapaxes(-1, -2)
    outs = []
    for r0 in range(0, L, B):
        r1 = min(r0 + B, L)
        c = min(r1, S)             # row r sees keys 0..r
        sc = qs[..., r0:r1, :] @ kt[..., :c]
        if c - 1 > r0:             # keys above the diagonal inside this block
            dev = sc.device
            hidden = arange(c, device=dev)[None, :] > arange(r0, r1, device=dev)[:, None]
            sc = sc.masked_fill(hidden, -math.inf)
        outs.append(softmax(sc, axis=-1) @ v[..., :c, :])
    return concatenate(outs, axis=-2)


def _batch_dims(op: str, shapes: str, q: Tensor, k: Tensor, v: Tensor) -> None:
    # matmul would refuse these too, but naming itself and only two of the shapes
    try:
        broadcast_shapes(op, q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise ShapeError(f"{op}: the batch dims (all but the last two) of {shapes} do not "
                         "broadcast together") from None


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale: float | None = None,
                                 enable_gqa: bool = False) -> Tensor:
    """softmax(q k^T * scale + mask) v over (..., L, E), (..., S, E), (..., S, Ev).

    A bool ``attn_mask`` marks the positions that take part (True), a float one is added
    to the scores; ``is_causal`` masks the upper triangle (as PyTorch). With both, a
    position takes part where the mask allows it and it is not above the diagonal (as
    PyTorch's fused CPU kernel, which 4-d inputs without dropout take; PyTorch's math path
    refuses the pair, tensorlib takes it everywhere). A query row whose
    mask hides every key (all False, or all ``-inf``) gives 0, as PyTorch 2.5+, and
    passes no gradient (no NaN). ``enable_gqa`` (grouped-query attention, as PyTorch's):
    key and value may have fewer heads (dim -3) than query, a divisor of its count; each is
    repeated for its group of query heads.
    """
    if state.autocast is not None:
        return autocast_call(scaled_dot_product_attention, "scaled_dot_product_attention", query,
                             key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa)
    op = "scaled_dot_product_attention"
    q, k, v = (as_float_tensor(t, op, n) for t, n in ((query, "query"), (key, "key"),
                                                      (value, "value")))
    same_dtype(op, q, ("key", k), ("value", v))
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ShapeError(f"{op}: query, key and value need at least 2 dimensions (L, E), got "
                         f"shapes {tuple(q.shape)}, {tuple(k.shape)} and {tuple(v.shape)}")
    if enable_gqa and min(q.ndim, k.ndim, v.ndim) >= 3 and k.shape[-3] != q.shape[-3]:
        hq, hk = q.shape[-3], k.shape[-3]
        if not hk or hq % hk or v.shape[-3] != hk:
            raise ShapeError(f"{op}: enable_gqa needs the query's heads ({hq}) to be a "
                             f"multiple of the key's and value's ({hk}, {v.shape[-3]})")
        k, v = (t.repeat_interleave(hq // hk, axis=-3) for t in (k, v))
    shapes = f"query {tuple(q.shape)}, key {tuple(k.shape)} and value {tuple(v.shape)}"
    if q.shape[-1] != k.shape[-1]:
        raise ShapeError(f"{op}: query and key embedding sizes differ ({q.shape[-1]} != "
                         f"{k.shape[-1]}) for shapes {shapes}")
    if k.shape[-2] != v.shape[-2]:
        raise ShapeError(f"{op}: key and value sequence lengths differ ({k.shape[-2]} != "
                         f"{v.shape[-2]}) for shapes {shapes}")
    _batch_dims(op, shapes, q, k, v)
    L, S = q.shape[-2], k.shape[-2]
    s = (1.0 / math.sqrt(q.shape[-1]) if q.shape[-1] else 1.0) if scale is None else float(scale)
    if (is_causal and attn_mask is None and not dropout_p and state.tracer is None
            and isinstance(L, int) and isinstance(S, int) and L >= _CAUSAL_BLOCK_MIN
            and S >= 1):
        return _causal_blocks(q, k, v, s)
    # the scale on q (L x E values) rather than on the scores (L x S): one pass fewer
    scores = (q * s) @ k.swapaxes(-1, -2) if s != 1.0 else q @ k.swapaxes(-1, -2)
    dead = None  # query rows whose mask hides every key: output 0 there (as PyTorch)
    if is_causal and attn_mask is None:
        scores = scores.masked_fill(causal_mask(L, S, scores.device), -math.inf)
    elif attn_mask is not None:
        m = to_tensor(attn_mask)
        try:
            broadcast_shapes(op, m.shape, scores.shape)
        except ValueError:
            raise ShapeError(f"{op}: attn_mask of shape {tuple(m.shape)} does not broadcast to "
                             f"the attention scores' shape {tuple(scores.shape)} (batch..., L, "
                             "S)") from None
        if is_causal:       # both: the mask and the causal triangle hide (PyTorch's fused path)
            hidden = causal_mask(L, S, scores.device)
            if m.dtype == np.bool_:
                m = m & ~hidden
            elif m.dtype.kind == "f":
                m = m.masked_fill(hidden, -math.inf)
        if m.dtype == np.bool_:
            # a fully hidden row keeps its finite scores (so neither the softmax nor its
            # gradient sees an all -inf row: no NaN reaches other positions' gradients)
            # and is zeroed after the softmax
            dead = ~m.any(axis=-1, keepdims=True)
            scores = scores.masked_fill(~(m | dead), -math.inf)
        elif m.dtype.kind == "f":
            m = m.astype(scores.dtype)
            dead = (m == -math.inf).all(axis=-1, keepdims=True)
            scores = (scores + m).masked_fill(dead, 0.0)
        else:
            raise TypeError(f"{op}: attn_mask must be bool or float, got {m.dtype}")
    attn = softmax(scores, axis=-1)
    if dead is not None:
        attn = attn.masked_fill(dead, 0.0)
    if dropout_p:
        attn = dropout(attn, dropout_p, training=True)
    return attn @ v
