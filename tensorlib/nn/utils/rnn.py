"""Batching variable-length sequences for the recurrent layers, as ``torch.nn.utils.rnn``:
padding (``pad_sequence``, ``unpad_sequence``) and packing (``PackedSequence``,
``pack_padded_sequence``, ``pad_packed_sequence``, ``pack_sequence``, ``unpack_sequence``).

A packed batch holds only the real steps: ``data`` is the time-major concatenation of the
sequences still running at each step (sorted longest first), and ``batch_sizes[t]`` is how
many run at step t. ``nn.RNN``/``LSTM``/``GRU`` take one and compute only those rows."""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ... import creation
from ..._state import state
from ..._tensor import Tensor
from ...ops._util import to_tensor
from ...ops.indexing import index_add, take
from ...ops.shape import concatenate, pad, stack

__all__ = ["PackedSequence", "pack_padded_sequence", "pack_sequence", "pad_packed_sequence",
           "pad_sequence", "unpack_sequence", "unpad_sequence"]


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


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list[Tensor]:
    """The inverse of ``pad_sequence``: the list of (L_i, *) tensors, cut to ``lengths``.

    >>> [s.shape for s in unpad_sequence(tl.zeros(4, 2, 3), [4, 2])]
    [(4, 3), (2, 3)]
    """
    x = to_tensor(padded_sequences)
    if x.ndim < 2:
        raise ValueError(f"unpad_sequence: expected a (L, B, *) tensor, got shape "
                         f"{tuple(x.shape)}")
    if not batch_first:
        x = x.swapaxes(0, 1)
    lens = _lengths(lengths, x.shape[0], x.shape[1], "unpad_sequence")
    return [x[i, :int(n)] for i, n in enumerate(lens)]


class _PackedFields(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


class PackedSequence(_PackedFields):
    """A batch of variable-length sequences without the padding (PyTorch's layout).

    ``data`` (sum of lengths, *): step 0 of every sequence, then step 1 of those longer than
    1, ...; within a step, sequences longest first. ``batch_sizes`` (int64, on the CPU): how
    many sequences are still running at each step. ``sorted_indices[i]`` is the original
    batch position of the i-th longest sequence (None when the batch came in sorted);
    ``unsorted_indices`` is its inverse. Build one with ``pack_padded_sequence`` or
    ``pack_sequence``, not by hand.
    """

    __slots__ = ()

    def __new__(cls, data: Tensor, batch_sizes: Tensor | None = None,
                sorted_indices: Tensor | None = None,
                unsorted_indices: Tensor | None = None) -> PackedSequence:
        if batch_sizes is None:
            raise ValueError("PackedSequence: batch_sizes is required; build one with "
                             "pack_padded_sequence or pack_sequence")
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = _invert(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs) -> PackedSequence:
        """``data.to(...)``; the indices follow the device, ``batch_sizes`` stays on the CPU."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self

        def move(t):
            return None if t is None else t.to(data.device)
        return type(self)(data, self.batch_sizes, move(self.sorted_indices),
                          move(self.unsorted_indices))

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    def cuda(self, index: int = 0) -> PackedSequence:
        return self.to(f"cuda:{index}")

    def double(self) -> PackedSequence:
        return self.to("float64")

    def float(self) -> PackedSequence:
        return self.to("float32")

    def half(self) -> PackedSequence:
        return self.to("float16")

    @property
    def is_cuda(self) -> bool:
        return self.data.device.type == "cuda"


def _invert(perm: Tensor) -> Tensor:
    p = np.asarray(perm.cpu().numpy())
    inv = np.empty_like(p)
    inv[p] = np.arange(p.size, dtype=p.dtype)
    return creation.tensor(inv, device=perm.device)


def _no_capture(op: str) -> None:
    # lengths are read on the host and decide the shapes, so a captured graph would bake
    # in one batch's lengths and silently misuse them for the next
    if state.tracer is not None:
        raise NotImplementedError(f"{op}: packed sequences are not supported under graph "
                                  "capture (tl.function, export); capture the padded batch "
                                  "instead")


def _lengths(lengths, n: int, total: int, op: str) -> np.ndarray:
    """``lengths`` (list or 1-D tensor) as an int64 array, checked against a batch of ``n``
    sequences padded to ``total`` steps."""
    if isinstance(lengths, Tensor):
        lengths = lengths.detach().cpu().numpy()
    arr = np.asarray(lengths)
    if arr.ndim != 1:
        raise ValueError(f"{op}: lengths must be a 1-D list or tensor, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{op}: lengths must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size != n:
        raise ValueError(f"{op}: got {arr.size} lengths for a batch of {n} sequences; give "
                         "one length per sequence")
    if n and arr.min() <= 0:
        raise ValueError(f"{op}: every length must be at least 1, got {arr.tolist()} "
                         "(drop empty sequences from the batch)")
    if n and arr.max() > total:
        raise ValueError(f"{op}: length {int(arr.max())} is longer than the padded input's "
                         f"{total} steps (lengths {arr.tolist()})")
    return arr


def _sort(lengths: np.ndarray, enforce_sorted: bool, op: str):
    """(sorted lengths, sorted_indices or None)."""
    if enforce_sorted:
        if np.any(lengths[1:] > lengths[:-1]):
            raise ValueError(f"{op}: lengths must be sorted in decreasing order with "
                             f"enforce_sorted=True, got {lengths.tolist()}; pass "
                             "enforce_sorted=False to have them sorted for you")
        return lengths, None
    order = np.argsort(-lengths, kind="stable")
    return lengths[order], order


def _batch_sizes(sorted_lengths: np.ndarray) -> np.ndarray:
    # batch_sizes[t] = how many lengths exceed t
    n = len(sorted_lengths)
    counts = np.bincount(sorted_lengths, minlength=int(sorted_lengths[0]) + 1)
    return (n - np.cumsum(counts)[:-1]).astype(np.int64)


def _packed_rows(batch_sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(t, sorted batch position) of each row of the packed data, in order."""
    n = int(batch_sizes[0])
    t, b = np.nonzero(np.arange(n)[None, :] < batch_sizes[:, None])
    return t, b


def _finish(data: Tensor, batch_sizes: np.ndarray, order: np.ndarray | None) -> PackedSequence:
    sorted_idx = None if order is None else creation.tensor(order, device=data.device)
    return PackedSequence(data, creation.tensor(batch_sizes), sorted_idx)


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (L, B, *) (or (B, L, *) with ``batch_first``) whose sequence i
    has ``lengths[i]`` real steps. With ``enforce_sorted`` the lengths must be decreasing;
    otherwise the batch is sorted here and ``sorted_indices`` records how. Differentiable
    in ``input``.

    >>> x = tl.randn(5, 3, 8)                       # 3 sequences, padded to 5 steps
    >>> p = pack_padded_sequence(x, [5, 2, 3], enforce_sorted=False)
    >>> p.data.shape, p.batch_sizes.tolist()
    ((10, 8), [3, 3, 2, 1, 1])
    """
    op = "pack_padded_sequence"
    _no_capture(op)
    x = to_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"{op}: expected a padded batch of shape (L, B, *) (or (B, L, *) "
                         f"with batch_first), got shape {tuple(x.shape)}")
    T, B = (x.shape[1], x.shape[0]) if batch_first else (x.shape[0], x.shape[1])
    lens = _lengths(lengths, B, T, op)
    if B == 0:
        raise ValueError(f"{op}: the batch is empty")
    slens, order = _sort(lens, enforce_sorted, op)
    bs = _batch_sizes(slens)
    t, b = _packed_rows(bs)
    src = b if order is None else order[b]
    rows = src * T + t if batch_first else t * B + src
    # one gather from the flattened batch: its backward is one scatter
    flat = x.reshape((T * B,) + tuple(x.shape[2:]))
    data = take(flat, creation.tensor(rows, device=x.device), axis=0)
    return _finish(data, bs, order)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple[Tensor, Tensor]:
    """The inverse of ``pack_padded_sequence``: (padded (L, B, *) or (B, L, *), lengths
    (int64, CPU)), in the original batch order, padded to the longest sequence or to
    ``total_length``. Differentiable in ``sequence.data``.

    >>> out, lengths = pad_packed_sequence(lstm(packed)[0], batch_first=True)
    """
    op = "pad_packed_sequence"
    _no_capture(op)
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"{op}: expected a PackedSequence, got {type(sequence).__name__}")
    data = sequence.data
    bs = np.asarray(sequence.batch_sizes.cpu().numpy(), dtype=np.int64)
    B, T = int(bs[0]), len(bs)
    if total_length is not None:
        if total_length < T:
            raise ValueError(f"{op}: total_length {total_length} is shorter than the longest "
                             f"sequence ({T} steps)")
        T = int(total_length)
    t, b = _packed_rows(bs)
    order = (None if sequence.sorted_indices is None
             else np.asarray(sequence.sorted_indices.cpu().numpy()))
    dst = b if order is None else order[b]
    rows = dst * T + t if batch_first else t * B + dst
    tail = tuple(data.shape[1:])
    # scatter into a constant that is 0 where the data lands (so the add is exact) and
    # padding_value elsewhere: one op each way, whatever the padding
    if padding_value == 0:
        base = creation.zeros((T * B,) + tail, dtype=data.dtype, device=data.device)
    else:
        host = np.full((T * B,) + tail, padding_value, dtype=data.dtype)
        host[rows] = 0
        base = creation.tensor(host, device=data.device)
    out = index_add(base, creation.tensor(rows, device=data.device), data, axis=0)
    out = out.reshape(((B, T) if batch_first else (T, B)) + tail)
    lengths = np.bincount(b, minlength=B).astype(np.int64)
    if order is not None:
        lengths = lengths[np.argsort(order)]
    return out, creation.tensor(lengths)


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of (L_i, *) tensors (``pack_padded_sequence`` without building the
    padded batch). Differentiable in every sequence.

    >>> p = pack_sequence([tl.ones(3, 2), tl.ones(1, 2)])
    >>> p.batch_sizes.tolist()
    [2, 1, 1]
    """
    op = "pack_sequence"
    _no_capture(op)
    seqs = [to_tensor(s) for s in sequences]
    if not seqs:
        raise ValueError(f"{op}: no sequences given")
    tail = tuple(seqs[0].shape[1:])
    for i, s in enumerate(seqs):
        if s.ndim < 1 or tuple(s.shape[1:]) != tail:
            raise ValueError(f"{op}: sequence {i} has shape {tuple(s.shape)}; every sequence "
                             "must be (L, *) with the same trailing dims as sequence 0 "
                             f"{tuple(seqs[0].shape)}")
        if s.shape[0] == 0:
            raise ValueError(f"{op}: sequence {i} is empty; every sequence needs at least "
                             "one step")
    lens = np.array([s.shape[0] for s in seqs], dtype=np.int64)
    slens, order = _sort(lens, enforce_sorted, op)
    bs = _batch_sizes(slens)
    t, b = _packed_rows(bs)
    src = b if order is None else order[b]
    starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
    cat = concatenate(seqs, axis=0) if len(seqs) > 1 else seqs[0]
    data = take(cat, creation.tensor(starts[src] + t, device=cat.device), axis=0)
    return _finish(data, bs, order)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The inverse of ``pack_sequence``: the list of (L_i, *) tensors, in the original
    order. Differentiable in ``data``."""
    op = "unpack_sequence"
    _no_capture(op)
    if not isinstance(packed_sequences, PackedSequence):
        raise TypeError(f"{op}: expected a PackedSequence, got "
                        f"{type(packed_sequences).__name__}")
    data = packed_sequences.data
    bs = np.asarray(packed_sequences.batch_sizes.cpu().numpy(), dtype=np.int64)
    B = int(bs[0])
    offsets = np.concatenate(([0], np.cumsum(bs)[:-1]))
    lengths = (bs[None, :] > np.arange(B)[:, None]).sum(1)
    seqs = [take(data, creation.tensor(offsets[:lengths[i]] + i, device=data.device), axis=0)
            for i in range(B)]
    if packed_sequences.unsorted_indices is not None:
        seqs = [seqs[int(i)] for i in packed_sequences.unsorted_indices.cpu().numpy()]
    return seqs
