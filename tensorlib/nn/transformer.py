"""Attention layers: MultiheadAttention and TransformerEncoderLayer (PyTorch's
parameter names and semantics, so weights copy over one to one)."""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .. import creation
from .._tensor import Tensor
from ..ops.elementwise import where
from . import functional as F
from . import init
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .normalization import LayerNorm
from .parameter import Parameter


def _additive(mask: Tensor | None, dtype, what: str) -> Tensor | None:
    """A bool mask (True = masked out, PyTorch's MultiheadAttention convention) or a float
    mask as an additive float mask."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        mask = creation.tensor(mask)
    if mask.dtype == np.bool_:
        return where(mask, -math.inf, 0.0).astype(dtype)
    if mask.dtype.kind == "f":
        return mask.astype(dtype)
    raise TypeError(f"MultiheadAttention: {what} must be bool or float, got {mask.dtype}")


class MultiheadAttention(Module):
    """Multi-head attention: ``softmax(Q K^T / sqrt(d) + mask) V`` over ``num_heads``
    projections, then an output projection.

    Inputs are (L, N, E), or (N, L, E) with ``batch_first``, or unbatched (L, E). Returns
    ``(output, weights)``; weights are (N, L, S) averaged over heads (or per head with
    ``average_attn_weights=False``), None when ``need_weights=False``. Bool masks mark
    positions that may NOT be attended (True = masked), float masks are added.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, dtype=None, device=None):
        super().__init__()
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv and add_zero_attn are "
                                      "not supported")
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be a positive "
                             f"multiple of num_heads ({num_heads})")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first = float(dropout), batch_first
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        kw = dict(dtype=dtype, device=device)
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(creation.empty(3 * embed_dim, embed_dim, **kw))
            for n in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(n, None)
        else:
            self.register_parameter("in_proj_weight", None)
            self.q_proj_weight = Parameter(creation.empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = Parameter(creation.empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = Parameter(creation.empty(embed_dim, self.vdim, **kw))
        if bias:
            self.in_proj_bias = Parameter(creation.empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **kw)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _projections(self):
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            ws = (w[:E], w[E:2 * E], w[2 * E:])
        else:
            ws = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        b = self.in_proj_bias
        bs = (b[:E], b[E:2 * E], b[2 * E:]) if b is not None else (None, None, None)
        return ws, bs

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False):
        batched = query.ndim == 3
        if not batched:
            query, key, value = (t.unsqueeze(1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = (t.swapaxes(0, 1) for t in (query, key, value))
        L, N, E = query.shape
        S = key.shape[0]
        if E != self.embed_dim or key.shape[1] != N or value.shape[:2] != key.shape[:2]:
            raise ValueError(f"MultiheadAttention: query {tuple(query.shape)}, key "
                             f"{tuple(key.shape)} and value {tuple(value.shape)} (as (L, N, E)) "
                             f"do not fit embed_dim={self.embed_dim}")
        h, d = self.num_heads, self.head_dim
        (wq, wk, wv), (bq, bk, bv) = self._projections()
        q = F.linear(query, wq, bq).reshape(L, N, h, d).permute(1, 2, 0, 3)
        k = F.linear(key, wk, bk).reshape(S, N, h, d).permute(1, 2, 0, 3)
        v = F.linear(value, wv, bv).reshape(S, N, h, d).permute(1, 2, 0, 3)
        mask = _additive(attn_mask, q.dtype, "attn_mask")
        if mask is not None:
            if mask.ndim == 3:  # (N * heads, L, S)
                mask = mask.reshape(N, h, L, S)
            elif mask.ndim != 2:
                raise ValueError(f"MultiheadAttention: attn_mask must be (L, S) or "
                                 f"(N * num_heads, L, S), got {tuple(attn_mask.shape)}")
        elif is_causal:
            causal = creation.tensor(np.triu(np.ones((L, S), bool), 1), device=q.device)
            mask = _additive(causal, q.dtype, "causal mask")
        kpm = _additive(key_padding_mask, q.dtype, "key_padding_mask")
        if kpm is not None:
            if tuple(kpm.shape) != (N, S):
                raise ValueError(f"MultiheadAttention: key_padding_mask must be (N, S) = "
                                 f"{(N, S)}, got {tuple(key_padding_mask.shape)}")
            kpm = kpm.reshape(N, 1, 1, S)
            mask = kpm if mask is None else mask + kpm
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            scores = (q @ k.swapaxes(-1, -2)) * (1.0 / math.sqrt(d))
            if mask is not None:
                scores = scores + mask
            attn = F.softmax(scores, -1)
            weights = attn.mean(axis=1) if average_attn_weights else attn
            if p:
                attn = F.dropout(attn, p, True)
            out = attn @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        out = self.out_proj(out.permute(2, 0, 1, 3).reshape(L, N, E))
        if not batched:
            out = out.squeeze(1)
            weights = weights.squeeze(0) if weights is not None else None
        elif self.batch_first:
            out = out.swapaxes(0, 1)
        return out, weights

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")


def _activation(a) -> Callable:
    if callable(a):
        return a
    if a == "relu":
        return F.relu
    if a == "gelu":
        return F.gelu
    raise ValueError(f"TransformerEncoderLayer: activation must be 'relu', 'gelu' or a "
                     f"callable, got {a!r}")


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual connection and
    LayerNorm (after each block, or before with ``norm_first``), as PyTorch."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 dtype=None, device=None):
        super().__init__()
        kw = dict(dtype=dtype, device=device)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = _activation(activation)

    def forward(self, src: Tensor, src_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None, is_causal: bool = False) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff(self.norm2(x))
        else:
            x = self.norm1(x + self._sa(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff(x))
        return x

    def _sa(self, x, mask, kpm, is_causal):
        out, _ = self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=kpm,
                                need_weights=False, is_causal=is_causal and mask is None)
        return self.dropout1(out)

    def _ff(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))
