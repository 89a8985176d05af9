"""``spmm_coo``: a 2-D sparse COO matrix (indices, values) times a dense matrix or vector.

The op ``tl.sparse.mm`` / ``torch.sparse.mm`` / ``A @ X`` record, so eager, the tape, graph
capture, export and ONNX read one entry. The sparse operand enters as two ordinary tensors
(``indices`` (2, nnz) int64, ``values`` (nnz,)) with its shape as an attribute, so a graph
holds nnz as a dynamic dim and a replay takes another adjacency of the same shape.
"""
from __future__ import annotations

import weakref

import numpy as np

from .._core import apply
from .registry import OpDef, register

# indices array id -> (weakref to it, transpose, (order, indptr, cols)): the CSR structure
# depends on the indices only, so a GNN's fixed adjacency sorts once. Only read-only arrays
# are cached (tensorlib.sparse freezes the indices it owns): a writeable one could change
# under the same id.
_STRUCT: dict[tuple[int, bool], tuple] = {}


def _rc(indices, transpose: bool):
    return (indices[1], indices[0]) if transpose else (indices[0], indices[1])


def _out_rows(shape, transpose: bool) -> tuple[int, int]:
    """(rows of the product, rows of the dense operand)."""
    return (int(shape[1]), int(shape[0])) if transpose else (int(shape[0]), int(shape[1]))


def _check_bounds(r, c, n: int, m: int) -> None:
    if r.size and (int(r.min()) < 0 or int(r.max()) >= n or int(c.min()) < 0
                   or int(c.max()) >= m):
        raise IndexError(f"spmm_coo: indices out of range for a sparse matrix of shape "
                         f"({n}, {m}): rows in [{int(r.min())}, {int(r.max())}], columns in "
                         f"[{int(c.min())}, {int(c.max())}]")


def _structure(indices: np.ndarray, transpose: bool, n: int, m: int):
    key = (id(indices), transpose)
    hit = _STRUCT.get(key)
    if hit is not None and hit[0]() is indices:
        return hit[2]
    r, c = _rc(indices, transpose)
    _check_bounds(r, c, n, m)
    if r.size < 2 or bool(np.all(r[1:] >= r[:-1])):
        order, cols = None, np.ascontiguousarray(c)
    else:
        order = np.argsort(r, kind="stable")
        cols = c[order]
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
    st = (order, indptr, cols)
    if not indices.flags.writeable:
        if len(_STRUCT) > 64:
            _STRUCT.clear()
        _STRUCT[key] = (weakref.ref(indices, lambda _r, k=key, d=_STRUCT: d.pop(k, None)),
                        transpose, st)
    return st


def _spmm_cpu(indices, values, dense, *, shape, transpose=False):
    n, m = _out_rows(shape, transpose)
    if indices.dtype != np.int64:
        indices = indices.astype(np.int64)
    from . import _scipy
    sp = _scipy.sparse()
    dt = np.result_type(values.dtype, dense.dtype)
    if sp is None:
        r, c = _rc(indices, transpose)
        _check_bounds(r, c, n, m)
        out = np.zeros((n,) + dense.shape[1:], dt)
        np.add.at(out, r, values.reshape((-1,) + (1,) * (dense.ndim - 1)) * dense[c])
        return out
    order, indptr, cols = _structure(indices, transpose, n, m)
    data = values if order is None else values[order]
    mat = sp.csr_matrix((data, cols, indptr), shape=(n, m))
    return np.asarray(mat @ dense).astype(dt, copy=False)


def _spmm_fwd(xp, indices, values, dense, *, shape, transpose=False):
    # (other backends: a scatter-add of the gathered rows)
    n, _ = _out_rows(shape, transpose)
    r, c = _rc(indices.astype(xp.int64), transpose)
    out = xp.zeros((n,) + tuple(dense.shape[1:]), xp.result_type(values.dtype, dense.dtype))
    xp.add.at(out, r, values.reshape((-1,) + (1,) * (dense.ndim - 1)) * dense[c])
    return out


def _spmm_infer(ind, val, dense, *, shape, transpose=False):
    (ishape, idt), (vshape, vdt), (dshape, ddt) = ind, val, dense
    if len(ishape) != 2 or ishape[0] != 2 or np.dtype(idt).kind not in "iu":
        raise ValueError(f"spmm_coo: indices must be an integer (2, nnz) tensor, got "
                         f"{np.dtype(idt)} of shape {tuple(ishape)}")
    if len(vshape) != 1 or None not in (vshape[0], ishape[1]) and vshape[0] != ishape[1]:
        raise ValueError(f"spmm_coo: values must be (nnz,) = ({ishape[1]},), got "
                         f"{tuple(vshape)}")
    n, m = _out_rows(shape, transpose)
    if len(dshape) not in (1, 2) or dshape[0] is not None and dshape[0] != m:
        raise ValueError(f"spmm_coo: a sparse ({shape[0]}, {shape[1]}) matrix"
                         f"{'.T' if transpose else ''} cannot multiply a dense "
                         f"{tuple(dshape)}")
    return (n,) + tuple(dshape[1:]), np.result_type(vdt, ddt)


def _spmm_cost(ins, outs, **attrs):
    nnz = ins[0][0][1] or 1
    f = 1 if len(ins[2][0]) == 1 else (ins[2][0][1] or 1)
    item = np.dtype(outs[0][1] if isinstance(outs, list) else outs[1]).itemsize
    return 2 * nnz * f, nnz * (16 + item) + 2 * nnz * f * item


def _spmm_vjp(node, g):
    from .indexing import take
    indices, values, dense = node.inputs
    shape, tr = node.attrs["shape"], node.attrs.get("transpose", False)
    gv = gx = None
    if dense._rg:
        # A^T g: the same op, transposed (itself differentiable: grad of grad works)
        gx = spmm_coo(indices, values, g, shape=shape, transpose=not tr)
    if values._rg:
        # d(A X)/dA_ij = g_i . X_j at the stored entries (PyTorch's sparse_mask of g X^T)
        r, c = (indices[1], indices[0]) if tr else (indices[0], indices[1])
        prod = take(g, r, 0) * take(dense, c, 0)
        gv = prod.sum(-1) if dense.ndim == 2 else prod
    return None, gv, gx


SPMM_COO = register(OpDef(
    "spmm_coo", _spmm_fwd, kernels={"cpu": _spmm_cpu}, vjp=_spmm_vjp, infer=_spmm_infer,
    cost=_spmm_cost, saves={0: (1, 2), 1: (2,), 2: (1,)},
    doc="A 2-D sparse COO matrix of shape ``shape`` (indices (2, nnz), values (nnz,); "
        "duplicates summed) times a dense (m, k) or (m,) tensor, as torch.sparse.mm; "
        "``transpose=True`` multiplies by the transposed matrix. Differentiable in values "
        "and dense (grad of grad too), not in indices."))


def spmm_coo(indices, values, dense, *, shape, transpose: bool = False):
    """``A @ dense`` (``A.T @ dense`` with ``transpose``) for the sparse COO matrix ``A`` of
    ``shape`` with ``indices`` (2, nnz) and ``values`` (nnz,), duplicates summed."""
    return apply(SPMM_COO, indices, values, dense,
                 shape=(int(shape[0]), int(shape[1])), transpose=bool(transpose))
