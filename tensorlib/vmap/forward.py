"""Forward-mode transforms, as ``torch.func``'s: ``linearize``, ``jvp`` and ``jacfwd``.

tensorlib has no dual numbers: a Jacobian-vector product is taken from reverse mode by
the double-vjp identity. ``g(u) = J^T u`` is linear in ``u``, so the vjp of ``g`` with a
tangent ``t`` is ``J t``. ``linearize`` builds ``g`` once; every product after that is one
backward pass through it (``jacfwd`` batches the products over the tangents' basis with
``vmap``). Values equal forward mode's; the cost is a backward pass per product instead
of a forward one.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from ..autograd.engine import grad as _tl_grad
from ..autograd.mode import enable_grad
from ..func import _argnums, _positions, _with_args
from .api import _flatten, vmap
from .transforms import check_like, vjp


def linearize(func: Callable, *primals, has_aux: bool = False):
    """``(func(*primals), jvp_fn)``: ``jvp_fn(*tangents)`` (tangents shaped as the primals)
    gives the Jacobian-vector product ``J t``, shaped as the output, as
    ``torch.func.linearize``; it may be called many times, each call one backward pass. With
    ``has_aux`` ``func`` returns ``(output, aux)`` and this ``(output, jvp_fn, aux)``.

    >>> out, jvp_fn = tl.func.linearize(tl.sin, x)
    >>> jvp_fn(tl.ones_like(x))                     # cos(x)
    """
    from ..creation import zeros_like
    res = vjp(func, *primals, has_aux=has_aux)
    out, vjp_fn = res[0], res[1]
    outs, out_rebuild = _flatten(out)
    prim_leaves, _ = _flatten(primals)
    # (vjp keeps the output's history only where it reaches tensors outside that require
    # grad: the products must keep theirs too, so a gradient of a jvp flows to them)
    outer = any(o.requires_grad for o in outs)
    with enable_grad():
        us = [zeros_like(o).requires_grad_(True) for o in outs]
        g_leaves, _ = _flatten(vjp_fn(out_rebuild(us), create_graph=True))

    def jvp_fn(*tangents):
        ts, _ = _flatten(tangents)
        check_like("jvp_fn", "tangent", ts, "the primals'", "a primal", prim_leaves)
        pairs = [(g, t) for g, t in zip(g_leaves, ts) if g.requires_grad]
        with enable_grad():
            jv = (_tl_grad([g for g, _ in pairs], us, grad_outputs=[t for _, t in pairs],
                           retain_graph=True,
                           create_graph=outer or any(t.requires_grad for t in ts),
                           allow_unused=True) if pairs else [None] * len(us))
        return out_rebuild([zeros_like(o) if j is None else j for o, j in zip(outs, jv)])

    return (out, jvp_fn, res[2]) if has_aux else (out, jvp_fn)


def jvp(func: Callable, primals, tangents, *, strict: bool = False, has_aux: bool = False):
    """``(func(*primals), J tangents)``, as ``torch.func.jvp``: ``primals`` and ``tangents``
    are tuples (or lists) of the same structure. With ``has_aux`` ``func`` returns
    ``(output, aux)`` and this ``(output, jvp_out, aux)``. ``strict`` is accepted as
    PyTorch's (it is not implemented there either).

    >>> out, jv = tl.func.jvp(tl.sin, (x,), (tl.ones_like(x),))       # cos(x)
    """
    if strict:
        raise RuntimeError("jvp(f, primals, tangents): strict=True is not supported")
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to be "
                           "tuples or lists")
    if len(primals) != len(tangents):
        raise RuntimeError(f"jvp(f, primals, tangents): Expected primals and tangents to have "
                           f"the same length, got {len(primals)} and {len(tangents)}")
    res = linearize(func, *primals, has_aux=has_aux)
    jv = res[1](*tangents)
    return (res[0], jv, res[2]) if has_aux else (res[0], jv)


def jacfwd(func: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False, *,
           randomness: str = "error") -> Callable:
    """``func`` transformed to return its Jacobian with respect to positional argument(s)
    ``argnums``, column by column: one Jacobian-vector product per element of the inputs,
    batched by vmap, as ``torch.func.jacfwd`` (same shapes and nesting as :func:`jacrev`:
    an output of shape ``O`` and an input of shape ``I`` give ``O + I``). ``randomness`` is
    accepted for PyTorch's signature; ``func`` runs once, outside vmap.

    >>> tl.func.jacfwd(tl.sin)(x)                  # diag(cos(x))
    """
    from ..creation import tensor
    nums = _argnums(argnums)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        idx = _positions(argnums, nums, len(args))
        selected = [args[i] for i in idx]
        res = linearize(_with_args(func, args, kwargs, idx), *selected, has_aux=has_aux)
        out, jvp_fn = res[0], res[1]
        outs, out_rebuild = _flatten(out)
        ins, in_rebuild = _flatten(selected)
        sizes = [x.size for x in ins]
        total = sum(sizes)
        basis, start = [], 0
        for x, k in zip(ins, sizes):        # row r of the identity, split over the inputs
            rows = np.eye(total, k, -start, dtype=x.dtype).reshape((total,) + tuple(x.shape))
            basis.append(tensor(rows, device=x.device))
            start += k
        cols = vmap(lambda *ts: jvp_fn(*in_rebuild(list(ts))))(*basis)   # (total,) + O
        col_leaves, _ = _flatten(cols)
        per_out = []
        for o, c in zip(outs, col_leaves):
            pieces, start = [], 0
            for x, k in zip(ins, sizes):
                p = c.narrow(0, start, k).reshape(tuple(x.shape) + tuple(o.shape))
                ni, no = x.ndim, o.ndim     # (I + O) -> (O + I)
                pieces.append(p.permute(tuple(range(ni, ni + no)) + tuple(range(ni))))
                start += k
            jac = in_rebuild(pieces)
            per_out.append(jac[0] if isinstance(argnums, int) else tuple(jac))
        result = out_rebuild(per_out)
        return (result, res[2]) if has_aux else result
    return wrapper
