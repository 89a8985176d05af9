"""Graph passes. Each takes a Graph, rewrites it in place and returns a count of changes.

``optimize(g)`` runs the standard pipeline: CSE, constant folding, algebraic
simplification, elementwise fusion, then dead-code elimination. The memory
plan (``passes.memory``) runs when the executor compiles a plan.
"""
from __future__ import annotations

from .batching import batch_matmul_sums
from .cse import cse
from .dce import dce
from .fold import fold_constants
from .fusion import fuse_elementwise, fuse_sgd_updates
from .simplify import simplify

__all__ = ["batch_matmul_sums", "cse", "dce", "fold_constants", "fuse_elementwise",
           "fuse_sgd_updates", "simplify", "optimize", "PIPELINE"]

PIPELINE = (cse, fold_constants, simplify, cse, batch_matmul_sums, fuse_sgd_updates,
            fuse_elementwise, dce)


def optimize(g, passes=None, fetches=None):
    """Run ``passes`` (default :data:`PIPELINE`) on ``g`` in place; returns ``g``."""
    for p in (passes if passes is not None else PIPELINE):
        p(g) if p is not dce or fetches is None else p(g, fetches)
    g.invalidate()
    return g
