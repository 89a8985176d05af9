"""Tape nodes: one per recorded op call."""
from __future__ import annotations


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


class Node:
    """A recorded op call: what ``Tensor.grad_fn`` returns.

    It keeps the input Tensors (edges to earlier nodes and the values the
    backward rule reads), the attributes, and, for ops whose rule reads the
    result, the output arrays (not Tensors, so no reference cycle forms).
    """

    __slots__ = ("op", "inputs", "attrs", "out_data", "versions", "n_out",
                 "hooks", "retained", "trace", "out_meta", "__weakref__")

    def __init__(self, op, inputs, attrs, out_data, versions, n_out):
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.out_data = out_data
        self.versions = versions
        self.n_out = n_out
        self.hooks = None
        self.retained = None
        self.trace = None
        self.out_meta = None  # (shape, dtype) per output, for multi-output ops

    def zeros_for(self, i: int):
        """A zero gradient for output ``i`` (an output nobody used)."""
        from ..creation import zeros
        shape, dtype = self.out_meta[i]
        return zeros(shape, dtype=dtype, device=self.inputs[0]._device)

    @property
    def name(self) -> str:
        return _camel(self.op.name)

    def __repr__(self) -> str:
        return f"<{self.name}>"

    # --- what backward rules read -------------------------------------
    def output(self, i: int = 0):
        """Output ``i`` as a Tensor attached to this node (for rules that use it)."""
        from .._tensor import _wrap
        if self.out_data is None:
            raise RuntimeError(_freed_message(self))
        return _wrap(self.out_data[i], self.inputs[0]._device, True, self, i)

    @property
    def out(self):
        return self.output(0)

    @property
    def next_functions(self):
        if self.inputs is None:
            return ()
        return tuple((t._node, t._idx) if t._node is not None else (None, 0) for t in self.inputs)


def _freed_message(node) -> str:
    return (f"{node!r}: trying to backward through the graph a second time (or to read "
            "saved tensors after they were freed). The first backward() freed the "
            "intermediate values; pass retain_graph=True to the first call if you need "
            "to backward through it again.")
