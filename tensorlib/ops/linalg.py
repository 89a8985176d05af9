"""Linear algebra: matmul, dot, outer, einsum, tensordot."""
from __future__ import annotations

import functools
import math
import string

import numpy as np

from .._state import state
from ..amp.cast import autocast_call
from .. import _gemm
from .._apply import apply
from .._tensor import Tensor
from .registry import OpDef, register
from ._util import broadcast_shapes, numel, same_category, to_tensor, unbroadcast


def _matmul_infer(a, b):
    sa, sb = tuple(a[0]), tuple(b[0])
    if not sa or not sb:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {sa} "
                         f"and {sb}")
    ka = sa[-1]
    kb = sb[-2] if len(sb) >= 2 else sb[0]
    if ka is not None and kb is not None and ka != kb:
        raise ValueError(f"matmul: shapes {sa} and {sb} do not align ({ka} != {kb})")
    batch = broadcast_shapes("matmul", sa[:-2], sb[:-2])
    out = batch + (sa[-2:-1] if len(sa) >= 2 else ()) + (sb[-1:] if len(sb) >= 2 else ())
    return out, _result_dtype(a[1], b[1])


def _result_dtype(da, db) -> np.dtype:
    """The dtype of a product of the two: an integer or bool meeting a float takes the float's
    (the ops promote so, as the library's binary ops), else NumPy's promotion."""
    da, db = np.dtype(da), np.dtype(db)
    if da.kind == "f" and db.kind in "iub":
        return da
    if db.kind == "f" and da.kind in "iub":
        return db
    return np.result_type(da, db)


def _matmul_cost(in_specs, out_specs, **attrs):
    (sa, da), (sb, _) = in_specs
    k = sa[-1] or 1
    flops = 2 * numel(out_specs[0]) * k
    b = sum(numel(s) * np.dtype(d).itemsize for s, d in list(in_specs) + [out_specs])
    return flops, b


def _matmul_fwd(xp, a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes "
                         f"{a.shape} and {b.shape}")
    return _gemm.matmul(a, b) if xp is np else xp.matmul(a, b)


def _mT(x: Tensor) -> Tensor:
    return x.swapaxes(-1, -2)


def _matmul_vjp(n, g):
    a, b = n.inputs
    ga = gb = None
    if a.ndim == 1 and b.ndim == 1:
        return (g * b if a._rg else None), (g * a if b._rg else None)
    if a.ndim == 1:
        if a._rg:
            ga = unbroadcast((g.unsqueeze(-2) @ _mT(b)).squeeze(-2), a.shape)
        if b._rg:
            gb = unbroadcast(a.unsqueeze(-1) * g.unsqueeze(-2), b.shape)
        return ga, gb
    if b.ndim == 1:
        if a._rg:
            ga = unbroadcast(g.unsqueeze(-1) * b, a.shape)
        if b._rg:
            gb = unbroadcast((_mT(a) @ g.unsqueeze(-1)).squeeze(-1), b.shape)
        return ga, gb
    if a._rg:
        ga = unbroadcast(g @ _mT(b), a.shape)
    if b._rg:
        gb = unbroadcast(_mT(a) @ g, b.shape)
    return ga, gb


MATMUL = register(OpDef("matmul", _matmul_fwd, vjp=_matmul_vjp, infer=_matmul_infer,
                        cost=_matmul_cost, saves="others", promote=True))
MATMUL.complex = "holomorphic"


def matmul(a=None, b=None, *, input=None, other=None) -> Tensor:
    """Matrix product with NumPy semantics (1-D, 2-D, batched, broadcast batch dims);
    ``input=``/``other=`` are PyTorch's keyword names."""
    if input is not None or other is not None:
        a, b = (input if a is None else a), (other if b is None else b)
    if a is None or b is None:
        raise TypeError("matmul() missing an operand: matmul(input, other)")
    if type(a) is not Tensor and getattr(a, "is_sparse", False):
        from ..sparse import mm as sparse_mm      # a sparse COO matrix times a dense one
        return sparse_mm(a, b)
    if state.autocast is not None:
        return autocast_call(matmul, "matmul", a, b)
    a, b = same_category(to_tensor(a), to_tensor(b))    # int x float: the float's dtype
    return apply(MATMUL, a, b)


def _vec_check(name, a, b):
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"{name}: expects 1-D tensors, got shapes {a.shape} and {b.shape}")


def _dot_fwd(xp, a, b):
    _vec_check("dot", a, b)
    if a.shape != b.shape:
        raise ValueError(f"dot: shapes {a.shape} and {b.shape} do not align")
    return xp.asarray(xp.dot(a, b))


DOT = register(OpDef("dot", _dot_fwd, saves="others", promote=True,
                     infer=lambda a, b: ((), _result_dtype(a[1], b[1])),
                     vjp=lambda n, g: (g * n.inputs[1] if n.inputs[0]._rg else None,
                                       g * n.inputs[0] if n.inputs[1]._rg else None),
                     complex="holomorphic"))


def dot(a, b) -> Tensor:
    """Inner product of two 1-D tensors."""
    return apply(DOT, *same_category(to_tensor(a), to_tensor(b)))


def _outer_fwd(xp, a, b):
    _vec_check("outer", a, b)
    return xp.outer(a, b)


OUTER = register(OpDef("outer", _outer_fwd, saves="others", promote=True,
                       infer=lambda a, b: ((a[0][0], b[0][0]), _result_dtype(a[1], b[1])),
                       vjp=lambda n, g: (g @ n.inputs[1] if n.inputs[0]._rg else None,
                                         n.inputs[0] @ g if n.inputs[1]._rg else None),
                       complex="holomorphic"))


def outer(input, vec2) -> Tensor:
    """Outer product of two 1-D tensors (``torch.outer(input, vec2)``)."""
    return apply(OUTER, *same_category(to_tensor(input), to_tensor(vec2)))


# --- einsum ----------------------------------------------------------------------------
def _normalize_subscripts(subscripts: str, ndims: list[int]) -> str:
    s = subscripts.replace(" ", "")
    if "->" in s:
        lhs, out = s.split("->")
    else:
        lhs, out = s, None
    ins = lhs.split(",")
    if len(ins) != len(ndims):
        raise ValueError(f"einsum: {len(ins)} operand subscripts for {len(ndims)} tensors")
    used = set(c for c in s if c.isalpha())
    free = [c for c in string.ascii_letters if c not in used]
    ell = None
    for i, (sub, nd) in enumerate(zip(ins, ndims)):
        if "..." in sub:
            k = nd - (len(sub) - 3)
            if k < 0:
                raise ValueError(f"einsum: operand {i} has {nd} dims, fewer than '{sub}' names")
            if ell is None or len(ell) < k:
                ell = "".join(free[:k]) if ell is None or len(ell) < k else ell
            ins[i] = sub.replace("...", ell[len(ell) - k:] if k else "")
        elif len(sub) != nd:
            raise ValueError(f"einsum: subscripts '{sub}' name {len(sub)} dimensions but operand "
                             f"{i} has {nd}")
        if not all(c.isalpha() for c in ins[i]):
            raise ValueError(f"einsum: invalid subscripts {subscripts!r}")
    if out is None:
        counts: dict[str, int] = {}
        for sub in ins:
            for c in sub:
                counts[c] = counts.get(c, 0) + 1
        out = (ell or "") + "".join(sorted(c for c, k in counts.items() if k == 1
                                           and c not in (ell or "")))
    else:
        out = out.replace("...", ell or "")
    return ",".join(ins) + "->" + out


def _einsum_infer(*specs, subscripts):
    lhs, out = subscripts.split("->")
    sizes: dict[str, int | None] = {}
    for sub, (shape, _) in zip(lhs.split(","), specs):
        for c, d in zip(sub, shape):
            if c in sizes and sizes[c] not in (None, 1) and d not in (None, 1) and sizes[c] != d:
                raise ValueError(f"einsum: dimension '{c}' has sizes {sizes[c]} and {d} in "
                                 f"'{subscripts}'")
            if c not in sizes or sizes[c] in (None, 1):
                sizes[c] = d
    return tuple(sizes[c] for c in out), np.result_type(*[d for _, d in specs])


def _einsum_cost(in_specs, out_specs, subscripts):
    lhs, _ = subscripts.split("->")
    sizes = {}
    for sub, (shape, _) in zip(lhs.split(","), in_specs):
        sizes.update({c: d or 1 for c, d in zip(sub, shape)})
    return 2 * math.prod(sizes.values()), sum(numel(s) * np.dtype(d).itemsize
                                              for s, d in list(in_specs) + [out_specs])


def _einsum_vjp(n, g):
    return _einsum_grads(n.attrs["subscripts"], n.inputs, g)


def _einsum_grads(subscripts, inputs, g):
    lhs, out = subscripts.split("->")
    ins = lhs.split(",")
    grads = []
    for i, t in enumerate(inputs):
        if not t._rg:
            grads.append(None)
            continue
        target = ins[i]
        # a repeated subscript ('ii', 'iij') reads a diagonal: the gradient of that diagonal,
        # over each letter once, is put back on it below
        uniq = "".join(dict.fromkeys(target))
        size = {c: t.shape[target.index(c)] for c in uniq}
        others = [(s, inputs[j]) for j, s in enumerate(ins) if j != i]
        avail = set(out) | set("".join(s for s, _ in others))
        kept = "".join(c for c in uniq if c in avail)
        sub = ",".join([out] + [s for s, _ in others]) + "->" + kept
        gi = einsum(sub, g, *[o for _, o in others])
        if kept != uniq:
            shape = tuple(size[c] if c in avail else 1 for c in uniq)
            gi = gi.reshape(shape).broadcast_to(tuple(size[c] for c in uniq))
        if uniq != target:
            gi = _on_diagonal(gi, uniq, target, size, subscripts)
        elif gi.shape != t.shape:
            gi = unbroadcast(gi, t.shape)
        grads.append(gi)
    return tuple(grads)


def _on_diagonal(d, uniq: str, target: str, size: dict, subscripts: str):
    """``d`` (subscripts ``uniq``) placed on the diagonal of a tensor subscripted ``target``
    ('ii', 'iij'), zeros elsewhere: each repeat of a letter gets a fresh one, tied to it by
    an identity matrix, so the placement is an einsum (differentiable again)."""
    from ..creation import eye
    fresh = iter(c for c in string.ascii_letters if c not in subscripts)
    seen, full, ties = set(), "", []
    for c in target:
        if c in seen:
            f = next(fresh)
            full += f
            ties.append((c + f, eye(size[c], dtype=d.dtype, device=d.device)))
        else:
            seen.add(c)
            full += c
    return einsum(",".join([uniq] + [s for s, _ in ties]) + "->" + full, d,
                  *[m for _, m in ties])


# below this many multiply-adds NumPy's single C loop beats planning a contraction path
EINSUM_PLAN_MIN = 100_000
# ... unless a contraction's last output letter is this short: the loop then runs over rows
# as short (GMM's 'nk,nki,nkj->kij' at d=2, 80_000 multiply-adds, was 8-14x slower than
# PyTorch)
EINSUM_SHORT, EINSUM_SHORT_MIN = 4, 8_192


def _worth_planning(sizes: dict, out: str) -> bool:
    total = math.prod(sizes.values())
    return total >= EINSUM_PLAN_MIN or (
        total >= EINSUM_SHORT_MIN and out and sizes[out[-1]] <= EINSUM_SHORT
        and any(c not in out for c in sizes))


@functools.lru_cache(maxsize=512)
def _einsum_plan(subscripts: str, shapes: tuple):
    """``np.einsum``'s ``optimize`` argument for these operand shapes: a contraction path,
    which runs products through BLAS (7-10x faster on matmul-like contractions), for large
    contractions; False (one C loop, no planning cost) for small ones."""
    sizes: dict[str, int] = {}
    for sub, shape in zip(subscripts.split("->")[0].split(","), shapes):
        for c, d in zip(sub, shape):
            sizes[c] = max(sizes.get(c, 1), d)
    if not _worth_planning(sizes, subscripts.split("->")[1]):
        return False
    shapes_only = [np.broadcast_to(np.zeros((), np.float32), s) for s in shapes]
    return np.einsum_path(subscripts, *shapes_only, optimize="greedy")[0]


def _einsum_matmul(a: np.ndarray, b: np.ndarray, subscripts: str) -> np.ndarray | None:
    """A two-operand contraction as one (stacked) matrix product, C-ordered; None where
    ``np.einsum`` should take it (diagonals, size-1 broadcasting, integer dtypes, dot
    products). np.einsum's own path returned transposed views (a gradient 'sd,ecd->sec' had
    strides (4, 1310720, 4096)), so the next op or the copy into .grad cost as much as the
    product: the operand order here is chosen so that the product lands in the output's
    layout, and only an interleaved output ('ij,jk->ki' with a batch letter in between)
    pays a copy."""
    lhs, out = subscripts.split("->")
    sa, sb = lhs.split(",")
    if (len(set(sa)) != len(sa) or len(set(sb)) != len(sb) or a.dtype != b.dtype
            or a.dtype.kind not in "fc" or a.dtype.itemsize < 4 or set(out) - set(sa + sb)):
        return None
    size = dict(zip(sa, a.shape))
    for c, d in zip(sb, b.shape):
        if size.setdefault(c, d) != d:
            return None
    # a letter of one operand only and not in the output is summed away first
    drop_a = tuple(i for i, c in enumerate(sa) if c not in sb and c not in out)
    drop_b = tuple(i for i, c in enumerate(sb) if c not in sa and c not in out)
    if drop_a:
        a, sa = a.sum(axis=drop_a), "".join(c for c in sa if c in sb or c in out)
    if drop_b:
        b, sb = b.sum(axis=drop_b), "".join(c for c in sb if c in sa or c in out)
    batch = [c for c in out if c in sa and c in sb]
    contr = [c for c in sa if c in sb and c not in out]
    only_a = [c for c in out if c not in sb]
    only_b = [c for c in out if c not in sa]
    m, n = math.prod(size[c] for c in only_a), math.prod(size[c] for c in only_b)
    if m * n == 1:
        return None     # dot products: einsum's C loop has no product to hand to BLAS
    k, nb = math.prod(size[c] for c in contr), math.prod(size[c] for c in batch)
    a_first = not (only_b and out[len(batch):].startswith("".join(only_b)))
    lead = (only_a, only_b) if a_first else (only_b, only_a)
    letters = batch + lead[0] + lead[1]
    x = a.transpose([sa.index(c) for c in batch + only_a + contr]).reshape(nb, m, k)
    y = b.transpose([sb.index(c) for c in batch + contr + only_b]).reshape(nb, k, n)
    if not a_first:
        x, y = y.transpose(0, 2, 1), x.transpose(0, 2, 1)
    if nb == 1:
        x, y = x[0], y[0]   # the 2-D route: one product on all of its threads
    r = _gemm.matmul(x, y).reshape([size[c] for c in letters])
    if "".join(letters) != out:
        r = r.transpose([letters.index(c) for c in out])
    return np.ascontiguousarray(r)     # (outer products come from a broadcast multiply)


def _einsum_fwd(xp, *xs, subscripts):
    if xp is np and np.result_type(*xs) == np.float16:
        # float16 sums in float32 and rounds once, as matmul and PyTorch's CPU einsum
        # (NumPy's einsum accumulates in float16: ~16x the error on a 256-long sum)
        f32 = tuple(x.astype(np.float32) for x in xs)
        return _einsum_fwd(xp, *f32, subscripts=subscripts).astype(np.float16)
    if xp is np and len(xs) > 1:
        plan = _einsum_plan(subscripts, tuple(x.shape for x in xs))
        if plan is False:
            return np.einsum(subscripts, *xs, optimize=False)
        if len(xs) == 2:
            r = _einsum_matmul(xs[0], xs[1], subscripts)
            if r is not None:
                return r
        with _gemm.numpy_blas(xs[0].dtype):     # the path's products run on OpenBLAS
            return np.einsum(subscripts, *xs, optimize=plan)
    return xp.einsum(subscripts, *xs)


EINSUM = register(OpDef("einsum", _einsum_fwd, vjp=_einsum_vjp, infer=_einsum_infer,
                        cost=_einsum_cost, complex="holomorphic"))


def _sublist_letter(d) -> str:
    if d is Ellipsis:
        return "..."
    if isinstance(d, (int, np.integer)) and not isinstance(d, bool) and 0 <= d < 52:
        return string.ascii_letters[d]
    raise ValueError(f"einsum: a sublist holds ints in [0, 52) and Ellipsis, got {d!r}")


def _from_sublists(args: tuple) -> tuple[str, tuple]:
    """NumPy's and PyTorch's sublist form ``einsum(a, [0, 1], b, [1, 2], [0, 2])`` as a
    subscript string and the operands."""
    out = args[-1] if len(args) % 2 else None
    pairs = args[:-1] if len(args) % 2 else args
    ops, subs = pairs[0::2], pairs[1::2]
    for s_ in subs + ((out,) if out is not None else ()):
        if not isinstance(s_, (list, tuple)):
            raise TypeError(f"einsum: expected operand, sublist pairs (then an optional output "
                            f"sublist), got {type(s_).__name__} where a sublist goes")
    text = ",".join("".join(map(_sublist_letter, s_)) for s_ in subs)
    if out is not None:
        text += "->" + "".join(map(_sublist_letter, out))
    return text, ops


def einsum(subscripts: str, *operands) -> Tensor:
    """Einstein summation, e.g. ``tl.einsum('bij,bjk->bik', a, b)``; '...' allowed. The
    operands may also come as one list or tuple (PyTorch's ``einsum('ij,jk', [a, b])``), or
    in the sublist form ``einsum(a, [0, 1], b, [1, 2], [0, 2])``."""
    if not isinstance(subscripts, str):
        subscripts, operands = _from_sublists((subscripts,) + operands)
    if state.autocast is not None:
        return autocast_call(einsum, "einsum", subscripts, *operands)
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)) and (
            subscripts.count(",") + 1 == len(operands[0]) > 1
            or any(isinstance(t, Tensor) for t in operands[0])):
        operands = tuple(operands[0])
    ts = [to_tensor(t) for t in operands]
    subs = _normalize_subscripts(subscripts, [t.ndim for t in ts])
    if len(ts) > 2:
        steps = _pairwise_path(subs, tuple(tuple(t.shape) for t in ts))
        if steps:
            # pairwise einsum ops, so gradients and capture see BLAS-able contractions too
            # (one 3-operand C loop and its 3-operand gradients are 6-9x slower)
            for i, j, sub in steps:
                r = apply(EINSUM, ts[i], ts[j], subscripts=sub)
                ts = [t for k, t in enumerate(ts) if k not in (i, j)] + [r]
            return ts[0]
    return apply(EINSUM, *ts, subscripts=subs)


@functools.lru_cache(maxsize=512)
def _pairwise_path(subscripts: str, shapes: tuple) -> tuple:
    """The contraction order of a 3+ operand einsum as (i, j, 'ab,bc->ac') steps (the pair
    is removed from the operand list and the result appended, as ``np.einsum_path``), from
    NumPy's greedy path without its memory limit; () for small contractions, where one C
    loop beats several op calls."""
    lhs, out = subscripts.split("->")
    ins = lhs.split(",")
    sizes: dict[str, int] = {}
    for sub, shape in zip(ins, shapes):
        for c, d in zip(sub, shape):
            sizes[c] = max(sizes.get(c, 1), d)
    if not _worth_planning(sizes, out):
        return ()
    # full (broadcast) sizes, so size-1 dims do not change the order NumPy picks
    views = [np.broadcast_to(np.zeros((), np.float32), tuple(sizes[c] for c in sub))
             for sub in ins]
    path = np.einsum_path(subscripts, *views, optimize=("greedy", 2 ** 62))[0][1:]
    steps = []
    for pair in path:
        if len(pair) != 2:
            return ()
        i, j = sorted(pair)
        rest = [s for k, s in enumerate(ins) if k not in (i, j)]
        needed = set(out).union(*rest)
        # a letter the pair shares and nothing else needs is summed; the rest are kept
        kept = out if not rest else "".join(c for c in dict.fromkeys(ins[i] + ins[j])
                                            if c in needed)
        steps.append((i, j, f"{ins[i]},{ins[j]}->{kept}"))
        ins = rest + [kept]
    return tuple(steps)


def _tensordot_subscripts(nda, ndb, axes):
    ax_a, ax_b = axes
    letters = iter(string.ascii_letters)
    sa = [next(letters) for _ in range(nda)]
    sb = [next(letters) for _ in range(ndb)]
    for i, j in zip(ax_a, ax_b):
        sb[j] = sa[i]
    out = [c for k, c in enumerate(sa) if k not in ax_a] + [c for k, c in enumerate(sb)
                                                            if k not in ax_b]
    return "".join(sa) + "," + "".join(sb) + "->" + "".join(out)


def _tensordot_vjp(n, g):
    a, b = n.inputs
    return _einsum_grads(_tensordot_subscripts(a.ndim, b.ndim, n.attrs["axes"]), n.inputs, g)


def _tensordot_infer(a, b, *, axes):
    sub = _tensordot_subscripts(len(a[0]), len(b[0]), axes)
    return _einsum_infer(a, b, subscripts=sub)


TENSORDOT = register(OpDef("tensordot", lambda xp, a, b, axes: xp.tensordot(a, b, axes),
                           vjp=_tensordot_vjp, infer=_tensordot_infer, complex="holomorphic"))


def tensordot(a, b, axes=2, *, dims=None) -> Tensor:
    """Sum products over ``axes`` (``dims``, PyTorch's name): an int (last n of a with first
    n of b) or two lists."""
    if dims is not None:
        axes = dims.tolist() if isinstance(dims, Tensor) else dims
    if state.autocast is not None:
        return autocast_call(tensordot, "tensordot", a, b, axes)
    a, b = to_tensor(a), to_tensor(b)
    if isinstance(axes, (int, np.integer)):
        k = int(axes)
        if k < 0 or k > min(a.ndim, b.ndim):
            raise ValueError(f"tensordot: axes={k} is invalid for shapes {a.shape}, {b.shape}")
        axes = (list(range(a.ndim - k, a.ndim)), list(range(k)))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, int) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, int) else list(ax_b)
        if len(ax_a) != len(ax_b):
            raise ValueError("tensordot: the two axis lists must have the same length")
        axes = ([x % a.ndim for x in ax_a], [x % b.ndim for x in ax_b])
    for i, j in zip(*axes):
        if a.shape[i] != b.shape[j]:
            raise ValueError(f"tensordot: shapes {a.shape} and {b.shape} do not align on axes "
                             f"{i} and {j} ({a.shape[i]} != {b.shape[j]})")
    axes = (tuple(axes[0]), tuple(axes[1]))
    return apply(TENSORDOT, a, b, axes=axes)
