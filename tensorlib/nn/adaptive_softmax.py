"""PyTorch's ``nn.AdaptiveLogSoftmaxWithLoss`` (Grave et al., "Efficient softmax
approximation for GPUs", https://arxiv.org/abs/1609.04309).

The parameters have PyTorch's names and shapes (``head``: Linear(in_features, shortlist +
n_clusters); ``tail``: ModuleList of Sequential(Linear(in, hsz), Linear(hsz, osz)), all
without bias but the head's optional one), so a PyTorch state_dict loads as it is.
"""
from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence

import numpy as np

from .._tensor import Tensor
from ..autograd.mode import state
from ..creation import from_numpy, zeros
from ..errors import InputError, ShapeError
from ..ops import elementwise as E
from ..ops._util import to_tensor
from ..ops.indexing import _strict_take_along_axis
from ..ops.nn_act import log_softmax
from ..ops.reduction import argmax
from ..ops.shape import concatenate
from .containers import ModuleList, Sequential
from .linear import Linear
from .module import Module

__all__ = ["AdaptiveLogSoftmaxWithLoss"]

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


def _rows(col: Tensor, index: Tensor) -> Tensor:
    """``col[i, index[i]]`` for a (B, n) ``col`` and (B,) ``index``, as (B,)."""
    return _strict_take_along_axis(col, index.reshape((-1, 1)), axis=1).reshape((-1,))


class AdaptiveLogSoftmaxWithLoss(Module):
    """Adaptive log-softmax over ``n_classes`` split by ``cutoffs`` into a shortlist (scored by
    the head) and tail clusters (each a low-rank projection of ``in_features`` to
    ``in_features // div_value ** (i + 1)`` features), as ``torch.nn.AdaptiveLogSoftmaxWithLoss``.

    ``forward(input, target)`` takes (B, in_features) and (B,) class indices (or (in_features,)
    and a 0-d target) and returns the namedtuple ``(output, loss)``: each row's log-probability
    of its target, and the mean negative log-likelihood. :meth:`log_prob` gives the full
    (B, n_classes) log-probabilities, :meth:`predict` the most likely class.

    Eagerly, each cluster's projection runs on only the rows whose target lies in it (the
    point of the method); under graph capture it runs on all rows and is masked, and targets
    out of range make the replay raise (in the head's gather) instead of PyTorch's message.
    """

    def __init__(self, in_features: int, n_classes: int, cutoffs: Sequence[int],
                 div_value: float = 4.0, head_bias: bool = False, device=None,
                 dtype=None) -> None:
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError("cutoffs should be a sequence of unique, positive integers sorted "
                             "in an increasing order, where each value is between 1 and "
                             "n_classes-1")
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = [int(c) for c in cutoffs] + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        kw = {"device": device, "dtype": dtype}
        self.head = Linear(in_features, self.head_size, bias=head_bias, **kw)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, bias=False, **kw),
                                        Linear(hsz, osz, bias=False, **kw)))

    def reset_parameters(self) -> None:
        """Draw every weight again, as at construction (PyTorch's Linear init)."""
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def _check(self, input: Tensor, target: Tensor) -> bool:
        if target.ndim == 1:
            if input.shape[0] != target.shape[0]:
                raise ShapeError("Input and target should have the same size in the batch "
                                 "dimension.")
            if input.ndim != 2:
                raise ShapeError("1D target tensor expects 2D input tensors, but found inputs "
                                 f"with size {tuple(input.shape)}")
        elif target.ndim == 0:
            if input.ndim != 1:
                raise ShapeError("0D target tensor expects 1D input tensors, but found inputs "
                                 f"with size {tuple(input.shape)}")
        else:
            raise ShapeError("0D or 1D target tensor expected, multi-target not supported")
        if target.dtype.kind not in "iu":
            raise TypeError(f"AdaptiveLogSoftmaxWithLoss: target must be an integer tensor of "
                            f"class indices, got {target.dtype}")
        return target.ndim > 0

    def forward(self, input: Tensor, target: Tensor) -> _ASMoutput:
        """``(output, loss)``: the log-probability of each row's target and their mean
        negative (PyTorch's semantics; a 0-d target gives a 0-d output)."""
        input, target = to_tensor(input), to_tensor(target)
        batched = self._check(input, target)
        x = input if batched else input.unsqueeze(0)
        t = target if batched else target.unsqueeze(0)
        head_lp = log_softmax(self.head(x), dim=1)
        out = self._traced(x, t, head_lp) if state.tracer is not None else \
            self._eager(x, t, head_lp)
        loss = (-out).mean()
        return _ASMoutput(out if batched else out.squeeze(0), loss)

    def _eager(self, x: Tensor, t: Tensor, head_lp: Tensor) -> Tensor:
        tv = t.detach().cpu().numpy().astype(np.int64)
        if tv.size and (tv.min() < 0 or tv.max() >= self.n_classes):
            raise InputError(f"Target values should be in [0, {self.n_classes - 1}], but "
                             f"values in range [{tv.min()}, {tv.max()}] were found. ")
        cluster = np.searchsorted(np.asarray(self.cutoffs), tv, side="right")   # 0: shortlist
        gather = np.where(cluster == 0, tv, self.shortlist_size + cluster - 1)
        out = _rows(head_lp, from_numpy(gather).to(x.device))
        order, pieces = [np.flatnonzero(cluster == 0)], []
        for i in range(1, self.n_clusters + 1):
            rows = np.flatnonzero(cluster == i)
            if rows.size == 0:
                continue
            sub = x[from_numpy(rows).to(x.device)]
            lp = log_softmax(self.tail[i - 1](sub), dim=1)
            rel = from_numpy(tv[rows] - self.cutoffs[i - 1]).to(x.device)
            order.append(rows)
            pieces.append(_rows(lp, rel))
        if not pieces:
            return out
        # the clusters' terms, put back in row order (rows of the shortlist add 0)
        pieces.insert(0, zeros(order[0].size, dtype=out.dtype, device=x.device))
        inverse = np.argsort(np.concatenate(order), kind="stable")
        return concatenate(pieces)[from_numpy(inverse).to(x.device)] + out

    def _traced(self, x: Tensor, t: Tensor, head_lp: Tensor) -> Tensor:
        # no value can be read: every cluster runs on every row and is masked
        gather = t
        for i in range(1, self.n_clusters + 1):
            inside = (t >= self.cutoffs[i - 1]) & (t < self.cutoffs[i])
            gather = E.where(inside, self.shortlist_size + i - 1, gather)
        # a target past n_classes - 1 (or below 0) stays out of the head's range: gather raises
        gather = E.where(t >= self.n_classes, self.head_size + t, gather)
        out = _rows(head_lp, gather)
        for i in range(1, self.n_clusters + 1):
            lo, hi = self.cutoffs[i - 1], self.cutoffs[i]
            inside = (t >= lo) & (t < hi)
            lp = log_softmax(self.tail[i - 1](x), dim=1)
            rel = E.where(inside, t - lo, 0)
            out = out + E.where(inside, _rows(lp, rel), 0.0)
        return out

    def _full_log_prob(self, x: Tensor, head_out: Tensor) -> Tensor:
        head_lp = log_softmax(head_out, dim=1)
        parts = [head_lp[:, :self.shortlist_size]]
        for i in range(self.n_clusters):
            lp = log_softmax(self.tail[i](x), dim=1)
            parts.append(lp + head_lp[:, self.shortlist_size + i:self.shortlist_size + i + 1])
        return concatenate(parts, axis=1)

    def log_prob(self, input: Tensor) -> Tensor:
        """The log-probabilities of all ``n_classes`` for each row of (B, in_features)."""
        x = to_tensor(input)
        return self._full_log_prob(x, self.head(x))

    def predict(self, input: Tensor) -> Tensor:
        """The most likely class of each row of (B, in_features) (as ``argmax(log_prob)``,
        computed only for the rows whose head's best is a cluster)."""
        x = to_tensor(input)
        head_out = self.head(x)
        best = argmax(head_out, dim=1)
        if state.tracer is not None:
            full = argmax(self._full_log_prob(x, head_out), dim=1)
            return E.where(best >= self.shortlist_size, full, best)
        far = np.flatnonzero(best.numpy() >= self.shortlist_size)
        if far.size == 0:
            return best
        if far.size == best.shape[0]:
            return argmax(self._full_log_prob(x, head_out), dim=1)
        rows = from_numpy(far).to(x.device)
        sub = argmax(self._full_log_prob(x[rows], head_out[rows]), dim=1)
        out = best.numpy().copy()
        out[far] = sub.numpy()
        return from_numpy(out).to(x.device)
