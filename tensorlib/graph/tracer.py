"""The tracer: a listener on the ``apply`` funnel that records ops into a Graph.

Capture runs the Python code eagerly (every op computes real values) while the
tracer mirrors each op call as a graph node. It maps eager storage (the
``ndarray`` behind a Tensor) to the graph Value that currently stands for it,
so aliases made outside ``apply`` (``detach()``, ``.data``, the tape's saved
outputs) resolve to the right Value, and it stamps each mapping with the
storage's version counter, so a stale alias is an error rather than a wrong
graph.

Tensors that the captured code did not create are *captured*: tensors that
require grad, or are reachable from the function's arguments/globals (module
parameters, optimizer buffers), become variables bound to the eager storage;
the ``.grad`` of a captured tensor is its own variable location; other tensors
become constants bound by reference and guarded by their version counter.
"""
from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from .._device import current_scope
from .._state import state as _state
from .executor import multi_spec
from .ir import SOURCE_OPS, Graph, Node, Value
from .sizes import MAX_PREDICATES, SizeArithmetic, apply_sizes


POSITIONS_HOW = "read at every position with constant indices"


class CaptureError(RuntimeError):
    """Something the captured code does cannot be represented faithfully in a graph."""


# an integer comparison with a constant c as a bound (side, offset): `n > c` holds iff
# n >= c + 1, and fails iff n <= c
_BOUNDS = {"gt": {True: ("ge", 1), False: ("le", 0)}, "ge": {True: ("ge", 0), False: ("le", -1)},
           "lt": {True: ("le", -1), False: ("ge", 0)}, "le": {True: ("le", 0), False: ("ge", 1)}}

_READ_HELP = (
    "The value depends on the graph's inputs or variables, so a graph would freeze the "
    "value seen while tracing and replay it wrong later. Instead: keep data-dependent "
    "choices in tensor ops (tl.where(cond, a, b), tl.maximum, masks), return the tensor "
    "and read it after the call, or pass the value as a Python argument (it then becomes "
    "part of the signature and a new value retraces).")


class Tracer:
    """Records op calls into ``graph`` (see the module docstring)."""

    def __init__(self, graph: Graph, reachable: dict[int, tuple[Any, str]] | None = None,
                 derived: bool = False):
        self.g = graph
        # what autograd did at each recorded op, for g.gradients (see GradInfo); ``derived``:
        # this tracer records g.gradients' own rules into the graph
        self.info = grad_info(graph)
        self.derived = derived
        self._carrier: dict[int, Any] = {}        # id(ndarray) -> the tensor bound to it
        self._alias_at: dict[int, list] = {}      # node id -> [alias tensors it read]
        self._aliases: dict[int, list] = {}       # id(alias) -> [alias, edges it feeds...]
        self._by_array: dict[int, tuple] = {}     # id(ndarray) -> (arr, Value, box, version)
        self.dynamic: set[int] = set()            # Value ids that depend on inputs/state
        # shapes with None for the sizes that follow a None dim of input_signature, as the
        # ops' infer derives them while tracing (traced_shape marks those sizes)
        self.sym: dict[int, tuple] = {}
        self.size_escapes: list[str] = []         # TracedSizes turned into plain numbers
        # for each escape: the (Value, axis) dims its expression read (Value None: unknown)
        self.escaped_dims: list[list[tuple]] = []
        self.reasoned: set[int] = set()           # size_escapes the library explained
        # size comparisons the traced code made: (cmp, lhs, rhs, result) over input dims
        self.predicates: list[tuple] = []
        # every escape was constant indices reading each position of a dim (ei[0], ei[1])
        self.loop_escapes_only = True
        self.predicate_set: set[tuple] = set()
        # predicate -> (source line, file:line, the comparison as made, None or "a shape
        # rule" when an op's infer made it), for messages (see sizes.predicate_miss)
        self.predicate_sources: dict[tuple, tuple] = {}
        # op results whose None dims a comparison may follow (Value id -> Value), and what
        # following them through their op's infer gave (see ``_derive``)
        self._made: dict[int, Value] = {}
        self._derived: dict[int, tuple | None] = {}
        # ("ge" / "le", expression) -> index in predicates of that bound on the expression
        self._bounds: dict[tuple, int] = {}
        self._input_index: dict[int, int] = {}    # placeholder Value id -> input index
        # (Value id, axis) of a None dim -> the positions constant indices read there
        self.positions: dict[tuple, set] = {}
        # (Value id, axis) -> the (Value id, axis) it is a permuted or copied view of
        self.dim_origin: dict[tuple, tuple] = {}
        self.reachable = reachable or {}          # id(tensor) -> (tensor, path name)
        self.locations: dict[int, tuple] = {}     # id(storage array) -> location
        self.var_nodes: dict[tuple, Node] = {}    # location key -> variable/constant node
        self.loc_objs: dict[tuple, tuple] = {}    # location key -> (owner, slot)
        self.grad_owner: dict[int, Any] = {}      # id(grad tensor) -> owner tensor
        self.start_grad: dict[int, tuple] = {}    # id(owner) -> (owner, grad at start)
        self.writes: dict[tuple, tuple] = {}      # location key -> (Value or None, how)
        # locations whose last write only caches what the graph recomputes from its inputs
        # (an embedding's max_norm renormalisation): an export of the outputs may drop it
        self.transient: set[tuple] = set()
        self.placeholders: list = []              # eager tensors fed as inputs
        self._constants: list[tuple] = []         # (tensor, box, version) guards
        # id(tensor) -> len(_constants) when it became a variable: its entries before that
        # index leave the list on the next read of ``constants`` (a filter per conversion
        # was quadratic: an Adam step over 1000 parameters spent 18 s in it)
        self._dropped: dict[int, int] = {}
        self._keep: list = []                     # keeps ids stable during the trace
        self.fresh: set[int] = set()              # ids of the buffers of tensors it created
        self.tape_nodes: dict[int, tuple] = {}    # id(tape node) -> (tape node, graph node)
        self.backward_runs: list[BackwardRun] = []
        self.grad_leaves: set[int] = set()        # ids of the leaves a backward() reached
        # while backward() walks the tape: (run, forward nodes by id, value id -> ids of the
        # forward nodes that read it), to colocate each gradient node with its forward node
        self._bw: tuple | None = None
        # g.gradients sets the forward node whose vjp rule runs (it knows it exactly)
        self.colocate_with: Node | None = None
        self.n_vars = 0
        # the variables' names so far (every variable is named by _name_for): a scan of the
        # graph's nodes per new variable was quadratic (an Adam step over 1000 parameters
        # spent 70 s in it)
        self._var_names = {n.name for n in graph.nodes if n.op == "variable"}
        # ids of the Module.__call__ frames' modules (innermost first) -> qualified name
        self._paths: dict[tuple, str] = {}
        self._path_keep: list = []      # keeps those ids unique during the trace
        self._names_in: dict[int, dict] = {}    # id(module) -> _child_names' map
        global _MODULE_CALL
        if _MODULE_CALL is None:
            _MODULE_CALL = _module_call_code()
        self._owners: dict[int, tuple] | None = None   # id(storage) -> (state tensor, slot)
        # (module, attribute) a hook-style norm set anew before a forward (see
        # ``note_recomputed``)
        self.recomputed: dict[tuple, tuple] = {}
        self.rebinds: list[tuple] = []      # (module, name, tensor) the graph writes into
        # tl.function: an argument's .grad is per-call state, not a variable bound to the
        # traced tensor. Its starting value, when read, is an extra placeholder after the
        # arguments (``grad_inputs``: argument index -> placeholder index), and its final
        # value is an output the replay sets (``arg_grad_writes``, see ``finish``)
        self.arg_grads = False
        self.arg_start: dict[int, tuple] = {}     # id(argument) -> (argument, .grad at start)
        self._arg_index: dict[int, int] = {}      # id(argument) -> its placeholder index
        self._arg_grad_arrays: dict[int, Any] = {}  # id(start .grad's array) -> argument
        self.grad_inputs: dict[int, int] = {}
        self.arg_grad_writes: list[tuple] = []    # (argument index, Value or None)
        # leaves a backward() into .grad reached that the graph never saw (through the
        # autograd history an argument brought from outside): a replay cannot reach them
        self.outside_leaves: list = []
        for t, _ in self.reachable.values():
            self._note_grad(t)

    # --- maps -------------------------------------------------------------------
    def _note_grad(self, t) -> None:
        if id(t) not in self.start_grad:
            self.start_grad[id(t)] = (t, t.grad)
            if t.grad is not None:
                self.grad_owner[id(t.grad)] = t

    def bind(self, t, v: Value, bump: int = 0) -> None:
        arr = t._data
        self._by_array[id(arr)] = (arr, v, t._version, t._version[0] + bump)
        self._carrier[id(arr)] = t
        if t._rg and not self.derived:
            self.info.tracked.add(v.id)

    def lookup(self, t) -> Value | None:
        """The Value a tensor stands for in the graph, or None if the trace never saw it."""
        e = self._by_array.get(id(t._data))
        if e is None or e[0] is not t._data:
            return None
        if e[2][0] != e[3]:
            raise CaptureError(
                f"a tensor of shape {tuple(t.shape)} was modified in place (through a view or "
                "an alias the capture cannot follow) after the graph recorded its value, and "
                "is used again. Update it with an out-of-place op, or update the tensor "
                "itself rather than a view of it.")
        return e[1]

    def value_of(self, t) -> Value:
        v = self.lookup(t)
        return v if v is not None else self._capture(t)

    # --- captured eager tensors ---------------------------------------------------
    def note_fresh(self, t) -> None:
        """``t`` was created during the trace (tl.zeros, tl.tensor... in the function): its
        value is a constant of the graph, and writes to it are values of each run."""
        from ..backends import root_buffer
        self.fresh.add(id(root_buffer(t._data)))
        self._keep.append(t)

    def _is_fresh(self, t) -> bool:
        """Whether ``t`` (or the tensor it views) was created during the trace."""
        if not self.fresh:
            return False
        from ..backends import root_buffer
        return id(root_buffer(t._data)) in self.fresh

    def _classify(self, t) -> tuple[str, Any, str]:
        if self._is_fresh(t):
            return "constant", t, "data"
        owner = self.grad_owner.get(id(t))
        if owner is not None and owner.grad is t:
            return "variable", owner, "grad"
        if t._rg or id(t) in self.reachable:
            return "variable", t, "data"
        owner = self._storage_owner(t)
        if owner is not None:
            # ``p.data`` / ``p.detach()`` of state: the live variable, read when the graph
            # runs (a constant would freeze the trace-time value, or retrace on every change)
            return "variable", owner[0], owner[1]
        return "constant", t, "data"

    def _storage_owner(self, t):
        """``(owner, slot)`` when ``t`` is an alias (``.data``, ``.detach()``) sharing the
        storage of a state tensor the function reaches, or of such a tensor's ``.grad``."""
        owners = self._owners
        if owners is None:
            owners = self._owners = {}
            for r, _ in self.reachable.values():
                g = r.grad
                if g is not None:
                    owners.setdefault(id(g._data), (r, "grad"))
                # a tensor requiring grad (a Parameter) over a reachable alias of it
                if r._rg or id(r._data) not in owners:
                    owners[id(r._data)] = (r, "data")
        hit = owners.get(id(t._data))
        if hit is None:
            return None
        r, slot = hit
        src = r if slot == "data" else r.grad
        return hit if src is not None and src._data is t._data else None

    @property
    def constants(self) -> list[tuple]:
        """(tensor, version box, version) of every constant the trace read: the replay's
        guards (a tensor written later by the graph became a variable and is not here)."""
        if self._dropped:
            drop = self._dropped
            self._constants = [c for i, c in enumerate(self._constants)
                               if drop.get(id(c[0]), -1) <= i]
            self._dropped = {}
        return self._constants

    def _name_for(self, owner, slot: str) -> str:
        e = self.reachable.get(id(owner))
        base = _clean_path(e[1]) if e is not None else None
        if base and "<tensor " in base:
            # optimizer state is keyed by its parameter: name it after that parameter
            # (opt.state.<tensor 1404...>.exp_avg -> opt.state[model.0.weight].exp_avg)
            import re

            def named(m):
                k = self.reachable.get(int(m.group(1)))
                kn = _clean_path(k[1]) if k is not None else ""
                return f"[{kn}]" if kn and "<" not in kn else m.group(0)
            base = re.sub(r"\.?<tensor (\d+)>", named, base)
        if not base:
            base = f"v{self.n_vars}"
            self.n_vars += 1
        name = base + (".grad" if slot == "grad" else "")
        taken = self._var_names
        k, out = 1, name
        while out in taken:
            k += 1
            out = f"{name}_{k}"
        taken.add(out)
        return out

    def _capture(self, t) -> Value:
        if self._arg_grad_arrays:
            owner = self._arg_grad_arrays.get(id(t._data))
            if owner is not None and self.arg_start[id(owner)][1]._data is t._data:
                return self._grad_input(owner)
        kind, owner, slot = self._classify(t)
        key = (id(owner), slot)
        node = self.var_nodes.get(key)
        if node is None:
            name = self._name_for(owner, slot) if kind == "variable" else None
            attrs = {"slot": slot} if kind == "variable" else {}
            node = self.g.add_node(kind, [], attrs, str(t._device),
                                   [(t._data.shape, t._data.dtype)], name=name)
            node.outputs[0].name = name
            self.g.bindings[node] = (owner, slot)
            self.var_nodes[key] = node
            self.loc_objs[key] = (owner, slot)
            if kind == "variable":
                self.dynamic.add(node.outputs[0].id)
                if slot == "data":
                    self._note_grad(owner)
            elif self._is_fresh(owner):
                # the function's own tensor: its value now (an in-place write follows and
                # must not reach the graph's copy); no guard, nothing outside can change it
                node.attrs["value"] = t._data.copy()
            else:
                node.attrs["value"] = t._data
                self._constants.append((t, t._version, t._version[0]))
        self.locations[id(t._data)] = key
        self._keep.append(t)
        src = owner if slot == "data" else owner.grad
        # an alias is bound through its owner: its reads are detached ones (no gradient)
        self.bind(src if src is not None and src._data is t._data else t, node.outputs[0])
        return node.outputs[0]

    def _grad_input(self, owner) -> Value:
        """The placeholder standing for the .grad argument ``owner`` had at the call (added
        after the arguments on its first read; the replay feeds that call's .grad)."""
        i = self._arg_index[id(owner)]
        j = self.grad_inputs.get(i)
        if j is None:
            g0 = self.arg_start[id(owner)][1]
            pv = self.g.inputs[i]
            same = tuple(g0._data.shape) == tuple(owner._data.shape)
            j = len(self.placeholders)
            self.add_input(g0, name=f"{pv.name}.grad" if pv.name else None,
                           shape=pv.shape if same else None)
            self.grad_inputs[i] = j
        return self.g.inputs[j]

    def add_input(self, t, name: str | None = None, shape=None) -> Value:
        """Make eager tensor ``t`` a placeholder (``shape`` may hold None dims)."""
        if self.arg_grads and t._rg and t._node is None and id(t) not in self.reachable:
            self._arg_index[id(t)] = len(self.placeholders)
            if id(t) not in self.arg_start:
                self.arg_start[id(t)] = (t, t.grad)
                if t.grad is not None:
                    self._arg_grad_arrays[id(t.grad._data)] = t
        v = self.g.placeholder(t._data.shape if shape is None else shape, t._data.dtype,
                               str(t._device), name=name)
        self.g._examples.append(t._data.copy())
        key = ("input", len(self.placeholders))
        self.placeholders.append(t)
        self.var_nodes[key] = v.node
        self.locations[id(t._data)] = key
        self._keep.append(t)
        self.dynamic.add(v.id)
        self._input_index[v.id] = len(self.placeholders) - 1
        if shape is not None and None in tuple(shape):
            self.sym[v.id] = tuple(shape)
        self.bind(t, v)
        return v

    def traced_shape(self, t):
        """``t``'s shape with the sizes that follow a None dim as :class:`TracedSize`, or
        None when it has none."""
        if not self.sym:
            return None
        try:
            v = self.lookup(t)
        except CaptureError:
            return None
        sym = self.sym.get(v.id) if v is not None else None
        if sym is None:
            return None
        lib = _read_by_library()
        out = tuple(TracedSize(d, i, t, tracer=self) if s is None else d
                    for i, (d, s) in enumerate(zip(t._data.shape, sym)))
        if lib:
            for d in out:
                if isinstance(d, TracedSize):
                    d.lib = True
        return out

    def note_size_escape(self, size, how: str, reason: str | None = None,
                         library=None) -> None:
        """A TracedSize became a plain Python number (see :class:`TracedSize`): remember
        which, how and where (the first frame outside tensorlib), for the warning, and the
        dims it was read from (only the input dims those follow get fixed, see
        ``capture._specialize``). ``reason``: the escape in words, when the library knows
        it better than ``how`` (``nn.LSTM loops over the time steps``). ``library``: the
        tensorlib frame that converted it (a library limitation, not the user's line)."""
        dims = []
        for src, axis in _dim_leaves(size.expr):
            try:
                v = self.lookup(src)
            except CaptureError:
                v = None
            dims.append((v, axis))
        self.escaped_dims.append(dims)
        if how != POSITIONS_HOW:
            self.loop_escapes_only = False
        if len(self.size_escapes) >= 8:
            return
        line = user_line()
        where = f" at {line}" if line else ""
        if library is not None and not reason:
            code = library.f_code
            fn = getattr(code, "co_qualname", code.co_name)
            at = os.path.relpath(code.co_filename, os.path.dirname(_ROOT))
            self.reasoned.add(len(self.size_escapes))
            self.size_escapes.append(
                f"the size {size.describe()} (traced as {int.__int__(size)}) was turned into a "
                f"plain Python number ({how}) inside tensorlib, by {fn} ({at}:"
                f"{library.f_lineno}), called{where}: this is a tensorlib limitation, not "
                "something that line can fix; please report it to tensorlib")
            return
        if reason:
            self.reasoned.add(len(self.size_escapes))
            self.size_escapes.append(f"{reason} ({how}: {int.__int__(size)} when traced)"
                                     f"{where}")
        else:
            self.size_escapes.append(f"the size {size.describe()} (traced as "
                                     f"{int.__int__(size)}) was turned into a plain Python "
                                     f"number ({how}){where}")

    def note_predicate(self, size, cmp: str, other, result) -> bool:
        """The user's code compared TracedSize ``size`` with ``other`` (``cmp``, see
        :mod:`tensorlib.graph.sizes`): record the comparison and its traced ``result`` over
        the graph's input dims, so calls check it rather than the size being fixed. A size
        read from an op's result is expressed through the op's ``infer`` (see
        :func:`~tensorlib.graph.sizes.derive_dims`), whose own branches become predicates
        too. Returns False when it cannot be expressed over the inputs (the caller escapes
        the size: the input dims it follows are then traced per size)."""
        guards: list = []
        if isinstance(other, TracedSize):
            rhs = self._input_expr(other.expr, guards)
        elif isinstance(other, (int, np.integer)):
            rhs = int(other)
        elif isinstance(other, (float, np.floating)) and np.isfinite(other):
            rhs = float(other)
        else:
            return False
        lhs = self._input_expr(size.expr, guards)
        if lhs is None or rhs is None:
            return False
        p = (cmp, lhs, rhs, bool(result))
        if guards and len(self.predicates) + len(guards) >= MAX_PREDICATES:
            return False
        source = _user_source()
        for g in guards:
            self._add_predicate(g, (*source, g, "a shape rule"))
        return self._add_predicate(p, (*source, p, None))

    def _add_predicate(self, p: tuple, source: tuple) -> bool:
        """Record predicate ``p``; ``source``: (code, where, the comparison as made, how).
        False when a graph file could not hold another one."""
        cmp, lhs, rhs, _ = p
        if isinstance(rhs, int) and cmp in _BOUNDS and isinstance(lhs, tuple):
            # an integer size against integer constants (`while i < n`, a loop over
            # range(5000) testing `n > i`): only the tightest bound on each side counts, so
            # one such loop keeps two predicates, not one per comparison
            side, off = _BOUNDS[cmp][p[3]]
            c = rhs + off
            p = (side, lhs, c, True)
            at = self._bounds.get((side, lhs))
            if at is not None:
                old = self.predicates[at]
                if (c > old[2]) if side == "ge" else (c < old[2]):
                    self.predicate_set.discard(old)
                    self.predicate_set.add(p)
                    self.predicates[at] = p
                    self.predicate_sources.pop(old, None)
                    self.predicate_sources[p] = source
                return True
        if p in self.predicate_set:
            return True
        if len(self.predicates) >= MAX_PREDICATES:
            return False    # what a graph file holds: past it, the size escapes (per shape)
        if isinstance(rhs, int) and cmp in _BOUNDS and isinstance(lhs, tuple):
            self._bounds[(p[0], lhs)] = len(self.predicates)
        self.predicate_set.add(p)
        self.predicates.append(p)
        self.predicate_sources[p] = source
        return True

    def _input_expr(self, e, guards: list):
        """Size expression ``e`` (tensors in its leaves) over the graph's input dims
        (``("dim", input index, axis)``); None when a leaf cannot be followed to them.
        ``guards`` collects the predicates that following op results needed."""
        if isinstance(e, tuple) and e and e[0] == "dim":
            try:
                v = self.lookup(e[1])
            except CaptureError:
                return None
            return None if v is None else self._dim_expr(v.id, e[2], guards)
        if isinstance(e, tuple):
            a, b = self._input_expr(e[1], guards), self._input_expr(e[2], guards)
            return None if a is None or b is None else (e[0], a, b)
        return int(e)

    def _dim_expr(self, vid: int, axis: int, guards: list, depth: int = 0):
        """Dim ``axis`` of Value ``vid`` over the graph's input dims, following permuted
        and copied views back to an input, and other ops' results through their ``infer``."""
        if depth > 64:
            return None
        key = (vid, axis)
        for _ in range(64):
            if key[0] in self._input_index:
                return ("dim", self._input_index[key[0]], key[1])
            nxt = self.dim_origin.get(key)
            if nxt is None:
                break
            key = nxt
        sym = self.sym.get(key[0])
        if sym is None or not 0 <= key[1] < len(sym):
            return None
        if sym[key[1]] is not None:
            return int(sym[key[1]])
        got = self._derive(key[0], depth)
        if got is None or got[0][key[1]] is None:
            return None
        guards.extend(got[1])
        return got[0][key[1]]

    def _derive(self, vid: int, depth: int):
        """(dims over the input dims, guards) of op result ``vid`` (see ``derive_dims``);
        a dim is None where it cannot be followed; None when ``infer`` cannot run."""
        if vid in self._derived:
            return self._derived[vid]
        self._derived[vid] = None       # a cycle (never in SSA) or a failure below: none
        v = self._made.get(vid)
        from ..ops.registry import REGISTRY
        op = REGISTRY.get(v.node.op) if v is not None else None
        if op is None or op.infer is None:
            return None
        guards: list = []
        ins = []
        for u in v.node.inputs:
            sym = self.sym.get(u.id)
            if sym is None:
                ins.append((u.shape, u.dtype))
                continue
            k = self._input_index.get(u.id)
            traced = u.shape if k is None else self.placeholders[k]._data.shape
            shape = []
            for a, (d, s) in enumerate(zip(traced, sym)):
                if s is not None:
                    shape.append(int(s))
                    continue
                e = self._dim_expr(u.id, a, guards, depth + 1)
                if e is None:
                    return None
                shape.append((int(d), e))
            ins.append((tuple(shape), u.dtype))
        from .sizes import derive_dims
        got = derive_dims(op.infer, ins, v.node.attrs, v.index)
        if got is None:
            return None
        dims, more = got
        sym = self.sym[vid]
        # a dim infer gave as a plain number where it follows a None dim lost its expression
        dims = tuple(None if s is None and not isinstance(d, tuple) else d
                     for d, s in zip(dims, sym))
        if len(dims) != len(sym):
            return None
        self._derived[vid] = (dims, guards + more)
        return self._derived[vid]

    def _infer_sym(self, op, ins, attrs, node) -> None:
        if op.infer is None:
            return
        try:
            out = op.infer(*[(self.sym.get(v.id, v.shape), v.dtype) for v in ins], **attrs)
        except (ValueError, TypeError, IndexError):
            return          # the graph's own shape pass reports it, if it matters
        # (a split into one piece is a tuple of one (shape, dtype): decide by the spec's form)
        outs = list(out) if multi_spec(out) else [out]
        for v, (shape, _) in zip(node.outputs, outs):
            if None in tuple(shape):
                self.sym[v.id] = tuple(shape)

    def note_source(self, node: Node) -> None:
        """Record where ``node`` came from (``Graph.node_sources`` / ``node_modules``): one
        walk up the stack finds the innermost frame outside tensorlib (the user's line) and
        the ``Module.__call__`` frames (the modules whose forward runs)."""
        g = self.g
        f = sys._getframe(2)
        where = None
        mods = None
        while f is not None:
            code = f.f_code
            if code is _MODULE_CALL:
                m = f.f_locals.get("self")
                if m is not None:
                    if mods is None:
                        mods = [m]
                    else:
                        mods.append(m)
            elif where is None and _is_user_code(code):
                where = (code, f.f_lineno)
            f = f.f_back
        if where is not None:
            src = _SOURCES.get(where)
            if src is None:
                if len(_SOURCES) > 50000:
                    _SOURCES.clear()
                src = _SOURCES[where] = _source_of(*where)
            g.node_sources[node.id] = src
        if mods is not None:
            g.node_modules[node.id] = self._module_path(mods)

    def _child_names(self, parent) -> dict:
        """id(submodule) -> its first qualified name in ``parent.named_modules()``, one walk
        per parent and trace (a walk per module was quadratic: 1000 layers, 1M steps)."""
        names = self._names_in.get(id(parent))
        if names is None:
            names = self._names_in[id(parent)] = {}
            for n, c in parent.named_modules():
                if n:
                    names.setdefault(id(c), n)
        return names

    def _module_path(self, mods: list) -> str:
        """The qualified name of ``mods[0]`` (innermost first) from the outermost module:
        each one's name in its caller's submodules (its class name when not one)."""
        key = tuple(map(id, mods))
        path = self._paths.get(key)
        if path is not None:
            return path
        import weakref
        parts: list[str] = []
        chain = mods[::-1]      # outermost first: each module of it is pinnable by object
        for k, m in enumerate(chain):
            if k:
                name = self._child_names(chain[k - 1]).get(id(m))
                if name is None:    # (a submodule added during the trace: walk again)
                    self._names_in.pop(id(chain[k - 1]))
                    name = self._child_names(chain[k - 1]).get(id(m))
                parts.append(name if name is not None else type(m).__name__)
            try:
                self.g.module_paths.setdefault(id(m), (weakref.ref(m), ".".join(parts)))
            except TypeError:
                pass
        path = self._paths[key] = ".".join(parts)
        self._path_keep.append(mods)
        return path

    # --- hooks called by the core -------------------------------------------------
    def record(self, op, inputs, attrs, result) -> None:
        ins = [self.value_of(t) for t in inputs]
        outs = result if type(result) is tuple else (result,)
        node = self.g.add_node(op.name, ins, attrs, str(outs[0]._device),
                               [(o._data.shape, o._data.dtype) for o in outs])
        self.note_source(node)
        scope = current_scope()
        if scope is not None:       # the placer's constraint (the trace runs on the inputs')
            node.pin = str(scope)
        elif self.colocate_with is not None:
            _colocate(node, self.colocate_with)
        elif self._bw is not None:
            self._colocate_backward(node, ins)
        dyn = any(v.id in self.dynamic for v in ins)
        if self.sym and any(v.id in self.sym for v in ins):
            self._infer_sym(op, ins, attrs, node)
            for v in node.outputs:
                self._made[v.id] = v
            if op.name in _POSITIONAL:
                self._note_positions(inputs[0], ins[0], attrs["index"])
            if op.name in _SAME_DIMS and ins[0].id in self.sym:
                src = ins[0].id
                axes = attrs.get("axes") or range(len(self.sym[src]))
                for a, b in enumerate(axes):
                    self.dim_origin[(node.outputs[0].id, a)] = self.dim_origin.get(
                        (src, b), (src, b))
        self._note_grad_edges(op, inputs, ins, node.id)
        tape = outs[0]._node
        if tape is not None:
            self.tape_nodes[id(tape)] = (tape, node)
        for o, v in zip(outs, node.outputs):
            self._keep.append(o._data)
            self.bind(o, v)
            if dyn:
                self.dynamic.add(v.id)

    def _colocate_backward(self, node: Node, ins: list[Value]) -> None:
        """A node recorded by backward(): find the forward node whose vjp rule made it from
        what it reads (the rule reads that node's inputs or outputs, and gradients its
        consumers' rules made), so the placer can put gradients where their forward ran."""
        run, fwd, users = self._bw
        cands = None
        grads = []
        for v in ins:
            src = v.node
            if src is None:
                continue
            if src.id >= run.start:
                grads.append(src)
                continue
            touch = users.get(v.id, set()) | ({src.id} if src.id in fwd else set())
            if touch:
                cands = touch if cands is None else cands & touch
        if cands is None:       # reads gradients only (a sum, a reshape): their node's
            hints = {g.coloc for g in grads}
            if len(hints) == 1 and next(iter(hints)) in fwd:
                _colocate(node, fwd[hints.pop()])
            return
        if len(cands) > 1:
            # the incoming gradient came from a consumer's rule: its forward node read the
            # output of the one differentiated now (relu_grad reads relu's output, which the
            # next linear also reads)
            made = {u.node.id for g in grads if g.coloc in fwd
                    for u in fwd[g.coloc].inputs if u.node is not None}
            if cands & made:
                cands = cands & made
        if len(cands) == 1:
            _colocate(node, fwd[next(iter(cands))])
        else:
            pins = {fwd[c].pin for c in cands}
            if len(pins) == 1 and None not in pins:
                node.pin = pins.pop()

    def _note_grad_edges(self, op, inputs, ins, nid: int) -> None:
        """What eager autograd does with this op, for g.gradients (see :class:`GradInfo`):
        nothing under no_grad or for an op without vjp; otherwise a gradient reaches each
        input that requires grad, and none reaches a detach()ed alias (a tensor other than
        the one the input's Value was bound to), which the graph cannot tell by its Value."""
        info = self.info
        if not _state.grad_enabled or op.vjp is None:
            info.stops.add(nid)
            return
        for i, t in enumerate(inputs):
            if t._rg:
                v = ins[i]
                if not self.derived:
                    info.tracked.add(v.id)
                tn = t._node
                if tn is not None and v.node.op not in SOURCE_OPS:
                    m = self.tape_nodes.get(id(tn))
                    if m is None or m[0] is not tn or m[1] is not v.node:
                        info.opaque[(nid, i)] = _op_name(tn)
                elif (tn is None and v.node.op not in SOURCE_OPS
                      and self._carrier.get(id(t._data)) is not t):
                    # a leaf alias of a computed value (h.detach().requires_grad_(), truncated
                    # BPTT): the tape starts there, so the graph's gradient stops there too
                    info.cuts.add((nid, i))
            elif self._carrier.get(id(t._data)) is not t:
                info.cuts.add((nid, i))
                self._alias_at.setdefault(nid, []).append(t)
                self._aliases.setdefault(id(t), [t]).append((nid, i))
            elif not self.derived:
                info.norg.add((nid, i))

    def _resolve_alias(self, t, v: Value) -> None:
        """``t``, the tensor its Value was bound to, takes Value ``v`` in place: the aliases
        of ``t`` that ``v``'s op read are the in-place op's own (``_alias``), not detach()es,
        so their uses read ``t`` itself (no gradient if ``t`` did not require grad)."""
        for a in self._alias_at.pop(v.node.id, ()):
            e = self._aliases.get(id(a))
            if a._data is t._data and e is not None and e[0] is a:
                del self._aliases[id(a)]
                for key in e[1:]:
                    self.info.cuts.discard(key)
                    if not self.derived:
                        self.info.norg.add(key)

    def _note_positions(self, t, v: Value, index: tuple) -> None:
        """A Python loop over ``range(x.shape[1])`` reads ``x[:, t]`` at constant positions
        and unrolls to the traced count; range() takes the TracedSize as a plain int without
        a hook. The trace sees it here instead: once constant indices (ints, or slices with
        both ends from the start) have read every position 0..n-1 of a None dim (n >= 2),
        that size escapes, and the function is traced per size. Negative indices and slices
        open at the end stay relative to the size and are not counted."""
        sym = self.sym.get(v.id)
        if sym is None:
            return
        from ..ops.indexing import index_axes
        for k, axis, m in index_axes(index, len(sym)):
            if m == 1 and axis < len(sym) and sym[axis] is None:
                self._add_positions(t, v, axis,
                                    _constant_positions(k, int(t._data.shape[axis])))

    def _add_positions(self, t, v: Value, axis: int, got) -> None:
        if not got:
            return
        key = self.dim_origin.get((v.id, axis), (v.id, axis))
        seen = self.positions.setdefault(key, set())
        if seen is _DONE:
            return
        n = int(t._data.shape[axis])
        now = {p for p in got if p < n}
        seen.update(now)
        # every position, or all but one from 3 on (a loop from 1, outputs[t] = ... for t in
        # range(1, T)): erring toward tracing per size is never wrong, only slower
        if n >= 2 and len(seen) >= (n if n < 3 else n - 1):
            self.positions[key] = _DONE
            size = self.traced_shape(t)[axis]
            if isinstance(size, TracedSize):
                # one slice can span the dim at a small size (x[0:3] at n=2): a loop of
                # chunks (x[t:t + 4] for t in range(0, n, 4)) looks the same, so it counts
                what = ("one slice with constant bounds spans" if len(now) == len(seen)
                        else "constant indices read")
                size.escape(POSITIONS_HOW,
                            f"{what} each of the {n} positions of the None dim {axis} (as a "
                            f"Python loop over range(x.shape[{axis}]) does, unrolled to the "
                            "traced count)")

    def on_read(self, t, what: str) -> None:
        v = self.lookup(t)
        if what == "indexing with a tensor" and self._pointer_state(t, v):
            # a position kept in state (a ring buffer's pointer): the graph may advance it
            # after this read, so it is read when the graph runs, not frozen at its value now
            raise CaptureError(f"{what}: a position read from state")
        if v is None:
            kind = self._classify(t)[0]
            if kind == "constant" or self._guard_state(t, None):
                return
        elif v.id not in self.dynamic or self._guard_state(t, v):
            return
        raise CaptureError(f"{what} on a tensor of shape {tuple(t.shape)} while tracing a "
                           f"graph (tl.function / tl.capture). {_READ_HELP}")

    def _pointer_state(self, t, v) -> bool:
        """Whether ``t`` is one integer (a 0-d or one-element tensor) read from state the
        function reaches: an index the graph should read as a variable."""
        if t._data.dtype.kind not in "iu" or t._data.size != 1 or t._rg:
            return False
        if v is None:
            return id(t) in self.reachable and self._classify(t)[0] == "variable"
        return v.id in self.dynamic and bool(self._state_sources(v))

    def _guard_state(self, t, v) -> bool:
        """A value read from state the function reaches but does not write or differentiate
        (a module-level index tensor, a mask buffer: ``x[idx]``, ``out[train_mask]``): the
        graph holds the value read, guarded by the tensor's version, so an in-place change
        retraces (as for a constant). Not for inputs, grads, or what the graph writes."""
        if t._rg or id(t) in self.grad_owner:
            return False
        if v is not None:
            owners = self._state_sources(v)
            if owners is None:
                return False
            for o in owners:
                self._constants.append((o, o._version, o._version[0]))
            return True
        if id(t) not in self.reachable:
            return False
        self._constants.append((t, t._version, t._version[0]))
        return True

    def _state_sources(self, v, limit: int = 256):
        """The state tensors ``v`` is computed from (``self.idx + 1``), when it depends on
        nothing else that changes between runs: no input, draw, gradient or written state,
        and nothing that needs a gradient; else None."""
        owners, seen, stack = [], set(), [v.node]
        while stack:
            n = stack.pop()
            if n.id in seen:
                continue
            seen.add(n.id)
            if len(seen) > limit or n.op in ("placeholder", "random", "assign"):
                return None
            if n.op == "variable":
                owner, slot = self.g.bindings.get(n, (None, None))
                key = (id(owner), slot)
                if (owner is None or slot != "data" or owner._rg or key in self.writes
                        or id(owner) in self.grad_owner):
                    return None
                owners.append(owner)
                continue
            stack.extend(i.node for i in n.inputs)
        return owners

    def restamp(self, t) -> None:
        """``t``'s storage changed through a view whose write is about to be recorded as a
        write into ``t``'s graph value: its binding is current again until then."""
        e = self._by_array.get(id(t._data))
        if e is not None and e[0] is t._data:
            self._by_array[id(t._data)] = (e[0], e[1], e[2], e[2][0])

    def rebind(self, t, res, bump: int = 1) -> None:
        """In-place op: tensor ``t`` now holds the value of ``res`` (written next; ``bump``
        0: already written)."""
        v = self.value_of(res)
        old = self.lookup(t)
        if old is None:
            self._capture(t)
        key = self.locations.get(id(t._data))
        if key is not None and key[0] != "input" and self._is_fresh(self.loc_objs[key][0]):
            key = None          # the function's own tensor: the write is this run's value
        if key is not None:
            if key[0] == "input" or self.var_nodes[key].op == "constant":
                node = self.var_nodes[key]
                if node.op == "constant":    # written by the graph: it is state
                    node.op = "variable"
                    node.attrs = {"slot": key[1]}
                    owner = self.loc_objs[key][0]
                    node.name = node.outputs[0].name = self._name_for(owner, key[1])
                    self._dropped[id(owner)] = len(self._constants)
            self.writes[key] = (v, "write")
            self.transient.discard(key)
        carrier = self._carrier.get(id(t._data)) is t
        self.bind(t, v, bump=bump)
        if self._alias_at and carrier:
            self._resolve_alias(t, v)

    def mark_transient(self, t) -> None:
        """The write just made into ``t`` only caches values the graph recomputes from its
        inputs (PyTorch's ONNX export of ``Embedding(max_norm)`` leaves it out too): its
        assign node gets ``transient``, and an ONNX export of the outputs may drop it. A
        later write into ``t`` clears the mark."""
        key = self.locations.get(id(t._data))
        if key is not None and key in self.writes:
            self.transient.add(key)

    def on_set_data(self, t, value, old) -> None:
        """``t.data = value`` replaced ``t``'s storage (``old``, now ``value``'s): a write of
        ``value`` into ``t``'s location, as an in-place copy (the replay writes into the
        storage ``t`` holds then)."""
        v = self.value_of(value)
        key = self.locations.get(id(old))
        if key is not None and key[0] == "input":
            mine = self.placeholders[key[1]] is t
        else:
            mine = key is not None and self.loc_objs.get(key, (None,))[0] is t
        if not mine:
            # an alias's own location (spectral_norm's weight, a detach() of its weight_orig):
            # rebinding it leaves the storage's owner alone
            key = (id(t), "data")
            self.loc_objs.setdefault(key, (t, "data"))
        if key[0] == "input" or not self._is_fresh_array(old):
            if tuple(value._data.shape) != tuple(old.shape) or value._data.dtype != old.dtype:
                raise CaptureError(
                    f"Tensor.data = value: the value has shape {tuple(value._data.shape)} and "
                    f"dtype {value._data.dtype}, the tensor {tuple(old.shape)} and {old.dtype}; "
                    "a graph replays writes into the tensor's storage, which cannot change "
                    "its shape or dtype. Do that outside the captured function.")
            self.writes[key] = (v, "write")
            self.transient.discard(key)
            # the storage is the state's now: later writes into it are writes to ``t``
            from ..backends import root_buffer
            self.fresh.discard(id(root_buffer(t._data)))
        self.locations[id(t._data)] = key
        self._keep.append(t)
        if self._owners is not None and self._owners.get(id(old), (None,))[0] is t:
            self._owners[id(t._data)] = (t, "data")
        self.bind(t, v)

    def _is_fresh_array(self, arr) -> bool:
        from ..backends import root_buffer
        return bool(self.fresh) and id(root_buffer(arr)) in self.fresh

    def note_recomputed(self, module, name: str) -> None:
        """A forward pre-hook (hook-style weight/spectral norm) set ``module.<name>`` anew:
        after the trace, a graph that writes state also writes the tensor it left there, so
        the attribute holds what the replayed forward used (``finish``)."""
        self.recomputed[(id(module), name)] = (module, name)

    def on_random(self, t, dist: str, params: dict, generator, sizes=(), srcs=()) -> None:
        """A random draw made during capture: record a node that draws anew on each run.
        ``sizes`` (:mod:`tensorlib.graph.sizes` expressions over ``srcs``' dims, its
        inputs) are the positions of the shape that follow None dims."""
        attrs = {"dist": dist, "shape": tuple(t._data.shape), "dtype": t._data.dtype, **params}
        ins = [self.value_of(s) for s in srcs]
        if sizes:
            attrs["sizes"] = tuple(sizes)
        node = self.g.add_node("random", ins, attrs, str(t._device),
                               [(t._data.shape, t._data.dtype)])
        if sizes:
            shape = apply_sizes(attrs["shape"], sizes, [self.sym.get(v.id, v.shape) for v in ins])
            if None in shape:
                self.sym[node.outputs[0].id] = shape
        self.note_source(node)
        scope = current_scope()
        node.pin = str(scope) if scope is not None else None
        self.g.bindings[node] = generator
        self._keep.append(t)
        self.dynamic.add(node.outputs[0].id)
        self.bind(t, node.outputs[0])

    def on_backward(self, roots, grads, *, create_graph: bool, inputs,
                    accumulates: bool = True) -> BackwardRun:
        """``backward()`` starts: note what a graph pass needs to derive the same gradients
        symbolically (see :class:`BackwardRun`), or why it cannot. ``accumulates``: into
        leaves' ``.grad`` (``backward()``, a training step), not ``tl.grad``."""
        run = BackwardRun(self.g._next_node)
        run.accumulates = accumulates
        self.backward_runs.append(run)
        if create_graph or inputs is not None or len(roots) != 1:
            run.why = "create_graph, tl.grad or several roots"
            return run
        root, seed = roots[0], grads[0]
        run.root = self.lookup(root)
        run.seed = seed
        seen, stack = set(), [root._node] if root._node is not None else []
        while stack:
            tn = stack.pop()
            if id(tn) in seen:
                continue
            seen.add(id(tn))
            mapped = self.tape_nodes.get(id(tn))
            if mapped is None or mapped[0] is not tn:
                run.why = f"the tape holds a node the graph did not record ({tn!r})"
                return run
            if tn.hooks is not None or tn.retained is not None:
                run.why = "a gradient hook or retain_grad() on an intermediate tensor"
                return run
            run.tape.add(mapped[1].id)
            for t in tn.inputs:
                if t._node is not None:
                    stack.append(t._node)
                    src = self.tape_nodes.get(id(t._node))
                    if src is not None and src[0] is t._node:
                        run.edges.add((mapped[1].id, src[1].id))
                elif t._rg:
                    if t._hooks:
                        run.why = "a gradient hook on a leaf tensor"
                        return run
                    run.leaves[id(t)] = (t, self.lookup(t))
        run.ok = run.root is not None and None not in (v for _, v in run.leaves.values())
        fwd = {n.id: n for n in self.g.nodes if n.id in run.tape}
        users: dict[int, set] = {}
        for n in fwd.values():
            for v in n.inputs:
                users.setdefault(v.id, set()).add(n.id)
        self._bw = (run, fwd, users)
        return run

    def on_backward_done(self, run: BackwardRun, leaf_grads) -> None:
        """``backward()`` walked the tape: the gradient Value each leaf received."""
        run.end = self.g._next_node
        self._bw = None
        if run.accumulates:
            self.grad_leaves.update(id(t) for t, _ in leaf_grads.values())
            for t, _ in leaf_grads.values():
                e = self._by_array.get(id(t._data))
                if (e is None or e[0] is not t._data) and not self._is_fresh(t):
                    self.outside_leaves.append(t)
        seed = self.lookup(run.seed) if run.seed is not None else None
        run.seed = seed
        if not run.ok:
            return
        value = seed.node.attrs.get("value") if seed is not None else None
        if (value is None or seed.node.op != "constant" or seed.shape != run.root.shape
                or not bool((value == 1).all())):
            run.ok, run.why = False, "a gradient other than ones was passed to backward()"
            return
        for t, gt in leaf_grads.values():
            if id(t) not in run.leaves:
                run.ok, run.why = False, "a leaf gradient the tape walk did not predict"
                return
            gv = self.lookup(gt)
            if gv is None:
                run.ok, run.why = False, "a leaf gradient the graph did not record"
                return
            run.grads.append((run.leaves[id(t)][1], gv))

    # --- end of trace -------------------------------------------------------------
    def finish(self) -> None:
        """Turn observed state changes into ``assign`` nodes."""
        self.g._backward_runs = self.backward_runs
        self._bw = None
        for owner, start in self.arg_start.values():
            end = owner.grad
            if _kept_grad(owner, start, end):
                end = start
            if end is not start:        # (in-place writes into it: assigns to its input)
                self.arg_grad_writes.append(
                    (self._arg_index[id(owner)], None if end is None else self.value_of(end)))
        for owner, start in list(self.start_grad.values()):
            if owner.grad is start or _kept_grad(owner, start, owner.grad):
                continue
            key = (id(owner), "grad")
            v = None if owner.grad is None else self.value_of(owner.grad)
            self.writes[key] = (v, "set")
            self.loc_objs.setdefault(key, (owner, "grad"))
        if self.writes and self.recomputed:
            self._write_recomputed()
        for key, (v, how) in self.writes.items():
            var = self.var_nodes.get(key)
            if var is None:                       # a location only written (p.grad = ...)
                owner, slot = self.loc_objs[key]
                var = self.g.add_node("variable", [], {"slot": slot}, str(owner._device),
                                      [(owner._data.shape, owner._data.dtype)],
                                      name=self._name_for(owner, slot))
                var.outputs[0].name = var.name
                self.g.bindings[var] = (owner, slot)
                self.var_nodes[key] = var
            if v is not None and v is var.outputs[0]:
                continue                          # written back unchanged
            slot = var.attrs.get("slot", "data")
            mode = ("input" if key[0] == "input" else "grad" if how == "set"
                    else "grad_data" if slot == "grad" else "data")
            name = var.name or var.outputs[0].label()
            node = self.g.add_node("assign", [] if v is None else [v],
                                   {"var": name, "slot": mode}, var.device, [], name=name)
            if key in self.transient:
                node.attrs["transient"] = True
            if key[0] == "input":
                node.attrs["input"] = key[1]
            else:
                self.g.bindings[node] = self.g.bindings[var]
        from .passes._rewrite import refresh_control
        refresh_control(self.g)

    def _write_recomputed(self) -> None:
        """A graph that writes state (a training step) also writes the weights hook-style
        norms left on their modules (``note_recomputed``), so that after a replay
        ``module.weight`` is the weight that step used, as after an eager one; an inference
        graph writes nothing (it stays exportable)."""
        from .._tensor import Tensor
        for module, name in self.recomputed.values():
            w = module.__dict__.get(name)
            if not isinstance(w, Tensor) or self._is_fresh(w):
                continue
            v = self.lookup(w)
            if v is None or v.node.op in ("variable", "placeholder"):
                continue
            key = (id(w), "data")
            self.loc_objs.setdefault(key, (w, "data"))
            self.writes[key] = (v, "write")
            self._keep.append(w)
            self.rebinds.append((module, name, w))

    def release(self) -> None:
        """Drop the references that kept ids stable (after the graph is built)."""
        self._keep = []
        self._carrier = {}
        self._alias_at = {}
        self._aliases = {}


def _kept_grad(owner, start, end) -> bool:
    """Whether ``owner``'s ``.grad`` went from ``start`` to ``end``, a detached alias of it
    (``p.grad = p.grad.detach(); p.grad.zero_()``: ``zero_grad(set_to_none=False)`` under a
    trace): eager zeroes such a gradient in place and keeps the tensor, as PyTorch, so the
    alias is put back (its writes are writes into ``start``) and replays keep it too."""
    if start is None or end is None or end._data is not start._data or end._rg \
            or end._node is not None or start._node is not None:
        return False
    if start._rg:
        start.detach_()
    owner.grad = start
    return True


def _colocate(node: Node, fwd: Node) -> None:
    """``node`` computes a gradient of ``fwd``'s: it goes where ``fwd`` goes."""
    node.coloc = fwd.id
    if fwd.pin:
        node.pin = fwd.pin


class BackwardRun:
    """One ``backward()`` call seen during capture: the nodes it recorded (ids in
    ``[start, end)``), the loss Value, and for each leaf its Value and the Value of the
    gradient the tape gave it; ``tape``: ids of the forward nodes the tape walked, ``edges``
    the (consumer, producer) pairs it walked between them (a ``detach()`` cuts one). ``ok``
    is False (with ``why``) when a symbolic re-derivation could differ from the tape."""

    def __init__(self, start: int):
        self.start, self.end = start, start
        self.root: Value | None = None
        self.seed = None
        self.tape: set[int] = set()
        self.edges: set[tuple[int, int]] = set()   # (consumer, producer) graph node ids
        self.leaves: dict[int, tuple] = {}
        self.grads: list[tuple[Value, Value]] = []
        self.ok = False
        self.why = ""
        self.accumulates = True     # into leaves' .grad; False for tl.grad


class GradInfo:
    """How eager autograd treated each op recorded into a graph (``grad_info(g)``), so that
    ``g.gradients`` stops where the tape stopped: the graph keeps one Value for a tensor and
    its ``detach()``ed aliases, and records ops run under ``no_grad`` like any other. Keys
    are node ids and ``(node id, input position)`` edges."""

    __slots__ = ("stops", "cuts", "norg", "tracked", "opaque")

    def __init__(self):
        self.stops: set[int] = set()          # no gradient leaves: no_grad, or no vjp
        self.cuts: set[tuple] = set()         # read through an alias (detach(), .data)
        # read through a tensor that did not require grad: no gradient where the Value is
        # ``tracked``; else the input was not differentiated while tracing (a placeholder)
        self.norg: set[tuple] = set()
        self.tracked: set[int] = set()        # Values a tensor requiring grad stood for
        self.opaque: dict[tuple, str] = {}    # through a tape node the graph lacks (a
        #                                       custom autograd.Function): op name

    def cut_edges(self, g: Graph) -> set:
        """The edges of ``g`` that pass no gradient."""
        if not self.norg:
            return set(self.cuts)
        by_id = {n.id: n for n in g.nodes}
        return self.cuts | {(nid, i) for nid, i in self.norg
                            if nid in by_id and by_id[nid].inputs[i].id in self.tracked}


def grad_info(g: Graph) -> GradInfo:
    info = getattr(g, "_grad_info", None)
    if info is None:
        info = g._grad_info = GradInfo()
    return info


def _op_name(tape_node) -> str:
    """The op (a custom Function's class name) of a tape node, for messages."""
    return getattr(getattr(tape_node, "op", None), "name", None) or repr(tape_node)


def _clean_path(path: str) -> str:
    """'arg0:Sequential._modules['0']._parameters['weight']' -> 'sequential.0.weight' (also
    'self:Net...', the module a tl.function wraps)."""
    import re
    m = re.match(r"(?:(?:arg\d+|self):(\w+)|global '(\w+)'|closure variable '(\w+)')(.*)",
                 path)
    if m is None:
        return ""
    head = (m.group(1) or "").lower() or m.group(2) or m.group(3)
    parts = [head] + [p for p in re.split(r"[.\[\]']+", m.group(4)) if p]
    return ".".join(p for p in parts if not p.startswith("_"))


class TracedSize(SizeArithmetic, int):
    """A size read from a traced tensor's None dim (``x.shape[0]`` under input_signature
    with None): an int that remembers where it came from (``axis``, ``src``, and ``expr``,
    see :mod:`tensorlib.graph.sizes`). ``+ - * // %`` with ints or other TracedSizes give
    TracedSizes, so ``x.reshape(x.shape[0] * 3, -1)``, ``expand(n, 4)`` and
    ``tl.zeros(n // 2, 4)`` compute the size when the graph runs. Turning one into a plain
    Python number (``int(n)``, ``n / 2``, ``float(n)``, ``n ** 2``, ``range(n)``...) is
    noted: the graph cannot recompute it, so ``tl.function`` traces once per input shape."""

    def __new__(cls, value: int, axis, src=None, expr=None, tracer=None):
        self = super().__new__(cls, value)
        self.axis = axis    # the axis of ``src`` it was read from (None: an expression)
        self.src = src      # the tensor it was read from (creation functions follow it)
        self.expr = ("dim", src, axis) if expr is None else expr
        self.tracer = tracer
        self.lib = False    # read by tensorlib's own code (see _read_by_library)
        return self

    def __reduce__(self):
        return (int, (int.__int__(self),))

    def describe(self) -> str:
        from .sizes import to_str
        return to_str(_plain_expr(self.expr))

    def escape(self, how: str, reason: str | None = None) -> None:
        """This size becomes a plain Python number: the trace cannot follow it (``reason``:
        why, in words, for the warning)."""
        tracer = self.tracer
        if tracer is not None and state_tracer() is tracer:
            tracer.note_size_escape(self, how, reason)

    def _convert(self, how: str) -> None:
        """This size is converted by a dunder (``int(n)``, ``n / 2``...). When the code doing
        it is tensorlib's own (a layer computing n / (n - 1)), the user cannot fix their
        line: the escape names the library function and says so."""
        tracer = self.tracer
        if tracer is None or state_tracer() is not tracer:
            return
        f = sys._getframe(1)
        while f is not None and f.f_code.co_filename == _THIS_FILE:
            f = f.f_back
        while f is not None and f.f_code.co_filename.startswith(_NUMPY_ROOT + os.sep):
            f = f.f_back
        # a size the user read and handed to tensorlib (x.sum() / x.shape[0]) is the user's
        # to fix; one tensorlib read itself and converted is not
        lib = f if self.lib and f is not None and not _is_user_code(f.f_code) else None
        tracer.note_size_escape(self, how, library=lib)

    def _bin(self, other, op, swap=False):
        if isinstance(other, bool) or not isinstance(other, (int, np.integer)):
            if isinstance(other, (float, np.floating)):
                # n - 1.0, n * 0.5: a float the graph cannot recompute (float's own
                # __radd__ would take the int silently)
                self._convert("combined with a float")
                from .sizes import OPS
                a, b = (other, int.__int__(self)) if swap else (int.__int__(self), other)
                return OPS[op](a, b)
            return NotImplemented
        a = int.__int__(self)
        b = int(other) if not isinstance(other, TracedSize) else int.__int__(other)
        ea = self.expr
        eb = other.expr if isinstance(other, TracedSize) else int(other)
        if swap:
            a, b, ea, eb = b, a, eb, ea
        from .sizes import OPS
        if op in ("floordiv", "mod") and b == 0:
            return OPS[op](a, b)        # ZeroDivisionError, as for ints
        out = TracedSize(OPS[op](a, b), None, None, (op, ea, eb), self.tracer)
        out.lib = self.lib or (isinstance(other, TracedSize) and other.lib)
        return out

    def __abs__(self):
        return self if int.__int__(self) >= 0 else -self

    __ceil__ = __floor__ = __trunc__ = SizeArithmetic.__pos__

    def __round__(self, ndigits=None):
        return self if ndigits is None else int.__round__(self, ndigits)

    def __int__(self):
        self._convert("int()")
        return int.__int__(self)

    def __index__(self):
        self._convert("used as an index")
        return int.__int__(self)

    def __float__(self):
        self._convert("float()")
        return int.__float__(self)

    def __truediv__(self, o):
        self._convert("divided with /")
        return int.__truediv__(self, o)

    def __rtruediv__(self, o):
        self._convert("divided with /")
        return int.__rtruediv__(self, o)

    def __pow__(self, o, mod=None):
        self._convert("raised to a power")
        return int.__pow__(self, o, mod)

    def __rpow__(self, o, mod=None):
        self._convert("used as an exponent")
        return int.__rpow__(self, o, mod)

    def __divmod__(self, o):
        if isinstance(o, bool) or not isinstance(o, (int, np.integer)):
            self._convert("divmod()")
            return int.__divmod__(self, o)
        return self // o, self % o      # both follow the dim (q, r = divmod(n, 2))

    def __and__(self, o):
        self._convert("a bitwise op")
        return int.__and__(self, o)

    __rand__ = __and__

    def __or__(self, o):
        self._convert("a bitwise op")
        return int.__or__(self, o)

    __ror__ = __or__

    def __lshift__(self, o):
        self._convert("a shift")
        return int.__lshift__(self, o)

    def __rshift__(self, o):
        self._convert("a shift")
        return int.__rshift__(self, o)

    # comparisons in the user's code decide Python control flow (if n > 3, assert t <= 8,
    # min(n, 4)) on the traced value: each is recorded as a size predicate (the graph holds
    # the branch its outcome took; a call where it comes out otherwise traces again) and the
    # size stays dynamic; one the predicate cannot express escapes. tensorlib's own shape
    # checks compare too, and are neither
    def _compared(self, how: str, result, cmp: str, other, depth: int = 2):
        if result is NotImplemented or not _outside_tensorlib(sys._getframe(depth)):
            return result
        tracer = self.tracer
        if tracer is None or state_tracer() is not tracer or \
                not tracer.note_predicate(self, cmp, other, result):
            self._convert(how)
        return result

    def _cmp(self, cmp: str, o):
        if isinstance(o, (float, np.floating)):
            # int's own comparison gives NotImplemented for a float, and float's reflected
            # one would then take the int silently (n >= 2.5)
            from .sizes import CMPS
            result = CMPS[cmp](int.__int__(self), o)
        else:
            result = getattr(int, f"__{cmp}__")(self, o)
        return self._compared("compared", result, cmp, o, 3)

    def __lt__(self, o): return self._cmp("lt", o)
    def __le__(self, o): return self._cmp("le", o)
    def __gt__(self, o): return self._cmp("gt", o)
    def __ge__(self, o): return self._cmp("ge", o)
    def __eq__(self, o): return self._cmp("eq", o)
    def __ne__(self, o): return self._cmp("ne", o)

    def __bool__(self):
        return self._compared("used as a truth value", int.__bool__(self), "ne", 0)

    __hash__ = int.__hash__


_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


_NUMPY_ROOT = os.path.dirname(os.path.abspath(np.__file__))


def _outside_tensorlib(frame) -> bool:
    return frame is not None and not os.path.abspath(
        frame.f_code.co_filename).startswith(_ROOT + os.sep)


_THIS_FILE = __file__
_MODULE_CALL = None                         # Module.__call__'s code object
_LIBRARY_FILES: dict[str, bool] = {}        # co_filename -> inside tensorlib or NumPy
_SOURCES: dict[tuple, tuple] = {}           # (code, line) -> (source line, "file:line")


def _is_user_code(code) -> bool:
    lib = _LIBRARY_FILES.get(code.co_filename)
    if lib is None:
        path = os.path.abspath(code.co_filename)
        lib = _LIBRARY_FILES[code.co_filename] = path.startswith(
            (_ROOT + os.sep, _NUMPY_ROOT + os.sep))
    return not lib


def _source_of(code, line: int) -> tuple:
    import linecache
    text = linecache.getline(code.co_filename, line).strip() or None
    return text, f"{os.path.basename(code.co_filename)}:{line}"


_ACCESSORS = frozenset(os.path.join(_ROOT, n) for n in ("_tensor.py", "_tensor_methods.py"))


def _read_by_library() -> bool:
    """Whether the code reading a tensor's shape (the frame above the traced_shape call
    and the Tensor accessors: shape, size()) is tensorlib's own."""
    f = sys._getframe(2)
    while f is not None and f.f_code.co_filename in _ACCESSORS:
        f = f.f_back
    return f is not None and not _is_user_code(f.f_code)


def _module_call_code():
    from ..nn.module import Module
    return Module.__call__.__code__


def _user_frame():
    """The innermost calling frame outside tensorlib and NumPy, or None."""
    f = sys._getframe(2)
    while f is not None and not _is_user_code(f.f_code):
        f = f.f_back
    return f


def _user_source() -> tuple:
    """(the source line, ``file:line``) of the innermost frame outside tensorlib and NumPy,
    or (None, None)."""
    f = _user_frame()
    return (None, None) if f is None else _source_of(f.f_code, f.f_lineno)


def user_line() -> str | None:
    """``file:line`` of the innermost calling frame outside tensorlib and NumPy (the user's
    line for a size that escaped in ``np.prod(x.shape)``), or None."""
    f = _user_frame()
    return None if f is None else f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}"


def note_split(x, axis: int, what: str, reason: str | None = None) -> None:
    """``x`` is cut into a Python-counted number of pieces along ``axis`` (unbind, equal
    splits, chunk, iteration, ``len``): the count is the traced size, fixed in the graph.
    When that axis follows a None dim of input_signature, its size escapes."""
    tracer = state_tracer()
    if tracer is None:
        return
    shape = tracer.traced_shape(x)
    if shape is not None and isinstance(shape[axis], TracedSize):
        shape[axis].escape(what, reason)


_POSITIONAL = frozenset(("slice", "getitem", "setitem"))
# ops whose output dims are their input's, permuted (``axes``) or in order (a setitem's
# result is the tensor written into: outputs[t] = h in a loop writes each position into a
# new Value of one buffer)
_SAME_DIMS = frozenset(("transpose", "copy", "cast", "to_device", "setitem", "size_guard"))
_DONE: Any = object()           # a (Value, axis) whose positions already escaped


def _constant_positions(k, n: int) -> range | set | None:
    """The positions of an axis of traced size ``n`` an index item reads; None for a slice
    relative to the size (open at the end, or with negative bounds). A negative int counts
    as its position at the traced size: a loop over ``x[:, -t - 1]`` reads them all."""
    if isinstance(k, int):
        return range(k % n, k % n + 1) if -n <= k < n else None
    if isinstance(k, slice):
        start, stop, step = k.start or 0, k.stop, k.step or 1
        if stop is None or start < 0 or stop < 0 or step < 0:
            return None
        return range(start, stop, step)
    if isinstance(k, np.ndarray) and k.dtype.kind in "iu" and k.size and k.min() >= 0:
        return set(k.ravel().tolist())
    return None


def _dim_leaves(e) -> list:
    """The (tensor, axis) pairs a size expression reads."""
    if isinstance(e, tuple) and e and e[0] == "dim":
        return [(e[1], e[2])]
    if isinstance(e, tuple):
        return _dim_leaves(e[1]) + _dim_leaves(e[2])
    return []


def state_tracer():
    from ..autograd.mode import state
    return state.tracer


def _plain_expr(e):
    """An expression with tensors in its leaves, as text-friendly data (input 0)."""
    if isinstance(e, tuple) and e and e[0] == "dim":
        return ("dim", 0, e[2])
    if isinstance(e, tuple):
        return (e[0], _plain_expr(e[1]), _plain_expr(e[2]))
    return e


def is_dynamic(tracer: Tracer, v: Value) -> bool:
    return v.id in tracer.dynamic


def zeros_for(v: Value):
    return np.zeros([1 if d is None else d for d in v.shape], v.dtype)
