"""Learning-rate schedules, stepped once per epoch (or per iteration) after ``opt.step()``.

As in PyTorch, ``step()`` updates each group's *current* ``lr`` (the chainable form:
``StepLR`` multiplies it by ``gamma`` at each ``step_size``), so several schedulers can be
stepped back to back on one optimizer and a manual ``group['lr'] *= 0.1`` carries on;
``step(epoch)`` (deprecated, as in PyTorch) jumps to ``epoch`` with the closed form of the
initial rates where the scheduler has one. A custom scheduler subclasses
:class:`LRScheduler` and implements ``get_lr()`` from ``self.last_epoch`` and
``self.base_lrs``.
"""
from __future__ import annotations

import bisect
import math
import types
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .._hyper import hyper_value
from .._tensor import Tensor
from ..autograd.mode import no_grad
from .optimizer import Optimizer

EPOCH_DEPRECATION_WARNING = (
    "The epoch parameter in `scheduler.step()` was not necessary and is being "
    "deprecated where possible. Please use `scheduler.step()` to step the "
    "scheduler. During the deprecation, if epoch is different from None, the "
    "closed form is used instead of the new chainable form, where available. "
    "Please open an issue if you are unable to replicate your use case: "
    "https://github.com/pytorch/pytorch/issues/new/choose."
)


def _set_lr(group: dict, lr) -> None:
    lr = hyper_value(lr)
    if isinstance(group["lr"], Tensor):    # in place: a captured step reads this tensor
        with no_grad():
            group["lr"].fill_(lr)
    else:
        group["lr"] = lr


def _group_lrs(optimizer: Optimizer) -> list[float]:
    """The groups' current learning rates as numbers (a tensor one's value)."""
    return [hyper_value(g["lr"]) for g in optimizer.param_groups]


def _last_lrs(optimizer: Optimizer) -> list:
    """What ``get_last_lr`` returns, as PyTorch: each group's ``lr`` with its type, a tensor
    one as a copy (never the group's own tensor, which a caller could change in place)."""
    return [g["lr"].detach().clone() if isinstance(g["lr"], Tensor) else g["lr"]
            for g in optimizer.param_groups]


def _set_momentum(g: dict, m: float) -> None:
    """A param group's momentum: Adam's first beta, or SGD's/RMSprop's ``momentum``
    (OneCycleLR and CyclicLR cycle it against the learning rate). A tensor one is written in
    place; a group with a tensor learning rate gets a tensor momentum too, so that a
    captured step reads both each replay instead of retracing when the number changes."""
    betas = "betas" in g
    cur = g["betas"][0] if betas else g["momentum"]
    if not isinstance(cur, Tensor) and isinstance(g.get("lr"), Tensor):
        from ..creation import tensor
        cur = tensor(float(m), dtype=g["lr"].dtype, device=g["lr"].device)
    if isinstance(cur, Tensor):
        with no_grad():
            cur.fill_(m)
        m = cur
    if betas:
        if g["betas"][0] is not m:      # the same tuple while its tensor changes in place
            g["betas"] = (m, g["betas"][1])
    else:
        g["momentum"] = m


def _warn_get_lr_called_within_step(sched: LRScheduler) -> None:
    if not sched._get_lr_called_within_step:
        warnings.warn("To get the last learning rate computed by the scheduler, please use "
                      "`get_last_lr()`.", UserWarning, stacklevel=3)


def _lambdas(name: str, optimizer: Optimizer, lr_lambda) -> list:
    n = len(optimizer.param_groups)
    if not isinstance(lr_lambda, (list, tuple)):
        return [lr_lambda] * n
    if len(lr_lambda) != n:
        raise ValueError(f"{name}: expected {n} lr_lambdas (one per param group), got "
                         f"{len(lr_lambda)}")
    return list(lr_lambda)


class LRScheduler:
    """Base class of the learning-rate schedulers (PyTorch's ``LRScheduler``).

    A subclass implements ``get_lr()``: the next learning rate of each param group, from
    ``self.last_epoch`` (0 on the construction's own step) and ``self.base_lrs`` (the
    groups' ``initial_lr``), or from the groups' current ``lr`` (the chainable form); it
    may add ``_get_closed_form_lr()``, used by the deprecated ``step(epoch)``. Making a
    scheduler steps it once (``last_epoch`` -1 -> 0), which sets the first rate.
    """

    _get_lr_called_within_step: bool = False
    _is_initial: bool = False

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for g in optimizer.param_groups:
                g.setdefault("initial_lr", hyper_value(g["lr"]))
        else:
            for i, g in enumerate(optimizer.param_groups):
                if "initial_lr" not in g:
                    raise KeyError(f"{type(self).__name__}: param group {i} has no 'initial_lr'"
                                   "; resume with last_epoch=-1 or load a state dict")
        self.base_lrs: list[float] = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _legacy(self) -> bool:
        # tensorlib's former protocol (``lr_at(epoch)``, still used by swa_utils.SWALR, which
        # counts its own ``_step_count``): such a subclass keeps its counter to itself
        return type(self).lr_at is not LRScheduler.lr_at

    def _initial_step(self) -> None:
        if not self._legacy():
            self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def lr_at(self, epoch: int) -> list[float]:
        """Deprecated tensorlib hook: implement :meth:`get_lr` instead."""
        raise NotImplementedError(f"{type(self).__name__}: implement get_lr()")

    def get_lr(self) -> list[float]:
        """The next learning rate of each param group (called by :meth:`step`; to read the
        current rates use :meth:`get_last_lr`)."""
        if self._legacy():
            return self.lr_at(self.last_epoch)
        raise NotImplementedError(
            f"{type(self).__name__}: a scheduler subclass must implement get_lr(), returning "
            "one learning rate per param group from self.last_epoch and self.base_lrs (or "
            "the groups' current 'lr')")

    def step(self, epoch: int | None = None) -> None:
        """Advance the schedule by one step (call it after ``optimizer.step()``).
        ``epoch`` (deprecated, as in PyTorch) sets ``last_epoch`` and uses the closed form
        where the scheduler has one."""
        legacy = self._legacy()
        first = self.last_epoch >= 0 if legacy else self._step_count == 1
        if first and not self.optimizer._stepped:
            warnings.warn(f"{type(self).__name__}.step() was called before optimizer.step(): "
                          "the schedule's first learning rate is skipped. Call "
                          "optimizer.step() first, then the scheduler's step() (as in "
                          "PyTorch).", UserWarning, stacklevel=2)
        if not legacy:
            self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                closed = getattr(self, "_get_closed_form_lr", None)
                values = closed() if closed is not None else self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        values = list(values)
        groups = self.optimizer.param_groups
        if len(values) != len(groups):
            raise ValueError(f"{type(self).__name__}.get_lr() returned {len(values)} learning "
                             f"rates for {len(groups)} param groups")
        for g, lr in zip(groups, values):
            _set_lr(g, lr)
        self._last_lr = _last_lrs(self.optimizer)

    def get_last_lr(self) -> list[float | Tensor]:
        """The learning rates this scheduler set last, one per param group, each of its
        group's ``lr`` type (a tensor ``lr`` gives a copy of it, as in PyTorch)."""
        return self._last_lr

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer (functions and wrapped schedulers left out)."""
        return {k: v for k, v in self.__dict__.items()
                if k != "optimizer" and not callable(v) and not isinstance(v, LRScheduler)
                and not (isinstance(v, list) and any(isinstance(x, LRScheduler) for x in v))}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (also PyTorch's). Only the scheduler's
        attributes change, as in PyTorch: the param groups' ``lr`` comes from the optimizer's
        own ``load_state_dict``, so load both when resuming."""
        # writing this scheduler's last rates into the groups here would clobber the lr the
        # optimizer restored whenever something else (another scheduler, a manual edit) set
        # it last, and the resumed run would train with the wrong rate
        self.__dict__.update(state_dict)


class _LRScheduler(LRScheduler):
    """PyTorch's older name of :class:`LRScheduler`, still subclassed by many codebases."""


class _LambdaState:
    """state_dict of the lambda schedulers, as PyTorch: a plain function is not saved, the
    ``__dict__`` of a callable object is."""

    lr_lambdas: list

    def state_dict(self) -> dict[str, Any]:
        sd = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        sd["lr_lambdas"] = [None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()
                            for fn in self.lr_lambdas]
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        fns = state_dict.pop("lr_lambdas", None) or []
        self.__dict__.update(state_dict)
        for f, saved in zip(self.lr_lambdas, fns):
            if saved is not None:
                f.__dict__.update(saved)


class LambdaLR(_LambdaState, LRScheduler):
    """``lr = initial_lr * lr_lambda(epoch)`` (one function, or one per group)."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | Sequence,
                 last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        self.lr_lambdas = _lambdas("LambdaLR", optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        return [b * f(self.last_epoch) for f, b in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_LambdaState, LRScheduler):
    """Multiply each group's current ``lr`` by ``lr_lambda(epoch)`` at every step."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | Sequence,
                 last_epoch: int = -1) -> None:
        self.optimizer = optimizer
        self.lr_lambdas = _lambdas("MultiplicativeLR", optimizer, lr_lambda)
        for f in self.lr_lambdas:
            if not callable(f):
                raise TypeError(f"MultiplicativeLR: lr_lambda should be a function, got "
                                f"{type(f).__name__}")
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        if self._is_initial:
            return _group_lrs(self.optimizer)
        return [lr * f(self.last_epoch) for f, lr in zip(self.lr_lambdas,
                                                          _group_lrs(self.optimizer))]


class StepLR(LRScheduler):
    """Decays each parameter group's learning rate by ``gamma`` every ``step_size`` epochs
    (``torch.optim.lr_scheduler.StepLR``).

    Args:
        optimizer: the wrapped optimizer.
        step_size: the period of the decay, in calls of :meth:`step` (epochs).
        gamma: the factor multiplying the lr at each decay (0.1 by default).
        last_epoch: the index of the last epoch, to resume a schedule (-1 starts anew).

    As PyTorch's, each decay multiplies the current lr (so changes made by other
    schedulers chain); alone it is ``initial_lr * gamma ** (epoch // step_size)``. Call
    ``scheduler.step()`` after ``optimizer.step()``, once per epoch.

    >>> opt = tl.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
    >>> sched = tl.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for epoch in range(5):
    ...     opt.step()
    ...     sched.step()
    ...     lrs.append(sched.get_last_lr()[0])
    >>> lrs
    [0.1, 0.05, 0.05, 0.025, 0.025]
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        if step_size <= 0:
            raise ValueError(f"StepLR: step_size must be positive, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        lrs = _group_lrs(self.optimizer)
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lrs
        return [lr * self.gamma for lr in lrs]

    def _get_closed_form_lr(self) -> list[float]:
        return [b * self.gamma ** (self.last_epoch // self.step_size) for b in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the current ``lr`` by ``gamma`` at each milestone (a milestone given n
    times: by ``gamma ** n``)."""

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1,
                 last_epoch: int = -1) -> None:
        self.milestones = Counter(int(m) for m in milestones)
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        lrs = _group_lrs(self.optimizer)
        if self.last_epoch not in self.milestones:
            return lrs
        return [lr * self.gamma ** self.milestones[self.last_epoch] for lr in lrs]

    def _get_closed_form_lr(self) -> list[float]:
        ms = sorted(self.milestones.elements())
        return [b * self.gamma ** bisect.bisect_right(ms, self.last_epoch) for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply the current ``lr`` by ``gamma`` every epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1) -> None:
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        lrs = _group_lrs(self.optimizer)
        return lrs if self._is_initial else [lr * self.gamma for lr in lrs]

    def _get_closed_form_lr(self) -> list[float]:
        return [b * self.gamma ** self.last_epoch for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing to ``eta_min`` over ``T_max`` epochs, with PyTorch's recursive
    update ``lr_t = eta_min + (lr_{t-1} - eta_min) * (1 + cos(pi t / T_max)) /
    (1 + cos(pi (t-1) / T_max))`` (alone: ``eta_min + (initial_lr - eta_min) *
    (1 + cos(pi * epoch / T_max)) / 2``)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        lrs, e, T, lo = _group_lrs(self.optimizer), self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return lrs
        if self._step_count == 1 and e > 0:
            return [lo + (b - lo) * (1 + math.cos(e * math.pi / T)) / 2 for b in self.base_lrs]
        if (e - 1 - T) % (2 * T) == 0:
            return [lr + (b - lo) * (1 - math.cos(math.pi / T)) / 2
                    for b, lr in zip(self.base_lrs, lrs)]
        return [(1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
                * (lr - lo) + lo for lr in lrs]

    def _get_closed_form_lr(self) -> list[float]:
        c = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (b - self.eta_min) * c for b in self.base_lrs]


class LinearLR(LRScheduler):
    """Linear warmup (or decay): the factor of ``initial_lr`` goes from ``start_factor`` to
    ``end_factor`` over ``total_iters`` steps, then stays (applied to the current ``lr``)."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1) -> None:
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError("LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1],"
                             f" got {start_factor} and {end_factor}")
        if total_iters <= 0:
            raise ValueError(f"LinearLR: total_iters must be positive, got {total_iters}")
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = int(total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        lrs, s, d = _group_lrs(self.optimizer), self.start_factor, self.end_factor - \
            self.start_factor
        if self.last_epoch == 0:
            return [lr * s for lr in lrs]
        if self._is_initial or self.last_epoch > self.total_iters:
            return lrs
        f = 1.0 + d / (self.total_iters * s + (self.last_epoch - 1) * d)
        return [lr * f for lr in lrs]

    def _get_closed_form_lr(self) -> list[float]:
        t = min(self.total_iters, self.last_epoch)
        return [b * (self.start_factor + (self.end_factor - self.start_factor) * t
                     / self.total_iters) for b in self.base_lrs]


class ConstantLR(LRScheduler):
    """Multiply the current ``lr`` by ``factor`` for the first ``total_iters`` epochs (then
    divide it back)."""

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1) -> None:
        if not 0 < factor <= 1:
            raise ValueError(f"ConstantLR: factor must be in (0, 1], got {factor}")
        self.factor, self.total_iters = float(factor), int(total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        lrs = _group_lrs(self.optimizer)
        if self.last_epoch == 0:
            return [lr * self.factor for lr in lrs]
        if self.last_epoch != self.total_iters:
            return lrs
        return [lr * (1.0 / self.factor) for lr in lrs]

    def _get_closed_form_lr(self) -> list[float]:
        return [b * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
                for b in self.base_lrs]


class PolynomialLR(LRScheduler):
    """Decay to 0 over ``total_iters`` epochs: alone,
    ``initial_lr * (1 - min(epoch, total_iters) / total_iters) ** power``."""

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0,
                 last_epoch: int = -1) -> None:
        if total_iters <= 0:
            raise ValueError(f"PolynomialLR: total_iters must be positive, got {total_iters}")
        self.total_iters, self.power = int(total_iters), float(power)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        lrs, e, n = _group_lrs(self.optimizer), self.last_epoch, self.total_iters
        if self._is_initial or e > n:
            return lrs
        f = ((1.0 - e / n) / (1.0 - (e - 1) / n)) ** self.power
        return [lr * f for lr in lrs]

    def _get_closed_form_lr(self) -> list[float]:
        return [b * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters)
                ** self.power for b in self.base_lrs]


def _check_wrapped(name: str, optimizer: Optimizer, schedulers: Sequence) -> None:
    if len(schedulers) < 1:
        raise ValueError(f"{name}: needs at least one scheduler")
    for i, s in enumerate(schedulers):
        if not hasattr(s, "optimizer"):
            raise TypeError(f"{name}: the scheduler at index {i} has no `optimizer` attribute")
        if isinstance(s, ReduceLROnPlateau):
            raise ValueError(f"{name}: does not support ReduceLROnPlateau (its step() needs the"
                             f" metric), got one at index {i}")
        if s.optimizer is not optimizer:
            raise ValueError(f"{name}: every scheduler must wrap the same optimizer")


class _Wrapper:
    """state_dict of the schedulers that wrap others, as PyTorch: theirs nested."""

    _schedulers: list

    def state_dict(self) -> dict[str, Any]:
        sd = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "_schedulers")}
        sd["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        subs = state_dict.pop("_schedulers")
        self.__dict__.update(state_dict)
        for s, sd in zip(self._schedulers, subs):
            s.load_state_dict(sd)


class SequentialLR(_Wrapper, LRScheduler):
    """Run ``schedulers[i]`` from ``milestones[i-1]`` on (e.g. ``LinearLR`` warmup for 5
    epochs, then ``CosineAnnealingLR``); at a milestone the next one restarts from its
    epoch 0 (closed form), as PyTorch's."""

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler],
                 milestones: Sequence[int], last_epoch: int = -1) -> None:
        _check_wrapped("SequentialLR", optimizer, schedulers)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expected {len(schedulers) - 1} milestones for "
                             f"{len(schedulers)} schedulers, got {len(milestones)}")
        self._schedulers, self._milestones = list(schedulers), [int(m) for m in milestones]
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for g in optimizer.param_groups:       # undo the wrapped schedulers' first steps
            _set_lr(g, g["initial_lr"])
        self.recursive_undo()
        idx = bisect.bisect_right(self._milestones, 0)
        self._schedulers[idx]._initial_step()
        self._last_lr = self._schedulers[idx].get_last_lr()

    def recursive_undo(self, sched=None) -> None:
        """Take back the construction step of every (nested) wrapped scheduler."""
        s = self if sched is None else sched
        if hasattr(s, "_schedulers"):
            for sub in s._schedulers:
                self.recursive_undo(sub)
        elif hasattr(s, "last_epoch"):
            s.last_epoch -= 1

    def step(self) -> None:  # type: ignore[override]
        self.last_epoch += 1
        idx = bisect.bisect_right(self._milestones, self.last_epoch)
        sched = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            sched._update_lr(0)
        else:
            sched.step()
        self._last_lr = sched.get_last_lr()


class ChainedScheduler(_Wrapper, LRScheduler):
    """Step several schedulers at once on one optimizer, each applied in turn to the rate
    the previous one left (``ConstantLR`` warm-up times ``ExponentialLR`` decay, say)."""

    def __init__(self, schedulers: Sequence[LRScheduler],
                 optimizer: Optimizer | None = None) -> None:
        if not schedulers:
            raise ValueError("ChainedScheduler: needs at least one scheduler")
        optimizer = optimizer or schedulers[0].optimizer
        _check_wrapped("ChainedScheduler", optimizer, schedulers)
        self._schedulers = list(schedulers)
        self.optimizer = optimizer
        self._last_lr = _last_lrs(optimizer)

    def step(self) -> None:  # type: ignore[override]
        for s in self._schedulers:
            s.step()
        self._last_lr = _last_lrs(self.optimizer)


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine annealing restarted every ``T_i`` epochs, ``T_0`` first, each period ``T_mult``
    times longer (SGDR, Loshchilov & Hutter), from the initial rates. ``step(epoch)`` takes
    a fractional epoch (``epoch + i / iters`` per batch), as PyTorch documents."""

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1) -> None:
        if T_0 <= 0 or int(T_0) != T_0:
            raise ValueError(f"CosineAnnealingWarmRestarts: T_0 must be a positive int, got {T_0}")
        if T_mult < 1 or int(T_mult) != T_mult:
            raise ValueError(f"CosineAnnealingWarmRestarts: T_mult must be an int >= 1, got "
                             f"{T_mult}")
        self.T_0 = self.T_i = int(T_0)
        self.T_mult, self.eta_min = int(T_mult), float(eta_min)
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        c = (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
        return [self.eta_min + (b - self.eta_min) * c for b in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if epoch < 0:
                raise ValueError(f"CosineAnnealingWarmRestarts.step: epoch must be "
                                 f"non-negative, got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        self._get_lr_called_within_step = True
        try:
            lrs = self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        for g, lr in zip(self.optimizer.param_groups, lrs):
            _set_lr(g, lr)
        self._last_lr = _last_lrs(self.optimizer)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin), stepped once per batch: the learning rate rises from
    ``max_lr / div_factor`` to ``max_lr`` over ``pct_start`` of ``total_steps`` and falls to
    ``max_lr / div_factor / final_div_factor``; momentum (SGD's ``momentum`` or Adam's first
    beta) moves the opposite way between ``base_momentum`` and ``max_momentum``."""

    def __init__(self, optimizer: Optimizer, max_lr, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False,
                 last_epoch: int = -1):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = int(epochs) * int(steps_per_epoch)
        if total_steps <= 0:
            raise ValueError(f"OneCycleLR: total_steps must be positive, got {total_steps}")
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got "
                             f"{anneal_strategy!r}")
        self.total_steps, self.anneal_strategy = int(total_steps), anneal_strategy
        groups = optimizer.param_groups
        maxes = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(groups)
        T = float(self.total_steps)
        if three_phase:
            ends = [pct_start * T - 1, 2 * pct_start * T - 2, T - 1]
            keys = [("initial_lr", "max_lr"), ("max_lr", "initial_lr"), ("initial_lr", "min_lr")]
            moms = [("max_momentum", "base_momentum"), ("base_momentum", "max_momentum"),
                    ("max_momentum", "max_momentum")]
        else:
            ends = [pct_start * T - 1, T - 1]
            keys = [("initial_lr", "max_lr"), ("max_lr", "min_lr")]
            moms = [("max_momentum", "base_momentum"), ("base_momentum", "max_momentum")]
        self._phases = list(zip(ends, keys, moms))
        self.cycle_momentum = cycle_momentum
        for g, m in zip(groups, maxes):
            if last_epoch == -1:
                g["initial_lr"] = m / div_factor
                g["max_lr"] = m
                g["min_lr"] = g["initial_lr"] / final_div_factor
            if cycle_momentum:
                if "betas" not in g and "momentum" not in g:
                    raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with "
                                     "momentum or betas (or pass cycle_momentum=False)")
                if last_epoch == -1:
                    g["max_momentum"], g["base_momentum"] = max_momentum, base_momentum
                    _set_momentum(g, max_momentum)
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _at(self, g, epoch: int):
        if epoch > self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {epoch} times for total_steps="
                             f"{self.total_steps}")
        start = 0.0
        for i, (end, (k0, k1), (m0, m1)) in enumerate(self._phases):
            if epoch <= end or i == len(self._phases) - 1:
                pct = (epoch - start) / (end - start) if end != start else 0.0
                mom = self._anneal(g[m0], g[m1], pct) if self.cycle_momentum else None
                return self._anneal(g[k0], g[k1], pct), mom
            start = end
        raise AssertionError("unreachable")

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        out = []
        for g in self.optimizer.param_groups:
            lr, mom = self._at(g, self.last_epoch)
            out.append(lr)
            if self.cycle_momentum:
                _set_momentum(g, mom)
        return out


class CyclicLR(LRScheduler):
    """Cyclical learning rates (Smith), stepped once per batch: the rate climbs from
    ``base_lr`` to ``max_lr`` over ``step_size_up`` steps and back over ``step_size_down``
    (default: the same), the amplitude scaled by ``mode``: 'triangular' (constant),
    'triangular2' (halved each cycle), 'exp_range' (``gamma ** step``), or by ``scale_fn``
    of the cycle number (``scale_mode='cycle'``) or of the step ('iterations'). Momentum
    (SGD's ``momentum`` or Adam's first beta) cycles the opposite way between
    ``max_momentum`` and ``base_momentum``. As PyTorch's."""

    def __init__(self, optimizer: Optimizer, base_lr, max_lr, step_size_up: int = 2000,
                 step_size_down: int | None = None, mode: str = "triangular",
                 gamma: float = 1.0, scale_fn: Callable[[float], float] | None = None,
                 scale_mode: str = "cycle", cycle_momentum: bool = True,
                 base_momentum: float = 0.8, max_momentum: float = 0.9,
                 last_epoch: int = -1):
        groups = optimizer.param_groups

        def per_group(v, what):
            vs = list(v) if isinstance(v, (list, tuple)) else [v] * len(groups)
            if len(vs) != len(groups):
                raise ValueError(f"CyclicLR: {len(vs)} values of {what} for {len(groups)} "
                                 "param groups")
            return [float(x) for x in vs]
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError(f"CyclicLR: mode must be 'triangular', 'triangular2' or "
                             f"'exp_range', got {mode!r}")
        up = int(step_size_up)
        down = int(step_size_down) if step_size_down is not None else up
        if up <= 0 or down < 0:
            raise ValueError(f"CyclicLR: step sizes must be positive, got {up} and {down}")
        self.total_size, self.step_ratio = float(up + down), up / float(up + down)
        self.max_lrs = per_group(max_lr, "max_lr")
        self.mode, self.gamma, self._scale_fn = mode, float(gamma), scale_fn
        self.scale_mode = scale_mode if scale_fn is not None else (
            "iterations" if mode == "exp_range" else "cycle")
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if not all("momentum" in g or "betas" in g for g in groups):
                raise ValueError("CyclicLR: cycle_momentum needs an optimizer with momentum or "
                                 "betas (or pass cycle_momentum=False)")
            self.base_momentums = per_group(base_momentum, "base_momentum")
            self.max_momentums = per_group(max_momentum, "max_momentum")
            if last_epoch == -1:
                for g, m, b in zip(groups, self.max_momentums, self.base_momentums):
                    _set_momentum(g, m)
                    g["max_momentum"], g["base_momentum"] = m, b
        base_lrs = per_group(base_lr, "base_lr")
        if last_epoch == -1:
            for g, b in zip(groups, base_lrs):
                _set_lr(g, b)
        super().__init__(optimizer, last_epoch)
        # as PyTorch: the construction step read base_lrs from 'initial_lr' (setdefault),
        # the later steps cycle from base_lr
        self.base_lrs = base_lrs


    def _scale(self, epoch: int) -> tuple[float, float]:
        """(the triangle's height in [0, 1], the amplitude's scale) at ``epoch``."""
        cycle = math.floor(1 + epoch / self.total_size)
        x = 1.0 + epoch / self.total_size - cycle
        height = x / self.step_ratio if x <= self.step_ratio else (x - 1) / (self.step_ratio - 1)
        arg = cycle if self.scale_mode == "cycle" else epoch
        if self._scale_fn is not None:
            amp = self._scale_fn(arg)
        elif self.mode == "triangular":
            amp = 1.0
        elif self.mode == "triangular2":
            amp = 1 / (2.0 ** (cycle - 1))
        else:
            amp = self.gamma ** arg
        return height, amp

    def get_lr(self) -> list[float]:
        _warn_get_lr_called_within_step(self)
        height, amp = self._scale(self.last_epoch)
        if self.cycle_momentum:
            for g, b, m in zip(self.optimizer.param_groups, self.base_momentums,
                               self.max_momentums):
                _set_momentum(g, m - (m - b) * height * amp)
        return [b + (m - b) * height * amp for b, m in zip(self.base_lrs, self.max_lrs)]

    def state_dict(self) -> dict[str, Any]:
        sd = super().state_dict()
        fn = self._scale_fn
        sd["_scale_fn"] = None if fn is None or isinstance(fn, types.FunctionType) \
            else fn.__dict__.copy()
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        fn = state_dict.pop("_scale_fn", None)
        state_dict.pop("_scale_fn_custom", None)       # PyTorch's name of it
        super().load_state_dict(state_dict)
        if isinstance(fn, dict) and self._scale_fn is not None:
            self._scale_fn.__dict__.update(fn)


class ReduceLROnPlateau(LRScheduler):
    """Multiply the learning rates by ``factor`` when a metric has not improved for
    ``patience`` epochs: ``step(metric)`` after each evaluation.

    >>> sched = tl.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=2)
    >>> sched.step(val_loss)
    """

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float | Sequence[float] = 0.0, eps: float = 1e-8):
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be below 1, got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got "
                             f"{threshold_mode!r}")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"ReduceLROnPlateau: expected an Optimizer, got "
                            f"{type(optimizer).__name__}")
        n = len(optimizer.param_groups)
        many = isinstance(min_lr, (list, tuple))
        self.default_min_lr = None if many else min_lr
        self.min_lrs = list(min_lr) if many else [min_lr] * n
        if len(self.min_lrs) != n:
            raise ValueError(f"ReduceLROnPlateau: expected {n} min_lrs, got {len(self.min_lrs)}")
        self.mode, self.factor, self.patience = mode, float(factor), int(patience)
        self.threshold, self.threshold_mode = float(threshold), threshold_mode
        self.cooldown, self.eps = int(cooldown), float(eps)
        self.mode_worse = self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = 0
        self.optimizer = optimizer
        self.last_epoch = 0
        self._last_lr = _last_lrs(optimizer)

    def _better(self, a: float) -> bool:
        rel = self.threshold_mode == "rel"
        if self.mode == "min":
            return a < (self.best * (1 - self.threshold) if rel else self.best - self.threshold)
        return a > (self.best * (1 + self.threshold) if rel else self.best + self.threshold)

    def step(self, metrics=None, epoch: int | None = None) -> None:  # type: ignore[override]
        """Record the metric of one epoch (``epoch``: deprecated, as in PyTorch)."""
        if metrics is None:
            raise TypeError("ReduceLROnPlateau.step needs the metric: step(val_loss)")
        current = float(metrics)
        if epoch is None:
            epoch = self.last_epoch + 1
        else:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self.last_epoch = epoch
        if self._better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            groups = self.optimizer.param_groups
            if len(groups) != len(self.min_lrs):
                if self.default_min_lr is None:
                    raise RuntimeError(
                        f"ReduceLROnPlateau: the optimizer has {len(groups)} param groups but "
                        f"min_lr has {len(self.min_lrs)} values (a group was added?); set "
                        "scheduler.min_lrs to one value per group")
                self.min_lrs = [self.default_min_lr] * len(groups)
            for g, lo in zip(groups, self.min_lrs):
                old = hyper_value(g["lr"])
                new = max(old * self.factor, lo)
                if old - new > self.eps:
                    _set_lr(g, new)
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = _last_lrs(self.optimizer)

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0
