"""The one funnel every op call goes through.

``apply`` (1) checks devices, (2) runs the backend kernel, (3) wraps the result
in Tensors, (4) records a tape node when grad mode is on and an input needs a
gradient, and (5) tells the active capture, if any. It is the library's
hottest code: keep it short.
"""
from __future__ import annotations

import traceback

import numpy as np

from .autograd.mode import state
from .autograd.node import Node

_ndarray = np.ndarray
_asarray = np.asarray


def apply(op, *inputs, **attrs):
    """Run registry op ``op`` on Tensors ``inputs`` with attributes ``attrs``."""
    dev = inputs[0]._device
    rg = False
    arrays = []
    for t in inputs:
        if t._device is not dev:
            raise _device_error(op, inputs)
        if t._rg:
            rg = True
        arrays.append(t._data)
    if op.check is not None:
        op.check(*arrays, **attrs)
    kernel = op.cpu if dev.type == "cpu" else op.kernel_for(dev.type)
    try:
        out = kernel(*arrays, **attrs)
    except Exception as e:
        raise op_error(op, inputs, attrs, e) from e
    if op.out_device is not None:
        from ._device import Device
        dev = Device(op.out_device(attrs))
    st = state
    multi = type(out) is tuple
    if not multi and out.__class__ is not _ndarray and dev.type == "cpu":
        out = _asarray(out)
    if rg and st.grad_enabled and op.vjp is not None:
        outs = out if multi else (out,)
        versions = None
        if op.saves or op.saves_output:
            versions = []
            if op.saves is True:
                versions.extend([(t._version, t._version[0]) for t in inputs])
            elif op.saves:  # "others": input i is read only for the others' gradients
                n_rg = sum(t._rg for t in inputs)
                versions.extend([(t._version, t._version[0]) for t in inputs
                                 if n_rg - t._rg > 0])
            out_boxes = [[0] for _ in outs] if op.saves_output else None
            if out_boxes:
                versions.extend([(b, 0) for b in out_boxes])
        else:
            out_boxes = None
        node = Node(op, inputs, attrs, outs if op.saves_output else None, versions, len(outs))
        if st.anomaly:
            node.trace = _user_stack()
        if multi:
            node.out_meta = [(o.shape, o.dtype) for o in outs]
            res = tuple(_wrap_box(o, dev, o.dtype.kind == "f", node, i,
                                  out_boxes[i] if out_boxes else [0])
                        for i, o in enumerate(outs))
        else:
            res = _wrap_box(out, dev, True, node, 0, out_boxes[0] if out_boxes else [0])
    elif multi:
        res = tuple(_wrap_box(o, dev, False, None, 0, [0]) for o in out)
    else:
        res = _wrap_box(out, dev, False, None, 0, [0])
    if op.view:  # outputs alias input 0's storage: in-place changes bump one counter
        box = inputs[0]._version
        if multi:
            for r in res:
                r._version = box
        else:
            res._version = box
    tracer = st.tracer
    if tracer is not None:
        tracer.record(op, inputs, attrs, res)
    return res


def _user_stack(limit: int = 8) -> list[str]:
    """The caller's frames, without tensorlib's own (for anomaly reports)."""
    import os
    pkg = os.path.dirname(__file__)
    frames = [f for f in traceback.extract_stack()[:-2] if not f.filename.startswith(pkg)]
    return traceback.format_list(frames[-limit:])


def _device_error(op, inputs):
    devs = ", ".join(str(t._device) for t in inputs)
    return RuntimeError(f"{op.name}: expected all tensors on one device, got {devs}; "
                        "move them with .to(device)")


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
            return type(ie)(text)
        except Exception:
            pass
    if msg.startswith(op.name + ":") and isinstance(e, (ValueError, TypeError, IndexError)):
        return e
    cls = type(e) if isinstance(e, (ValueError, TypeError, IndexError)) else ValueError
    extra = f" with {attrs}" if attrs else ""
    return cls(f"{op.name}: invalid inputs of shapes {shapes} and dtypes {dtypes}{extra}: {msg}")


def _wrap_box(data, dev, rg, node, idx, box):
    t = _new(_Tensor)
    t._data = data
    t._device = dev
    t._rg = rg
    t._node = node
    t._idx = idx
    t._version = box
    t.grad = None
    t._hooks = None
    return t


_new = object.__new__
_Tensor = None  # set by _tensor on import (breaks the import cycle)
