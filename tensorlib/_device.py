"""Devices: ``cpu``, ``cpu:N`` (virtual CPU devices), ``cuda:N``, ``/worker:K/...``."""
from __future__ import annotations

import re
import threading

_CACHE: dict[str, Device] = {}
_PATTERN = re.compile(r"^(?:/worker:(\d+)/)?(cpu|cuda)(?::(\d+))?$")


class Device:
    """A device name. Instances are interned, so identity compares devices.

    >>> tl.device("cuda:0").type
    'cuda'

    Used as a context manager it is the default device of the tensors created in its block
    (``tl.zeros``, ``tl.tensor``, ``tl.randn``...; an explicit ``device=`` wins), as
    ``torch.device``'s is: ``with tl.device("cuda"): x = tl.zeros(3)``.
    """

    __slots__ = ("type", "index", "worker", "_str")

    def __new__(cls, spec: str | Device = "cpu") -> Device:
        if isinstance(spec, Device):
            return spec
        if not isinstance(spec, str):
            raise TypeError(f"device must be a string such as 'cpu' or 'cuda:0', got {spec!r}")
        d = _CACHE.get(spec)
        if d is not None:
            return d
        m = _PATTERN.match(spec.strip())
        if m is None:
            raise ValueError(f"invalid device {spec!r}: expected 'cpu', 'cpu:N', 'cuda:N', "
                             "'/worker:K/cpu:0' or '/worker:K/cuda:N'")
        worker, typ, idx = m.groups()
        index = int(idx) if idx is not None else 0
        canon = (f"/worker:{worker}/" if worker is not None else "") + (
            typ if (typ == "cpu" and index == 0 and worker is None) else f"{typ}:{index}")
        d = _CACHE.get(canon)
        if d is None:
            d = object.__new__(cls)
            d.type = typ
            d.index = index
            d.worker = int(worker) if worker is not None else None
            d._str = canon
            _CACHE[canon] = d
        _CACHE[spec] = d
        return d

    def __repr__(self) -> str:
        return f"device('{self._str}')"

    def __str__(self) -> str:
        return self._str

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = Device(other)
            except (ValueError, TypeError):
                return False
        return self is other

    def __hash__(self) -> int:
        return hash(self._str)

    def __reduce__(self):
        return (Device, (self._str,))

    # the default device of the creation functions in a with block (creation._target)
    def __enter__(self) -> Device:
        stack = _scope.__dict__.setdefault("stack", [])
        stack.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _scope.stack.pop()


_scope = threading.local()


def current_scope() -> Device | None:
    """The innermost ``with tl.device(...)`` of this thread, or None."""
    stack = getattr(_scope, "stack", None)
    return stack[-1] if stack else None


CPU = Device("cpu")


def device(spec: str | Device) -> Device:
    """The :class:`Device` named ``spec`` (``'cpu'``, ``'cuda:0'``...); a Device passes
    through."""
    return Device(spec)


def vmap_device(level: int, base: Device) -> Device:
    """The internal device of the tensors inside one ``tl.vmap`` call (``tensorlib.vmap``):
    type ``"vmap"``, the call's level as index, and ``base``, the device its arrays live on
    in the end (``cpu`` or ``cuda:N``). ``apply`` sends their ops to the batching rules
    (``OpDef.kernel_for("vmap")``). A fresh device per call, not interned (levels are
    unique, so the cache would only grow); users never name it."""
    d = object.__new__(_VmapDevice)
    d.type = "vmap"
    d.index = int(level)
    d.worker = None
    d._str = f"vmap:{level}"
    d.base = base
    return d


class _VmapDevice(Device):
    __slots__ = ("base",)

    def __new__(cls, *args):    # only vmap_device makes these
        raise TypeError("vmap devices are internal: use tl.vmap")

    def __reduce__(self):
        raise TypeError("a tensor inside tl.vmap cannot be pickled")
