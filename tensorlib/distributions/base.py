"""The Distribution base: shapes, parameter broadcasting and argument checks."""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from ..autograd.mode import state
from ..ops._util import to_tensor
from ..ops.shape import broadcast_to


def as_float(v, like: Tensor | None = None) -> Tensor:
    """A parameter as a float tensor (a Python number takes ``like``'s dtype and device)."""
    if isinstance(v, Tensor):
        return v if v.dtype.kind == "f" else v.astype(np.float32)
    from ..creation import tensor
    if like is not None:
        return tensor(v, dtype=like.dtype, device=like.device)
    return tensor(v, dtype=np.float32) if np.ndim(v) == 0 else tensor(v)


def broadcast_params(*params) -> tuple[Tensor, ...]:
    """Float tensors broadcast to one shape (numbers follow the first tensor's dtype)."""
    like = next((p for p in params if isinstance(p, Tensor)), None)
    ts = [as_float(p, like) for p in params]
    shape = np.broadcast_shapes(*[t.shape for t in ts])
    return tuple(t if tuple(t.shape) == tuple(shape) else broadcast_to(t, shape) for t in ts)


class Distribution:
    """Base class: ``batch_shape`` (independent distributions) and ``event_shape`` (the shape
    of one draw); ``validate_args`` checks parameters and values eagerly (never while
    capturing a graph, where reading them would freeze them)."""

    has_rsample = False

    def __init__(self, batch_shape=(), event_shape=(), validate_args: bool | None = None):
        self.batch_shape = tuple(batch_shape)
        self.event_shape = tuple(event_shape)
        self._validate = validate_args is not False

    def _check(self, ok: Tensor, what: str) -> None:
        if self._validate and state.tracer is None and not bool(ok.all().item()):
            raise ValueError(f"{type(self).__name__}: {what}")

    def _extended_shape(self, sample_shape=()) -> tuple[int, ...]:
        if isinstance(sample_shape, int):
            sample_shape = (sample_shape,)
        return tuple(sample_shape) + self.batch_shape + self.event_shape

    def sample(self, sample_shape=()) -> Tensor:
        """A draw of shape ``sample_shape + batch_shape + event_shape``, without gradient."""
        from ..autograd.mode import no_grad
        with no_grad():
            return self.rsample(sample_shape).detach()

    def rsample(self, sample_shape=()) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} has no reparameterized sample")

    def log_prob(self, value) -> Tensor:
        raise NotImplementedError

    def entropy(self) -> Tensor:
        raise NotImplementedError

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    @staticmethod
    def _value(value) -> Tensor:
        return to_tensor(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_shape={self.batch_shape})"
