"""Value checks redone at replay.

Some ops validate index values in their Python wrapper (not in a registry
``check``), so eager calls raise on a bad target or index. A replayed graph
skips the wrappers, so the executor runs these checks before the kernel:
a bad label never turns into a silently wrapped index or an unchecked
Cython access. On a GPU, as in eager mode, the kernels check on the device
(an out-of-range index gives NaN): a check here would make the host wait for
the GPU at every replay.
"""
from __future__ import annotations


def on_gpu(a) -> bool:
    """Whether ``a`` is a device (CuPy) array."""
    return hasattr(a, "__cuda_array_interface__")


def _class_targets(op):
    def check(x, t, *w, ignore_index, **attrs):
        C = x.shape[1]
        if t.size and not on_gpu(t):
            bad = (t != ignore_index) & ((t < 0) | (t >= C))
            if bad.any():
                raise IndexError(f"{op}: target value {int(t[bad].flat[0])} is out of range for "
                                 f"{C} classes (and is not ignore_index={ignore_index})")
    return check


def _embedding(w, idx, **attrs):
    V = w.shape[0]
    if idx.size and not on_gpu(idx) and (int(idx.min()) < 0 or int(idx.max()) >= V):
        raise IndexError(f"embedding: indices must lie in [0, {V}), got range "
                         f"[{int(idx.min())}, {int(idx.max())}]")


VALUE_CHECKS = {"cross_entropy": _class_targets("cross_entropy"),
                "nll_loss": _class_targets("nll_loss"),
                "embedding": _embedding}
