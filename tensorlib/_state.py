"""Thread-local switches read on every op call: grad mode, anomaly mode, active capture."""
from __future__ import annotations

import threading


class _State(threading.local):
    grad_enabled = True
    anomaly = False
    tracer = None  # the active graph capture of this thread, if any


state = _State()
