"""Anomaly mode: NaN checks in backward with the forward traceback of the culprit."""
from __future__ import annotations

from .mode import state


class detect_anomaly:
    """Within this block, forward ops record their traceback and backward raises
    ``AnomalyError`` naming the op (and where it was called) whose gradient is NaN/inf."""

    def __enter__(self):
        self._prev = state.anomaly
        state.anomaly = True
        return self

    def __exit__(self, *exc):
        state.anomaly = self._prev
