"""PyTorch's batched and scaled matrix products: ``bmm``, ``addmm``, ``baddbmm``.

Composites of ``matmul`` (one GEMM per matrix of the stack), with PyTorch's shape checks.
"""
from __future__ import annotations

from .._state import state
from ..amp.cast import autocast_call
from .._tensor import Tensor
from ..errors import ShapeError
from ._util import to_tensor
from .linalg import matmul


def _check(op: str, name: str, t: Tensor, ndim: int) -> None:
    if t.ndim != ndim:
        raise ShapeError(f"{op}: {name} must be {ndim}-D, got shape {tuple(t.shape)}")


def _scaled_sum(op: str, input, prod: Tensor, beta, alpha) -> Tensor:
    out = prod if alpha == 1 else prod * alpha
    if beta == 0:          # PyTorch ignores input (even NaN/inf in it) when beta is 0
        return out
    inp = to_tensor(input)
    try:
        import numpy as np
        np.broadcast_shapes(tuple(inp.shape), tuple(out.shape))
    except ValueError:
        raise ShapeError(f"{op}: input of shape {tuple(inp.shape)} does not broadcast to the "
                         f"product's shape {tuple(out.shape)}") from None
    return out + (inp if beta == 1 else inp * beta)


def bmm(input, mat2) -> Tensor:
    """Batched matrix product of (b, n, m) and (b, m, p) stacks: (b, n, p) (``torch.bmm``)."""
    a, b = to_tensor(input), to_tensor(mat2)
    _check("bmm", "input", a, 3)
    _check("bmm", "mat2", b, 3)
    sa, sb = tuple(a.shape), tuple(b.shape)
    if sa[0] != sb[0]:
        raise ShapeError(f"bmm: batch sizes differ ({sa[0]} != {sb[0]}) for shapes {sa} and "
                         f"{sb}")
    if sa[2] != sb[1]:
        raise ShapeError(f"bmm: shapes {sa} and {sb} cannot be multiplied ({sa[2]} != {sb[1]}; "
                         "expected (b, n, m) and (b, m, p))")
    return matmul(a, b)


def addmm(input, mat1, mat2, *, beta: float = 1, alpha: float = 1) -> Tensor:
    """``beta * input + alpha * (mat1 @ mat2)`` for matrices (n, m) @ (m, p); ``input``
    broadcasts to (n, p) (``torch.addmm``)."""
    if state.autocast is not None:
        return autocast_call(addmm, "addmm", input, mat1, mat2, beta=beta, alpha=alpha)
    a, b = to_tensor(mat1), to_tensor(mat2)
    _check("addmm", "mat1", a, 2)
    _check("addmm", "mat2", b, 2)
    if a.shape[1] != b.shape[0]:
        raise ShapeError(f"addmm: mat1 {tuple(a.shape)} and mat2 {tuple(b.shape)} cannot be "
                         f"multiplied ({a.shape[1]} != {b.shape[0]})")
    return _scaled_sum("addmm", input, matmul(a, b), beta, alpha)


def baddbmm(input, batch1, batch2, *, beta: float = 1, alpha: float = 1) -> Tensor:
    """``beta * input + alpha * bmm(batch1, batch2)``; ``input`` broadcasts to (b, n, p)
    (``torch.baddbmm``)."""
    if state.autocast is not None:
        return autocast_call(baddbmm, "baddbmm", input, batch1, batch2, beta=beta, alpha=alpha)
    return _scaled_sum("baddbmm", input, bmm(batch1, batch2), beta, alpha)
