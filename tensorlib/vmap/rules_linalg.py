"""Batching rules: matmul, einsum (and dot, outer, tensordot through it), linear."""
from __future__ import annotations

import math
import string

from . import phys as P
from ._common import aligned, batch_size, batched, simple, wrap


@simple("matmul")
def _matmul(op, a, b):
    if b.bdim is None and b.ndim == 2:
        # a stack of rows times one matrix: a single product with the batch folded into
        # the rows (B GEMVs would be far slower)
        k, n = b.shape
        rows = P.reshape(a.phys, (-1, k))
        out = P.call(op, rows, b.phys)
        return wrap(P.reshape(out, (a.phys.shape[0],) + a.shape[:-1] + (n,)), a.dev)
    pa, pb, ea, eb = a.phys, b.phys, a.ndim, b.ndim
    if ea == 1:     # a vector is a one-row matrix (the row dropped from the result)
        pa = P.expand_dims(pa, (1,) if a.bdim is not None else (0,))
    if eb == 1:     # and a one-column one
        pb = P.expand_dims(pb, (2,) if b.bdim is not None else (1,))
    n = max(ea, eb, 2)
    pa = _pad(pa, a.bdim, max(ea, 2), n)
    pb = _pad(pb, b.bdim, max(eb, 2), n)
    if not (ea == 1 or eb == 1):
        # a rank-r product: maybe a shared weight's gradient, to be summed over the batch
        # (both batched), or one a pruned backward never reads (a hessian's weight terms)
        out = P.outer(pa, pb)
        if out is not None:
            return wrap(out, a.dev)
    out = P.call(op, pa, pb)
    drop = tuple(ax for ax, vec in ((out.ndim - 2, ea == 1), (out.ndim - 1, eb == 1)) if vec)
    return wrap(P.squeeze(out, drop), a.dev)


def _pad(p, bdim, have: int, want: int):
    if bdim is None or have >= want:
        return p
    return P.expand_dims(p, tuple(range(1, 1 + want - have)))


def _fresh(subscripts: str) -> str:
    return next(c for c in string.ascii_letters if c not in subscripts)


def _batched_subscripts(subscripts: str, arrays) -> str:
    lhs, out = subscripts.split("->")
    z = _fresh(subscripts)
    ins = [(z + s) if a.bdim is not None else s for s, a in zip(lhs.split(","), arrays)]
    return ",".join(ins) + "->" + z + out


@simple("einsum")
def _einsum(op, *xs, subscripts):
    subs = _batched_subscripts(subscripts, xs)
    return wrap(P.call(op, *[a.phys for a in xs], subscripts=subs), xs[0].dev)


def _via_einsum(subscripts_of):
    def fn(op, a, b, **attrs):
        subs = _batched_subscripts(subscripts_of(a, b, **attrs), (a, b))
        return wrap(P.call(P.op("einsum"), a.phys, b.phys, subscripts=subs), a.dev)
    return fn


def _tensordot_subs(a, b, *, axes):
    from ..ops.linalg import _tensordot_subscripts
    return _tensordot_subscripts(a.ndim, b.ndim, axes)


simple("dot")(_via_einsum(lambda a, b: "i,i->"))
simple("outer")(_via_einsum(lambda a, b: "i,j->ij"))
simple("tensordot")(_via_einsum(_tensordot_subs))


# --- linear ---------------------------------------------------------------------------------
@simple("linear")
def _linear(op, x, w, *b):
    if w.bdim is None and (not b or b[0].bdim is None):
        # one weight for every example: linear already maps over leading dims
        return wrap(P.call(op, x.phys, w.phys, *[t.phys for t in b]), x.dev)
    B = batch_size((x, w) + b)
    lead, k = x.shape[:-1], x.shape[-1]
    M = math.prod(lead)
    px = P.reshape(x.phys, (B, M, k) if x.bdim is not None else (M, k))
    wt = P.transpose(batched(w, B), (0, 2, 1))                         # (B, in, out)
    y = P.matmul(px, wt)                                               # (B, M, out)
    if b:
        y = P.binary("add", y, aligned(b[0], 2))
    return wrap(P.reshape(y, (B,) + lead + (w.shape[0],)), x.dev)


@simple("linear_grad")
def _linear_grad(op, g, x, w, *, need_x, need_w, need_b):
    """(dx, dw, db), those asked for; each is batched when what it is computed from is."""
    B = batch_size((g, x, w))
    lead, O = g.shape[:-1], g.shape[-1]
    M, In = math.prod(lead), w.shape[1]
    gbat = g.bdim is not None
    outs = []
    if need_x:
        if w.bdim is None:      # the batch folded into the rows: one product
            gx = P.matmul(P.reshape(g.phys, (-1, O)), w.phys)
        else:
            gx = P.matmul(P.reshape(g.phys, ((B,) if gbat else ()) + (M, O)), w.phys)
        bat = gbat or w.bdim is not None
        outs.append((P.reshape(gx, ((B,) if bat else ()) + lead + (In,)), bat))
    if need_w:
        g2 = P.reshape(g.phys, ((B,) if gbat else ()) + (M, O))
        x2 = P.reshape(x.phys, ((B,) if x.bdim is not None else ()) + (M, In))
        gt = P.reshape(g2, g2.shape[:-2] + (O, 1)) if M == 1 else \
            P.transpose(g2, (0, 2, 1) if gbat else (1, 0))
        # both batched: kept as factors (phys.Outer) for a shared weight's gradient
        gw = P.outer(gt, x2) if gbat and x.bdim is not None else None
        if gw is None:
            gw = P.binary("mul", gt, x2) if M == 1 else P.matmul(gt, x2)
        outs.append((gw, gbat or x.bdim is not None))
    if need_b:
        axes = tuple(range(1, 1 + len(lead))) if gbat else tuple(range(len(lead)))
        outs.append((P.sum_axes(g.phys, axes), gbat))
    return tuple(wrap(o, g.dev, 0 if bat else None) for o, bat in outs)
