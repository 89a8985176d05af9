"""Cases for the whole-sequence recurrent ops (tensorlib/ops/nn_rnn_seq.py): lstm_seq, gru_seq,
rnn_seq against a naive NumPy step loop, and their first-order BPTT kernels against central
differences of that loop."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.ops import nn_rnn_seq as S

from . import add, arr

_GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def _sig(v):
    return 1 / (1 + np.exp(-v))


def seq_ref(mode, x, h0, *rest, reverse=False, nonlinearity="tanh"):
    """Every output of ``{mode}_seq`` (workspace included) by a plain step loop, float64."""
    f = [np.asarray(a, np.float64) for a in (x, h0, *rest)]
    x, h = f[0], f[1]
    c = f[2] if mode == "lstm" else None
    w = f[3:] if mode == "lstm" else f[2:]
    w_ih, w_hh = w[0], w[1]
    G = w_ih.shape[0]
    b_ih, b_hh = (w[2], w[3]) if len(w) == 4 else (np.zeros(G), np.zeros(G))
    T, N, _ = x.shape
    H = h.shape[1]
    y, cs = np.zeros((T, N, H)), np.zeros((T, N, H))
    ws = np.zeros((T, N, 4 * H))
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        gi, gh = x[t] @ w_ih.T + b_ih, h @ w_hh.T + b_hh
        if mode == "lstm":
            g = gi + gh
            i, fg, o = _sig(g[:, :H]), _sig(g[:, H:2 * H]), _sig(g[:, 3 * H:])
            gg = np.tanh(g[:, 2 * H:3 * H])
            c = fg * c + i * gg
            h = o * np.tanh(c)
            ws[t], cs[t] = np.concatenate([i, fg, gg, o], 1), c
        elif mode == "gru":
            r, z = _sig(gi[:, :H] + gh[:, :H]), _sig(gi[:, H:2 * H] + gh[:, H:2 * H])
            n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
            h = (1 - z) * n + z * h
            ws[t] = np.concatenate([r, z, n, gh[:, 2 * H:]], 1)
        else:
            h = np.maximum(gi + gh, 0) if nonlinearity == "relu" else np.tanh(gi + gh)
        y[t] = h
    if mode == "lstm":
        return y, h, c, ws, cs
    if mode == "gru":
        return y, h, ws
    return y, h


def _forward_inputs(mode, draw):
    T, N = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    I, H = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    G = _GATES[mode] * H
    arrays = [arr(draw, (T, N, I)), arr(draw, (N, H))]
    if mode == "lstm":
        arrays.append(arr(draw, (N, H)))
    arrays += [arr(draw, (G, I), -1, 1), arr(draw, (G, H), -1, 1)]
    if draw(st.booleans()):
        arrays += [arr(draw, (G,), -1, 1), arr(draw, (G,), -1, 1)]
    params = {"reverse": draw(st.booleans())}
    if mode == "rnn":
        params["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    return arrays, params


_N_OUT = {"lstm": 3, "gru": 2, "rnn": 2}        # what the public functions return
_PUBLIC = {"lstm": S.lstm_seq, "gru": S.gru_seq, "rnn": S.rnn_seq}

for _mode in ("lstm", "gru", "rnn"):
    add(f"{_mode}_seq",
        lambda *ts, _m=_mode, **p: _PUBLIC[_m](*ts, **p),
        lambda draw, _m=_mode: _forward_inputs(_m, draw),
        lambda *a, _m=_mode, **p: seq_ref(_m, *a, **p)[:_N_OUT[_m]])


# --- the first-order BPTT kernels -------------------------------------------------------------
def _grad_inputs(mode, draw):
    """The kernel's inputs (forward inputs without biases, saved outputs, cotangents of every
    output), then the biases the saved outputs were made with (the case's fn ignores them; the
    reference needs them to differentiate at the same point)."""
    fwd, params = _forward_inputs(mode, draw)
    ns = 2 if mode == "lstm" else 1
    n_w = len(fwd) - 1 - ns                 # 2, or 4 with biases
    outs = seq_ref(mode, *fwd, **params)
    saved = [outs[k] for k in {"lstm": (0, 3, 4), "gru": (0, 2), "rnn": (0,)}[mode]]
    cot = [arr(draw, o.shape) for o in outs]
    biases = fwd[3 + ns:] if n_w == 4 else [np.zeros(fwd[1 + ns].shape[0])] * 2
    positions = range(len(fwd) if n_w == 4 else len(fwd) + 2)
    need = tuple(i for i in positions if draw(st.booleans())) or (0,)
    return fwd[:3 + ns] + saved + cot + list(biases), {**params, "need": need}


def _grad_ref(mode, *arrays, reverse=False, need=(), nonlinearity="tanh"):
    ns = 2 if mode == "lstm" else 1
    n_fwd = 3 + ns
    n_out = len(seq_ref(mode, *arrays[:n_fwd], reverse=reverse, nonlinearity=nonlinearity))
    n_saved = {"lstm": 3, "gru": 2, "rnn": 1}[mode]
    cot = [np.asarray(c, np.float64) for c in arrays[n_fwd + n_saved:n_fwd + n_saved + n_out]]
    point = [np.array(a, np.float64) for a in arrays[:n_fwd]] + \
        [np.array(a, np.float64) for a in arrays[-2:]]

    def loss():
        outs = seq_ref(mode, *point, reverse=reverse, nonlinearity=nonlinearity)
        return sum(float((o * c).sum()) for o, c in zip(outs, cot))
    grads = []
    for i in sorted(need):
        a, g = point[i], np.zeros_like(point[i])
        for k in np.ndindex(a.shape):       # central differences
            keep = a[k]
            a[k] = keep + 1e-6
            up = loss()
            a[k] = keep - 1e-6
            down = loss()
            a[k] = keep
            g[k] = (up - down) / 2e-6
        grads.append(g)
    return tuple(grads)


for _mode, _op in (("lstm", S.LSTM_SEQ_GRAD), ("gru", S.GRU_SEQ_GRAD), ("rnn", S.RNN_SEQ_GRAD)):
    # first-order only: the kernel the *_seq vjp uses when the backward is not recorded
    add(f"{_mode}_seq_grad",
        lambda *ts, _o=_op, **p: tl.apply(_o, *ts[:-2], **p),
        lambda draw, _m=_mode: _grad_inputs(_m, draw),
        lambda *a, _m=_mode, **p: _grad_ref(_m, *a, **p), grad=False, atol=1e-4)
