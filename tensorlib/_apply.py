"""The one funnel every op call goes through.

``apply`` (1) checks devices, (2) runs the backend kernel, (3) wraps the result
in Tensors, (4) records a tape node when grad mode is on and an input needs a
gradient, and (5) tells the active capture, if any. It is the library's
hottest code: keep it short.
"""
from __future__ import annotations

import traceback

from ._core import apply  # noqa: F401  (the funnel itself is compiled: see _core.pyx)


def _user_stack(limit: int = 8) -> list[str]:
    """The caller's frames, without tensorlib's own (for anomaly reports)."""
    import os
    pkg = os.path.dirname(__file__)
    frames = [f for f in traceback.extract_stack()[:-2] if not f.filename.startswith(pkg)]
    return traceback.format_list(frames[-limit:])


def plain_attrs(attrs: dict) -> dict:
    """``attrs`` with traced sizes (``TracedSize``, also inside tuples and lists) as plain
    ints, for a kernel run while a graph is traced."""
    from .graph.tracer import TracedSize

    def plain(v):
        if isinstance(v, TracedSize):
            return int.__int__(v)
        if type(v) is tuple or type(v) is list:
            return type(v)(plain(x) for x in v)
        return v
    return {k: plain(v) for k, v in attrs.items()}


def _device_error(op, inputs):
    devs = ", ".join(str(t._device) for t in inputs)
    return RuntimeError(f"{op.name}: expected all tensors on one device, got {devs}; "
                        "move them with .to(device)")


def _same_device(op, inputs):
    """Inputs on several devices: an error, except inside ``tl.vmap`` (see below) and while
    a graph is traced with them all in this process's host memory (``cpu``, ``cpu:1``):
    there a ``with tl.device("cpu:1")`` block pins ops for the placer rather than
    separating memories, so the others are moved (recorded, no copy) to the first input's
    device."""
    if any(t._device.type == "vmap" for t in inputs):
        # inside tl.vmap: ordinary tensors (and those of outer vmap levels) join the
        # innermost level as unbatched values, through a recorded op (tensorlib.vmap.levels)
        from .vmap.levels import join_level
        return join_level(op, inputs)
    from ._state import state
    host = all(t._device.type == "cpu" and t._device.worker is None for t in inputs)
    if state.tracer is not None and host:
        dev = inputs[0]._device
    else:
        # PyTorch's exception: 0-d host tensors act as scalars beside tensors of one other
        # device (`x.cuda() / torch.tensor(2.0)`, a distribution's float parameters)
        devs = {t._device for t in inputs if not (
            t._device.type == "cpu" and t._device.worker is None and t._data.ndim == 0)}
        if len(devs) != 1:
            raise _device_error(op, inputs)
        dev = devs.pop()
    return [t if t._device is dev else t.to(dev) for t in inputs]


def op_error(op, inputs, attrs, e: Exception) -> Exception:
    """Turn an error from deep inside a kernel into one that names the op."""
    msg = str(e)
    shapes = ", ".join(f"{tuple(t._data.shape)}" for t in inputs)
    dtypes = ", ".join(str(t._data.dtype) for t in inputs)
    if op.infer is not None:  # the op's own shape rules give the most precise message
        try:
            op.infer(*[(t._data.shape, t._data.dtype) for t in inputs], **attrs)
        except (ValueError, TypeError, IndexError) as ie:
            text = str(ie)
            if not text.startswith(op.name + ":"):
                text = f"{op.name}: {text}"
            return _remade(ie, text)
        except Exception:
            pass
    if msg.startswith(op.name + ":") and isinstance(e, (ValueError, TypeError, IndexError)):
        return _remade(e, msg) if type(e) in (ValueError, TypeError) else e
    if isinstance(e, RuntimeError):  # e.g. no GPU: the message already says what to do
        return RuntimeError(f"{op.name}: {msg}") if not msg.startswith(op.name) else e
    if not isinstance(e, (ValueError, TypeError, IndexError, ArithmeticError)):
        return e  # MemoryError, KeyboardInterrupt...: not an input problem
    cls = type(e) if isinstance(e, (ValueError, TypeError, IndexError)) else ValueError
    extra = f" with {attrs}" if attrs else ""
    return _remade(e, f"{op.name}: invalid inputs of shapes {shapes} and dtypes "
                      f"{dtypes}{extra}: {msg}", cls)


def _remade(e: Exception, text: str, cls=None) -> Exception:
    """``cls`` (default ``type(e)``) with the message ``text``; where that class cannot be
    made from a message alone (NumPy's ``_UFuncNoLoopError`` wants its dtypes too), the
    plain built-in it derives from."""
    from .errors import as_torch_style
    cls = as_torch_style(cls or type(e))
    try:
        return cls(text)
    except Exception:
        for base in (TypeError, IndexError, ValueError):
            if isinstance(e, base):
                return base(text)
        return ValueError(text)
