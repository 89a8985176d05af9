"""linear, embedding and dropout."""
from __future__ import annotations

import math

import numpy as np

from ..amp.cast import autocast_call
from .._apply import apply
from .._core import grad_sums
from .._tensor import Tensor
from ..autograd.mode import state
from .accumulate import add_product, col_sum, matmul_for
from .nn_util import (as_float_or_complex_tensor, as_float_tensor, as_index_tensor, io_cost,
                      same_dtype)
from .registry import OpDef, register


# --- linear: x @ w.T + b in one op ------------------------------------------------------------
def _rows(a):
    """``a`` as a 2-D (rows, last dim) array; the row count spelled out, as ``-1`` cannot be
    resolved when the last dim is 0 (out_features or in_features of 0)."""
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


def _linear_fwd(xp, x, w, *b):
    lead = x.shape[:-1]
    x2 = _rows(x) if x.ndim != 2 else x
    out = matmul_for(xp)(x2, w.T)
    if b:
        out += b[0]
    return out.reshape(lead + (w.shape[0],)) if x.ndim != 2 else out


def _linear_grad_fwd(xp, g, x, w, *sums, need_x, need_w, need_b, into=None):
    """The gradients of x, w and b that ``need_*`` ask for, in that order. ``into`` (one flag
    per gradient): add it into the next array of ``sums`` (the backward pass's running sums)
    and return that array in its place."""
    out = []
    mm = matmul_for(xp)
    g2 = _rows(g)
    into = into or (False, False, False)
    sums = iter(sums)
    if need_x:
        if into[0]:
            s = next(sums)
            if s.flags.c_contiguous:
                add_product(xp, _rows(s), g2, w)
            else:
                s += mm(g2, w).reshape(s.shape)
            out.append(s)
        else:
            out.append(mm(g2, w).reshape(g.shape[:-1] + (w.shape[1],)))
    if need_w:
        if into[1]:
            s = next(sums)
            add_product(xp, s, g2.T, _rows(x))
            out.append(s)
        else:
            out.append(mm(g2.T, _rows(x)))
    if need_b:
        if into[2]:
            s = next(sums)
            col_sum(xp, g2, (s,))
            out.append(s)
        else:
            out.append(col_sum(xp, g2))
    return tuple(out)


def _linear_grad_infer(g, x, w, *sums, need_x, need_w, need_b, into=None):
    return tuple(s for s, need in ((x, need_x), (w, need_w), ((w[0][:1], w[1]), need_b))
                 if need)


# linear's first-order backward as one op (the composite is 4-6 ops: transposes, two matmuls,
# a sum); not differentiable, so used only when the backward pass is not itself recorded
LINEAR_GRAD = register(OpDef("linear_grad", _linear_grad_fwd, vjp=None, saves=False,
                             infer=_linear_grad_infer, cost=io_cost(), complex="forward"))


def _linear_vjp(n, g):
    sums = grad_sums()
    x, w = n.inputs[0], n.inputs[1]
    has_b = len(n.inputs) == 3
    if not state.grad_enabled and state.fwd_ad is None:
        need = (x._rg, w._rg, has_b and n.inputs[2]._rg)
        if any(need):
            if sums is None:
                got = iter(apply(LINEAR_GRAD, g, x, w, need_x=need[0], need_w=need[1],
                                 need_b=need[2]))
                grads = tuple(next(got) if k else None for k in need)
            else:
                grads = _linear_grads_into(g, x, w, need, sums)
            return grads if has_b else grads[:2]
    gx = g @ w if x._rg else None
    gw = gb = None
    g2 = _rows(g) if g.ndim != 2 else g
    if w._rg:
        x2 = _rows(x) if x.ndim != 2 else x
        gw = g2.T @ x2
    if len(n.inputs) == 3:
        gb = g2.sum(axis=0) if n.inputs[2]._rg else None
        return gx, gw, gb
    return gx, gw


def _linear_grads_into(g, x, w, need, sums) -> tuple:
    """linear's first-order gradients, each added into the walk's running sum for its input
    where there is one (a weight used at every step of a loop: one GEMM with beta = 1 per
    step); those sums are returned in their place."""
    into = tuple(bool(k and sums[i] is not None) for i, k in enumerate(need))
    add = tuple(sums[i] for i in range(3) if into[i])
    got = iter(apply(LINEAR_GRAD, g, x, w, *add, need_x=need[0], need_w=need[1],
                     need_b=need[2], into=into))
    out = []
    for i, k in enumerate(need):
        r = next(got) if k else None
        # the kernel returned a sum's array in its gradient's place: the walk wants its tensor
        out.append(sums[i] if into[i] else r)
    return tuple(out)


def _linear_infer(x, w, *b):
    return tuple(x[0][:-1]) + (w[0][0],), x[1]


LINEAR = register(OpDef("linear", _linear_fwd, vjp=_linear_vjp, infer=_linear_infer,
                        saves={0: (1,), 1: (0,)}, onnx="Gemm", complex="holomorphic",
                        grad_sums="fresh",
                        cost=io_cost(lambda i, o, **a: 2 * math.prod(d or 1 for d in o[0][0])
                                     * (i[1][0][1] or 1))))


def _float_or_complex(x, op: str, name: str = "input") -> Tensor:
    """The argument as a float32/float64/complex64/complex128 tensor (PyTorch's linear takes
    complex ones: ``x @ w.T + b``, no conjugate), or a DTypeError naming the op."""
    t = x if isinstance(x, Tensor) else None
    if t is not None and t._data.dtype in (np.complex64, np.complex128):
        return t
    try:
        return as_float_tensor(x, op, name)
    except TypeError as e:
        raise type(e)(str(e).replace("float32 or float64", "float32 or float64 (or "
                                     "complex64 or complex128)")) from None


def linear(input, weight, bias=None) -> Tensor:
    """``input @ weight.T + bias`` with weight (out_features, in_features), as PyTorch's:
    ``bias`` broadcasts against the output (a (out,) bias is fused into the product); a
    1-d weight (in_features,) gives ``input @ weight``, with no bias."""
    if state.autocast is not None:
        return autocast_call(linear, "linear", input, weight, bias)
    x = _float_or_complex(input, "linear")
    w = _float_or_complex(weight, "linear", "weight")
    b = None if bias is None else _float_or_complex(bias, "linear", "bias")
    same_dtype("linear", x, ("weight", w), ("bias", b))
    if w.ndim not in (1, 2):
        raise ValueError(f"linear: weight must be 2-D (out, in) or 1-D (in,), got shape "
                         f"{tuple(w.shape)}")
    if x.ndim < 1 or x.shape[-1] != w.shape[-1]:
        raise ValueError(f"linear: input of shape {tuple(x.shape)} does not match weight of "
                         f"shape {tuple(w.shape)} (last dimension must be {w.shape[-1]})")
    if w.ndim == 1:
        if b is not None:       # PyTorch refuses it too (addmm needs a 2-D weight)
            raise ValueError(f"linear: a 1-D weight {tuple(w.shape)} takes no bias; pass a "
                             f"(1, {w.shape[0]}) weight for one output feature with a bias")
        return x @ w
    if b is not None and tuple(b.shape) != (w.shape[0],):
        out_shape = tuple(x.shape[:-1]) + (w.shape[0],)
        try:
            fits = np.broadcast_shapes(tuple(b.shape), out_shape) == out_shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"linear: bias of shape {tuple(b.shape)} does not broadcast to "
                             f"the output's shape {out_shape}")
        return linear(x, w) + b
    if x.ndim == 1:
        return apply(LINEAR, *((x.reshape(1, -1), w) + ((b,) if b is not None else ()))
                     ).reshape(w.shape[0])
    return apply(LINEAR, *((x, w) + ((b,) if b is not None else ())))


def bilinear(input1, input2, weight, bias=None) -> Tensor:
    """``y[..., o] = x1 @ weight[o] @ x2 + bias[o]`` for weight (out, in1, in2)."""
    if state.autocast is not None:
        return autocast_call(bilinear, "bilinear", input1, input2, weight, bias)
    from .linalg import einsum
    a = as_float_tensor(input1, "bilinear", "input1")
    b = as_float_tensor(input2, "bilinear", "input2")
    w = as_float_tensor(weight, "bilinear", "weight")
    if w.ndim != 3 or a.shape[-1] != w.shape[1] or b.shape[-1] != w.shape[2] or \
            tuple(a.shape[:-1]) != tuple(b.shape[:-1]):
        raise ValueError(f"bilinear: inputs {tuple(a.shape)} and {tuple(b.shape)} do not fit "
                         f"weight {tuple(w.shape)} (out, in1, in2)")
    lead = tuple(a.shape[:-1])
    y = einsum("bi,oij,bj->bo", a.reshape(-1, a.shape[-1]), w, b.reshape(-1, b.shape[-1]))
    if bias is not None:
        y = y + bias
    return y.reshape(lead + (w.shape[0],))


# --- embedding --------------------------------------------------------------------------------
def _emb_fwd(xp, w, idx, *, padding_idx):
    return xp.take(w, idx, axis=0)


def _emb_grad_fwd(xp, g, idx, *into, num_weights, padding_idx):
    """The (num_weights, D) gradient of the table: rows of ``g`` added at ``idx``; with
    ``into`` (the walk's running sum of that gradient), added into it instead."""
    D = g.shape[-1]
    out = into[0] if into else xp.zeros((num_weights, D), g.dtype)
    flat, g2 = idx.reshape(-1), g.reshape(-1, D)
    if padding_idx is not None:
        keep = flat != padding_idx
        flat, g2 = flat[keep], g2[keep]
    xp.add.at(out, flat, g2)
    return out


def _emb_grad_cpu(g, idx, *into, num_weights, padding_idx):
    from .. import _ops
    D = g.shape[-1]
    if into and not (into[0].dtype == g.dtype and into[0].flags.c_contiguous):
        into[0][...] += _emb_grad_cpu(g, idx, num_weights=num_weights, padding_idx=padding_idx)
        return into[0]
    out = into[0] if into else np.empty((num_weights, D), g.dtype)
    if out.size:
        flat = np.ascontiguousarray(idx.reshape(-1), dtype=np.int64)
        # the Cython scatter does not check: indices changed in place after the forward
        # pass (or fed to the op directly) must not write outside the table
        if flat.size and (flat.min() < 0 or flat.max() >= num_weights):
            raise IndexError(f"embedding_grad: indices must lie in [0, {num_weights}), got "
                             f"range [{flat.min()}, {flat.max()}]")
        _ops.embedding_backward(np.ascontiguousarray(g.reshape(-1, D)), flat, out,
                                -1 if padding_idx is None else padding_idx, bool(into))
    return out


def _emb_vjp(n, g):
    sums = grad_sums()
    w, idx = n.inputs
    into = () if sums is None or sums[0] is None else (sums[0],)
    gw = apply(EMBEDDING_GRAD, g, idx, *into, num_weights=w.shape[0],
               padding_idx=n.attrs["padding_idx"])
    return (into[0] if into else gw), None


def _emb_grad_vjp(n, gg):
    g, idx = n.inputs
    pi = n.attrs["padding_idx"]
    out = apply(EMBEDDING, gg, idx, padding_idx=pi)
    if pi is not None:
        # a tensor op, not a constant of idx's values: a captured graph's symbolic gradient
        # must mask the rows of the indices it is fed, not those it was traced with
        out = out.masked_fill((idx == pi)[..., None], 0.0)
    return out, None


EMBEDDING = register(OpDef(
    "embedding", _emb_fwd, vjp=_emb_vjp, saves=False, onnx="Gather", grad_sums="fresh",
    infer=lambda w, i, *, padding_idx: (tuple(i[0]) + (w[0][1],), w[1]), cost=io_cost()))
EMBEDDING_GRAD = register(OpDef(
    "embedding_grad", _emb_grad_fwd, kernels={"cpu": _emb_grad_cpu}, vjp=_emb_grad_vjp,
    saves=False, cost=io_cost(),
    infer=lambda g, i, *into, num_weights, padding_idx: ((num_weights, g[0][-1]), g[1])))


def _emb_freq_vjp(n, g):
    """embedding's gradient with each row divided by its count in the indices: every entry's
    share scaled by 1 / (count of its index), in tensor ops (grad of grad follows)."""
    from ..creation import zeros
    from .indexing import index_add
    w, idx = n.inputs
    flat = idx.reshape(-1)
    cnt = index_add(zeros(w.shape[0], dtype=g.dtype, device=g.device), flat,
                    (flat * 0 + 1).astype(g.dtype), axis=0)
    share = (1.0 / cnt.take(idx, axis=0)).unsqueeze(-1)
    return apply(EMBEDDING_GRAD, g * share, idx, num_weights=w.shape[0],
                 padding_idx=n.attrs["padding_idx"]), None


# the same lookup, with PyTorch's scale_grad_by_freq gradient (a separate entry: the CUDA
# binding of ``embedding`` keeps its signature)
EMBEDDING_FREQ = register(OpDef(
    "embedding_scale_grad_by_freq", _emb_fwd, vjp=_emb_freq_vjp, saves=False,
    onnx=lambda ctx, n: ctx.op("Gather", ctx.ins(n), axis=0),
    infer=lambda w, i, *, padding_idx: (tuple(i[0]) + (w[0][1],), w[1]), cost=io_cost()))


def embedding_renorm_(weight: Tensor, input, max_norm: float, norm_type: float = 2.0) -> Tensor:
    """Scale, in place and without recording a gradient, each row of ``weight`` indexed by
    ``input`` whose ``norm_type``-norm exceeds ``max_norm`` to norm ``max_norm`` (PyTorch's
    ``embedding_renorm_``: the factor is ``max_norm / (norm + 1e-7)``). Returns ``weight``."""
    from ..backends import xp_of
    idx = as_index_tensor(input, "embedding", "input")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, dim), got shape "
                         f"{tuple(weight.shape)}")
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not max_norm >= 0:
        raise ValueError(f"embedding: max_norm must be >= 0, got {max_norm}")
    if state.tracer is not None:
        return _renorm_traced(weight, idx, max_norm, norm_type)
    data = weight._data
    xp = xp_of(data)
    rows = xp.unique(idx._data.reshape(-1))
    if rows.size == 0:
        return weight
    sub = data[rows]
    norms = xp.linalg.norm(sub, ord=norm_type, axis=1)
    big = norms > max_norm
    if bool(big.any()):
        scale = xp.where(big, max_norm / (norms.astype(np.float64) + 1e-7), 1.0)
        data[rows] = (sub * scale[:, None]).astype(data.dtype)
        weight._version[0] += 1
    return weight


def _renorm_traced(weight: Tensor, idx: Tensor, max_norm: float, norm_type: float) -> Tensor:
    """:func:`embedding_renorm_` under capture: the same arithmetic as tensor ops and a row
    write into ``weight``, which the graph records as a write of that state, so every replay
    and a reloaded graph file renormalise the table as the eager call does. Every looked-up
    row is written (scaled by 1 when under ``max_norm``): the graph cannot branch on data.

    The write always has one more entry, row 0 first, so an empty lookup is no special case:
    a Python test of the size would pin the graph to it, and ONNX's row write gathers its
    values at index 0 even when there are none. Row 0's extra entry is scaled only when the
    lookup holds 0 too, so both writes of row 0 agree whichever one lands."""
    from ..autograd.mode import no_grad
    from .elementwise import where
    from ..creation import zeros
    from .shape import cat
    flat = idx.reshape(-1)
    with no_grad():
        ext = cat([zeros(1, dtype=flat.dtype), flat])
        rows = weight.take(ext, 0)
        norms = rows.norm(norm_type, axis=1, keepdims=True)
        hit0 = ((flat == 0).astype(np.int64).sum() > 0).reshape(1)
        apply_ = cat([hit0, flat == flat]).reshape(-1, 1)
        scale = where(apply_ & (norms > max_norm), max_norm / (norms.astype(np.float64) + 1e-7),
                      1.0)
        weight[ext] = (rows.astype(np.float64) * scale).astype(weight.dtype)
    state.tracer.mark_transient(weight)     # the lookup recomputes it: ONNX may drop it
    return weight


def embedding(input, weight, padding_idx: int | None = None, max_norm: float | None = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False,
              sparse: bool = False) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) at the integer indices ``input``; the row at
    ``padding_idx`` gets no gradient. With ``max_norm``, the looked-up rows of ``weight`` whose
    ``norm_type``-norm exceeds it are first renormalised in place (see
    :func:`embedding_renorm_`), as in PyTorch; the gradient is the lookup's alone.
    ``scale_grad_by_freq`` divides each row's gradient by the times ``input`` holds it.
    ``sparse=True``: ``weight``'s gradient is a sparse COO tensor (one entry per looked-up
    id, uncoalesced, as PyTorch's); under graph capture it stays a dense table (a warning
    says so; the optimizers' updates are the same).

    >>> F.embedding(tl.tensor([[0, 2]]), tl.randn(5, 3)).shape
    (1, 2, 3)
    """
    idx = as_index_tensor(input, "embedding", "input")
    w = as_float_tensor(weight, "embedding", "weight")
    if w.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, dim), got shape "
                         f"{tuple(w.shape)}")
    V = w.shape[0]
    if padding_idx is not None:
        if not -V <= padding_idx < V:
            raise ValueError(f"embedding: padding_idx {padding_idx} is out of range for "
                             f"{V} embeddings")
        padding_idx = int(padding_idx) % V
    # on the GPU the range is checked on the device (out-of-range rows are NaN): a copy to
    # the host here would synchronise every call
    d = idx._host() if idx.device.type == "cpu" else np.empty(0, np.int64)
    if d.size and (int(d.min()) < 0 or int(d.max()) >= V):
        raise IndexError(f"embedding: indices must lie in [0, {V}), got range "
                         f"[{int(d.min())}, {int(d.max())}]")
    op = EMBEDDING_FREQ if scale_grad_by_freq else EMBEDDING
    if sparse and w._rg and state.grad_enabled:
        if state.tracer is not None:
            from .._warn import warn_user
            warn_user("embedding: sparse=True gives a dense gradient under graph capture "
                      "(a captured graph holds no sparse tensors); the updates are the same")
        else:
            from ..sparse import embedding_sparse
            if max_norm is not None:
                embedding_renorm_(w, idx, max_norm, norm_type)
            return embedding_sparse(w, idx, padding_idx, scale_grad_by_freq, EMBEDDING)
    if max_norm is not None:
        # (under capture a recorded write of w: the lookup below reads the written table)
        embedding_renorm_(w, idx, max_norm, norm_type)
    return apply(op, w, idx, padding_idx=padding_idx)


# --- dropout ----------------------------------------------------------------------------------
def _dropout_input(name: str, input, p, training: bool) -> Tensor:
    """The input of a dropout: float or complex; complex only where no mask is drawn (eval
    mode, p = 0 or 1), as PyTorch, which has no Bernoulli draw for complex tensors."""
    x = as_float_or_complex_tensor(input, name)
    if x._data.dtype.kind == "c" and training and 0.0 < float(p) < 1.0:
        raise NotImplementedError(
            f"{name}: complex tensors are not supported in training mode (PyTorch refuses "
            f"them too); in eval mode (training=False) it is the identity")
    return x


def _channel_dropout(name: str, spatial: int, input, p: float, training: bool,
                     generator) -> Tensor:
    """Zero whole channels of (N, C, *spatial) or (C, *spatial) with probability ``p``."""
    from ..creation import rand
    x = _dropout_input(name, input, p, training)
    if x.ndim not in (spatial + 1, spatial + 2):
        dims = ("L", "H, W", "D, H, W")[spatial - 1]
        raise ValueError(f"{name}: input must be (N, C, {dims}) or without N, got shape "
                         f"{tuple(x.shape)}")
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    lead = x.shape[:x.ndim - spatial]
    keep = rand(*lead, generator=generator, dtype="float64", device=x.device) >= p
    mask = keep.astype(x.dtype).reshape(tuple(lead) + (1,) * spatial)
    return x * (mask * (1.0 / (1.0 - p)))


def dropout1d(input, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Zero whole channels of (N, C, L) in training (scaling the rest by 1 / (1 - p))."""
    return _channel_dropout("dropout1d", 1, input, p, training, generator)


def _nd_dropout(name: str, spatial: int, input, p, training, generator) -> Tensor:
    """dropout2d/3d: whole channels of (N, C, *S) or (C, *S), ``spatial`` dims in S. Another
    rank warns and runs as PyTorch's (deprecated there): the input is read as one unbatched
    sample, its first dim the channels."""
    x = _dropout_input(name, input, p, training)
    if x.ndim not in (spatial + 1, spatial + 2):
        import warnings
        dims = ", ".join("DHW"[3 - spatial:])
        warnings.warn(f"{name}: Received a {x.ndim}-D input to {name}, which is deprecated (in "
                      f"PyTorch too): use dropout instead. {name} drops whole channels of "
                      f"(N, C, {dims}) or (C, {dims}) inputs.", stacklevel=3)
        if x.ndim == 0:
            return dropout(x, p, training, generator)
        flat = x.reshape((x.shape[0], math.prod(x.shape[1:])) + (1,) * (spatial - 1))
        return _channel_dropout(name, spatial, flat, p, training, generator).reshape(x.shape)
    return _channel_dropout(name, spatial, x, p, training, generator)


def dropout2d(input, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Zero whole channels (feature maps) of (N, C, H, W) or (C, H, W) in training (another
    rank warns and is read as one unbatched sample, as PyTorch's)."""
    return _nd_dropout("dropout2d", 2, input, p, training, generator)


def dropout3d(input, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Zero whole channels (volumes) of (N, C, D, H, W) or (C, D, H, W) in training (another
    rank warns and is read as one unbatched sample, as PyTorch's)."""
    return _nd_dropout("dropout3d", 3, input, p, training, generator)


def dropout(input, p: float = 0.5, training: bool = True, generator=None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p) in
    training; the identity otherwise. Seeded by ``tl.manual_seed`` (or ``generator``).
    Complex input: only the identity (eval mode, or p 0 or 1), as PyTorch's."""
    from ..creation import rand
    x = _dropout_input("dropout", input, p, training)
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    # drawn through tl.rand so graph capture records a draw that is redone on every run
    keep = rand(*x.shape, generator=generator, dtype="float64", device=x.device) >= p
    return x * (keep.astype(x.dtype) * (1.0 / (1.0 - p)))


from .nn_embedding_bag import embedding_bag  # noqa: E402,F401  (it reads embedding)
