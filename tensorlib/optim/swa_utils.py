"""Weight averaging, as ``torch.optim.swa_utils``: Stochastic Weight Averaging (Izmailov et
al.) and exponential moving averages of a model's weights.

>>> swa_model = tl.optim.swa_utils.AveragedModel(model)
>>> ema_model = tl.optim.swa_utils.AveragedModel(
...     model, multi_avg_fn=tl.optim.swa_utils.get_ema_multi_avg_fn(0.999))
>>> swa_sched = tl.optim.swa_utils.SWALR(opt, swa_lr=0.05)
>>> for epoch in range(epochs):
...     train_one_epoch(model, opt)
...     swa_model.update_parameters(model)
...     swa_sched.step()
>>> tl.optim.swa_utils.update_bn(loader, swa_model)
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from copy import deepcopy
from typing import Any

import numpy as np

from .._hyper import hyper_value
from .._tensor import Tensor
from ..autograd.mode import no_grad, state as _mode
from ..nn.module import Module
from .lr_scheduler import LRScheduler
from .optimizer import Optimizer

__all__ = ["AveragedModel", "SWALR", "get_ema_avg_fn", "get_ema_multi_avg_fn",
           "get_swa_avg_fn", "get_swa_multi_avg_fn", "update_bn"]


def _is_float(t: Tensor) -> bool:
    return t.dtype.kind in "fc"


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable:
    """An ``AveragedModel`` ``multi_avg_fn`` keeping the exponential moving average
    ``ema = decay * ema + (1 - decay) * param`` of lists of tensors, in place."""
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in "
                         "[0,1] range.")

    def ema_update(ema_param_list, current_param_list, _) -> None:
        with no_grad():
            for p_ema, p_model in zip(ema_param_list, current_param_list):
                if _is_float(p_ema):
                    p_ema.lerp_(p_model.astype(p_ema.dtype), 1 - decay)
                else:
                    p_ema.copy_(p_ema * decay + p_model * (1 - decay))
    return ema_update


def get_swa_multi_avg_fn() -> Callable:
    """An ``AveragedModel`` ``multi_avg_fn`` keeping the running (equal-weight) average of
    lists of tensors, in place."""
    def swa_update(averaged_param_list, current_param_list, num_averaged) -> None:
        with no_grad():
            for p_avg, p_model in zip(averaged_param_list, current_param_list):
                p_avg.copy_(_swa(p_avg, p_model, num_averaged))
    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> Callable:
    """An ``AveragedModel`` ``avg_fn``: ``decay * ema + (1 - decay) * param``."""
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in "
                         "[0,1] range.")

    def ema_update(ema_param, current_param, num_averaged):
        with no_grad():
            return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn() -> Callable:
    """An ``AveragedModel`` ``avg_fn``: ``avg + (param - avg) / (num_averaged + 1)``."""
    def swa_update(averaged_param, current_param, num_averaged):
        with no_grad():
            return _swa(averaged_param, current_param, num_averaged)
    return swa_update


def _swa(avg: Tensor, cur: Tensor, n) -> Tensor:
    if isinstance(n, Tensor):
        n = n.astype(avg.dtype if _is_float(avg) else np.float32)
    return avg + (cur - avg) / (n + 1)


class AveragedModel(Module):
    """A copy of ``model`` whose parameters (and, with ``use_buffers``, buffers) are the
    average of the values they take in ``model`` at each :meth:`update_parameters` call:
    the running equal-weight mean (SWA) by default, or what ``avg_fn(avg, param,
    num_averaged)`` returns, or what ``multi_avg_fn(avg_list, param_list, num_averaged)``
    writes in place (e.g. :func:`get_ema_multi_avg_fn`). Without ``use_buffers`` the
    buffers are copied from ``model`` at each update (recompute batch-norm statistics with
    :func:`update_bn`). Calling it runs the averaged copy. As PyTorch's.
    """

    def __init__(self, model: Module, device=None, avg_fn: Callable | None = None,
                 multi_avg_fn: Callable | None = None, use_buffers: bool = False) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("AveragedModel: give only one of avg_fn and multi_avg_fn")
        from ..creation import tensor
        self.module = deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", tensor(0, dtype=np.int64, device=device))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _average(self, avg: list[Tensor], cur: list[Tensor]) -> None:
        n_averaged = self.n_averaged
        if self.avg_fn is not None:
            for a, c in zip(avg, cur):
                a.copy_(self.avg_fn(a, c, n_averaged.to(a.device)))
            return
        fn = self.multi_avg_fn
        for (dev, _), idx in _groups(avg).items():
            a_list, c_list = [avg[i] for i in idx], [cur[i] for i in idx]
            if fn is not None:
                fn(a_list, c_list, n_averaged.to(dev))
            else:
                for a, c in zip(a_list, c_list):
                    a.copy_(_swa(a, c, n_averaged.to(dev)))

    def update_parameters(self, model: Module) -> None:
        """Average ``model``'s current parameters (and buffers, with ``use_buffers``) in."""
        if self.use_buffers:
            self_params = list(itertools.chain(self.module.parameters(),
                                               self.module.buffers()))
            model_params = list(itertools.chain(model.parameters(), model.buffers()))
        else:
            self_params = list(self.module.parameters())
            model_params = list(model.parameters())
        if len(self_params) != len(model_params):
            raise ValueError(f"AveragedModel.update_parameters: the model has "
                             f"{len(model_params)} tensors to average, the averaged copy "
                             f"{len(self_params)}; pass the model this one was made from")
        with no_grad():
            avg = [p.detach() for p in self_params]
            cur = [p.detach().to(a.device) for p, a in zip(model_params, avg)]
            if _mode.tracer is None:
                first = int(self.n_averaged._host()) == 0
                if first:
                    for a, c in zip(avg, cur):
                        a.copy_(c)
                else:
                    self._average(avg, cur)
            else:
                # captured (an EMA update inside a tl.function training step): no Python
                # branch on the count, which changes every replay; the first update's
                # average is computed and then replaced by the copy
                from ..ops.elementwise import where
                first = self.n_averaged == 0
                self._average(avg, cur)
                for a, c in zip(avg, cur):
                    a.copy_(where(first, c, a))
            if not self.use_buffers:
                # the buffers follow the source model
                for b_swa, b_model in zip(self.module.buffers(), model.buffers()):
                    b_swa.copy_(b_model.detach().to(b_swa.device))
            self.n_averaged.add_(1)


def _groups(tensors: list[Tensor]) -> dict:
    """Indices of ``tensors`` grouped by (device, dtype), in first-seen order (as PyTorch
    hands a ``multi_avg_fn`` one group at a time)."""
    out: dict = {}
    for i, t in enumerate(tensors):
        out.setdefault((t.device, t.dtype), []).append(i)
    return out


def update_bn(loader: Iterable, model: Module, device=None) -> None:
    """Recompute the running statistics of every batch-norm layer of ``model`` with one pass
    over ``loader`` (a batch is a tensor, or a list/tuple whose first item is the input),
    as the plain average over the batches (momentum None); the modes and momenta are
    restored afterwards. As PyTorch's ``update_bn``."""
    from ..nn.normalization import _BatchNorm, _InstanceNorm
    momenta: dict = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm) and not isinstance(module, _InstanceNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    try:
        with no_grad():
            for inp in loader:
                if isinstance(inp, (list, tuple)):
                    inp = inp[0]
                if device is not None:
                    inp = inp.to(device)
                model(inp)
    finally:
        for module, momentum in momenta.items():
            module.momentum = momentum
        model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's learning rate from its current value to ``swa_lr`` (one number,
    or one per group) over ``anneal_epochs`` steps, cosine (``'cos'``) or linear
    (``'linear'``), then hold it there. Like PyTorch's, it starts from whatever rate the
    groups have when it is made (it can follow another schedule), so each step's rate is
    computed from the previous one rather than in closed form."""

    def __init__(self, optimizer: Optimizer, swa_lr, anneal_epochs: int = 10,
                 anneal_strategy: str = "cos", last_epoch: int = -1):
        groups = optimizer.param_groups
        if isinstance(swa_lr, (list, tuple)):
            if len(swa_lr) != len(groups):
                raise ValueError(f"swa_lr must have the same length as optimizer.param_groups: "
                                 f"swa_lr has {len(swa_lr)} values, optimizer.param_groups "
                                 f"has {len(groups)}")
            swa_lrs = [float(v) for v in swa_lr]
        else:
            swa_lrs = [float(swa_lr)] * len(groups)
        for v, g in zip(swa_lrs, groups):
            g["swa_lr"] = v
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError("anneal_strategy must be one of 'cos' or 'linear', instead got "
                             f"{anneal_strategy}")
        self._anneal_strategy = anneal_strategy
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got "
                             f"{anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        self._step_count = 0
        super().__init__(optimizer, last_epoch)

    def anneal_func(self, t: float) -> float:
        if self._anneal_strategy == "cos":
            return (1 - math.cos(math.pi * t)) / 2
        return t

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def step(self) -> None:
        self._step_count += 1
        super().step()

    def lr_at(self, epoch: int) -> list[float]:
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        groups = self.optimizer.param_groups
        prev_lrs = [self._get_initial_lr(hyper_value(g["lr"]), g["swa_lr"], prev_alpha)
                    for g in groups]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(groups, prev_lrs)]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}
