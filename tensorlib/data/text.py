"""A small public-domain text corpus shipped with tensorlib, and character encoding
for character-level language models.

>>> text = tl.data.text.load_corpus()        # Shakespeare's sonnets (1609)
>>> vocab = tl.data.text.CharVocab(text)
>>> ids = vocab.encode("Shall I compare")
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["CORPORA", "CharVocab", "load_corpus", "next_char_dataset"]

_HERE = os.path.dirname(os.path.abspath(__file__))
CORPORA = {"shakespeare_sonnets": "shakespeare_sonnets.txt"}


def load_corpus(name: str = "shakespeare_sonnets") -> str:
    """The text of a shipped corpus: ``"shakespeare_sonnets"`` (eleven of Shakespeare's
    sonnets, first printed 1609, public domain; about 7000 characters)."""
    if name not in CORPORA:
        raise ValueError(f"load_corpus: unknown corpus {name!r}; shipped: {sorted(CORPORA)}")
    with open(os.path.join(_HERE, CORPORA[name]), encoding="utf-8") as f:
        return f.read()


class CharVocab:
    """Maps the distinct characters of a text to ids 0..n-1 (sorted) and back."""

    def __init__(self, text: str):
        if not text:
            raise ValueError("CharVocab: empty text")
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        try:
            return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))
        except KeyError as e:
            raise ValueError(f"CharVocab.encode: character {e.args[0]!r} is not in the "
                             "vocabulary") from None

    def decode(self, ids) -> str:
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= len(self.chars)):
            raise ValueError(f"CharVocab.decode: ids must be in [0, {len(self.chars)})")
        return "".join(self.chars[int(i)] for i in ids)


def next_char_dataset(ids: np.ndarray, seq_len: int, stride: int | None = None):
    """(inputs, targets) windows of ``seq_len`` ids, targets shifted by one, as a
    ``TensorDataset``; windows start every ``stride`` ids (default ``seq_len``)."""
    from .dataset import TensorDataset
    ids = np.asarray(ids, dtype=np.int64)
    stride = seq_len if stride is None else stride
    if seq_len <= 0 or stride <= 0:
        raise ValueError(f"next_char_dataset: seq_len and stride must be positive, got "
                         f"{seq_len} and {stride}")
    if len(ids) < seq_len + 1:
        raise ValueError(f"next_char_dataset: {len(ids)} ids are too few for windows of "
                         f"{seq_len} + 1")
    starts = np.arange(0, len(ids) - seq_len, stride)
    x = np.stack([ids[s:s + seq_len] for s in starts])
    y = np.stack([ids[s + 1:s + seq_len + 1] for s in starts])
    return TensorDataset(x, y)
