"""The op registry: one ``OpDef`` per op, the single source of truth.

Eager execution, the tape, graph capture, export and placement all read the
entries here. An entry holds the forward kernel per backend, the backward
rule (``vjp``, written with tensorlib ops so it is itself differentiable),
shape/dtype inference, a cost model and the ONNX lowering.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

REGISTRY: dict[str, OpDef] = {}


class OpDef:
    """One op.

    Parameters
    ----------
    name: the op's registry name.
    fwd: ``fwd(xp, *arrays, **attrs)`` written against an array module, so the
        same code serves NumPy (``cpu``) and CuPy (``cuda``).
    ufunc: instead of ``fwd``, the name of a ufunc present in NumPy and CuPy.
    kernels: backend-specific kernels ``{"cpu": f, "cuda": g}`` taking
        ``(*arrays, **attrs)``; they override ``fwd`` for that backend.
    vjp: ``vjp(node, *grads) -> tuple`` of one gradient (Tensor or None) per
        input; None makes the op non-differentiable.
    jvp: optional explicit forward-mode rule ``jvp(node, *tangents)`` -> the output's
        tangent (a tuple for multi-output ops), tangents None where an input has none;
        without it forward AD derives the tangent from ``vjp``
        (tensorlib.autograd.forward_ad). Set by tensorlib.autograd.forward_rules.
    infer: ``infer(*specs, **attrs)`` with specs ``(shape, dtype)``; returns a
        spec or a tuple of specs. Raises ValueError on invalid inputs.
    cost: ``cost(in_specs, out_specs, **attrs) -> (flops, bytes)``.
    onnx: lowering rule used by the ONNX exporter.
    saves: whether ``vjp`` reads the input values (so in-place changes to
        them must be detected): True, False (linear ops such as add), or
        "others" (input i is read only when another input needs a gradient,
        as in mul), a tuple of the input positions it reads, or ``{i: readers}``
        (input i is read only when one of the inputs ``readers`` needs a gradient:
        linear reads x for the weight's gradient, the weight for x's, never the bias).
    saves_output: whether ``vjp`` reads the outputs (``node.out``): True, or a tuple of
        the output positions it reads (an in-place change to another output is fine).
    view: the output may share memory with input 0 (shares its version).
    check: ``check(*arrays, **attrs)`` validation run before the kernel (eager and graph
        replay alike), for kernels that must never see bad input (Cython) and for size rules
        (kernel larger than the input, reflect pad wider than the dim). A check that reads
        only the arrays' shapes is marked with :func:`shape_check`: replay then skips it for
        nodes whose input shapes are all static (capture already ran it on those shapes).
    promote: for a binary op, an integer or bool input meeting a float input is cast
        to the float's dtype first (PyTorch's category rule; ``apply`` does it).
    complex: what the op does with complex inputs (``apply`` refuses them when None):
        ``"holomorphic"``: its kernel computes them and ``vjp``, written for real inputs, is
        a holomorphic expression, so the complex gradient is ``conj(vjp(conj(g)))``
        (tensorlib.autograd.complex_grad); ``"rule"``: ``vjp`` handles complex values
        itself; ``"forward"``: the kernel computes them, but there is no complex gradient.
    grad_sums: what ``vjp`` does, when the backward pass runs unrecorded, with the walk's
        running gradient sums (``tensorlib._core.grad_sums``): ``"sums"``: it may add a
        gradient into an input's sum in place and return that sum; ``"fresh"``: that, and
        every other gradient it returns is a new array made for that input alone, which the
        walk may then add later gradients into. None: neither (the default).
    none_grads: ``vjp`` of a multi-output op takes None for an output no gradient reached
        (meaning zero), so the backward pass need not make a zero array for it; without it
        (the default) such outputs get zeros.
    """

    __slots__ = ("name", "fwd", "ufunc", "kernels", "vjp", "infer", "cost", "onnx",
                 "saves", "saves_output", "view", "check", "doc", "cpu", "_cache",
                 "out_device", "promote", "jvp", "complex", "outer", "grad_sums",
                 "none_grads")

    def __init__(self, name: str, fwd: Callable | None = None, *, ufunc: str | None = None,
                 kernels: dict[str, Callable] | None = None, vjp: Callable | None = None,
                 infer: Callable | None = None, cost: Callable | None = None,
                 onnx: Any = None, saves: bool | str | tuple | dict = True,
                 saves_output: bool | tuple = False,
                 view: bool = False, check: Callable | None = None, doc: str = "",
                 promote: bool = False, complex: str | None = None,
                 grad_sums: str | None = None, none_grads: bool = False):
        if fwd is None and ufunc is None and not kernels:
            raise ValueError(f"op {name}: needs fwd, ufunc or kernels")
        self.name = name
        self.fwd = fwd
        self.ufunc = ufunc
        self.kernels = dict(kernels or {})
        self.vjp = vjp
        self.infer = infer
        self.cost = cost
        self.onnx = onnx
        self.saves = saves
        self.saves_output = saves_output
        self.view = view
        self.check = check
        self.doc = doc
        self.promote = promote
        if complex not in (None, "holomorphic", "rule", "forward"):
            raise ValueError(f"op {name}: complex must be None, 'holomorphic', 'rule' or "
                             f"'forward', got {complex!r}")
        self.complex = complex
        if grad_sums not in (None, "sums", "fresh"):
            raise ValueError(f"op {name}: grad_sums must be None, 'sums' or 'fresh', got "
                             f"{grad_sums!r}")
        self.grad_sums = grad_sums
        self.none_grads = bool(none_grads)
        self.jvp: Callable | None = None
        self.out_device: Callable | None = None  # for transfer ops: attrs -> device name
        self._cache: dict[str, Callable] = {}
        self.cpu = self.kernel_for("cpu")
        # a CPU kernel for two inputs of different shapes (outer broadcasts), which apply
        # takes only then: equal shapes go straight to ``cpu`` (a plain ufunc), at no cost
        self.outer: Callable | None = None

    def kernel_for(self, backend: str) -> Callable:
        """The forward kernel ``f(*arrays, **attrs)`` for a backend type."""
        k = self._cache.get(backend)
        if k is not None:
            return k
        if backend in self.kernels:
            k = self.kernels[backend]
        elif backend == "vmap":     # inside tl.vmap: the op's batching rule (tensorlib.vmap)
            from ..vmap.rules import rule_for
            k = rule_for(self)
        elif self.ufunc is not None:
            if backend == "cpu":
                k = getattr(np, self.ufunc)
            else:
                k = _lazy_cupy_ufunc(self.ufunc)
        elif self.fwd is not None:
            if backend == "cpu":
                k = functools.partial(self.fwd, np)
            else:
                k = _lazy_cupy_fwd(self.fwd)
        else:
            raise NotImplementedError(f"op {self.name} has no kernel for {backend!r}")
        self._cache[backend] = k
        return k

    def set_kernel(self, backend: str, kernel: Callable) -> None:
        """Install a specialised kernel (e.g. a CuPy RawKernel wrapper from tensorlib.cuda)."""
        self.kernels[backend] = kernel
        self._cache.pop(backend, None)
        if backend == "cpu":
            self.cpu = kernel

    def has_kernel(self, backend: str) -> bool:
        return backend in self.kernels or self.ufunc is not None or self.fwd is not None

    @property
    def differentiable(self) -> bool:
        return self.vjp is not None

    def __repr__(self) -> str:
        return f"OpDef({self.name!r})"


def _lazy_cupy_ufunc(name):
    def k(*arrays, **attrs):
        from ..backends import cupy
        return getattr(cupy(), name)(*arrays, **attrs)
    return k


def _lazy_cupy_fwd(fwd):
    def k(*arrays, **attrs):
        from ..backends import cupy
        return fwd(cupy(), *arrays, **attrs)
    return k


_BUILTIN: set[str] = set()     # names tensorlib's own modules registered


def register(op: OpDef) -> OpDef:
    """Add ``op`` to the registry under ``op.name`` (call it with ``tl.apply(op, ...)``; see
    docs/extending.md). Registering a user op's name again replaces the entry (re-running a
    notebook cell), with a warning when the definition differs: graphs already captured by
    ``tl.function`` keep the op they recorded until they retrace, so the warning says so. A
    name tensorlib itself registered cannot be replaced (ValueError): its own code holds
    that entry directly, so a replacement would apply to some calls and not others."""
    import sys
    old = REGISTRY.get(op.name)
    builtin = sys._getframe(1).f_globals.get("__name__", "").startswith("tensorlib.")
    if old is not None and old is not op:
        if builtin or op.name in _BUILTIN:
            raise ValueError(f"register: op {op.name!r} is already registered by tensorlib; "
                             "give your op another name")
        if not _same_definition(old, op):
            import warnings
            warnings.warn(f"register: op {op.name!r} was registered before with another "
                          "definition; it is replaced (graphs that tl.function captured with "
                          "the old one keep it until they retrace)", stacklevel=2)
    if builtin:
        _BUILTIN.add(op.name)
    REGISTRY[op.name] = op
    return op


def _same_definition(a: OpDef, b: OpDef) -> bool:
    """Whether two entries are the same source re-run: equal code (not identity) for the
    callables, equal values for the rest."""
    def same(x, y):
        if x is y:
            return True
        cx, cy = getattr(x, "__code__", None), getattr(y, "__code__", None)
        if cx is not None and cy is not None:
            return cx == cy and getattr(x, "__defaults__", None) == getattr(y, "__defaults__",
                                                                            None)
        if isinstance(x, dict) and isinstance(y, dict):
            return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
        try:
            return bool(x == y)
        except Exception:
            return False
    return all(same(getattr(a, f), getattr(b, f)) for f in
               ("fwd", "ufunc", "kernels", "vjp", "infer", "cost", "onnx", "saves",
                "saves_output", "view", "promote"))


def shape_check(fn: Callable) -> Callable:
    """Mark an ``OpDef.check`` as reading only its arrays' shapes (and the attrs): the
    executor runs it only for nodes with a dynamic (None) input dim."""
    fn.shapes_only = True
    return fn


def cpu_ufunc(op: OpDef):
    """The NumPy ufunc ``op``'s CPU kernel is (seen through the profiler's wrapper), so
    callers may call it with ``out=``; None for ops with a kernel of their own."""
    if op.ufunc is None:
        return None
    u = getattr(np, op.ufunc, None)
    return u if u is not None and getattr(op.cpu, "_tl_profiled", op.cpu) is u else None


def cpu_map(op: OpDef):
    """``f(*arrays, out=None)`` computing ``op``'s CPU kernel, for chains run in place (graph
    fusion): the NumPy ufunc, or the kernel standing in for it (``.ufunc_out``); None for
    other ops."""
    u = cpu_ufunc(op)
    if u is not None or op.ufunc is None:
        return u
    return getattr(getattr(op.cpu, "_tl_profiled", op.cpu), "ufunc_out", None)


def get(name: str) -> OpDef:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no op named {name!r} in the registry") from None
