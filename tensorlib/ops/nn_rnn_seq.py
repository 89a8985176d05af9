"""Whole-sequence recurrent ops: ``lstm_seq``, ``gru_seq``, ``rnn_seq``.

One op runs every time step of one layer direction inside its kernel, so a captured graph,
a saved graph file and an ONNX model (an ``LSTM``/``GRU``/``RNN`` node) keep the sequence
length and the batch dynamic; Python unrolling would fix the traced length in the graph.

Inputs (gate orders as PyTorch: LSTM i, f, g, o; GRU r, z, n)::

    x (T, N, I), h0 (N, H), [c0 (N, H) for LSTM], w_ih (G*H, I), w_hh (G*H, H),
    [b_ih (G*H,), b_hh (G*H,)]

Outputs: ``y`` (T, N, H) (``y[t]`` is the state after step t, also for ``reverse=True``,
which walks from t = T-1 down to 0), the final state ``h_T`` (N, H), ``c_T`` for an LSTM,
then the workspace the backward reads (LSTM: activated gates (T, N, 4H) and cell states
(T, N, H); GRU: r, z, n and ``W_hn h + b_hn`` (T, N, 4H); RNN: none). The public functions
return only the first ones.

The CPU kernels keep today's fused float32 pieces: the input half of every step's gates in
one matrix product, then per step one GEMM accumulated into the gates and the Cython LSTM
cell (``_ops.lstm_cell_fwd/bwd``). The vjp is
one BPTT kernel (``*_seq_grad``) when the backward is not recorded, and the same BPTT in
tensorlib ops when it is (create_graph=True), so grad of grad works (as ``lstm_cell``).
"""
from __future__ import annotations

import numpy as np

from .. import _gemm
from .._apply import apply
from .._tensor import Tensor
from ..autograd.mode import state
from .accumulate import matmul_for as _matmul
from .nn_rnn import _cell_bwd_ops, _cell_cpu, _cell_fwd, _cell_grad_fwd, _sigmoid_
from .nn_util import as_float_or_complex_tensor as as_float_tensor, io_cost
from .registry import OpDef, register
from ._util import numel
from .shape import concatenate, stack

_GATES = {"lstm_seq": 4, "gru_seq": 3, "rnn_seq": 1}
_N_STATES = {"lstm_seq": 2, "gru_seq": 1, "rnn_seq": 1}     # h0 (and c0) inputs


# --- shapes ----------------------------------------------------------------------------------
def _agree(*dims):
    """The one size among ``dims`` that are known (None: unknown), or False if two differ."""
    known = {d for d in dims if d is not None}
    if len(known) > 1:
        return False
    return known.pop() if known else None


def _layout(op: str, shapes: list, dtypes: list) -> tuple:
    """Check an op's input shapes (None dims allowed) and dtypes; (T, N, H, I)."""
    ns = _N_STATES[op]
    G = _GATES[op]
    if len(shapes) not in (3 + ns, 5 + ns):
        raise ValueError(f"{op}: takes x, {'h0, c0' if ns == 2 else 'h0'}, w_ih, w_hh and "
                         f"optionally b_ih, b_hh; got {len(shapes)} inputs")
    x, states, (w_ih, w_hh), biases = (shapes[0], shapes[1:1 + ns], shapes[1 + ns:3 + ns],
                                       shapes[3 + ns:])
    if len(x) != 3:
        raise ValueError(f"{op}: x of shape {tuple(x)} must be 3-d (T, N, input_size)")
    T, N, I = x
    for name, s in zip(("h0", "c0"), states):
        if len(s) != 2:
            raise ValueError(f"{op}: {name} of shape {tuple(s)} must be 2-d (N, hidden_size)")
    H = _agree(*(s[1] for s in states))
    N = _agree(N, *(s[0] for s in states))
    if N is False or H is False:
        raise ValueError(f"{op}: x {tuple(x)} and the initial state "
                         f"{' and '.join(str(tuple(s)) for s in states)} do not agree on "
                         "(N, hidden_size)")
    rows = None if H is None else G * H
    if len(w_ih) != 2 or _agree(w_ih[0], rows) is False or _agree(w_ih[1], I) is False:
        raise ValueError(f"{op}: w_ih of shape {tuple(w_ih)} must be ({G} * hidden_size, "
                         f"input_size) = ({rows}, {I})")
    if len(w_hh) != 2 or _agree(w_hh[0], rows) is False or _agree(w_hh[1], H) is False:
        raise ValueError(f"{op}: w_hh of shape {tuple(w_hh)} must be ({G} * hidden_size, "
                         f"hidden_size) = ({rows}, {H})")
    for name, b in zip(("b_ih", "b_hh"), biases):
        if len(b) != 1 or _agree(b[0], rows) is False:
            raise ValueError(f"{op}: {name} of shape {tuple(b)} must be ({rows},)")
    dt = np.dtype(dtypes[0])
    if dt.kind not in "fc" or any(np.dtype(d) != dt for d in dtypes):
        raise TypeError(f"{op}: all inputs must share one float or complex dtype, got "
                        f"{[np.dtype(d).name for d in dtypes]}")
    if H is None:       # the hidden size is fixed by the weights
        H = w_hh[1]
    return T, N, H, I


def _seq_infer(op):
    def infer(*specs, reverse=False, nonlinearity="tanh"):
        T, N, H, _ = _layout(op, [tuple(s) for s, _ in specs], [d for _, d in specs])
        dt = np.dtype(specs[0][1])
        seq, state_ = ((T, N, H), dt), ((N, H), dt)
        if op == "lstm_seq":
            return seq, state_, state_, ((T, N, None if H is None else 4 * H), dt), seq
        if op == "gru_seq":
            return seq, state_, ((T, N, None if H is None else 4 * H), dt)
        return seq, state_
    return infer


def _seq_check(op):
    def check(*arrays, reverse=False, nonlinearity="tanh"):
        _layout(op, [a.shape for a in arrays], [a.dtype for a in arrays])
        if op == "rnn_seq" and nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"rnn_seq: nonlinearity must be 'tanh' or 'relu', got "
                             f"{nonlinearity!r}")
        if op == "rnn_seq" and nonlinearity == "relu" and arrays[0].dtype.kind == "c":
            raise NotImplementedError("rnn_seq: nonlinearity='relu' is not defined for complex "
                                      "tensors (PyTorch refuses it too); use 'tanh'")
    return check


def _seq_cost(op):
    def flops(i, o, **a):
        (T, N, I), H = i[0][0], i[1][0][1]
        G = _GATES[op] * (H or 1)
        return 2 * numel((T, N)) * G * ((I or 1) + (H or 1)) + 8 * numel((T, N)) * G
    return io_cost(flops)


# --- kernels ---------------------------------------------------------------------------------
def _steps(T: int, reverse: bool):
    return range(T - 1, -1, -1) if reverse else range(T)


def _prev(t: int, reverse: bool) -> int:
    """The step whose state step t starts from (-1 or T: the initial state)."""
    return t + 1 if reverse else t - 1


def _addmm(xp, a, b, c) -> None:
    """``c += a @ b``: on the CPU in float32, tensorlib's GEMM accumulates in place (no
    temporary, no second pass over ``c``)."""
    if xp is np and c.dtype == np.float32 and _gemm.OWNS and a.dtype == b.dtype == c.dtype:
        m, k = a.shape
        n = b.shape[1]
        if (m * n * k >= _gemm._min_work(b.strides[1]) and _gemm.suits(m, n, k)
                and c.flags.c_contiguous
                and _gemm._aligned(a) and _gemm._aligned(b)):
            from .. import _ops
            _ops.sgemm(a, b, c, 1.0, 1.0, _gemm._threads(m * n * k))
            return
    c += _matmul(xp)(a, b)


def _input_gates(xp, x, w_ih, bias):
    """``x W_ih^T + bias`` for all steps in one product, (T, N, G), C-contiguous."""
    T, N, I = x.shape
    gi = _matmul(xp)(x.reshape(T * N, I), w_ih.T)
    if bias is not None:
        gi += bias
    return xp.ascontiguousarray(gi).reshape(T, N, w_ih.shape[0])


def _contig(xp, *arrays):
    return [None if a is None else xp.ascontiguousarray(a) for a in arrays]


# Up to this many multiply-adds per step's recurrent product, the whole recurrence runs in
# one Cython call (_ops.lstm_seq_fwd_f32 / gru_seq_fwd_f32: dot products of contiguous rows,
# no Python per step); beyond it a step's GEMM dominates and goes to BLAS from the loop.
_SEQ_KERNEL_MAX_WORK = 1 << 18


# The kernel's recurrent product reads all of W_hh once per batch row, so beyond one row it
# pays off only while W_hh stays in L1/L2: (4, 512) x (512, 128) took 16 us a step there and
# 6 us in the Python loop below (NumPy on a contiguous W_hh^T).
_SEQ_KERNEL_MAX_WORK_ROWS = 1 << 16
# From this many W_hh entries the loop's product runs on tensorlib's GEMM (the whole
# W_hh^T no longer fits beside OpenBLAS's packing: (4, 256) x (256, 1024) took 115 us
# there against 38 us), below it on NumPy's.
_LOOP_SGEMM_MIN = 1 << 18
# up to this many batch rows against a W_hh of at least this many entries (4 MiB), the loop
# runs matrix-vector products instead (see _lstm_loop_cpu)
_LOOP_GEMV_MAX_ROWS = 4
_LOOP_GEMV_MIN = 1 << 20


def _seq_kernel(N: int, G: int, H: int, *arrays) -> bool:
    """Whether the CPU sequence kernel takes these host arrays."""
    return N * G * H <= _SEQ_KERNEL_MAX_WORK and all(a.dtype == np.float32 for a in arrays)


def _lstm_loop_cpu(gi, whh, h0, c0, y, cs, acts, reverse: bool) -> None:
    """The float32 LSTM recurrence on the CPU, one Python iteration per step: each step adds
    ``h W_hh^T`` into its input gates (by the product below that suits the sizes), then runs
    the fused cell."""
    import contextlib
    from .. import _ops
    N, G = gi.shape[1:]
    H = G // 4
    blas = contextlib.nullcontext()
    if N <= _LOOP_GEMV_MAX_ROWS and G * H >= _LOOP_GEMV_MIN and _ops.SGEMV_SUPPORTED:
        # a few rows against a W_hh past L2: one matrix-vector pass per row over W_hh itself
        # (H 512, N 2: 124 us a step against 461 us through the GEMM, which packs W each step;
        # the whole forward at T 50: 69 -> 24 ms, and 38 -> 30 ms at N 4)
        w, tmp = np.ascontiguousarray(whh), np.empty(G, np.float32)

        def recur(h, g):
            for i in range(N):
                _ops.sgemv(w, h[i], tmp)
                g[i] += tmp
    else:
        # from a contiguous copy of W_hh^T: its transposed view cost the GEMM a strided pack
        # each step (72 against 38 us at H = 256)
        whT = np.empty((H, G), np.float32)
        _ops.transpose_copy(whh.T, whT)
        if _gemm.OWNS and G * H >= _LOOP_SGEMM_MIN and _gemm.suits(N, G, H):
            def recur(h, g):
                _ops.sgemm(h, whT, g, 1.0, 1.0, 1)
        else:
            tmp = np.empty((N, G), np.float32)
            blas = _gemm.numpy_blas(np.float32)

            def recur(h, g):
                np.matmul(h, whT, out=tmp)
                np.add(g, tmp, out=g)
    cell = _ops.lstm_cell_fwd
    h, c = h0, c0
    with blas:
        for t in _steps(gi.shape[0], reverse):
            g = gi[t]
            recur(h, g)
            cell(g, c, y[t], cs[t], acts[t])
            h, c = y[t], cs[t]


def _last(y, h0, reverse: bool):
    """The final state: y's last step in the walking order (h0 when there are no steps)."""
    return (y[0] if reverse else y[-1]).copy() if y.shape[0] else h0.copy()


def _lstm_fwd(xp, x, h0, c0, w_ih, w_hh, *b, reverse=False):
    T, N, _ = x.shape
    H = h0.shape[1]
    h0, c0 = _contig(xp, h0, c0)
    gi = _input_gates(xp, x, w_ih, b[0] + b[1] if b else None)
    y, cs = xp.empty((T, N, H), x.dtype), xp.empty((T, N, H), x.dtype)
    acts = xp.empty((T, N, 4 * H), x.dtype)
    if xp is np and _seq_kernel(N, 4 * H, H, gi, h0, c0, w_hh) and (
            N == 1 or N * 4 * H * H <= _SEQ_KERNEL_MAX_WORK_ROWS):
        from .. import _ops
        _ops.lstm_seq_fwd_f32(gi, np.ascontiguousarray(w_hh), h0, c0, y, cs, acts, reverse)
        return y, _last(y, h0, reverse), _last(cs, c0, reverse), acts, cs
    if xp is np and N * H and all(a.dtype == np.float32 for a in (gi, h0, c0, w_hh)):
        _lstm_loop_cpu(gi, w_hh, h0, c0, y, cs, acts, reverse)
        return y, _last(y, h0, reverse), _last(cs, c0, reverse), acts, cs
    whT = w_hh.T
    h, c = h0, c0
    for t in _steps(T, reverse):
        gates = gi[t]
        _addmm(xp, h, whT, gates)
        if xp is np:
            _cell_cpu(gates, c, out=(y[t], cs[t], acts[t]))
        else:
            y[t], cs[t], acts[t] = _cell_fwd(xp, gates, c)
        h, c = y[t], cs[t]
    return y, h.copy(), c.copy(), acts, cs


def _gru_fwd(xp, x, h0, w_ih, w_hh, *b, reverse=False):
    T, N, _ = x.shape
    H = h0.shape[1]
    (h0,) = _contig(xp, h0)
    bias_in = b_hn = None
    if b:       # b_hh's r, z rows add to the input side; its n rows sit inside r * (...)
        bias_in = b[0].copy()
        bias_in[:2 * H] += b[1][:2 * H]
        b_hn = b[1][2 * H:]
    gi = _input_gates(xp, x, w_ih, bias_in)
    y, ws = xp.empty((T, N, H), x.dtype), xp.empty((T, N, 4 * H), x.dtype)
    gh = xp.empty((N, 3 * H), x.dtype)
    if xp is np and _seq_kernel(N, 3 * H, H, gi, h0, w_hh) and (
            b_hn is None or b_hn.dtype == np.float32):
        from .. import _ops
        bn = np.zeros(H, np.float32) if b_hn is None else np.ascontiguousarray(b_hn)
        _ops.gru_seq_fwd_f32(gi, np.ascontiguousarray(w_hh), bn, h0, y, ws, gh, reverse)
        return y, _last(y, h0, reverse), ws
    mm, whT = _matmul(xp), w_hh.T
    h = h0
    for t in _steps(T, reverse):
        mm(h, whT, out=gh)
        w, g = ws[t], gi[t]
        rz, n, ghn = w[:, :2 * H], w[:, 2 * H:3 * H], w[:, 3 * H:]
        xp.add(g[:, :2 * H], gh[:, :2 * H], out=rz)
        _sigmoid_(xp, rz)
        xp.copyto(ghn, gh[:, 2 * H:])
        if b_hn is not None:
            ghn += b_hn
        xp.multiply(w[:, :H], ghn, out=n)
        n += g[:, 2 * H:]
        xp.tanh(n, out=n)
        out = y[t]                          # n + z * (h - n)
        xp.subtract(h, n, out=out)
        out *= w[:, H:2 * H]
        out += n
        h = out
    return y, h.copy(), ws


def _rnn_fwd(xp, x, h0, w_ih, w_hh, *b, reverse=False, nonlinearity="tanh"):
    T = x.shape[0]
    (h0,) = _contig(xp, h0)
    y = _input_gates(xp, x, w_ih, b[0] + b[1] if b else None)   # becomes the output in place
    whT = w_hh.T
    h = h0
    for t in _steps(T, reverse):
        out = y[t]
        _addmm(xp, h, whT, out)
        if nonlinearity == "relu":
            xp.maximum(out, 0, out=out)
        else:
            xp.tanh(out, out=out)
        h = out
    return y, h.copy()


def _param_grads(xp, need, first_w: int, x, h0, y, w_ih, dgi, dgh, reverse):
    """Gradients of x and the weights from the per-step gate gradients: ``dgi`` of the
    input-side pre-activations, ``dgh`` of the hidden-side ones (the same array except for
    the GRU), both (T, N, G). Returns {forward input position: array}."""
    T, N, I = x.shape
    G, H = w_ih.shape[0], h0.shape[1]
    mm = _matmul(xp)
    gi2, gh2 = dgi.reshape(T * N, G), dgh.reshape(T * N, G)
    out = {}
    if 0 in need:
        out[0] = mm(gi2, w_ih).reshape(T, N, I)
    if first_w in need:
        out[first_w] = mm(gi2.T, x.reshape(T * N, I))
    if first_w + 1 in need:
        gw = xp.zeros((G, H), x.dtype)
        if T:           # the state before step t: h0 at the first step, else y[t -/+ 1]
            t0, rest, prev = ((T - 1, slice(0, T - 1), slice(1, T)) if reverse
                              else (0, slice(1, T), slice(0, T - 1)))
            gw = mm(dgh[t0].T, h0)
            if T > 1:
                gw += mm(dgh[rest].reshape(-1, G).T, y[prev].reshape(-1, H))
        out[first_w + 1] = gw
    if first_w + 2 in need:
        out[first_w + 2] = gi2.sum(axis=0)
    if first_w + 3 in need:     # the same sum for an LSTM or an RNN: one pass over it
        out[first_w + 3] = (out[first_w + 2].copy() if dgh is dgi and first_w + 2 in need
                            else gh2.sum(axis=0))
    return out


def _ordered(out: dict, need) -> tuple:
    return tuple(out[i] for i in sorted(need))


def _step_matmul(xp, m: int, k: int, n: int, dtype):
    """The product for one step's recurrent gradient, ``(m, k) @ (k, n)`` with ``out=``,
    chosen once per sequence: NumPy's ``dot`` for the small float products that
    ``_gemm.matmul`` would leave to NumPy anyway (its routing checks cost more than such a
    product), ``_gemm.matmul`` (or CuPy's) for the rest."""
    if (xp is np and dtype in (np.float32, np.float64) and m * n * k < _gemm.MIN_WORK
            and k * n < _gemm.GEMV_PARALLEL):
        return np.dot
    return _matmul(xp)


def _befores(seq, first, reverse: bool) -> list:
    """Per step t, the state step t starts from: views of ``seq`` (T, N, H) and ``first``."""
    return [*seq[1:], first] if reverse else [first, *seq[:-1]]


def _nonzero(xp, a):
    """``a``, or None when it is all zeros (the gradient of a workspace output nobody used,
    which the backward engine fills with zeros): the loop then skips adding it. Only on the
    CPU: on a GPU the test would make the host wait for the device, so ``a`` is added."""
    if xp is not np:
        return a
    return a if a.size and bool(a.any()) else None


# The BPTT loops below run one Python iteration per time step, so everything that does not
# depend on the step's incoming gradient is hoisted out of them (dtype checks, buffers, the
# product routine, per-step views, the terms that are linear in that gradient), and the
# input-side products run once over all steps afterwards (_param_grads).
def _lstm_grad_fwd(xp, x, h0, c0, w_ih, w_hh, y, acts, cs, gy, ghT, gcT, gacts, gcs, *,
                   reverse=False, need=()):
    T, N, _ = x.shape
    H = h0.shape[1]
    x, h0, c0, y, acts, cs, gy, gacts, gcs = _contig(xp, x, h0, c0, y, acts, cs, gy, gacts,
                                                     gcs)
    dt = x.dtype
    dg = xp.empty((T, N, 4 * H), dt)
    dh = xp.array(ghT, dtype=dt, copy=True)
    dc, dc_next = xp.array(gcT, dtype=dt, copy=True), xp.empty((N, H), dt)
    gh = xp.empty((N, H), dt)
    ga, gcs = _nonzero(xp, gacts), _nonzero(xp, gcs)
    gc_buf = None if gcs is None else xp.empty((N, H), dt)
    fused = xp is np and dt == np.float32 and N * H > 0
    if fused:
        from .. import _ops
        cell_bwd = _ops.lstm_cell_bwd
    mm, whh = _step_matmul(xp, N, 4 * H, H, dt), xp.ascontiguousarray(w_hh)
    cprev = _befores(cs, c0, reverse)
    add = xp.add
    for t in _steps(T, not reverse):
        add(gy[t], dh, out=gh)
        gc = dc if gcs is None else add(dc, gcs[t], out=gc_buf)
        dg_t = dg[t]
        if fused:
            # writes the new dc into the other buffer: the kernel reads gc (maybe dc) whole
            cell_bwd(acts[t], cprev[t], cs[t], gh, gc, None if ga is None else ga[t], dg_t,
                     dc_next)
            dc, dc_next = dc_next, dc
        else:
            dg_t[...], dc = _cell_grad_fwd(xp, acts[t], cprev[t], cs[t], gh, gc,
                                           0.0 if ga is None else ga[t])
        mm(dg_t, whh, out=dh)
    out = _param_grads(xp, need, 3, x, h0, y, w_ih, dg, dg, reverse)
    out[1], out[2] = dh, dc
    return _ordered(out, need)


def _gru_grad_fwd(xp, x, h0, w_ih, w_hh, y, ws, gy, ghT, gws, *, reverse=False, need=()):
    """GRU BPTT. With d the gradient reaching a step's output (gy[t] plus what flows back
    from step t + 1), every gate gradient is ``d * coef + const`` with coef and const known
    before the loop, so a step is a broadcast multiply, the recurrent product and two adds:
    ``dgh = d * C + E`` (the hidden-side pre-activation gradients r, z, n) and
    ``dh = d * z + dgh @ W_hh``. dgi differs from dgh only in its n block (no r factor, no
    ``W_hn h + b_hn`` gradient), rebuilt after the loop from the stored d."""
    T, N, _ = x.shape
    H = h0.shape[1]
    x, h0, y, ws, gy, gws = _contig(xp, x, h0, y, ws, gy, gws)
    dt = x.dtype
    dh = xp.array(ghT, dtype=dt, copy=True)
    dgh = xp.empty((T, N, 3 * H), dt)
    ds = xp.empty((T, N, H), dt)
    if T:
        r, z, n, ghn = (ws[..., k * H:(k + 1) * H] for k in range(4))
        hprev = xp.stack(_befores(y, h0, reverse)) if T > 1 else h0[None]
        one_z, dtn = 1 - z, 1 - n * n
        # d(loss)/d(n's pre-activation) per unit d: (1 - z) (1 - n^2)
        an = one_z * dtn
        coef = xp.empty((T, N, 3, H), dt)
        xp.multiply(an * ghn, r * (1 - r), out=coef[:, :, 0])
        xp.multiply(hprev - n, z * (1 - z), out=coef[:, :, 1])
        xp.multiply(an, r, out=coef[:, :, 2])
        gws = _nonzero(xp, gws)
        const = None
        if gws is not None:
            gr, gz, gn, ghn_ = (gws[..., k * H:(k + 1) * H] for k in range(4))
            bn = gn * dtn
            const = xp.empty((T, N, 3, H), dt)
            xp.multiply(bn * ghn + gr, r * (1 - r), out=const[:, :, 0])
            xp.multiply(gz, z * (1 - z), out=const[:, :, 1])
            xp.add(bn * r, ghn_, out=const[:, :, 2])
        mm, whh = _step_matmul(xp, N, 3 * H, H, dt), xp.ascontiguousarray(w_hh)
        dgh4 = dgh.reshape(T, N, 3, H)
        add, mul = xp.add, xp.multiply
        acc = xp.empty((N, H), dt)
        for t in _steps(T, not reverse):
            d = ds[t]
            add(gy[t], dh, out=d)
            g4 = dgh4[t]
            mul(d[:, None, :], coef[t], out=g4)
            if const is not None:
                g4 += const[t]
            mul(d, z[t], out=acc)
            mm(dgh[t], whh, out=dh)
            dh += acc
        dgi = dgh.copy()
        dn = dgi[..., 2 * H:]
        xp.multiply(ds, an, out=dn)
        if gws is not None:
            dn += bn
    else:
        dgi = dgh
    out = _param_grads(xp, need, 2, x, h0, y, w_ih, dgi, dgh, reverse)
    out[1] = dh
    return _ordered(out, need)


def _rnn_grad_fwd(xp, x, h0, w_ih, w_hh, y, gy, ghT, *, reverse=False, nonlinearity="tanh",
                  need=()):
    T, N, _ = x.shape
    H = h0.shape[1]
    x, h0, y, gy = _contig(xp, x, h0, y, gy)
    dt = x.dtype
    dg = xp.empty((T, N, H), dt)
    dh = xp.array(ghT, dtype=dt, copy=True)
    # the activation's derivative at every step, before the loop
    dact = (y > 0).astype(dt) if nonlinearity == "relu" else 1 - y * y
    mm, whh = _step_matmul(xp, N, H, H, dt), xp.ascontiguousarray(w_hh)
    add, mul = xp.add, xp.multiply
    for t in _steps(T, not reverse):
        d = dg[t]
        add(gy[t], dh, out=d)
        mul(d, dact[t], out=d)
        mm(d, whh, out=dh)
    out = _param_grads(xp, need, 2, x, h0, y, w_ih, dg, dg, reverse)
    out[1] = dh
    return _ordered(out, need)


def _grad_infer(op):
    fwd_op = op[:-len("_grad")]
    ns = _N_STATES[fwd_op]

    def infer(*specs, reverse=False, need=(), nonlinearity="tanh"):
        specs = [(tuple(s), np.dtype(d)) for s, d in specs]
        first_w = 1 + ns
        dt = specs[0][1]
        out = []
        for i in sorted(need):
            if not 0 <= i <= first_w + 3:
                raise ValueError(f"{op}: need holds input position {i}, which {fwd_op} does "
                                 "not have")
            out.append(specs[i] if i <= first_w + 1 else ((specs[first_w][0][0],), dt))
        return tuple(out)
    return infer


# --- vjp ---------------------------------------------------------------------------------------
def _spread(need, got, n_in: int) -> tuple:
    got = iter(got if isinstance(got, tuple) else (got,))
    return tuple(next(got) if i in need else None for i in range(n_in))


def _seq_vjp(op):
    workspace = {"lstm_seq": (0, 3, 4), "gru_seq": (0, 2), "rnn_seq": (0,)}[op]
    n_grads = {"lstm_seq": 5, "gru_seq": 3, "rnn_seq": 2}[op]
    first_w = 1 + _N_STATES[op]

    def vjp(n, *gouts):
        ins = n.inputs
        need = tuple(i for i, t in enumerate(ins) if t._rg)
        attrs = dict(n.attrs)
        if not need:
            return (None,) * len(ins)
        # the BPTT kernels are real-only: complex values take the composite below
        if not state.grad_enabled and state.fwd_ad is None and ins[0]._data.dtype.kind != "c":
            saved = [n.output(i).detach() for i in workspace]
            got = apply(GRAD_OPS[op], *ins[:first_w + 2], *saved, *gouts[:n_grads],
                        need=need, **attrs)
            return _spread(need, got, len(ins))
        got = _COMPOSITE[op](n, gouts, attrs.get("reverse", False),
                             attrs.get("nonlinearity", "tanh"))
        return tuple(g if i in need else None for i, g in enumerate(got[:len(ins)]))
    return vjp


def _states_before(y, h0, T: int, reverse: bool):
    """(T, N, H): the state each step starts from."""
    first = h0.unsqueeze(0)
    if T == 1:
        return first
    return (concatenate([y[1:], first], axis=0) if reverse
            else concatenate([first, y[:-1]], axis=0))


def _param_grads_ops(n, first_w: int, dgi, dgh, reverse: bool) -> list:
    x, h0, w_ih = n.inputs[0], n.inputs[1], n.inputs[first_w]
    T, N, I = x._data.shape
    G, H = w_ih._data.shape[0], h0._data.shape[1]
    gi2, gh2 = dgi.reshape(T * N, G), dgh.reshape(T * N, G)
    hprev = _states_before(n.output(0), h0, T, reverse).reshape(T * N, H)
    gx = (gi2 @ w_ih).reshape(T, N, I)
    return [gx, gi2.T @ x.reshape(T * N, I), gh2.T @ hprev, gi2.sum(axis=0),
            gh2.sum(axis=0)]


def _no_steps(n, first_w: int, states: list) -> list:
    """The gradients when T = 0: the final state is the initial one."""
    x, w_ih, w_hh = n.inputs[0], n.inputs[first_w], n.inputs[first_w + 1]
    zb = w_ih[:, 0] * 0.0
    return [x * 0.0, *states, w_ih * 0.0, w_hh * 0.0, zb, zb]


def _lstm_composite(n, gouts, reverse, _nl):
    gy, ghT, gcT, gacts, gcs = gouts
    x, h0, c0, w_ih, w_hh = n.inputs[:5]
    acts, cs = n.output(3), n.output(4)
    T = x._data.shape[0]
    if T == 0:
        return _no_steps(n, 3, [ghT, gcT])
    dh, dc = ghT, gcT
    dg = [None] * T
    for t in _steps(T, not reverse):
        p = _prev(t, reverse)
        c_prev = cs[p] if 0 <= p < T else c0
        dg[t], dc = _cell_bwd_ops(acts[t], c_prev, cs[t], gy[t] + dh, dc + gcs[t], gacts[t])
        dh = dg[t] @ w_hh
    dgs = stack(dg)
    gx, gwi, gwh, gbi, gbh = _param_grads_ops(n, 3, dgs, dgs, reverse)
    return [gx, dh, dc, gwi, gwh, gbi, gbh]


def _gru_composite(n, gouts, reverse, _nl):
    gy, ghT, gws = gouts
    x, h0, w_ih, w_hh = n.inputs[:4]
    y, ws = n.output(0), n.output(2)
    T, H = x._data.shape[0], h0._data.shape[1]
    if T == 0:
        return _no_steps(n, 2, [ghT])
    dh = ghT
    dgi, dgh = [None] * T, [None] * T
    for t in _steps(T, not reverse):
        p = _prev(t, reverse)
        h_prev = y[p] if 0 <= p < T else h0
        w, gw = ws[t], gws[t]
        r, z, nn, ghn = w[:, :H], w[:, H:2 * H], w[:, 2 * H:3 * H], w[:, 3 * H:]
        d = gy[t] + dh
        dn = d * (1.0 - z) + gw[:, 2 * H:3 * H]
        dz = d * (h_prev - nn) + gw[:, H:2 * H]
        dnp = dn * (1.0 - nn * nn)
        drp = (dnp * ghn + gw[:, :H]) * r * (1.0 - r)
        dzp = dz * z * (1.0 - z)
        dgi[t] = concatenate([drp, dzp, dnp], axis=1)
        dgh[t] = concatenate([drp, dzp, dnp * r + gw[:, 3 * H:]], axis=1)
        dh = d * z + dgh[t] @ w_hh
    gx, gwi, gwh, gbi, gbh = _param_grads_ops(n, 2, stack(dgi), stack(dgh), reverse)
    return [gx, dh, gwi, gwh, gbi, gbh]


def _rnn_composite(n, gouts, reverse, nonlinearity):
    gy, ghT = gouts
    x, h0, w_ih, w_hh = n.inputs[:4]
    y = n.output(0)
    T = x._data.shape[0]
    if T == 0:
        return _no_steps(n, 2, [ghT])
    dh = ghT
    dg = [None] * T
    for t in _steps(T, not reverse):
        d, h = gy[t] + dh, y[t]
        dg[t] = d.masked_fill(h <= 0, 0.0) if nonlinearity == "relu" else d * (1.0 - h * h)
        dh = dg[t] @ w_hh
    dgs = stack(dg)
    gx, gwi, gwh, gbi, gbh = _param_grads_ops(n, 2, dgs, dgs, reverse)
    return [gx, dh, gwi, gwh, gbi, gbh]


_COMPOSITE = {"lstm_seq": _lstm_composite, "gru_seq": _gru_composite,
              "rnn_seq": _rnn_composite}


# --- registry entries --------------------------------------------------------------------------
def _register(name, fwd, grad_fwd, saves, saves_output):
    grad = register(OpDef(
        name + "_grad", grad_fwd, vjp=None, saves=False, infer=_grad_infer(name + "_grad"),
        cost=io_cost(), doc=f"{name}'s first-order backward (BPTT over the whole sequence), "
                            "used only when the backward is not recorded"))
    op = register(OpDef(
        name, fwd, vjp=_seq_vjp(name), saves=saves, saves_output=saves_output,
        infer=_seq_infer(name), check=_seq_check(name), cost=_seq_cost(name),
        doc=f"every time step of one {name[:-4].upper()} layer direction in one op"))
    return op, grad


LSTM_SEQ, LSTM_SEQ_GRAD = _register("lstm_seq", _lstm_fwd, _lstm_grad_fwd, (0, 1, 2, 3, 4),
                                    (0, 3, 4))
GRU_SEQ, GRU_SEQ_GRAD = _register("gru_seq", _gru_fwd, _gru_grad_fwd, (0, 1, 2, 3), (0, 2))
RNN_SEQ, RNN_SEQ_GRAD = _register("rnn_seq", _rnn_fwd, _rnn_grad_fwd, (0, 1, 2, 3), (0,))
# the steps are matrix products, sigmoids and tanh, the composite BPTT holomorphic in them
# (relu, not holomorphic, is refused for complex by the check)
LSTM_SEQ.complex = GRU_SEQ.complex = RNN_SEQ.complex = "holomorphic"
GRAD_OPS = {"lstm_seq": LSTM_SEQ_GRAD, "gru_seq": GRU_SEQ_GRAD, "rnn_seq": RNN_SEQ_GRAD}


# --- public API --------------------------------------------------------------------------------
def _operands(op: str, input, states, w_ih, w_hh, b_ih, b_hh) -> list[Tensor]:
    if (b_ih is None) != (b_hh is None):
        raise ValueError(f"{op}: give both biases (b_ih, b_hh) or neither")
    ts = [as_float_tensor(input, op)]
    ts += [as_float_tensor(s, op, name) for s, name in zip(states, ("h0", "c0"))]
    ts += [as_float_tensor(w_ih, op, "w_ih"), as_float_tensor(w_hh, op, "w_hh")]
    if b_ih is not None:
        ts += [as_float_tensor(b_ih, op, "b_ih"), as_float_tensor(b_hh, op, "b_hh")]
    _layout(op, [tuple(t.shape) for t in ts], [t._data.dtype for t in ts])
    return ts


def lstm_seq(input, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None,
             reverse: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Every step of one LSTM layer direction (gate order i, f, g, o as PyTorch):
    ``(y (T, N, H), h_T, c_T)`` from x (T, N, I), h0, c0 (N, H), w_ih (4H, I),
    w_hh (4H, H) and optional biases (4H,). ``reverse`` walks from the last step.

    >>> y, h, c = lstm_seq(tl.randn(7, 2, 3), tl.zeros(2, 5), tl.zeros(2, 5),
    ...                    tl.randn(20, 3), tl.randn(20, 5))
    """
    ts = _operands("lstm_seq", input, (h0, c0), w_ih, w_hh, b_ih, b_hh)
    y, h, c, _, _ = apply(LSTM_SEQ, *ts, reverse=bool(reverse))
    return y, h, c


def gru_seq(input, h0, w_ih, w_hh, b_ih=None, b_hh=None,
            reverse: bool = False) -> tuple[Tensor, Tensor]:
    """Every step of one GRU layer direction (gate order r, z, n as PyTorch, the reset gate
    scaling ``W_hn h + b_hn``): ``(y (T, N, H), h_T)``.

    >>> y, h = gru_seq(tl.randn(7, 2, 3), tl.zeros(2, 5), tl.randn(15, 3), tl.randn(15, 5))
    """
    ts = _operands("gru_seq", input, (h0,), w_ih, w_hh, b_ih, b_hh)
    y, h, _ = apply(GRU_SEQ, *ts, reverse=bool(reverse))
    return y, h


def rnn_seq(input, h0, w_ih, w_hh, b_ih=None, b_hh=None, nonlinearity: str = "tanh",
            reverse: bool = False) -> tuple[Tensor, Tensor]:
    """Every step of one Elman RNN layer direction,
    ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)`` with act tanh or relu:
    ``(y (T, N, H), h_T)``.

    >>> y, h = rnn_seq(tl.randn(7, 2, 3), tl.zeros(2, 5), tl.randn(5, 3), tl.randn(5, 5))
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"rnn_seq: nonlinearity must be 'tanh' or 'relu', got "
                         f"{nonlinearity!r}")
    ts = _operands("rnn_seq", input, (h0,), w_ih, w_hh, b_ih, b_hh)
    return apply(RNN_SEQ, *ts, reverse=bool(reverse), nonlinearity=nonlinearity)
