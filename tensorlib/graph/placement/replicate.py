"""Synchronous data parallelism as a graph rewrite: one replica of a captured training step's
gradient computation per device, the gradients averaged, one optimizer update.

The replicated part is every node that depends on a batched graph input and is
not downstream of a gradient (the values the step writes to ``.grad``): the
forward, the backward, and the batch statistics a layer keeps (BatchNorm's
running averages). Each replica reads its shard of the batch (the captured
batch size; the new graph's inputs are ``len(devices)`` times longer). Where a
replicated value meets the rest of the step (the optimizer update, an assign,
an output) it is averaged over the replicas: gradients as PyTorch's
DistributedDataParallel averages them, so the step's loss must be a mean over
its batch; integer values take the first replica's. Scalar outputs (the loss)
are averaged, others concatenated along the batch. The parameters, the
optimizer state and the update stay on the first device, which sends the
parameters to the replicas each step and receives their gradients: a
parameter-server reduce, not a ring allreduce.
"""
from __future__ import annotations

import numpy as np

from ..._device import Device
from ..ir import Graph, Node, Value
from .placer import Placement, place

_GRAD_SLOTS = ("grad", "grad_data")


def data_parallel(graph: Graph, devices, **place_kwargs) -> Graph:
    """A new graph that runs ``graph`` (a captured training step) as one replica per device
    on equal shards of a batch ``len(devices)`` times the captured one, averaging the
    gradients; placed over ``devices`` (see the module docstring). The original graph is
    unchanged.

    >>> with tl.capture(x, y) as step:          # x: one shard, e.g. 32 examples
    ...     opt.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward()
    ...     opt.step()
    >>> step.set_outputs(loss)
    >>> dp = tl.graph.data_parallel(step, ["cpu:0", "cpu:1"])
    >>> dp.run({0: x64, 1: y64})                # 64 examples, 32 per device
    """
    devs = [Device(d) for d in (devices if not isinstance(devices, str) else [devices])]
    if len(devs) < 2 or len(set(devs)) != len(devs):
        raise ValueError(f"data_parallel: give two or more distinct devices, got "
                         f"{[str(d) for d in devs]}")
    grads = {n.inputs[0].id for n in graph.nodes
             if n.op == "assign" and n.attrs.get("slot") in _GRAD_SLOTS and n.inputs}
    if not grads:
        raise ValueError("data_parallel: the graph writes no gradients: capture a training "
                         "step (loss.backward() and the optimizer step) with tl.capture")
    for v in graph.inputs:
        if v.ndim and v.shape[0] is None:
            raise ValueError(f"data_parallel: input {v.label()} has a None batch dim; "
                             "capture the step at the per-device batch size")
    return _Rewrite(graph, devs, grads).build(place_kwargs)


class _Rewrite:
    def __init__(self, graph: Graph, devs: list[Device], grads: set[int]):
        self.g = graph
        self.devs = devs
        self.k = len(devs)
        self.new = Graph(f"{graph.name}_x{self.k}")
        self.shared: dict[int, Value] = {}                # value id -> its one copy
        self.rep: list[dict[int, Value]] = [{} for _ in devs]   # per replica
        self.reduced: dict[int, Value] = {}
        self.copies: dict[int, list[Node]] = {}            # node id -> its copies
        # which nodes are replicated: they read a batched input (or a replicated value) and
        # nothing downstream of a gradient
        batched = {v.id for v in graph.inputs if v.ndim}
        after: set[int] = set()
        self.replicated: set[int] = set()
        for n in graph.nodes:
            if n.op in ("placeholder", "variable", "constant", "random", "assign"):
                continue
            ins = {v.id for v in n.inputs}
            outs = {v.id for v in n.outputs}
            if ins & (grads | after) and not (outs & grads):
                after |= outs
            elif ins & batched:
                self.replicated.add(n.id)
                batched |= outs
        self.batched = batched

    def _add(self, n: Node, inputs, dev: Device | None, attrs=None) -> Node:
        c = self.new.add_node(n.op, inputs, n.attrs if attrs is None else attrs,
                              str(dev or self.devs[0]), [(v.shape, v.dtype) for v in n.outputs],
                              name=n.name)
        c.pin = str(dev) if dev is not None else None
        for v, cv in zip(n.outputs, c.outputs):
            cv.name = v.name
        if n in self.g.bindings:
            self.new.bindings[c] = self.g.bindings[n]
        self.copies.setdefault(n.id, []).append(c)
        return c

    def _op(self, op: str, inputs: list[Value], attrs: dict, spec) -> Value:
        node = self.new.add_node(op, inputs, attrs, str(self.devs[0]), [spec])
        node.pin = str(self.devs[0])
        return node.outputs[0]

    def value(self, v: Value, r: int | None) -> Value:
        """``v`` as replica ``r`` sees it (None: the shared part, which sees averages)."""
        if v.id in self.shared:
            return self.shared[v.id]
        if r is not None:
            return self.rep[r][v.id]
        return self._reduce(v)

    def _reduce(self, v: Value) -> Value:
        if v.id not in self.reduced:
            parts = [self.rep[r][v.id] for r in range(self.k)]
            if v.dtype.kind != "f":
                self.reduced[v.id] = parts[0]
            else:
                acc = parts[0]
                for p in parts[1:]:
                    acc = self._op("add", [acc, p], {}, (v.shape, v.dtype))
                scale = self.new.constant(np.asarray(1.0 / self.k, dtype=v.dtype),
                                          device=str(self.devs[0]))
                self.reduced[v.id] = self._op("mul", [acc, scale], {}, (v.shape, v.dtype))
        return self.reduced[v.id]

    def build(self, place_kwargs) -> Graph:
        g = self.g
        users = g.consumers()
        for n in g.nodes:
            if n.op == "placeholder":
                self._placeholder(n)
            elif n.op == "random" and any(u.id in self.replicated for u in
                                          users.get(n.outputs[0], [])):
                for r in range(self.k):     # each replica draws its own
                    self.rep[r][n.outputs[0].id] = self._add(n, [], None).outputs[0]
                self.shared[n.outputs[0].id] = self.rep[0][n.outputs[0].id]
            elif n.id in self.replicated:
                for r, d in enumerate(self.devs):
                    c = self._add(n, [self.value(v, r) for v in n.inputs], d)
                    for v, cv in zip(n.outputs, c.outputs):
                        self.rep[r][v.id] = cv
            else:
                home = self.devs[0] if n.op not in ("constant", "random") else None
                c = self._add(n, [self.value(v, None) for v in n.inputs], home)
                for v, cv in zip(n.outputs, c.outputs):
                    self.shared[v.id] = cv
        for n in g.nodes:       # control edges: an assign after every copy of each reader
            for c in self.copies.get(n.id, []) if n.op == "assign" else ():
                c.control = [cc for m in n.control for cc in self.copies.get(m.id, [])]
        self.new.outputs = [self._output(v) for v in g.outputs]
        self.new.output_names = g.output_names
        self.new.output_structure = g.output_structure
        place(self.new, self.devs, **place_kwargs)
        return self.new

    def _placeholder(self, n: Node) -> None:
        v = n.outputs[0]
        full = (v.shape[0] * self.k,) + v.shape[1:] if v.ndim else v.shape
        p = self.new.placeholder(full, v.dtype, device=str(self.devs[0]), name=v.name)
        if not v.ndim:
            self.shared[v.id] = p
            return
        b = v.shape[0]
        for r in range(self.k):
            index = (slice(r * b, (r + 1) * b, None),)
            self.rep[r][v.id] = self._op("slice", [p], {"index": index}, (v.shape, v.dtype))

    def _output(self, v: Value) -> Value:
        if v.id not in self.batched:
            return self.value(v, None)
        if v.ndim == 0:
            return self._reduce(v)
        parts = [self.rep[r][v.id] for r in range(self.k)]
        shape = (v.shape[0] * self.k,) + v.shape[1:]
        return self._op("concatenate", parts, {"axis": 0}, (shape, v.dtype))


__all__ = ["Placement", "data_parallel"]
