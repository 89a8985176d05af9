"""Thread-local switches read on every op call: grad mode, anomaly mode, active capture,
autocast."""
from __future__ import annotations

import threading


class _State(threading.local):
    grad_enabled = True
    anomaly = False
    tracer = None  # the active graph capture of this thread, if any
    autocast = None  # tensorlib.amp's settings while an autocast block is enabled, else None
    fwd_ad = None  # forward AD's listener while a dual level is active (autograd.forward_ad)


state = _State()
