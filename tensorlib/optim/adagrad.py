"""Adagrad with PyTorch's sparse-gradient update (``nn.Embedding(sparse=True)``)."""
from __future__ import annotations

import numpy as np

from .rmsprop import Adagrad as _DenseAdagrad, _initial_sum


class Adagrad(_DenseAdagrad):
    """Adagrad (``torch.optim.Adagrad``); a sparse COO gradient updates only its rows:
    ``sum[rows] += g^2``, ``p[rows] -= clr * g / (sqrt(sum[rows]) + eps)`` on the coalesced
    gradient, as PyTorch's. ``weight_decay`` with a sparse gradient raises, as there."""

    _sparse_grads = True

    def _update(self, group):
        sparse = [p for p in group["params"] if p.grad is not None and p.grad.is_sparse]
        if not sparse:
            return super()._update(group)
        dense = [p for p in group["params"] if p.grad is not None and not p.grad.is_sparse]
        if dense:
            super()._update({**group, "params": dense})
        lr, decay, eps = self._lr(group), group["lr_decay"], group["eps"]

        def init(p):
            return {"sum": _initial_sum(p, group["initial_accumulator_value"])}
        for p, g, st in self._with_grads(group, init, sparse):
            step = float(self._count_step(st))
            if group["weight_decay"]:
                raise RuntimeError("weight_decay option is not compatible with sparse "
                                   "gradients")
            clr = float(lr) / (1.0 + (step - 1) * decay)
            _sparse_step(p, g, st["sum"], clr, float(eps))


def _sparse_step(p, g, state_sum, clr: float, eps: float) -> None:
    from ..sparse import rows_of
    rows, gv = rows_of(g)
    if gv.size == 0:
        return
    dense = tuple(p.shape[g.sparse_dim():])
    P = p._data.reshape((-1,) + dense)
    S = state_sum._data.reshape((-1,) + dense)
    gv = gv.astype(P.dtype, copy=False)
    s = S[rows] + gv * gv
    S[rows] = s
    P[rows] += (gv / (np.sqrt(s) + eps)) * (-clr)
    p._version[0] += 1
    state_sum._version[0] += 1
