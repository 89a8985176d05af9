"""All parameters as one flat vector, and back (e.g. for second-order or evolutionary
methods that treat the model as a point in R^n)."""
from __future__ import annotations

from collections.abc import Iterable

from ..._tensor import Tensor
from ...autograd.mode import no_grad
from ...ops.shape import concatenate


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """The parameters flattened and concatenated, in order (differentiable)."""
    ps = list(parameters)
    if not ps:
        raise ValueError("parameters_to_vector: no parameters given")
    return concatenate([p.reshape(-1) for p in ps], axis=0)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of ``vec`` into the parameters, in place."""
    ps = list(parameters)
    total = sum(p.size for p in ps)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ValueError(f"vector_to_parameters: a vector of {total} elements is needed for "
                         f"these parameters, got shape {tuple(vec.shape)}")
    offset = 0
    with no_grad():
        for p in ps:
            p.copy_(vec[offset:offset + p.size].reshape(p.shape).astype(p.dtype))
            offset += p.size
