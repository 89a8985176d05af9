"""Synchronous data parallelism as a graph rewrite: one replica of a captured training step's
gradient computation per device, the gradients averaged, one optimizer update.

The replicated part is every node that depends on a sharded graph input (or on
a random draw: each replica draws its own) and is not downstream of a
gradient: the forward, the backward, and the batch statistics a layer keeps
(BatchNorm's running averages). A gradient is a value the backward pass
produced that later code reads (clipping, the optimizer, the write to
``.grad``), so clipping sees the averaged gradients, as with PyTorch's
DistributedDataParallel. Each replica reads its shard of each sharded input
(the captured batch size along axis 0; the new graph's inputs are
``len(devices)`` times longer). Where a replicated value meets the rest of the
step (the optimizer update, an assign) it is averaged over the replicas
(integer values take the first replica's); so the step's loss must be a mean
over its batch (a ``reduction='sum'`` loss gets the gradient of the mean of the
shards' sums). Outputs are combined as ``combine`` says. The parameters, the
optimizer state and the update stay on the first device (or ``home``), which sends the
parameters to the replicas each step and receives their gradients: a
parameter-server reduce, not a ring allreduce.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from ..._device import Device
from ..ir import Graph, Node, Value
from .placer import place

_GRAD_SLOTS = ("grad", "grad_data")
_COMBINE = ("mean", "sum", "concat", "first")


def data_parallel(graph: Graph, devices, *, shard: Iterable[int] | None = None,
                  combine: Mapping[int, str] | None = None, home=None,
                  **place_kwargs) -> Graph:
    """A new graph that runs ``graph`` (a captured training step) as one replica per device
    on equal shards of a batch ``len(devices)`` times the captured one, averaging the
    gradients; placed over ``devices`` (see the module docstring). The original graph is
    unchanged.

    shard: the positions of the inputs split along axis 0 (default: every input with at
    least one dim); the others reach every replica whole. combine: how each output (by
    position) is made from the replicas' values: ``"mean"``, ``"sum"``, ``"concat"`` (along
    axis 0) or ``"first"``; by default a scalar made by a sum (``.sum()``, a loss with
    ``reduction='sum'``) or of an integer dtype is summed (a count of correct predictions),
    other scalars averaged (a mean loss), other outputs concatenated. home: the device of
    the parameters, the optimizer state and the update (default: the first of ``devices``;
    ``home="cpu"`` with ``devices`` all Ray workers keeps every replica remote).

    The update equals the full-batch step's when the loss is a mean over the batch with
    equal weight per example (``reduction='mean'`` without ``weight=`` or ignored targets),
    since it averages the replicas' gradients, as PyTorch's DistributedDataParallel does.
    With ``reduction='sum'`` each replica's gradient is its shard's sum, so the averaged
    update is ``1 / len(devices)`` of the full batch's (scale the learning rate, or the loss,
    by ``len(devices)``); with class weights or ``ignore_index`` each replica normalises by
    its own shard's weight, so the loss is a mean of per-shard means.

    Any batch size: capture the step with a None batch dim (``tl.capture(x, y,
    input_shapes=[(None, 8), (None,)])``). A batch of B rows is then split as
    ``torch.chunk`` / ``nn.DataParallel``'s scatter does: chunks of ``ceil(B / k)`` rows over
    ``ceil(B / ceil(B / k))`` replicas (the first devices; B=1 runs one replica). ``"mean"``
    (the gradients, mean outputs) weights each replica by its rows over B, so a mean loss
    gets the full batch's gradient exactly; with equal chunks that is DDP's plain average.
    A step captured with a static batch takes exactly ``len(devices)`` shards of it.

    >>> with tl.capture(x, y) as step:          # x: one shard, e.g. 32 examples
    ...     opt.zero_grad(); loss = F.cross_entropy(model(x), y); loss.backward()
    ...     opt.step()
    >>> step.set_outputs(loss)
    >>> dp = tl.graph.data_parallel(step, ["cpu:0", "cpu:1"])
    >>> dp.run({0: x64, 1: y64})                # 64 examples, 32 per device
    """
    names = list(devices) if not isinstance(devices, (str, Device)) else [devices]
    devs = [Device(d) for d in names]
    if len(devs) < 2 or len(set(devs)) != len(devs):
        raise ValueError(f"data_parallel: give two or more distinct devices, got "
                         f"{[str(d) for d in devs]}")
    grads = _gradients(graph)
    if not grads:
        raise ValueError("data_parallel: the graph writes no gradients: capture a training "
                         "step (loss.backward() and the optimizer step) with tl.capture")
    split = (sorted({int(i) for i in shard}) if shard is not None
             else [i for i, v in enumerate(graph.inputs) if v.ndim])
    for i in split:
        if not 0 <= i < len(graph.inputs):
            raise ValueError(f"data_parallel: shard names input {i}, the graph has "
                             f"{len(graph.inputs)}")
        v = graph.inputs[i]
        if not v.ndim:
            raise ValueError(f"data_parallel: input {v.label()} ({v.type_str()}) cannot be "
                             "sharded: it has no dims to split")
    dyn = [graph.inputs[i].shape[0] is None for i in split]
    if any(dyn) and not all(dyn):
        raise ValueError("data_parallel: the sharded inputs must all have a static first dim "
                         "or all a None one (capture with input_shapes=[(None, ...), ...])")
    how = dict(combine or {})
    for i, c in how.items():
        if not 0 <= i < len(graph.outputs) or c not in _COMBINE:
            raise ValueError(f"data_parallel: combine={{{i}: {c!r}}}: give an output position "
                             f"below {len(graph.outputs)} and one of {_COMBINE}")
    home_dev = Device(home) if home is not None else devs[0]
    if home is not None and home_dev not in devs:
        names.append(home)
    ids = {graph.inputs[i].id for i in split}
    dp = _Rewrite(graph, devs, grads, ids, home_dev).build(how, names, place_kwargs)
    if split and all(dyn):
        # a smaller batch than len(devices) chunks runs on fewer replicas: their graphs are
        # built (and placed) on first use, over the first devices
        def variant(k: int) -> Graph:
            sub = names[:k] + names[len(devs):]
            if home_dev not in devs[:k] + [Device(n) for n in names[len(devs):]]:
                sub.append(names[devs.index(home_dev)])
            return _Rewrite(graph, devs[:k], grads, ids, home_dev).build(how, sub,
                                                                        place_kwargs)
        dp._variant_factory = variant
    return dp


def _gradients(graph: Graph) -> set[int]:
    """The gradient values: made by a backward() run and read after it; without the record
    of the runs (a loaded graph, a re-derived backward), the values written to ``.grad``."""
    runs = [r for r in (getattr(graph, "_backward_runs", None) or []) if r.end > r.start]
    if runs:
        inside = {n.id for n in graph.nodes if any(r.start <= n.id < r.end for r in runs)}
        made = {v.id for n in graph.nodes if n.id in inside for v in n.outputs}
        out = {v.id for n in graph.nodes if n.id not in inside for v in n.inputs
               if v.id in made}
        out |= {v.id for v in graph.outputs if v.id in made}
        if out:
            return out
    return {n.inputs[0].id for n in graph.nodes
            if n.op == "assign" and n.attrs.get("slot") in _GRAD_SLOTS and n.inputs}


class DataParallelGraph(Graph):
    """The graph :func:`data_parallel` returns: a :class:`Graph` whose :meth:`run` says, for
    a batch of the wrong size, which one it takes and what to do instead."""

    def __init__(self, name: str = "graph"):
        super().__init__(name)
        self.replicas = 1
        self.shards: dict[int, int] = {}   # sharded input position -> captured batch per replica

    _variant_factory = None     # data_parallel's builder of fewer-replica graphs (None dims)

    def run(self, feeds=None, fetches=None, targets=None):
        if self._variant_factory is not None and isinstance(feeds, (dict, list, tuple)):
            return self._run_dynamic(feeds, fetches, targets)
        if isinstance(feeds, (dict, list, tuple)) and self.shards:
            from ..executor import _feed_index
            items = feeds.items() if isinstance(feeds, dict) else enumerate(feeds)
            for key, a in items:
                i = _feed_index(self, key)
                b = self.shards.get(i)
                shape = tuple(a.shape) if hasattr(a, "shape") else np.shape(a)
                if b is None or not shape or shape[0] == b * self.replicas:
                    continue
                v = self.inputs[i]
                raise ValueError(
                    f"data_parallel: input {v.label()} takes a batch of exactly "
                    f"{self.replicas} replicas x {b} (the shard size the step was captured "
                    f"with) = {b * self.replicas} along axis 0, got {shape[0]} (shape "
                    f"{shape}). Each replica's graph has static shapes, so a smaller last "
                    "batch cannot be split: drop it (DataLoader(..., drop_last=True)), run "
                    "it through the original captured step or eagerly, or pad it to "
                    f"{b * self.replicas} (padding changes a mean loss unless the padded "
                    "rows are masked out). To take any batch size, capture the step with a "
                    "None batch dim (tl.capture(x, y, input_shapes=[(None, ...), (None,)]))")
        return super().run(feeds, fetches, targets)

    def _run_dynamic(self, feeds, fetches, targets):
        """A batch of any size B: chunks of ceil(B / replicas) rows (torch.chunk's split, as
        nn.DataParallel's scatter), so ceil(B / ceil(B / replicas)) replicas run."""
        from ..executor import _feed_index
        items = feeds.items() if isinstance(feeds, dict) else enumerate(feeds)
        by_pos = {}
        for key, a in items:
            by_pos[_feed_index(self, key)] = a
        sizes = {}
        for i in self.shards:
            a = by_pos.get(i)
            shape = tuple(a.shape) if hasattr(a, "shape") else np.shape(a)
            if a is not None and shape:
                sizes[i] = shape[0]
        if len(set(sizes.values())) > 1:
            raise ValueError("data_parallel: the sharded inputs must have the same batch size "
                             "(axis 0), got " + ", ".join(f"{self.inputs[i].label()}: {b}"
                                                          for i, b in sizes.items()))
        batch = next(iter(sizes.values()), None)
        if batch == 0:
            raise ValueError("data_parallel: the batch is empty (0 rows along axis 0)")
        k = self.replicas
        if batch is None or -(-batch // -(-batch // k)) == k:
            return super().run(feeds, fetches, targets)
        k = -(-batch // -(-batch // k))
        g = self._variants.get(k) if hasattr(self, "_variants") else None
        if g is None:
            self._variants = getattr(self, "_variants", {})
            g = self._variants[k] = self._variant_factory(k)
        pos = {v.id: i for i, v in enumerate(self.outputs)}

        def mine(v):
            if isinstance(v, Value) and v.id in pos:
                return g.outputs[pos[v.id]]
            raise ValueError(f"data_parallel: a batch of {batch} runs on {k} replicas, whose "
                             "graph has other values: fetch outputs (or nothing) of the "
                             "data-parallel graph")
        if fetches is not None:
            fetches = ([mine(v) for v in fetches] if isinstance(fetches, (list, tuple))
                       else mine(fetches))
        if targets is not None:
            raise ValueError(f"data_parallel: targets= cannot be mapped onto the {k}-replica "
                             f"graph a batch of {batch} runs on; leave it out")
        return g.run(by_pos, fetches, None)


class _Rewrite:
    def __init__(self, graph: Graph, devs: list[Device], grads: set[int], split: set[int],
                 home: Device):
        self.g = graph
        self.devs = devs
        self.home = home
        self.k = len(devs)
        self.split = split
        self.new = DataParallelGraph(f"{graph.name}_x{self.k}")
        self.new.replicas = self.k
        self.new.shards = {}
        # None batch dims: the split points and each replica's weight are computed from the
        # fed batch when the graph runs
        self.dynamic = any(v.shape[0] is None for v in graph.inputs if v.id in split)
        self.weights: dict = {}     # (replica, dtype) -> its share of the batch
        self.shared: dict[int, Value] = {}                # value id -> its one copy
        self.rep: list[dict[int, Value]] = [{} for _ in devs]   # per replica
        self.reduced: dict[int, Value] = {}
        self.copies: dict[int, list[Node]] = {}            # node id -> its copies
        # which nodes are replicated: they read a shard (or a random draw, or a replicated
        # value) and nothing downstream of a gradient
        batched = set(split) | {n.outputs[0].id for n in graph.nodes if n.op == "random"}
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
        read = {v.id for n in graph.nodes for v in n.inputs}
        unread = [v.label() for v in graph.inputs if v.id in split and v.id not in read]
        if unread or not self.replicated:
            raise ValueError(
                f"data_parallel: no node of the step reads input {', '.join(unread) or 'any'}"
                ", so there is nothing to split (the step computes from tensors held as "
                "constants: a slice taken inside the capture block is a new tensor; take it "
                "before the block and pass that)")

    def _add(self, n: Node, inputs, dev: Device | None) -> Node:
        c = self.new.add_node(n.op, inputs, n.attrs, str(dev or self.home),
                              [(v.shape, v.dtype) for v in n.outputs], name=n.name)
        c.pin = str(dev) if dev is not None else None
        if n.id in self.g.node_sources:     # each replica was traced where the original was
            self.new.node_sources[c.id] = self.g.node_sources[n.id]
        if n.id in self.g.node_modules:
            self.new.node_modules[c.id] = self.g.node_modules[n.id]
        for v, cv in zip(n.outputs, c.outputs):
            cv.name = v.name
        if n in self.g.bindings:
            self.new.bindings[c] = self.g.bindings[n]
        self.copies.setdefault(n.id, []).append(c)
        return c

    def _op(self, op: str, inputs: list[Value], attrs: dict, spec) -> Value:
        node = self.new.add_node(op, inputs, attrs, str(self.home), [spec])
        node.pin = str(self.home)
        return node.outputs[0]

    def value(self, v: Value, r: int | None) -> Value:
        """``v`` as replica ``r`` sees it (None: the shared part, which sees averages)."""
        if r is not None and v.id in self.rep[r]:
            return self.rep[r][v.id]
        if v.id in self.shared:
            return self.shared[v.id]
        if v.node is not None and v.node.op == "random":
            return self.rep[0][v.id]        # one draw, not an average of several
        return self._reduce(v, "mean")

    def _reduce(self, v: Value, how: str) -> Value:
        parts = [self.rep[r][v.id] for r in range(self.k)]
        if how == "mean" and v.dtype.kind != "f" or how == "first":
            return parts[0]
        if how == "concat":
            shape = (None if v.shape[0] is None else v.shape[0] * self.k,) + v.shape[1:]
            return self._op("concatenate", parts, {"axis": 0}, (shape, v.dtype))
        key = (v.id, how)
        if key not in self.reduced and how == "mean" and self.dynamic:
            # shards of unequal size: the full batch's mean is each replica's mean weighted
            # by its share of the rows (equal shares: the plain average)
            acc = None
            for r, p in enumerate(parts):
                p = self._op("mul", [p, self._weight(r, v.dtype)], {}, (v.shape, v.dtype))
                acc = p if acc is None else self._op("add", [acc, p], {}, (v.shape, v.dtype))
            self.reduced[key] = acc
        if key not in self.reduced:
            acc = parts[0]
            for p in parts[1:]:
                acc = self._op("add", [acc, p], {}, (v.shape, v.dtype))
            if how == "mean":
                scale = self.new.constant(np.asarray(1.0 / self.k, dtype=v.dtype),
                                          device=str(self.home))
                acc = self._op("mul", [acc, scale], {}, (v.shape, v.dtype))
            self.reduced[key] = acc
        return self.reduced[key]

    def _weight(self, r: int, dtype) -> Value:
        """Replica ``r``'s rows over the batch's, as a 0-d ``dtype`` value (run time)."""
        key = (r, np.dtype(dtype).str)
        if key not in self.weights:
            full, piece = self.pieces[r]
            sizes = [self._cast(self._op("dim_size", [x], {"expr": ("dim", 0, 0)},
                                         ((), np.dtype(np.int64))), dtype)
                     for x in (piece, full)]
            self.weights[key] = self._op("div", sizes, {}, ((), np.dtype(dtype)))
        return self.weights[key]

    def _cast(self, v: Value, dtype) -> Value:
        return self._op("cast", [v], {"dtype": np.dtype(dtype)}, ((), np.dtype(dtype)))

    def build(self, how: dict, names: list, place_kwargs) -> Graph:
        g = self.g
        for n in g.nodes:
            if n.op == "placeholder":
                self._placeholder(n)
            elif n.op == "random":
                for r in range(self.k):     # each replica draws its own, of its shard's size
                    ins = [self.value(v, r) for v in n.inputs]
                    self.rep[r][n.outputs[0].id] = self._add(n, ins, None).outputs[0]
            elif n.id in self.replicated:
                for r, d in enumerate(self.devs):
                    c = self._add(n, [self.value(v, r) for v in n.inputs], d)
                    for v, cv in zip(n.outputs, c.outputs):
                        self.rep[r][v.id] = cv
            else:
                home = self.home if n.op != "constant" else None
                c = self._add(n, [self.value(v, None) for v in n.inputs], home)
                for v, cv in zip(n.outputs, c.outputs):
                    self.shared[v.id] = cv
        for n in g.nodes:       # control edges: an assign after every copy of each reader
            for c in self.copies.get(n.id, []) if n.op == "assign" else ():
                c.control = [cc for m in n.control for cc in self.copies.get(m.id, [])]
        self.new.outputs = [self._output(v, how.get(i)) for i, v in enumerate(g.outputs)]
        for old, new in zip(g.outputs, self.new.outputs):   # results come back where traced
            self.new.traced_devices[new.id] = g.traced_device(old)
        self.new.output_names = g.output_names
        self.new.output_structure = g.output_structure
        self.new._output_template = getattr(g, "_output_template", None)   # nested outputs
        if g.size_predicates:
            self._carry_predicates()
        place(self.new, names, **place_kwargs)
        return self.new

    def _carry_predicates(self) -> None:
        """The step's size predicates, over the new graph's inputs: a sharded input's axis 0
        holds ``replicas`` shards of the size each replica's copy compares."""
        from ..sizes import carry_predicates
        index = {}
        for v in self.g.inputs:
            nv = self.shared.get(v.id) or self.rep[0].get(v.id)
            nv = nv.node.inputs[0] if nv.node.op in ("slice", "split") else nv
            index[v.node.attrs["index"]] = nv.node.attrs["index"]
        # (None batch dims: replicas see unequal shards; the predicates are checked on the
        # whole batch's inputs, as captured)
        sharded = {} if self.dynamic else {index[k]: self.k for k in index
                                           if self.g.inputs[k].id in self.split}
        carry_predicates(self.g, self.new, index, sharded)

    def _placeholder(self, n: Node) -> None:
        v = n.outputs[0]
        if v.id not in self.split:
            self.shared[v.id] = self.new.placeholder(v.shape, v.dtype, device=str(self.home),
                                                     name=v.name)
            return
        if self.dynamic:
            self._dynamic_placeholder(v)
            return
        full = (v.shape[0] * self.k,) + v.shape[1:]
        p = self.new.placeholder(full, v.dtype, device=str(self.home), name=v.name)
        self.new.shards[p.node.attrs["index"]] = v.shape[0]
        b = v.shape[0]
        for r in range(self.k):
            index = (slice(r * b, (r + 1) * b, None),)
            self.rep[r][v.id] = self._op("slice", [p], {"index": index}, (v.shape, v.dtype))

    def _dynamic_placeholder(self, v: Value) -> None:
        """A None batch dim: ``split`` at run-time points ``r * ceil(B / k)`` (torch.chunk)."""
        p = self.new.placeholder(v.shape, v.dtype, device=str(self.home), name=v.name)
        self.new.shards[p.node.attrs["index"]] = None
        if self.k == 1:
            pieces = [p]
        else:
            n = ("dim", 0, 0)
            chunk = ("floordiv", ("add", n, self.k - 1), self.k)
            attrs = {"indices": (0,) * (self.k - 1), "axis": 0,
                     "sizes": tuple((r - 1, ("mul", chunk, r)) for r in range(1, self.k))}
            node = self.new.add_node("split", [p], attrs, str(self.home),
                                     [(v.shape, v.dtype)] * self.k)
            node.pin = str(self.home)
            pieces = list(node.outputs)
        if not hasattr(self, "pieces"):     # the first sharded input's split: the weights'
            self.pieces = [(p, piece) for piece in pieces]
        for r in range(self.k):
            self.rep[r][v.id] = pieces[r]

    def _output(self, v: Value, how: str | None) -> Value:
        if v.id in self.shared:
            return self.shared[v.id]
        if how is None:
            made = v.node
            summed = made is not None and (made.op == "sum" or
                                           made.attrs.get("reduction") == "sum")
            how = ("concat" if v.ndim else "sum" if summed or v.dtype.kind != "f"
                   else "mean")
        if how == "concat" and not v.ndim:
            raise ValueError(f"data_parallel: output {v.label()} is a scalar; it cannot be "
                             "concatenated (combine it by 'mean', 'sum' or 'first')")
        return self._reduce(v, how)


__all__ = ["DataParallelGraph", "data_parallel"]
