"""Batching variable-length sequences for the recurrent layers."""
from __future__ import annotations

from collections.abc import Sequence

from ..._tensor import Tensor
from ...ops._util import to_tensor
from ...ops.shape import pad, stack


def pad_sequence(sequences: Sequence, batch_first: bool = False,
                 padding_value: float = 0.0, padding_side: str = "right") -> Tensor:
    """Stack tensors of shapes (L_i, *) into (L_max, B, *), or (B, L_max, *) with
    ``batch_first``, filling with ``padding_value`` (after each sequence, or before it with
    ``padding_side='left'``); differentiable in every sequence.

    >>> pad_sequence([tl.ones(2), tl.ones(3)], batch_first=True).shape
    (2, 3)
    """
    seqs = [to_tensor(s) for s in sequences]
    if not seqs:
        raise ValueError("pad_sequence: no sequences given")
    if padding_side not in ("right", "left"):
        raise ValueError(f"pad_sequence: padding_side must be 'right' or 'left', got "
                         f"{padding_side!r}")
    tail = tuple(seqs[0].shape[1:])
    for i, s in enumerate(seqs):
        if s.ndim < 1 or tuple(s.shape[1:]) != tail:
            raise ValueError(f"pad_sequence: sequence {i} has shape {tuple(s.shape)}; every "
                             f"sequence must be (L, {', '.join(map(str, tail)) or ''}) with "
                             "the same trailing dims")
    n = max(s.shape[0] for s in seqs)
    out = []
    for s in seqs:
        extra = n - s.shape[0]
        widths = [(0, extra) if padding_side == "right" else (extra, 0)] + [(0, 0)] * len(tail)
        out.append(pad(s, widths, value=padding_value) if extra else s)
    return stack(out, axis=0 if batch_first else 1)
