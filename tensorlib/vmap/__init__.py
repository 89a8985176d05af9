"""Vectorizing map: ``tl.vmap`` / ``tl.func.vmap``, and the transforms built on it
(``jacrev``, ``hessian``, ``vjp``; ``stack_module_state`` for ensembles; and the forward-mode
transforms ``jvp``, ``jacfwd``, ``linearize`` from reverse mode, :mod:`.forward`).

vmap is another backend of the op registry, as CUDA is: inside a vmapped function tensors
hold ``BatchedArray``s (:mod:`.batched`) on an internal ``vmap`` device, ``apply`` sends
their ops to ``OpDef.kernel_for("vmap")``, the op's batching rule (:mod:`.rules` and the
``rules_*`` modules), which computes on the physical arrays with the batch dim first.
Entering, leaving and joining a level are recorded ops (:mod:`.levels`), so autograd
works through vmap in both directions.
"""
from __future__ import annotations

from .api import vmap
from .forward import jacfwd, jvp, linearize
from .transforms import hessian, jacrev, stack_module_state, vjp

__all__ = ["vmap", "jacrev", "jacfwd", "hessian", "vjp", "jvp", "linearize",
           "stack_module_state"]
