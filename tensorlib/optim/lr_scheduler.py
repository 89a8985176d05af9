"""Learning-rate schedules, stepped once per epoch (or per iteration) after ``opt.step()``.

Each schedule is a closed form ``lr(epoch)`` of the groups' initial learning rates,
so ``state_dict``/``load_state_dict`` only need the epoch counter.
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import Any

from .._hyper import hyper_value
from .._tensor import Tensor
from ..autograd.mode import no_grad
from .optimizer import Optimizer


def _set_lr(group: dict, lr: float) -> None:
    if isinstance(group["lr"], Tensor):    # in place: a captured step reads this tensor
        with no_grad():
            group["lr"].fill_(lr)
    else:
        group["lr"] = lr


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


class LRScheduler:
    """Base: sets each group's ``lr`` to ``lr_at(epoch)`` on every ``step()``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
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
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, epoch: int) -> list[float]:
        """The learning rate of each group at ``epoch``."""
        raise NotImplementedError

    def step(self) -> None:
        if self.last_epoch >= 0 and not self.optimizer._stepped:
            import warnings
            warnings.warn(f"{type(self).__name__}.step() was called before optimizer.step(): "
                          "the schedule's first learning rate is skipped. Call "
                          "optimizer.step() first, then the scheduler's step() (as in "
                          "PyTorch).", UserWarning, stacklevel=2)
        self.last_epoch += 1
        for g, lr in zip(self.optimizer.param_groups, self.lr_at(self.last_epoch)):
            _set_lr(g, lr)
        self._last_lr = [hyper_value(g["lr"]) for g in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()
                if k != "optimizer" and not callable(v) and not isinstance(v, LRScheduler)
                and not (isinstance(v, list) and any(isinstance(x, LRScheduler) for x in v))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class StepLR(LRScheduler):
    """``lr = base * gamma ** (epoch // step_size)``."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1):
        if step_size <= 0:
            raise ValueError(f"StepLR: step_size must be positive, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        return [b * self.gamma ** (epoch // self.step_size) for b in self.base_lrs]


class MultiStepLR(LRScheduler):
    """``lr = base * gamma ** (number of milestones <= epoch)``."""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1,
                 last_epoch: int = -1):
        self.milestones, self.gamma = sorted(int(m) for m in milestones), float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        return [b * self.gamma ** bisect.bisect_right(self.milestones, epoch)
                for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    """``lr = base * gamma ** epoch``."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        return [b * self.gamma ** epoch for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,
                 last_epoch: int = -1):
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        c = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return [self.eta_min + (b - self.eta_min) * c for b in self.base_lrs]


class LinearLR(LRScheduler):
    """Linear warmup (or decay): the factor goes from ``start_factor`` to ``end_factor``
    over ``total_iters`` steps, then stays."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5, last_epoch: int = -1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError("LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1],"
                             f" got {start_factor} and {end_factor}")
        if total_iters <= 0:
            raise ValueError(f"LinearLR: total_iters must be positive, got {total_iters}")
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = int(total_iters)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        t = min(epoch, self.total_iters) / self.total_iters
        f = self.start_factor + (self.end_factor - self.start_factor) * t
        return [b * f for b in self.base_lrs]


class LambdaLR(LRScheduler):
    """``lr = base * lr_lambda(epoch)`` (one function, or one per group)."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float] | Sequence,
                 last_epoch: int = -1):
        n = len(optimizer.param_groups)
        fns = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(fns) != n:
            raise ValueError(f"{type(self).__name__}: expected {n} lr_lambdas, got {len(fns)}")
        self.lr_lambdas = fns
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        return [b * f(epoch) for b, f in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}


class SequentialLR(LRScheduler):
    """Run ``schedulers[i]`` from ``milestones[i-1]`` on, each with its own epoch count
    (e.g. ``LinearLR`` warmup for 5 epochs, then ``CosineAnnealingLR``)."""

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[LRScheduler],
                 milestones: Sequence[int], last_epoch: int = -1):
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expected {len(schedulers) - 1} milestones for "
                             f"{len(schedulers)} schedulers, got {len(milestones)}")
        for s in schedulers:
            if s.optimizer is not optimizer:
                raise ValueError("SequentialLR: every scheduler must wrap the same optimizer")
        self.schedulers, self.milestones = list(schedulers), [int(m) for m in milestones]
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        i = bisect.bisect_right(self.milestones, epoch)
        start = self.milestones[i - 1] if i else 0
        return self.schedulers[i].lr_at(epoch - start)


class ConstantLR(LRScheduler):
    """``lr = base * factor`` for the first ``total_iters`` epochs, then ``base``."""

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1):
        if not 0 < factor <= 1:
            raise ValueError(f"ConstantLR: factor must be in (0, 1], got {factor}")
        self.factor, self.total_iters = float(factor), int(total_iters)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        f = self.factor if epoch < self.total_iters else 1.0
        return [b * f for b in self.base_lrs]


class PolynomialLR(LRScheduler):
    """``lr = base * (1 - min(epoch, total_iters) / total_iters) ** power``."""

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0,
                 last_epoch: int = -1):
        if total_iters <= 0:
            raise ValueError(f"PolynomialLR: total_iters must be positive, got {total_iters}")
        self.total_iters, self.power = int(total_iters), float(power)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        f = (1.0 - min(epoch, self.total_iters) / self.total_iters) ** self.power
        return [b * f for b in self.base_lrs]


class MultiplicativeLR(LambdaLR):
    """``lr(epoch) = lr(epoch - 1) * lr_lambda(epoch)``: the product of the factors so far."""

    def lr_at(self, epoch):
        return [b * math.prod(f(e) for e in range(1, epoch + 1))
                for b, f in zip(self.base_lrs, self.lr_lambdas)]


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine annealing restarted every ``T_i`` epochs, ``T_0`` first, each period ``T_mult``
    times longer (SGDR, Loshchilov & Hutter)."""

    def __init__(self, optimizer: Optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0,
                 last_epoch: int = -1):
        if T_0 <= 0 or int(T_0) != T_0:
            raise ValueError(f"CosineAnnealingWarmRestarts: T_0 must be a positive int, got {T_0}")
        if T_mult < 1 or int(T_mult) != T_mult:
            raise ValueError(f"CosineAnnealingWarmRestarts: T_mult must be an int >= 1, got "
                             f"{T_mult}")
        self.T_0, self.T_mult, self.eta_min = int(T_0), int(T_mult), float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        T_cur, T_i = epoch, self.T_0
        if epoch >= self.T_0:
            if self.T_mult == 1:
                T_cur = epoch % self.T_0
            else:
                n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                T_i = self.T_0 * self.T_mult ** n
        c = (1 + math.cos(math.pi * T_cur / T_i)) / 2
        return [self.eta_min + (b - self.eta_min) * c for b in self.base_lrs]


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

    def lr_at(self, epoch):
        return [self._at(g, epoch)[0] for g in self.optimizer.param_groups]

    def step(self) -> None:
        super().step()
        if self.cycle_momentum:
            for g in self.optimizer.param_groups:
                _set_momentum(g, self._at(g, self.last_epoch)[1])


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
                for g, m in zip(groups, self.max_momentums):
                    _set_momentum(g, m)
        if last_epoch == -1:
            for g, b in zip(groups, per_group(base_lr, "base_lr")):
                g["initial_lr"] = b
        super().__init__(optimizer, last_epoch)


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

    def lr_at(self, epoch):
        height, amp = self._scale(epoch)
        return [b + (m - b) * height * amp for b, m in zip(self.base_lrs, self.max_lrs)]

    def step(self) -> None:
        super().step()
        if self.cycle_momentum:
            height, amp = self._scale(self.last_epoch)
            for g, b, m in zip(self.optimizer.param_groups, self.base_momentums,
                               self.max_momentums):
                _set_momentum(g, m - (m - b) * height * amp)


class ChainedScheduler(LRScheduler):
    """Several schedules at once on one optimizer: each group's rate is its initial rate
    times every schedule's factor at this step (``ConstantLR`` warm-up times
    ``ExponentialLR`` decay, say), which is what PyTorch's chaining gives for such
    multiplicative schedules. ``step()`` steps them all."""

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None):
        if not schedulers:
            raise ValueError("ChainedScheduler: needs at least one scheduler")
        optimizer = optimizer or schedulers[0].optimizer
        for sch in schedulers:
            if sch.optimizer is not optimizer:
                raise ValueError("ChainedScheduler: every scheduler must wrap the same "
                                 "optimizer")
        self.schedulers = list(schedulers)
        super().__init__(optimizer, schedulers[0].last_epoch - 1)

    def lr_at(self, epoch):
        out = list(self.base_lrs)
        for sch in self.schedulers:
            for i, (lr, b) in enumerate(zip(sch.lr_at(epoch), sch.base_lrs)):
                out[i] *= lr / b if b else 1.0
        return out

    def step(self) -> None:
        super().step()
        for sch in self.schedulers:     # their counters follow (state_dict, get_last_lr)
            sch.last_epoch = self.last_epoch
            sch._last_lr = self._last_lr


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
        n = len(optimizer.param_groups)
        self.min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * n
        if len(self.min_lrs) != n:
            raise ValueError(f"ReduceLROnPlateau: expected {n} min_lrs, got {len(self.min_lrs)}")
        self.mode, self.factor, self.patience = mode, float(factor), int(patience)
        self.threshold, self.threshold_mode = float(threshold), threshold_mode
        self.cooldown, self.eps = int(cooldown), float(eps)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = self.cooldown_counter = 0
        self.optimizer = optimizer
        self.last_epoch = 0
        self._last_lr = [hyper_value(g["lr"]) for g in optimizer.param_groups]

    def _better(self, a: float) -> bool:
        rel = self.threshold_mode == "rel"
        if self.mode == "min":
            return a < (self.best * (1 - self.threshold) if rel else self.best - self.threshold)
        return a > (self.best * (1 + self.threshold) if rel else self.best + self.threshold)

    def step(self, metrics=None) -> None:
        if metrics is None:
            raise TypeError("ReduceLROnPlateau.step needs the metric: step(val_loss)")
        current = float(metrics)
        self.last_epoch += 1
        if self._better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for g, lo in zip(self.optimizer.param_groups, self.min_lrs):
                old = hyper_value(g["lr"])
                new = max(old * self.factor, lo)
                if old - new > self.eps:
                    _set_lr(g, new)
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [hyper_value(g["lr"]) for g in self.optimizer.param_groups]
