"""Attention layers: MultiheadAttention, the Transformer encoder and decoder layers and
stacks, and Transformer (PyTorch's parameter names and semantics, so weights copy over one to
one)."""
from __future__ import annotations

import math
import copy
from collections.abc import Callable


from .. import creation
from ..ops.nn_attention import causal_mask
from ..ops.nn_mha import mha_forward
from ..ops.nn_util import half_via_float32
from .containers import ModuleList
from .._tensor import Tensor
from . import functional as F
from . import init
from .dropout import Dropout
from .linear import Linear, _as_int, _positive
from .module import Module
from .normalization import LayerNorm
from .parameter import Parameter


# F.multi_head_attention_forward's implementation, its errors naming MultiheadAttention;
# float16 computed in float32 as F's functions
_mha_forward = half_via_float32(mha_forward)


class MultiheadAttention(Module):
    """Multi-head attention: ``softmax(Q K^T / sqrt(d) + mask) V`` over ``num_heads``
    projections, then an output projection.

    Inputs are (L, N, E), or (N, L, E) with ``batch_first``, or unbatched (L, E). Returns
    ``(output, weights)``; weights are (N, L, S) averaged over heads (or per head with
    ``average_attn_weights=False``), None when ``need_weights=False``. Bool masks mark
    positions that may NOT be attended (True = masked), float masks are added.
    ``add_bias_kv`` adds parameters ``bias_k``, ``bias_v`` (1, 1, E) appended to the
    projected key and value sequences, ``add_zero_attn`` a zero key and value appended after
    them (masks padded with an unmasked column for each), as PyTorch. ``is_causal`` without
    ``attn_mask`` builds the causal mask (PyTorch requires the mask). The computation is
    ``F.multi_head_attention_forward``.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, dtype=None, device=None):
        super().__init__()
        embed_dim = _positive("embed_dim", "MultiheadAttention", embed_dim)
        num_heads = _positive("num_heads", "MultiheadAttention", num_heads)
        kdim = None if kdim is None else _positive("kdim", "MultiheadAttention", kdim)
        vdim = None if vdim is None else _positive("vdim", "MultiheadAttention", vdim)
        if embed_dim % num_heads:
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
        if add_bias_kv:
            self.bias_k = Parameter(creation.empty(1, 1, embed_dim, **kw))
            self.bias_v = Parameter(creation.empty(1, 1, embed_dim, **kw))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = bool(add_zero_attn)
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
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def forward(self, query: Tensor, key: Tensor, value: Tensor,
                key_padding_mask: Tensor | None = None, need_weights: bool = True,
                attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False):
        if query.ndim == 3 and self.batch_first:
            query, key, value = (t.swapaxes(0, 1) for t in (query, key, value))
        if is_causal and attn_mask is None:
            # tensorlib's leniency: the hint alone builds the causal mask (PyTorch needs it)
            S = key.shape[0]
            attn_mask = causal_mask(query.shape[0], S, query.device)
        sep = not self._qkv_same_embed_dim
        out, weights = _mha_forward(
            query, key, value, self.embed_dim, self.num_heads, self.in_proj_weight,
            self.in_proj_bias, self.bias_k, self.bias_v, self.add_zero_attn, self.dropout,
            self.out_proj.weight, self.out_proj.bias, training=self.training,
            key_padding_mask=key_padding_mask, need_weights=need_weights, attn_mask=attn_mask,
            use_separate_proj_weight=sep, q_proj_weight=self.q_proj_weight,
            k_proj_weight=self.k_proj_weight, v_proj_weight=self.v_proj_weight,
            average_attn_weights=average_attn_weights, is_causal=is_causal,
            op="MultiheadAttention")
        if query.ndim == 3 and self.batch_first:
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


class _Layer(Module):
    """What the encoder and decoder layers share: self-attention, the feed-forward block,
    ``n_blocks`` LayerNorms and dropouts (one per residual block), with PyTorch's names and
    registration order (the decoder's three blocks add ``multihead_attn``)."""

    def __init__(self, d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                 batch_first, norm_first, bias, dtype, device, n_blocks):
        super().__init__()
        kw = dict(dtype=dtype, device=device)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, **kw)
        if n_blocks == 3:
            # the decoder's attention over memory comes next in PyTorch's order (so
            # named_parameters, state_dict and a Transformer's init draws match it)
            self.multihead_attn = MultiheadAttention(d_model, nhead, dropout=dropout,
                                                     bias=bias, batch_first=batch_first, **kw)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        for i in range(1, n_blocks + 1):
            setattr(self, f"norm{i}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw))
        for i in range(1, n_blocks + 1):
            setattr(self, f"dropout{i}", Dropout(dropout))
        self._ff_dropout = f"dropout{n_blocks}"
        self.activation = _activation(activation)

    def _sa(self, x, mask, kpm, is_causal):
        out, _ = self.self_attn(x, x, x, attn_mask=mask, key_padding_mask=kpm,
                                need_weights=False, is_causal=is_causal and mask is None)
        return self.dropout1(out)

    def _ff(self, x):
        out = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return getattr(self, self._ff_dropout)(out)


class TransformerEncoderLayer(_Layer):
    """Self-attention then a feed-forward block, each with a residual connection and
    LayerNorm (after each block, or before with ``norm_first``), as PyTorch."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 dtype=None, device=None):
        super().__init__(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                         batch_first, norm_first, bias, dtype, device, n_blocks=2)

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


class TransformerDecoderLayer(_Layer):
    """Self-attention over the target, attention over the encoder's output (``memory``), then
    a feed-forward block; each with a residual connection and LayerNorm, as PyTorch."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 dtype=None, device=None):
        super().__init__(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                         batch_first, norm_first, bias, dtype, device, n_blocks=3)

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False) -> Tensor:
        x = tgt
        if self.norm_first:
            x = x + self._sa(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha(self.norm2(x), memory, memory_mask, memory_key_padding_mask,
                              memory_is_causal)
            x = x + self._ff(self.norm3(x))
        else:
            x = self.norm1(x + self._sa(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(x + self._mha(x, memory, memory_mask, memory_key_padding_mask,
                                         memory_is_causal))
            x = self.norm3(x + self._ff(x))
        return x

    def _mha(self, x, mem, mask, kpm, is_causal):
        out, _ = self.multihead_attn(x, mem, mem, attn_mask=mask, key_padding_mask=kpm,
                                     need_weights=False, is_causal=is_causal and mask is None)
        return self.dropout2(out)


def _clones(layer: Module, n: int, what: str) -> ModuleList:
    k = _as_int(n)
    if k is None or k < 1:
        raise ValueError(f"{what}: num_layers must be at least 1 (an integer), got {n!r}")
    return ModuleList(copy.deepcopy(layer) for _ in range(k))


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` (each with its own weights), then ``norm``
    when given. PyTorch's ``enable_nested_tensor`` (a fast path for padded batches) is
    accepted and ignored; ``mask_check`` too.

    >>> enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 4, 32), num_layers=2)
    """

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int,
                 norm: Module | None = None, enable_nested_tensor: bool = True,
                 mask_check: bool = True):
        super().__init__()
        self.layers = _clones(encoder_layer, num_layers, "TransformerEncoder")
        self.num_layers = len(self.layers)
        self.norm = norm

    def forward(self, src: Tensor, mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None,
                is_causal: bool | None = None) -> Tensor:
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                      is_causal=bool(is_causal))
        return self.norm(x) if self.norm is not None else x


class TransformerDecoder(Module):
    """``num_layers`` copies of ``decoder_layer``, then ``norm`` when given."""

    def __init__(self, decoder_layer: TransformerDecoderLayer, num_layers: int,
                 norm: Module | None = None):
        super().__init__()
        self.layers = _clones(decoder_layer, num_layers, "TransformerDecoder")
        self.num_layers = len(self.layers)
        self.norm = norm

    def forward(self, tgt: Tensor, memory: Tensor, tgt_mask: Tensor | None = None,
                memory_mask: Tensor | None = None, tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None,
                tgt_is_causal: bool | None = None, memory_is_causal: bool = False) -> Tensor:
        x = tgt
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                      tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask,
                      tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
        return self.norm(x) if self.norm is not None else x


class Transformer(Module):
    """The encoder-decoder model of "Attention Is All You Need", as PyTorch's
    ``nn.Transformer``: encoder and decoder stacks, each ending in a LayerNorm.

    >>> model = nn.Transformer(d_model=16, nhead=4, num_encoder_layers=2,
    ...                        num_decoder_layers=2, dim_feedforward=32)
    >>> out = model(src, tgt)          # (T, N, E), or (N, T, E) with batch_first

    ``custom_encoder`` / ``custom_decoder`` (modules called as ``encoder(src, mask=,
    src_key_padding_mask=, is_causal=)`` and ``decoder(tgt, memory, tgt_mask=, ...)``)
    replace the built stacks as ``.encoder`` / ``.decoder``; as PyTorch, their matrices are
    re-initialised Xavier-uniform too.
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", custom_encoder: Module | None = None,
                 custom_decoder: Module | None = None, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 dtype=None, device=None):
        super().__init__()
        kw = dict(dim_feedforward=dim_feedforward, dropout=dropout, activation=activation,
                  layer_norm_eps=layer_norm_eps, batch_first=batch_first,
                  norm_first=norm_first, bias=bias, dtype=dtype, device=device)
        nkw = dict(eps=layer_norm_eps, bias=bias, dtype=dtype, device=device)
        for what, m in (("custom_encoder", custom_encoder), ("custom_decoder", custom_decoder)):
            if m is not None and not callable(m):
                raise TypeError(f"Transformer: {what} must be a Module (callable), got "
                                f"{type(m).__name__}")
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            self.encoder = TransformerEncoder(TransformerEncoderLayer(d_model, nhead, **kw),
                                              num_encoder_layers, LayerNorm(d_model, **nkw))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            self.decoder = TransformerDecoder(TransformerDecoderLayer(d_model, nhead, **kw),
                                              num_decoder_layers, LayerNorm(d_model, **nkw))
        self.d_model, self.nhead = _as_int(d_model), _as_int(nhead)    # checked by the layers
        self.batch_first = batch_first
        for p in self.parameters():      # as PyTorch: Xavier-uniform for every matrix
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(self, src: Tensor, tgt: Tensor, src_mask: Tensor | None = None,
                tgt_mask: Tensor | None = None, memory_mask: Tensor | None = None,
                src_key_padding_mask: Tensor | None = None,
                tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None,
                src_is_causal: bool | None = None, tgt_is_causal: bool | None = None,
                memory_is_causal: bool = False) -> Tensor:
        b = 0 if self.batch_first else 1
        if src.ndim == 3 and src.shape[b] != tgt.shape[b]:
            raise ValueError(f"Transformer: src {tuple(src.shape)} and tgt {tuple(tgt.shape)} "
                             "must have the same batch size")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise ValueError(f"Transformer: the feature size of src {tuple(src.shape)} and tgt "
                             f"{tuple(tgt.shape)} must be d_model={self.d_model}")
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    @staticmethod
    def generate_square_subsequent_mask(sz: int, dtype=None, device=None) -> Tensor:
        """An (sz, sz) float mask: -inf above the diagonal, 0 elsewhere (causal attention);
        ``dtype`` defaults to the default float dtype, as PyTorch.

        Built from ``arange`` comparisons (``causal_mask``), not NumPy: under capture with a
        None sequence dim, ``generate_square_subsequent_mask(x.shape[1])`` follows the
        length the graph runs with."""
        from .. import _dtypes
        dt = _dtypes.default_float if dtype is None else _dtypes.as_dtype(dtype)
        if dt.kind not in "fc":
            raise TypeError(f"generate_square_subsequent_mask: dtype must be floating (the "
                            f"mask holds -inf), got {dt}")
        hide = causal_mask(sz, sz, device)
        return hide.astype(dt).masked_fill(hide, -math.inf)
