"""The graph IR: a static dataflow graph of registry ops.

A :class:`Graph` is a list of :class:`Node` in topological order. Every edge
is a :class:`Value` with a static ``shape`` (a tuple of ints, ``None`` for a
symbolic dim such as the batch size) and a NumPy ``dtype``. The graph is SSA:
each Value is produced once; state lives in variables.

Node kinds (``Node.op``):

- a registry op name (``"matmul"``, ``"add"``, ...): ``attrs`` are the keyword
  attributes passed to the op's kernel, ``inputs``/``outputs`` are Values.
- ``"placeholder"``: a graph input, fed at run time (``attrs["index"]``: its
  position in ``Graph.inputs``).
- ``"variable"``: a read of a stateful location at the start of a run. The
  location is bound (``Graph.bindings[node]``) to an eager Tensor's storage
  (``attrs["slot"] == "data"``) or to the ``.grad`` attribute of an eager
  Tensor (``"grad"``). Updates made by the graph are written back to the same
  storage, so eager code sees them, and eager updates are seen by the graph.
- ``"constant"``: a value fixed when the graph was built (``attrs["value"]``
  holds a NumPy array, or the value is bound to an eager Tensor, guarded by its
  version counter).
- ``"assign"``: writes its single input to the variable node named by
  ``attrs["var"]`` at the end of a run. It has control edges (``Node.control``)
  from every node that reads the variable, so a scheduler never writes a
  variable before its readers ran.
- ``"random"``: draws from a random stream at run time (``attrs``: ``dist``,
  ``shape``, ``dtype``, parameters); bound to a ``tl.Generator``.
- ``"fused"``: a chain of elementwise ops produced by the fusion pass
  (``attrs["program"]``: the chain as ``[op, [operand refs], attrs]`` rows).

- ``"send"`` / ``"recv"``: the two ends of an edge between devices, made by the
  partitioner (:mod:`tensorlib.graph.placement`) inside the per-device
  subgraphs; ``attrs["key"]`` names the edge (source device, destination
  device, value id). A send copies its input, so the receiver owns what it gets.

Every node has a ``device`` (a device name such as ``"cpu"`` or ``"cuda:0"``)
and may have a ``pin``: the device a ``with tl.device(...)`` block asked for
while it was captured (the placer honours it); a gradient node may have a
``coloc``: the id of the forward node it differentiates, whose device the placer
gives it (it also inherits that node's pin). The placer rewrites devices; the
partitioner splits a placed graph into one subgraph per device.

Serialization: :meth:`Graph.to_json` / :meth:`Graph.from_json` give a plain
JSON document: ``{"format": "tensorlib.graph", "version": 1, "values": [...],
"nodes": [...], "inputs": [...], "outputs": [...]}``. Attributes that are not
JSON types are encoded in one place, :func:`encode_attr` / :func:`decode_attr`:
tuples ``{"__tuple__": [...]}``, slices ``{"__slice__": [start, stop, step]}``,
``Ellipsis`` ``{"__ellipsis__": true}``, dtypes ``{"__dtype__": "float32"}``,
NumPy arrays ``{"__array__": nested list, "dtype": ...}`` (complex ones as ``[re, im]``
pairs in an extra last dim), complex scalars ``{"__complex__": [re, im]}``, devices
``{"__device__": "cpu"}``. Variable values are not in the JSON (the exporter
stores them next to it); their names, shapes and dtypes are.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = ["Graph", "Node", "Value", "encode_attr", "decode_attr", "SOURCE_OPS",
           "REPLICATED_OPS", "EDGE_OPS"]

# nodes with no registry kernel: the executor handles them itself
SOURCE_OPS = frozenset({"placeholder", "variable", "constant", "random"})
# sources a placed graph copies into every device that reads them (no transfer)
REPLICATED_OPS = frozenset({"placeholder", "constant"})
# the two ends of an edge between devices in a partitioned graph
EDGE_OPS = frozenset({"send", "recv"})


class Value:
    """An edge: one output of one node, with static shape and dtype."""

    __slots__ = ("id", "shape", "dtype", "node", "index", "name", "__weakref__")

    def __init__(self, id: int, shape: tuple, dtype, node: Node | None = None, index: int = 0,
                 name: str | None = None):
        self.id = id
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.index = index
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def label(self) -> str:
        return f"%{self.name}" if self.name else f"%{self.id}"

    def type_str(self) -> str:
        return _type_str(self.shape, self.dtype)

    def __repr__(self) -> str:
        return f"Value({self.label()}: {self.type_str()})"


class Node:
    """One op application (or a source: placeholder, variable, constant, random)."""

    __slots__ = ("id", "op", "inputs", "outputs", "attrs", "device", "control", "name", "pin",
                 "coloc", "__weakref__")

    def __init__(self, id: int, op: str, inputs: list[Value], attrs: dict, device: str,
                 name: str | None = None):
        self.id = id
        self.op = op
        self.inputs = list(inputs)
        self.outputs: list[Value] = []
        self.attrs = dict(attrs)
        self.device = device
        self.control: list[Node] = []
        self.name = name
        self.pin: str | None = None     # a device asked for by `with tl.device` at capture
        # id of the forward node a gradient node differentiates: the placer puts it on that
        # node's device (TensorFlow's colocate_gradients_with_ops); None for other nodes
        self.coloc: int | None = None

    @property
    def out(self) -> Value:
        return self.outputs[0]

    def __repr__(self) -> str:
        return f"Node({self.id}: {self.op})"


_SHORT = {"float32": "f32", "float64": "f64", "float16": "f16", "int64": "i64", "int32": "i32",
          "int16": "i16", "int8": "i8", "uint8": "u8", "bool": "bool"}


def _type_str(shape, dtype) -> str:
    dims = ",".join("?" if d is None else str(d) for d in shape)
    return f"{_SHORT.get(np.dtype(dtype).name, np.dtype(dtype).name)}[{dims}]"


class Graph:
    """A static dataflow graph: nodes in topological order, typed edges, variables.

    Build one with ``tl.capture()`` or ``@tl.function``; run it with :meth:`run`
    (feeds and fetches, only the needed subgraph); add gradients with
    :meth:`gradients`; ``print(g)`` lists it; in Jupyter it renders as SVG.
    """

    def __init__(self, name: str = "graph"):
        self.name = name
        self.nodes: list[Node] = []
        self.values: list[Value] = []
        self.inputs: list[Value] = []       # placeholder outputs, in feed order
        self.outputs: list[Value] = []      # default fetches
        # names of the outputs and "dict" when the captured function returned a dict of
        # tensors: saved files and ONNX keep the names, a loaded graph returns the dict
        self.output_names: list[str] | None = None
        self.output_structure: str | None = None
        self.bindings: dict[Node, Any] = {}  # variable/constant/random node -> eager object
        self._next_node = 0
        self._next_value = 0
        self._plans: dict = {}
        self._tracer = None                  # the capture that built the graph, for lookups
        self._examples: list = []            # example feeds seen at capture (for gradients)
        self._backward_runs = None           # backward() calls seen at capture (passes.rederive)
        self._rederive_why = None            # why passes.rederive left the backward as recorded
        # why a capture with None dims gave its inputs the traced shapes (a traced size
        # became a plain Python number the graph cannot recompute), else None
        self.size_specialized: str | None = None
        # the None input dims fixed to their traced sizes by an escaped size {(input, axis): n}
        self.size_fixed: dict = {}
        # size comparisons the traced Python made, ``(cmp, lhs, rhs, traced result)`` over
        # the input dims (see graph.sizes): the graph fits only inputs where each comes out
        # as traced; and for each, where it came from (for messages, see
        # sizes.predicate_mismatch). Every pass that copies a graph carries them
        self.size_predicates: list[tuple] = []
        self.size_predicate_sources: dict[tuple, tuple] = {}
        self.placement = None               # what graph.placement.place decided, if placed
        # value id -> the device it was made on when traced, for the values placement moved:
        # a placed graph's results come back where the eager code made them (by value, so
        # a pass that rebuilds a node keeps it)
        self.traced_devices: dict[int, str] = {}
        # provenance, recorded while tracing: node id -> (the user's source line or None,
        # "file:line") of the innermost frame outside tensorlib that made the node, and node
        # id -> the qualified name of the nn.Module whose forward was running ("" for the
        # outermost module called; absent outside any module). Errors of a run name the
        # line; place(pins={module: dev}) pins a module's nodes (see ``inherit_source``)
        self.node_sources: dict[int, tuple] = {}
        self.node_modules: dict[int, str] = {}
        # id(module) -> (weak reference, qualified name) of the modules seen while tracing,
        # so a pin can name the module object (not saved: a loaded graph takes names)
        self.module_paths: dict[int, tuple] = {}
        self.version = 0                     # bumped by every edit: callers re-plan

    # --- building -------------------------------------------------------------
    def add_node(self, op: str, inputs: Iterable[Value], attrs: dict, device: str,
                 out_specs: Iterable[tuple], name: str | None = None) -> Node:
        """Append a node with one output Value per ``(shape, dtype)`` in ``out_specs``."""
        node = Node(self._next_node, op, list(inputs), attrs, device, name)
        self._next_node += 1
        for i, (shape, dtype) in enumerate(out_specs):
            v = Value(self._next_value, shape, dtype, node, i)
            self._next_value += 1
            node.outputs.append(v)
            self.values.append(v)
        self.nodes.append(node)
        self.invalidate()
        return node

    def placeholder(self, shape, dtype, device: str = "cpu", name: str | None = None) -> Value:
        """A new graph input."""
        node = self.add_node("placeholder", [], {"index": len(self.inputs)}, device,
                             [(tuple(shape), dtype)], name=name)
        node.outputs[0].name = name
        self.inputs.append(node.outputs[0])
        return node.outputs[0]

    def constant(self, array, device: str = "cpu", name: str | None = None) -> Value:
        """A constant holding (a reference to) ``array``."""
        a = np.asarray(array) if not hasattr(array, "__cuda_array_interface__") else array
        node = self.add_node("constant", [], {"value": a}, device, [(a.shape, a.dtype)],
                             name=name)
        return node.outputs[0]

    def inherit_source(self, node: Node, like: Node | None) -> None:
        """Give ``node`` (made by a pass rewriting ``like``) ``like``'s provenance."""
        if like is None:
            return
        src = self.node_sources.get(like.id)
        if src is not None:
            self.node_sources[node.id] = src
        mod = self.node_modules.get(like.id)
        if mod is not None:
            self.node_modules[node.id] = mod

    def describe_node(self, node: Node) -> str:
        """``node %3 = cholesky``, with ``, traced at t.py:7: `code``` when the graph knows
        the line that made it (for error notes)."""
        what = (f"node {node.outputs[0].label() if node.outputs else '#' + str(node.id)} "
                f"= {node.op}")
        src = self.node_sources.get(node.id)
        if src and src[1]:
            what += f", traced at {src[1]}" + (f": `{src[0]}`" if src[0] else "")
        return what

    def invalidate(self) -> None:
        """Forget cached execution plans (call after editing nodes by hand)."""
        self._plans.clear()
        self.version += 1

    # --- queries --------------------------------------------------------------
    def consumers(self) -> dict[Value, list[Node]]:
        users: dict[Value, list[Node]] = {v: [] for v in self.values}
        for n in self.nodes:
            for v in n.inputs:
                users.setdefault(v, []).append(n)
        return users

    @property
    def variables(self) -> list[Node]:
        return [n for n in self.nodes if n.op == "variable"]

    @property
    def assigns(self) -> list[Node]:
        return [n for n in self.nodes if n.op == "assign"]

    def op_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in self.nodes:
            out[n.op] = out.get(n.op, 0) + 1
        return out

    def value(self, ref) -> Value:
        """A Value from a Value, an output index, or a Tensor seen during capture."""
        if isinstance(ref, Value):
            return ref
        if isinstance(ref, int):
            return self.outputs[ref]
        if self._tracer is not None and hasattr(ref, "_data"):
            v = self._tracer.lookup(ref)
            if v is not None:
                return v
        for n in self.nodes:      # an eager tensor bound to a variable of this graph
            if n.op == "variable" and self.bindings.get(n, (None,))[0] is ref \
                    and n.attrs.get("slot") == "data":
                return n.outputs[0]
        raise KeyError(f"{type(ref).__name__} is not a value of this graph (pass a graph "
                       "Value, or a tensor computed inside the capture block)")

    # --- running / autodiff / passes (thin wrappers) ----------------------------
    def run(self, feeds=None, fetches=None, targets=None):
        """Run the graph: ``feeds`` maps placeholders (Value, name, index or the
        captured Tensor) to arrays/Tensors; ``fetches`` is a Value (or list of them),
        default ``self.outputs``; ``targets`` are extra nodes to run (e.g. assigns).
        Only the subgraph the fetches and targets need runs. Returns Tensors."""
        from .executor import run_graph
        from .replay_checks import replay_tail
        out = run_graph(self, feeds, fetches, targets)
        replay_tail(self)       # reseeds / state sets the captured code made after its draws
        return out

    def gradients(self, loss, wrt, grad_loss=None) -> list[Value]:
        """Add gradient nodes d(loss)/d(w) for each ``w`` in ``wrt``; returns their Values."""
        from .autodiff import gradients
        return gradients(self, loss, wrt, grad_loss)

    def traced_device(self, v: Value) -> str:
        """The device ``v`` was made on when the graph was traced (before any placement)."""
        return self.traced_devices.get(v.id, v.node.device if v.node is not None else "cpu")

    def place(self, devices, **kwargs):
        """Place the nodes over ``devices`` (see :func:`tensorlib.graph.placement.place`);
        later runs execute each device's part on its own thread."""
        from .placement import place
        return place(self, devices, **kwargs)

    def optimize(self, passes=None, fetches=None) -> Graph:
        """Run the standard passes in place (DCE, CSE, folding, simplification, fusion)."""
        from .passes import optimize
        return optimize(self, passes, fetches)

    def infer_shapes(self) -> None:
        """Re-derive every Value's shape/dtype from the placeholders with each op's ``infer``
        (propagates ``None`` dims)."""
        from .passes.shapes import infer_shapes
        infer_shapes(self)

    # --- printing -------------------------------------------------------------
    def __str__(self) -> str:
        return format_graph(self)

    def __repr__(self) -> str:
        return (f"<Graph {self.name}: {len(self.nodes)} nodes, {len(self.inputs)} inputs, "
                f"{len(self.outputs)} outputs>")

    def to_onnx(self, path, opset: int | None = None, **kwargs) -> None:
        """Export to ONNX (see :func:`tensorlib.onnx.export_graph`)."""
        from ..onnx import export_graph
        export_graph(self, path, opset=opset, **kwargs)

    def to_dot(self) -> str:
        from .viz import to_dot
        return to_dot(self)

    def _repr_svg_(self) -> str | None:
        # Jupyter's picture; None (Jupyter then shows the text form) without Graphviz, as a
        # notebook cell ending in a graph must not fail on a machine without it
        import shutil
        if shutil.which("dot") is None:
            return None
        from .viz import to_svg
        return to_svg(self)

    # --- serialization ----------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": "tensorlib.graph", "version": 1, "name": self.name,
            "values": [{"id": v.id, "shape": list(v.shape), "dtype": v.dtype.name,
                        "name": v.name} for v in self.values],
            "nodes": [{"id": n.id, "op": n.op, "name": n.name, "device": n.device,
                       "inputs": [v.id for v in n.inputs],
                       "outputs": [v.id for v in n.outputs],
                       "control": [c.id for c in n.control],
                       "attrs": {k: encode_attr(a) for k, a in n.attrs.items()},
                       **({"pin": n.pin} if n.pin else {}),
                       **({"coloc": n.coloc} if n.coloc is not None else {})}
                      for n in self.nodes],
            "inputs": [v.id for v in self.inputs],
            "outputs": [v.id for v in self.outputs],
            **({"traced_devices": {str(k): d for k, d in self.traced_devices.items()}}
               if self.traced_devices else {}),
            **({"placement": self.placement.to_dict()} if self.placement is not None else {}),
            **({"size_predicates": [list(p) for p in self.size_predicates]}
               if self.size_predicates else {}),
            **({"node_sources": {str(k): list(s) for k, s in self.node_sources.items()}}
               if self.node_sources else {}),
            **({"node_modules": {str(k): m for k, m in self.node_modules.items()}}
               if self.node_modules else {}),
        }

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, d: dict) -> Graph:
        if d.get("format") != "tensorlib.graph":
            raise ValueError("not a tensorlib graph document (missing format tag)")
        if d.get("version") != 1:
            raise ValueError(f"unsupported tensorlib graph version {d.get('version')!r}")
        g = cls(d.get("name", "graph"))
        specs = {v["id"]: v for v in d["values"]}
        vals: dict[int, Value] = {}
        nodes: dict[int, Node] = {}
        for nd in d["nodes"]:
            node = Node(nd["id"], nd["op"], [vals[i] for i in nd["inputs"]],
                        {k: decode_attr(a) for k, a in nd["attrs"].items()}, nd["device"],
                        nd.get("name"))
            for k, vid in enumerate(nd["outputs"]):
                s = specs[vid]
                v = Value(vid, tuple(s["shape"]), s["dtype"], node, k, s.get("name"))
                vals[vid] = v
                node.outputs.append(v)
                g.values.append(v)
            node.control = [nodes[c] for c in nd["control"]]
            node.pin = nd.get("pin")
            node.coloc = nd.get("coloc")
            nodes[node.id] = node
            g.nodes.append(node)
        g.inputs = [vals[i] for i in d["inputs"]]
        g.outputs = [vals[i] for i in d["outputs"]]
        g.traced_devices = {int(k): dev for k, dev in d.get("traced_devices", {}).items()}
        if d.get("size_predicates"):
            from .sizes import check_predicates
            g.size_predicates = check_predicates(d["size_predicates"], "size_predicates")
        g.node_sources, g.node_modules = read_provenance(d, nodes)
        if "placement" in d:
            from .placement.placer import Placement
            g.placement = Placement.from_dict(d["placement"])
        g._next_node = max(nodes, default=-1) + 1
        g._next_value = max(vals, default=-1) + 1
        return g

    @classmethod
    def from_json(cls, text: str) -> Graph:
        return cls.from_dict(json.loads(text))


def read_provenance(d: dict, nodes) -> tuple[dict, dict]:
    """``node_sources`` / ``node_modules`` of a graph document (optional plain data: node id
    -> ``[code or null, "file:line"]`` / qualified module name), checked; entries for ids
    not in ``nodes`` are dropped. Malformed ones raise ValueError naming the field."""
    sources: dict[int, tuple] = {}
    modules: dict[int, str] = {}
    raw_s, raw_m = d.get("node_sources") or {}, d.get("node_modules") or {}
    if not isinstance(raw_s, dict) or not isinstance(raw_m, dict):
        raise ValueError("graph document: node_sources and node_modules must be objects "
                         "mapping node ids to entries")
    for k, s in raw_s.items():
        if not (isinstance(s, (list, tuple)) and len(s) == 2
                and all(x is None or isinstance(x, str) for x in s)):
            raise ValueError(f"graph document: node_sources[{k!r}] must be [code or null, "
                             f"'file:line' or null], got {s!r}")
        if str(k).lstrip("-").isdigit() and int(k) in nodes:
            sources[int(k)] = (s[0], s[1])
    for k, m in raw_m.items():
        if not isinstance(m, str):
            raise ValueError(f"graph document: node_modules[{k!r}] must be a string, "
                             f"got {m!r}")
        if str(k).lstrip("-").isdigit() and int(k) in nodes:
            modules[int(k)] = m
    return sources, modules


# --- attribute encoding: the one place that knows non-JSON attribute kinds --------------
def encode_attr(a: Any) -> Any:
    """An attribute as plain JSON (see the module docstring for the tags)."""
    if a is None or isinstance(a, (bool, str)):
        return a
    if isinstance(a, (int, np.integer)):
        return int(a)
    if isinstance(a, (float, np.floating)):
        f = float(a)
        if not np.isfinite(f):
            return {"__float__": repr(f)}
        return f
    if isinstance(a, np.bool_):
        return bool(a)
    if isinstance(a, (complex, np.complexfloating)):
        c = complex(a)
        return {"__complex__": [encode_attr(c.real), encode_attr(c.imag)]}
    if isinstance(a, tuple):
        return {"__tuple__": [encode_attr(x) for x in a]}
    if isinstance(a, list):
        return [encode_attr(x) for x in a]
    if isinstance(a, slice):
        return {"__slice__": [encode_attr(a.start), encode_attr(a.stop), encode_attr(a.step)]}
    if a is Ellipsis:
        return {"__ellipsis__": True}
    if isinstance(a, np.dtype) or (isinstance(a, type) and issubclass(a, np.generic)):
        return {"__dtype__": np.dtype(a).name}
    if isinstance(a, np.ndarray) or hasattr(a, "__cuda_array_interface__"):
        arr = a if isinstance(a, np.ndarray) else a.get()
        if arr.dtype.kind == "c":
            # JSON has no complex numbers: the (re, im) pairs, shape + [2], as view_as_real
            pairs = np.stack([arr.real, arr.imag], axis=-1)
            return {"__array__": pairs.tolist(), "dtype": arr.dtype.name,
                    "shape": list(arr.shape)}
        return {"__array__": arr.tolist(), "dtype": arr.dtype.name, "shape": list(arr.shape)}
    if isinstance(a, dict):
        return {"__dict__": {str(k): encode_attr(v) for k, v in a.items()}}
    from .._device import Device
    if isinstance(a, Device):
        return {"__device__": str(a)}
    raise TypeError(f"graph attribute of type {type(a).__name__} has no JSON encoding; "
                    "add one in tensorlib.graph.ir.encode_attr")


def decode_attr(a: Any) -> Any:
    """Inverse of :func:`encode_attr`."""
    if isinstance(a, list):
        return [decode_attr(x) for x in a]
    if not isinstance(a, dict):
        return a
    if "__tuple__" in a:
        return tuple(decode_attr(x) for x in a["__tuple__"])
    if "__slice__" in a:
        return slice(*(decode_attr(x) for x in a["__slice__"]))
    if "__ellipsis__" in a:
        return Ellipsis
    if "__dtype__" in a:
        return np.dtype(a["__dtype__"])
    if "__array__" in a:
        dt = np.dtype(a["dtype"])
        if dt.kind == "c":
            pairs = np.asarray(a["__array__"], dtype=np.float64).reshape(list(a["shape"]) + [2])
            out = np.empty(pairs.shape[:-1], dt)
            out.real, out.imag = pairs[..., 0], pairs[..., 1]    # no inf * 1j = nan
            return out
        return np.asarray(a["__array__"], dtype=dt).reshape(a["shape"])
    if "__complex__" in a:
        re, im = (decode_attr(x) for x in a["__complex__"])
        return complex(re, im)
    if "__float__" in a:
        return float(a["__float__"])
    if "__dict__" in a:
        return {k: decode_attr(v) for k, v in a["__dict__"].items()}
    if "__device__" in a:
        from .._device import Device
        return Device(a["__device__"])
    raise ValueError(f"unknown graph attribute encoding {sorted(a)}")


# --- printing ---------------------------------------------------------------------------
def _attr_str(k: str, a: Any) -> str:
    if isinstance(a, np.ndarray):
        if a.size <= 4:
            return f"{k}={np.array2string(a, separator=',')}"
        return f"{k}=<{_type_str(a.shape, a.dtype)}>"
    if isinstance(a, np.dtype):
        return f"{k}={a.name}"
    if k == "program":
        return f"{k}=[{'; '.join(str(r[0]) for r in a)}]"
    return f"{k}={a!r}"


def format_graph(g: Graph) -> str:
    """A jaxpr-like listing: one line per node, ``%out:type = op[attrs] %in ...``."""
    lines = []
    ins = ", ".join(f"{v.label()}:{v.type_str()}" for v in g.inputs)
    lines.append(f"{g.name}({ins}) {{")
    for n in g.nodes:
        if n.op == "placeholder":
            continue
        outs = ", ".join(f"{v.label()}:{v.type_str()}" for v in n.outputs)
        args = " ".join(v.label() for v in n.inputs)
        attrs = n.attrs
        if n.op in ("variable", "constant", "random"):
            shown = {k: a for k, a in attrs.items() if k != "value"}
            if n.op == "constant" and "value" in attrs:
                shown = {"value": attrs["value"]}
        elif n.op == "assign":
            shown = {"var": attrs["var"]}
        elif n.op in EDGE_OPS:
            src, dst, _ = attrs["key"]
            lines.append(f"  send {args} -> {dst}" if n.op == "send"
                         else f"  {outs} = recv <- {src}")
            continue
        else:
            shown = attrs
        at = ", ".join(_attr_str(k, a) for k, a in shown.items())
        at = f"[{at}]" if at else ""
        dev = f"  @{n.device}" if n.device not in ("cpu", "cpu:0") else ""
        name = f"  # {n.name}" if n.name and n.op in ("variable", "assign") else ""
        if n.op == "assign":
            upd = n.attrs.get("update")
            kind = (f"{upd}_update[lr={n.attrs['lr']!r}]" if upd in ("sgd", "sgd_gemm")
                    else "assign")
            lines.append(f"  {n.attrs['var']} <- {kind} {args}{dev}".rstrip())
        else:
            lines.append(f"  {outs} = {n.op}{at} {args}".rstrip() + dev + name)
    outs = ", ".join(v.label() for v in g.outputs)
    lines.append(f"  return ({outs})")
    lines.append("}")
    return "\n".join(lines)


def attr_key(a, array, leaf):
    """A comparable form of a node attribute: lists, tuples, dicts and slices are walked;
    each NumPy array is given by ``array(a)`` and every other value by ``leaf(a)`` (CSE and
    tl.function's graph comparison differ only there)."""
    if isinstance(a, np.ndarray):
        return array(a)
    if isinstance(a, (list, tuple)):
        return (type(a).__name__,) + tuple(attr_key(x, array, leaf) for x in a)
    if isinstance(a, dict):
        return ("d",) + tuple(sorted((k, attr_key(v, array, leaf)) for k, v in a.items()))
    if isinstance(a, slice):
        return ("s", a.start, a.stop, a.step)
    return leaf(a)
