"""Anomaly mode: NaN checks in backward with the forward traceback of the culprit.

As PyTorch's, it flags NaN only: an infinite gradient (``sqrt`` at 0, ``x / 0``) is a valid
value and passes; a NaN it leads to later (``0 * inf``) is caught at the op that made it.
"""
from __future__ import annotations

import threading

from .mode import state


class _Local(threading.local):
    check_nan = True


_local = _Local()


def is_anomaly_enabled() -> bool:
    """Whether anomaly mode is on in this thread."""
    return bool(state.anomaly)


def is_anomaly_check_nan_enabled() -> bool:
    """Whether anomaly mode is on and checks backward results for NaN."""
    return bool(state.anomaly) and _local.check_nan


def _set(mode: bool, check_nan: bool) -> tuple:
    prev = (state.anomaly, _local.check_nan)
    state.anomaly = bool(mode)
    _local.check_nan = bool(check_nan)
    return prev


class detect_anomaly:
    """Within this block, forward ops record their traceback and backward raises
    ``AnomalyError`` naming the op (and where it was called) whose backward returned NaN
    (with ``check_nan=False``, tracebacks only), as ``torch.autograd.detect_anomaly``.

    >>> with tl.autograd.detect_anomaly():
    ...     (x.sqrt() * 0).sum().backward()    # x has a 0: AnomalyError at <Sqrt>
    """

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan
        self._prevs: list = []

    def __enter__(self):
        self._prevs.append(_set(True, self.check_nan))
        return self

    def __exit__(self, *exc):
        state.anomaly, _local.check_nan = self._prevs.pop()


class set_detect_anomaly:
    """Turn anomaly mode on or off: as a plain call (it stays so), or as a context manager
    (restored on exit), as ``torch.autograd.set_detect_anomaly``.

    >>> tl.autograd.set_detect_anomaly(True)
    >>> with tl.autograd.set_detect_anomaly(False):
    ...     ...
    """

    def __init__(self, mode: bool, check_nan: bool = True) -> None:
        self._prev = _set(mode, check_nan)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        state.anomaly, _local.check_nan = self._prev
