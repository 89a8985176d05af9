"""``torch.distributions.utils``' helpers that library code imports: ``broadcast_all``,
``logits_to_probs``, ``probs_to_logits``, ``clamp_probs`` (and the triangular-vector
converters of :mod:`~tensorlib.distributions.transforms_extra`)."""
from __future__ import annotations

from numbers import Number

from .._tensor import Tensor
from .continuous_bernoulli import clamp_probs as _clamp
from .transforms_extra import tril_matrix_to_vec, vec_to_tril_matrix

__all__ = ["broadcast_all", "clamp_probs", "logits_to_probs", "probs_to_logits",
           "tril_matrix_to_vec", "vec_to_tril_matrix"]


def broadcast_all(*values: Tensor | Number) -> tuple[Tensor, ...]:
    """The values broadcast against each other, as ``torch.distributions.utils``': numbers
    become tensors of the first tensor's dtype and device (the default dtype when all are
    numbers). Anything else raises a ValueError."""
    from .. import broadcast_tensors, get_default_dtype, tensor
    if not all(isinstance(v, (Tensor, Number)) for v in values):
        raise ValueError("broadcast_all: input arguments must all be instances of Number or "
                         f"Tensor, got {[type(v).__name__ for v in values]}")
    if not all(isinstance(v, Tensor) for v in values):
        first = next((v for v in values if isinstance(v, Tensor)), None)
        opts = ({"dtype": get_default_dtype()} if first is None
                else {"dtype": first.dtype, "device": first.device})
        values = tuple(v if isinstance(v, Tensor) else tensor(v, **opts) for v in values)
    return tuple(broadcast_tensors(*values))


def clamp_probs(probs: Tensor) -> Tensor:
    """``probs`` clamped into ``[eps, 1 - eps]``, eps being the dtype's machine epsilon
    (``torch.distributions.utils.clamp_probs``)."""
    if not isinstance(probs, Tensor) or probs.dtype.kind != "f":
        raise TypeError(f"clamp_probs: expected a floating-point Tensor, got "
                        f"{getattr(probs, 'dtype', type(probs).__name__)}")
    return _clamp(probs)


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """Probabilities from logits: ``sigmoid`` of log-odds when ``is_binary``, else a softmax
    over the last dim (``torch.distributions.utils.logits_to_probs``)."""
    if is_binary:
        return logits.sigmoid()
    from ..nn.functional import softmax
    return softmax(logits, dim=-1)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """Logits from (clamped) probabilities: log-odds when ``is_binary``, else their logs
    (``torch.distributions.utils.probs_to_logits``)."""
    p = clamp_probs(probs)
    if is_binary:
        return p.log() - (-p).log1p()
    return p.log()

