"""Direct in-place writes for the indexing methods (``index_copy_``, ``index_put_``,
``index_fill_``, ``index_add_``, ``scatter_``, ``scatter_add_``, ``put_``, ``masked_fill_``).

Their general form computes the op out of place and copies the result into ``self``
(``_tensor_methods._inplace_fn``): O(size of self) for a write of a few rows (a MoCo queue of
65536 x 128 taking 256 keys: ~30 ms against PyTorch's 0.014 ms). When nothing is recorded
(no autograd history to extend, no capture) the write goes straight into ``self``'s storage,
as ``Tensor.__setitem__``'s own fast path does: O(elements written), views of ``self`` see
it, the version counter moves. Each fast function returns ``None`` for anything it does not
handle plainly (a check that fails, an unusual argument form, a GPU array), and the general
form then runs and raises its own error: the messages and semantics stay in one place.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .._tensor import Tensor
from ..autograd.mode import state
from . import indexing as I
from ._util import weak_scalar


def _plain(self: Tensor, *others) -> bool:
    """True when the op needs no record: no capture, a NumPy array, and no autograd history
    to extend (neither ``self`` nor a tensor argument requires grad while grad is on)."""
    if state.tracer is not None or state.fwd_ad is not None \
            or type(self._data) is not np.ndarray \
            or self._device.type != "cpu":     # (a vmap tensor's array holds its batch dim)
        return False
    if state.grad_enabled and (self._rg or any(isinstance(o, Tensor) and o._rg
                                               for o in others)):
        return False
    return all(type(o._data) is np.ndarray and o._device.type == "cpu"
               for o in others if isinstance(o, Tensor))


def _int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _axis(d, ndim: int):
    if not _int(d) or not -ndim <= d < ndim:
        return None
    return int(d) % ndim


def _in_range(idx: np.ndarray, n: int, wrap: bool) -> bool:
    if not idx.size:
        return True
    c = I._compact(idx)
    return int(c.max()) < n and int(c.min()) >= (-n if wrap else 0)


def _own(src: np.ndarray, self: Tensor) -> np.ndarray:
    # a source that shares memory with self (q.index_copy_(0, i, q[j])) is read before the
    # write, as the out-of-place form read it
    return src.copy() if np.may_share_memory(src, self._data) else src


def _done(self: Tensor) -> Tensor:
    self._version[0] += 1
    return self


def _add_rows(target: np.ndarray, axis: int, rows: np.ndarray, src: np.ndarray) -> None:
    """``target[..., rows[j], ...] += src[..., j, ...]`` touching only the rows written
    (``indexing._add_rows`` adds a full-size total into ``target``): distinct rows in one
    ``np.add.at``. ``rows`` in [-n, n)."""
    lead, moved = np.moveaxis(target, axis, 0), np.moveaxis(src, axis, 0)
    if moved.dtype != lead.dtype:
        moved = moved.astype(lead.dtype)
    # NumPy's unbuffered add (fast since 1.25): repeated rows add up, in index order; a
    # unique/sum/scatter was 2-8x slower at every size (4 rows: 12 vs 1.5 us)
    np.add.at(lead, rows, moved)


def _value(self: Tensor, value, name: str | None):
    """``value`` (a number or a 0-d tensor) as a scalar of self's dtype, or None."""
    if isinstance(value, Tensor):
        if value.ndim or type(value._data) is not np.ndarray:
            return None
        return value._data.astype(self._data.dtype)
    try:
        return weak_scalar(value, self, fill=name)._data.astype(self._data.dtype)
    except (TypeError, ValueError, OverflowError):
        return None


def index_copy_(self: Tensor, dim=None, index=None, source=None, *args, **kwargs):
    if args or kwargs or not isinstance(index, Tensor) or not isinstance(source, Tensor) \
            or not _plain(self, index, source) or self.ndim == 0:
        return None
    idx = index._data
    d = _axis(dim, self.ndim)
    if d is None or idx.dtype.kind not in "iu" or idx.ndim > 1:
        return None
    idx = idx.reshape(-1)
    want = tuple(idx.shape[0] if i == d else s for i, s in enumerate(self._data.shape))
    # (a negative index goes to the general form, which refuses it as PyTorch does)
    if source._data.shape != want or not _in_range(idx, self._data.shape[d], False):
        return None
    src = I.check_write_dtype("index_copy_", source._data, self._data.dtype)
    self._data[(slice(None),) * d + (idx,)] = _own(src, self)
    return _done(self)


def index_put_(self: Tensor, indices=None, values=None, accumulate: bool = False, *args,
               **kwargs):
    if args or kwargs or not isinstance(indices, (tuple, list)) or values is None \
            or not all(isinstance(k, Tensor) for k in indices) \
            or not _plain(self, values, *indices):
        return None
    try:
        key, target = I._index_tuple("index_put_", self, indices)
    except (TypeError, IndexError, ValueError):
        return None
    if isinstance(values, Tensor):
        v = I.check_write_dtype("index_put_", values._data, self._data.dtype, key, accumulate)
    else:
        v = _value(self, values, "index_put_")
        if v is None:
            return None
    try:
        if np.broadcast_shapes(v.shape, tuple(target)) != tuple(target):
            return None
        if accumulate:
            if v.shape != tuple(target):
                v = np.broadcast_to(v, tuple(target))
            _accumulate(self._data, key, _own(v, self))
        else:
            self._data[key] = _own(v, self)
    except (IndexError, ValueError):
        return None     # (NumPy checks the indices before it writes)
    return _done(self)


def _accumulate(z: np.ndarray, index: tuple, v: np.ndarray) -> None:
    """``z[index] += v``, duplicates summed, touching only the rows written: the key's
    trailing full slices keep rows together (as ``indexing._getitem_grad_np``)."""
    key = I._expand_key(index, z.ndim)
    t = 0
    while key and isinstance(key[-1], slice) and \
            key[-1].indices(z.shape[z.ndim - 1 - t]) == (0, z.shape[z.ndim - 1 - t], 1):
        key.pop()
        t += 1
    if len(key) == 1 and isinstance(key[0], np.ndarray) and key[0].dtype.kind in "iu":
        rows = key[0].reshape(-1)
        if not _in_range(rows, z.shape[0], True):
            raise IndexError("index out of range")
        _add_rows(z, 0, rows, np.broadcast_to(v, key[0].shape + z.shape[1:]).reshape(
            (rows.size,) + z.shape[1:]))
        return
    np.add.at(z, index, v)      # (checks every index before it adds)


def index_fill_(self: Tensor, dim=None, index=None, value=None, *args, **kwargs):
    if args or kwargs or not isinstance(index, Tensor) or value is None \
            or not _plain(self, index, value) or self.ndim == 0:
        return None
    idx = index._data
    d = _axis(dim, self.ndim)
    if d is None or idx.dtype.kind not in "iu" or idx.ndim > 1 \
            or not _in_range(idx, self._data.shape[d], True):
        return None
    v = _value(self, value, "index_fill")
    if v is None:
        return None
    self._data[(slice(None),) * d + (idx.reshape(-1),)] = v
    return _done(self)


def index_add_(self: Tensor, dim=None, index=None, source=None, *args, alpha=1, **kwargs):
    if args or kwargs or not isinstance(index, Tensor) or not isinstance(source, Tensor) \
            or not _plain(self, index, source) or self.ndim == 0:
        return None
    idx, src = index._data, source._data
    d = _axis(dim, self.ndim)
    if d is None or idx.dtype.kind not in "iu" or idx.ndim > 1 \
            or src.dtype != self._data.dtype:
        return None
    want = self._data.shape[:d] + (idx.size,) + self._data.shape[d + 1:]
    if src.shape != want or not _in_range(idx, self._data.shape[d], False):
        return None
    if alpha is not None and alpha != 1:
        if src.dtype.kind != "f" or not isinstance(alpha, (int, float)) \
                or isinstance(alpha, bool):
            return None
        src = src * src.dtype.type(alpha)
    _add_rows(self._data, d, idx.reshape(-1), _own(src, self))
    return _done(self)


def _scatter_key(self: Tensor, name: str, dim, index: Tensor, src):
    """(axis, the window of ``src`` ``index`` addresses, or None) after PyTorch's checks,
    or None where they fail (the general form raises)."""
    if index.ndim == 0 or index.dtype.kind not in "iu":
        return None
    try:
        d, s = I._torch_scatter_window(name, self, dim, index, src)
    except (TypeError, ValueError, IndexError):
        return None
    return d, s


def scatter_(self: Tensor, dim=None, index=None, src=None, *args, value=None, reduce=None,
             **kwargs):
    if args or kwargs or reduce is not None or not isinstance(index, Tensor) \
            or (src is None) == (value is None) or self.ndim == 0:
        return None
    src = value if src is None else src
    if not _plain(self, index, src):
        return None
    got = _scatter_key(self, "scatter", dim, index, src if isinstance(src, Tensor) else None)
    if got is None:
        return None
    d, s = got
    if isinstance(src, Tensor):
        v = _own(I.check_write_dtype("scatter_", s._data, self._data.dtype), self)
    else:
        v = _value(self, src, "scatter_")     # (a fill, as the general form)
        if v is None:
            return None
    key = I._full_index(np, index._data, d)
    self._data[tuple(key)] = v
    return _done(self)


def scatter_add_(self: Tensor, dim=None, index=None, src=None, *args, **kwargs):
    if args or kwargs or not _int(dim) or not isinstance(index, Tensor) \
            or not isinstance(src, Tensor) or not _plain(self, index, src) \
            or not self._data.flags.c_contiguous or self.ndim == 0:
        return None
    got = _scatter_key(self, "scatter_add", dim, index, src)
    if got is None:
        return None
    d, s = got
    v = I.check_write_dtype("scatter_add_", s._data, self._data.dtype)
    I._scatter_add_np(self._data, index._data, _own(v, self), d)
    return _done(self)


def put_(self: Tensor, index=None, source=None, accumulate: bool = False, *args, **kwargs):
    if args or kwargs or not isinstance(index, Tensor) or not isinstance(source, Tensor) \
            or not _plain(self, index, source) or not self._data.flags.c_contiguous:
        return None
    idx, src = index._data, source._data
    if idx.dtype.kind not in "iu" or idx.size != src.size \
            or not _in_range(idx, self._data.size, True):
        return None
    src = I.check_write_dtype("put_", src, self._data.dtype)
    flat = self._data.reshape(-1)       # a view: self is C-contiguous
    src = _own(src, self).reshape(-1)
    if accumulate:
        _add_rows(flat, 0, idx.reshape(-1), src)
    else:
        flat[idx.reshape(-1)] = src
    return _done(self)


def masked_fill_(self: Tensor, mask=None, value=None, *args, **kwargs):
    if args or kwargs or not isinstance(mask, Tensor) or mask.dtype != np.bool_ \
            or value is None or not _plain(self, mask, value) or self.ndim == 0:
        return None
    m = mask._data
    try:
        if np.broadcast_shapes(m.shape, self._data.shape) != self._data.shape:
            return None
    except ValueError:
        return None
    if isinstance(value, Tensor):
        v = _value(self, value, "masked_fill")
    elif self._data.dtype.kind in "iu" and isinstance(value, (float, np.floating)):
        return None     # (the general form's truncation and range rules)
    else:
        v = _value(self, value, "masked_fill")
    if v is None:
        return None
    np.copyto(self._data, v, where=m)
    return _done(self)


def fast_or(general: Callable, fast: Callable, check: Callable) -> Callable:
    """``general`` (an in-place method) that first tries ``fast``'s direct write; ``check``
    (the in-place ops' leaf and read-only check) runs before it."""
    name = general.__name__

    def method(self, *args, **kwargs):
        if not (self._rg and state.grad_enabled):
            check(self, name)
            r = fast(self, *args, **kwargs)
            if r is not None:
                return r
        return general(self, *args, **kwargs)
    method.__name__ = name
    method.__qualname__ = getattr(general, "__qualname__", name)
    method.__doc__ = general.__doc__
    return method
