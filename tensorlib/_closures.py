"""What a Python function reaches without taking it as an argument: the objects its
closure cells, a ``functools.partial``'s arguments, a bound method's ``self`` and the
globals it loads hold (followed into the callables among them). Used where tensorlib must
find a function's Modules or parameters by itself: ``checkpoint``'s parameters, the names
``save_graph`` gives a captured model's variables."""
from __future__ import annotations

import dis
import functools
from collections.abc import Iterator


def global_loads(code) -> set[str]:
    """The global names ``code`` reads (``co_names`` also holds attribute names: a
    ``self.model`` would pick up a global ``model``)."""
    return {i.argval for i in dis.get_instructions(code) if i.opname == "LOAD_GLOBAL"}


def reachable(function, depth: int = 3) -> Iterator:
    """The objects ``function`` reaches (``function`` itself first), each once."""
    from .nn.module import Module
    seen: set[int] = set()
    out: list = []

    def take(obj) -> None:
        if obj is not None and id(obj) not in seen:
            seen.add(id(obj))
            out.append(obj)

    def visit(fn, level: int) -> None:
        if level > depth:
            return
        take(fn)
        take(getattr(fn, "__self__", None))
        if isinstance(fn, functools.partial):
            for a in (*fn.args, *fn.keywords.values()):
                take(a)
            visit(fn.func, level + 1)
        # defaults too: ``lambda z, blk=blk: blk(z)`` binds a loop's module that way
        kwdefaults = getattr(fn, "__kwdefaults__", None) or {}
        for v in (*(getattr(fn, "__defaults__", None) or ()), *kwdefaults.values()):
            if isinstance(v, Module) or not callable(v):
                take(v)
        for cell in getattr(fn, "__closure__", None) or ():
            try:
                v = cell.cell_contents
            except ValueError:      # an empty cell
                continue
            if callable(v) and not isinstance(v, (Module, type)) and id(v) not in seen:
                visit(v, level + 1)
            else:
                take(v)
        code = getattr(fn, "__code__", None)
        if code is not None:
            g = getattr(fn, "__globals__", {})
            for name in sorted(global_loads(code)):
                take(g.get(name))
    visit(function, 0)
    return iter(out)
