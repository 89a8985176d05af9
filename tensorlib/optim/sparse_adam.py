"""``SparseAdam``: Adam that moves only the rows a step touched (embedding tables).

It takes the sparse COO gradients of ``nn.Embedding(sparse=True)`` and, as PyTorch's,
touches only their rows (coalesced): the step costs O(rows looked up), not O(table). A
dense gradient raises, as PyTorch's; under graph capture, where ``nn.Embedding(sparse=True)``
gives dense gradients, it is taken: a row counts as touched when its gradient row is not all
zeros. Untouched rows keep their
parameters and moment estimates, as PyTorch's: dense Adam would keep moving them with
their old momentum.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .. import creation
from .._tensor import Tensor
from ..ops.elementwise import where
from .adam import check_adam_hyperparameters
from .optimizer import Optimizer


class SparseAdam(Optimizer):
    """Lazy Adam for embedding tables, as ``torch.optim.SparseAdam``: each step updates
    the rows with a nonzero gradient (and their moments), with bias corrections from the
    parameter's step count.

    >>> emb = tl.nn.Embedding(10_000, 32)
    >>> opt = tl.optim.SparseAdam(emb.parameters(), lr=1e-3)
    """

    _sparse_grads = "sparse"

    def __init__(self, params: Iterable, lr: float = 1e-3, betas=(0.9, 0.999),
                 eps: float = 1e-8, maximize: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, maximize=maximize))

    def _validate(self, group):
        super()._validate(group)
        check_adam_hyperparameters("SparseAdam", group)

    def _update(self, group):
        lr, eps = self._lr(group), group["eps"]
        b1, b2 = (self._hyper(b) for b in group["betas"])

        def init(p):
            return {"exp_avg": creation.zeros_like(p), "exp_avg_sq": creation.zeros_like(p)}
        for p, g, st in self._with_grads(group, init):
            step = self._count_step(st)
            if g.is_sparse:
                _sparse_step(p, g, st, float(lr), float(b1), float(b2), float(eps), step)
                continue
            # a row is touched when its gradient row has a nonzero (rows: the first dim)
            touched = (g != 0).reshape((g.shape[0], -1)).any(axis=1) if g.ndim > 1 \
                else g != 0
            touched = touched.reshape((-1,) + (1,) * (g.ndim - 1)) if g.ndim > 1 else touched
            m, v = st["exp_avg"], st["exp_avg_sq"]
            m_new = m + (g - m) * (1 - b1)
            v_new = v + (g * g - v) * (1 - b2)
            if isinstance(step, Tensor):
                c1, c2 = 1 - b1 ** step, 1 - b2 ** step
                size = (lr * c2.sqrt() / c1).astype(p.dtype)
            else:
                size = lr * math.sqrt(1 - b2 ** step) / (1 - b1 ** step)
            m.copy_(where(touched, m_new, m))
            v.copy_(where(touched, v_new, v))
            p.sub_(where(touched, size * m_new / (v_new.sqrt() + eps), 0.0))


def _sparse_step(p: Tensor, g, st: dict, lr: float, b1: float, b2: float, eps: float,
                 step) -> None:
    """PyTorch's ``sparse_adam`` on the coalesced rows of ``g``, in its order of operations
    (the moments' new rows are old + update, as its ``add_`` of a sparse update)."""
    from ..sparse import rows_of
    rows, gv = rows_of(g)
    if gv.size == 0:
        return
    step = float(step)
    dense = tuple(p.shape[g.sparse_dim():])
    P = p._data.reshape((-1,) + dense)
    M = st["exp_avg"]._data.reshape((-1,) + dense)
    V = st["exp_avg_sq"]._data.reshape((-1,) + dense)
    gv = gv.astype(P.dtype, copy=False)
    old_m, old_v = M[rows], V[rows]
    upd_m = (gv - old_m) * (1 - b1)
    upd_v = (gv * gv - old_v) * (1 - b2)
    M[rows] = old_m + upd_m
    V[rows] = old_v + upd_v
    numer = upd_m + old_m
    denom = np.sqrt(upd_v + old_v) + eps
    size = lr * math.sqrt(1 - b2 ** step) / (1 - b1 ** step)
    P[rows] += -size * (numer / denom)
    for t in (p, st["exp_avg"], st["exp_avg_sq"]):
        t._version[0] += 1
