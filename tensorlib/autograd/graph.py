"""Hooks on the tensors that ops save for backward, as ``torch.autograd.graph``.

``saved_tensors_hooks(pack, unpack)``: while the block is active, each tensor an op saves
for its backward goes through ``pack`` when it is saved (the result is kept instead of the
tensor) and through ``unpack`` when the backward reads it. Blocks nest; the innermost pair
applies. ``save_on_cpu()`` is the pair that keeps saved tensors in host memory.

Every op honours them: the compiled tape (``_core._record``) packs what an op's rule will
read (the inputs its ``saves`` names, the outputs of ``saves_output``) with
:func:`pack_saved`, and the walk runs the rule on :meth:`SavedPack.node_for_vjp`; custom
``tl.autograd.Function``s through ``ctx.save_for_backward``.

>>> with tl.autograd.graph.saved_tensors_hooks(lambda t: t.numpy().copy(),
...                                            lambda a: tl.tensor(a)):
...     y = MyFn.apply(x)
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _core
from .mode import state

__all__ = ["disable_saved_tensors_hooks", "save_on_cpu", "saved_tensors_hooks"]


def current_hooks() -> tuple[Callable, Callable] | None:
    """The innermost active (pack, unpack) pair of this thread, or None."""
    stack = getattr(state, "saved_hooks", None)
    if not stack:
        return None
    top = stack[-1]
    if isinstance(top, str):            # inside disable_saved_tensors_hooks
        raise RuntimeError(top)
    return top


class saved_tensors_hooks:
    """Pack/unpack hooks for the tensors saved for backward inside this block.

    ``pack_hook(tensor) -> Any`` runs when an op saves ``tensor``; ``unpack_hook(packed) ->
    Tensor`` when the backward needs it back (it must give a tensor of the saved one's
    shape and dtype).

    >>> with tl.autograd.graph.saved_tensors_hooks(lambda t: t * 1, lambda t: t):
    ...     loss = f(x)
    """

    def __init__(self, pack_hook: Callable[[Any], Any], unpack_hook: Callable[[Any], Any]):
        if not callable(pack_hook) or not callable(unpack_hook):
            raise TypeError("saved_tensors_hooks: pack_hook and unpack_hook must be callables")
        self.pack_hook = pack_hook
        self.unpack_hook = unpack_hook

    def __enter__(self):
        state.saved_hooks = (*(getattr(state, "saved_hooks", None) or ()),
                             (self.pack_hook, self.unpack_hook))
        _core.saved_hooks_depth(1)
        return self

    def __exit__(self, *exc):
        state.saved_hooks = state.saved_hooks[:-1] or None
        _core.saved_hooks_depth(-1)


class save_on_cpu(saved_tensors_hooks):
    """Keep the tensors saved for backward in host memory (``cpu``), moved back to their
    device when the backward reads them, as ``torch.autograd.graph.save_on_cpu``: GPU
    memory traded for transfers. A tensor already on ``cpu`` is kept as it is.
    ``pin_memory`` is accepted for PyTorch's signature (tensorlib's copies are plain).

    >>> with tl.autograd.graph.save_on_cpu():
    ...     loss = model(x.to("cuda")).sum()
    """

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda") -> None:
        def pack(t):
            return (t.device, t if t.device.type == "cpu" else t.detach().to("cpu"))

        def unpack(packed):
            dev, t = packed
            return t if t.device == dev else t.to(dev)

        super().__init__(pack, unpack)


class disable_saved_tensors_hooks:
    """Inside this block, saving a tensor while hooks would apply raises ``RuntimeError``
    with ``error_message`` (for code that relies on saved tensors being kept as they are),
    as PyTorch's."""

    def __init__(self, error_message: str) -> None:
        self.error_message = error_message

    def __enter__(self):
        state.saved_hooks = (*(getattr(state, "saved_hooks", None) or ()), self.error_message)
        _core.saved_hooks_depth(1)
        return self

    def __exit__(self, *exc):
        state.saved_hooks = state.saved_hooks[:-1] or None
        _core.saved_hooks_depth(-1)


def unpack_checked(unpack: Callable, packed: Any, like):
    """``unpack(packed)``, checked to be a tensor like ``like`` (the saved one)."""
    from .._tensor import Tensor
    t = unpack(packed)
    if not isinstance(t, Tensor):
        raise TypeError(f"saved_tensors_hooks: unpack_hook must return a Tensor, got "
                        f"{type(t).__name__}")
    if t._data.shape != like[0] or t._data.dtype != like[1]:
        raise RuntimeError(f"saved_tensors_hooks: unpack_hook returned a tensor of shape "
                           f"{tuple(t._data.shape)} and dtype {t._data.dtype}; the saved one "
                           f"had shape {tuple(like[0])} and dtype {like[1]}")
    return t


class SavedPack:
    """What a tape node keeps of its saved tensors under ``saved_tensors_hooks``: the
    packed values (the node's own inputs keep their edges, not their data)."""

    __slots__ = ("unpack", "inputs", "outputs")

    def __init__(self, unpack, inputs: dict, outputs: dict):
        self.unpack, self.inputs, self.outputs = unpack, inputs, outputs

    def node_for_vjp(self, node):
        """A node like ``node`` whose inputs and saved outputs are the unpacked values, for
        its backward rule to read (the walk still delivers gradients along ``node``'s own
        input edges). An unpacked input keeps the saved input's history, so grad of grad
        goes through it."""
        from .._core import Node, make_tensor
        ins = list(node.inputs)
        for i, (packed, like) in self.inputs.items():
            orig = ins[i]
            t = unpack_checked(self.unpack, packed, like)
            if t is orig or t._data is orig._data:
                t = orig
            elif orig._node is not None or not orig._rg or not state.grad_enabled:
                # the unpacked values with the saved input's flag and history: the rule asks
                # which inputs need a gradient (a leaf's flag too: a fresh tensor from the
                # unpack hook has none, and the leaf lost its gradient)
                t = make_tensor(t._data, orig._device, orig._rg, orig._node, orig._idx)
                t._version = orig._version
            else:
                # a leaf under create_graph: the unpacked values, differentiable to the leaf
                t = orig + (t - orig).detach()
            ins[i] = t
        out_data = node.out_data
        if self.outputs:
            out_data = list(out_data)
            for j, (packed, like) in self.outputs.items():
                out_data[j] = unpack_checked(self.unpack, packed, like)._data
        view = Node(node.op, tuple(ins), node.attrs, out_data, None, node.n_out)
        view.out_meta = node.out_meta
        view.trace = node.trace     # anomaly mode: errors in the rule name the forward call
        return view


def pack_saved(node, positions, out_positions=()) -> SavedPack | None:
    """Pack the inputs of ``node`` at ``positions`` and its saved outputs at
    ``out_positions`` with this thread's innermost hooks (None when none are active). The
    node's own input aliases (inputs with a history) drop their data for an edge-only
    placeholder, so the packed form is what keeps the values alive."""
    hooks = current_hooks()
    if hooks is None:
        return None
    pack, unpack = hooks
    from .._core import make_tensor
    ins = list(node.inputs)
    packed_in = {}
    for i in positions:
        t = ins[i]
        packed_in[i] = (pack(t), (t._data.shape, t._data.dtype))
        if t._node is not None:
            edge = make_tensor(_placeholder(t._data), t._device, t._rg, t._node, t._idx)
            edge._version = t._version
            ins[i] = edge
    packed_out = {}
    for j in out_positions:
        a = node.out_data[j]
        o = make_tensor(a, node.inputs[0]._device, False, None, 0)
        packed_out[j] = (pack(o), (a.shape, a.dtype))
    node.inputs = tuple(ins)
    if packed_out:
        node.out_data = [None if j in packed_out else a for j, a in enumerate(node.out_data)]
    return SavedPack(unpack, packed_in, packed_out)


def _placeholder(a):
    """An array of ``a``'s shape and dtype that holds one element (a zero-stride view)."""
    xp = np if isinstance(a, np.ndarray) else __import__("cupy")
    return xp.broadcast_to(xp.zeros((), a.dtype), a.shape)
