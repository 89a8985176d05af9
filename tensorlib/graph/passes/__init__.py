"""Graph passes. Each takes a Graph, rewrites it in place and returns a count of changes.

``optimize(g)`` runs the standard pipeline: re-deriving a captured training step's
backward after rewriting its forward (``rederive``, ``tables``, ``batching``), CSE,
constant folding, algebraic simplification, batching of gradient sums, elementwise
fusion, then dead-code elimination. The memory
plan (``passes.memory``) runs when the executor compiles a plan.
"""
from __future__ import annotations

from .batching import batch_class_losses, batch_embedding_grads, batch_matmul_sums, sum_slices
from .cse import cse
from .dce import dce
from .fold import fold_constants
from .fusion import fuse_elementwise, fuse_sgd_gemm, fuse_sgd_updates
from .rederive import rederive_backward
from .reorder import relu_after_max_pool
from .simplify import simplify
from .tables import fold_bias_into_tables, project_embedding_tables

__all__ = ["batch_class_losses", "batch_embedding_grads", "batch_matmul_sums",
           "fold_bias_into_tables", "project_embedding_tables", "rederive_backward",
           "relu_after_max_pool", "sum_slices", "cse", "dce", "fold_constants", "fuse_elementwise",
           "fuse_sgd_gemm", "fuse_sgd_updates", "simplify", "optimize", "PIPELINE"]

# the forward rewrites run inside rederive_backward on a training step (its backward is then
# derived again); on their own they rewrite graphs without a recorded backward
PIPELINE = (rederive_backward, project_embedding_tables, fold_bias_into_tables,
            batch_class_losses, sum_slices, relu_after_max_pool, cse, fold_constants, simplify,
            cse, batch_matmul_sums, batch_embedding_grads, cse, fuse_sgd_updates,
            fuse_sgd_gemm, fuse_elementwise, dce)


def optimize(g, passes=None, fetches=None):
    """Run ``passes`` (default :data:`PIPELINE`) on ``g`` in place; returns ``g``."""
    for p in (passes if passes is not None else PIPELINE):
        p(g) if p is not dce or fetches is None else p(g, fetches)
    g.invalidate()
    return g
