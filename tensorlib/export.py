"""tensorlib's own graph file: ``tl.save_graph(graph, path)`` / ``tl.load_graph(path)``.

A graph file is one zip archive with exactly two members:

- ``graph.json``: ``{"format": "tensorlib.graphfile", "version": 1, "graph": <the IR as
  Graph.to_dict()>, "owners": [...], "bind": {...}, "constants": {...}, "signature":
  {...}}``. ``owners`` lists the stateful tensors the graph reads and writes (name,
  shape, dtype, requires_grad, whether a ``.grad`` is stored); ``bind`` maps each
  variable/assign node id to ``[owner index, slot]``; ``constants`` maps constant node
  ids to tensor names in the weights (their values are not inlined in the JSON);
  ``unread`` (optional) lists the model's parameters and buffers the graph never reads
  (BatchNorm's ``num_batches_tracked``), stored as ``unread.<name>``, so the loaded
  graph's ``state_dict()`` loads into the model with ``strict=True``.
- ``weights.safetensors``: the owners' values (``name``) and gradients (``name.grad``)
  and the constants, written with :mod:`tensorlib.io`'s safetensors writer.

Loading is data only (no pickle, no code from the file) and runs in a process that
has no model code. A file is checked before anything runs: archive members, sizes
(bounded reads, so a zip bomb stops at the limit), JSON structure, every op name
against the registry, attribute encodings and dtypes, shapes against each op's
``infer`` rule, the geometry of ops with unchecked Cython kernels, and element
counts. A :class:`GraphModule` checks again per concrete input signature before it
runs, so ``None`` dims cannot smuggle in shapes a kernel would trust.
"""
from __future__ import annotations

import io as _io
import json
import math
import os
import zipfile
import zlib
from collections import OrderedDict
from typing import Any

import numpy as np

from .graph.ir import SOURCE_OPS, Graph, Node, Value
from .graph.runtime import random_shape

__all__ = ["FORMAT", "VERSION", "GraphFileError", "GraphModule", "load_graph", "save_graph"]

FORMAT = "tensorlib.graphfile"
VERSION = 1
_MEMBERS = ("graph.json", "weights.safetensors")
MAX_JSON_BYTES = 64 << 20
MAX_FILE_BYTES = 8 << 30
MAX_ELEMENTS = 1 << 31          # per value: a larger tensor is a hostile or broken file
_DTYPES = frozenset({"float16", "float32", "float64", "int8", "int16", "int32", "int64",
                     "uint8", "bool", "complex64", "complex128"})
_SLOTS = {"variable": {"data", "grad"}, "assign": {"data", "grad", "grad_data", "input"}}


class GraphFileError(ValueError):
    """A graph file is not valid: corrupt, truncated, hostile, or of an unknown version."""


# --- save ---------------------------------------------------------------------------------
def _as_graph(obj) -> Graph:
    from .graph.capture import Function
    if isinstance(obj, Graph):
        return obj
    if isinstance(obj, GraphModule):
        return obj.graph
    if isinstance(obj, Function):
        gs = obj.graphs
        if not gs:
            raise ValueError(f"save_graph: the tl.function {obj._name} has not been called "
                             "yet, so it holds no graph: call it once on an example, or pass "
                             "fn.get_graph(*example_args)")
        if len(gs) != 1:
            steady = _steady_state(obj)
            if steady is not None:
                return steady
            pick = ("pass the one to save: fn.graphs[-1] is the latest trace (fn.get_graph("
                    "*example_args) runs the function when no kept graph fits those arguments)")
            if obj.input_signature is None:
                raise ValueError(f"save_graph: the tl.function {obj._name} holds {len(gs)} "
                                 f"traced graphs; {pick} or give it an input_signature so "
                                 "one graph serves every call")
            raise ValueError(f"save_graph: the tl.function {obj._name} holds {len(gs)} traced "
                             f"graphs although it has an input_signature: {_why_retraced(obj)}"
                             f"; {pick}")
        return gs[0]
    raise TypeError(f"save_graph: expected a Graph, a tl.function or a GraphModule, got "
                    f"{type(obj).__name__}")


def _steady_state(fn) -> Graph | None:
    """A training step is traced twice for one call signature: its first call finds the
    parameters' ``.grad`` None, later calls find it set. When that is all that set its
    graphs apart, the graph the next call replays (``.grad`` set) is the one to save."""
    if len(fn._cache) != 1 or not fn.retrace_reasons:
        return None
    if not all(".grad None -> set" in r for r in fn.retrace_reasons):
        return None
    entries = next(iter(fn._cache.values()))
    live = [e for e in entries if e.check() is None]
    return live[0].graph if len(live) == 1 else None


def _why_retraced(fn) -> str:
    """Why a tl.function with an input_signature holds several graphs, in words."""
    entries = [e for es in fn._cache.values() for e in es]
    why = next((e.fixed_why for e in entries if getattr(e, "fixed_why", "")), "")
    if why and "tensorlib limitation" in why:     # the escape is in library code
        return f"{why}; the graph cannot recompute that size and is traced once per input shape"
    if why:
        return (f"{why}, so the graph cannot recompute that size and is traced once per input "
                "shape. Fix that line so one graph serves every call (a size may go to "
                "reshape/expand/zeros/arange as it is; slicing with it, as buf[:T, :T], fixes "
                "it: build such a mask from tl.arange comparisons)")
    if any(getattr(e, "sizes", None) is not None for e in entries):
        return ("it calls backward(), and a training step is traced once per input shape "
                "(None dims serve inference graphs)")
    if fn.retrace_reasons:
        return f"it was traced again because {fn.retrace_reasons[-1]}"
    return ("its calls differ in something the input_signature does not cover (a Python "
            "argument, a module's train/eval mode or attributes)")


def _host(a) -> np.ndarray:
    if hasattr(a, "__cuda_array_interface__"):
        a = a.get()
    a = np.asarray(a)
    return a if a.flags.c_contiguous else a.copy(order="C")   # keeps 0-d arrays 0-d


def graph_document(graph: Graph, model=None, names: dict[int, str] | None = None
                   ) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON document and the weight arrays of ``graph`` (what save_graph writes); with
    ``model``, its parameters and buffers the graph does not read are kept too. ``names``
    (``id(tensor)`` or ``id(its array)`` -> name, see :func:`state_names`) names the state
    the graph reads or writes, before the names the trace gave it."""
    names = names or {}
    owners: list[dict] = []
    owner_index: dict[int, int] = {}
    weights: dict[str, np.ndarray] = {}
    bind: dict[str, list] = {}
    used: set[str] = set()

    def owner_of(t, base: str) -> int:
        k = owner_index.get(id(t))
        if k is not None:
            return k
        name = names.get(id(t)) or names.get(id(t._data)) or base or f"var{len(owners)}"
        i, out = 1, name
        while out in used:
            i += 1
            out = f"{name}_{i}"
        used.add(out)
        owner_index[id(t)] = len(owners)
        owners.append({"name": out, "shape": list(t._data.shape), "dtype": t._data.dtype.name,
                       "requires_grad": bool(t.requires_grad), "device": str(t._device),
                       "grad": False, "_t": t})
        weights[out] = _host(t._data)
        return owner_index[id(t)]

    # data slots first so an owner takes its variable's name, not "<name>.grad"
    order = sorted((n for n in graph.nodes if n.op in ("variable", "assign")
                    and n in graph.bindings), key=lambda n: n.attrs.get("slot") != "data")
    for n in order:
        owner, slot = graph.bindings[n]
        base = (n.attrs.get("var") if n.op == "assign" else n.name) or ""
        if base.endswith(".grad"):
            base = base[:-5]
        k = owner_of(owner, base)
        bind[str(n.id)] = [k, slot]
        if slot == "grad":
            owners[k]["grad"] = True
    by_data = {id(o["_t"]._data): k for k, o in enumerate(owners)}
    for o in owners:
        t = o.pop("_t")
        if o["grad"]:
            if t.grad is None:
                o["grad"] = False
            else:
                weights[o["name"] + ".grad"] = _host(t.grad._data)
    constants = {}
    saved_attrs = {}
    for n in graph.nodes:
        if n.op == "constant":
            key = f"constant.{n.id}"
            while key in weights:
                key += "_"
            weights[key] = _host(n.attrs["value"])
            constants[str(n.id)] = key
            saved_attrs[n] = n.attrs
            n.attrs = {k: v for k, v in n.attrs.items() if k != "value"}
    try:
        gdict = graph.to_dict()
    finally:
        for n, a in saved_attrs.items():
            n.attrs = a
    from . import __version__
    doc = {"format": FORMAT, "version": VERSION, "tensorlib_version": __version__,
           "graph": gdict, "owners": owners, "bind": bind, "constants": constants,
           "signature": signature(graph)}
    gdict.pop("size_predicates", None)     # the file keeps them at the top (checked apart)
    preds = graph.size_predicates
    if preds:
        # size comparisons the traced Python made (assert t <= 8): a loaded graph cannot
        # trace again, so it checks them on each call (see GraphModule._feeds)
        from .graph.sizes import MAX_PREDICATES
        if len(preds) > MAX_PREDICATES:
            raise ValueError(
                f"save_graph: the graph holds {len(preds)} size predicates, more than a graph "
                f"file holds ({MAX_PREDICATES}); trace it without None dims (or with fewer "
                "comparisons of their sizes) to save it")
        doc["size_predicates"] = [list(p) for p in preds]
        # where each came from, for the message a violating call raises
        doc["size_predicate_sources"] = [_source_doc(graph.size_predicate_sources.get(p))
                                         for p in preds]
    if model is not None:
        # by array too: a module's buffer may be bound through another tensor object that
        # shares its memory (BatchNorm's running stats written by a training step)
        read = {i for b in graph.bindings.values() if isinstance(b, tuple)
                and hasattr(b[0], "_data") for i in (id(b[0]), id(b[0]._data))}
        state = model.state_dict()
        doc["unread"] = _unread_state(model, state, read, weights)
        doc["aliases"] = _aliases(state, owners, owner_index, by_data)
    return doc, weights


def _aliases(state: dict, owners: list[dict], by_id: dict, by_data: dict) -> list[dict]:
    """The names in the model's ``state_dict()`` (``state``) of variables saved under another
    name (a tied weight: the output layer's ``head.weight`` is the embedding's
    ``emb.weight``), with the index of the variable they name, so the loaded graph's
    ``state_dict()`` has every key."""
    out = []
    for name, t in state.items():
        if not hasattr(t, "_data"):
            continue
        k = by_id.get(id(t), by_data.get(id(t._data)))
        if k is not None and owners[k]["name"] != name:
            out.append({"name": name, "of": k})
    return out


def _unread_state(model, state: dict, read: set, weights: dict) -> list[dict]:
    """The entries of ``state`` (``model.state_dict()``) the graph does not read, with their
    weights."""
    live = dict(model.named_parameters())
    live.update(getattr(model, "named_buffers", list)())
    out = []
    for name, t in state.items():
        t = live.get(name, t)
        if not hasattr(t, "_data") or id(t) in read or id(t._data) in read:
            continue
        key = "unread." + name
        weights[key] = _host(t._data)
        out.append({"name": name, "key": key, "requires_grad": bool(t.requires_grad)})
    return out


_TREE_DEPTH = 64
_SCALARS = (type(None), bool, int, float, str)


def _output_template(graph: Graph):
    """The nested output structure a tl.function returned, when the flat outputs (one tensor,
    a tuple of several, or a dict of tensors: ``output_structure``) do not say it already."""
    t = getattr(graph, "_output_template", None)
    if t is None or t[0] == "T" or graph.output_structure == "dict" and \
            not (t[0] == "D" and len(t) > 2):   # (a dict subclass keeps its type)
        return None
    if t[0] == "U" and len(t) == 2 and len(t[1]) > 1 and \
            all(x[0] == "T" and x[1] == i for i, x in enumerate(t[1])):
        return None     # a plain tuple of each output once, in order: the flat outputs say it
    return t


def _scalar_json(x, where: str):
    if isinstance(x, float) and not math.isfinite(x):
        return {"float": repr(x)}
    if isinstance(x, _SCALARS):
        return x
    raise ValueError(f"save_graph: the function's output holds a {type(x).__name__} at "
                     f"{where}; a graph file keeps tensors, None, bool/int/float/str, and "
                     "lists, tuples and dicts (with such keys) of them: return a tensor there")


def tree_json(template, n_outputs: int) -> dict:
    """``template`` (capture's output structure) as JSON-ready data: ``{"t": k}`` for the
    k-th graph output, ``{"v": x}`` / ``{"v": {"float": "nan"}}`` for a Python value, and
    ``{"list"|"tuple": [...]}`` / ``{"dict": [[key, sub], ...]}`` for containers, and
    ``{"namedtuple": {"type": "module:qualname", "fields": [...], "items": [...]}}`` for a
    namedtuple (its type by name, as data: see :func:`_namedtuple_type`). An output the
    function returned in several places (``return y, y``) is named by each."""
    out: dict = {}
    # iterative: a deeply nested output must not hit Python's recursion limit here
    stack = [(template, out, "out", 0)]
    while stack:
        t, dst, where, depth = stack.pop()
        if depth > _TREE_DEPTH:
            raise ValueError(f"save_graph: the function's output is nested more than "
                             f"{_TREE_DEPTH} levels deep (at {where})")
        tag = t[0]
        if tag == "T":
            if not 0 <= t[1] < n_outputs:
                raise ValueError("save_graph: the graph's outputs no longer match the "
                                 "structure the function returned")
            dst["t"] = t[1]
        elif tag == "S":
            dst["v"] = _scalar_json(t[1], where)
        elif tag == "Z":
            # a size computed per run (x.shape[0] under a None dim): graph output k, an int
            if not 0 <= t[1] < n_outputs:
                raise ValueError("save_graph: the graph's outputs no longer match the "
                                 "structure the function returned")
            dst["size"] = t[1]
        elif tag == "C" or tag == "D" and len(t) > 2 and type(t[2]) is not OrderedDict:
            kind = type(t[1] if tag == "C" else t[2]).__qualname__
            raise ValueError(f"save_graph: the function's output holds a {kind} at {where}; "
                             "a graph file keeps tensors, sizes, None, bool/int/float/str, "
                             "and lists, tuples, namedtuples, dicts and OrderedDicts of them: "
                             "return a dict or namedtuple there")
        elif tag == "U" and len(t) > 2:
            cls = t[2]
            subs = [{} for _ in t[1]]
            dst["namedtuple"] = {"type": f"{cls.__module__}:{cls.__qualname__}",
                                 "fields": [str(f) for f in cls._fields], "items": subs}
            stack += [(x, d, f"{where}.{f}", depth + 1) for f, x, d in
                      zip(cls._fields, t[1], subs)]
        elif tag in ("L", "U"):
            subs = [{} for _ in t[1]]
            dst["list" if tag == "L" else "tuple"] = subs
            stack += [(x, d, f"{where}[{i}]", depth + 1) for i, (x, d) in
                      enumerate(zip(t[1], subs))]
        else:
            items = []
            for k, x in t[1]:
                d: dict = {}
                items.append([_scalar_json(k, f"{where} (a dict key)"), d])
                stack.append((x, d, f"{where}[{k!r}]", depth + 1))
            dst["odict" if len(t) > 2 else "dict"] = items
    return out


def tree_template(tree, n_outputs: int):
    """The inverse of :func:`tree_json`, checking a (possibly hostile) file's tree: every
    graph output is used (an output returned twice is named twice), containers are bounded
    in depth, leaves are plain values; a namedtuple's type is looked up by name
    (:func:`_namedtuple_type`)."""
    def scalar(x):
        if isinstance(x, dict):
            _need(list(x) == ["float"] and x["float"] in ("inf", "-inf", "nan"),
                  "signature.tree: bad float encoding")
            return float(x["float"])
        _need(isinstance(x, _SCALARS), "signature.tree: a leaf is not a plain value")
        return x

    seen: list[int] = []
    root: list = [None]
    stack = [(tree, root, 0, 0)]
    fill = []           # (list, index, builder) filled once the children are built
    while stack:
        node, dst, i, depth = stack.pop()
        _need(depth <= _TREE_DEPTH, "signature.tree is nested too deeply")
        _need(isinstance(node, dict) and len(node) == 1, "signature.tree: bad node")
        (tag, val), = node.items()
        if tag == "t":
            _need(_is_int(val) and 0 <= val < n_outputs, "signature.tree: bad output index")
            seen.append(val)
            dst[i] = ("T", val)
        elif tag == "size":
            _need(_is_int(val) and 0 <= val < n_outputs, "signature.tree: bad output index")
            seen.append(val)
            dst[i] = ("Z", val)
        elif tag == "v":
            dst[i] = ("S", scalar(val))
        elif tag in ("list", "tuple", "dict", "odict"):
            _need(isinstance(val, list), "signature.tree: a container is not a list")
            kids: list = [None] * len(val)
            if tag in ("dict", "odict"):
                _need(all(isinstance(kv, list) and len(kv) == 2 for kv in val),
                      "signature.tree: a dict item is not a [key, value] pair")
                keys = [scalar(k) for k, _ in val]
                fill.append((dst, i, "D" if tag == "dict" else "O", keys, kids))
                stack += [(v, kids, j, depth + 1) for j, (_, v) in enumerate(val)]
            else:
                fill.append((dst, i, "L" if tag == "list" else "U", None, kids))
                stack += [(v, kids, j, depth + 1) for j, v in enumerate(val)]
        elif tag == "namedtuple":
            _need(isinstance(val, dict) and set(val) == {"type", "fields", "items"},
                  "signature.tree: a namedtuple needs type, fields and items")
            name, fields, items = val["type"], val["fields"], val["items"]
            _need(isinstance(name, str) and name.count(":") == 1 and len(name) <= 1000
                  and isinstance(fields, list) and all(isinstance(f, str) for f in fields)
                  and isinstance(items, list) and len(items) == len(fields),
                  "signature.tree: a namedtuple's type, fields or items are malformed")
            kids = [None] * len(items)
            fill.append((dst, i, "N", _namedtuple_type(name, fields), kids))
            stack += [(v, kids, j, depth + 1) for j, v in enumerate(items)]
        else:
            _need(False, f"signature.tree: unknown node kind {tag[:40]!r}")
    _need(sorted(set(seen)) == list(range(n_outputs)),
          "signature.tree does not use every graph output")
    for dst, i, tag, keys, kids in reversed(fill):     # children before their parents
        if tag == "N":
            dst[i] = ("U", tuple(kids)) if keys is None else ("U", tuple(kids), keys)
        elif tag == "O":
            dst[i] = ("D", tuple(zip(keys, kids)), OrderedDict())
        else:
            dst[i] = (tag, tuple(zip(keys, kids)) if tag == "D" else tuple(kids))
    return root[0]


_NAMEDTUPLES: dict = {}


def _namedtuple_type(name: str, fields: list):
    """The namedtuple class a graph file names (``"module:qualname"``) with these fields: the
    class itself when its module is already imported in this process (looked up, never
    imported: a file must not make the loader run code, which is why it holds no pickle),
    else a namedtuple made with that name and fields (``out.loss`` keeps working), else
    (names that are no identifiers) None: a plain tuple."""
    import sys
    mod, qual = name.split(":")
    obj = sys.modules.get(mod)
    for part in qual.split("."):
        if obj is None or part.startswith("__"):
            obj = None
            break
        obj = getattr(obj, part, None)
    if isinstance(obj, type) and issubclass(obj, tuple) and \
            list(getattr(obj, "_fields", ())) == fields:
        return obj
    key = (name, tuple(fields))
    if key not in _NAMEDTUPLES:
        if len(_NAMEDTUPLES) > 256:     # (files naming ever new types: keep the cache small)
            _NAMEDTUPLES.clear()
        import collections
        try:
            _NAMEDTUPLES[key] = collections.namedtuple(qual.rsplit(".", 1)[-1], fields)
        except (ValueError, TypeError):
            _NAMEDTUPLES[key] = None
    return _NAMEDTUPLES[key]


def signature(graph: Graph) -> dict:
    """Inputs and outputs of a graph: name, shape (None for dynamic dims), dtype, device;
    ``tree`` is the nested output structure (see :func:`tree_json`) when it is more than
    one tensor, a tuple of several or a dict of tensors (``structure: "dict"``)."""
    def spec(v: Value, i: int, kind: str) -> dict:
        names = graph.output_names if kind == "output" else None
        name = names[i] if names and i < len(names) else v.name or f"{kind}{i}"
        return {"name": name, "shape": list(v.shape), "dtype": v.dtype.name,
                "device": v.node.device if v.node is not None else "cpu"}
    sig = {"inputs": [spec(v, i, "input") for i, v in enumerate(graph.inputs)],
           "outputs": [spec(v, i, "output") for i, v in enumerate(graph.outputs)]}
    if graph.output_structure:
        sig["structure"] = graph.output_structure
    tmpl = _output_template(graph)
    if tmpl is not None:
        try:
            sig["tree"] = tree_json(tmpl, len(graph.outputs))
        except ValueError:      # save_graph says why; a signature only describes
            pass
    return sig


def state_names(model=None, function=None) -> dict[int, str]:
    """``id(tensor)`` and ``id(its array)`` -> a readable name: ``model``'s parameters and
    buffers by their ``state_dict`` keys, and the state of the optimizers ``function``
    reaches by name (``opt.state.0.weight.exp_avg``: optimizer, parameter, key)."""
    named: dict[int, str] = {}

    def put(t, k: str) -> None:
        if hasattr(t, "_data"):
            named.setdefault(id(t), k)
            named.setdefault(id(t._data), k)
    for attr in ("named_parameters", "named_buffers"):
        fn = getattr(model, attr, None)
        if fn is not None:
            for k, t in fn():
                put(t, k)
    for oname, opt in _optimizers(function):
        i = 0
        for group in opt.param_groups:
            for p in group["params"]:
                pname = named.get(id(p), str(i))
                for key, v in (opt.state.get(p) or {}).items():
                    put(v, f"{oname}.state.{pname}.{key}")
                i += 1
    return named


def _optimizers(function) -> list[tuple[str, Any]]:
    """(name, optimizer) for the optimizers a tl.function's Python function names (its
    closure variables and the globals its code reads)."""
    from .optim.optimizer import Optimizer
    fn = getattr(function, "fn", function)
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    found: dict[int, tuple[str, Any]] = {}
    cells = zip(code.co_freevars, getattr(fn, "__closure__", None) or ())
    for name, cell in cells:
        try:
            v = cell.cell_contents
        except ValueError:      # an empty cell
            continue
        if isinstance(v, Optimizer):
            found.setdefault(id(v), (name, v))
    glb = getattr(fn, "__globals__", {})
    for name in code.co_names:
        v = glb.get(name)
        if isinstance(v, Optimizer):
            found.setdefault(id(v), (name, v))
    return list(found.values())


def name_parameters(g: Graph, model, names: dict[int, str] | None = None) -> None:
    """Name the variables after the module's parameters/buffers (``fc.weight``): the ONNX
    initializers and a saved graph's ``state_dict`` keys carry the names PyTorch users
    expect (and ``model.load_state_dict`` takes). ``names``: see :func:`state_names`."""
    named = names if names is not None else state_names(model)
    for n in g.nodes:
        if n.op == "variable" and n in g.bindings and n.attrs.get("slot") == "data":
            t = g.bindings[n][0]
            k = named.get(id(t)) or named.get(id(getattr(t, "_data", None)))
            if k is not None:
                n.name = n.out.name = k


def _owning_module(obj):
    """The one Module a tl.function runs (itself, or the only top-level Module its Python
    function reaches), whose names the saved variables take; else None."""
    from .graph.capture import Function
    from .nn.module import Module
    obj = _source_function(obj)
    if not isinstance(obj, Function):
        return None
    from ._closures import reachable
    mods = [o for o in reachable(obj.fn) if isinstance(o, Module)]
    subs = {id(m) for top in mods for _, m in top.named_modules() if m is not top}
    tops = [m for m in mods if id(m) not in subs]
    return tops[0] if len(tops) == 1 else None


def _source_function(obj):
    """The tl.function that traced ``obj`` (a Graph from ``get_graph`` or ``fn.graphs``),
    or ``obj`` itself."""
    ref = getattr(obj, "_function", None) if isinstance(obj, Graph) else None
    fn = ref() if ref is not None else None
    return fn if fn is not None else obj


def _trains(g: Graph, n: Node) -> bool:
    """Whether assign ``n`` is a training update: it writes a gradient, or a tensor that
    requires grad (a parameter; a Session graph's optimizer updates, derived symbolically)."""
    if n.attrs.get("slot") == "grad":
        return True
    owner = g.bindings.get(n, (None,))[0]
    return bool(getattr(owner, "_rg", False))


def save_graph(graph_or_function, path: str | os.PathLike, model=None) -> None:
    """Write a captured graph (``tl.capture`` / ``tl.function`` / a loaded GraphModule) to
    ``path``: one zip file with ``graph.json`` and ``weights.safetensors`` (no pickle).
    Inference graphs and whole training steps (variables, gradients, updates) both work.
    The variables take the names of ``model``'s parameters (by default the one Module a
    ``tl.function`` runs), so the loaded graph's ``state_dict()`` loads into that model.

    >>> tl.save_graph(predict, "model.tlg")          # predict = tl.function(...)
    >>> m = tl.load_graph("model.tlg"); m(x)
    """
    from .io import _atomic_write, _serialize
    g = _as_graph(graph_or_function)
    owner = model if model is not None else _owning_module(graph_or_function)
    if owner is None and isinstance(graph_or_function, GraphModule):
        owner = graph_or_function       # re-saved: its unread state goes along
    names = state_names(owner, _source_function(graph_or_function))
    if names:
        name_parameters(g, owner, names)
    if g.assigns and not g._backward_runs and not any(_trains(g, n) for n in g.assigns):
        import warnings
        warnings.warn("save_graph: the graph writes state when it runs but trains nothing "
                      "(BatchNorm running statistics in training mode?): a deployed model "
                      "usually wants model.eval() before capturing", UserWarning, stacklevel=2)
    tmpl = _output_template(g)
    if tmpl is not None:
        tree_json(tmpl, len(g.outputs))     # raises, naming what a file cannot keep
    doc, weights = graph_document(g, owner, names)
    chunks = _serialize(weights, {"format": FORMAT})
    buf = _io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("graph.json", (1980, 1, 1, 0, 0, 0)),
                    json.dumps(doc, separators=(",", ":"), allow_nan=False),
                    compress_type=zipfile.ZIP_DEFLATED)
        info = zipfile.ZipInfo("weights.safetensors", (1980, 1, 1, 0, 0, 0))
        with zf.open(info, "w", force_zip64=True) as f:
            for c in chunks:
                f.write(c.reshape(-1).view(np.uint8).data if isinstance(c, np.ndarray) else c)
    _atomic_write(os.fspath(path), [buf.getvalue()])


# --- load ---------------------------------------------------------------------------------
def _bad(path, why: str) -> GraphFileError:
    return GraphFileError(f"load_graph: {os.fspath(path)!r} is not a valid tensorlib graph "
                          f"file: {why}")


def read_archive(path, max_bytes: int = MAX_FILE_BYTES) -> tuple[dict, bytes]:
    """The parsed ``graph.json`` and the raw ``weights.safetensors`` bytes of a graph file,
    read with size limits (no member is ever extracted to disk)."""
    p = os.fspath(path)
    size = os.path.getsize(p)
    if size > max_bytes:
        raise _bad(p, f"the file has {size} bytes, more than the limit of {max_bytes}")
    with open(p, "rb") as f:
        data = f.read()
    if not data.startswith(b"PK"):
        raise _bad(p, "it is not a zip archive (an ONNX model? use tl.onnx.load)")
    try:
        zf = zipfile.ZipFile(_io.BytesIO(data))
        infos = zf.infolist()
        names = [i.filename for i in infos]
        if sorted(names) != sorted(_MEMBERS) or len(set(names)) != len(names):
            raise _bad(p, f"the archive must hold exactly {list(_MEMBERS)}, it holds "
                          f"{names[:10]!r}{' ...' if len(names) > 10 else ''}")
        out = {}
        for info in infos:
            limit = MAX_JSON_BYTES if info.filename == "graph.json" else max_bytes
            if info.flag_bits & 0x1:
                raise _bad(p, f"member {info.filename!r} is encrypted")
            if info.file_size > limit:
                raise _bad(p, f"member {info.filename!r} declares {info.file_size} bytes, more "
                              f"than the limit of {limit}")
            with zf.open(info) as f:
                b = f.read(limit + 1)   # bounded: a lying header cannot inflate past the limit
            if len(b) > limit:
                raise _bad(p, f"member {info.filename!r} inflates past {limit} bytes "
                              "(a zip bomb?)")
            out[info.filename] = b
    except GraphFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
            NotImplementedError, ValueError, RuntimeError, OverflowError) as e:
        raise _bad(p, f"the zip archive is corrupt or truncated ({type(e).__name__}: {e})") \
            from None
    try:
        doc = json.loads(out["graph.json"].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _bad(p, f"graph.json is not valid JSON ({type(e).__name__}: "
                      f"{str(e)[:200]})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _bad(p, f"graph.json lacks the format tag {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise _bad(p, f"unknown format version {doc.get('version')!r}; this tensorlib reads "
                      f"version {VERSION} (upgrade tensorlib to read newer files)")
    return doc, out["weights.safetensors"]


def load_graph(path: str | os.PathLike, device: str | None = None,
               max_bytes: int = MAX_FILE_BYTES) -> GraphModule:
    """Load a graph file written by :func:`save_graph` into a runnable :class:`GraphModule`.

    Needs no model code: the graph's ops come from the registry, its state from the
    file. ``device`` moves every node and weight (e.g. a file saved on ``cuda`` run on
    ``cpu``); without it the graph runs where it was saved (see :meth:`GraphModule.to`).
    Raises :class:`GraphFileError` for corrupt, truncated, hostile or unknown-version
    files; nothing in the file is ever executed as code.
    """
    p = os.fspath(path)
    doc, wbytes = read_archive(p, max_bytes)
    from .io import CheckpointError, _parse
    try:
        weights, _ = _parse(wbytes, p + ":weights.safetensors")
    except CheckpointError as e:
        raise _bad(p, f"weights.safetensors: {e}") from None
    try:
        g, owners, unread = _build(doc, weights)
    except GraphFileError as e:
        raise _bad(p, str(e)) from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RecursionError,
            OverflowError) as e:
        raise _bad(p, f"malformed graph document ({type(e).__name__}: {str(e)[:300]})") \
            from None
    devices = {n.device for n in g.nodes}
    if device is None and len(devices) > 1:
        owners = _place_owners(g, owners)
    gm = GraphModule(g, owners, source=p, unread=unread)
    if device is not None:
        return gm.to(device)
    if len(devices) == 1 and devices != {"cpu"}:
        return gm.to(devices.pop())     # saved on one GPU: its weights go there too
    return gm


def _place_owners(g: Graph, owners: list) -> list:
    """A graph spanning several devices: each weight goes to the device of the node that
    reads it (they load on the CPU), so eager calls find their operands together."""
    from .creation import tensor
    where = {id(g.bindings[n][0]): n.device for n in g.nodes if n.op == "variable"}
    moved = {}
    out = []
    for name, t in owners:
        dev = where.get(id(t), "cpu")
        if dev != str(t.device):
            new = tensor(t._data, device=dev, requires_grad=t.requires_grad)
            if t.grad is not None:
                new.grad = tensor(t.grad._data, device=dev)
            moved[id(t)] = new
            t = new
        out.append((name, t))
    for n, b in list(g.bindings.items()):
        if n.op in ("variable", "assign") and id(b[0]) in moved:
            g.bindings[n] = (moved[id(b[0])], b[1])
    return out


def _need(cond: bool, why: str) -> None:
    if not cond:
        raise GraphFileError(why)


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_encoded(a, where: str, depth: int = 0) -> None:
    """Reject attribute encodings that would decode to unsafe objects (object dtypes, huge
    arrays) before :func:`decode_attr` sees them."""
    _need(depth < 32, f"{where}: attribute nesting too deep")
    if isinstance(a, list):
        for x in a:
            _check_encoded(x, where, depth + 1)
    elif isinstance(a, dict):
        if "__dtype__" in a:
            _need(a["__dtype__"] in _DTYPES, f"{where}: dtype {a['__dtype__']!r} not allowed")
        if "__array__" in a:
            _need(a.get("dtype") in _DTYPES, f"{where}: array dtype {a.get('dtype')!r} not "
                                             "allowed")
            shp = a.get("shape")
            _need(isinstance(shp, list) and all(_is_int(d) and d >= 0 for d in shp)
                  and math.prod(shp) <= 1 << 20, f"{where}: invalid array shape {shp!r}")
            flat = np.asarray(a["__array__"], dtype=object).reshape(-1) \
                if not isinstance(a["__array__"], (int, float, bool)) else [a["__array__"]]
            # (a complex array is stored as (real, imaginary) pairs: twice the numbers)
            count = math.prod(shp) * (2 if a["dtype"].startswith("complex") else 1)
            _need(len(flat) == count and all(
                isinstance(x, (int, float, bool)) for x in flat),
                f"{where}: array data does not match its shape {shp!r}")
            return
        if "__float__" in a:
            _need(a["__float__"] in ("inf", "-inf", "nan"), f"{where}: bad float encoding")
        if "__complex__" in a:
            parts = a["__complex__"]
            _need(isinstance(parts, list) and len(parts) == 2 and all(
                isinstance(x, (int, float)) and not isinstance(x, bool)
                or isinstance(x, dict) and set(x) == {"__float__"} for x in parts),
                f"{where}: bad complex encoding")
        for k, v in a.items():
            if k != "__array__":
                _check_encoded(v, where, depth + 1)
    else:
        _need(a is None or isinstance(a, (bool, int, float, str)),
              f"{where}: unexpected attribute value")


def _check_document(doc: dict, weights: dict) -> None:
    from .ops.registry import REGISTRY
    gd = doc.get("graph")
    _need(isinstance(gd, dict), "no graph in graph.json")
    for key, typ in (("values", list), ("nodes", list), ("inputs", list), ("outputs", list)):
        _need(isinstance(gd.get(key), typ), f"graph.{key} must be a {typ.__name__}")
    seen_vals: set = set()
    specs = {}
    for v in gd["values"]:
        _need(isinstance(v, dict) and _is_int(v.get("id")), "a value lacks an integer id")
        _need(v["id"] not in specs, f"value id {v['id']} appears twice")
        shp = v.get("shape")
        _need(isinstance(shp, list) and len(shp) <= 32 and all(
            d is None or (_is_int(d) and 0 <= d < 1 << 40) for d in shp),
            f"value {v['id']} has an invalid shape {shp!r}")
        _need(math.prod(d or 1 for d in shp) <= MAX_ELEMENTS,
              f"value {v['id']} of shape {shp} has more than {MAX_ELEMENTS} elements")
        _need(v.get("dtype") in _DTYPES, f"value {v['id']} has dtype {v.get('dtype')!r}")
        _need(v.get("name") is None or isinstance(v.get("name"), str), "bad value name")
        specs[v["id"]] = v
    ids: set = set()
    for nd in gd["nodes"]:
        _need(isinstance(nd, dict), "a node is not an object")
        op = nd.get("op")
        _need(isinstance(op, str), "a node has no op name")
        _need(op in REGISTRY or op in SOURCE_OPS or op in ("assign", "fused"),
              f"unknown op {op[:80]!r} (not in this tensorlib's registry)")
        _need(_is_int(nd.get("id")) and nd["id"] not in ids, "node ids must be unique integers")
        ids.add(nd["id"])
        for key in ("inputs", "outputs", "control"):
            _need(isinstance(nd.get(key), list) and all(_is_int(i) for i in nd[key]),
                  f"node {nd['id']} ({op}): {key} must be a list of ids")
        for i in nd["inputs"]:
            _need(i in seen_vals, f"node {nd['id']} ({op}) reads value {i} before it is made "
                                  "(not in topological order)")
        for c in nd["control"]:
            _need(c in ids and c != nd["id"], f"node {nd['id']}: bad control edge {c}")
        for o in nd["outputs"]:
            _need(o in specs and o not in seen_vals, f"node {nd['id']}: bad output id {o}")
            seen_vals.add(o)
        _need(isinstance(nd.get("device"), str) and len(nd["device"]) < 64,
              f"node {nd['id']}: bad device")
        _need(nd.get("name") is None or isinstance(nd.get("name"), str), "bad node name")
        _need(isinstance(nd.get("attrs"), dict), f"node {nd['id']}: attrs must be an object")
        _check_encoded(nd["attrs"], f"node {nd['id']} ({op})")
    for key in ("inputs", "outputs"):
        _need(all(_is_int(i) and i in seen_vals for i in gd[key]),
              f"graph {key} name unknown values")
    owners = doc.get("owners")
    _need(isinstance(owners, list), "owners must be a list")
    for o in owners:
        _need(isinstance(o, dict) and isinstance(o.get("name"), str), "bad owner entry")
        _need(o["name"] in weights, f"weights lack the variable {o['name'][:80]!r}")
        w = weights[o["name"]]
        _need(list(w.shape) == o.get("shape") and w.dtype.name == o.get("dtype"),
              f"variable {o['name']!r}: the weights hold {w.dtype}{list(w.shape)}, the graph "
              f"expects {o.get('dtype')}{o.get('shape')}")
        if o.get("grad"):
            gw = weights.get(o["name"] + ".grad")
            _need(gw is not None and gw.shape == w.shape and gw.dtype == w.dtype,
                  f"variable {o['name']!r}: its stored gradient is missing or mis-shaped")
    _need(isinstance(doc.get("bind"), dict) and isinstance(doc.get("constants"), dict),
          "bind and constants must be objects")
    for k, b in doc["bind"].items():
        _need(isinstance(b, list) and len(b) == 2 and _is_int(b[0])
              and 0 <= b[0] < len(owners) and b[1] in ("data", "grad"),
              f"bad binding for node {k}")
    for k, name in doc["constants"].items():
        _need(isinstance(name, str) and name in weights, f"constant {k}: missing weights")
    unread = doc.get("unread", [])
    _need(isinstance(unread, list), "unread must be a list")
    for u in unread:
        _need(isinstance(u, dict) and isinstance(u.get("name"), str)
              and isinstance(u.get("key"), str) and u["key"] in weights,
              "bad unread state entry")
    aliases = doc.get("aliases", [])
    _need(isinstance(aliases, list), "aliases must be a list")
    for a in aliases:
        _need(isinstance(a, dict) and isinstance(a.get("name"), str) and _is_int(a.get("of"))
              and 0 <= a["of"] < len(doc["owners"]), "bad alias entry")


def _source_doc(src):
    """A size predicate's source (see ``Graph.size_predicate_sources``) as JSON data."""
    if not src:
        return None
    code, where, made, how = (list(src) + [None] * 4)[:4]
    return [code, where, None if made is None else list(made), how]


def _source_of(d):
    """The inverse of ``_source_doc``, checked (a bad entry is a bad file)."""
    if d is None:
        return None
    _need(isinstance(d, list) and len(d) == 4
          and all(x is None or isinstance(x, str) for x in (d[0], d[1], d[3])),
          f"bad size predicate source {d!r}")
    from .graph.sizes import check_predicates
    made = None if d[2] is None else check_predicates([d[2]], "size_predicate_sources")[0]
    return (d[0], d[1], made, d[3])


def _build(doc: dict, weights: dict) -> tuple[Graph, list, list]:
    from .creation import from_numpy
    _check_document(doc, weights)
    gd = doc["graph"]
    consts = doc["constants"]
    # constant values live in the weights, not the JSON
    for nd in gd["nodes"]:
        if nd["op"] == "constant":
            _need(str(nd["id"]) in consts, f"constant node {nd['id']} has no value")
    g = Graph.from_dict(gd)
    preds = doc.get("size_predicates", [])
    from .graph.sizes import MAX_PREDICATES, check_predicates, inputs_of
    _need(isinstance(preds, list), "size_predicates must be a list")
    _need(len(preds) <= MAX_PREDICATES,
          f"more than {MAX_PREDICATES} size predicates ({len(preds)})")
    g.size_predicates = check_predicates(preds, "size_predicates")
    _need(all(k < len(g.inputs) for p in g.size_predicates for e in p[1:3]
              for k in inputs_of(e)), "a size predicate reads an input the graph lacks")
    srcs = doc.get("size_predicate_sources", [])
    _need(isinstance(srcs, list) and len(srcs) in (0, len(preds)),
          "size_predicate_sources must be a list, one entry per size predicate")
    g.size_predicate_sources = {p: src for p, src in
                                zip(g.size_predicates, map(_source_of, srcs)) if src}
    sig = doc.get("signature", {})
    if sig.get("structure") == "dict":     # the function returned a dict: keep its keys
        g.output_names = [str(s["name"]) for s in sig["outputs"]]
        g.output_structure = "dict"
    if "tree" in sig:                      # nested: dicts/tuples/lists/None as returned
        # (with "structure": an OrderedDict of tensors, given back as one)
        g._output_template = tree_template(sig["tree"], len(g.outputs))
    owners = []
    for o in doc["owners"]:
        t = from_numpy(weights[o["name"]])
        if o.get("requires_grad") and t.dtype.kind == "f":
            t.requires_grad_(True)
        if o.get("grad"):
            t.grad = from_numpy(weights[o["name"] + ".grad"])
        owners.append((o["name"], t))
    by_id = {n.id: n for n in g.nodes}
    for n in g.nodes:
        if n.op == "constant":
            arr = weights[consts[str(n.id)]]
            n.attrs["value"] = arr
            _need(arr.shape == n.out.shape and arr.dtype == n.out.dtype,
                  f"constant node {n.id}: value {arr.dtype}{list(arr.shape)} does not match "
                  f"{n.out.type_str()}")
        elif n.op in ("variable", "assign") and not (n.op == "assign"
                                                      and n.attrs.get("slot") == "input"):
            b = doc["bind"].get(str(n.id))
            _need(b is not None, f"{n.op} node {n.id} is bound to no variable")
            name, t = owners[b[0]]
            n_slot = n.attrs.get("slot")
            _need(n_slot in _SLOTS[n.op], f"{n.op} node {n.id}: bad slot {n_slot!r}")
            g.bindings[n] = (t, b[1])
        elif n.op == "random":
            g.bindings[n] = None
    _validate(g, by_id)
    unread = []
    for u in doc.get("unread", []):
        t = from_numpy(weights[u["key"]])
        if u.get("requires_grad") and t.dtype.kind == "f":
            t.requires_grad_(True)
        unread.append((u["name"], t))
    # a tied weight's other names (state_dict() only; the same tensor, not a copy)
    unread += [(a["name"], owners[a["of"]][1]) for a in doc.get("aliases", [])]
    return g, owners, unread


# --- validation of ops whose kernels trust their inputs ---------------------------------
def _pos_pair(a, name, op):
    _need(isinstance(a, tuple) and len(a) == 2 and all(_is_int(x) and 0 < x < 1 << 20
                                                        for x in a),
          f"{op}: {name} must be two positive ints, got {a!r}")


def _nonneg(a, n, name, op):
    _need(isinstance(a, tuple) and len(a) == n and all(_is_int(x) and 0 <= x < 1 << 20
                                                        for x in a),
          f"{op}: {name} must be {n} non-negative ints, got {a!r}")


def _known(*dims) -> bool:
    return all(d is not None for d in dims)


def _pool_sizes(n, k, s, p, d):
    from .ops.nn_pool import _pool_out
    return {_pool_out(n, k, s, p, d, False), _pool_out(n, k, s, p, d, True)}


def _check_geometry(op: str, shapes: list[tuple], attrs: dict) -> None:
    """Attribute and shape rules of the ops whose Cython kernels do no bounds checks."""
    a = attrs
    if op in ("conv2d", "conv2d_input_grad", "conv2d_weight_grad"):
        _pos_pair(a.get("stride"), "stride", op)
        _pos_pair(a.get("dilation"), "dilation", op)
        _nonneg(a.get("padding"), 4, "padding", op)
        groups = a.get("groups")
        _need(_is_int(groups) and groups >= 1, f"{op}: bad groups {groups!r}")
        _need(all(len(s) == 4 for s in shapes[:2]), f"{op}: operands must be 4-D")
        from .ops.nn_conv import out_size
        st, pd, dl = a["stride"], a["padding"], a["dilation"]
        if op == "conv2d":
            (N, C, H, W), (O, Cg, kh, kw) = shapes[0], shapes[1]
            _need(not _known(C, Cg) or C == Cg * groups, f"{op}: channels do not match")
            _need(not _known(O) or O % groups == 0, f"{op}: out channels vs groups")
            if len(shapes) > 2:
                _need(shapes[2] == (O,), f"{op}: bias must be ({O},)")
            for n, k, s, p0, p1, d in ((H, kh, st[0], pd[0], pd[1], dl[0]),
                                       (W, kw, st[1], pd[2], pd[3], dl[1])):
                _need(not _known(n, k) or out_size(n, k, s, p0, p1, d) >= 1,
                      f"{op}: kernel larger than the padded input")
        elif op == "conv2d_input_grad":
            (N, O, Ho, Wo), (O2, Cg, kh, kw) = shapes[0], shapes[1]
            _need(not _known(O, O2) or O == O2, f"{op}: channels do not match")
            if a.get("input_hw") is None:       # a ConvTranspose2d's output_padding form
                opad = a.get("output_padding")
                _need(isinstance(opad, (tuple, list)) and len(opad) == 2
                      and all(_is_int(v) and 0 <= v < max(s, d) for v, s, d in
                              zip(opad, st, dl)),
                      f"{op}: bad output_padding {opad!r}")
                from .ops.nn_conv import _transposed_hw
                H, W = _transposed_hw((Ho, Wo), (kh, kw), st, pd, dl, opad)
                _need(not _known(H, W) or (H >= 1 and W >= 1), f"{op}: empty output")
            else:
                _pos_pair(a.get("input_hw"), "input_hw", op)
                H, W = a["input_hw"]
            for n, no, k, s, p0, p1, d in ((H, Ho, kh, st[0], pd[0], pd[1], dl[0]),
                                           (W, Wo, kw, st[1], pd[2], pd[3], dl[1])):
                _need(not _known(no, k) or out_size(n, k, s, p0, p1, d) == no,
                      f"{op}: gradient size does not match input_hw")
        else:
            _pos_pair(a.get("kernel"), "kernel", op)
            (N, C, H, W), (N2, O, Ho, Wo) = shapes[0], shapes[1]
            _need(not _known(N, N2) or N == N2, f"{op}: batch sizes differ")
            _need(not _known(C) or C % groups == 0, f"{op}: channels vs groups")
            kh, kw = a["kernel"]
            for n, no, k, s, p0, p1, d in ((H, Ho, kh, st[0], pd[0], pd[1], dl[0]),
                                           (W, Wo, kw, st[1], pd[2], pd[3], dl[1])):
                _need(not _known(n, no) or out_size(n, k, s, p0, p1, d) == no,
                      f"{op}: gradient size does not match the input")
    elif op in ("max_pool2d", "avg_pool2d", "avg_pool2d_grad", "max_pool2d_grad"):
        _need(len(shapes[0]) == 4, f"{op}: input must be 4-D")
        if op == "max_pool2d_grad":
            _pos_pair(a.get("input_hw"), "input_hw", op)
            _need(len(shapes[1]) == 4, f"{op}: indices must be 4-D")
            return
        _pos_pair(a.get("kernel"), "kernel", op)
        _pos_pair(a.get("stride"), "stride", op)
        _nonneg(a.get("padding"), 2, "padding", op)
        dil = a.get("dilation", (1, 1))
        _pos_pair(dil, "dilation", op)
        k, s, p = a["kernel"], a["stride"], a["padding"]
        for i in range(2):
            _need(p[i] <= (dil[i] * (k[i] - 1) + 1) // 2,
                  f"{op}: padding {p} exceeds half the kernel {k}")
        _need(isinstance(a.get("ceil_mode"), bool), f"{op}: ceil_mode must be a bool")
        if "divisor" in a:
            _need(_is_int(a["divisor"]) and a["divisor"] >= 0, f"{op}: bad divisor")
        if op == "avg_pool2d_grad":
            _pos_pair(a.get("input_hw"), "input_hw", op)
            hw, out = a["input_hw"], shapes[0][2:]
            for i in range(2):
                _need(not _known(hw[i], out[i]) or out[i] in _pool_sizes(
                      hw[i], k[i], s[i], p[i], dil[i]),
                      f"{op}: gradient size {tuple(out)} does not match the input {tuple(hw)}")
        from .ops.nn_pool import _pool_out
        for i, n in enumerate(shapes[0][2:] if op != "avg_pool2d_grad" else a["input_hw"]):
            _need(not _known(n) or _pool_out(n, k[i], s[i], p[i], dil[i], a["ceil_mode"]) >= 1,
                  f"{op}: the kernel {tuple(k)} does not fit the input size {n}")
    elif op == "embedding_grad":
        g, idx = shapes
        _need(len(g) >= 1 and tuple(g[:-1]) == tuple(idx) or not _known(*g, *idx),
              f"{op}: gradient {g} and indices {idx} do not match")
        _need(_is_int(a.get("num_weights")) and a["num_weights"] >= 0, f"{op}: bad num_weights")
        pi = a.get("padding_idx")
        _need(pi is None or (_is_int(pi) and 0 <= pi < a["num_weights"]),
              f"{op}: bad padding_idx")
    elif op == "lstm_cell":
        gates, c, *addends = shapes
        _need(len(gates) == 2 and len(c) == 2, f"{op}: gates and c must be 2-D")
        for s in addends:     # the gates' shape, or one row of it (a bias)
            _need(len(s) in (1, 2) and (not _known(*s, *gates) or tuple(s) in (
                tuple(gates), tuple(gates[1:]))), f"{op}: addend {s} does not fit the gates")
        _need(not _known(gates[1], c[1]) or gates[1] == 4 * c[1], f"{op}: gates must be 4*H")
        _need(not _known(gates[0], c[0]) or gates[0] == c[0], f"{op}: batch sizes differ")
    elif op == "lstm_cell_grad":
        # acts, c, c', gh, gc, the activations' gradient (when acts_grad), the biases' sums
        k = 6 if a.get("acts_grad", True) else 5
        _need(len(shapes) >= k and all(len(s) == 2 for s in shapes[:k]),
              f"{op}: needs {k} 2-D operands")
        acts, c, cn, gh, gc = shapes[:5]
        for s in (cn, gh, gc):
            _need(not _known(*s, *c) or tuple(s) == tuple(c), f"{op}: state shapes differ")
        for s in (acts,) + tuple(shapes[5:k]):
            _need(not _known(*s, *c) or tuple(s) == (c[0], 4 * c[1]), f"{op}: gate shapes")
        for s in shapes[k:]:
            _need(len(s) == 1 and (not _known(*s, *c) or s[0] == 4 * c[1]),
                  f"{op}: a bias sum must be one row of the gates")
    elif op == "gru_cell":
        gi, gh, h = shapes
        _need(len(gi) == 2 and len(gh) == 2 and len(h) == 2, f"{op}: operands must be 2-D")
        _need(not _known(*gi, *gh) or tuple(gi) == tuple(gh), f"{op}: gi and gh shapes differ")
        _need(not _known(gi[1], h[1]) or gi[1] == 3 * h[1], f"{op}: gates must be 3*H")
        _need(not _known(gi[0], h[0]) or gi[0] == h[0], f"{op}: batch sizes differ")
    elif op == "gru_cell_grad":
        _need(all(len(s) == 2 for s in shapes), f"{op}: operands must be 2-D")
        acts, gh, h, gy, ga = shapes
        for s in (gh, ga):
            _need(not _known(*s, *acts) or tuple(s) == tuple(acts), f"{op}: gate shapes differ")
        _need(not _known(*gy, *h) or tuple(gy) == tuple(h), f"{op}: state shapes differ")
        _need(not _known(acts[1], h[1]) or acts[1] == 3 * h[1], f"{op}: gates must be 3*H")
    elif op in ("embedding", "embedding_scale_grad_by_freq", "embedding_bag_sum",
                "embedding_bag_max"):
        # eager calls store padding_idx in [0, V): anything else is a hand-edited file
        pi, V = a.get("padding_idx"), shapes[0][0] if shapes and shapes[0] else None
        _need(pi is None or (_is_int(pi) and pi >= 0 and (V is None or pi < V)),
              f"{op}: padding_idx must be None or in [0, {V}), got {pi!r}")
    if op in _LOSS_OPS:
        _check_loss_attrs(op, a)
    if op in ("cross_entropy", "nll_loss"):
        x, t = shapes[0], shapes[1]
        _need(len(x) >= 1, f"{op}: input needs a class dimension")
        want = (tuple(x[:1]) + tuple(x[2:])) if len(x) >= 2 else ()
        _need(len(t) == len(want) and all(not _known(p, q) or p == q for p, q in zip(t, want)),
              f"{op}: target {t} does not match input {x}")
        if len(shapes) > 2:
            _need(len(shapes[2]) == 1, f"{op}: weight must be 1-D")


_LOSS_OPS = ("cross_entropy", "nll_loss", "cross_entropy_grad", "nll_loss_grad",
             "ctc_loss", "ctc_loss_grad")


def _check_loss_attrs(op: str, a: dict) -> None:
    """The attributes eager loss calls validate (the kernels branch on them, and an unknown
    reduction would silently take the 'mean' path)."""
    if not op.startswith("ctc_loss"):
        _need(a.get("reduction") in ("mean", "sum", "none"),
              f"{op}: reduction must be 'mean', 'sum' or 'none', got {a.get('reduction')!r}")
    if "ignore_index" in a or op in ("cross_entropy", "nll_loss"):
        _need(_is_int(a.get("ignore_index")),
              f"{op}: ignore_index must be an int, got {a.get('ignore_index')!r}")
    if op == "cross_entropy":
        ls = a.get("label_smoothing")
        _need(isinstance(ls, (int, float)) and not isinstance(ls, bool) and 0.0 <= ls <= 1.0,
              f"{op}: label_smoothing must be a number in [0, 1], got {ls!r}")
    if op in ("ctc_loss", "ctc_loss_grad"):
        _need(_is_int(a.get("blank")) and a["blank"] >= 0,
              f"{op}: blank must be a non-negative int, got {a.get('blank')!r}")


def _same(recorded: tuple, inferred: tuple) -> bool:
    return len(recorded) == len(inferred) and all(
        a is None or b is None or a == b for a, b in zip(recorded, inferred))


def _specs(r) -> list:
    """An ``infer`` result as a list of (shape, dtype)."""
    if isinstance(r, tuple) and len(r) == 2 and isinstance(r[0], tuple) and (
            not r[0] or not isinstance(r[0][0], tuple)) and not isinstance(r[1], tuple):
        return [r]
    return list(r)


def _upgrade_pool_attrs(n: Node, in_shapes: list[tuple]) -> None:
    """Files written before the pools took ``ceil_mode`` hold the output size ``out_hw``
    (max/avg_pool2d) or nothing (avg_pool2d_grad): ceil_mode is whether that size is the
    ceil one."""
    from .ops.nn_pool import _out_hw
    a = n.attrs
    if n.op in ("max_pool2d", "avg_pool2d") and "out_hw" in a and "ceil_mode" not in a:
        hw, out = in_shapes[0][2:] if len(in_shapes[0]) == 4 else (None, None), a.pop("out_hw")
    elif n.op == "avg_pool2d_grad" and "ceil_mode" not in a and len(in_shapes[0]) == 4:
        hw, out = a.get("input_hw"), in_shapes[0][2:]
    else:
        return
    a["ceil_mode"] = False
    if hw is not None and None not in tuple(hw) and out is not None and None not in tuple(out):
        geo = (a.get("kernel"), a.get("stride"), a.get("padding"), a.get("dilation", (1, 1)))
        _need(all(isinstance(v, (tuple, list)) and len(v) == 2 for v in geo),
              f"{n.op}: bad pooling attributes")
        floor, ceil = _out_hw(tuple(hw), *geo, False), _out_hw(tuple(hw), *geo, True)
        _need(tuple(out) in (floor, ceil), f"{n.op}: output size {tuple(out)} does not match "
                                           f"the input {tuple(hw)}")
        a["ceil_mode"] = tuple(out) != floor


def check_node(n: Node, in_shapes: list[tuple], in_dtypes: list, out_specs=None) -> list:
    """Infer and validate one registry-op node; returns its output (shape, dtype) list."""
    from .ops.registry import REGISTRY
    op = REGISTRY[n.op]
    _upgrade_pool_attrs(n, in_shapes)
    try:
        _check_geometry(n.op, in_shapes, n.attrs)
    except GraphFileError as e:     # which node of a large file is broken
        raise GraphFileError(f"node {n.id}: {e}") from None
    try:
        got = _specs(op.infer(*[(s, d) for s, d in zip(in_shapes, in_dtypes)], **n.attrs))
    except GraphFileError:
        raise
    except Exception as e:   # any failure of a rule on hostile attrs is a bad file
        raise GraphFileError(f"node {n.id} ({n.op}): {type(e).__name__}: {str(e)[:200]}") \
            from None
    want = out_specs if out_specs is not None else [(v.shape, v.dtype) for v in n.outputs]
    _need(len(got) == len(want), f"node {n.id} ({n.op}): {len(want)} outputs recorded, the op "
                                 f"makes {len(got)}")
    out = []
    for (gs, gd), (ws, wd) in zip(got, want):
        gs = tuple(gs)
        _need(_same(tuple(ws), gs) and np.dtype(gd) == np.dtype(wd),
              f"node {n.id} ({n.op}): recorded output {np.dtype(wd).name}{list(ws)} but the op "
              f"makes {np.dtype(gd).name}{list(gs)} from its inputs")
        _need(math.prod(d or 1 for d in gs) <= MAX_ELEMENTS,
              f"node {n.id} ({n.op}): output {gs} has too many elements")
        out.append((tuple(ws) if None not in ws and None in gs else gs, np.dtype(gd)))
    return out


def _validate(g: Graph, by_id) -> None:
    from .ops.registry import REGISTRY
    for i, v in enumerate(g.inputs):
        _need(v.node.op == "placeholder" and v.node.attrs.get("index") == i,
              "graph inputs must be placeholders in index order")
    for n in g.nodes:
        if n.op == "placeholder":
            _need(n.out in g.inputs and not n.inputs, f"placeholder {n.id} is not an input")
        elif n.op in ("variable", "constant"):
            _need(not n.inputs and len(n.outputs) == 1, f"{n.op} node {n.id}: bad arity")
            if n.op == "variable":
                t, slot = g.bindings[n]
                ref = t._data if slot == "data" else (t.grad._data if t.grad is not None
                                                      else t._data)
                _need(ref.shape == n.out.shape and ref.dtype == n.out.dtype,
                      f"variable {n.name!r}: stored {ref.dtype}{list(ref.shape)} but the graph "
                      f"reads {n.out.type_str()}")
        elif n.op == "random":
            a = n.attrs
            _need(len(n.outputs) == 1 and a.get("dist") in (
                "rand", "randn", "normal", "uniform", "randint", "randperm"),
                f"random node {n.id}: bad distribution")
            _need(bool(a.get("sizes")) or not n.inputs,
                  f"random node {n.id}: inputs but no sizes read from them")
            _need(isinstance(a.get("shape"), tuple) and len(a["shape"]) == len(n.out.shape),
                  f"random node {n.id}: shape does not match its output")
            try:
                shape = random_shape(a, [v.shape for v in n.inputs])
            except (ValueError, TypeError) as e:
                raise GraphFileError(f"random node {n.id}: {e}") from None
            _need(_same(shape, n.out.shape), f"random node {n.id}: shape does not match its "
                  "output")
            _need(a.get("dtype") is not None and np.dtype(a["dtype"]) == n.out.dtype,
                  f"random node {n.id}: dtype does not match its output")
        elif n.op == "assign":
            if n.attrs.get("update") is not None:   # back to checked ops, then checked as such
                upd = n.attrs["update"]
                _need(upd in ("sgd", "sgd_gemm") and isinstance(n.attrs.get("lr"), float)
                      and n.inputs, f"assign {n.id}: unknown update")
                _need(len(n.inputs) == (2 if upd == "sgd_gemm" else 1),
                      f"assign {n.id}: bad arity")
                _unfuse_sgd(g, n)
            _need(not n.outputs and len(n.inputs) <= 1, f"assign {n.id}: bad arity")
            slot = n.attrs.get("slot")
            if slot == "input":
                k = n.attrs.get("input")
                _need(_is_int(k) and 0 <= k < len(g.inputs), f"assign {n.id}: bad input index")
                _need(n.inputs and _same(g.inputs[k].shape, n.inputs[0].shape),
                      f"assign {n.id}: shape differs from the input it writes")
            else:
                t, bslot = g.bindings[n]
                if n.inputs:
                    ref = t._data
                    _need(_same(ref.shape, n.inputs[0].shape),
                          f"assign {n.id}: writes {n.inputs[0].type_str()} to a variable of "
                          f"shape {ref.shape}")
        elif n.op == "fused":
            prog = n.attrs.get("program")
            _need(isinstance(prog, list) and prog and len(n.outputs) == 1,
                  f"fused node {n.id}: bad program")
            for row in prog:
                _need(isinstance(row, (list, tuple)) and len(row) == 2
                      and row[0] in REGISTRY and REGISTRY[row[0]].ufunc is not None
                      and isinstance(row[1], (list, tuple))
                      and all(_is_int(r) and -1 <= r < len(n.inputs) for r in row[1]),
                      f"fused node {n.id}: bad program row {row!r}")
        else:
            check_node(n, [v.shape for v in n.inputs], [v.dtype for v in n.inputs])
    g.invalidate()


def _unfuse_sgd(g: Graph, a: Node) -> None:
    """Turn an in-place SGD assign back into ``var - lr * grad`` (NumPy ops that check
    shapes), so no file can hand the unchecked Cython update a short gradient."""
    t, _ = g.bindings[a]
    var = next((n for n in g.nodes if n.op == "variable" and g.bindings.get(n, (None,))[0] is t
                and n.attrs.get("slot") == "data"), None)
    _need(var is not None, f"assign {a.id}: sgd update of a variable the graph never reads")
    k = g.nodes.index(a)
    made = []
    if a.attrs["update"] == "sgd_gemm":      # the gradient g^T @ x the GEMM folded in
        gv, xv = a.inputs
        _need(gv.ndim == 2 and xv.ndim == 2 and gv.shape[0] == xv.shape[0]
              and gv.dtype == xv.dtype, f"assign {a.id}: bad sgd_gemm operands")
        t = g.add_node("transpose", [gv], {"axes": (1, 0)}, a.device,
                       [((gv.shape[1], gv.shape[0]), gv.dtype)])
        mm = g.add_node("matmul", [t.out, xv], {}, a.device,
                        [((gv.shape[1], xv.shape[1]), gv.dtype)])
        made = [mm, t]
        grad = mm.out
    else:
        grad = a.inputs[0]
    _need(grad.shape == var.out.shape and grad.dtype == var.out.dtype,
          f"assign {a.id}: sgd gradient {grad.type_str()} does not match {var.out.type_str()}")
    lr = np.asarray(a.attrs["lr"], dtype=grad.dtype)
    c = g.add_node("constant", [], {"value": lr}, a.device, [((), grad.dtype)])
    m = g.add_node("mul", [c.out, grad], {}, a.device, [(grad.shape, grad.dtype)])
    s = g.add_node("sub", [var.out, m.out], {}, a.device, [(grad.shape, grad.dtype)])
    for x in (s, m, c, *made):       # move them just before the assign, in order
        g.nodes.remove(x)
        g.nodes.insert(k, x)
    a.inputs = [s.out]
    a.attrs = {k2: v for k2, v in a.attrs.items() if k2 not in ("update", "lr")}
    s.control = list(a.control)


def check_concrete(g: Graph, shapes: list[tuple]) -> None:
    """Re-run the shape/geometry checks with concrete input shapes (None dims filled)."""
    known: dict[int, tuple] = {}
    for v, s in zip(g.inputs, shapes):
        known[v.id] = tuple(s)
    for n in g.nodes:
        if n.op in ("placeholder",):
            continue
        if n.op == "random":
            known[n.out.id] = random_shape(n.attrs, [known[v.id] for v in n.inputs])
            continue
        if n.op in ("variable", "constant"):
            known[n.out.id] = n.out.shape
            continue
        if n.op == "assign":
            if n.inputs:
                tgt = (shapes[n.attrs["input"]] if n.attrs.get("slot") == "input"
                       else g.bindings[n][0]._data.shape)
                got = known[n.inputs[0].id]
                _need(_same(tuple(tgt), got), f"assign {n.id}: writes shape {got} to {tgt}")
            continue
        ins = [known[v.id] for v in n.inputs]
        if n.op == "fused":
            shp = np.broadcast_shapes(*[tuple(d if d is not None else 1 for d in s)
                                        for s in ins])
            known[n.out.id] = tuple(shp)
            continue
        outs = check_node(n, ins, [v.dtype for v in n.inputs],
                          [(tuple(None for _ in v.shape), v.dtype) for v in n.outputs])
        for v, (s, _) in zip(n.outputs, outs):
            _need(_same(v.shape, s), f"node {n.id} ({n.op}): output {s} does not fit the "
                                     f"graph's {v.type_str()}")
            known[v.id] = s


def _embedding_grad_check(g, idx, *, num_weights, padding_idx):
    """Index range of embedding_grad, whose Cython kernel scatters without bounds checks
    (eager code only reaches it from a checked embedding; a graph file could feed it). The
    CUDA kernel skips indices out of range itself: on a GPU the range is not read back."""
    from .graph.checks import on_gpu
    if idx.size and not on_gpu(idx) and (int(idx.min()) < 0 or int(idx.max()) >= num_weights):
        raise IndexError(f"embedding_grad: indices must lie in [0, {num_weights}), got range "
                         f"[{int(idx.min())}, {int(idx.max())}]")
    if tuple(g.shape[:-1]) != tuple(idx.shape):
        raise ValueError(f"embedding_grad: gradient {g.shape} does not match indices "
                         f"{idx.shape}")


def _install_checks() -> None:
    from .graph.checks import VALUE_CHECKS
    VALUE_CHECKS.setdefault("embedding_grad", _embedding_grad_check)


_install_checks()


# --- the loaded, runnable graph -------------------------------------------------------------
class GraphModule:
    """A graph with its own variables: what :func:`load_graph` and ``tl.onnx.load`` return.

    Call it with input tensors/arrays (in signature order, or by name as keywords) to get
    the outputs. Under ``tl.no_grad()`` (or when no variable requires grad) it runs on the
    compiled executor; otherwise it runs op by op through ``apply``, so the tape records
    it and ``loss.backward()`` fills the variables' ``.grad`` (fine-tuning). A graph with
    ``assign`` nodes (a training step) runs on the executor and updates its variables.
    """

    def __init__(self, graph: Graph, owners: list[tuple[str, Any]], source: str | None = None,
                 meta: dict | None = None, unread: list[tuple[str, Any]] | None = None):
        self.graph = graph
        self._owners = list(owners)
        # the saved model's state the graph never reads: kept for state_dict() only
        self._unread = list(unread or [])
        self.source = source
        self.meta = dict(meta or {})
        self._checked: set = set()

    # --- introspection ----------------------------------------------------------------
    @property
    def signature(self) -> dict:
        return signature(self.graph)

    @property
    def input_names(self) -> list[str]:
        return [s["name"] for s in self.signature["inputs"]]

    def input_index(self, name: str) -> int:
        """The position of the input ``name``; ``argK`` names the K-th input too (the name
        graph files gave every tl.function input before they took parameter names)."""
        names = self.input_names
        if name in names:
            return names.index(name)
        if name.startswith("arg") and name[3:].isdigit() and int(name[3:]) < len(names):
            return int(name[3:])
        raise TypeError(f"{self.graph.name}: no input named {name!r}; inputs: {names}")

    def named_parameters(self) -> list[tuple[str, Any]]:
        """(name, tensor) for every variable that requires grad."""
        return [(k, t) for k, t in self._owners if t.requires_grad]

    def parameters(self) -> list:
        return [t for _, t in self.named_parameters()]

    def state_dict(self) -> dict:
        """The variables by name, with the saved model's state the graph never reads (such
        as BatchNorm's ``num_batches_tracked``), so ``model.load_state_dict(gm.state_dict())``
        works with ``strict=True``."""
        out = {k: t for k, t in self._owners}
        for k, t in self._unread:
            out.setdefault(k, t)
        return out

    def __getitem__(self, name: str):
        for k, t in self._owners:
            if k == name:
                return t
        raise KeyError(f"no variable named {name!r}; variables: "
                       f"{[k for k, _ in self._owners][:20]}")

    def __repr__(self) -> str:
        sig = self.signature
        ins = ", ".join(f"{s['name']}:{s['dtype']}{s['shape']}" for s in sig["inputs"])
        return (f"<GraphModule {self.graph.name}({ins}): {len(self.graph.nodes)} nodes, "
                f"{len(self._owners)} variables>")

    def to(self, device) -> GraphModule:
        """Move the graph to ``device`` in place: every node, its constants and its variables
        (which keep their identity, so an optimizer over ``parameters()`` still holds them).

        >>> m = tl.onnx.load("model.onnx").to("cuda")
        """
        from ._device import Device
        from .backends import to_device
        from .nn.module import move_
        dev = Device(device)
        for _, t in self._owners + self._unread:
            move_(t, dev)
        for n in self.graph.nodes:
            n.device = str(dev)
            if n.op == "constant":
                n.attrs["value"] = to_device(n.attrs["value"], dev)
        self.graph.placement = None     # one device now: no placement decision holds
        self.graph.invalidate()
        return self

    # --- running ----------------------------------------------------------------------
    def _feeds(self, args, kwargs) -> list:
        from ._tensor import Tensor
        g = self.graph
        if len(args) > len(g.inputs):
            raise TypeError(f"{g.name}: takes {len(g.inputs)} inputs, got {len(args)}")
        feeds: list = list(args) + [None] * (len(g.inputs) - len(args))
        for k, v in kwargs.items():
            feeds[self.input_index(k)] = v
        out = []
        for v, f in zip(g.inputs, feeds):
            if f is None:
                raise TypeError(f"{g.name}: input {v.label()} ({v.type_str()}) is missing")
            if not isinstance(f, Tensor):
                f = np.asarray(f)
                if f.dtype != v.dtype and f.dtype.kind == v.dtype.kind:
                    f = f.astype(v.dtype)
                from .creation import tensor
                f = tensor(f)
            if f.ndim != v.ndim or any(d is not None and d != s for d, s in zip(v.shape,
                                                                                  f.shape)):
                raise ValueError(f"{g.name}: input {v.label()} expects {v.type_str()}, got shape "
                                 f"{tuple(f.shape)}")
            if f.dtype != v.dtype:
                raise TypeError(f"{g.name}: input {v.label()} expects {v.dtype}, got {f.dtype}")
            if str(f.device) != self.graph.traced_device(v):
                f = f.to(self.graph.traced_device(v))
            out.append(f)
        key = tuple(tuple(f.shape) for f in out)
        if key not in self._checked:
            from .graph.executor import check_predicate_outcomes
            check_predicate_outcomes(g, list(key))
            try:
                check_concrete(g, list(key))
            except GraphFileError as e:     # the file is fine: these inputs are not
                shapes = ", ".join(str(k) for k in key)
                raise ValueError(f"{g.name}: the graph cannot run on inputs of shape "
                                 f"{shapes}: {e}") from None
            self._checked.add(key)
        return out

    def __call__(self, *args, **kwargs):
        from .autograd.mode import state
        feeds = self._feeds(args, kwargs)
        g = self.graph
        # op by op also while a graph is traced (a capture or an export of this module, or
        # of one that calls it): the executor's run would be recorded as a constant
        eager = state.tracer is not None or (
            state.grad_enabled and not g.assigns
            and (any(t.requires_grad for _, t in self._owners)
                 or any(f.requires_grad for f in feeds)))
        outs = self._eager(feeds) if eager else g.run(dict(enumerate(feeds)))
        if not isinstance(outs, (tuple, list)):
            outs = (outs,)
        outs = tuple(outs)
        tmpl = _output_template(g)
        if tmpl is not None:
            from .graph.signature import rebuild
            return rebuild(tmpl, outs)
        if g.output_structure == "dict":
            return dict(zip(g.output_names, outs))
        return outs[0] if len(outs) == 1 else outs

    def run(self, feeds: dict | None = None, fetches=None):
        """The executor directly: ``feeds`` by input name or index, ``fetches`` Values."""
        from collections.abc import Mapping
        if feeds is not None and not isinstance(feeds, Mapping):
            raise TypeError(f"GraphModule.run takes a dict of feeds {{input name or index: "
                            f"tensor}}, got {type(feeds).__name__}; call the module itself "
                            f"to pass inputs positionally")
        fl = dict(feeds or {})
        args = {}
        names = self.input_names
        for k, v in fl.items():
            args[names[k] if isinstance(k, int) else k] = v
        ts = self._feeds((), args)
        return self.graph.run(dict(enumerate(ts)), fetches)

    def _eager(self, feeds: list):
        """Run node by node through ``apply`` (recorded on the tape when grad is on)."""
        from ._apply import apply
        from ._tensor import _wrap
        from ._device import Device
        from .graph.runtime import _random
        from .ops.registry import REGISTRY
        env: dict[int, Any] = {}
        for v, t in zip(self.graph.inputs, feeds):
            env[v.id] = t
        g = self.graph

        def at(t, dev: str):    # a placed graph: each op where it was placed (.to records it)
            return t if t is None or str(t.device) == dev else t.to(dev)

        for n in self.graph.nodes:
            if n.op == "placeholder":
                continue
            if n.op == "variable":
                t, slot = self.graph.bindings[n]
                env[n.out.id] = t if slot == "data" else t.grad
            elif n.op == "constant":
                env[n.out.id] = _wrap(n.attrs["value"], Device(n.device), False, None, 0)
            elif n.op == "random":
                draw = _random(self.graph.bindings.get(n), n.attrs,
                               *[env[v.id]._data for v in n.inputs])
                env[n.out.id] = _wrap(draw, Device(n.device), False, None, 0)
            elif n.op == "fused":
                ins = [at(env[v.id], n.device) for v in n.inputs]
                acc = None
                for op, refs in n.attrs["program"]:
                    acc = apply(REGISTRY[op], *[acc if r == -1 else ins[r] for r in refs])
                env[n.out.id] = acc
            elif n.op == "assign":
                continue
            else:
                res = apply(REGISTRY[n.op], *[at(env[v.id], n.device) for v in n.inputs],
                            **n.attrs)
                res = res if isinstance(res, tuple) else (res,)
                for v, r in zip(n.outputs, res):
                    env[v.id] = r
        return tuple(at(env[v.id], g.traced_device(v)) for v in g.outputs)

    # --- export -----------------------------------------------------------------------
    def save(self, path) -> None:
        save_graph(self.graph, path)

    def to_onnx(self, path, opset: int | None = None, **kwargs) -> None:
        from .onnx import export_graph
        export_graph(self.graph, path, opset=opset, **kwargs)
