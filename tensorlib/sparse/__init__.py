"""Sparse COO tensors (``torch.sparse`` semantics), for graph models and sparse gradients.

A sparse tensor is a :class:`SparseTensor`, a subclass of ``Tensor`` whose storage
(``_data``) is a :class:`_COO` (indices, values, shape, dtype) instead of an array, so the
dense hot path (``apply``) is untouched and the autograd engine can hold one as a leaf's
``.grad`` (``nn.Embedding(sparse=True)``). The values are an ordinary tensor: gradients
flow to them (and to the dense operand of :func:`mm`) through recorded ops. Dense ops on
a sparse tensor raise, naming the op and suggesting ``.to_dense()``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._core import TensorBase
from .._tensor import Tensor
from .._torch_methods import layout
from ..autograd.function import Function
from ..autograd.mode import state as _mode
from ..ops.sparse_mm import spmm_coo

__all__ = ["SparseTensor", "sparse_coo", "sparse_coo_tensor", "to_sparse", "mm", "addmm",
           "sum", "softmax", "log_softmax", "sparse_mask"]

sparse_coo = layout("sparse_coo")

_HINT = "sparse COO tensors support few ops; call .to_dense() first"


class _Flags:
    __slots__ = ()
    writeable = False       # the engine adds a new gradient out of place (or by __iadd__)
    c_contiguous = False


class _COO:
    """A sparse tensor's storage. ``indices``: int64 (sparse_dim, nnz) NumPy array;
    ``values``: a Tensor (nnz, *dense_shape); ``shape``: the full shape. ``_it``: the
    traced tensor the indices came from under graph capture (ops on it land in the graph as
    values rather than constants); ``_iw``: a zero-copy Tensor over ``indices``, kept."""

    __slots__ = ("indices", "values", "shape", "dtype", "coalesced", "_it", "_iw")
    flags = _Flags()
    base = None

    def __init__(self, indices: np.ndarray, values: Tensor, shape: tuple, coalesced: bool):
        self.indices, self.values = indices, values
        self.shape, self.dtype = tuple(int(s) for s in shape), values._data.dtype
        self.coalesced, self._it, self._iw = bool(coalesced), None, None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __iadd__(self, other: _COO) -> _COO:
        # the backward walk sums two gradients of one leaf in place (a table looked up twice)
        from ..ops.shape import cat
        self.indices = np.concatenate([self.indices, other.indices], axis=1)
        self.values = cat([self.values, other.values.astype(self.dtype)], axis=0)
        self.coalesced = False
        return self

    def copy(self):
        # what graph capture calls on an argument's storage: refuse with a way out
        raise TypeError("tl.function / tl.capture: a sparse COO tensor cannot be a graph "
                        "argument yet (arguments are flattened as dense tensors); pass its "
                        "indices() and values() and build it inside with "
                        "tl.sparse_coo_tensor(indices, values, size)")

    def __array__(self, dtype=None, copy=None):
        raise TypeError(_HINT)

    def __array_ufunc__(self, ufunc, method, *args, **kwargs):
        raise TypeError(f"{ufunc.__name__}: {_HINT}")

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"{func.__name__}: {_HINT}")


def _make(indices: np.ndarray, values: Tensor, shape, coalesced: bool,
          itensor: Tensor | None = None) -> SparseTensor:
    """A SparseTensor over ``indices``; ``itensor``: the (traced) tensor they are the data
    of. Indices it owns are made read-only (the product's CSR structure is cached by
    identity; see tensorlib.ops.sparse_mm)."""
    if itensor is None and indices.flags.owndata and indices.flags.writeable:
        indices.flags.writeable = False
    t = TensorBase.__new__(SparseTensor)
    t._data = _COO(indices, values, shape, coalesced)
    t._data._it = itensor
    t._device = values._device
    t._rg = values._rg
    t._node = None
    t._idx = 0
    t._version = [0]
    t._hooks = None
    t._base = None
    t._hv = 0
    return t


def _traced(d: _COO) -> bool:
    """Whether ``d``'s indices are a graph value of the capture under way (built in the
    function from tensors): ops that read them on the host would freeze the trace's."""
    it = d._it
    return _mode.tracer is not None and it is not None and it._data is d.indices \
        and _mode.tracer.lookup(it) is not None


def _host_only(d: _COO, name: str) -> None:
    if _traced(d):
        raise RuntimeError(f"{name}: a sparse tensor whose indices are a graph value (built "
                           "in a tl.function from tensors) supports sparse.mm, to_dense and "
                           "ops on its values only; the indices would be frozen at the "
                           "trace's. Call it outside the function, or use to_dense()")


def _tensor(x, dtype=None, device=None) -> Tensor:
    from ..creation import tensor
    if isinstance(x, Tensor):
        if dtype is not None and x.dtype != np.dtype(dtype):
            x = x.astype(dtype)
        return x if device is None else x.to(device)
    return tensor(x, dtype=dtype, device=device)


def _needs_grad(v: Tensor) -> bool:
    return v._rg and _mode.grad_enabled


class SparseTensor(Tensor):
    """A sparse COO tensor, as ``torch.sparse_coo_tensor`` makes: ``indices()`` (sparse_dim,
    nnz), ``values()`` (nnz, *dense_shape); duplicate indices sum (``coalesce()``)."""

    # --- metadata ---------------------------------------------------------------------
    is_sparse = property(lambda self: True)
    is_sparse_csr = property(lambda self: False)
    layout = property(lambda self: sparse_coo)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    def sparse_dim(self) -> int:
        return int(self._data.indices.shape[0])

    def dense_dim(self) -> int:
        return len(self._data.shape) - self.sparse_dim()

    def _nnz(self) -> int:
        return int(self._data.indices.shape[1])

    def is_coalesced(self) -> bool:
        return self._data.coalesced

    def is_contiguous(self, memory_format=None) -> bool:
        return True

    def _indices(self) -> Tensor:
        if _traced(self._data):     # the call's own indices, not the trace's as a constant
            return self._data._it
        from ..creation import tensor
        return tensor(self._data.indices, device=self._device)

    def _values(self) -> Tensor:
        return self._data.values

    def indices(self) -> Tensor:
        """The (sparse_dim, nnz) int64 indices of a coalesced tensor."""
        if not self._data.coalesced:
            raise RuntimeError("indices: cannot get indices on an uncoalesced tensor, please "
                               "call .coalesce() first")
        return self._indices()

    def values(self) -> Tensor:
        """The (nnz, *dense_shape) values of a coalesced tensor (gradients flow to them)."""
        if not self._data.coalesced:
            raise RuntimeError("values: cannot get values on an uncoalesced tensor, please "
                               "call .coalesce() first")
        return self._data.values

    def _host(self) -> np.ndarray:
        # what the anomaly check reads for NaNs
        return self._data.values._host()

    # --- autograd ---------------------------------------------------------------------
    @property
    def grad(self):
        """A leaf sparse tensor's gradient: sparse, with its own indices (PyTorch's
        ``sparse_mask`` of the dense gradient)."""
        d = self._data
        g = d.values.grad if d.values._node is None else None
        if g is None:
            return None
        if d.coalesced or not d.indices.shape[1]:
            return _make(d.indices, g, d.shape, d.coalesced)
        # each position once: a duplicate entry's gradient is the position's
        lin = np.ravel_multi_index(tuple(d.indices), d.shape[:d.indices.shape[0]])
        _, first = np.unique(lin, return_index=True)
        from ..creation import tensor
        return _make(d.indices[:, first], g[tensor(first)], d.shape, True)

    @grad.setter
    def grad(self, value) -> None:
        if value is not None:
            raise RuntimeError("SparseTensor.grad: only None can be assigned")
        self._data.values.grad = None

    def requires_grad_(self, requires_grad: bool = True) -> SparseTensor:
        self._data.values.requires_grad_(requires_grad)
        self._rg = bool(requires_grad)
        return self

    def detach(self) -> SparseTensor:
        d = self._data
        return _make(d.indices, d.values.detach(), d.shape, d.coalesced)

    def clone(self, *, memory_format=None) -> SparseTensor:
        d = self._data
        return _make(d.indices.copy(), d.values.clone(), d.shape, d.coalesced)

    def astype(self, dtype) -> SparseTensor:
        d = self._data
        return _make(d.indices, d.values.astype(dtype), d.shape, d.coalesced)

    def to(self, *args, **kwargs) -> SparseTensor:
        """``.to(dtype)`` / ``.to(device)``: the values move; the indices stay on the host."""
        d = self._data
        return _make(d.indices, d.values.to(*args, **kwargs), d.shape, d.coalesced)

    def double(self) -> SparseTensor:
        return self.astype(np.float64)

    def float(self) -> SparseTensor:
        return self.astype(np.float32)

    # --- conversions ------------------------------------------------------------------
    def coalesce(self) -> SparseTensor:
        """Sorted, unique indices with the values of duplicates summed (differentiable)."""
        d = self._data
        if d.coalesced:
            return self
        _host_only(d, "coalesce")
        sdim = d.indices.shape[0]
        sshape = d.shape[:sdim]
        if d.indices.shape[1] == 0:
            return _make(d.indices, d.values, d.shape, True)
        lin = np.ravel_multi_index(tuple(d.indices), sshape) if sdim else \
            np.zeros(d.indices.shape[1], np.int64)
        v = d.values
        if _needs_grad(v):
            from ..creation import tensor, zeros
            from ..ops.indexing import index_add
            uniq, inv = np.unique(lin, return_inverse=True)
            vals = index_add(zeros((len(uniq),) + tuple(v.shape[1:]), dtype=v.dtype,
                                   device=v.device), tensor(inv.reshape(-1)), v, axis=0)
        else:
            # sort once and sum runs: far faster than a scatter-add for the large, few-dup
            # gradients of embedding tables
            from ..creation import tensor
            order = np.argsort(lin, kind="stable")
            sl = lin[order]
            first = np.concatenate([[True], sl[1:] != sl[:-1]])
            uniq = sl[first]
            a = v._host()[order]
            if len(uniq) == len(sl):
                s = a
            else:   # (reduceat over rows is ~10x slower: most rows are unique)
                s = a[first]
                dup = ~first
                np.add.at(s, np.cumsum(first)[dup] - 1, a[dup])
            vals = tensor(s, device=v.device)
        idx = np.stack(np.unravel_index(uniq, sshape)).astype(np.int64) if sdim else \
            np.zeros((0, len(uniq)), np.int64)
        return _make(idx.reshape(sdim, -1), vals, d.shape, True)

    def to_dense(self, dtype=None, *, masked_grad: bool | None = None) -> Tensor:
        """The dense tensor (duplicates summed); differentiable w.r.t. the values."""
        d = self._data
        sdim = d.indices.shape[0]
        sshape, dshape = d.shape[:sdim], d.shape[sdim:]
        v = d.values if dtype is None else d.values.astype(dtype)
        n = math.prod(sshape)
        if _traced(d):
            # each entry's flat position computed in the graph: a replay's indices are read
            from ..creation import zeros
            from ..ops.indexing import index_add
            it, flat, stride = d._it, None, 1
            for k in reversed(range(sdim)):
                term = it[k] if stride == 1 else it[k] * stride
                flat = term if flat is None else flat + term
                stride *= sshape[k]
            if flat is None:
                flat = zeros((d.indices.shape[1],), dtype=np.int64)
            out = index_add(zeros((n,) + dshape, dtype=v.dtype, device=v.device), flat, v,
                            axis=0)
            return out.reshape(d.shape)
        lin = np.ravel_multi_index(tuple(d.indices), sshape) if sdim and d.indices.shape[1] \
            else np.zeros(d.indices.shape[1], np.int64)
        from ..creation import tensor, zeros
        if _needs_grad(v):
            from ..ops.indexing import index_add
            out = index_add(zeros((n,) + dshape, dtype=v.dtype, device=v.device),
                            tensor(lin), v, axis=0)
            return out.reshape(d.shape)
        out = np.zeros((n,) + dshape, v._host().dtype)
        np.add.at(out, lin, v._host())
        return tensor(out.reshape(d.shape), device=v.device)

    def to_sparse(self, sparse_dim: int | None = None) -> SparseTensor:
        return self

    # --- arithmetic -------------------------------------------------------------------
    def __add__(self, other):
        if isinstance(other, SparseTensor):
            if other.shape != self.shape or other.sparse_dim() != self.sparse_dim():
                raise RuntimeError(f"add: sparse tensors of shapes {self.shape} and "
                                   f"{other.shape} (sparse dims {self.sparse_dim()}, "
                                   f"{other.sparse_dim()}) do not match")
            from ..ops.shape import cat
            a, b = self._data, other._data
            return _make(np.concatenate([a.indices, b.indices], axis=1),
                         cat([a.values, b.values.astype(a.dtype)], axis=0), a.shape, False)
        if isinstance(other, Tensor):
            return self.to_dense() + other
        raise RuntimeError(f"add: a sparse tensor plus {type(other).__name__} is not "
                           f"supported; {_HINT}")

    def __radd__(self, other):
        if isinstance(other, Tensor):       # dense + sparse: dense, as PyTorch
            return other + self.to_dense()
        return self.__add__(other)

    def __neg__(self) -> SparseTensor:
        d = self._data
        return _make(d.indices, -d.values, d.shape, d.coalesced)

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return (-self).__radd__(other)

    def _scalar(self, other, name: str):
        if isinstance(other, (int, float, np.number)) and not isinstance(other, bool):
            return other
        if isinstance(other, Tensor) and not other.is_sparse and other.ndim == 0:
            return other
        raise RuntimeError(f"{name}: a sparse tensor with {type(other).__name__} of shape "
                           f"{getattr(other, 'shape', ())} is not supported (only scalars "
                           f"and 0-d tensors); {_HINT}")

    def __mul__(self, other) -> SparseTensor:
        """Elementwise product: sparse (the entries of ``self`` only) with a scalar, a dense
        tensor broadcastable to ``self``'s shape, or a sparse tensor (the common entries)."""
        if isinstance(other, SparseTensor):
            return _mul_sparse(self, other)
        d = self._data
        if isinstance(other, Tensor) and other.ndim > 0:
            return _make(d.indices, d.values * _gather(self, other, "mul"), d.shape,
                         d.coalesced)
        s = self._scalar(other, "mul")
        return _make(d.indices, d.values * s, d.shape, d.coalesced)

    __rmul__ = __mul__

    def __truediv__(self, other) -> SparseTensor:
        s = self._scalar(other, "div")
        d = self._data
        return _make(d.indices, d.values / s, d.shape, d.coalesced)

    def __matmul__(self, other) -> Tensor:
        return mm(self, other)

    def mul(self, other) -> SparseTensor:
        return self * other

    def add(self, other, *, alpha=1):
        return self + (other * alpha if alpha != 1 else other)

    def sub(self, other, *, alpha=1):
        return self - (other * alpha if alpha != 1 else other)

    def div(self, other) -> SparseTensor:
        return self / other

    def transpose(self, dim0: int, dim1: int) -> SparseTensor:
        """Swap two sparse dims (PyTorch refuses dense ones); gradients reach the values."""
        d = self._data
        _host_only(d, "transpose")
        nd, sdim = len(d.shape), d.indices.shape[0]
        a, b = (_norm_dim(k, nd, "transpose") for k in (dim0, dim1))
        if a == b:
            return self
        if a >= sdim or b >= sdim:
            raise RuntimeError(f"transpose: transposed dimensions must be sparse, got "
                               f"sparse_dim {sdim}, dim0 {dim0}, dim1 {dim1}")
        order = list(range(sdim))
        order[a], order[b] = b, a
        shape = list(d.shape)
        shape[a], shape[b] = shape[b], shape[a]
        return _make(d.indices[order], d.values, shape, d.indices.shape[1] <= 1)

    def t(self) -> SparseTensor:
        """``transpose(0, 1)`` of a 2-D sparse matrix; a 0-D or 1-D tensor as it is."""
        if len(self.shape) > 2:
            raise RuntimeError(f"t: expects a tensor with <= 2 dimensions, got "
                               f"{len(self.shape)}; use transpose(dim0, dim1)")
        return self if len(self.shape) < 2 else self.transpose(0, 1)

    def softmax(self, dim: int, dtype=None) -> SparseTensor:
        return softmax(self, dim, dtype)

    def log_softmax(self, dim: int, dtype=None) -> SparseTensor:
        return log_softmax(self, dim, dtype)

    def neg(self) -> SparseTensor:
        return -self

    def __pow__(self, exponent: float) -> SparseTensor:
        return self.pow(exponent)

    def pow(self, exponent: float) -> SparseTensor:
        """``self ** exponent`` for a nonzero scalar ``exponent``, as PyTorch's sparse
        ``pow``: applied to the coalesced values, so the sparsity pattern stays (a zeroth
        power would fill it, so it raises)."""
        if isinstance(exponent, Tensor) or not isinstance(exponent, (int, float, np.number)) \
                or isinstance(exponent, (complex, np.complexfloating)):
            raise RuntimeError(f"pow: a sparse tensor's exponent must be a real scalar, got "
                               f"{type(exponent).__name__}; {_HINT}")
        if exponent == 0:
            raise RuntimeError("pow: cannot raise to zeroth power on sparse tensor; it would "
                               "make the result tensor dense")
        c = self.coalesce()
        d = c._data
        return _make(d.indices, d.values.pow(exponent), d.shape, True)

    def index_select(self, dim: int, index: Tensor) -> SparseTensor:
        """The slices at ``index`` along ``dim`` (sparse or dense), as PyTorch's sparse
        ``index_select``: an index given twice gives its entries twice; negative indices
        count from the end. The result is uncoalesced (unless it has at most one entry);
        gradients reach the values."""
        from ..creation import tensor
        d = self._data
        nd, sdim = len(d.shape), d.indices.shape[0]
        dim = _norm_dim(dim, nd, "index_select")
        if not isinstance(index, Tensor) or index.is_sparse or index.ndim != 1 \
                or index.dtype.kind not in "iu":
            raise IndexError(f"index_select(): argument index must be a 1-D dense integer "
                             f"tensor, got {type(index).__name__} of shape "
                             f"{tuple(getattr(index, 'shape', ()))}")
        n = d.shape[dim]
        idx = index._host().astype(np.int64)
        bad = (idx < -n) | (idx >= n)
        if bad.any():
            raise IndexError(f"index_select(): index contains {int(idx[bad][0])} that is out "
                             f"of range for tensor of size {list(d.shape)} at dimension {dim}")
        idx = np.where(idx < 0, idx + n, idx)
        shape = list(d.shape)
        shape[dim] = len(idx)
        if dim >= sdim:
            vals = d.values.index_select(dim - sdim + 1, tensor(idx, device=self._device))
            return _make(d.indices, vals, shape, d.indices.shape[1] <= 1)
        # the entries whose index along ``dim`` is idx[j], for each j: runs of one sort
        order = np.argsort(d.indices[dim], kind="stable")
        keys = d.indices[dim][order]
        lo, hi = np.searchsorted(keys, idx, "left"), np.searchsorted(keys, idx, "right")
        cnt = hi - lo
        tot = int(cnt.sum())
        start = np.repeat(lo - (np.cumsum(cnt) - cnt), cnt)
        sel = order[start + np.arange(tot, dtype=np.int64)]
        ind = d.indices[:, sel].copy()
        ind[dim] = np.repeat(np.arange(len(idx), dtype=np.int64), cnt)
        vals = d.values[tensor(sel, device=self._device)]
        return _make(ind, vals, shape, tot <= 1)

    def narrow_copy(self, dim: int, start: int, length: int) -> SparseTensor:
        """``self[..., start:start + length, ...]`` along ``dim`` as a new sparse tensor, as
        PyTorch's sparse ``narrow_copy`` (coalesced iff ``self`` is); gradients reach the
        values."""
        from ..creation import tensor
        d = self._data
        nd, sdim = len(d.shape), d.indices.shape[0]
        dim = _norm_dim(dim, nd, "narrow_copy")
        start, length = int(start), int(length)
        if length < 0:
            raise RuntimeError("narrow_copy(): length must be non-negative, got "
                               f"{length}")
        n = d.shape[dim]
        if start < 0:
            start += n
        if not 0 <= start <= start + length <= n:
            raise RuntimeError(f"narrow_copy(): start {start} and length {length} give a range "
                               f"outside [0, {n}) for dim {dim} of size {n}")
        shape = list(d.shape)
        shape[dim] = length
        if dim >= sdim:
            vals = d.values.narrow(dim - sdim + 1, start, length).clone()
            return _make(d.indices, vals, shape, d.coalesced)
        keep = np.flatnonzero((d.indices[dim] >= start) & (d.indices[dim] < start + length))
        ind = d.indices[:, keep].copy()
        ind[dim] -= start
        return _make(ind, d.values[tensor(keep, device=self._device)], shape, d.coalesced)

    def sparse_mask(self, mask: SparseTensor) -> SparseTensor:
        """``self``'s entries at ``mask``'s indices (zero where ``self`` has none), as
        PyTorch's sparse ``sparse_mask``; see :func:`sparse_mask`."""
        return sparse_mask(self, mask)

    def mm(self, other) -> Tensor:
        return mm(self, other)

    def matmul(self, other) -> Tensor:
        return mm(self, other)

    def sum(self, dim=None, keepdim: bool = False, dtype=None):
        if dim is None:
            return sum(self, dtype=dtype)
        if keepdim:
            raise NotImplementedError("sum: keepdim=True on a sparse tensor is not supported; "
                                      + _HINT)
        return sum(self, dim, dtype=dtype)

    # in place (optimizers, clipping, zero_grad): the values change, the pattern stays
    def _inplace_values(self, v: Tensor) -> SparseTensor:
        self._data.values = v
        self._version[0] += 1
        return self

    def mul_(self, other) -> SparseTensor:
        s = self._scalar(other, "mul_")
        v = self._data.values
        if v._node is None and not v._rg:
            v.mul_(s)
            self._version[0] += 1
            return self
        return self._inplace_values(v * s)

    def div_(self, other) -> SparseTensor:
        return self.mul_(1.0 / self._scalar(other, "div_"))

    def zero_(self) -> SparseTensor:
        """Drop every entry (nnz becomes 0), as PyTorch's sparse ``zero_``."""
        from ..creation import zeros
        d = self._data
        d.indices = np.zeros((d.indices.shape[0], 0), np.int64)
        d.values = zeros((0,) + tuple(d.values.shape[1:]), dtype=d.dtype, device=self._device)
        d.coalesced = True
        self._version[0] += 1
        return self

    def add_(self, other, *, alpha=1) -> SparseTensor:
        if not isinstance(other, SparseTensor):
            raise RuntimeError("add_: only a sparse tensor can be added into a sparse tensor "
                               "in place; " + _HINT)
        s = self + (other * alpha if alpha != 1 else other)
        d = self._data
        d.indices, d.values, d.coalesced = s._data.indices, s._data.values, False
        self._version[0] += 1
        return self

    def __repr__(self) -> str:
        d = self._data
        ind = repr(self._indices()).replace("\n", "\n" + " " * 15)
        val = repr(d.values.detach()).replace("\n", "\n" + " " * 14)
        extra = ", requires_grad=True" if self._rg else ""
        return (f"tensor(indices={ind},\n       values={val},\n       size={d.shape}, "
                f"nnz={self._nnz()}, layout=tl.sparse_coo{extra})")

    __str__ = __repr__

    def __reduce__(self):
        d = self._data
        return (_rebuild, (d.indices, d.values.detach(), d.shape, d.coalesced))


# PyTorch's zero-preserving unary ops on sparse COO: f(0) == 0, so applying f to the values
# keeps the pattern. f is not additive, so duplicates are summed first (coalesced result), as
# PyTorch does; the linear ones (neg, conj, positive) keep the input's entries.
_UNARY = ("abs", "sgn", "sign", "sqrt", "sin", "sinh", "tan", "tanh", "asin", "asinh", "atan",
          "atanh", "ceil", "floor", "round", "trunc", "frac", "expm1", "log1p", "erf", "erfinv",
          "deg2rad", "rad2deg", "relu", "signbit", "isnan", "isinf", "isposinf", "isneginf",
          "nan_to_num", "square")
_LINEAR_UNARY = ("conj", "positive")


def _unary_method(name: str, linear: bool):
    def method(self: SparseTensor, *args, **kwargs) -> SparseTensor:
        c = self if linear else self.coalesce()
        d = c._data
        return _make(d.indices, getattr(d.values, name)(*args, **kwargs), d.shape,
                     d.coalesced)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = (f"PyTorch's sparse ``{name}``: applied to the "
                      f"{'' if linear else 'coalesced '}values, keeping the sparsity pattern "
                      f"(differentiable where the dense ``{name}`` is).")
    return method


for _name in _UNARY:
    setattr(SparseTensor, _name, _unary_method(_name, False))
for _name in _LINEAR_UNARY:
    setattr(SparseTensor, _name, _unary_method(_name, True))
SparseTensor.__abs__ = SparseTensor.abs
SparseTensor.__pos__ = SparseTensor.positive
del _name


def _rebuild(indices, values, shape, coalesced) -> SparseTensor:
    return _make(indices, values, shape, coalesced)


def _norm_dim(k: int, nd: int, name: str) -> int:
    if not -nd <= k < max(nd, 1):
        raise IndexError(f"{name}: dim {k} is out of range for a tensor of {nd} dims")
    return k % max(nd, 1)


def _lin(d: _COO, rows=None) -> np.ndarray:
    """Each entry's position as one number (over the sparse dims ``rows``, default all)."""
    _host_only(d, "sparse")
    ind = d.indices if rows is None else d.indices[rows]
    sshape = tuple(d.shape[k] for k in (range(d.indices.shape[0]) if rows is None else rows))
    if not len(sshape) or not ind.shape[1]:
        return np.zeros(ind.shape[1], np.int64)
    return np.ravel_multi_index(tuple(ind), sshape)


def _gather(a: SparseTensor, other: Tensor, name: str) -> Tensor:
    """The entries of dense ``other`` (broadcast to ``a``'s shape) at ``a``'s indices:
    (nnz, *dense_shape), differentiable w.r.t. ``other``."""
    from ..creation import tensor
    d = a._data
    try:
        full = np.broadcast_shapes(tuple(other.shape), d.shape)
    except ValueError:
        full = None
    if full != d.shape:
        raise RuntimeError(f"{name}: a sparse tensor of shape {d.shape} with a dense one of "
                           f"shape {tuple(other.shape)}: the dense one must broadcast to the "
                           "sparse shape")
    if other._device != a._device:
        raise RuntimeError(f"{name}: the sparse tensor is on {a.device}, the dense one on "
                           f"{other.device}")
    sdim = d.indices.shape[0]
    flat = other.expand(d.shape).reshape((math.prod(d.shape[:sdim]),) + d.shape[sdim:])
    return flat[tensor(_lin(d), device=a._device)]


def _mul_sparse(a: SparseTensor, b: SparseTensor) -> SparseTensor:
    """The product at the positions both hold (coalesced), as PyTorch's sparse ``mul``."""
    from ..creation import tensor
    if a.shape != b.shape or a.sparse_dim() != b.sparse_dim():
        raise RuntimeError(f"mul: sparse tensors of shapes {a.shape} and {b.shape} (sparse "
                           f"dims {a.sparse_dim()}, {b.sparse_dim()}) do not match")
    a, b = a.coalesce(), b.coalesce()
    da, db = a._data, b._data
    _, ia, ib = np.intersect1d(_lin(da), _lin(db), assume_unique=True, return_indices=True)
    dev = a._device
    vals = da.values[tensor(ia, device=dev)] * db.values[tensor(ib, device=dev)]
    return _make(da.indices[:, ia], vals, da.shape, True)


def add_into_dense(dense: Tensor, other: SparseTensor, alpha, name: str, dense_add) -> Tensor:
    """``dense.add_(other, alpha=alpha)`` for a sparse ``other``: a scatter-add into
    ``dense``'s buffer, or, when it is recorded (autograd, capture, forward AD) or off the
    CPU, ``dense_add(dense, alpha * other.to_dense())``."""
    d = other._data
    if tuple(dense.shape) != d.shape:
        raise RuntimeError(f"{name}: a sparse tensor of shape {d.shape} cannot be added in "
                           f"place into a dense one of shape {tuple(dense.shape)}")
    a = dense._data
    if ((dense._rg or other._rg) and _mode.grad_enabled) or _mode.tracer is not None \
            or _mode.fwd_ad is not None or type(a) is not np.ndarray \
            or not getattr(a.flags, "writeable", True):
        o = other.to_dense()
        return dense_add(dense, o if alpha == 1 else o * alpha)
    v = d.values._host()
    if alpha != 1:
        v = v * alpha
    if not np.can_cast(np.result_type(a.dtype, v.dtype), a.dtype, "same_kind"):
        raise RuntimeError(f"{name}: result type {v.dtype} can't be cast to the desired "
                           f"output type {a.dtype}")
    if d.indices.shape[1]:
        np.add.at(a, tuple(d.indices), v.astype(a.dtype, copy=False))
    dense._version[0] += 1
    return dense


# Everything else a dense Tensor has raises, naming the op: a method reading ``_data`` as an
# array would otherwise fail with a confusing NumPy error.
_ALLOWED = {"size", "dim", "ndimension", "numel", "nelement", "is_floating_point",
            "is_complex", "get_device", "element_size", "type", "register_hook", "cpu",
            "is_inference", "is_signed", "cuda", "is_shared", "is_pinned"}
_DUNDERS = ("__getitem__", "__setitem__", "__iter__", "__len__", "__float__", "__int__",
            "__bool__", "__index__", "__array__", "__rpow__",
            "__rtruediv__", "__floordiv__", "__rfloordiv__", "__mod__", "__rmod__",
            "__rmatmul__", "__iadd__", "__isub__", "__imul__", "__itruediv__", "__invert__",
            "__and__", "__or__", "__xor__", "__lt__", "__le__", "__gt__", "__ge__",
            "__dlpack__", "__array_interface__")


def _stub(name: str):
    def method(self, *args, **kwargs):
        raise NotImplementedError(f"{name}: not supported for sparse COO tensors (layout "
                                  f"tl.sparse_coo); call .to_dense() first")
    method.__name__ = name
    return method


def _install_stubs() -> None:
    own = set(vars(SparseTensor))
    names = set()
    for klass in Tensor.__mro__[:-2]:       # Tensor and whatever subclasses it adds
        for name, v in vars(klass).items():
            if name.startswith("_") or name in own or name in _ALLOWED:
                continue
            if callable(v) and not isinstance(v, (type, property)):
                names.add(name)
    for name in names:
        setattr(SparseTensor, name, _stub(name))
    for name in _DUNDERS:
        if name not in own:
            setattr(SparseTensor, name, _stub(name))


_install_stubs()


# --- construction ---------------------------------------------------------------------
def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None,
                      requires_grad: bool = False, check_invariants: bool | None = None,
                      is_coalesced: bool | None = None) -> SparseTensor:
    """A sparse COO tensor with ``indices`` (sparse_dim, nnz) and ``values`` (nnz,
    *dense_shape), as ``torch.sparse_coo_tensor``: duplicate indices sum; ``size`` defaults
    to the smallest that holds the indices. A ``values`` tensor with history keeps it
    (gradients reach it); ``requires_grad=True`` makes the sparse tensor a leaf whose
    ``.grad`` is sparse.

    >>> tl.sparse_coo_tensor([[0, 1], [2, 0]], [3., 4.], (2, 3)).to_dense()
    """
    from ..creation import tensor as _t
    del check_invariants
    ind = indices._host() if isinstance(indices, Tensor) else np.asarray(indices)
    if ind.dtype.kind not in "iu" and not (ind.size == 0 and ind.dtype.kind == "f"):
        raise TypeError(f"sparse_coo_tensor: indices must be an integer tensor, got dtype "
                        f"{ind.dtype}")
    it = None
    if _mode.tracer is not None and isinstance(indices, Tensor) \
            and isinstance(indices._data, np.ndarray):
        # under capture the indices stay a graph value (an input, or computed in the
        # function): a replay's nnz and pattern may differ from the trace's
        if size is None:
            raise ValueError("sparse_coo_tensor: under tl.function / tl.capture give size: "
                             "inferred from the indices' values, it would be fixed at the "
                             "trace's")
        it = indices if indices.dtype == np.int64 else indices.astype(np.int64)
        ind = it._data
    else:
        ind = ind.astype(np.int64)
    v = _tensor(values, dtype, device)
    if v.dtype.kind not in "fc" and dtype is None and not isinstance(values, Tensor):
        v = v.astype(np.float32) if v.dtype.kind == "f" else v
    if ind.ndim != 2:
        raise ValueError(f"sparse_coo_tensor: indices must be 2-D (sparse_dim, nnz), got "
                         f"shape {tuple(ind.shape)}")
    if v.ndim == 0:
        raise ValueError("sparse_coo_tensor: values must have at least 1 dim (nnz, ...)")
    if ind.shape[1] != v.shape[0]:
        raise ValueError(f"sparse_coo_tensor: indices hold {ind.shape[1]} entries (shape "
                         f"{tuple(ind.shape)}) but values hold {v.shape[0]} (shape "
                         f"{tuple(v.shape)})")
    sdim = ind.shape[0]
    if size is None:
        lead = tuple(int(m) + 1 for m in ind.max(axis=1)) if ind.shape[1] else (0,) * sdim
        size = lead + tuple(v.shape[1:])
    size = tuple(int(s) for s in size)
    if len(size) != sdim + v.ndim - 1:
        raise ValueError(f"sparse_coo_tensor: size {size} has {len(size)} dims, but indices "
                         f"give {sdim} sparse and values {v.ndim - 1} dense dims")
    if tuple(size[sdim:]) != tuple(v.shape[1:]):
        raise ValueError(f"sparse_coo_tensor: values' dense shape {tuple(v.shape[1:])} does "
                         f"not match size {size}")
    if ind.shape[1]:
        lo, hi = ind.min(axis=1), ind.max(axis=1)
        for k in range(sdim):
            if lo[k] < 0 or hi[k] >= size[k]:
                raise IndexError(f"sparse_coo_tensor: size is inconsistent with indices: for "
                                 f"dim {k}, size is {size[k]} but found index "
                                 f"{hi[k] if hi[k] >= size[k] else lo[k]}")
    if requires_grad:
        if v.dtype.kind not in "fc":
            raise RuntimeError("sparse_coo_tensor: only floating point tensors can require "
                               "gradients")
        v = v.detach().clone().requires_grad_(True)
    coalesced = bool(is_coalesced) if is_coalesced is not None else ind.shape[1] <= 1
    del _t
    return _make(ind, v, size, coalesced, itensor=it)


def to_sparse(x: Tensor, sparse_dim: int | None = None) -> SparseTensor:
    """``x.to_sparse(sparse_dim)``: the nonzero entries of dense ``x`` (with sparse_dim
    < ndim, the nonzero slices), coalesced; differentiable w.r.t. ``x``."""
    if isinstance(x, SparseTensor):
        return x
    from ..creation import tensor
    sdim = x.ndim if sparse_dim is None else int(sparse_dim)
    if not 0 < sdim <= x.ndim:
        raise ValueError(f"to_sparse: sparse_dim must be in [1, {x.ndim}], got {sparse_dim}")
    a = x._host()
    mask = a != 0 if sdim == x.ndim else (a != 0).reshape(a.shape[:sdim] + (-1,)).any(-1)
    ind = np.stack(np.nonzero(mask)).astype(np.int64).reshape(sdim, -1)
    vals = x[tuple(tensor(i) for i in ind)] if ind.shape[1] else \
        x.reshape((-1,) + tuple(x.shape[sdim:]))[:0]
    return _make(ind, vals, tuple(x.shape), True)


def _check_sparse(x, name: str, what: str) -> SparseTensor:
    if not isinstance(x, SparseTensor):
        raise TypeError(f"{name}: {what} must be a sparse COO tensor, got "
                        f"{type(x).__name__}")
    return x


# --- products -------------------------------------------------------------------------
def _index_tensor(d: _COO) -> Tensor:
    """``d.indices`` as a Tensor: the traced one it came from, else a zero-copy wrapper
    (kept, so a captured graph sees one constant)."""
    it = d._it
    if it is not None and it._data is d.indices:
        return it
    it = d._iw
    if it is not None and it._data is d.indices:
        return it
    v = d.values
    if v._device.type == "cpu":
        from ..creation import from_numpy
        it = from_numpy(d.indices)
    else:
        from ..creation import tensor
        it = tensor(d.indices, device=v.device)
    d._iw = it
    return it


def mm(mat1: SparseTensor, mat2: Tensor) -> Tensor:
    """``mat1 @ mat2`` for a 2-D sparse COO ``mat1`` (n, m) and a dense ``mat2`` (m, k) or
    (m,), as ``torch.sparse.mm``: a dense (n, k) result (duplicate entries summed); gradients
    reach ``mat2`` and the sparse operand's values. It records the registry op ``spmm_coo``
    on (indices, values, mat2), so it captures (``tl.function``), exports and lowers to
    ONNX; build the sparse tensor inside a captured function from tensors with
    :func:`sparse_coo_tensor` to make its indices and values graph inputs."""
    a = _check_sparse(mat1, "sparse.mm", "mat1")
    if isinstance(mat2, SparseTensor):
        return to_sparse(mm(a, mat2.to_dense()))
    if not isinstance(mat2, Tensor):
        raise TypeError(f"sparse.mm: mat2 must be a Tensor, got {type(mat2).__name__}")
    if a.sparse_dim() != 2 or a.dense_dim() != 0:
        raise RuntimeError(f"sparse.mm: mat1 must be a 2-D sparse matrix (sparse_dim 2, "
                           f"dense_dim 0), got shape {a.shape} with sparse_dim "
                           f"{a.sparse_dim()}")
    if mat2.ndim not in (1, 2) or mat2.shape[0] != a.shape[1]:
        raise RuntimeError(f"sparse.mm: mat1 and mat2 shapes cannot be multiplied "
                           f"({a.shape[0]}x{a.shape[1]} and "
                           f"{'x'.join(str(s) for s in mat2.shape)})")
    if mat2.dtype != a.dtype:
        raise RuntimeError(f"sparse.mm: expected mat1 and mat2 to have the same dtype, got "
                           f"{a.dtype} and {mat2.dtype}")
    if mat2._device != a._device:
        raise RuntimeError(f"sparse.mm: mat1 is on {a.device}, mat2 on {mat2.device}")
    d = a._data
    return spmm_coo(_index_tensor(d), d.values, mat2, shape=d.shape)


def addmm(mat: Tensor, mat1: SparseTensor, mat2: Tensor, *, beta: float = 1.0,
          alpha: float = 1.0) -> Tensor:
    """``beta * mat + alpha * (mat1 @ mat2)`` with sparse ``mat1``, as
    ``torch.sparse.addmm`` (``beta=0`` ignores ``mat``, NaNs included)."""
    p = mm(mat1, mat2)
    if alpha != 1:
        p = p * alpha
    if beta == 0:
        return p
    return (mat * beta if beta != 1 else mat) + p


def sum(input: SparseTensor, dim=None, dtype=None):
    """``torch.sparse.sum``: all entries (a 0-d dense tensor), or over ``dim``; summing
    every sparse dim gives a dense tensor, else a coalesced sparse one."""
    a = _check_sparse(input, "sparse.sum", "input")
    d = a._data
    v = d.values if dtype is None else d.values.astype(dtype)
    if dim is None:
        return v.sum()
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    nd = len(d.shape)
    dims = sorted({k % nd if -nd <= k < nd else _bad_dim(k, nd) for k in dims})
    sdim = d.indices.shape[0]
    sp_dims = [k for k in dims if k < sdim]
    dn_dims = tuple(k - sdim + 1 for k in dims if k >= sdim)
    if dn_dims:
        v = v.sum(axis=dn_dims)
    keep = [k for k in range(sdim) if k not in sp_dims]
    dshape = tuple(s for k, s in enumerate(d.shape) if k >= sdim and k not in dims)
    if not keep:
        return v.sum(0)
    shape = tuple(d.shape[k] for k in keep) + dshape
    return _make(d.indices[keep], v, shape, False).coalesce()


def sparse_mask(input: Tensor, mask: SparseTensor) -> SparseTensor:
    """``input.sparse_mask(mask)``: a sparse tensor with ``mask``'s indices (its values are
    ignored; duplicates stay, coalesced iff ``mask`` is) holding ``input``'s entries there, as
    PyTorch's ``Tensor.sparse_mask``. ``input`` is dense, or sparse (zero where it has no
    entry); gradients reach ``input``."""
    from ..creation import tensor, zeros
    from ..ops.shape import cat
    m = _check_sparse(mask, "sparse_mask", "mask")
    if not isinstance(input, Tensor):
        raise TypeError(f"sparse_mask: input must be a Tensor, got {type(input).__name__}")
    dm = m._data
    if tuple(input.shape) != dm.shape:
        raise RuntimeError(f"sparse_mask(): operands have incompatible sizes; self has size "
                           f"{list(input.shape)} but mask has size {list(dm.shape)}")
    if not isinstance(input, SparseTensor):
        return _make(dm.indices, _gather(m, input, "sparse_mask"), dm.shape, dm.coalesced)
    if input.sparse_dim() != m.sparse_dim():
        raise RuntimeError(f"sparse_mask(): self and mask must have the same sparse_dim, got "
                           f"{input.sparse_dim()} and {m.sparse_dim()}")
    if input._device != m._device:
        raise RuntimeError(f"sparse_mask: input is on {input.device}, mask on {m.device}")
    c = input.coalesce()
    dc = c._data
    lin, want = _lin(dc), _lin(dm)
    # a mask entry that input lacks reads an appended zero row
    pos = np.searchsorted(lin, want)
    hit = pos < len(lin)
    hit[hit] = lin[pos[hit]] == want[hit]
    pos[~hit] = len(lin)
    v = dc.values
    padded = cat([v, zeros((1,) + tuple(v.shape[1:]), dtype=v.dtype, device=v.device)], axis=0)
    return _make(dm.indices, padded[tensor(pos, device=v.device)], dm.shape, dm.coalesced)


def _dense_sparse_mask(self: Tensor, mask: SparseTensor) -> SparseTensor:
    """``dense.sparse_mask(mask)``: see :func:`sparse_mask`."""
    return sparse_mask(self, mask)


def _softmax(input: SparseTensor, dim: int, dtype, name: str, log: bool) -> SparseTensor:
    from ..creation import tensor, zeros
    from ..ops import elementwise as E
    from ..ops.indexing import index_add
    a = _check_sparse(input, name, "input").coalesce()
    d = a._data
    nd, sdim = len(d.shape), d.indices.shape[0]
    dim = _norm_dim(dim, nd, name)
    v = d.values if dtype is None else d.values.astype(dtype)
    if v.dtype.kind != "f":
        raise RuntimeError(f"{name}: expected a floating point tensor, got {v.dtype}")
    if dim >= sdim:     # a dense dim: every entry along it is specified
        from ..ops.nn_act import log_softmax as dense_log_softmax
        from ..ops.nn_act import softmax as dense_softmax
        out = (dense_log_softmax if log else dense_softmax)(v, dim - sdim + 1)
        return _make(d.indices, out, d.shape, True)
    # the entries that differ only along ``dim`` form a group; unspecified ones are -inf
    rows = [k for k in range(sdim) if k != dim]
    _, grp = np.unique(_lin(d, rows), return_inverse=True)
    grp = grp.reshape(-1)
    n = int(grp.max()) + 1 if grp.size else 0
    dshape = tuple(v.shape[1:])
    m = np.full((n,) + dshape, -np.inf, v._host().dtype)
    np.maximum.at(m, grp, v._host())
    # the shift is a constant (softmax does not depend on it), so it is not differentiated
    gt = tensor(grp, device=v.device)
    z = v - tensor(m, device=v.device)[gt]
    e = E.exp(z)
    tot = index_add(zeros((n,) + dshape, dtype=v.dtype, device=v.device), gt, e, axis=0)[gt]
    out = z - E.log(tot) if log else e / tot
    return _make(d.indices, out, d.shape, True)


def softmax(input: SparseTensor, dim: int, dtype=None) -> SparseTensor:
    """``torch.sparse.softmax``: softmax along ``dim`` over the specified entries only
    (unspecified ones count as -inf, so they stay unspecified); coalesced, differentiable."""
    return _softmax(input, dim, dtype, "sparse.softmax", False)


def log_softmax(input: SparseTensor, dim: int, dtype=None) -> SparseTensor:
    """``torch.sparse.log_softmax``: :func:`softmax`'s log, computed stably."""
    return _softmax(input, dim, dtype, "sparse.log_softmax", True)


def _bad_dim(k: int, nd: int) -> Any:
    raise IndexError(f"sparse.sum: dim {k} is out of range for a tensor of {nd} dims")


def _dense_to_sparse(self: Tensor, sparse_dim: int | None = None) -> SparseTensor:
    return to_sparse(self, sparse_dim)


def _dense_to_dense(self: Tensor, dtype=None, *, masked_grad=None) -> Tensor:
    return self if dtype is None else self.astype(dtype)


# (installed here, after the sparse class took its stubs, as tensorlib/__init__ installs
# ``to_sparse``: the method exists only for sparse masks)
if not hasattr(Tensor, "sparse_mask"):
    Tensor.sparse_mask = _dense_sparse_mask


# --- embedding with a sparse gradient --------------------------------------------------
class _SparseEmbedding(Function):
    """``weight[idx]`` whose weight gradient is a sparse COO tensor: one entry per looked-up
    id (uncoalesced, as PyTorch's ``embedding_sparse_backward``), padding ids left out,
    rows divided by their id's count with ``scale_grad_by_freq``."""

    @staticmethod
    def forward(ctx, weight, idx, padding_idx, scale_grad_by_freq, op):
        from .._core import apply
        ctx.idx, ctx.padding_idx, ctx.freq = idx, padding_idx, scale_grad_by_freq
        ctx.shape = tuple(weight._data.shape)
        return apply(op, weight, idx, padding_idx=padding_idx)

    @staticmethod
    def backward(ctx, g):
        flat = ctx.idx._host().reshape(-1).astype(np.int64, copy=False)
        D = ctx.shape[1]
        vals = g.reshape(-1, D)
        if ctx.freq:
            raise RuntimeError("embedding_backward: scale_grad_by_freq not supported with "
                               "sparse gradients")
        if ctx.padding_idx is not None:
            keep = flat != ctx.padding_idx
            if not keep.all():
                flat = flat[keep]
                vals = vals[_tensor(np.flatnonzero(keep), device=g.device)]
        return _make(flat[None], vals, ctx.shape, flat.size <= 1), None, None, None, None


def embedding_sparse(weight: Tensor, idx: Tensor, padding_idx: int | None,
                     scale_grad_by_freq: bool, op) -> Tensor:
    """The lookup ``op`` (the registry's ``embedding``) with a sparse weight gradient."""
    return _SparseEmbedding.apply(weight, idx, padding_idx, scale_grad_by_freq, op)


def rows_of(g: SparseTensor) -> tuple[np.ndarray, np.ndarray]:
    """The coalesced (row ids, summed rows as a host array) of a sparse gradient whose
    sparse dims come first (optimizers update just these rows)."""
    c = g.coalesce()
    d = c._data
    if d.indices.shape[0] == 1:
        return d.indices[0], d.values._host()
    sshape = d.shape[:d.indices.shape[0]]
    lin = np.ravel_multi_index(tuple(d.indices), sshape)
    return lin, d.values._host()
