"""Forward-mode automatic differentiation, PyTorch's ``torch.autograd.forward_ad``.

Forward AD is one more listener on ``apply``'s op stream: while a dual level is active,
``state.fwd_ad`` is :func:`_listen`, which gives each op's floating-point outputs a tangent
when an input has one. The tangent comes from the op's explicit ``jvp`` rule when the
registry entry has one (tensorlib.autograd.forward_rules), else it is derived from the
``vjp`` rule by the transpose trick: with ``u`` a zero cotangent that requires grad, the
vjp's input gradients ``g_i(u)`` are linear in ``u``, so ``J t = d/du sum_i <g_i(u), t_i>``
(one :func:`tensorlib.autograd.grad` call). Tangents are computed with tensorlib ops, so
they are themselves differentiable (reverse over forward), and the backward pass run
inside a level propagates tangents (forward over reverse: Hessian-vector products).

Tangents are kept per level, keyed by the tensor's storage array: the tape's aliases of a
tensor (which share that array) see its tangent too. Unlike PyTorch, levels nest (each
level's tangents are computed with the other levels active, never its own, so they do not
mix); ``torch.no_grad`` does not disable forward AD, as in PyTorch.
"""
from __future__ import annotations

import contextlib
import itertools
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .._state import state

if TYPE_CHECKING:
    from .._tensor import Tensor

__all__ = ["UnpackedDualTensor", "dual_level", "enter_dual_level", "exit_dual_level",
           "make_dual", "unpack_dual"]


class UnpackedDualTensor(NamedTuple):
    """What :func:`unpack_dual` returns: the primal (a view without the tangent) and the
    tangent (None when the tensor has none at that level)."""

    primal: Any
    tangent: Any


_gen = itertools.count(1)


class _Level:
    __slots__ = ("idx", "tangents", "busy")

    def __init__(self, idx: int):
        self.idx = idx
        # id(storage) -> [ref, tangent, generation, link]: ``ref`` a weakref to the storage
        # (or the storage itself where it takes none, as vmap's BatchedArray: the level then
        # keeps it alive, so its id is not reused); ``link`` None for a tangent of its own,
        # else (base, view op, attrs, output index, base's generation) for a view's tangent,
        # which is that view of its base's tangent and is derived again when the base's
        # tangent changed (a new generation), so views and bases never disagree
        self.tangents: dict[int, list] = {}
        self.busy = False                      # computing this level's tangents

    def get(self, t):
        e = _entry(self, t)
        return None if e is None else e[1]

    def put(self, t, tangent, link=None) -> list:
        data = t._data
        key = id(data)
        tans = self.tangents
        try:
            def gone(ref, key=key, tans=tans):
                e = tans.get(key)
                if e is not None and e[0] is ref:
                    del tans[key]
            ref = weakref.ref(data, gone)
        except TypeError:
            ref = data
        e = [ref, tangent, next(_gen), link]
        tans[key] = e
        return e

    def set(self, t, tangent) -> None:
        self.put(t, tangent)

    def drop(self, t) -> None:
        self.tangents.pop(id(t._data), None)


def _entry(lv: _Level, t):
    """t's current tangent entry at ``lv``: its own, or (for a view) the view of its base's
    current tangent, derived when missing (a view taken before its base had a tangent) or
    stale (the base's tangent changed since)."""
    e = lv.tangents.get(id(t._data))
    if e is not None:
        link = e[3]
        if link is None:
            return e
        be = _entry(lv, link[0])
        if be is not None and be[2] == link[4]:
            return e
        return _derive(lv, t, link, be)
    link = t._base
    if link is None:
        return None
    be = _entry(lv, link[0])
    return None if be is None else _derive(lv, t, link, be)


def _derive(lv: _Level, t, link, be):
    if be is None:
        lv.tangents.pop(id(t._data), None)
        return None
    base, name, attrs, i = link[:4]
    from .._core import apply
    from ..ops.registry import REGISTRY
    busy, lv.busy = lv.busy, True
    try:
        r = apply(REGISTRY[name], be[1], **attrs)
    finally:
        lv.busy = busy
    if type(r) is tuple:
        r = r[i]
    if r._data is t._data:
        r = _alias(r)
    return lv.put(t, r, (base, name, attrs, i, be[2]))


_levels: list[_Level] = []


def _find(level: int | None, fn: str) -> _Level:
    if not _levels:
        raise RuntimeError(f"{fn}: trying to create a dual Tensor for forward AD but no level "
                           "exists, make sure to enter_dual_level() (or `with dual_level():`) "
                           "first")
    if level is None:
        return _levels[-1]
    for lv in _levels:
        if lv.idx == level:
            return lv
    raise RuntimeError(f"{fn}: invalid level {level} (the active levels are "
                       f"{[lv.idx for lv in _levels]})")


def enter_dual_level() -> int:
    """Enter a new forward AD level and return its index (0 for the outermost). Dual
    tensors made while it is active carry tangents at it; :func:`exit_dual_level` drops
    them. Unlike PyTorch, levels nest; the innermost is the default of the other
    functions."""
    if not _ready:
        _setup()
    idx = _levels[-1].idx + 1 if _levels else 0
    _levels.append(_Level(idx))
    state.fwd_ad = _listen
    return idx


def exit_dual_level(*, level: int | None = None) -> None:
    """Exit the innermost forward AD level (``level``, when given, must name it); every
    tangent of that level is dropped."""
    if not _levels:
        raise RuntimeError("exit_dual_level: no forward AD level is active")
    if level is not None and level != _levels[-1].idx:
        raise RuntimeError("exit_dual_level: trying to exit a forward AD level that was not "
                           "the last one that was created. This is not supported.")
    _levels.pop().tangents.clear()
    if not _levels:
        state.fwd_ad = None


@contextlib.contextmanager
def dual_level() -> Iterator[int]:
    """Context manager for a forward AD level: ``with dual_level(): ...``; tangents made
    inside are dropped on exit (PyTorch's ``forward_ad.dual_level``)."""
    idx = enter_dual_level()
    try:
        yield idx
    finally:
        exit_dual_level(level=idx)


def _floating(t) -> bool:
    return t._data.dtype.kind in "fc"


def _alias(t):
    """A tensor sharing t's memory, history and version counter, with its own storage
    object (so no tangent of t's reaches it)."""
    from .._core import make_tensor
    a = make_tensor(t._data.view(), t._device, t._rg, t._node, t._idx)
    a._version = t._version
    return a


def _rg_alias(t, leaf: bool = False, rg: bool = True):
    from .._core import make_tensor
    a = (make_tensor(t._data, t._device, rg, None, 0) if leaf else
         make_tensor(t._data, t._device, True, t._node, t._idx))
    a._version = t._version
    return a


def make_dual(tensor, tangent, *, level: int | None = None):
    """A dual tensor: a view of ``tensor`` (gradients flow back to it) whose tangent at
    ``level`` (default: the innermost) is ``tangent``. As PyTorch's ``make_dual``: needs an
    active level, a floating-point ``tensor`` without a tangent at that level, and a
    floating-point ``tangent`` of the same shape (its dtype may differ)."""
    from .._tensor import Tensor
    if not isinstance(tensor, Tensor) or not isinstance(tangent, Tensor):
        raise TypeError(f"make_dual: expected Tensors, got {type(tensor).__name__} and "
                        f"{type(tangent).__name__}")
    lv = _find(level, "make_dual")
    if not _floating(tensor):
        raise ValueError(f"make_dual: expected primal to be floating point or complex, but "
                         f"got: {tensor._data.dtype}")
    if not _floating(tangent):
        raise ValueError(f"make_dual: expected tangent to be floating point or complex, but "
                         f"got: {tangent._data.dtype}")
    if tangent._data.dtype.kind == "c" and tensor._data.dtype.kind != "c":
        # the tangent of a real primal moves along real directions only: its imaginary part
        # would be dropped by every op's real rule
        raise ValueError(f"make_dual: a complex tangent ({tangent._data.dtype}) for a real "
                         f"primal ({tensor._data.dtype}) is not supported; make the primal "
                         "complex (tensor.to(tl.complex128)) or pass a real tangent")
    if tangent._data.shape != tensor._data.shape:
        raise RuntimeError(
            "make_dual: trying to set a forward gradient that has a different size than that "
            f"of the original Tensor, this is not supported. Tensor is of size "
            f"{list(tensor._data.shape)} while the given forward gradient is of size "
            f"{list(tangent._data.shape)}.")
    if tangent._device != tensor._device:
        raise RuntimeError(f"make_dual: the tangent is on {tangent._device}, the tensor on "
                           f"{tensor._device}")
    if lv.get(tensor) is not None:
        raise RuntimeError(f"make_dual: making a dual Tensor based on a Tensor that already "
                           f"has a forward gradient at the same level {lv.idx} is not "
                           "supported.")
    lv.busy = True      # the view op below is no op of this level's (other levels' tangents
    try:                # do pass through it)
        from ..ops.shape import reshape
        dual = reshape(tensor, tensor._data.shape)
    finally:
        lv.busy = False
    if dual._data is tensor._data:      # (a kernel that returned its input)
        dual = _alias(dual)
    lv.set(dual, tangent)
    return dual


def unpack_dual(tensor, *, level: int | None = None) -> UnpackedDualTensor:
    """``(primal, tangent)`` of ``tensor`` at ``level`` (default: the innermost): the primal
    is a view of ``tensor`` without that tangent (gradients flow back to ``tensor``); the
    tangent is None when there is none (or no level is active)."""
    if not _levels:
        return UnpackedDualTensor(tensor, None)
    lv = _find(level, "unpack_dual")
    tangent = lv.get(tensor)
    if tangent is None:
        return UnpackedDualTensor(tensor, None)
    return UnpackedDualTensor(_alias(tensor), tangent)


# --- the listener ----------------------------------------------------------------------
class _FwdNode:
    """What a rule reads of an op call (as a tape Node): ``op``, ``inputs``, ``attrs``,
    ``out`` / ``output(i)`` (the result tensors themselves, with their history)."""

    __slots__ = ("op", "inputs", "attrs", "outs")

    def __init__(self, op, inputs, attrs, outs):
        self.op, self.inputs, self.attrs, self.outs = op, inputs, attrs, outs

    @property
    def out(self):
        return self.outs[0]

    def output(self, i: int = 0):
        return self.outs[i]

    @property
    def n_out(self) -> int:
        return len(self.outs)

    @property
    def out_meta(self):
        return [(o._data.shape, o._data.dtype) for o in self.outs]

    @property
    def out_data(self):
        return [o._data for o in self.outs]

    def zeros_for(self, i: int):
        from ..creation import zeros
        o = self.outs[i]
        return zeros(o._data.shape, dtype=o._data.dtype, device=o._device)


def _listen(op, inputs, attrs, res) -> None:
    """``apply``'s forward AD listener: tangents for ``res`` at every active level where an
    input has one."""
    for lv in _levels:
        if lv.busy or not lv.tangents:
            continue
        tans = lv.tangents
        ts = None
        e0 = None
        for i, x in enumerate(inputs):
            e = tans.get(id(x._data))
            if e is None:
                if x._base is None:
                    continue
                e = _entry(lv, x)       # a view: its base's tangent may reach it
            elif e[3] is not None:
                e = _entry(lv, x)       # a view's tangent: fresh?
            if e is not None:
                if ts is None:
                    ts = [None] * len(inputs)
                ts[i] = e[1]
                if i == 0:
                    e0 = e
        if ts is not None:
            _propagate(lv, op, inputs, attrs, res, ts, e0)


def _propagate(lv: _Level, op, inputs, attrs, res, ts: list, e0=None) -> None:
    multi = type(res) is tuple
    outs = res if multi else (res,)
    if not any(_floating(o) for o in outs):
        return                          # integer / bool outputs carry no tangent
    if op.view and e0 is not None:
        _view_outputs(lv, op, inputs[0], attrs, outs, e0)
        return
    if op.jvp is None and op.vjp is None:
        raise NotImplementedError(
            f"{op.name}: trying to use forward AD with {op.name} that does not support it "
            "(the op has no vjp or jvp rule)")
    node = _FwdNode(op, inputs, attrs, outs)
    lv.busy = True
    try:
        # the explicit rules are written for real values; complex tangents come from the
        # engine's complex vjp (see _derived), which knows each op's complex convention
        if op.jvp is not None and not (_has_complex(inputs) or _has_complex(outs)):
            out_t = op.jvp(node, *ts)
            if not multi:
                out_t = (out_t,)
        else:
            out_t = _derived(node, ts)
    finally:
        lv.busy = False
    for o, t in zip(outs, out_t):
        if t is not None and _floating(o):
            if t._data.shape != o._data.shape:
                from ..ops.shape import broadcast_to
                t = broadcast_to(t, o._data.shape)
            if t._data is o._data:      # a rule that returned its input: keep keys apart
                t = _alias(t)
            lv.put(o, t)


def _view_outputs(lv: _Level, op, x, attrs, outs, e0) -> None:
    """A view op's outputs: the same view of x's tangent, linked to it (a view that NumPy
    had to copy is no view: its tangent is its own)."""
    from .._core import apply
    lv.busy = True
    try:
        r = apply(op, e0[1], **attrs)
    finally:
        lv.busy = False
    rs = r if type(r) is tuple else (r,)
    for i, (o, t) in enumerate(zip(outs, rs)):
        if t._data is o._data:
            t = _alias(t)
        lv.put(o, t, None if o._base is None else (x, op.name, attrs, i, e0[2]))


def _has_complex(ts) -> bool:
    return any(t is not None and t._data.dtype.kind == "c" for t in ts)


def _derived(node: _FwdNode, ts: list) -> tuple:
    """The tangents of ``node``'s outputs from its vjp rule (the transpose trick).

    Complex values: the engine's vjp ``V`` (PyTorch's convention, ``z.grad = dL/dx +
    i dL/dy``) is the adjoint of the tangent map ``J`` (real-linear: for a non-holomorphic
    op ``J t = df/dz t + df/dz* conj(t)``) under the real inner product
    ``<a, b> = Re sum(conj(a) b)``, so ``J t`` is the gradient in ``u`` of the real
    ``sum_i Re(conj(V_i(u)) t_i)``; for real values that is the plain ``sum_i V_i(u) t_i``."""
    from ..creation import zeros
    from ..ops.complex import conj, real
    from .complex_grad import node_vjp
    from .engine import grad
    from .mode import enable_grad
    outs = tuple(node.outs)
    keep = state.grad_enabled and (any(x._rg for x in node.inputs) or
                                   any(t is not None and t._rg for t in ts))
    # the vjp rules skip inputs that do not require grad: give those with a tangent an alias
    # that does (sharing the storage object, so other levels' tangents still reach it)
    ins = tuple(_rg_alias(x) if t is not None and not x._rg else x
                for x, t in zip(node.inputs, ts))
    if not keep:
        # no reverse mode through this tangent (no_grad, or a backward run inside the level
        # without create_graph, which frees the tape as it goes): leaves, so the grad below
        # never walks into the tape
        ins = tuple(_rg_alias(x, leaf=True, rg=t is not None)
                    for x, t in zip(node.inputs, ts))
        outs = tuple(_rg_alias(o, leaf=True, rg=False) for o in outs)
        ts = [None if t is None else _rg_alias(t, leaf=True, rg=False) for t in ts]
    if any(a is not b for a, b in zip(ins + outs, node.inputs + node.outs)):
        node = _FwdNode(node.op, ins, node.attrs, outs)
    with enable_grad():
        us = []
        for o in outs:
            u = zeros(o._data.shape, dtype=o._data.dtype, device=o._device)
            if _floating(o):
                u.requires_grad_(True)
            us.append(u)
        gs = node_vjp(node.op, node, node, us)
        total = None
        for g, t in zip(gs, ts):
            if g is None or t is None:
                continue
            if g._data.dtype.kind == "c":
                term = real(conj(g) * t).sum()
            elif t._data.dtype.kind == "c":
                term = (g * real(t)).sum()
            else:
                term = (g * t).sum()
            total = term if total is None else total + term
        wrt = [u for u in us if u._rg]
        if total is None or not total._rg:
            return tuple(None for _ in outs)
        jt = grad(total, wrt, create_graph=True, allow_unused=True)
    it = iter(jt)
    out_t = []
    for u in us:
        if not u._rg:
            out_t.append(None)
            continue
        t = next(it)
        if t is None:
            t = zeros(u._data.shape, dtype=u._data.dtype, device=u._device)
        # (no history; the same storage object, so other levels' tangents stay)
        out_t.append(t if keep else _rg_alias(t, leaf=True, rg=False))
    return tuple(out_t)


def derived_jvp(node, *tangents):
    """The tangent(s) of an op call from its vjp rule alone (what ops without an explicit
    ``jvp`` get): for tests comparing the explicit rules against it."""
    out_t = _derived(node, list(tangents))
    return out_t if len(node.outs) > 1 else out_t[0]


# --- in-place ops: the target takes the result's tangent --------------------------------
def on_assign(self: Tensor, result: Tensor) -> None:
    """Called by ``_tensor_methods._assign`` (an in-place op wrote ``result`` into ``self``)
    while a level is active: ``self`` takes ``result``'s tangent at every level (zeros where
    it had one and the result has none). On a view, the tangent is written into its base's
    (as PyTorch's, where a view's tangent is a view of its base's), so the base and every
    other view of it see the change."""
    for lv in _levels:
        if lv.busy:
            continue
        t = lv.get(result)
        e = _entry(lv, self)
        if t is None:
            if e is None:
                continue
            from ..creation import zeros
            t = zeros(self._data.shape, dtype=e[1]._data.dtype, device=self._device)
        if t._data is self._data:
            t = _alias(t)
        _write(lv, self, t)


def _write(lv: _Level, v, t) -> None:
    """v's tangent becomes t: its own, or for a view written into its base's tangent (up the
    chain of views; a base without one gets zeros first)."""
    e = lv.tangents.get(id(v._data))
    link = v._base if e is None else (None if e[3] is None else e[3][:4])
    if link is None:
        lv.put(v, t)
        return
    base, name, attrs, i = link
    be = _entry(lv, base)
    busy, lv.busy = lv.busy, True
    try:
        if be is None:
            from ..creation import zeros
            bt = zeros(base._data.shape, dtype=t._data.dtype, device=base._device)
        else:
            bt = be[1]
        nb = _write_view(bt, t, name, attrs, i)
    finally:
        lv.busy = busy
    _write(lv, base, nb)
    _derive(lv, v, link, _entry(lv, base))


def _write_view(bt, t, name: str, attrs: dict, i: int):
    """``bt`` with the region the view op ``name`` selects replaced by ``t`` (out of place,
    with tensorlib ops: the tangent stays differentiable)."""
    from ..ops import indexing as I
    if name == "split":
        ax = attrs["axis"] % bt.ndim
        bounds = [0, *attrs["indices"], bt._data.shape[ax]]
        index = (slice(None),) * ax + (slice(bounds[i], bounds[i + 1]),)
        return I._setitem_apply(bt, t, index)
    if name == "unbind":
        ax = attrs["axis"] % bt.ndim
        return I._setitem_apply(bt, t, (slice(None),) * ax + (i,))
    if name == "broadcast_to":
        raise RuntimeError("forward AD: in-place operation on a view made by broadcast_to "
                           "(its elements alias); use .clone() first")
    from .._tensor_methods import _write_back
    return _write_back(t, bt, name, attrs)


def on_detach(self: Tensor, t: Tensor) -> Tensor:
    """Called by ``Tensor.detach`` while a level is active: tangents are keyed by storage
    object, so a detached tensor sharing it would keep them; as in PyTorch it has none (a
    storage object of its own)."""
    if t._data is self._data and any(lv.get(self) is not None for lv in _levels):
        t._data = t._data.view()
    return t


def on_detach_(self: Tensor) -> None:
    """Called by ``Tensor.detach_``: as PyTorch's, the tensor loses its tangents."""
    for lv in _levels:
        lv.drop(self)


_ready = False


def _setup() -> None:
    """On the first level (tensorlib is fully imported by then): the in-place hook and the
    explicit rules."""
    global _ready
    if not _ready:
        from . import forward_rules  # noqa: F401  (registers the explicit rules)
        _ready = True


# --- custom Functions with a jvp staticmethod -------------------------------------------
def custom_levels(tensors) -> list:
    """The active levels (not busy) where one of ``tensors`` has a tangent: a custom
    Function with its own ``jvp`` runs ``forward`` with those levels paused (its ops give no
    tangents there), then :func:`custom_jvp` sets the outputs' tangents."""
    return [lv for lv in _levels if not lv.busy and lv.tangents
            and any(_entry(lv, t) is not None for t in tensors)]


@contextlib.contextmanager
def paused(levels: list) -> Iterator[None]:
    """Forward AD off at ``levels`` while the block runs."""
    was = [lv.busy for lv in levels]
    for lv in levels:
        lv.busy = True
    try:
        yield
    finally:
        for lv, b in zip(levels, was):
            lv.busy = b


def _shares(a, b) -> bool:
    """Whether two arrays may share memory (NumPy's check; other array types: identity)."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return bool(np.may_share_memory(a, b))
    return a is b


def custom_jvp(cls, ctx, levels: list, args: tuple, outs: tuple, raw: tuple) -> None:
    """PyTorch's forward-mode protocol for ``cls`` (a Function with ``jvp``): at each level,
    ``cls.jvp(ctx, *tangents)`` gets one tangent per ``forward`` argument (zeros for a
    floating tensor without one, None for a non-tensor, or with ``set_materialize_grads
    (False)`` for a tensor without one) and returns one tangent per output."""
    from .._tensor import Tensor
    from ..creation import zeros_like
    out_pos = [i for i, o in enumerate(outs) if isinstance(o, Tensor)]
    for lv in levels:
        tans = []
        for a in args:
            t = _entry(lv, a) if isinstance(a, Tensor) else None
            if t is not None:
                tans.append(t[1])
            elif isinstance(a, Tensor) and ctx._materialize and _floating(a):
                tans.append(zeros_like(a))
            else:
                tans.append(None)
        lv.busy = True
        ctx._in_jvp = True
        try:
            res = cls.jvp(ctx, *tans)
        finally:
            ctx._in_jvp = False
            lv.busy = False
        res = res if isinstance(res, tuple) else (res,)
        if len(res) != len(outs):
            raise RuntimeError(f"{cls.__name__}.jvp returned {len(res)} tangents, expected "
                               f"{len(outs)} (one per output of forward)")
        for i in out_pos:
            o, t = outs[i], res[i]
            if t is None or not _floating(o) or id(raw[i]) in ctx._non_diff:
                continue
            if not isinstance(t, Tensor):
                raise TypeError(f"{cls.__name__}.jvp returned a {type(t).__name__} for output "
                                f"{i}; return a Tensor (or None)")
            if t._data.shape != o._data.shape:
                raise RuntimeError(f"{cls.__name__}.jvp returned a tangent of shape "
                                   f"{tuple(t._data.shape)} for output {i} of shape "
                                   f"{tuple(o._data.shape)}")
            if t._data.dtype != o._data.dtype:
                raise RuntimeError(f"{cls.__name__}.jvp returned a tangent of dtype "
                                   f"{t._data.dtype} for output {i} of dtype {o._data.dtype}")
            viewed = [k for k, a in enumerate(args)
                      if isinstance(a, Tensor) and _shares(o._data, a._data)]
            if viewed:
                # an input (or a view of one) returned: its tangent must be the matching view
                # of that input's tangent, as PyTorch requires, or the two would disagree
                if not any(tans[k] is not None and _shares(t._data, tans[k]._data)
                           for k in viewed):
                    raise RuntimeError(
                        f"{cls.__name__}: forward returns an input as-is or a view of it, but "
                        "jvp does not return the matching view of that input's tangent; "
                        "return the tangent as-is (or its view), or clone the output in "
                        "forward")
                if any(o._data is args[k]._data for k in viewed):
                    continue    # an input returned as is keeps its own tangent
            if t._data is o._data:
                t = _alias(t)
            lv.put(o, t)
