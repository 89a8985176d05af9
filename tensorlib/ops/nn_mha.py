"""Multi-head attention as PyTorch's ``F.multi_head_attention_forward`` (a composite of
linear, matmul, softmax and scaled_dot_product_attention, so it is differentiable to any
order and captures as those ops); ``nn.MultiheadAttention.forward`` runs through it."""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from .elementwise import where
from .nn_act import softmax
from .nn_attention import scaled_dot_product_attention
from .nn_layers import dropout, linear
from .nn_util import half_via_float32
from .shape import concatenate
from ._util import to_tensor

# the forms tensorlib.nn.functional exports: under autocast the projections give float16,
# which these kernels take by computing in float32
linear, softmax, dropout, scaled_dot_product_attention = (
    half_via_float32(f) for f in (linear, softmax, dropout, scaled_dot_product_attention))


def additive_mask(mask, dtype, op: str, what: str) -> Tensor | None:
    """A bool mask (True = masked out, MultiheadAttention's convention) or a float mask as an
    additive float mask of ``dtype`` (PyTorch's ``_canonical_mask``)."""
    if mask is None:
        return None
    mask = to_tensor(mask)
    if mask.dtype == np.bool_:
        return where(mask, -math.inf, 0.0).astype(dtype)
    if mask.dtype.kind == "f":
        return mask.astype(dtype)
    raise TypeError(f"{op}: only bool and floating types of {what} are supported, got "
                    f"{mask.dtype}")


def _pad_last(t: Tensor) -> Tensor:
    """``t`` with one more 0 column on its last axis (the appended key is not masked)."""
    from .shape import pad
    return pad(t, [(0, 0)] * (t.ndim - 1) + [(0, 1)])


def _check_ranks(op, query, key, value, key_padding_mask, attn_mask, num_heads) -> bool:
    """PyTorch's ``_mha_shape_check``: whether the call is batched."""
    if query.ndim == 3:
        if key.ndim != 3 or value.ndim != 3:
            raise ValueError(f"{op}: for batched (3-D) query, expected key and value to be 3-D "
                             f"but found {key.ndim}-D and {value.ndim}-D tensors respectively")
        if key_padding_mask is not None and key_padding_mask.ndim != 2:
            raise ValueError(f"{op}: for batched (3-D) query, expected key_padding_mask to be "
                             f"None or 2-D but found {key_padding_mask.ndim}-D tensor instead")
        batched = True
    elif query.ndim == 2:
        if key.ndim != 2 or value.ndim != 2:
            raise ValueError(f"{op}: for unbatched (2-D) query, expected key and value to be "
                             f"2-D but found {key.ndim}-D and {value.ndim}-D tensors "
                             "respectively")
        if key_padding_mask is not None and key_padding_mask.ndim != 1:
            raise ValueError(f"{op}: for unbatched (2-D) query, expected key_padding_mask to "
                             f"be None or 1-D but found {key_padding_mask.ndim}-D tensor "
                             "instead")
        if attn_mask is not None and attn_mask.ndim == 3:
            want = (num_heads, query.shape[0], key.shape[0])
            if tuple(attn_mask.shape) != want:
                raise ValueError(f"{op}: expected attn_mask shape to be {want} but got "
                                 f"{tuple(attn_mask.shape)}")
        batched = False
    else:
        raise ValueError(f"{op}: query should be unbatched 2D or batched 3D tensor but "
                         f"received {query.ndim}-D query tensor")
    if attn_mask is not None and attn_mask.ndim not in (2, 3):
        raise ValueError(f"{op}: expected attn_mask to be None, 2-D or 3-D but found "
                         f"{attn_mask.ndim}-D tensor instead")
    return batched


def mha_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight,
                in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight,
                out_proj_bias, training=True, key_padding_mask=None, need_weights=True,
                attn_mask=None, use_separate_proj_weight=False, q_proj_weight=None,
                k_proj_weight=None, v_proj_weight=None, static_k=None, static_v=None,
                average_attn_weights=True, is_causal=False, *,
                op: str = "multi_head_attention_forward"):
    """The implementation (``op`` names the caller in errors); see
    :func:`multi_head_attention_forward`."""
    query, key, value = (to_tensor(t) for t in (query, key, value))
    if key_padding_mask is not None:
        key_padding_mask = to_tensor(key_padding_mask)
    if attn_mask is not None:
        attn_mask = to_tensor(attn_mask)
    batched = _check_ranks(op, query, key, value, key_padding_mask, attn_mask, num_heads)
    if not batched:
        query, key, value = (t.unsqueeze(1) for t in (query, key, value))
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask.unsqueeze(0)
    L, N, E = query.shape
    S = key.shape[0]
    if E != embed_dim_to_check:
        raise ValueError(f"{op}: was expecting embedding dimension of {embed_dim_to_check}, "
                         f"but got {E}")
    h = int(num_heads)
    if h <= 0 or E % h:
        raise ValueError(f"{op}: embed_dim {E} not divisible by num_heads {num_heads}")
    d = E // h
    if is_causal and attn_mask is None:
        raise RuntimeError(f"{op}: need attn_mask if specifying the is_causal hint. You may use "
                           "the Transformer module method `generate_square_subsequent_mask` "
                           "to create this mask.")
    dt = query.dtype
    kpm = additive_mask(key_padding_mask, dt, op, "key_padding_mask")
    mask = additive_mask(attn_mask, dt, op, "attn_mask")
    # PyTorch's fast path: the hint replaces the mask by attention's own (top-left) causal
    # mask, which also hides the keys bias_k / add_zero_attn append
    causal = bool(is_causal) and kpm is None and not need_weights
    if use_separate_proj_weight:
        if tuple(key.shape[:2]) != tuple(value.shape[:2]):
            raise ValueError(f"{op}: key's sequence and batch dims {tuple(key.shape[:2])} do "
                             f"not match value's {tuple(value.shape[:2])}")
        for n, w in (("q", q_proj_weight), ("k", k_proj_weight), ("v", v_proj_weight)):
            if w is None:
                raise ValueError(f"{op}: use_separate_proj_weight is True but {n}_proj_weight "
                                 "is None")
        ws = (q_proj_weight, k_proj_weight, v_proj_weight)
    else:
        if tuple(key.shape) != tuple(value.shape):
            raise ValueError(f"{op}: key shape {tuple(key.shape)} does not match value shape "
                             f"{tuple(value.shape)}")
        if in_proj_weight is None:
            raise ValueError(f"{op}: use_separate_proj_weight is False but in_proj_weight is "
                             "None")
        ws = (in_proj_weight[:E], in_proj_weight[E:2 * E], in_proj_weight[2 * E:])
    b = in_proj_bias
    bs = (b[:E], b[E:2 * E], b[2 * E:]) if b is not None else (None, None, None)
    q = linear(query, ws[0], bs[0])
    k = linear(key, ws[1], bs[1]) if static_k is None else None
    v = linear(value, ws[2], bs[2]) if static_v is None else None

    if mask is not None:
        want = (L, S) if mask.ndim == 2 else (N * h, L, S)
        if tuple(mask.shape) != want:
            raise ValueError(f"{op}: attn_mask must be (L, S) = {(L, S)} or "
                             f"(N * num_heads, L, S) = {(N * h, L, S)}, got "
                             f"{tuple(mask.shape)}")
    if (bias_k is None) != (bias_v is None):
        raise ValueError(f"{op}: bias_k and bias_v must be given together")
    if bias_k is not None:
        if static_k is not None or static_v is not None:
            raise ValueError(f"{op}: bias cannot be added to static key or value")
        k = concatenate([k, bias_k.reshape(1, 1, E).broadcast_to((1, N, E))], axis=0)
        v = concatenate([v, bias_v.reshape(1, 1, E).broadcast_to((1, N, E))], axis=0)
        mask = _pad_last(mask) if mask is not None else None
        kpm = _pad_last(kpm) if kpm is not None else None

    # heads: (N, h, len, d), PyTorch's (N * h, len, d) viewed per batch element
    q = q.reshape(L, N, h, d).permute(1, 2, 0, 3)
    k, v = (_heads(op, t, st, N, h, d, n)
            for t, st, n in ((k, static_k, "static_k"), (v, static_v, "static_v")))
    if add_zero_attn:
        from .shape import pad
        k, v = (pad(t, [(0, 0), (0, 0), (0, 1), (0, 0)]) for t in (k, v))
        mask = _pad_last(mask) if mask is not None else None
        kpm = _pad_last(kpm) if kpm is not None else None
    S = k.shape[2]
    if v.shape[2] != S:
        raise ValueError(f"{op}: keys ({S}) and values ({v.shape[2]}) differ in length")
    if mask is not None and mask.ndim == 3:
        mask = mask.reshape(N, h, L, S)
    if kpm is not None:
        if tuple(kpm.shape) != (N, S):
            raise ValueError(f"{op}: key_padding_mask must be (N, S) = {(N, S)}, got "
                             f"{tuple(kpm.shape)}")
        kpm = kpm.reshape(N, 1, 1, S)
        mask = kpm if mask is None else mask + kpm
    p = float(dropout_p) if training else 0.0
    weights = None
    if need_weights:
        scores = (q * (1.0 / math.sqrt(d))) @ k.swapaxes(-1, -2)
        if mask is not None:
            scores = scores + mask
        attn = softmax(scores, -1)
        weights = attn.mean(axis=1) if average_attn_weights else attn
        if p:
            attn = dropout(attn, p, True)
        out = attn @ v
    else:
        out = scaled_dot_product_attention(q, k, v, attn_mask=None if causal else mask,
                                           dropout_p=p, is_causal=causal)
    out = linear(out.permute(2, 0, 1, 3).reshape(L, N, E), out_proj_weight, out_proj_bias)
    if not batched:
        out = out.squeeze(1)
        weights = weights.squeeze(0) if weights is not None else None
    return out, weights


def _heads(op, t, static, N, h, d, name) -> Tensor:
    """Projected keys or values (len, N, E) as (N, h, len, d), or ``static`` (N * h, len, d)
    checked and viewed so."""
    if static is None:
        return t.reshape(t.shape[0], N, h, d).permute(1, 2, 0, 3)
    static = to_tensor(static)
    if static.ndim != 3 or static.shape[0] != N * h or static.shape[2] != d:
        raise ValueError(f"{op}: expecting {name} of shape (N * num_heads, S, head_dim) = "
                         f"({N * h}, S, {d}), got {tuple(static.shape)}")
    return static.reshape(N, h, static.shape[1], d)


def multi_head_attention_forward(
        query: Tensor, key: Tensor, value: Tensor, embed_dim_to_check: int, num_heads: int,
        in_proj_weight: Tensor | None, in_proj_bias: Tensor | None, bias_k: Tensor | None,
        bias_v: Tensor | None, add_zero_attn: bool, dropout_p: float, out_proj_weight: Tensor,
        out_proj_bias: Tensor | None, training: bool = True,
        key_padding_mask: Tensor | None = None, need_weights: bool = True,
        attn_mask: Tensor | None = None, use_separate_proj_weight: bool = False,
        q_proj_weight: Tensor | None = None, k_proj_weight: Tensor | None = None,
        v_proj_weight: Tensor | None = None, static_k: Tensor | None = None,
        static_v: Tensor | None = None, average_attn_weights: bool = True,
        is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
    """Multi-head attention, as ``torch.nn.functional.multi_head_attention_forward``.

    query (L, N, E), key and value (S, N, E), or unbatched (L, E), (S, E). Projections from
    the packed ``in_proj_weight`` (3E, E) or, with ``use_separate_proj_weight``, from
    ``q/k/v_proj_weight``; ``bias_k``/``bias_v`` (1, 1, E) are appended to the projected key
    and value sequences, ``add_zero_attn`` appends a zero key and value after the heads are
    split, and the masks are padded with an unmasked column for each. ``static_k`` /
    ``static_v`` (N * num_heads, S, E / num_heads) replace the projected keys / values. Bool
    masks are True where attention is NOT allowed, float masks are added; ``attn_mask`` is
    (L, S) or (N * num_heads, L, S), ``key_padding_mask`` (N, S). ``is_causal`` is a hint that
    ``attn_mask`` is the causal mask (which must be given). Dropout on the attention weights
    when ``training``. Returns ``(output, weights)``: weights averaged over heads, (N, L, S),
    or per head (N, num_heads, L, S) with ``average_attn_weights=False``; None unless
    ``need_weights``.
    """
    return mha_forward(query, key, value, embed_dim_to_check, num_heads, in_proj_weight,
                       in_proj_bias, bias_k, bias_v, add_zero_attn, dropout_p, out_proj_weight,
                       out_proj_bias, training, key_padding_mask, need_weights, attn_mask,
                       use_separate_proj_weight, q_proj_weight, k_proj_weight, v_proj_weight,
                       static_k, static_v, average_attn_weights, is_causal)
