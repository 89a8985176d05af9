"""Operators and methods of Tensor, bound to the registry's public functions."""
from __future__ import annotations

import numpy as np

from . import _core, _dtypes
from ._apply import apply
from ._tensor import Tensor, _wrap
from .autograd.mode import state
from .backends import xp_of
from .ops import elementwise as E
from .ops import indexing as I
from .ops import linalg as L
from .ops import reduction as R
from .ops import shape as S
from .ops.registry import cpu_ufunc
from .ops import nn_act as A
from .ops import data_dependent as DD
from .ops import diagonal as DG
from .ops import numeric as NU
from .ops import rearrange as RA
from .ops import rounding as _rounding
from .ops import torch_api as TA
from .ops import sorting as SO
from .ops import statistics as ST
from .ops import cumulative as CU
from .ops import moments as MO
from .ops import rotation as RO
from .ops import special_fns as SF
from .ops import inplace_index as FI
from .ops.inplace_index import fast_or
from ._dtypes import can_store
from .errors import DTypeError
from .ops._util import (check_alpha, half_opmath, half_opmath_operand, promote_for_scalar,
                        to_tensor, torch_promote, weak_scalar)

_SCALARS = (int, float, complex, bool, np.number, np.bool_)


# ops computing in an integer tensor's own dtype: an out-of-range Python int wraps into it,
# as PyTorch's (uint8 > -1 compares with 255; int8 + 200 wraps); true division divides by
# the exact value
_WRAPS = frozenset(("add", "sub", "mul", "floordiv", "mod", "eq", "ne", "lt", "le", "gt", "ge",
                    "bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift"))


def _scalar_for(op, other, ref: Tensor) -> Tensor:
    if op.name == "div" and type(other) is int and ref._data.dtype.kind in "iu":
        info = np.iinfo(ref._data.dtype)
        if not info.min <= other <= info.max:
            other = float(other)
    return weak_scalar(other, ref, wrap=op.name in _WRAPS)


# ops whose CPU kernels PyTorch runs in float32 for a float16 tensor and a scalar on the
# right, reading the scalar's full value (ops._util.half_opmath_operand)
_OPMATH = frozenset(("mul", "div", "floordiv"))
_F16, _F32 = _dtypes.float16, _dtypes.float32
# float16 tensor op float16 tensor on the CPU: through float32 (F16C casts), one rounding, as
# NumPy's own float16 loops do it but per element in software (~10x slower at 64k)
_VIA_F32 = frozenset(("add", "sub", "mul", "div"))


def _half_pair(a: Tensor, b: Tensor) -> bool:
    return (b._data.dtype is _F16 and a._device.type == "cpu" and b._device is a._device
            and max(a._data.size, b._data.size) >= 256)


def _binop(op):
    opmath = op.name in _OPMATH
    via_f32 = op.name in _VIA_F32
    pow_ = op is E.POW

    def fwd(self, other):
        if type(other) is not Tensor:
            if isinstance(other, Tensor):
                pass
            elif isinstance(other, _SCALARS):
                if opmath and self._data.dtype is _F16 and half_opmath_operand(self, other):
                    return half_opmath(op, self, other)
                if pow_ and self._data.dtype.kind in "biu" and _negative_int(other):
                    # before the exponent meets the dtype; only a Python int is refused (a
                    # 0-d tensor exponent computes, as PyTorch)
                    raise RuntimeError(f"__pow__: integers to negative integer powers are not "
                                       f"allowed ({self._data.dtype} ** {other}), as in "
                                       "PyTorch; compute in floating point: x.float() ** "
                                       f"{other}")
                other = _scalar_for(op, other, self)
                return apply(op, promote_for_scalar(self, other), other)
            elif isinstance(other, np.ndarray):   # a constant operand: the result is a Tensor
                other = to_tensor(other)
            else:
                _foreign(other, op)
                return NotImplemented
        if self._data.dtype is _F16:
            if opmath and half_opmath_operand(self, other):
                return half_opmath(op, self, other)
            if via_f32 and _half_pair(self, other):
                return apply(op, self.astype(_F32), other.astype(_F32)).astype(_F16)
        return apply(op, self, other)

    def rev(self, other):
        if isinstance(other, _SCALARS):
            if opmath and self._data.dtype is _F16 and half_opmath_operand(self, other):
                if op is E.MUL:
                    return half_opmath(op, self, other)
                if op is E.DIV:     # PyTorch's __rtruediv__: reciprocal(x) * s
                    return half_opmath(E.MUL, E.reciprocal(self), other)
            other = _scalar_for(op, other, self)
            return apply(op, other, promote_for_scalar(self, other))
        if isinstance(other, np.ndarray):
            other = to_tensor(other)
        elif not isinstance(other, Tensor):
            _foreign(other, op)
            return NotImplemented
        return apply(op, other, self)
    return fwd, rev


def _foreign(other, op) -> None:
    """A clear TypeError for another library's tensor as an operand (its class is also
    called Tensor, so Python's own message reads "'Tensor' and 'Tensor'")."""
    cls = type(other)
    mod = cls.__module__.split(".")[0]
    if mod in ("torch", "jax", "jaxlib", "tensorflow", "cupy", "mxnet", "paddle"):
        raise TypeError(
            f"{op.name}: cannot combine a tensorlib Tensor with a {mod}.{cls.__name__}; "
            f"convert it first: tl.from_dlpack(t) (zero-copy) or tl.tensor(t.numpy())")


def _autocast_aware(fwd, rev, public):
    """``a @ b`` and ``a ** b`` through their public functions inside an autocast block
    (where the cast decision is), straight to ``apply`` otherwise."""
    def f(self, other):
        return public(self, other) if state.autocast is not None else fwd(self, other)

    def r(self, other):
        return public(other, self) if state.autocast is not None else rev(self, other)
    return f, r


for _name, _op in [("add", E.ADD), ("sub", E.SUB), ("mul", E.MUL), ("truediv", E.DIV),
                   ("floordiv", E.FLOORDIV), ("mod", E.MOD), ("pow", E.POW),
                   ("matmul", L.MATMUL)]:
    _f, _r = _binop(_op)
    if _name in ("pow", "matmul"):
        _f, _r = _autocast_aware(_f, _r, E.power if _name == "pow" else L.matmul)
    setattr(Tensor, f"__{_name}__", _f)
    setattr(Tensor, f"__r{_name}__", _r)

for _name, _op in [("eq", E.EQ), ("ne", E.NE), ("lt", E.LT), ("le", E.LE), ("gt", E.GT),
                   ("ge", E.GE), ("and", E.BITWISE_AND), ("or", E.BITWISE_OR),
                   ("xor", E.BITWISE_XOR), ("lshift", E.LEFT_SHIFT),
                   ("rshift", E.RIGHT_SHIFT)]:
    _f, _r = _binop(_op)
    setattr(Tensor, f"__{_name}__", _f)
    if _name in ("and", "or", "xor", "lshift", "rshift"):
        setattr(Tensor, f"__r{_name}__", _r)

Tensor.__hash__ = lambda self: id(self)
Tensor.__neg__ = lambda self: apply(E.NEG, self)
Tensor.__pos__ = lambda self: self
Tensor.__abs__ = lambda self: apply(E.ABS, self)
Tensor.__invert__ = lambda self: E.bitwise_not(self)
def _plain_slice(s: slice) -> bool:
    return ((s.start is None or type(s.start) is int) and (s.stop is None or type(s.stop) is int)
            and (s.step is None or (type(s.step) is int and s.step != 0)))


def __getitem__(self: Tensor, key) -> Tensor:
    """``x[key]`` (:func:`tensorlib.ops.indexing.getitem`)."""
    # the hot path of windowed datasets: with no capture active, a key of Python ints and
    # slices needs none of getitem's traced-index and traced-size checks (the basic SLICE op
    # getitem would apply too); anything else, or an IndexError to word, takes the full path
    if state.tracer is None:
        t = type(key)
        if t is int or t is slice:
            if t is int or _plain_slice(key):
                try:
                    return apply(I.SLICE, self, index=(key,))
                except IndexError:
                    pass
        elif t is tuple and all(k is None or k is Ellipsis or type(k) is int
                                or (type(k) is slice and _plain_slice(k)) for k in key):
            try:
                return apply(I.SLICE, self, index=key)
            except IndexError:
                pass
    return I.getitem(self, key)


Tensor.__getitem__ = __getitem__


# --- in place --------------------------------------------------------------------------
def _assign(self: Tensor, result: Tensor, name: str) -> Tensor:
    """Write ``result`` (computed out of place from an alias of self) into self's storage,
    bump the version, and make self's history that of ``result``."""
    if not can_store(result._data.dtype, self._data.dtype):   # (int64 into uint8 wraps)
        raise DTypeError(f"{name}: result of dtype {result._data.dtype} cannot be stored in a "
                         f"tensor of dtype {self._data.dtype} (result type can't be cast to "
                         "the desired output type)")
    if result._data.shape != self._data.shape:
        raise ValueError(f"{name}: result of shape {result._data.shape} does not fit the "
                         f"in-place target of shape {self._data.shape}")
    self._data[...] = result._data
    self._version[0] += 1
    if result._rg:
        self._node, self._idx, self._rg = result._node, result._idx, True
        self._hv = self._version[0]
    if state.fwd_ad is not None:        # a dual level: self takes result's tangent
        from .autograd.forward_ad import on_assign
        on_assign(self, result)
    return self


def _alias(self: Tensor) -> Tensor:
    t = _wrap(self._data, self._device, self._rg, self._node, self._idx)
    t._version = self._version
    return t


def _current(self: Tensor) -> Tensor:
    """An alias for an in-place op's recorded input. A view whose base changed in place
    first takes its history from the base's current one, as the tape's own aliases do (a
    stale history lost the base's change: y = x.reshape(2); x.mul_(2); y.sub_(1) dropped the
    factor 2 from x's gradient). Not for the write-back into bases (:func:`_rebase`): there
    a base's version is ahead of its history by the write itself."""
    if self._base is not None and self._hv != self._version[0]:
        _regenerate(self)
    return _alias(self)


def _source(self: Tensor, saves) -> Tensor:
    """What an in-place op recorded for autograd reads as its input: an alias of ``self``, or
    a recorded copy when the op's backward reads the inputs (``saves``), since the result
    overwrites ``self``'s storage (``h.relu_()``, ``y *= w`` on non-leaf tensors)."""
    return S.clone(self) if saves else _current(self)


# how an in-place op on a view carries into its base: the base's new value, as tensorlib
# ops on the view's new value (so autograd and capture see it), per view op
def _write_back(view: Tensor, base: Tensor, op: str, attrs: dict) -> Tensor:
    if op == "slice":        # basic indexing: the base with that region replaced
        return apply(I.SETITEM, _alias(base), view, index=attrs["index"])
    if op in ("reshape", "squeeze", "expand_dims"):
        return S.reshape(view, base._data.shape)
    if op == "transpose":
        return S.transpose(view, tuple(int(a) for a in np.argsort(attrs["axes"])))
    if op == "diagonal":
        return DG.diagonal_write_back(view, _alias(base), attrs)
    if op in ("real", "imag", "view_as_real", "view_as_complex"):
        return _write_back_parts(view, base, op)
    return S.flip(view, attrs["axis"])


def _write_back_parts(view: Tensor, base: Tensor, op: str) -> Tensor:
    """The complex views: a changed part joins the other part, still read from the base,
    through ``complex`` (PyTorch's CopySlices of a real/imag view), so the untouched part
    keeps its gradient path and the changed one takes the view's."""
    from .ops import complex as C
    if op == "view_as_real":
        return C.view_as_complex(view)
    if op == "view_as_complex":
        return C.view_as_real(view)
    if op == "real":
        return C.complex(view, C.imag(_alias(base)))
    return C.complex(C.real(_alias(base)), view)


_WRITABLE_VIEWS = ("slice", "reshape", "squeeze", "expand_dims", "transpose", "flip",
                   "diagonal", "real", "imag", "view_as_real", "view_as_complex")


def _rebase(self: Tensor, recorded: bool) -> None:
    """After an in-place op on a view: each tensor it was taken from, up the chain, takes a
    history in which the view's new value is written into it (as PyTorch's CopySlices) when
    autograd ``recorded`` the op, and, under capture, the graph value of that write even
    when it did not (a buffer updated through a view under no_grad). Another view taken
    from the same base keeps its old history."""
    view, link = self, self._base
    tracer = state.tracer
    history = recorded and view._rg
    while link is not None and (history or tracer is not None):
        base, op, attrs, _ = link
        if tracer is not None:   # the write below replaces exactly what the view changed
            tracer.restamp(base)
        b = _write_back(view, base, op, attrs)
        if history:
            base._node, base._idx, base._rg = b._node, b._idx, True
            base._hv = base._version[0]
        if tracer is not None:
            tracer.rebind(base, b, bump=0)
        view, link = base, base._base


def _commit(self: Tensor, res: Tensor, name: str, recorded: bool) -> Tensor:
    """The end of every in-place op that went through ``apply``: the capture learns that
    ``self`` now holds ``res``, the storage takes it, and the bases of a view follow."""
    tracer = state.tracer
    if tracer is not None:
        tracer.rebind(self, res)
    _assign(self, res, name)
    _rebase(self, recorded)
    return self


def _check_leaf(self: Tensor, name: str) -> None:
    """What every in-place op checks first: a leaf that requires grad, read-only memory."""
    if self._rg and self._node is None and state.grad_enabled:
        raise RuntimeError(f"{name}: a leaf tensor that requires grad is used in an in-place "
                           "operation; wrap the update in `with tl.no_grad():`")
    if not getattr(getattr(self._data, "flags", None), "writeable", True):   # (CuPy: none)
        raise ValueError(f"{name}: this tensor cannot be written in place: its memory is "
                         "read-only (an expand()/broadcast_to() view, whose elements share "
                         "one memory location, or a read-only NumPy array); write to a "
                         ".clone() instead")


def _regenerate(view: Tensor) -> None:
    """The view's history after its base changed in place: the view op again, on the base's
    current history (the view's values are the base's). A stale base first, up the chain."""
    base, op, attrs, i = view._base
    if base._base is not None and base._hv != base._version[0]:
        _regenerate(base)
    from .ops.registry import REGISTRY
    r = apply(REGISTRY[op], base, **attrs)
    r = r[i] if type(r) is tuple else r
    view._node, view._idx, view._rg = r._node, r._idx, r._rg
    view._hv = view._version[0]
    tracer = state.tracer
    if tracer is not None:
        tracer.restamp(view)
        tracer.rebind(view, r, bump=0)


def _check_view(self: Tensor, name: str) -> None:
    """An in-place op autograd records on a view must reach its base's history too
    (:func:`_rebase`): refuse views made by ops that cannot write back (broadcast_to, split)
    rather than leave the base's gradient stale."""
    link = self._base
    while link is not None:
        base, op, _, _ = link
        if base._rg and base._node is None:
            raise RuntimeError(f"{name}: a view of a leaf tensor that requires grad is used in "
                               "an in-place operation; wrap the update in `with tl.no_grad():`")
        if op not in _WRITABLE_VIEWS:
            raise RuntimeError(
                f"{name}: in-place operation with autograd history on a view made by {op} "
                f"(of a tensor of shape {tuple(base.shape)}): tensorlib cannot carry the change "
                "into that tensor's gradient. Use an out-of-place op, or .clone() the view "
                "first.")
        link = base._base


def _negative_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and v < 0


def _inplace(op, name):
    opmath = op.name in _OPMATH
    # dense += sparse (PyTorch's dense.add_(sparse)): a scatter-add into self's buffer
    sparse_sign = 1 if op is E.ADD else -1 if op is E.SUB else 0

    def method(self, other):
        if isinstance(other, np.ndarray):
            other = to_tensor(other)
        elif isinstance(other, Tensor):
            if sparse_sign and type(other) is not Tensor and other.is_sparse \
                    and not self.is_sparse:
                from .sparse import add_into_dense
                return add_into_dense(self, other, sparse_sign, name, method)
        else:
            if op is E.POW and self._data.dtype.kind in "biu" and _negative_int(other):
                # before the exponent meets the dtype (uint8 ** -3 would not fit)
                raise RuntimeError(f"{name}: integers to negative integer powers are not "
                                   f"allowed ({self._data.dtype} ** {other}), as in PyTorch")
            if not (opmath and half_opmath_operand(self, other)):
                other = _scalar_for(op, other, self)
        _check_leaf(self, name)
        if opmath and half_opmath_operand(self, other):
            # float16 *= scalar: in float32, rounded once (as the out-of-place op)
            recorded = (self._rg or (isinstance(other, Tensor) and other._rg)) \
                and state.grad_enabled
            if recorded:
                _check_view(self, name)
            return _commit(self, half_opmath(op, _current(self), other), name,
                           recorded)
        tracer = state.tracer
        if tracer is None and state.fwd_ad is None \
                and not ((self._rg or other._rg) and state.grad_enabled) \
                and op.ufunc is not None and self._device.type == "cpu" \
                and cpu_ufunc(op) is not None:     # (pow's own kernel: through apply)
            # nothing to record: update the storage directly, computing in PyTorch's dtype
            # (a 0-d operand of self's category takes self's dtype: uint8 %= tensor(-3) is
            # % 253) and storing as its canCast allows (uint8 += int64 tensor wraps)
            o = other._data
            res_dt = self._data.dtype
            if o.dtype != res_dt:
                res_dt = torch_promote(res_dt, self._data.ndim, o.dtype, o.ndim)
                if o.dtype != res_dt:
                    o = o.astype(res_dt)
            if not can_store(res_dt, self._data.dtype):
                raise DTypeError(f"{name}: result of dtype {res_dt} cannot be stored in a "
                                 f"tensor of dtype {self._data.dtype} (result type can't be "
                                 "cast to the desired output type)")
            if op.check is not None:        # what apply would check (// and % by zero)
                op.check(self._data, o)
            try:
                getattr(np, op.ufunc)(self._data, o, out=self._data, casting="unsafe")
            except ValueError as e:
                raise ValueError(f"{name}: shapes {self.shape} and {other.shape}: {e}") from None
            self._version[0] += 1
            return self
        recorded = (self._rg or other._rg) and state.grad_enabled
        if recorded:
            _check_view(self, name)
        res = apply(op, _source(self, recorded and op.saves is not False), other)
        return _commit(self, res, name, recorded)
    method.__name__ = name
    return method


for _name, _op in [("add", E.ADD), ("sub", E.SUB), ("mul", E.MUL), ("truediv", E.DIV),
                   ("floordiv", E.FLOORDIV), ("mod", E.MOD), ("pow", E.POW),
                   ("and", E.BITWISE_AND), ("or", E.BITWISE_OR), ("xor", E.BITWISE_XOR),
                   ("lshift", E.LEFT_SHIFT), ("rshift", E.RIGHT_SHIFT)]:
    # (without __iand__ and the others, x &= m rebound x to a new tensor: a view's write
    # never reached its base)
    _m = _inplace(_op, f"__i{_name}__")
    setattr(Tensor, f"__i{_name}__", _m)
for _name, _op in [("add_", E.ADD), ("sub_", E.SUB), ("mul_", E.MUL), ("div_", E.DIV),
                   ("pow_", E.POW)]:
    setattr(Tensor, _name, _inplace(_op, _name))


def _setitem(self: Tensor, key, value) -> None:
    # a replay buffer's row write (buf[i] = obs): one NumPy assignment, as the general path
    # below would do it (values cast to self's dtype), without building a key and a tensor
    if (type(key) is int and not self._rg and state.tracer is None and state.fwd_ad is None
            and type(self._data) is np.ndarray and type(value) is np.ndarray):
        try:
            self._data[key] = value
        except (ValueError, IndexError) as e:
            raise type(e)(f"setitem: {e}") from None
        self._version[0] += 1
        return
    if isinstance(value, Tensor) and value._data.dtype.kind == "c" and \
            self._data.dtype.kind != "c" and _advanced_index_in(key):
        # as PyTorch's index_put_ (x[0] = tensor(1j) and copy_ keep the real part there)
        raise RuntimeError(f"setitem: complex values cannot be put into a tensor of dtype "
                           f"{self._data.dtype} through an index tensor or mask (the "
                           "imaginary part would be lost)")
    if state.tracer is not None and _setitem_traced_mask(self, key, value):
        return
    index, _ = I._normalize_key(key)
    if isinstance(value, Tensor):
        v = value
    elif isinstance(value, (np.ndarray, list, tuple)):    # as PyTorch: values in self's dtype
        from .creation import tensor
        v = tensor(np.asarray(value), dtype=self.dtype, device=self.device)
    else:       # (a uint8 takes -1 as 255, as PyTorch's fills)
        v = weak_scalar(value, self, fill="__setitem__")
    _check_leaf(self, "__setitem__")
    tracer = state.tracer
    if tracer is None and state.fwd_ad is None \
            and not ((self._rg or v._rg) and state.grad_enabled):
        try:
            I._setitem_data(xp_of(self._data), self._data, index, v._data)
        except (ValueError, IndexError) as e:
            raise type(e)(f"setitem: {e}") from None
        self._version[0] += 1
        return
    recorded = (self._rg or v._rg) and state.grad_enabled
    if recorded:
        _check_view(self, "__setitem__")
    _commit(self, I._setitem_apply(_current(self), v, index), "__setitem__", recorded)


def _advanced_index_in(key) -> bool:
    """Whether ``key`` indexes with a tensor, list or array (PyTorch's index_put_ path)."""
    keys = key if type(key) is tuple else (key,)
    return any(isinstance(k, (Tensor, list, np.ndarray)) for k in keys)


def _setitem_traced_mask(self: Tensor, key, value) -> bool:
    """``self[mask] = value`` under capture with ``mask`` a traced bool tensor: written as
    ``where(mask, value, self)`` in place, the shape-static cases of PyTorch's semantics
    (``mask`` covers ``self``'s leading dims, ``value`` one value broadcast to every selected
    element). Returns False when ``key`` is no such mask (the general path handles it)."""
    from .ops.index_traced import is_traced
    mask = key[0] if type(key) is tuple and (len(key) == 1 or (
        len(key) == 2 and key[1] is Ellipsis)) else key
    if not (isinstance(mask, Tensor) and mask._data.dtype == np.bool_ and is_traced(mask)):
        return False
    shape, mshape = tuple(self.shape), tuple(mask.shape)
    if len(mshape) > len(shape) or shape[:len(mshape)] != mshape:
        raise IndexError(f"setitem: the shape of the mask {list(mshape)} does not match the "
                         f"shape of the indexed tensor {list(shape)}")
    trailing = shape[len(mshape):]
    if isinstance(value, Tensor):
        v = value
    elif isinstance(value, (np.ndarray, list, tuple)):
        from .creation import tensor
        v = tensor(np.asarray(value), dtype=self.dtype, device=self.device)
    else:
        v = weak_scalar(value, self, fill="__setitem__")
    vs = tuple(v.shape)
    # PyTorch broadcasts value to (mask.sum(), *trailing): only a count dim of 1 (or none)
    # has a size the graph can fix
    if len(vs) > len(trailing) + 1 or (len(vs) == len(trailing) + 1 and vs[0] != 1):
        from .graph.tracer import CaptureError
        raise CaptureError(
            f"setitem: x[mask] = v with a traced bool mask of shape {mshape} and v of shape "
            f"{vs} under capture (tl.function / tl.capture): v gives one value per selected "
            f"element, so its length is mask.sum(), which depends on the mask's values and "
            f"cannot be a graph's static shape. Use one value for all selected elements (a "
            f"scalar or a tensor of shape {trailing} that broadcasts), or "
            f"tl.where(mask{'[..., None]' * len(trailing)}, full_size_values, x)")
    if len(vs) == len(trailing) + 1:
        v = v.reshape(vs[1:])
        vs = vs[1:]
    if any(a != b and a != 1 for a, b in zip(reversed(vs), reversed(trailing))):
        shown = list(np.shape(value))
        raise ValueError(f"setitem: shape mismatch: value tensor of shape {shown} "
                         f"cannot be broadcast to indexing result of shape [N, "
                         f"{', '.join(map(str, trailing))}]" if trailing else
                         f"setitem: shape mismatch: value tensor of shape "
                         f"{shown} cannot be broadcast to indexing result of shape [N]")
    if v.dtype != self.dtype:
        # a one-element value is PyTorch's masked_fill (cast); a longer one must match
        from .ops.indexing import check_write_dtype
        check_write_dtype("__setitem__", v, self.dtype, (mask,), item_basic=True)
        v = v.to(self.dtype)
    _check_leaf(self, "__setitem__")
    recorded = (self._rg or v._rg) and state.grad_enabled
    if recorded:
        _check_view(self, "__setitem__")
    cond = mask.reshape(mshape + (1,) * len(trailing)) if trailing else mask
    _commit(self, E.where(cond, v, _current(self)), "__setitem__", recorded)
    return True


Tensor.__setitem__ = _setitem
_core.set_view_regen(_regenerate)


def _unary_inplace(fn, name):
    def method(self, *args, **kwargs):
        _check_leaf(self, name)
        recorded = self._rg and state.grad_enabled
        if recorded:
            _check_view(self, name)
        return _commit(self, fn(_source(self, recorded), *args, **kwargs), name, recorded)
    method.__name__ = name
    return method


def _fill_(self, value):
    with_grad = self._rg and state.grad_enabled
    if with_grad:
        _check_leaf(self, "fill_")
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(f"fill_: only supports a 0-dimension value tensor (a number), "
                               f"got a tensor of shape {tuple(value.shape)}, as PyTorch; "
                               "to copy elementwise use x.copy_(src)")
    elif isinstance(value, _SCALARS):
        value = weak_scalar(value, self, fill="fill_")
    self[...] = value
    return self


def _zero_(self):
    return _fill_(self, 0)


def _copy_(self, src):
    if not isinstance(src, Tensor) and (isinstance(src, np.ndarray)
                                        or _dtypes.is_torch_tensor(src)):  # sd[k].copy_(hf[k])
        from .creation import tensor
        src = tensor(src)
    src = src if isinstance(src, Tensor) else weak_scalar(src, self)
    if src._device is not self._device:
        src = src.to(self._device)
    self[...] = src.astype(self.dtype) if src.dtype != self.dtype else src
    return self


Tensor.fill_ = _fill_
Tensor.zero_ = _zero_
Tensor.copy_ = _copy_
Tensor.clamp_ = _unary_inplace(E.clip, "clamp_")
Tensor.clip_ = Tensor.clamp_
Tensor.relu_ = _unary_inplace(E.relu, "relu_")
Tensor.exp_ = _unary_inplace(E.exp, "exp_")
Tensor.neg_ = _unary_inplace(E.neg, "neg_")
Tensor.abs_ = _unary_inplace(E.abs, "abs_")
Tensor.masked_fill_ = fast_or(_unary_inplace(I.masked_fill_, "masked_fill_"), FI.masked_fill_,
                             _check_leaf)

# --- methods ---------------------------------------------------------------------------
def _via_functional(name: str, doc_of):
    """The method form of ``tl.nn.functional.<name>``, which takes float16 as PyTorch's
    does (imported when called: tl.nn.functional imports this module's package)."""
    def method(x, *args, **kwargs):
        from .nn import functional
        return getattr(functional, name)(x, *args, **kwargs)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = doc_of.__doc__
    return method


_METHODS = {
    # elementwise
    "neg": E.neg, "abs": E.abs, "sign": E.sign, "exp": E.exp, "exp2": E.exp2, "log": E.log,
    "log2": E.log2, "log1p": E.log1p, "expm1": E.expm1, "sqrt": E.sqrt, "rsqrt": E.rsqrt,
    "square": E.square, "reciprocal": E.reciprocal, "sin": E.sin, "cos": E.cos, "tan": E.tan,
    "tanh": E.tanh, "sigmoid": E.sigmoid, "relu": E.relu, "erf": E.erf, "floor": E.floor,
    "ceil": E.ceil, "round": _rounding.round, "trunc": E.trunc, "clip": TA.clamp, "clamp": TA.clamp,
    "isnan": E.isnan, "isinf": E.isinf, "isfinite": E.isfinite, "maximum": E.maximum,
    "minimum": E.minimum, "logical_not": E.logical_not, "logical_and": E.logical_and,
    "logical_or": E.logical_or, "add": E.add, "sub": E.sub, "mul": E.mul, "div": E.div,
    "pow": E.power, "asin": E.asin, "acos": E.acos, "atan": E.atan, "sinh": E.sinh,
    "cosh": E.cosh, "asinh": E.asinh, "acosh": E.acosh, "atanh": E.atanh, "atan2": E.atan2,
    "arcsin": E.asin, "arccos": E.acos, "arctan": E.atan, "logaddexp": E.logaddexp,
    "hypot": E.hypot,
    # reductions
    "sum": R.sum, "mean": R.mean, "prod": R.prod, "max": R.max, "min": R.min,
    "amax": R.max, "amin": R.min, "argmax": R.argmax, "argmin": R.argmin, "var": R.var,
    "std": R.std, "logsumexp": R.logsumexp, "norm": R.norm, "cumsum": R.cumsum,
    "cumprod": R.cumprod, "all": R.all, "any": R.any,
    # linalg
    "matmul": L.matmul, "dot": L.dot, "outer": L.outer,
    # shape
    "reshape": S.reshape, "view": S.view, "flatten": S.flatten, "squeeze": S.squeeze,
    "unsqueeze": S.unsqueeze, "expand_dims": S.expand_dims, "transpose": S.transpose,
    "permute": S.permute, "swapaxes": S.swapaxes, "broadcast_to": S.broadcast_to,
    "expand": S.expand, "split": S.split, "chunk": S.chunk, "flip": S.flip, "roll": S.roll,
    "repeat": S.repeat_method, "tile": S.tile, "tril": S.tril, "triu": S.triu, "astype": S.astype,
    "clone": S.clone, "pad": S.pad, "unbind": S.unbind,
    # indexing
    "take_along_axis": I.take_along_axis, "gather": I.gather, "take": I.take,
    "scatter_add": I.scatter_add, "masked_fill": I.masked_fill, "index_select": I.index_select,
    "index_add": I.index_add,
    # sorting
    "sort": SO.sort, "argsort": SO.argsort, "topk": SO.topk,
    # normalised exponentials (also in tl.nn.functional)
    "softmax": _via_functional("softmax", A.softmax),
    "log_softmax": _via_functional("log_softmax", A.log_softmax),
    # diagonals, rearranging, numeric helpers, order statistics, eager data-dependent ops
    "diagonal": DG.diagonal, "trace": DG.trace, "moveaxis": RA.moveaxis, "movedim": RA.movedim,
    "repeat_interleave": RA.repeat_interleave, "isclose": NU.isclose, "allclose": NU.allclose,
    "lerp": NU.lerp, "nan_to_num": NU.nan_to_num, "quantile": ST.quantile,
    "median": ST.median, "unique": DD.unique, "argwhere": DD.argwhere,
    "nonzero": DD.nonzero_method, "bincount": DD.bincount,
    # comparisons by name (PyTorch's)
    "eq": E.eq, "ne": E.ne, "lt": E.lt, "le": E.le, "gt": E.gt, "ge": E.ge, "equal": E.equal,
    # cumulative, NaN-ignoring and special functions (PyTorch's methods)
    "logcumsumexp": CU.logcumsumexp, "cummax": CU.cummax, "cummin": CU.cummin,
    "diff": CU.diff, "rot90": RO.rot90, "nansum": MO.nansum, "nanmean": MO.nanmean,
    "erfc": SF.erfc, "erfinv": SF.erfinv, "lgamma": SF.lgamma, "digamma": SF.digamma,
    "i0": SF.i0,
}
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)

Tensor.polygamma = lambda self, n: SF.polygamma(n, self)   # torch's x.polygamma(n)


def _special(name):
    def method(self, *args, **kwargs):
        from . import special
        return getattr(special, name)(self, *args, **kwargs)
    method.__name__ = name
    return method


for _name in ("xlogy", "logit", "sinc"):
    setattr(Tensor, _name, _special(_name))

Tensor.T = property(lambda self: S.transpose(self))
Tensor.mT = property(lambda self: S.swapaxes(self, -1, -2))
Tensor.float = lambda self: S.astype(self, _dtypes.float32)
Tensor.double = lambda self: S.astype(self, _dtypes.float64)
Tensor.half = lambda self: S.astype(self, _dtypes.float16)
Tensor.long = lambda self: S.astype(self, _dtypes.int64)
Tensor.int = lambda self: S.astype(self, _dtypes.int32)
Tensor.bool = lambda self: S.astype(self, _dtypes.bool_)
_TYPE_NAMES = {"FloatTensor": "float32", "DoubleTensor": "float64", "HalfTensor": "float16",
               "LongTensor": "int64", "IntTensor": "int32", "ShortTensor": "int16",
               "CharTensor": "int8", "ByteTensor": "uint8", "BoolTensor": "bool",
               "ComplexFloatTensor": "complex64", "ComplexDoubleTensor": "complex128"}


_TORCH_TYPE = {v: k for k, v in _TYPE_NAMES.items()}


def _type(self, dtype=None, non_blocking: bool = False):
    """With no argument, PyTorch's type name (``'torch.FloatTensor'``,
    ``'torch.cuda.LongTensor'`` on a GPU); with a dtype (or a name such as ``'float64'`` or
    PyTorch's ``'torch.DoubleTensor'``), the tensor cast to it."""
    if dtype is None:
        name = _TORCH_TYPE.get(str(self.dtype))
        if name is None:        # a dtype PyTorch has no legacy tensor type for
            return str(self.dtype)
        return f"torch.cuda.{name}" if self.device.type == "cuda" else f"torch.{name}"
    if isinstance(dtype, str):
        dtype = _TYPE_NAMES.get(dtype.rsplit(".", 1)[-1], dtype)
    elif callable(dtype) and getattr(dtype, "__name__", None) in _TYPE_NAMES:
        dtype = _TYPE_NAMES[dtype.__name__]         # x.type(tl.DoubleTensor), as PyTorch
    return S.astype(self, dtype)


Tensor.type = _type
Tensor.size_of = lambda self, axis: self.shape[axis]
Tensor.dim = lambda self: self.ndim


def _t(self):
    if self.ndim > 2:
        raise ValueError(f"t: expects a tensor of at most 2 dimensions, got shape "
                         f"{tuple(self.shape)} (use .transpose or .mT)")
    return S.transpose(self) if self.ndim == 2 else self


# --- memory formats (PyTorch's contiguous_format, channels_last, channels_last_3d) ----------
# A channels_last tensor is an NCHW tensor whose array is laid out NHWC (strides
# (HWC, 1, WC, C)): the array's own strides carry the format, so NumPy's ops (order="K")
# keep it and every kernel that reads strided arrays reads it correctly.
_CL = {"channels_last": (4, (1, 3, 2, 0)), "channels_last_3d": (5, (1, 4, 3, 2, 0))}


def _format_name(op: str, memory_format) -> str:
    from .ops.torch_settings import check_memory_format
    check_memory_format(op, memory_format)
    return "preserve_format" if memory_format is None else memory_format.name


def _check_rank(op: str, name: str, ndim: int) -> None:
    if name in _CL and ndim != _CL[name][0]:
        raise RuntimeError(f"{op}: required rank {_CL[name][0]} tensor to use {name} format, "
                           f"got a {ndim}-D tensor")


def _contiguous_strides(shape) -> tuple[int, ...]:
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= max(int(n), 1)
    return tuple(reversed(out))


def _channels_last_strides(shape, name: str) -> tuple[int, ...]:
    # PyTorch's get_channels_last_strides: no max(size, 1), so size-0/1 dims get its strides
    order = _CL[name][1]
    st = [0] * len(shape)
    acc = 1
    for d in order:
        st[d] = acc
        acc *= int(shape[d])
    return tuple(st)


def _torch_strides(a) -> tuple[int, ...]:
    """The element strides PyTorch reports for array ``a``. NumPy's strides of size-1 dims
    are arbitrary (0 after ``x[None]``), so a C-contiguous array reports PyTorch's
    contiguous strides, unless its strides are exactly the channels_last ones that
    ``to(memory_format=)`` and ``empty_like`` give it."""
    st = tuple(int(s) // a.itemsize for s in a.strides)
    if not a.flags.c_contiguous:
        return st
    name = {4: "channels_last", 5: "channels_last_3d"}.get(a.ndim)
    if name is not None and st == _channels_last_strides(a.shape, name):
        return st
    return _contiguous_strides(a.shape)


def _is_format_contiguous(shape, strides, name: str) -> bool:
    # PyTorch's compute_channels_last_contiguous_2d/3d: size-1 dims' strides are ignored
    rank, order = _CL[name]
    if len(shape) != rank:
        return False
    expected = 1
    for d in order:
        if shape[d] != 1:
            if strides[d] != expected:
                return False
            expected *= shape[d]
    return True


def _strides_like_format(shape, strides, name: str) -> bool:
    # PyTorch's is_channels_last_strides_2d/3d (what suggest_memory_format reads)
    rank, order = _CL[name]
    if len(shape) != rank or strides[1] == 0:
        return False
    lo = 0
    for d in order:
        if shape[d] == 0 or strides[d] < lo:
            return False
        if d == 0 and lo == strides[1]:     # N1..1 with equal strides: ambiguous, NCHW
            return False
        lo = strides[d] * (shape[d] if shape[d] > 1 else 1)
    return True


def suggest_memory_format(t: Tensor) -> str:
    """PyTorch's ``suggest_memory_format``: the format ``t``'s strides look like."""
    a = t._data
    st = _torch_strides(a)
    for name in _CL:
        if _strides_like_format(a.shape, st, name):
            return name
    return "contiguous_format"


def _is_contiguous(self, memory_format=None) -> bool:
    """Whether the tensor is contiguous in ``memory_format`` (PyTorch's ``is_contiguous``):
    C order for the default ``tl.contiguous_format``; ``tl.channels_last`` (4-D, NHWC in
    memory) and ``tl.channels_last_3d`` (5-D, NDHWC) as PyTorch's, size-1 dims' strides
    ignored; False for a tensor of another rank."""
    name = _format_name("is_contiguous", memory_format)
    a = self._data
    if name not in _CL:
        return bool(a.flags.c_contiguous)
    return a.ndim == _CL[name][0] and _is_format_contiguous(a.shape, _torch_strides(a), name)


def _stride(self, dim: int | None = None):
    """Element strides, a tuple or one dim's (PyTorch's ``stride``): a C-contiguous tensor
    reports PyTorch's contiguous strides, a channels_last one PyTorch's channels_last
    strides (size-1 dims too), a view its array's (negative after a ``flip`` view, which
    PyTorch copies)."""
    st = _torch_strides(self._data)
    if dim is None:
        return st
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"stride: dim must be an int, got {dim!r}")
    n = len(st)
    if not -max(n, 1) <= dim < max(n, 1) or n == 0:
        raise IndexError(f"stride: dim {dim} is out of range for a tensor of {n} dimensions")
    return st[dim]


def _restrided(a, strides: tuple):
    """A view of ``a``'s memory with element ``strides``: only for strides that differ from
    ``a``'s on size-0/1 dims, where they address no other element."""
    xp = xp_of(a)
    lib = np.lib.stride_tricks if xp is np else xp.lib.stride_tricks
    return lib.as_strided(a, a.shape, tuple(s * a.itemsize for s in strides))


def empty_strided_like(a, strides: tuple, dtype=None):
    """An uninitialised array of ``a``'s shape and backend with element ``strides`` (dense
    and non-overlapping, as PyTorch's ``empty_strided``)."""
    xp = xp_of(a)
    dt = a.dtype if dtype is None else dtype
    buf = xp.empty(int(np.prod(a.shape, dtype=np.int64)), dt)
    lib = np.lib.stride_tricks if xp is np else xp.lib.stride_tricks
    return lib.as_strided(buf, a.shape, tuple(s * buf.itemsize for s in strides))


def _non_overlapping_and_dense(shape, strides) -> bool:
    perm = sorted(range(len(shape)), key=lambda d: (shape[d] < 2, strides[d]))
    need = 1
    for d in perm:
        if shape[d] < 2:
            return True
        if strides[d] != need:
            return False
        need *= shape[d]
    return True


def _infer_dense_strides(shape, strides) -> tuple[int, ...]:
    # PyTorch's infer_dense_strides: the dims in the input's stride order (a stable
    # insertion sort, stride-0 dims kept in place), then packed
    nd = len(shape)
    perm = list(range(nd - 1, -1, -1))

    def cmp(d0, d1):
        s0, s1 = strides[d0], strides[d1]
        if s0 == 0 or s1 == 0:
            return 0
        if s0 != s1:
            return -1 if s0 < s1 else 1
        return 1 if shape[d0] > shape[d1] else 0
    for i in range(1, nd):
        d1 = i
        for j in range(1, i + 1):
            d0 = i - j
            c = cmp(perm[d0], perm[d1])
            if c > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif c < 0:
                break
    out, acc = [0] * nd, 1
    for d in perm:
        out[d] = acc
        if shape[d] > 1:
            acc *= shape[d]
    return tuple(out)


def format_strides(op: str, a, memory_format) -> tuple | None:
    """The element strides of a new array like ``a`` in ``memory_format`` (PyTorch's
    ``empty_like``), or None for plain C order. A ``memory_format`` of None here means C
    order; the ``*_like`` functions turn their own default into preserve_format first
    (``creation._in_format``)."""
    if memory_format is None:
        return None
    name = _format_name(op, memory_format)
    if name == "contiguous_format" or not hasattr(a, "flags"):
        return None
    _check_rank(op, name, a.ndim)
    if name in _CL:
        st = _channels_last_strides(a.shape, name)
    else:       # preserve_format: a dense input's strides, else its dims' order, packed
        st = _torch_strides(a)
        if a.size and not _non_overlapping_and_dense(a.shape, st):
            st = _infer_dense_strides(a.shape, st)
    return None if st == _contiguous_strides(a.shape) else st


def _c_clone(x: Tensor) -> Tensor:
    # a C-order copy: clone's default (preserve_format) would keep a permuted view's layout
    from .ops.torch_settings import contiguous_format
    return S.clone(x, memory_format=contiguous_format)


def to_memory_format(x: Tensor, name: str) -> Tensor:
    """A copy of ``x`` laid out in format ``name`` (differentiable: a composite of
    permute and clone, so the gradient and grad of grad come for free)."""
    if name not in _CL:
        return _c_clone(x)
    nd = _CL[name][0]
    to_last = (0,) + tuple(range(2, nd)) + (1,)
    back = (0, nd - 1) + tuple(range(1, nd - 1))
    out = S.transpose(_c_clone(S.transpose(x, to_last)), back)
    a = out._data
    want = _channels_last_strides(a.shape, name)
    if hasattr(a, "flags") and tuple(int(s) // a.itemsize for s in a.strides) != want:
        out._data = _restrided(a, want)     # size-0/1 dims: PyTorch's strides, same memory
    return out


def _contiguous(self, memory_format=None):
    """Self when already contiguous in ``memory_format`` (PyTorch's ``contiguous``; default
    ``tl.contiguous_format``, C order), else a recorded copy in that layout.
    ``tl.channels_last`` needs a 4-D tensor, ``tl.channels_last_3d`` a 5-D one
    (RuntimeError otherwise, as PyTorch); ``tl.preserve_format`` is refused, as PyTorch."""
    if memory_format is not None:
        name = _format_name("contiguous", memory_format)
        if name == "preserve_format":
            raise RuntimeError("contiguous: preserve memory format is unsupported by the "
                               "contiguous operator (use clone or empty_like)")
        if name in _CL:
            _check_rank("contiguous", name, self.ndim)
            return self if _is_contiguous(self, memory_format) else to_memory_format(self, name)
    a = self._data
    if not a.flags.c_contiguous:
        return _c_clone(self)
    if state.tracer is not None and a.ndim > 1 and a.size:
        # NumPy calls a transpose contiguous when a dim it moved has size 1 (one token, a
        # batch of one): under capture that would leave the copy out of a graph that other
        # sizes of a None dim need, so the strides must be the C order's, size-1 dims too
        st, c = [], a.itemsize
        for d in reversed(a.shape):
            st.append(c)
            c *= d
        if tuple(reversed(st)) != a.strides:
            return _c_clone(self)
    return self


def tensor_to_format(x: Tensor, t: Tensor, memory_format, copy: bool) -> Tensor:
    """``Tensor.to``'s ``memory_format``: ``t`` is ``x`` converted to the asked device and
    dtype. As PyTorch, ``x`` itself is kept when nothing else changes and its strides
    already suggest that format; otherwise the result is laid out in it."""
    name = _format_name("to", memory_format)
    if name == "preserve_format":
        return t
    _check_rank("to", name, x.ndim)
    if t is x and not copy and suggest_memory_format(x) == name:
        return x
    if name in _CL:
        if t is not x and _is_contiguous(t, memory_format):
            return t
        return to_memory_format(t, name)
    return t if t is not x and t._data.flags.c_contiguous else _c_clone(t)


def _new(fill):
    def method(self, *size, dtype=None, device=None, requires_grad: bool = False, **kw):
        from . import creation
        if kw:      # x.new_zeros(size=(2, 3)), as PyTorch
            if set(kw) != {"size"} or size:
                raise TypeError(f"new tensor: pass the size positionally or as size=, got "
                                f"{size or ''} {sorted(kw)}")
            size = (kw["size"],)
        shape = size[0] if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
        return creation.batched_like(self, creation.full(
            tuple(shape), fill, dtype=dtype or self.dtype, device=device or self.device,
            requires_grad=requires_grad))
    method.__doc__ = f"A new tensor of {fill} with this one's dtype and device (PyTorch's)."
    return method


def _new_full(self, size, fill_value, *, dtype=None, device=None,
              requires_grad: bool = False):
    return _new(fill_value)(self, tuple(size), dtype=dtype, device=device,
                            requires_grad=requires_grad)


Tensor.t = _t
Tensor.contiguous = _contiguous
# bound here, before _torch_methods' C-order-only versions (the first binding wins)
Tensor.is_contiguous = _is_contiguous
Tensor.stride = _stride
Tensor.new_zeros = _new(0)
Tensor.new_ones = _new(1)
Tensor.new_empty = _new(0)
Tensor.new_full = _new_full
Tensor.__round__ = lambda self, ndigits=None: E.round(self) if not ndigits else \
    E.round(self * 10.0 ** ndigits) * 10.0 ** -ndigits


def _iter(self):
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    if state.tracer is not None:    # a None dim's count of steps becomes a plain int
        from .graph.tracer import note_split
        note_split(self, 0, "iteration (for t in x)")
    return (self[i] for i in range(self.shape[0]))


Tensor.__iter__ = _iter


# --- PyTorch spellings (see README, "Coming from PyTorch") --------------------------------
def _inplace_fn(fn, name):
    """An in-place method from the out-of-place ``fn(self, *args, **kwargs)``, through the
    in-place machinery (leaf check, views' write-back, version counter, capture): recorded
    for autograd when ``self`` or a tensor argument requires grad."""
    def method(self, *args, **kwargs):
        _check_leaf(self, name)
        recorded = state.grad_enabled and (self._rg or any(
            isinstance(a, Tensor) and a._rg for a in (*args, *kwargs.values())))
        if recorded:
            _check_view(self, name)
        return _commit(self, fn(_source(self, recorded), *args, **kwargs), name, recorded)
    method.__name__ = name
    method.__doc__ = f"In-place ``{name[:-1]}`` (PyTorch's ``{name}``)."
    return method


def _alpha_inplace(base, name):
    plain = Tensor.__dict__[base]

    def method(self, other, *, alpha=None):
        if isinstance(alpha, Tensor) and alpha.ndim == 0 and alpha.dtype.kind in "fc":
            # a 0-d tensor alpha (a tensor lr) is an operand, not a Python number: no
            # `!= 1` test (reading its value would freeze it into a captured graph)
            other = other if isinstance(other, Tensor) else to_tensor(other)
            dt = torch_promote(self._data.dtype, self._data.ndim, other._data.dtype,
                               other._data.ndim)
            if np.dtype(dt).kind in "iub":
                raise TypeError(f"{name}: for integral input tensors, argument alpha must "
                                f"not be a floating point number (got a {alpha.dtype} tensor)")
            return plain(self, other * alpha.detach())
        if alpha is not None and alpha != 1:
            other = other if isinstance(other, Tensor) else to_tensor(other)
            dt = torch_promote(self._data.dtype, self._data.ndim, other._data.dtype,
                               other._data.ndim)
            other = other * check_alpha(alpha, dt, name, negate=name == "sub_")
        return plain(self, other)
    method.__name__ = name
    method.__doc__ = f"In-place ``{base[:-1]}`` of ``alpha * other`` (PyTorch's ``{name}``)."
    return method


Tensor.add_ = _alpha_inplace("add_", "add_")
Tensor.sub_ = _alpha_inplace("sub_", "sub_")


Tensor.amax = R.amax
Tensor.amin = R.amin
for _name in ("sin", "cos", "tan", "floor", "ceil", "round", "trunc", "sign", "square",
              "rsqrt", "log1p", "expm1", "log2", "exp2", "erf"):
    setattr(Tensor, _name + "_", _unary_inplace(getattr(E, _name), _name + "_"))
Tensor.sigmoid_ = _unary_inplace(E.sigmoid, "sigmoid_")
Tensor.tanh_ = _unary_inplace(E.tanh, "tanh_")
Tensor.log_ = _unary_inplace(E.log, "log_")
Tensor.sqrt_ = _unary_inplace(E.sqrt, "sqrt_")
Tensor.reciprocal_ = _unary_inplace(E.reciprocal, "reciprocal_")
Tensor.addcmul = NU.addcmul
Tensor.addcdiv = NU.addcdiv
Tensor.addcmul_ = _inplace_fn(NU.addcmul, "addcmul_")
Tensor.addcdiv_ = _inplace_fn(NU.addcdiv, "addcdiv_")
Tensor.lerp_ = fast_or(_inplace_fn(NU.lerp, "lerp_"), NU.lerp_, _check_leaf)   # (one pass)
# the indexing ones write into self directly when nothing is recorded (.ops.inplace_index)
Tensor.index_add_ = fast_or(_inplace_fn(I.index_add, "index_add_"), FI.index_add_, _check_leaf)
Tensor.scatter_add_ = fast_or(_inplace_fn(I.scatter_add, "scatter_add_"), FI.scatter_add_,
                              _check_leaf)
Tensor.scatter = I.scatter
Tensor.scatter_ = fast_or(_inplace_fn(I.scatter, "scatter_"), FI.scatter_, _check_leaf)
Tensor.index_fill = I.index_fill
Tensor.index_fill_ = fast_or(_inplace_fn(I.index_fill, "index_fill_"), FI.index_fill_,
                             _check_leaf)
Tensor.index_put = I.index_put
Tensor.index_put_ = fast_or(_inplace_fn(I.index_put, "index_put_"), FI.index_put_, _check_leaf)
Tensor.masked_select = I.masked_select
Tensor.narrow = S.narrow
Tensor.select = S.select
Tensor.unflatten = S.unflatten


def _view_as(self, other: Tensor) -> Tensor:
    """This tensor reshaped to ``other``'s shape (PyTorch's ``view_as``)."""
    return S.reshape(self, tuple(other.shape))


def _new_tensor(self, data, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data``, with this one's dtype and device unless given
    (PyTorch's ``new_tensor``; a tensor's values are copied, without its history)."""
    from . import creation
    if isinstance(data, Tensor):
        data = np.array(data._host())
    return creation.tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                           requires_grad=requires_grad)


def _uniform_(self, a: float = 0.0, b: float = 1.0, *, generator=None) -> Tensor:
    """Fill with draws from U[a, b) in place (PyTorch's ``uniform_``; not recorded)."""
    from . import creation
    r = creation.uniform(a, b, tuple(self.shape), generator=generator, dtype=self.dtype,
                         device=self.device)
    return _copy_(self, r)


def _normal_(self, mean: float = 0.0, std: float = 1.0, *, generator=None) -> Tensor:
    """Fill with draws from N(mean, std**2) in place (PyTorch's ``normal_``; not recorded)."""
    from . import creation
    r = creation.normal(mean, std, tuple(self.shape), generator=generator,
                        dtype=self.dtype, device=self.device)
    return _copy_(self, r)


def _expand_as(self, other: Tensor) -> Tensor:
    """This tensor broadcast to ``other``'s shape (PyTorch's ``expand_as``)."""
    return S.expand(self, tuple(other.shape))


def _type_as(self, other: Tensor) -> Tensor:
    """This tensor cast to ``other``'s dtype, and moved to its device (PyTorch's
    ``type_as``)."""
    out = S.astype(self, other.dtype)
    return out if out.device == other.device else out.to(other.device)


_div_plain = Tensor.__dict__["div_"]


def _div_(self, other, *, rounding_mode=None) -> Tensor:
    """In-place division; ``rounding_mode`` (``"trunc"``, ``"floor"``) as PyTorch's."""
    if rounding_mode is None:
        return _div_plain(self, other)
    return _div_rounded_(self, other, rounding_mode=rounding_mode)


_div_rounded_ = _inplace_fn(E.div, "div_")

Tensor.view_as = _view_as
Tensor.expand_as = _expand_as
Tensor.type_as = _type_as
Tensor.roll = S.roll
Tensor.div_ = _div_
Tensor.divide_ = _div_
# a tensor bound that requires grad is recorded too (clamp_(min=lo) with lo learnable)
Tensor.clamp_ = _inplace_fn(TA.clamp, "clamp_")
Tensor.clip_ = Tensor.clamp_
Tensor.new_tensor = _new_tensor
Tensor.uniform_ = _uniform_
Tensor.normal_ = _normal_


def _data_ptr(self) -> int:
    """The address of the first element (PyTorch's ``data_ptr``): tensors that share memory
    at the same offset (a view from the start, ``detach()``) give the same address."""
    d = self._data
    if isinstance(d, np.ndarray):
        return d.__array_interface__["data"][0]
    return int(d.data.ptr)


Tensor.data_ptr = _data_ptr
Tensor.is_floating_point = lambda self: self._data.dtype.kind == "f"
Tensor.count_nonzero = MO.count_nonzero
