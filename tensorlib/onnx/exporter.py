"""Graph -> ONNX: ``export_graph(g, path, opset)`` and the one-call ``export(model, ...)``."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..graph.ir import Graph, Node, Value
from .context import ExportContext, UnsupportedOpError, tensor_type

DEFAULT_OPSET = 17
MIN_OPSET = 13


def _needed(g: Graph) -> list[Node]:
    from ..graph.executor import needed_nodes
    return needed_nodes(g, g.outputs, [])


def check_exportable(g: Graph) -> None:
    """Raise one error naming every op of ``g`` that has no ONNX rule."""
    from ..ops.registry import REGISTRY
    from .rules import RANDOM_FORMS, UNSUPPORTED
    bad: dict[str, str] = {}
    needed = _needed(g)
    pairs = rfft_pairs(g, needed)
    cplx = _complex_values([n for n in needed if n.id not in pairs])
    for n in needed:
        if n.id in pairs or _reads_pair(n, pairs):
            continue
        ops = [r[0] for r in n.attrs["program"]] if n.op == "fused" else [n.op]
        for op in ops:
            if op in ("placeholder", "variable", "constant"):
                continue
            if op == "random":
                if n.attrs.get("dist") not in RANDOM_FORMS:
                    bad[f"random {n.attrs.get('dist')!r}"] = (
                        "a random draw of a distribution with no ONNX form (exported: "
                        f"{', '.join(sorted(RANDOM_FORMS))}); call model.eval() before "
                        "capturing if the draw is dropout's")
            elif op not in REGISTRY or not callable(REGISTRY[op].onnx):
                bad[op] = UNSUPPORTED.get(op, "no ONNX lowering rule")
    if bad or cplx:
        lines = "; ".join(f"{k} ({v})" for k, v in sorted(bad.items()))
        raise UnsupportedOpError(
            "ONNX export: "
            + (f"the graph uses ops with no ONNX form: {lines}. " if bad else "")
            + (f"{cplx}. " if cplx else "") + "See docs/onnx_ops.md.")


def rfft_pairs(g: Graph, needed: list[Node]) -> set[int]:
    """The one-axis ``fft_r2c`` nodes read only through ``view_as_real``
    (``view_as_real(rfft(x))``: real pairs, what ONNX's DFT makes): exported as one DFT,
    their complex value unseen."""
    ids = {n.id for n in needed}
    outs = {v.id for v in g.outputs}
    cons = g.consumers()
    found = set()
    for n in needed:
        if n.op != "fft_r2c" or n.out.id in outs:
            continue
        if n.attrs.get("axes") or n.attrs.get("double"):
            continue        # a multi-axis or doubled r2c is not one DFT
        users = [u for u in cons.get(n.out, []) if u.id in ids]
        if users and all(u.op == "view_as_real" for u in users):
            found.add(n.id)
    return found


def _reads_pair(n: Node, pairs: set[int]) -> bool:
    return n.op == "view_as_real" and n.inputs[0].node.id in pairs


def _lower_rfft_pairs(ctx, n: Node) -> str:
    """``view_as_real(fft_r2c(x))``: ONNX DFT of a real signal (a last dim of 1), one-sided,
    scaled for the norm mode."""
    r2c = n.inputs[0].node
    x = r2c.inputs[0]
    ctx.need_opset(17, "view_as_real(rfft(x)) (ONNX's DFT)")
    axis = int(r2c.attrs["axis"]) % len(x.shape)
    sig = ctx.unsqueeze(ctx.name(x), [len(x.shape)])
    if ctx.opset >= 20:     # (the axis became an input)
        out = ctx.op("DFT", [sig, "", ctx.const(np.asarray(axis, np.int64))], onesided=1)
    else:
        out = ctx.op("DFT", [sig], axis=axis, onesided=1)
    norm, size = r2c.attrs.get("norm") or "backward", x.shape[axis]
    if norm == "backward":
        return out
    if size is None:
        ctx.unsupported(f"rfft with norm={norm!r} needs a static signal length")
    scale = 1.0 / (np.sqrt(size) if norm == "ortho" else size)
    return ctx.op("Mul", [out, ctx.const(np.asarray(scale, n.out.dtype))])


def _complex_values(needed: list[Node]) -> str:
    """ONNX declares complex64/complex128 tensors but none of its operators accepts them:
    what to say of a graph computing complex values (the tensors and the ops making them),
    or "" for none."""
    found = [f"{v.label()} {v.type_str()} ({n.op})" for n in needed for v in n.outputs
             if v.dtype.kind == "c"]
    if not found:
        return ""
    more = f" and {len(found) - 5} more" if len(found) > 5 else ""
    return ("the graph computes complex tensors, which no ONNX operator accepts: "
            f"{', '.join(found[:5])}{more}; export a graph of real tensors (complex inputs "
            "as tl.view_as_real pairs, computing on their real and imaginary parts)")


def _value_info(name: str, v: Value, dims):
    from onnx import helper
    return helper.make_tensor_value_info(name, tensor_type(v.dtype), dims)


def to_model(g: Graph, opset: int = DEFAULT_OPSET, input_names: Sequence[str] | None = None,
             output_names: Sequence[str] | None = None,
             dim_names: Mapping[tuple[int, int], str] | None = None,
             drop_updates: bool = False):
    """The ``onnx.ModelProto`` of graph ``g`` (outputs = ``g.outputs``).

    ONNX has no variables, so a graph that writes state (``assign`` nodes: a training step's
    weight updates, BatchNorm running statistics in training mode) raises
    :class:`UnsupportedOpError` naming what would be left out; ``drop_updates=True`` exports
    the outputs alone. Every output declares its rank, with symbolic dims where the graph
    has ``None``."""
    import onnx
    from onnx import helper, numpy_helper

    from ..ops.registry import REGISTRY
    from .rules import attach, lower_random
    attach()
    if not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ValueError(f"ONNX export: opset {opset} is not supported (use "
                         f"{MIN_OPSET}..{onnx.defs.onnx_opset_version()})")
    if not g.outputs:
        raise ValueError("ONNX export: the graph has no outputs (g.set_outputs(...))")
    if not drop_updates and any(not a.attrs.get("transient") for a in g.assigns):
        raise UnsupportedOpError(_updates_message(g))
    check_exportable(g)
    ctx = ExportContext(opset)
    dim_names = dict(dim_names or {})
    inputs = []
    used: set[str] = set()

    def unique(name: str) -> str:
        base, k = name.replace(" ", "_") or "t", 1
        out = base
        while out in used:
            k += 1
            out = f"{base}_{k}"
        used.add(out)
        return out

    for i, v in enumerate(g.inputs):
        name = unique(input_names[i] if input_names and i < len(input_names)
                      else (v.name or f"input{i}"))
        ctx.names[v.id] = name
        dims = [d if d is not None else dim_names.get((i, a), f"{name}_dim{a}")
                for a, d in enumerate(v.shape)]
        inputs.append(_value_info(name, v, dims))
    needed = _needed(g)
    pairs = rfft_pairs(g, needed)
    ctx.used = {v.id for n in needed for v in n.inputs} | {v.id for v in g.outputs}
    for n in needed:
        ctx.node = n
        if n.op == "placeholder" or n.id in pairs:
            continue
        if _reads_pair(n, pairs):
            ctx.names[n.out.id] = _lower_rfft_pairs(ctx, n)
            continue
        if n.op in ("variable", "constant"):
            if n.op == "variable":
                t, slot = g.bindings[n]
                arr = t._host() if slot == "data" else t.grad._host()
                name = unique(n.name or f"var{n.id}")
            else:
                arr = n.attrs["value"]
                arr = arr.get() if hasattr(arr, "get") else np.asarray(arr)
                name = unique(f"const{n.id}")
            ctx.initializers.append(numpy_helper.from_array(
                np.ascontiguousarray(arr).reshape(n.out.shape), name))
            ctx.names[n.out.id] = name
            continue
        if n.op == "fused":
            _lower_fused(ctx, n)
            continue
        if n.op == "random":        # a graph node, not a registry op
            ctx.names[n.out.id] = lower_random(ctx, n)
            continue
        outs = REGISTRY[n.op].onnx(ctx, n)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        if len(outs) != len(n.outputs):
            raise UnsupportedOpError(f"ONNX export: rule for {n.op!r} made {len(outs)} outputs, "
                                     f"the op has {len(n.outputs)}")
        for v, o in zip(n.outputs, outs):
            if o is not None:
                ctx.names[v.id] = o
    outputs = []
    output_names = output_names or g.output_names
    for i, v in enumerate(g.outputs):
        name = unique(output_names[i] if output_names and i < len(output_names)
                      else f"output{i}" if not v.name or v.name in used else v.name)
        ctx.nodes.append(helper.make_node("Identity", [ctx.name(v)], [name],
                                          name=ctx.fresh("out")))
        outputs.append(helper.make_tensor_value_info(name, tensor_type(v.dtype), None))
    nodes, inits = _prune(ctx.nodes, ctx.initializers, [o.name for o in outputs])
    graph = helper.make_graph(nodes, g.name or "tensorlib", inputs, outputs,
                              initializer=inits)
    from .. import __version__
    model = helper.make_model(graph, producer_name="tensorlib", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, _max_ir(opset))
    inferred = onnx.shape_inference.infer_shapes(model)
    _bool_where_as_uint8(model, inferred)
    for out, inf, v in zip(model.graph.output, inferred.graph.output, g.outputs):
        if inf.type.tensor_type.HasField("shape"):
            out.type.CopyFrom(inf.type)
        _fill_shape(out, v)
    return model


def _bool_where_as_uint8(model, inferred) -> None:
    """Where on BOOL data (a bool scatter, setitem or where) as Where on UINT8 between
    Casts: the standard allows BOOL there, but onnxruntime has no kernel for it and refuses
    to load the model."""
    from onnx import TensorProto, helper
    types = {i.name: i.type.tensor_type.elem_type for i in (
        *inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output)}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    nodes = []
    for nd in model.graph.node:
        if nd.op_type != "Where" or types.get(nd.input[1]) != TensorProto.BOOL:
            nodes.append(nd)
            continue
        c, x, y = nd.input
        u8 = [f"{nd.name}_{k}_u8" for k in ("x", "y", "out")]
        nodes += [helper.make_node("Cast", [x], [u8[0]], to=TensorProto.UINT8,
                                   name=f"{nd.name}_cx"),
                  helper.make_node("Cast", [y], [u8[1]], to=TensorProto.UINT8,
                                   name=f"{nd.name}_cy"),
                  helper.make_node("Where", [c, u8[0], u8[1]], [u8[2]], name=nd.name),
                  helper.make_node("Cast", [u8[2]], [nd.output[0]], to=TensorProto.BOOL,
                                   name=f"{nd.name}_cb")]
    if len(nodes) != len(model.graph.node):
        del model.graph.node[:]
        model.graph.node.extend(nodes)


def _fill_shape(out, v: Value) -> None:
    """Give output ``out`` the graph's shape of ``v`` where ONNX shape inference left it
    unknown: the checker (full_check) requires a shape on graph outputs, and inference stops
    at e.g. a Reshape to a computed shape before opset 14. ``None`` dims become symbolic."""
    tt = out.type.tensor_type
    if not tt.HasField("shape"):
        tt.shape.SetInParent()
        for _ in v.shape:
            tt.shape.dim.add()
    if len(tt.shape.dim) != len(v.shape):
        return                  # inference disagrees on the rank: leave its answer alone
    for a, (dim, d) in enumerate(zip(tt.shape.dim, v.shape)):
        if dim.HasField("dim_value") or dim.HasField("dim_param"):
            continue
        if d is not None:
            dim.dim_value = int(d)
        else:
            dim.dim_param = f"{out.name}_dim{a}"


def _prune(nodes: list, initializers: list, outputs: list[str]):
    """The nodes and initializers the outputs depend on: rules may make outputs (saved
    statistics, indices) that nothing reads, and ONNX nodes have no side effects."""
    need = set(outputs)
    keep = []
    for node in reversed(nodes):
        if any(o in need for o in node.output):
            keep.append(node)
            need.update(i for i in node.input if i)
            for a in node.attribute:        # subgraphs (If, Loop) read outer names too
                for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                    need.update(i for sn in sub.node for i in sn.input if i)
    keep.reverse()
    return keep, [t for t in initializers if t.name in need]


def _updates_message(g: Graph) -> str:
    """Why ``g`` (it has assigns) cannot be exported: the state it writes and the ops that
    only feed those writes, all of which an export of the outputs would leave out."""
    import re

    from ..graph.executor import needed_nodes
    written = list(dict.fromkeys(a.attrs.get("var") or a.name or f"%{a.id}"
                                 for a in g.assigns if not a.attrs.get("transient")))
    # the model's own names first, then gradients, then optimizer state and unnamed state
    # (v0, v1), which say little
    written.sort(key=lambda w: (bool(re.fullmatch(r"v\d+|%\d+", w)),
                                ".state[" in w or "<" in w, w.endswith(".grad")))
    shown = ", ".join(written[:10]) + (f" and {len(written) - 10} more" if len(written) > 10
                                       else "")
    kept = {n.id for n in needed_nodes(g, g.outputs, [])}
    dropped: set[str] = set()
    for n in needed_nodes(g, [], g.assigns):
        if n.id not in kept:
            dropped.update([r[0] for r in n.attrs["program"]] if n.op == "fused" else [n.op])
    grads = sorted(op for op in dropped if op.endswith("_grad"))
    what = (f"the backward pass ({', '.join(grads)}) and the updates it feeds" if grads
            else "these writes and the ops that only feed them")
    return (f"ONNX export: graph {g.name!r} updates state when it runs ({len(written)} "
            f"variables written: {shown}), as a training step (or BatchNorm in training mode) "
            f"does. ONNX has no variables, so the model would compute only the graph's "
            f"outputs and silently leave out {what}. Export an inference graph instead "
            "(model.eval(), capture under tl.no_grad(), or tl.onnx.export(model, inputs, "
            "path)), or pass drop_updates=True to export the outputs alone.")


def _max_ir(opset: int) -> int:
    # onnxruntime reads IR versions up to 10 (onnx 1.16-1.17); opset 21+ needs IR 10
    return 10 if opset >= 21 else 9 if opset >= 19 else 8


def _lower_fused(ctx: ExportContext, n: Node) -> None:
    """A fused elementwise chain, one op at a time through each op's rule."""
    from ..ops.registry import REGISTRY
    out = n.out
    acc = None
    tmp = -1_000_000 - n.id * 1000
    for k, (op, refs) in enumerate(n.attrs["program"]):
        ins = [acc if r == -1 else n.inputs[r] for r in refs]
        node = Node(-1, op, ins, {}, n.device)
        v = Value(tmp - k, out.shape, out.dtype, node, 0)
        node.outputs.append(v)
        ctx.node = node
        res = REGISTRY[op].onnx(ctx, node)
        ctx.names[v.id] = res if isinstance(res, str) else res[0]
        acc = v
    ctx.names[out.id] = ctx.names[acc.id]


def _to_model_auto(g: Graph, *args):
    """``to_model`` at DEFAULT_OPSET, or, when an op's rule needs a newer opset, at the
    lowest opset that has every op: a user who named no opset gets a model, one who named one
    gets the error. Rules state their minimum with ``ctx.need_opset`` (the error carries it as
    ``min_opset``); an error that only says "opset >= N" in its text counts too."""
    import re

    import onnx
    from .context import OpsetTooLowError
    opset = DEFAULT_OPSET
    while True:
        try:
            return to_model(g, opset, *args)
        except UnsupportedOpError as e:
            if isinstance(e, OpsetTooLowError):
                need = [e.min_opset]
            else:   # rules outside tensorlib.onnx that raise through ctx.unsupported
                need = [int(k) for k in re.findall(r"opset >= (\d+)", str(e))]
            if not need or max(need) <= opset or max(need) > onnx.defs.onnx_opset_version():
                raise
            opset = max(need)


def export_graph(g: Graph, path: str | os.PathLike, opset: int | None = None,
                 input_names: Sequence[str] | None = None,
                 output_names: Sequence[str] | None = None,
                 dim_names: Mapping[tuple[int, int], str] | None = None,
                 check: bool = True,
                 output_axes: Mapping[str, Any] | None = None,
                 drop_updates: bool = False) -> None:
    """Write graph ``g`` as an ONNX model to ``path``.

    ``None`` dims of the inputs become symbolic (dynamic) axes, named by ``dim_names``
    ``{(input index, axis): name}`` or ``<input>_dim<axis>``; variables and constants
    become initializers. ``output_axes`` ``{output name: axes}`` (a list of axes or
    ``{axis: name}``, as ``export``'s ``dynamic_axes``) writes those output axes symbolic;
    one the graph computes with a fixed size raises. With ``check`` the model passes
    ``onnx.checker.check_model(full_check=True)`` before it is written. A graph that writes
    state (a training step: weight updates, gradients) raises ``UnsupportedOpError``, as ONNX
    has no variables; ``drop_updates=True`` exports its outputs alone. ``opset=None`` uses
    opset 17, or the lowest newer one every op needs (18 for ``scatter_reduce``
    amax/amin, integer bitwise and/or/xor/not and EmbeddingBag max over offsets); a given
    ``opset`` is used as is (an op it lacks raises, naming the opset). Random draws (dropout
    in training mode, ``randn_like``, ``tl.rand``...) become unseeded ONNX random ops that
    draw anew on every run: the same distribution as tensorlib's, not the same values for a
    given ``tl.manual_seed`` (see docs/onnx_ops.md, ``random``).
    """
    import onnx
    if opset is None:
        model = _to_model_auto(g, input_names, output_names, dim_names, drop_updates)
    else:
        model = to_model(g, int(opset), input_names, output_names, dim_names, drop_updates)
    # the names the model gives its inputs: the given ones, the exporter's for the rest
    inputs = [i.name for i in model.graph.input][:len(g.inputs)]
    _warn_predicates(g, inputs)
    if output_axes:
        _output_axes(model, g, output_axes, inputs)
    if check:
        onnx.checker.check_model(model, full_check=True)
    from ..io import _atomic_write
    _atomic_write(os.fspath(path), [model.SerializeToString()])


def _warn_predicates(g: Graph, names: list[str]) -> None:
    """The traced Python compared sizes of dynamic axes (``assert t <= 8``, ``if n > 3``):
    ONNX has no such branch, so the model assumes each comparison comes out as traced (as
    PyTorch's tracing exporter does). Said once per export; ``names``: the model's inputs."""
    import warnings

    from ..graph.sizes import dims_of, input_labels, predicate_str
    dynamic = {(i, a) for i, v in enumerate(g.inputs) for a, d in enumerate(v.shape)
               if d is None}
    preds = [p for p in g.size_predicates
             if any(dims_of(e) & dynamic for e in p[1:3])]
    if not preds:
        return
    labels = input_labels(g.inputs, names)
    said = ", ".join(predicate_str(p, labels) for p in preds)
    warnings.warn(f"ONNX export: the exported graph assumes {said}, as traced (the Python "
                  "compared these sizes of dynamic axes while tracing, and ONNX keeps the "
                  "branch they took, as PyTorch's tracing exporter does); inputs where a "
                  "comparison comes out otherwise are not checked.", UserWarning, stacklevel=3)


def export(model, example_inputs, path: str | os.PathLike, dynamic_axes=None,
           opset: int | None = None, input_names: Sequence[str] | None = None,
           output_names: Sequence[str] | None = None) -> Graph:
    """Capture ``model(*example_inputs)`` and write it as ONNX in one call.

    ``dynamic_axes`` maps an input (name or index) or an output (name) to the axes that
    vary: a list of axes or ``{axis: name}`` (as ``torch.onnx.export``). An output's axes
    follow the inputs' dynamic axes they are computed from; naming one writes it symbolic
    (with that name) in the model's outputs, and an output axis that follows no dynamic
    input axis is an error. A module is captured in eval mode (dropout off, batch-norm
    running statistics), then put back; a draw made regardless of the mode
    (``F.dropout(x, p, training=True)`` of an MC-dropout predictive, a VAE's ``randn_like``)
    is exported as an unseeded ONNX random op, fresh on every run. ``opset=None``: 17, or
    the lowest newer opset the graph's ops need (18 for ``scatter_reduce`` amax/amin, integer
    bitwise and/or/xor/not and EmbeddingBag max over offsets; 20 for 5-d ``grid_sample``).
    Returns the graph.

    >>> tl.onnx.export(model, (tl.randn(1, 784),), "mlp.onnx", dynamic_axes={0: [0]})
    >>> tl.onnx.export(model, (x,), "m.onnx", input_names=["images"], output_names=["logits"],
    ...                dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
    """
    from .. import TensorSpec, function
    from .._tensor import Tensor
    from ..creation import tensor
    if isinstance(example_inputs, (Tensor, np.ndarray)):
        example_inputs = (example_inputs,)
    ex = [a if isinstance(a, Tensor) else tensor(np.asarray(a)) for a in example_inputs]
    names = list(input_names) if input_names else [f"input{i}" for i in range(len(ex))]
    dims: dict[tuple[int, int], str] = {}
    dyn: dict[int, set] = {}
    out_axes: dict[str, Any] = {}       # output name -> its axes, resolved after capture
    if dynamic_axes is not None and not isinstance(dynamic_axes, Mapping):
        raise TypeError(f"tl.onnx.export: dynamic_axes must be a dict {{input or output name: "
                        f"axes}}, got {type(dynamic_axes).__name__}")
    for key, axes in (dynamic_axes or {}).items():
        if isinstance(key, str) and key not in names:
            if output_names is not None and key not in output_names:
                raise ValueError(_unknown_name(key, names, list(output_names)))
            out_axes[key] = axes
            continue
        if not isinstance(key, (str, int, np.integer)) or isinstance(key, bool):
            raise TypeError(f"tl.onnx.export: dynamic_axes keys are input or output names "
                            f"(or input indices), got {key!r}")
        i = names.index(key) if isinstance(key, str) else int(key)
        if not 0 <= i < len(ex):
            raise ValueError(f"tl.onnx.export: dynamic_axes names input {key!r}, but there are "
                             f"{len(ex)} inputs {names}")
        for a, nm in _axes_items(key, axes, ex[i].ndim, "input"):
            dyn.setdefault(i, set()).add(a)
            if nm:
                dims[(i, a)] = str(nm)
    specs = [TensorSpec(tuple(None if a in dyn.get(i, ()) else d
                              for a, d in enumerate(t.shape)), t.dtype)
             for i, t in enumerate(ex)]
    was_training = getattr(model, "training", None)
    if was_training:
        model.eval()
    try:
        fn = function(lambda *xs: model(*xs), input_signature=specs)
        # (get_graph traces again with the dynamic axes doubled and compares the graphs;
        # both traces without autograd, as an exported model runs: with it, an in-place
        # op such as ReLU(inplace=True) recorded a copy in one trace only)
        from ..autograd.mode import no_grad
        with no_grad():
            g = fn.get_graph(*ex)
    finally:
        if was_training:
            model.train()
    if dyn and g.size_specialized:
        raise UnsupportedOpError(
            f"ONNX export: dynamic_axes were asked for, but {g.size_specialized}, so the "
            "captured graph only fits the example's shapes. Use the size in reshape/view/"
            "expand/zeros directly (x.shape[0] * 3, n // 2 follow the dim), compute numbers "
            "with tensor ops (x.mean() rather than x.sum() / x.shape[0]), or export without "
            "dynamic_axes.")
    from ..export import name_parameters
    name_parameters(g, model)
    export_graph(g, path, opset, names, output_names, dims, check=True, output_axes=out_axes)
    return g


def _unknown_name(key, inputs: list, outputs: list) -> str:
    import difflib
    near = difflib.get_close_matches(key, [*inputs, *outputs], n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return (f"tl.onnx.export: dynamic_axes names {key!r}, which is neither an input nor an "
            f"output{hint}: the inputs are {inputs} and the outputs {outputs} (set them with "
            "input_names= and output_names=)")


def _axes_items(key, axes, ndim: int, what: str):
    """``[(axis, name or None)]`` of one dynamic_axes entry (a list of axes or
    ``{axis: name}``), each axis checked against the tensor's rank and made non-negative."""
    if isinstance(axes, Mapping):
        items = list(axes.items())
    elif isinstance(axes, (list, tuple, set, range)):
        items = [(a, None) for a in axes]
    else:
        raise TypeError(f"tl.onnx.export: dynamic_axes[{key!r}] must be a list of axes or "
                        f"{{axis: name}}, got {axes!r}")
    out = []
    for a, nm in items:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool) or \
                not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(f"tl.onnx.export: dynamic_axes[{key!r}] names axis {a!r}, but "
                             f"the {what} has {ndim} dims")
        out.append((int(a) % max(ndim, 1), nm))
    return out


def _output_axes(model, g: Graph, out_axes: Mapping[str, Any], inputs: list) -> None:
    """Mark the outputs' dynamic axes (``{output name: axes}``) symbolic in ``model``:
    named as asked, else as shape inference named them, else ``<output>_dim<axis>``. An
    axis the graph computes with a fixed size (it follows no dynamic input axis) raises."""
    outs = [o.name for o in model.graph.output]
    for key, axes in out_axes.items():
        if key not in outs:
            raise ValueError(_unknown_name(key, inputs, outs))
        i = outs.index(key)
        v = g.outputs[i]
        shape = model.graph.output[i].type.tensor_type.shape
        if not model.graph.output[i].type.tensor_type.HasField("shape"):
            for d in v.shape:         # shape inference could not tell: the graph's own
                dim = shape.dim.add()
                if d is not None:
                    dim.dim_value = int(d)
        for a, nm in _axes_items(key, axes, len(v.shape), f"output {key!r}"):
            if v.shape[a] is not None:
                dyn = [f"{inputs[k]}[{ax}]" for k, u in enumerate(g.inputs)
                       for ax, d in enumerate(u.shape) if d is None]
                raise ValueError(
                    f"tl.onnx.export: dynamic_axes asks for axis {a} of output {key!r} to be "
                    f"dynamic, but the exported graph computes it with the fixed size "
                    f"{v.shape[a]}: it follows no dynamic input axis (the dynamic input axes "
                    f"are {', '.join(dyn) or 'none'}). Make the input axis it comes from "
                    "dynamic too.")
            dim = shape.dim[a]
            if nm:
                dim.dim_param = str(nm)
            elif not dim.dim_param:
                dim.dim_param = f"{key}_dim{a}"
