"""Tape nodes: one per recorded op call."""
from __future__ import annotations


# Node is compiled with the rest of the hot path.
from .._core import Node  # noqa: F401


def _freed_message(node) -> str:
    return (f"{node!r}: trying to backward through the graph a second time (or to read "
            "saved tensors after they were freed). The first backward() freed the "
            "intermediate values; pass retain_graph=True to the first call if you need "
            "to backward through it again.")
