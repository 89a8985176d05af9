"""Projecting embedding tables: ``linear(embedding(i, E), W, b)`` -> ``embedding(i, T)``
with ``T = linear(E, W, b)``.

Both give row ``E[i] @ W.T + b`` for each index. The right side computes the projection
once per table row instead of once per looked-up row, so it wins when the lookups that
share ``(E, W, b)`` take more rows in all than the table has (an RNN's input projection:
a small vocabulary, a row per token and time step), and it turns the backward's
input-projection GEMMs into one scatter-add into the table's gradient. Only without
``padding_idx``: the padding row gets no gradient, which the projected table cannot say.
"""
from __future__ import annotations

import math

from ._rewrite import commit, emit, replace_uses, same_place, users_of


def project_embedding_tables(g, ignore=(), protect=()) -> int:
    """Rewrite the lookups that pay off (see the module docstring); returns how many."""
    users = users_of(g, ignore)
    outs = {v.id for v in g.outputs}
    groups: dict[tuple, list] = {}
    for n in g.nodes:
        if n.op != "linear" or n.id in ignore or n.outputs[0].id in protect:
            continue
        e = n.inputs[0]
        emb = e.node
        if (emb is None or emb.op != "embedding" or emb.attrs.get("padding_idx") is not None
                or len(users.get(e.id, [])) != 1 or e.id in outs or e.id in protect):
            continue
        table, idx = emb.inputs
        if table.ndim != 2 or None in table.shape or None in idx.shape \
                or not same_place(n, emb):
            continue
        key = (table.id, n.device, n.pin) + tuple(v.id for v in n.inputs[1:])
        groups.setdefault(key, []).append((emb, n))
    done = 0
    dead: set[int] = set()
    for members in groups.values():
        emb0, lin0 = members[0]
        rows = sum(math.prod(emb.inputs[1].shape) for emb, _ in members)
        if rows <= emb0.inputs[0].shape[0]:
            continue
        proj = emit(g, "linear", [emb0.inputs[0]] + lin0.inputs[1:], dict(lin0.attrs),
                    lin0).outputs[0]
        for emb, lin in members:
            new = emit(g, "embedding", [proj, emb.inputs[1]], {"padding_idx": None},
                       emb).outputs[0]
            replace_uses(g, lin.outputs[0], new)
            dead |= {emb.id, lin.id}
            done += 1
    commit(g, dead)
    return done


def fold_bias_into_tables(g, ignore=(), protect=()) -> int:
    """``embedding(i, T) + linear(h, W, b)`` -> ``embedding(i, T + b) + linear(h, W)``: the
    bias added once per table row instead of once per looked-up row (an LSTM's recurrent
    bias next to a projected input table), so its gradient is one column sum of the table's
    gradient. Only where the lookups sharing ``(T, b)`` take more rows than T has. The same
    for ``lstm_cell(embedding(i, T), c, ..., b_ih, b_hh)`` (F.lstm_cell's form, whose cell
    adds the biases): ``lstm_cell(embedding(i, T + b_ih + b_hh), c, ...)``."""
    done = _fold_cell_biases(g, ignore, protect)
    only = _sole_reader(g, ignore, protect)
    groups: dict[tuple, list] = {}
    for n in g.nodes:
        if n.op != "add" or n.id in ignore or n.outputs[0].id in protect:
            continue
        for k in (0, 1):
            a, c = n.inputs[k], n.inputs[1 - k]
            emb, lin = a.node, c.node
            if (emb is not None and lin is not None and emb.op == "embedding"
                    and lin.op == "linear" and len(lin.inputs) == 3 and not lin.attrs
                    and emb.attrs.get("padding_idx") is None and only(a, n) and only(c, n)
                    and a.shape == c.shape == n.outputs[0].shape and a.dtype == c.dtype
                    and emb.inputs[0].ndim == 2 and None not in emb.inputs[1].shape
                    and lin.inputs[2].ndim == 1):
                key = (emb.inputs[0].id, lin.inputs[2].id, n.device, n.pin, emb.device,
                       emb.pin, lin.device, lin.pin)
                groups.setdefault(key, []).append(
                    (n, emb, lin))
                break
    dead: set[int] = set()
    for members in groups.values():
        n0, emb0, lin0 = members[0]
        if sum(math.prod(e.inputs[1].shape) for _, e, _ in members) <= emb0.inputs[0].shape[0]:
            continue
        table = emit(g, "add", [emb0.inputs[0], lin0.inputs[2]], {}, emb0).outputs[0]
        for n, emb, lin in members:
            rows = emit(g, "embedding", [table, emb.inputs[1]], {"padding_idx": None},
                        emb).outputs[0]
            proj = emit(g, "linear", lin.inputs[:2], {}, lin).outputs[0]
            replace_uses(g, n.outputs[0], emit(g, "add", [rows, proj], {}, n).outputs[0])
            dead |= {n.id, emb.id, lin.id}
            done += 1
    commit(g, dead)
    return done


def _lookup(v, n, only):
    """The embedding node making ``v`` when ``n`` is its only reader and the pass may move
    a bias into its table (no padding row, a 2-D table, static index shape); else None."""
    emb = v.node
    if (emb is not None and emb.op == "embedding" and emb.attrs.get("padding_idx") is None
            and only(v, n) and emb.inputs[0].ndim == 2 and None not in emb.inputs[1].shape):
        return emb
    return None


def _sole_reader(g, ignore, protect):
    """``only(v, n)``: whether node ``n`` is the one reader of Value ``v``, which is neither
    a graph output nor protected."""
    users = users_of(g, ignore)
    outs = {v.id for v in g.outputs}

    def only(v, n):
        return users.get(v.id) == [n] and v.id not in outs and v.id not in protect
    return only


def _fold_cell_biases(g, ignore, protect) -> int:
    """The lstm_cell form of :func:`fold_bias_into_tables`."""
    only = _sole_reader(g, ignore, protect)
    groups: dict[tuple, list] = {}
    for n in g.nodes:
        if n.op != "lstm_cell" or n.id in ignore or any(v.id in protect for v in n.outputs):
            continue
        emb = _lookup(n.inputs[0], n, only)
        biases = [v for v in n.inputs[2:] if v.ndim == 1]
        if emb is None or not biases or any(b.dtype != n.inputs[0].dtype for b in biases):
            continue
        key = (emb.inputs[0].id, *(b.id for b in biases), n.device, n.pin, emb.device,
               emb.pin)
        groups.setdefault(key, []).append((n, emb))
    done = 0
    dead: set[int] = set()
    for members in groups.values():
        n0, emb0 = members[0]
        if sum(math.prod(e.inputs[1].shape) for _, e in members) <= emb0.inputs[0].shape[0]:
            continue
        table = emb0.inputs[0]
        for b in (v for v in n0.inputs[2:] if v.ndim == 1):
            table = emit(g, "add", [table, b], {}, emb0).outputs[0]
        for n, emb in members:
            rows = emit(g, "embedding", [table, emb.inputs[1]], {"padding_idx": None},
                        emb).outputs[0]
            cell = emit(g, "lstm_cell", [rows, n.inputs[1]] + [v for v in n.inputs[2:]
                                                             if v.ndim != 1], {}, n)
            for old, new in zip(n.outputs, cell.outputs):
                replace_uses(g, old, new)
            dead |= {n.id, emb.id}
            done += 1
    commit(g, dead)
    return done
