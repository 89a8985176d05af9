"""Recurrent cells: lstm_cell and gru_cell (fused gate ops); the whole-sequence ops built on
them live in ``nn_rnn_seq``.

lstm_cell = two bias-free linear ops for the gate pre-activations, then one ``lstm_cell``
op: (x W_ih^T, c, h W_hh^T, b_ih, b_hh) -> (h', c', activated gates). The op adds its
addends (any number after c, each the gates' shape or one gate row (4H,)) to the first
input inside its kernel, as PyTorch's fused cell does: three launches a step on a GPU, not
six (two bias adds and the sum of the two products). Its vjp takes one fused op
(``lstm_cell_grad``) when the backward pass is not itself recorded, and the same
formula in tensorlib ops when it is (create_graph=True), so grad of grad works.
On the CPU, float32 runs one fused Cython pass each way (``_ops.lstm_cell_fwd/bwd``, built
on the vectorised exp/tanh of ``_simd_math.h``); other dtypes and devices run the NumPy/CuPy
formulas below.

gru_cell = the two products with their biases (``linear``), then one ``gru_cell`` op:
(x W_ih^T + b_ih, h W_hh^T + b_hh, h) -> (h', activated r, z, n), one NumPy/CuPy formula
for every device; its vjp mirrors lstm_cell's (``gru_cell_grad`` or tensorlib ops).
"""
from __future__ import annotations

import numpy as np

from ..amp.cast import autocast_call
from .._apply import apply
from .._tensor import Tensor
from ..autograd.mode import state
from .._core import grad_sums
from .accumulate import col_sum
from .nn_layers import linear
from .nn_util import as_float_or_complex_tensor as as_float_tensor, io_cost, same_dtype
from .registry import OpDef, register
from ._util import numel, unbroadcast
from .shape import concatenate


def _pre(gates, addends):
    """The gate pre-activations: ``gates`` plus each addend (broadcast along the rows)."""
    if not addends:
        return gates
    out = gates + addends[0]
    for a in addends[1:]:
        out += a
    return out


def _cell_fwd(xp, gates, c, *addends):
    gates = _pre(gates, addends)
    H = c.shape[1]
    # all four activations through one tanh pass: sigmoid(x) = (tanh(x / 2) + 1) / 2 (no
    # overflow, no branches; 4 vectorised passes instead of ~12 for exp/where sigmoids)
    scale = xp.full(4 * H, 0.5, gates.dtype)
    scale[2 * H:3 * H] = 1.0
    acts = xp.multiply(gates, scale)
    xp.tanh(acts, out=acts)
    for sl in (acts[:, :2 * H], acts[:, 3 * H:]):
        sl *= 0.5
        sl += 0.5
    i, f, g, o = acts[:, :H], acts[:, H:2 * H], acts[:, 2 * H:3 * H], acts[:, 3 * H:]
    c_new = f * c + i * g
    return o * xp.tanh(c_new), c_new, acts


def _f32_rows(*arrays) -> bool:
    """Whether the fused float32 kernels can take these arrays as they are."""
    return all(type(a) is np.ndarray and a.dtype == np.float32 and a.ndim == 2
               and a.flags.c_contiguous for a in arrays)


def _cell_cpu(gates, c, *addends, out=None):
    """(h', c', acts); ``out``: three arrays to write them into (C-contiguous, the shapes of
    c, c, gates), as the sequence kernels do for each step's rows of their outputs."""
    gates = _pre(gates, addends)
    n, h = c.shape
    if not _f32_rows(gates, c) or gates.shape != (n, 4 * h) or (
            out is not None and not _f32_rows(*out)):
        res = _cell_fwd(np, gates, c)
        if out is None:
            return res
        for o, r in zip(out, res):
            o[...] = r
        return out
    from .. import _ops
    h_new, c_new, acts = out if out is not None else (
        np.empty_like(c), np.empty_like(c), np.empty_like(gates))
    _ops.lstm_cell_fwd(gates, c, h_new, c_new, acts)
    return h_new, c_new, acts


def split_acts_grad(rest, acts_grad):
    """(gacts, sums) from lstm_cell_grad's inputs after gc: gacts first when ``acts_grad``."""
    return (rest[0], rest[1:]) if acts_grad else (None, rest)


def _cell_grad_cpu(acts, c, c_new, gh, gc, *rest, acts_grad=True, out=None):
    """(dgates, dc); ``rest``: the activations' gradient (when ``acts_grad``), then arrays (a
    bias row's shape) that dgates' column sums are added into; ``out``: an array for dgates
    (C-contiguous, acts' shape)."""
    gacts, sums = split_acts_grad(rest, acts_grad)
    n, h = c.shape
    if (not _f32_rows(acts, c, c_new, gh, gc) or acts.shape != (n, 4 * h)
            or not c.shape == c_new.shape == gh.shape == gc.shape
            or gacts is not None and (not _f32_rows(gacts) or gacts.shape != acts.shape)
            or out is not None and not _f32_rows(out)):
        dgates, dc = _cell_grad_fwd(np, acts, c, c_new, gh, gc, *rest, acts_grad=acts_grad)
        if out is not None:
            out[...] = dgates
            dgates = out
        return dgates, dc
    from .. import _ops
    dgates, dc = np.empty_like(acts) if out is None else out, np.empty_like(c)
    _ops.lstm_cell_bwd(acts, c, c_new, gh, gc, gacts, dgates, dc)
    if sums:
        col_sum(np, dgates, sums)
    return dgates, dc


def _cell_grad_fwd(xp, acts, c, c_new, gh, gc, *rest, acts_grad=True):
    gacts, sums = split_acts_grad(rest, acts_grad)
    H = c.shape[1]
    i, f, g, o = acts[:, :H], acts[:, H:2 * H], acts[:, 2 * H:3 * H], acts[:, 3 * H:]
    tc = xp.tanh(c_new)
    dcn = gc + gh * o * (1 - tc * tc)
    d = xp.concatenate([dcn * g, dcn * c, dcn * i, gh * tc], axis=1)
    if gacts is not None:
        d = d + gacts
    sg = xp.concatenate([i * (1 - i), f * (1 - f), 1 - g * g, o * (1 - o)], axis=1)
    dgates = d * sg
    if sums:
        col_sum(xp, dgates, sums)
    return dgates, dcn * f


def _bias_sums(n, sums) -> tuple | None:
    """(1 if the first addend is gates-shaped else 0, the biases' running sums) when every
    addend after such a one is a bias row that needs a gradient and has a running sum in
    the walk (``sums``); else None."""
    addends = n.inputs[2:]
    gates = tuple(n.inputs[0].shape)
    lead = 1 if addends and tuple(addends[0].shape) == gates else 0
    if sums is None or len(addends) == lead:
        return None
    rows = tuple(sums[2 + lead:])
    if any(s is None or not a._rg or tuple(a.shape) != gates[1:]
           for a, s in zip(addends[lead:], rows)):
        return None
    return lead, rows


def _cell_vjp(n, gh, gc, gacts):
    # (the walk passes None for an output nobody used, OpDef.none_grads: acts, always, for
    # F.lstm_cell; the last step's c)
    sums = grad_sums()
    c = n.inputs[1]
    if gh is None or gc is None:
        from ..creation import zeros_like
        gh = zeros_like(c) if gh is None else gh
        gc = zeros_like(c) if gc is None else gc
    acts, c_new = n.output(2), n.output(1)
    # the fused first-order kernel is real-only: complex values take the ops below
    if not state.grad_enabled and state.fwd_ad is None and c._data.dtype.kind != "c":
        # the biases' running sums, where the walk has them, take the gates' column sums
        # inside the same op (on a GPU one launch for both b_ih and b_hh)
        into = _bias_sums(n, sums)
        rows = () if into is None else into[1]
        ga = () if gacts is None else (gacts,)
        grads = apply(LSTM_CELL_GRAD, acts.detach(), c, c_new.detach(), gh, gc, *ga, *rows,
                      acts_grad=gacts is not None)
        if into is not None:
            lead = (grads[0] if n.inputs[2]._rg else None,) if into[0] else ()
            return tuple(grads) + lead + rows
    else:
        grads = _cell_bwd_ops(acts, c, c_new, gh, gc, gacts)
    if len(n.inputs) == 2:
        return grads
    # each addend's gradient is the gates' gradient summed to its shape: one sum serves
    # every addend of a shape (b_ih and b_hh)
    summed: dict = {}
    extra = []
    dg = grads[0]
    for a in n.inputs[2:]:
        shape = tuple(a.shape)
        if a._rg and shape not in summed:
            # a bias row: a plain column sum (a GPU's one-launch kernel), else the general
            summed[shape] = (dg.sum(axis=0) if shape == tuple(dg.shape)[1:]
                             else unbroadcast(dg, shape))
        extra.append(summed[shape] if a._rg else None)
    return tuple(grads) + tuple(extra)


def _cell_bwd_ops(acts, c, c_new, gh, gc, gacts):
    """The cell's backward in tensorlib ops (differentiable): (dgates, dc)."""
    H = c.shape[1]
    i, f, g, o = acts[:, :H], acts[:, H:2 * H], acts[:, 2 * H:3 * H], acts[:, 3 * H:]
    tc = c_new.tanh()
    dcn = gc + gh * o * (1.0 - tc * tc)
    d = concatenate([dcn * g * i * (1.0 - i), dcn * c * f * (1.0 - f), dcn * i * (1.0 - g * g),
                     gh * tc * o * (1.0 - o)], axis=1)
    sg = concatenate([i * (1.0 - i), f * (1.0 - f), 1.0 - g * g, o * (1.0 - o)], axis=1)
    return (d if gacts is None else d + gacts * sg), dcn * f


def _cell_infer(gates, c, *addends):
    for a in addends:
        s = tuple(a[0])
        if s != tuple(gates[0]) and s != tuple(gates[0])[-1:]:
            raise ValueError(f"lstm_cell: an addend of shape {s} must have the gates' shape "
                             f"{tuple(gates[0])} or be one row of it")
    return c, c, gates


LSTM_CELL = register(OpDef(
    "lstm_cell", _cell_fwd, kernels={"cpu": _cell_cpu}, vjp=_cell_vjp, saves=(1,),
    saves_output=(1, 2), cost=io_cost(lambda i, o, **a: 12 * numel(i[1][0])),
    infer=_cell_infer, grad_sums="sums", none_grads=True))
# the cell is sigmoids, tanh and products, and its backward ops are written without abs or
# comparisons: holomorphic (PyTorch's LSTM takes complex dtypes)
LSTM_CELL.complex = "holomorphic"
# the first-order backward of lstm_cell, used only when the backward is not recorded: inputs
# acts, c, c', gh, gc, then the activations' gradient (when acts_grad, the default), then the
# biases' running gradient sums, which it adds into
LSTM_CELL_GRAD = register(OpDef(
    "lstm_cell_grad", _cell_grad_fwd, kernels={"cpu": _cell_grad_cpu}, vjp=None, saves=False,
    cost=io_cost(lambda i, o, **a: 16 * numel(i[1][0])),
    infer=lambda acts, c, cn, gh, gc, *rest, acts_grad=True: (acts, c)))


def _check_cell(op, x, h, weights, ngates):
    w_ih, w_hh, b_ih, b_hh = weights
    if x.ndim != 2 or h.ndim != 2 or x.shape[0] != h.shape[0]:
        raise ValueError(f"{op}: input (N, in) and hidden (N, hidden) must be 2-D with the same "
                         f"batch, got {tuple(x.shape)} and {tuple(h.shape)}")
    H = h.shape[1]
    if tuple(w_ih.shape) != (ngates * H, x.shape[1]):
        raise ValueError(f"{op}: w_ih must have shape {(ngates * H, x.shape[1])}, got "
                         f"{tuple(w_ih.shape)}")
    if tuple(w_hh.shape) != (ngates * H, H):
        raise ValueError(f"{op}: w_hh must have shape {(ngates * H, H)}, got "
                         f"{tuple(w_hh.shape)}")
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None and hasattr(b, "shape") and tuple(b.shape) != (ngates * H,):
            raise ValueError(f"{op}: {name} must have shape {(ngates * H,)}, got "
                             f"{tuple(b.shape)}")
    same_dtype(op, x, ("hidden", h), ("w_ih", w_ih), ("w_hh", w_hh), ("b_ih", b_ih),
               ("b_hh", b_hh))


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> tuple[Tensor, Tensor]:
    """One LSTM step (PyTorch's gate order i, f, g, o): returns (h', c').

    ``hx`` is (h, c), each (N, hidden); w_ih (4*hidden, in), w_hh (4*hidden, hidden).
    """
    if state.autocast is not None:
        return autocast_call(lstm_cell, "lstm_cell", input, hx, w_ih, w_hh, b_ih, b_hh)
    op = "lstm_cell"
    x = as_float_tensor(input, op)
    h, c = (as_float_tensor(t, op, "hx") for t in hx)
    w_ih, w_hh = as_float_tensor(w_ih, op, "w_ih"), as_float_tensor(w_hh, op, "w_hh")
    b_ih, b_hh = (None if b is None else as_float_tensor(b, op, name)
                  for name, b in (("b_ih", b_ih), ("b_hh", b_hh)))
    _check_cell(op, x, h, (w_ih, w_hh, b_ih, b_hh), 4)
    if tuple(c.shape) != tuple(h.shape):
        raise ValueError(f"{op}: c {tuple(c.shape)} must have h's shape {tuple(h.shape)}")
    biases = [b for b in (b_ih, b_hh) if b is not None]
    h_new, c_new, _ = apply(LSTM_CELL, linear(x, w_ih), c, linear(h, w_hh), *biases)
    return h_new, c_new


def _sigmoid_(xp, a) -> None:
    """In place, through tanh: no overflow for large |a|."""
    a *= 0.5
    xp.tanh(a, out=a)
    a *= 0.5
    a += 0.5


def _gru_cell_fwd(xp, gi, gh, h):
    """(h', acts): acts holds the activated gates r, z, n (N, 3H) the backward reads."""
    H = h.shape[1]
    acts = xp.empty(gi.shape, xp.result_type(gi, gh, h))
    rz, n = acts[:, :2 * H], acts[:, 2 * H:]
    xp.add(gi[:, :2 * H], gh[:, :2 * H], out=rz)
    _sigmoid_(xp, rz)
    xp.multiply(rz[:, :H], gh[:, 2 * H:], out=n)
    n += gi[:, 2 * H:]
    xp.tanh(n, out=n)
    h_new = h - n                       # n + z * (h - n)
    h_new *= rz[:, H:]
    h_new += n
    return h_new, acts


def _gru_cell_grad_fwd(xp, acts, gh, h, gy, gacts):
    """(d gi, d gh, d h) of gru_cell; gacts: the gradient of its acts output."""
    H = h.shape[1]
    r, z, n = acts[:, :H], acts[:, H:2 * H], acts[:, 2 * H:]
    dgi = xp.empty(acts.shape, xp.result_type(acts, gh, h, gy, gacts))
    dnp = dgi[:, 2 * H:]
    xp.multiply(gy * (1 - z) + gacts[:, 2 * H:], 1 - n * n, out=dnp)
    xp.multiply(dnp * gh[:, 2 * H:] + gacts[:, :H], r * (1 - r), out=dgi[:, :H])
    xp.multiply(gy * (h - n) + gacts[:, H:2 * H], z * (1 - z), out=dgi[:, H:2 * H])
    dgh = dgi.copy()
    xp.multiply(dnp, r, out=dgh[:, 2 * H:])     # W_hn h + b_hn sits inside r * (...)
    return dgi, dgh, gy * z


def _gru_cell_bwd_ops(acts, gh, h, gy, gacts):
    """gru_cell's backward in tensorlib ops (differentiable): (d gi, d gh, d h)."""
    H = h.shape[1]
    r, z, n = acts[:, :H], acts[:, H:2 * H], acts[:, 2 * H:]
    dnp = (gy * (1.0 - z) + gacts[:, 2 * H:]) * (1.0 - n * n)
    drp = (dnp * gh[:, 2 * H:] + gacts[:, :H]) * r * (1.0 - r)
    dzp = (gy * (h - n) + gacts[:, H:2 * H]) * z * (1.0 - z)
    return (concatenate([drp, dzp, dnp], axis=1), concatenate([drp, dzp, dnp * r], axis=1),
            gy * z)


def _gru_cell_vjp(n, gy, gacts):
    gh, h = n.inputs[1], n.inputs[2]
    acts = n.output(1)
    if not state.grad_enabled and state.fwd_ad is None and h._data.dtype.kind != "c":
        return apply(GRU_CELL_GRAD, acts.detach(), gh, h, gy, gacts)
    return _gru_cell_bwd_ops(acts, gh, h, gy, gacts)


def _gru_cell_infer(gi, gh, h):
    si, sh, sx = tuple(gi[0]), tuple(gh[0]), tuple(h[0])
    if len(si) != 2 or len(sx) != 2 or sh != si:
        raise ValueError(f"gru_cell: gi {si} and gh {sh} must be one (N, 3H) shape and h "
                         f"{sx} (N, H)")
    if None not in (si[1], sx[1]) and si[1] != 3 * sx[1] or (
            None not in (si[0], sx[0]) and si[0] != sx[0]):
        raise ValueError(f"gru_cell: gates {si} do not fit h {sx}: they must be (N, 3H)")
    return h, gi


GRU_CELL = register(OpDef(
    "gru_cell", _gru_cell_fwd, vjp=_gru_cell_vjp, saves=(1, 2), saves_output=(1,),
    cost=io_cost(lambda i, o, **a: 14 * numel(i[2][0])), infer=_gru_cell_infer,
    doc="one GRU step from its gate pre-activations: (x W_ih^T + b_ih, h W_hh^T + b_hh, h) "
        "-> (h', activated r, z, n)"))
GRU_CELL.complex = "holomorphic"      # as lstm_cell
# the first-order backward of gru_cell, used only when the backward is not recorded
GRU_CELL_GRAD = register(OpDef(
    "gru_cell_grad", _gru_cell_grad_fwd, vjp=None, saves=False,
    cost=io_cost(lambda i, o, **a: 20 * numel(i[2][0])),
    infer=lambda acts, gh, h, gy, ga: (acts, acts, h)))


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> Tensor:
    """One GRU step (PyTorch's gate order r, z, n; the reset gate scales
    ``W_hn h + b_hn``): returns h'.

    ``hx`` is h (N, hidden); w_ih (3*hidden, in), w_hh (3*hidden, hidden), biases
    (3*hidden,). Two products, then one fused op for the gates (``gru_cell``).
    """
    if state.autocast is not None:
        return autocast_call(gru_cell, "gru_cell", input, hx, w_ih, w_hh, b_ih, b_hh)
    op = "gru_cell"
    x = as_float_tensor(input, op)
    h = as_float_tensor(hx, op, "hx")
    w_ih, w_hh = as_float_tensor(w_ih, op, "w_ih"), as_float_tensor(w_hh, op, "w_hh")
    b_ih, b_hh = (None if b is None else as_float_tensor(b, op, name)
                  for name, b in (("b_ih", b_ih), ("b_hh", b_hh)))
    _check_cell(op, x, h, (w_ih, w_hh, b_ih, b_hh), 3)
    # b_hh's n rows belong inside r * (W_hn h + b_hn): the whole b_hh goes with h W_hh^T
    h_new, _ = apply(GRU_CELL, linear(x, w_ih, b_ih), linear(h, w_hh, b_hh), h)
    return h_new


# the whole-sequence ops (lstm_seq, gru_seq, rnn_seq) build on the cell kernels above
from . import nn_rnn_seq  # noqa: E402,F401  (registers them)
