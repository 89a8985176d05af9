"""``SparseAdam``: Adam that moves only the rows a step touched (embedding tables).

PyTorch's takes the sparse gradients of ``nn.Embedding(sparse=True)``; tensorlib's gradients
are dense, so a row counts as touched when its gradient row is not all zeros (a looked-up
row whose gradient is exactly zero is the one difference). Untouched rows keep their
parameters and moment estimates, as PyTorch's: dense Adam would keep moving them with
their old momentum.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

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
