"""Automatic mixed precision: ``autocast`` and ``GradScaler``, as ``torch.amp``.

``tl.autocast(device_type, dtype=None, enabled=True, cache_enabled=None)`` runs the ops of a
block in mixed precision: matrix products and convolutions in float16, ops that need
float32's range (losses; on CUDA also softmax, layer_norm, exp, sum, ...) in float32. The
lists are PyTorch 2.13's, per device type (:mod:`tensorlib.amp.policy`). Outputs keep the
dtype their op ran in; the casts are recorded ops, so float32 parameters get float32
gradients, and ``tl.function`` captures the casts (ONNX export writes them as Cast).

``GradScaler`` scales the loss so that float16 gradients do not underflow, unscales the
gradients before the step, skips steps whose gradients hold inf/NaN and adapts the scale.

Device types: ``"cuda"`` (float16 by default) and ``"cpu"``. PyTorch's CPU default is
bfloat16, which NumPy lacks: ``tl.autocast("cpu")`` raises a ValueError asking for
``dtype=tl.float16``; with it the listed ops run as PyTorch's CPU float16 autocast runs
them (float16 inputs, float32 accumulation, float16 results). bfloat16 raises a TypeError.

Example: a training step ported from PyTorch (``torch.autocast`` -> ``tl.autocast``,
``torch.amp.GradScaler`` -> ``tl.amp.GradScaler``)::

    import tensorlib as tl
    import tensorlib.nn.functional as F

    model = tl.nn.Sequential(tl.nn.Linear(20, 64), tl.nn.ReLU(), tl.nn.Linear(64, 3))
    opt = tl.optim.SGD(model.parameters(), lr=0.1)
    scaler = tl.amp.GradScaler("cpu")
    x, y = tl.randn(32, 20), tl.randint(0, 3, (32,))
    for _ in range(10):
        opt.zero_grad()
        with tl.autocast("cpu", dtype=tl.float16):
            logits = model(x)                    # float16
            loss = F.cross_entropy(logits, y)    # computed in float32
        scaler.scale(loss).backward()            # float32 parameter gradients, scaled
        scaler.unscale_(opt)                     # optional: clip the true gradients
        tl.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(opt)                         # skipped when a gradient is inf/NaN
        scaler.update()

Not covered (PyTorch names computed outside the ops' functions): the ``@`` and ``**``
operators on Tensors (call ``tl.matmul``/``tl.pow``), and the ops listed as such in
:mod:`tensorlib.amp.policy`.
"""
from __future__ import annotations

from .autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled
from .cast import autocast_call
from .custom_fn import custom_bwd, custom_fwd
from .grad_scaler import GradScaler

__all__ = ["GradScaler", "autocast", "autocast_call", "custom_bwd", "custom_fwd",
           "get_autocast_dtype", "is_autocast_enabled"]
