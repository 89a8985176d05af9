"""Cases for ``spmm_coo`` (tensorlib/ops/sparse_mm.py): a sparse COO matrix (indices, values)
times a dense matrix or vector, duplicates summed; PyTorch parity, capture and ONNX are in
tests/sparse/test_sparse_capture.py."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tensorlib.ops.sparse_mm import spmm_coo

from . import add, arr


def _inputs(vector: bool, transpose: bool):
    def draw_inputs(draw):
        n, m = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        nnz = draw(st.integers(0, 7))
        rng = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))
        ind = np.stack([rng.integers(0, n, nnz), rng.integers(0, m, nnz)]).astype(np.int64)
        k = draw(st.integers(1, 3))
        rows_in = n if transpose else m
        dense = arr(draw, (rows_in,) if vector else (rows_in, k))
        return [ind, arr(draw, (nnz,)), dense], {"shape": (n, m), "transpose": transpose}
    return draw_inputs


def _ref(ind, vals, dense, *, shape, transpose):
    a = np.zeros(shape, np.result_type(vals, dense))
    np.add.at(a, (ind[0], ind[1]), vals)
    return (a.T if transpose else a) @ dense


for _vec in (False, True):
    for _tr in (False, True):
        add("spmm_coo", lambda i, v, x, **kw: spmm_coo(i, v, x, **kw), _inputs(_vec, _tr), _ref,
            diff=(1, 2), name=("vector" if _vec else "matrix") + ("-t" if _tr else ""))
