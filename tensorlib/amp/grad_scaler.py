"""``GradScaler``: loss scaling for float16 training, as ``torch.amp.GradScaler``.

Gradients of float16 activations underflow (below 6e-8 they are 0); multiplying the loss by
a large scale keeps them representable. Before the optimizer step the gradients are divided
by the scale again; a step whose gradients hold inf or NaN (the scale was too large) is
skipped and the scale shrinks; after ``growth_interval`` clean steps it grows.

The scale and the growth tracker are 0-d arrays on the device of the first scaled output
(NumPy or CuPy), updated there with array operations: the per-parameter inf/NaN checks
add to one flag on the device, read once per ``step`` (the only host synchronisation).
"""
from __future__ import annotations

import enum
import warnings
from collections import defaultdict
from typing import Any

import numpy as np

from .._tensor import Tensor

_F16 = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_FIX = ("This may indicate your script did not use scaler.scale(loss or outputs) earlier in "
        "the iteration.")


class _Stage(enum.Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _fresh_state() -> dict[str, Any]:
    return {"stage": _Stage.READY, "found_inf_per_device": {}}


def _xp(device):
    from ..backends import xp_for
    return xp_for(device)


def _on(array, device):
    """``array`` (NumPy or CuPy) on ``device`` (no copy when it is there)."""
    from ..backends import device_of_array, to_device
    return array if device_of_array(array) is device else to_device(array, device)


_IN_CAPTURE = (
    "the scaler decides in Python, from the gradients' values, whether to step and how to "
    "change the scale, which a replayed graph would not redo. What works: (1) a fixed loss "
    "scale inside the captured step: (loss * S).backward(), then p.grad.div_(S) for each "
    "parameter before clipping and opt.step(), with S a power of two small enough that no "
    "gradient overflows (e.g. 2.0 ** 10; a step with inf/NaN gradients is not skipped); or "
    "(2) the scaler outside capture, with the whole training step eager (capturing only the "
    "forward does not help: a captured function whose outputs need gradients runs eagerly)")


def _not_traced(funcname: str) -> None:
    from .._state import state
    if state.tracer is not None:
        from ..graph.tracer import CaptureError
        raise CaptureError(f"GradScaler.{funcname}: cannot run inside graph capture "
                           f"(tl.function, tl.capture): {_IN_CAPTURE}")


class GradScaler:
    """Scale the loss, unscale the gradients, skip steps with inf/NaN gradients and adapt
    the scale, as ``torch.amp.GradScaler`` (same arguments, same scale sequence).

    ``device`` is ``"cuda"`` (the default; with no GPU the scaler warns and is disabled,
    as PyTorch's) or ``"cpu"``. ``enabled=False`` makes every method a pass-through, so one
    training loop serves both precisions.

    >>> scaler = tl.amp.GradScaler("cpu")
    >>> for x, y in loader:
    ...     opt.zero_grad()
    ...     with tl.autocast("cpu", dtype=tl.float16):
    ...         loss = F.cross_entropy(model(x), y)
    ...     scaler.scale(loss).backward()
    ...     scaler.unscale_(opt)                        # optional: to clip true gradients
    ...     tl.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    ...     scaler.step(opt)                            # skipped if a gradient is inf/NaN
    ...     scaler.update()

    Not under graph capture (``tl.function``): the scaler decides in Python whether to step,
    so its methods raise ``CaptureError`` there. A captured float16 step uses a fixed loss
    scale instead (a step with inf/NaN gradients is then not skipped)::

        @tl.function
        def train_step(x, y):
            with tl.autocast("cpu", dtype=tl.float16):
                loss = F.cross_entropy(model(x), y)
            (loss * 1024.0).backward()
            for p in model.parameters():
                p.grad.div_(1024.0)
            opt.step()
            opt.zero_grad()
            return loss
    """

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        from .._device import Device
        if not isinstance(device, str) or Device(device).type not in ("cpu", "cuda"):
            raise ValueError(f"GradScaler: device must be 'cpu' or 'cuda', got {device!r}")
        self._device = Device(device).type
        self._enabled = bool(enabled)
        if self._device == "cuda" and self._enabled:
            from ..cuda import is_available
            if not is_available():
                warnings.warn("GradScaler: device 'cuda' was given but CUDA is not available; "
                              "the scaler is disabled (use GradScaler('cpu') on the CPU)",
                              stacklevel=2)
                self._enabled = False
        if self._enabled:
            if not growth_factor > 1.0:
                raise ValueError(f"GradScaler: growth_factor must be > 1, got {growth_factor}")
            if not 0.0 < backoff_factor < 1.0:
                raise ValueError(f"GradScaler: backoff_factor must be in (0, 1), got "
                                 f"{backoff_factor}")
            if int(growth_interval) != growth_interval or growth_interval < 1:
                raise ValueError(f"GradScaler: growth_interval must be a positive integer, got "
                                 f"{growth_interval!r}")
        self._init_scale = float(init_scale)
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._init_growth_tracker = 0
        self._scale: Tensor | None = None            # 0-d float32, made on first use
        self._growth_tracker: Tensor | None = None   # 0-d int32
        self._per_optimizer_states: defaultdict = defaultdict(_fresh_state)

    # --- scaling -----------------------------------------------------------------------------
    def _lazy_init(self, device) -> None:
        from .._tensor import _wrap
        xp = _xp(device)
        with _on_device(device):
            scale = xp.full((), self._init_scale, dtype=np.float32)
            tracker = xp.full((), self._init_growth_tracker, dtype=np.int32)
        self._scale = _wrap(scale, device, False, None, 0)
        self._growth_tracker = _wrap(tracker, device, False, None, 0)

    def scale(self, outputs):
        """``outputs`` (a tensor, or lists/tuples of them) times the current scale; the
        product is recorded, so ``scale(loss).backward()`` gives scaled gradients. The
        result's dtype is PyTorch's: a 0-d float16 loss gives float32, a float16 tensor of
        higher rank stays float16."""
        if not self._enabled:
            return outputs
        _not_traced("scale")
        if isinstance(outputs, Tensor):
            return self._scaled(outputs)
        if isinstance(outputs, (list, tuple)):
            items = [self.scale(o) for o in outputs]
            return type(outputs)(*items) if hasattr(outputs, "_fields") else type(outputs)(items)
        try:
            it = iter(outputs)
        except TypeError:
            raise ValueError(f"GradScaler.scale: outputs must be a Tensor or an iterable of "
                             f"Tensors, got {type(outputs).__name__}") from None
        return map(self.scale, it)

    def _scaled(self, t: Tensor) -> Tensor:
        if self._scale is None:
            self._lazy_init(t._device)
        s = self._scale
        if s._device is not t._device:
            s = s.to(t._device)
        dt = t._data.dtype
        # PyTorch's promotion: a 0-d scale does not widen a tensor of higher rank
        target = (dt if t.ndim and dt.kind == "f" else np.result_type(dt, _F32)
                  if dt.kind == "f" else _F32)
        if s._data.dtype != target:
            s = s.astype(target)
        return t * s

    # --- unscaling ---------------------------------------------------------------------------
    def _check(self, funcname: str) -> tuple[Tensor, Tensor]:
        if self._scale is None or self._growth_tracker is None:
            raise RuntimeError(f"GradScaler.{funcname}: no scale yet. {_FIX}")
        return self._scale, self._growth_tracker

    def _unscale_grads_(self, optimizer, inv_scale, allow_fp16: bool) -> dict:
        """Divide every gradient of ``optimizer`` by the scale in place; per device, a 0-d
        float32 flag that is 1 where some gradient held inf or NaN."""
        found: dict = {}
        for group in optimizer.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if not allow_fp16 and g._data.dtype == _F16:
                    raise ValueError("GradScaler: attempting to unscale float16 gradients: the "
                                     "parameters must be float32 (autocast runs float32 "
                                     "parameters in float16 where it pays; keep the model in "
                                     "float32)")
                dev = g._device
                xp = _xp(dev)
                a = g._data
                inv = inv_scale.get(dev)
                if inv is None:
                    inv = inv_scale[dev] = _on(inv_scale["_"], dev)
                # checked before the product, as PyTorch's kernel: inf * small stays inf
                bad = ~xp.isfinite(a).all()
                found[dev] = bad if dev not in found else (found[dev] | bad)
                a *= inv            # float16 grads (allow_fp16) multiply in float32
                g._version[0] += 1
        return {d: _xp(d).asarray(f, dtype=np.float32) for d, f in found.items()}

    def unscale_(self, optimizer) -> None:
        """Divide ``optimizer``'s gradients by the scale, in place (once per step, before
        ``step``): for gradient clipping or inspection on true values. ``step`` calls it
        when you have not."""
        if not self._enabled:
            return
        _not_traced("unscale_")
        self._check("unscale_")
        st = self._per_optimizer_states[id(optimizer)]
        if st["stage"] is _Stage.UNSCALED:
            raise RuntimeError("GradScaler.unscale_: already called on this optimizer since "
                               "the last update()")
        if st["stage"] is _Stage.STEPPED:
            raise RuntimeError("GradScaler.unscale_: called after step() (call it before "
                               "step(), once per iteration)")
        s = self._scale._data
        # as PyTorch: the reciprocal taken in float64, rounded to float32 (a 0-d array: NumPy
        # gives scalars from 0-d arithmetic)
        inv = _xp(self._scale._device).asarray(1.0 / s.astype(np.float64), dtype=np.float32)
        st["found_inf_per_device"] = self._unscale_grads_(optimizer, {"_": inv}, False)
        st["stage"] = _Stage.UNSCALED

    # --- stepping ----------------------------------------------------------------------------
    def step(self, optimizer, *args, **kwargs):
        """``optimizer.step(*args, **kwargs)`` unless a gradient holds inf or NaN (then the
        step is skipped and None returned); unscales first when ``unscale_`` was not
        called. Closures are not supported (as PyTorch's)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        _not_traced("step")
        if "closure" in kwargs:
            raise RuntimeError("GradScaler.step: closure use is not supported with an enabled "
                               "GradScaler")
        self._check("step")
        st = self._per_optimizer_states[id(optimizer)]
        if st["stage"] is _Stage.STEPPED:
            raise RuntimeError("GradScaler.step: step() has already been called since the last "
                               "update()")
        if st["stage"] is _Stage.READY:
            self.unscale_(optimizer)
        retval = None
        # one host read per optimizer and device: whether any gradient was inf/NaN
        if not sum(float(v) for v in st["found_inf_per_device"].values()):
            retval = optimizer.step(*args, **kwargs)
        st["stage"] = _Stage.STEPPED
        return retval

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Adapt the scale after this iteration's steps: times ``backoff_factor`` when a step
        was skipped (the growth count restarts), times ``growth_factor`` after
        ``growth_interval`` clean iterations in a row. ``new_scale`` (a float, or a 1-element
        tensor on the scaler's device type) sets it instead."""
        if not self._enabled:
            return
        _not_traced("update")
        scale, tracker = self._check("update")
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                if (new_scale._device.type != self._device or new_scale._data.size != 1
                        or new_scale.requires_grad):
                    raise ValueError("GradScaler.update: new_scale must be a float or a "
                                     f"1-element tensor on {self._device!r} with "
                                     "requires_grad=False")
                v = _on(new_scale._data, scale._device).reshape(())
            else:
                v = float(new_scale)
            scale._data[...] = v
        else:
            flags = [_on(f, scale._device) for s in self._per_optimizer_states.values()
                     for f in s["found_inf_per_device"].values()]
            if not flags:
                raise RuntimeError("GradScaler.update: no inf checks were recorded before "
                                   "update(); call step(optimizer) (or unscale_) first")
            found = flags[0]
            for f in flags[1:]:
                found = found + f
            self._update_scale(scale._data, tracker._data, found)
        scale._version[0] += 1
        self._per_optimizer_states = defaultdict(_fresh_state)

    def _update_scale(self, s, tracker, found_inf) -> None:
        """PyTorch's ``_amp_update_scale_``, in array operations on the scale's device (no
        host read): the products in float64, stored as float32, a grown scale kept only
        when finite."""
        xp = _xp(self._scale._device)
        inf = found_inf > 0
        successful = tracker + 1
        grow = xp.logical_and(~inf, successful == self._growth_interval)
        s64 = s.astype(np.float64)
        with np.errstate(over="ignore"):        # a grown scale past float32's range: inf
            backed = (s64 * self._backoff_factor).astype(np.float32)
            grown = (s64 * self._growth_factor).astype(np.float32)
        grown = xp.where(xp.isfinite(grown), grown, s)
        s[...] = xp.where(inf, backed, xp.where(grow, grown, s))
        tracker[...] = xp.where(xp.logical_or(inf, grow), 0, successful).astype(np.int32)

    # --- settings and state ------------------------------------------------------------------
    def get_scale(self) -> float:
        """The current scale as a Python float (1.0 when disabled; a host read)."""
        if not self._enabled:
            return 1.0
        return self._init_scale if self._scale is None else float(self._scale._host())

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = int(new_interval)

    def _get_growth_tracker(self) -> int:
        if not self._enabled:
            return 0
        if self._growth_tracker is None:
            return self._init_growth_tracker
        return int(self._growth_tracker._host())

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        """``scale``, ``growth_factor``, ``backoff_factor``, ``growth_interval`` and
        ``_growth_tracker`` as Python numbers (PyTorch's keys); ``{}`` when disabled."""
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor,
                "growth_interval": self._growth_interval,
                "_growth_tracker": self._get_growth_tracker()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (PyTorch's saves load too)."""
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("GradScaler.load_state_dict: the state dict is empty, possibly "
                               "because it was saved from a disabled GradScaler")
        self._init_scale = float(state_dict["scale"])
        if self._scale is not None:
            self._scale._data[...] = self._init_scale
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._init_growth_tracker = int(state_dict["_growth_tracker"])
        if self._growth_tracker is not None:
            self._growth_tracker._data[...] = self._init_growth_tracker

    def __repr__(self) -> str:
        if not self._enabled:
            return f"GradScaler(device={self._device!r}, enabled=False)"
        return (f"GradScaler(device={self._device!r}, scale={self.get_scale()}, "
                f"growth_factor={self._growth_factor}, backoff_factor={self._backoff_factor}, "
                f"growth_interval={self._growth_interval})")


class _on_device:
    """CuPy's current-device block for a ``cuda:N`` device; nothing for the CPU."""

    def __init__(self, device):
        self._ctx = None
        if device.type == "cuda":
            from ..backends import cupy
            self._ctx = cupy().cuda.Device(device.index)

    def __enter__(self):
        if self._ctx is not None:
            self._ctx.__enter__()

    def __exit__(self, *exc):
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
