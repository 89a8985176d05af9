"""Cases for the neural-network ops (tensorlib/ops/nn_*.py), with naive NumPy references."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.ops import nn_act, nn_conv, nn_layers, nn_loss, nn_norm, nn_pool, nn_rnn

from . import COVERED_ELSEWHERE, add, arr

_apply = tl.apply


# --- references ---------------------------------------------------------------------------
def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _out(n, k, s, p0, p1, d):
    return (n + p0 + p1 - d * (k - 1) - 1) // s + 1


def _conv_windows(xshape, wshape, geo):
    (sh, sw), (pt, pb, pl, pr), (dh, dw), groups = geo
    N, C, H, W = xshape
    O, Cg, kh, kw = wshape
    Ho, Wo = _out(H, kh, sh, pt, pb, dh), _out(W, kw, sw, pl, pr, dw)
    Og = O // groups
    for n in range(N):
        for o in range(O):
            g = o // Og
            for ho in range(Ho):
                for wo in range(Wo):
                    yield (n, o, ho, wo, slice(g * Cg, (g + 1) * Cg),
                           slice(ho * sh, ho * sh + dh * (kh - 1) + 1, dh),
                           slice(wo * sw, wo * sw + dw * (kw - 1) + 1, dw))


def _pad4(x, pad):
    return np.pad(x, ((0, 0), (0, 0), (pad[0], pad[1]), (pad[2], pad[3])))


def conv_ref(x, w, b=None, geo=None):
    (sh, sw), pad, (dh, dw), groups = geo
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    xpad = _pad4(x, pad)
    out = np.zeros((N, O, _out(H, kh, sh, pad[0], pad[1], dh),
                    _out(W, kw, sw, pad[2], pad[3], dw)))
    for n, o, ho, wo, cs, hs, ws in _conv_windows(x.shape, w.shape, geo):
        out[n, o, ho, wo] = (xpad[n, cs, hs, ws] * w[o]).sum()
    return out + (b.reshape(1, -1, 1, 1) if b is not None else 0)


def conv_input_grad_ref(g, w, xshape, geo):
    pad = geo[1]
    dx = _pad4(np.zeros(xshape), pad)
    for n, o, ho, wo, cs, hs, ws in _conv_windows(xshape, w.shape, geo):
        dx[n, cs, hs, ws] += g[n, o, ho, wo] * w[o]
    return dx[:, :, pad[0]:pad[0] + xshape[2], pad[2]:pad[2] + xshape[3]]


def conv_weight_grad_ref(x, g, wshape, geo):
    xpad = _pad4(x, geo[1])
    dw = np.zeros(wshape)
    for n, o, ho, wo, cs, hs, ws in _conv_windows(x.shape, wshape, geo):
        dw[o] += g[n, o, ho, wo] * xpad[n, cs, hs, ws]
    return dw


@st.composite
def conv_geometry(draw):
    groups = draw(st.sampled_from([1, 2]))
    C, O = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    s = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    p = tuple(draw(st.integers(0, 1)) for _ in range(4))
    H = max(1, d[0] * (kh - 1) + 1 - p[0] - p[1]) + draw(st.integers(0, 2))
    W = max(1, d[1] * (kw - 1) + 1 - p[2] - p[3]) + draw(st.integers(0, 2))
    N = draw(st.integers(1, 2))
    return (N, C, H, W), (O, C // groups, kh, kw), (s, p, d, groups)


def _geo_kw(geo):
    s, p, d, g = geo
    return dict(stride=s, padding=p, dilation=d, groups=g)


def _conv_inputs(draw):
    xs, ws, geo = draw(conv_geometry())
    bias = draw(st.booleans())
    ins = [arr(draw, xs), arr(draw, ws)] + ([arr(draw, (ws[0],))] if bias else [])
    return ins, {"geo": geo}


add("conv2d", lambda x, w, *b, geo: _apply(nn_conv.CONV2D, x, w, *b, **_geo_kw(geo)),
    _conv_inputs, conv_ref)


def _input_grad_inputs(draw):
    xs, ws, geo = draw(conv_geometry())
    (sh, sw), p, (dh, dw), _ = geo
    go = (xs[0], ws[0], _out(xs[2], ws[2], sh, p[0], p[1], dh),
          _out(xs[3], ws[3], sw, p[2], p[3], dw))
    return [arr(draw, go), arr(draw, ws)], {"geo": geo, "xshape": xs}


add("conv2d_input_grad",
    lambda g, w, geo, xshape: _apply(nn_conv.CONV2D_INPUT_GRAD, g, w, input_hw=xshape[2:],
                                     **_geo_kw(geo)),
    _input_grad_inputs, lambda g, w, geo, xshape: conv_input_grad_ref(g, w, xshape, geo))


def _weight_grad_inputs(draw):
    xs, ws, geo = draw(conv_geometry())
    (sh, sw), p, (dh, dw), _ = geo
    go = (xs[0], ws[0], _out(xs[2], ws[2], sh, p[0], p[1], dh),
          _out(xs[3], ws[3], sw, p[2], p[3], dw))
    return [arr(draw, xs), arr(draw, go)], {"geo": geo, "wshape": ws}


add("conv2d_weight_grad",
    lambda x, g, geo, wshape: _apply(nn_conv.CONV2D_WEIGHT_GRAD, x, g, kernel=wshape[2:],
                                     **_geo_kw(geo)),
    _weight_grad_inputs,
    lambda x, g, geo, wshape: conv_weight_grad_ref(x, g, wshape, geo))


# --- pooling --------------------------------------------------------------------------------
def _pool_ref(x, k, s, p, reduce, pad_value):
    N, C, H, W = x.shape
    Ho, Wo = (H + 2 * p[0] - k[0]) // s[0] + 1, (W + 2 * p[1] - k[1]) // s[1] + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=pad_value)
    out = np.zeros((N, C, Ho, Wo))
    for ho in range(Ho):
        for wo in range(Wo):
            win = xpad[:, :, ho * s[0]:ho * s[0] + k[0], wo * s[1]:wo * s[1] + k[1]]
            out[:, :, ho, wo] = reduce(win.reshape(N, C, -1), axis=2)
    return out


@st.composite
def pool_geometry(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    H, W = k[0] + draw(st.integers(0, 3)), k[1] + draw(st.integers(0, 3))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 2)), H, W), k, s, p


def _pool_inputs(draw):
    shape, k, s, p = draw(pool_geometry())
    x = np.random.default_rng(draw(st.integers(0, 2**31))).permutation(
        np.prod(shape)).reshape(shape) / np.prod(shape) * 4 - 2   # distinct values: no ties
    return [x.astype(np.float64)], {"k": k, "s": s, "p": p}


add("max_pool2d", lambda x, k, s, p: F.max_pool2d(x, k, s, p, return_indices=True)[0],
    _pool_inputs, lambda x, k, s, p: _pool_ref(x, k, s, p, np.max, -np.inf))
add("avg_pool2d", lambda x, k, s, p: F.avg_pool2d(x, k, s, p), _pool_inputs,
    lambda x, k, s, p: _pool_ref(x, k, s, p, np.mean, 0.0))
add("avg_pool2d", lambda x, k, s, p: F.avg_pool2d(x, k, s, p, count_include_pad=False),
    _pool_inputs, name="exclude_pad")


def _max_grad_inputs(draw):
    (x,), kw = _pool_inputs(draw)
    _, idx = F.max_pool2d(tl.tensor(x), kw["k"], kw["s"], kw["p"], return_indices=True)
    return [arr(draw, idx.shape)], {"hw": x.shape[2:], "idx": idx.numpy()}


def _max_grad_ref(g, hw, idx):
    H, W = hw
    N, C = g.shape[:2]
    out = np.zeros((N, C, H * W))
    for n in range(N):
        for c in range(C):
            np.add.at(out[n, c], idx[n, c].ravel(), g[n, c].ravel())
    return out.reshape(N, C, H, W)


add("max_pool2d_grad",
    lambda g, hw, idx: _apply(nn_pool.MAX_POOL2D_GRAD, g, tl.tensor(idx, device=g.device),
                          input_hw=tuple(hw)),
    _max_grad_inputs, _max_grad_ref)


def _avg_grad_inputs(draw):
    (x,), kw = _pool_inputs(draw)
    out = F.avg_pool2d(tl.tensor(x), kw["k"], kw["s"], kw["p"])
    return [arr(draw, out.shape)], dict(kw, xs=x.shape)


def _avg_grad_ref(g, k, s, p, xs):
    N, C, H, W = xs
    dx = np.zeros((N, C, H + 2 * p[0], W + 2 * p[1]))
    for ho in range(g.shape[2]):
        for wo in range(g.shape[3]):
            dx[:, :, ho * s[0]:ho * s[0] + k[0], wo * s[1]:wo * s[1] + k[1]] += \
                g[:, :, ho:ho + 1, wo:wo + 1] / (k[0] * k[1])
    return dx[:, :, p[0]:p[0] + H, p[1]:p[1] + W]


add("avg_pool2d_grad",
    lambda g, k, s, p, xs: _apply(nn_pool.AVG_POOL2D_GRAD, g, kernel=k, stride=s, padding=p,
                                  input_hw=tuple(xs[2:]), ceil_mode=False, count_include_pad=True,
                                  divisor=0),
    _avg_grad_inputs, _avg_grad_ref)


# --- softmax and losses ---------------------------------------------------------------------
def _sm_inputs(draw):
    nd = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    return [arr(draw, shape, -3, 3)], {"axis": draw(st.integers(-nd, nd - 1))}


add("softmax", F.softmax, _sm_inputs, _softmax)


def _relu_grad_inputs(draw):
    shape = tuple(draw(st.integers(1, 4)) for _ in range(draw(st.integers(1, 3))))
    return [arr(draw, shape), arr(draw, shape, away_from=0.0)]


# relu's backward: grad of grad through it (linear in g, zero in x away from the kink)
add("relu_grad", nn_act.relu_grad, _relu_grad_inputs, lambda g, x: np.where(x > 0, g, 0.0))
add("log_softmax", F.log_softmax, _sm_inputs, lambda x, axis: np.log(_softmax(x, axis)))



def _sm_grad_inputs(draw):
    (x,), attrs = _sm_inputs(draw)
    return [arr(draw, x.shape, -3, 3), x], attrs


# the softmax backward passes (ops of their own, fused on the CPU): grad of grad through them
add("softmax_grad", lambda g, y, axis: tl.apply(nn_act.SOFTMAX_GRAD, g, y, axis=axis),
    _sm_grad_inputs, lambda g, y, axis: y * (g - (g * y).sum(axis=axis, keepdims=True)))
add("log_softmax_grad", lambda g, y, axis: tl.apply(nn_act.LOG_SOFTMAX_GRAD, g, y, axis=axis),
    _sm_grad_inputs, lambda g, y, axis: g - np.exp(y) * g.sum(axis=axis, keepdims=True))

def _ce_inputs(draw):
    N, C = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    spatial = draw(st.sampled_from([(), (2,)]))
    x = arr(draw, (N, C) + spatial, -3, 3)
    t = np.random.default_rng(draw(st.integers(0, 99))).integers(0, C, (N,) + spatial)
    t.flat[0] = -100 if draw(st.booleans()) and t.size > 1 else t.flat[0]
    w = arr(draw, (C,), 0.5, 2.0)
    red = draw(st.sampled_from(["mean", "sum", "none"]))
    ls = draw(st.sampled_from([0.0, 0.2]))
    return [x, t, w], {"red": red, "ls": ls}


def _ce_ref(x, t, w, red, ls=0.0, nll=False):
    C = x.shape[1]
    logp = x if nll else np.log(_softmax(x, 1))
    valid = t != -100
    tc = np.where(valid, t, 0)
    wt = w[tc] * valid
    picked = np.take_along_axis(logp, tc[:, None], axis=1)[:, 0]
    loss = -picked * wt
    if ls and not nll:
        smooth = -(logp * w.reshape((1, C) + (1,) * (x.ndim - 2))).sum(1) * valid
        loss = (1 - ls) * loss + ls / C * smooth
    if red == "none":
        return loss
    return loss.sum() if red == "sum" else loss.sum() / wt.sum()


add("cross_entropy",
    lambda x, t, w, red, ls: F.cross_entropy(x, t, w, reduction=red, label_smoothing=ls),
    _ce_inputs, _ce_ref, diff=(0,))
def _ce_grad_inputs(draw):
    N, C = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    x = arr(draw, (N, C), -3, 3)
    t = np.random.default_rng(draw(st.integers(0, 99))).integers(0, C, N)
    t[0] = -100 if draw(st.booleans()) and N > 1 else t[0]
    red = draw(st.sampled_from(["mean", "sum", "none"]))
    g = arr(draw, (N,) if red == "none" else ())
    return [x, t, g], {"red": red}


def _ce_grad_ref(x, t, g, red):
    valid = t != -100
    d = _softmax(x, 1) - np.eye(x.shape[1])[np.where(valid, t, 0)]
    d = d * valid[:, None]
    if red == "none":
        return d * g[:, None]
    return d * g / (valid.sum() if red == "mean" else 1.0)


# first-order only: cross_entropy's vjp in one op when the backward is not recorded
add("cross_entropy_grad",
    lambda x, t, g, red: _apply(nn_loss.CROSS_ENTROPY_GRAD, x, t, g, ignore_index=-100,
                                reduction=red),
    _ce_grad_inputs, _ce_grad_ref, grad=False)
add("nll_loss", lambda x, t, w, red, ls: F.nll_loss(x, t, w, reduction=red), _ce_inputs,
    lambda x, t, w, red, ls: _ce_ref(x, t, w, red, nll=True), diff=(0,))


def _nll_grad_inputs(draw):
    [x, t, w], attrs = _ce_inputs(draw)
    g = arr(draw, t.shape if attrs["red"] == "none" else ())
    return [x, t, g, w], {"red": attrs["red"]}


def _nll_grad_ref(x, t, g, w, red):
    valid = t != -100
    tc = np.where(valid, t, 0)
    wt = w[tc] * valid
    scale = -wt * g
    if red == "mean":
        scale = scale / (wt.sum() or 1.0)
    onehot = np.moveaxis(np.eye(x.shape[1])[tc], -1, 1)
    return onehot * np.expand_dims(scale, 1)


# first-order only: nll_loss's vjp in one op when the backward is not recorded
add("nll_loss_grad",
    lambda x, t, g, w, red: _apply(nn_loss.NLL_LOSS_GRAD, x, t, g, w, ignore_index=-100,
                                   reduction=red),
    _nll_grad_inputs, _nll_grad_ref, grad=False)


# --- linear, embedding ------------------------------------------------------------------------
def _linear_inputs(draw):
    lead = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(1, 2))))
    i, o = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ins = [arr(draw, lead + (i,)), arr(draw, (o, i))]
    return ins + ([arr(draw, (o,))] if draw(st.booleans()) else [])


add("linear", F.linear, _linear_inputs, lambda x, w, b=None: x @ w.T + (0 if b is None else b))


def _linear_grad_inputs(draw):
    (x, w, *_), need = _linear_inputs(draw), draw(st.sampled_from(
        [(True, True, True), (True, False, False), (False, True, False), (False, False, True)]))
    g = arr(draw, x.shape[:-1] + (w.shape[0],))
    return [g, x, w], dict(zip(("need_x", "need_w", "need_b"), need))


def _linear_grad_ref(g, x, w, need_x, need_w, need_b):
    g2, x2 = g.reshape(-1, g.shape[-1]), x.reshape(-1, x.shape[-1])
    out = (g @ w, g2.T @ x2, g2.sum(0))
    return tuple(o for o, k in zip(out, (need_x, need_w, need_b)) if k)


# first-order only: linear's vjp in one op when the backward is not recorded
add("linear_grad", lambda g, x, w, **k: _apply(nn_layers.LINEAR_GRAD, g, x, w, **k),
    _linear_grad_inputs, _linear_grad_ref, grad=False)


def _emb_inputs(draw):
    V, D = draw(st.integers(1, 5)), draw(st.integers(1, 3))
    idx = np.random.default_rng(draw(st.integers(0, 99))).integers(0, V, (draw(
        st.integers(1, 3)), draw(st.integers(1, 3))))
    pad = draw(st.sampled_from([None, 0]))
    return [idx, arr(draw, (V, D))], {"pad": pad}


add("embedding", lambda i, w, pad: F.embedding(i, w), _emb_inputs,
    lambda i, w, pad: w[i], diff=(1,))
# padding_idx rows get no gradient by definition (finite differences disagree): forward only
add("embedding", lambda i, w, pad: F.embedding(i, w, padding_idx=pad), _emb_inputs,
    lambda i, w, pad: w[i], diff=(1,), grad=False, name="padding_idx")


def _emb_grad_inputs(draw):
    (idx, w), kw = _emb_inputs(draw)
    return [arr(draw, idx.shape + (w.shape[1],)), idx], dict(kw, V=w.shape[0])


def _emb_grad_ref(g, idx, V, pad):
    out = np.zeros((V, g.shape[-1]))
    np.add.at(out, idx.ravel(), g.reshape(-1, g.shape[-1]))
    if pad is not None:
        out[pad] = 0
    return out


add("embedding_grad", lambda g, i, V, pad: _apply(nn_layers.EMBEDDING_GRAD, g, i, num_weights=V,
                                                  padding_idx=pad),
    _emb_grad_inputs, _emb_grad_ref, diff=(0,))


# --- LSTM cell -----------------------------------------------------------------------------------
def _sig(x):
    return 1 / (1 + np.exp(-x))


def _cell_ref(gates, c):
    H = c.shape[1]
    i, f, o = _sig(gates[:, :H]), _sig(gates[:, H:2 * H]), _sig(gates[:, 3 * H:])
    g = np.tanh(gates[:, 2 * H:3 * H])
    cn = f * c + i * g
    return o * np.tanh(cn), cn, np.concatenate([i, f, g, o], 1)


def _cell_inputs(draw):
    N, H = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return [arr(draw, (N, 4 * H)), arr(draw, (N, H))]


add("lstm_cell", lambda gates, c: _apply(nn_rnn.LSTM_CELL, gates, c), _cell_inputs, _cell_ref)


def _cell_addend_inputs(draw):
    gates, c = _cell_inputs(draw)
    return [gates, c, arr(draw, gates.shape), arr(draw, gates.shape[1:]),
            arr(draw, gates.shape[1:])]


# F.lstm_cell's form: x W_ih^T, c, then h W_hh^T and the two biases added inside the op
add("lstm_cell", lambda gates, c, hg, b1, b2: _apply(nn_rnn.LSTM_CELL, gates, c, hg, b1, b2),
    _cell_addend_inputs, lambda gates, c, hg, b1, b2: _cell_ref(gates + hg + b1 + b2, c),
    name="addends")


def _cell_grad_inputs(draw):
    gates, c = _cell_inputs(draw)
    _, cn, acts = _cell_ref(gates, c)
    N, H = c.shape
    return [acts, c, cn, arr(draw, (N, H)), arr(draw, (N, H)), arr(draw, (N, 4 * H))]


def _cell_grad_ref(acts, c, cn, gh, gc, ga):
    H = c.shape[1]
    i, f, g, o = acts[:, :H], acts[:, H:2 * H], acts[:, 2 * H:3 * H], acts[:, 3 * H:]
    tc = np.tanh(cn)
    dcn = gc + gh * o * (1 - tc ** 2)
    pre = np.concatenate([(dcn * g + ga[:, :H]) * i * (1 - i),
                          (dcn * c + ga[:, H:2 * H]) * f * (1 - f),
                          (dcn * i + ga[:, 2 * H:3 * H]) * (1 - g ** 2),
                          (gh * tc + ga[:, 3 * H:]) * o * (1 - o)], 1)
    return pre, dcn * f


# first-order only: the kernel the lstm_cell vjp uses when the backward is not recorded
add("lstm_cell_grad", lambda *a: _apply(nn_rnn.LSTM_CELL_GRAD, *a), _cell_grad_inputs,
    _cell_grad_ref, grad=False)
# without the activations' gradient (the backward of F.lstm_cell, whose acts nobody reads)
add("lstm_cell_grad", lambda *a: _apply(nn_rnn.LSTM_CELL_GRAD, *a, acts_grad=False),
    lambda draw: _cell_grad_inputs(draw)[:5],
    lambda *a: _cell_grad_ref(*a, np.zeros_like(a[0])), grad=False, name="no_acts_grad")


def _gru_ref(gi, gh, h):
    H = h.shape[1]
    r, z = _sig(gi[:, :H] + gh[:, :H]), _sig(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return n + z * (h - n), np.concatenate([r, z, n], 1)


def _gru_inputs(draw):
    N, H = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return [arr(draw, (N, 3 * H)), arr(draw, (N, 3 * H)), arr(draw, (N, H))]


# F.gru_cell's gate op: x W_ih^T + b_ih, h W_hh^T + b_hh (b_hn inside r * (...)), h
add("gru_cell", lambda gi, gh, h: _apply(nn_rnn.GRU_CELL, gi, gh, h), _gru_inputs, _gru_ref)


def _gru_grad_inputs(draw):
    gi, gh, h = _gru_inputs(draw)
    _, acts = _gru_ref(gi, gh, h)
    return [acts, gh, h, arr(draw, h.shape), arr(draw, acts.shape)]


def _gru_grad_ref(acts, gh, h, gy, ga):
    H = h.shape[1]
    r, z, n = acts[:, :H], acts[:, H:2 * H], acts[:, 2 * H:]
    dnp = (gy * (1 - z) + ga[:, 2 * H:]) * (1 - n ** 2)
    drp = (dnp * gh[:, 2 * H:] + ga[:, :H]) * r * (1 - r)
    dzp = (gy * (h - n) + ga[:, H:2 * H]) * z * (1 - z)
    return (np.concatenate([drp, dzp, dnp], 1), np.concatenate([drp, dzp, dnp * r], 1),
            gy * z)


# first-order only: the kernel the gru_cell vjp uses when the backward is not recorded
add("gru_cell_grad", lambda *a: _apply(nn_rnn.GRU_CELL_GRAD, *a), _gru_grad_inputs,
    _gru_grad_ref, grad=False)


# --- layer_norm (one op: y, mean, rstd) and its first-order backward ----------------------------
def _ln_ref(x, *wb, eps, ndim, affine):
    axes = tuple(range(x.ndim - ndim, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    rstd = 1 / np.sqrt(var + eps)
    y = (x - mean) * rstd
    it = iter(wb)
    if "w" in affine:
        y = y * next(it)
    if "b" in affine:
        y = y + next(it)
    return y, mean, rstd


def _ln_inputs(draw):
    lead = draw(st.lists(st.integers(1, 3), min_size=0, max_size=2))
    ns = draw(st.lists(st.integers(2, 4), min_size=1, max_size=2))
    affine = draw(st.sampled_from(["wb", "w", "b", ""]))
    x = arr(draw, tuple(lead) + tuple(ns), low=-3, high=3)
    wb = [arr(draw, tuple(ns)) for c in affine]
    return [x] + wb, {"eps": 1e-5, "ndim": len(ns), "affine": affine}


add("layer_norm", lambda x, *wb, **kw: _apply(nn_norm.LAYER_NORM, x, *wb, **kw), _ln_inputs,
    _ln_ref)


def _ln_grad_inputs(draw):
    (x, *w), kw = _ln_inputs(draw)
    _, mean, rstd = _ln_ref(x, eps=1e-5, ndim=kw["ndim"], affine="")
    shp = x.shape
    ins = [x, mean, rstd, arr(draw, shp), arr(draw, mean.shape), arr(draw, mean.shape)]
    return ins + w[:1] if "w" in kw["affine"] else ins, {"ndim": kw["ndim"]}


def _ln_grad_ref(x, mean, rstd, gy, gm, gr, *w, ndim):
    axes = tuple(range(x.ndim - ndim, x.ndim))
    lead = tuple(range(x.ndim - ndim))
    D = np.prod(x.shape[x.ndim - ndim:])
    xhat = (x - mean) * rstd
    gx = gy * w[0] if w else gy
    dx = rstd * (gx - gx.mean(axis=axes, keepdims=True)
                 - xhat * (gx * xhat).mean(axis=axes, keepdims=True))
    dx = dx + gm / D - gr * rstd ** 2 * xhat / D
    return dx, (gy * xhat).sum(axis=lead), gy.sum(axis=lead)


# first-order only: the kernel layer_norm's vjp uses when the backward is not recorded
add("layer_norm_grad", lambda *a, **kw: _apply(nn_norm.LAYER_NORM_GRAD, *a, **kw),
    _ln_grad_inputs, _ln_grad_ref, grad=False)


# --- batch_norm with fixed statistics (inference), and in training (y, mean, var) ------------
def _bn_eval_ref(x, mean, var, *wb, eps, affine):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    it = iter(wb)
    if "w" in affine:
        y = y * next(it).reshape(shape)
    if "b" in affine:
        y = y + next(it).reshape(shape)
    return y


# --- batch_norm in training (one op: y, mean, var per channel) and its first-order backward ----
def _bn_ref(x, *wb, eps, affine):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = x.mean(axis=axes)
    var = ((x - mean.reshape(shape)) ** 2).mean(axis=axes)
    return _bn_eval_ref(x, mean, var, *wb, eps=eps, affine=affine), mean, var


def _bn_inputs(draw):
    n, c = draw(st.integers(2, 4)), draw(st.integers(1, 3))
    spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    affine = draw(st.sampled_from(["wb", "w", "b", ""]))
    x = arr(draw, (n, c) + spatial, low=-3, high=3)
    return [x] + [arr(draw, (c,)) for _ in affine], {"eps": 1e-5, "affine": affine}


add("batch_norm", lambda x, *wb, **kw: _apply(nn_norm.BATCH_NORM, x, *wb, **kw), _bn_inputs,
    _bn_ref)


def _bn_grad_inputs(draw):
    (x, *wb), kw = _bn_inputs(draw)
    _, mean, var = _bn_ref(x, eps=1e-5, affine="")
    c = x.shape[1]
    ins = [x, mean, var, arr(draw, x.shape), arr(draw, (c,)), arr(draw, (c,))]
    return ins + wb[:1] if "w" in kw["affine"] else ins, {"eps": 1e-5}


def _bn_grad_ref(x, mean, var, gy, gm, gv, *w, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    count = x.size // x.shape[1]
    rstd = 1 / np.sqrt(var.reshape(shape) + eps)
    xc = x - mean.reshape(shape)
    xhat = xc * rstd
    gx = gy * w[0].reshape(shape) if w else gy
    dx = rstd * (gx - gx.mean(axis=axes, keepdims=True)
                 - xhat * (gx * xhat).mean(axis=axes, keepdims=True))
    dx = dx + gm.reshape(shape) / count + 2 * gv.reshape(shape) * xc / count
    return dx, (gy * xhat).sum(axis=axes), gy.sum(axis=axes)


# first-order only: the kernel batch_norm's vjp uses when the backward is not recorded
add("batch_norm_grad", lambda *a, **kw: _apply(nn_norm.BATCH_NORM_GRAD, *a, **kw),
    _bn_grad_inputs, _bn_grad_ref, grad=False)


# --- group_norm (one op: y, mean, rstd per sample and group) and its first-order backward ------
def _gn_ref(x, *wb, groups, eps, affine):
    N, C = x.shape[:2]
    xg = x.reshape(N, groups, -1)
    mean = xg.mean(axis=2)
    rstd = 1 / np.sqrt(((xg - mean[..., None]) ** 2).mean(axis=2) + eps)
    y = ((xg - mean[..., None]) * rstd[..., None]).reshape(x.shape)
    shape = (1, C) + (1,) * (x.ndim - 2)
    it = iter(wb)
    if "w" in affine:
        y = y * next(it).reshape(shape)
    if "b" in affine:
        y = y + next(it).reshape(shape)
    return y, mean, rstd


def _gn_inputs(draw):
    n, groups, per = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
    spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    if groups * per * max(1, int(np.prod(spatial))) == 1:
        spatial = (2,)      # a group of one value has no spread: rstd is eps's
    affine = draw(st.sampled_from(["wb", "w", "b", ""]))
    x = arr(draw, (n, groups * per) + spatial, low=-3, high=3)
    return ([x] + [arr(draw, (groups * per,)) for _ in affine],
            {"groups": groups, "eps": 1e-5, "affine": affine})


add("group_norm", lambda x, *wb, **kw: _apply(nn_norm.GROUP_NORM, x, *wb, **kw), _gn_inputs,
    _gn_ref)


def _gn_grad_inputs(draw):
    (x, *wb), kw = _gn_inputs(draw)
    _, mean, rstd = _gn_ref(x, groups=kw["groups"], eps=1e-5, affine="")
    ins = [x, mean, rstd, arr(draw, x.shape), arr(draw, mean.shape), arr(draw, mean.shape)]
    return ins + wb[:1] if "w" in kw["affine"] else ins, {"groups": kw["groups"]}


def _gn_grad_ref(x, mean, rstd, gy, gm, gr, *w, groups):
    N, C = x.shape[:2]
    axes = (0,) + tuple(range(2, x.ndim))
    xg = x.reshape(N, groups, -1)
    D = xg.shape[2]
    xhat = (xg - mean[..., None]) * rstd[..., None]
    gx = (gy * w[0].reshape((1, C) + (1,) * (x.ndim - 2)) if w else gy).reshape(xg.shape)
    dx = rstd[..., None] * (gx - gx.mean(axis=2, keepdims=True)
                            - xhat * (gx * xhat).mean(axis=2, keepdims=True))
    dx = dx + gm[..., None] / D - gr[..., None] * rstd[..., None] ** 2 * xhat / D
    return (dx.reshape(x.shape), (gy * xhat.reshape(x.shape)).sum(axis=axes),
            gy.sum(axis=axes))


# first-order only: the kernel group_norm's vjp uses when the backward is not recorded
add("group_norm_grad", lambda *a, **kw: _apply(nn_norm.GROUP_NORM_GRAD, *a, **kw),
    _gn_grad_inputs, _gn_grad_ref, grad=False)


# --- batch_norm with fixed statistics (inference) -----------------------------------------------

def _bn_eval_inputs(draw):
    (x, *wb), kw = _bn_inputs(draw)
    c = x.shape[1]
    return [x, arr(draw, (c,)), arr(draw, (c,), low=0.2, high=2.0)] + wb, kw


add("batch_norm_eval", lambda *a, **kw: _apply(nn_norm.BATCH_NORM_EVAL, *a, **kw),
    _bn_eval_inputs, _bn_eval_ref)


# --- binary_cross_entropy (elementwise, unreduced) --------------------------------------------
def _bce_inputs(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=2)))
    return [arr(draw, shape, low=0.05, high=0.95), arr(draw, shape, low=0.0, high=1.0)]


add("binary_cross_entropy", lambda p, y: _apply(nn_loss.BCE, p, y), _bce_inputs,
    lambda p, y: -(y * np.log(p) + (1 - y) * np.log1p(-p)))


def _huber_inputs(draw, delta):
    from . import shapes
    s = draw(shapes())
    x, y = arr(draw, s), arr(draw, s)
    # away from the kink |x - y| = delta, where finite differences straddle two pieces
    y = np.where(np.abs(np.abs(x - y) - delta) < 0.1, y + 0.3, y)
    return [x, y]


def _huber_ref(x, y, delta):
    d = np.abs(x - y)
    return np.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))


add("huber_loss", lambda x, y: F.huber_loss(x, y, reduction="none", delta=0.5),
    lambda draw: _huber_inputs(draw, 0.5), lambda x, y: _huber_ref(x, y, 0.5))
add("huber_loss", lambda x, y: F.smooth_l1_loss(x, y, reduction="none", beta=0.5),
    lambda draw: _huber_inputs(draw, 0.5), lambda x, y: _huber_ref(x, y, 0.5) / 0.5,
    name="smooth_l1")
add("huber_loss_grad",
    lambda g, x, y: tl.apply(tl.REGISTRY["huber_loss_grad"], g, x, y, delta=0.5, k=1.0,
                             mean=False),
    lambda draw: (lambda xy: [arr(draw, xy[0].shape)] + xy)(_huber_inputs(draw, 0.5)),
    lambda g, x, y: g * np.clip(x - y, -0.5, 0.5))


def _unfold_ref(x, k=2, p=1, s=1):
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    n, c, h, w = xp.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    return np.stack([xp[:, :, i * s:i * s + k, j * s:j * s + k].reshape(n, c * k * k)
                     for i in range(oh) for j in range(ow)], axis=-1)


def _fold_ref(cols, out=(4, 5), k=2, p=1, s=1):
    n, c = cols.shape[0], cols.shape[1] // (k * k)
    h, w = out[0] + 2 * p, out[1] + 2 * p
    res = np.zeros((n, c, h, w), cols.dtype)
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    for l, (i, j) in enumerate((i, j) for i in range(oh) for j in range(ow)):
        res[:, :, i * s:i * s + k, j * s:j * s + k] += cols[:, :, l].reshape(n, c, k, k)
    return res[:, :, p:h - p, p:w - p]


add("im2col", lambda x: F.unfold(x, 2, padding=1), lambda draw: [arr(draw, (2, 3, 4, 5))],
    _unfold_ref)
add("col2im", lambda c: F.fold(c, (4, 5), 2, padding=1), lambda draw: [arr(draw, (2, 12, 30))],
    _fold_ref)
COVERED_ELSEWHERE["size_guard"] = ("an identity that checks sizes read from None dims when a "
                                   "captured graph replays: "
                                   "tests/capture/test_replay_size_checks.py")
COVERED_ELSEWHERE["finite_guard"] = ("an identity that raises on NaN/inf each time a captured "
                                     "graph runs (clip_grad_norm_'s error_if_nonfinite): "
                                     "tests/distributions/test_categorical_multinomial_strict.py")
COVERED_ELSEWHERE["bincount"] = ("recorded only under capture (tl.bincount with minlength; "
                                 "not differentiable, as PyTorch's): values vs PyTorch, the "
                                 "replay check, ONNX and the graph file in "
                                 "tests/ops/test_bincount_capture.py")


# --- the fused BCE-with-logits ops -------------------------------------------------------
def _bcel_inputs(draw):
    from . import shapes
    s = draw(shapes(min_dims=1, max_dims=2, max_side=3))
    return [arr(draw, s, low=-3.0, high=3.0), arr(draw, s, low=0.0, high=1.0),
            arr(draw, s[-1:], low=0.5, high=1.5), arr(draw, s[-1:], low=0.2, high=2.0)]


def _bcel_ref(x, y, w, pw):
    ls = np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))
    return w * ((1 - y) * x - (1 + (pw - 1) * y) * ls)


add("binary_cross_entropy_with_logits",
    lambda x, y, w, pw: F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw,
                                                            reduction="none"),
    _bcel_inputs, _bcel_ref)
add("binary_cross_entropy_with_logits",
    lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction="mean"),
    lambda draw: _bcel_inputs(draw)[:2],
    lambda x, y: np.mean((1 - y) * x - np.minimum(x, 0) + np.log1p(np.exp(-np.abs(x)))),
    name="mean")


def _bcel_grad_ref(g, x, y, w, pw):
    s = 1 / (1 + np.exp(-x))
    return g * w * ((1 + (pw - 1) * y) * s - pw * y)


add("binary_cross_entropy_with_logits_grad",
    lambda g, x, y, w, pw: tl.apply(tl.REGISTRY["binary_cross_entropy_with_logits_grad"],
                                    g, x, y, w, pw, weighted=True, pos=True, mean=False),
    lambda draw: (lambda v: [arr(draw, v[0].shape)] + v)(_bcel_inputs(draw)),
    _bcel_grad_ref)

for _op in ("conv3d", "conv3d_input_grad", "conv3d_weight_grad"):
    COVERED_ELSEWHERE[_op] = ("tests/kernels/test_conv3d_fast.py: values, gradients and double "
                              "backward against torch, gradcheck/gradgradcheck, ONNX")
