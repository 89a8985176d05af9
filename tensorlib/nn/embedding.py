"""Embedding tables: ``Embedding`` and ``EmbeddingBag``."""
from __future__ import annotations

from .. import creation
from .._tensor import Tensor
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


class Embedding(Module):
    """A lookup table: integer ids (any shape) -> rows of ``weight`` (num, dim), drawn
    from N(0, 1); the ``padding_idx`` row starts at zero and gets no gradient. With
    ``max_norm``, each looked-up row whose ``norm_type``-norm exceeds it is renormalised in
    place in ``weight`` before the lookup, as in PyTorch; ``scale_grad_by_freq`` divides each
    row's gradient by the times the batch holds its index.

    ``sparse=True``: ``weight.grad`` is a sparse COO tensor of the looked-up rows, as
    PyTorch's, for :class:`tl.optim.SparseAdam`, ``SGD`` and ``Adagrad``.

    >>> nn.Embedding(10, 3, scale_grad_by_freq=True)(tl.tensor([[1, 1, 4]])).shape
    (1, 3, 3)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, dtype=None,
                 device=None, _weight: Tensor | None = None, scale_grad_by_freq: bool = False,
                 sparse: bool = False):
        super().__init__()
        self.scale_grad_by_freq = bool(scale_grad_by_freq)
        self.sparse = bool(sparse)
        if max_norm is not None and not float(max_norm) >= 0:
            raise ValueError(f"{type(self).__name__}: max_norm must be >= 0, got {max_norm!r}")
        self.max_norm = None if max_norm is None else float(max_norm)
        self.norm_type = float(norm_type)
        from .linear import _as_int, _positive
        num_embeddings = _positive("num_embeddings", "Embedding", num_embeddings)
        embedding_dim = _positive("embedding_dim", "Embedding", embedding_dim)
        if padding_idx is not None:
            if _as_int(padding_idx) is None:
                raise ValueError(f"Embedding: padding_idx must be an integer, got "
                                 f"{padding_idx!r}")
            padding_idx = _as_int(padding_idx)
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} is out of range for "
                                 f"{num_embeddings} embeddings")
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        if _weight is not None:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight must have shape "
                                 f"{(num_embeddings, embedding_dim)}, got {tuple(_weight.shape)}")
            self.weight = Parameter(_weight)
        else:
            self.weight = Parameter(creation.empty(num_embeddings, embedding_dim, dtype=dtype,
                                                   device=device))
            self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight._data[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True,
                        padding_idx: int | None = None, max_norm: float | None = None,
                        norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> Embedding:
        """An Embedding holding a copy of ``embeddings`` (num, dim), frozen by default."""
        _check_pretrained(cls, embeddings)
        m = cls(embeddings.shape[0], embeddings.shape[1], padding_idx=padding_idx,
                max_norm=max_norm, norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq,
                sparse=sparse, _weight=embeddings.detach().clone())
        m.weight.requires_grad = not freeze
        return m

    def forward(self, ids: Tensor) -> Tensor:
        return F.embedding(ids, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    def extra_repr(self) -> str:
        # PyTorch's order and fields, so a printed model reads as its PyTorch original
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        s += f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return s + self._norm_repr() + (", sparse=True" if self.sparse else "")

    def _norm_repr(self) -> str:
        s = f", max_norm={self.max_norm}" if self.max_norm is not None else ""
        s += f", norm_type={self.norm_type}" if self.norm_type != 2.0 else ""
        return s + (", scale_grad_by_freq=True" if self.scale_grad_by_freq else "")


def _check_pretrained(cls, embeddings) -> None:
    if embeddings.ndim != 2:
        raise ValueError(f"{cls.__name__}.from_pretrained: expected a 2-d tensor, got shape "
                         f"{tuple(embeddings.shape)}")


class EmbeddingBag(Embedding):
    """Sums, means or maxima of bags of embedding rows (``F.embedding_bag``): a (B, N) input
    is B bags; a 1-d input is split into bags by ``offsets`` (a tensor: a captured graph
    takes it as an input). ``scale_grad_by_freq`` goes with sum and mean.

    >>> bag = nn.EmbeddingBag(10, 3, mode="sum")
    >>> bag(tl.tensor([1, 2, 4, 5, 4]), tl.tensor([0, 2])).shape
    (2, 3)
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, mode: str = "mean",
                 padding_idx: int | None = None, include_last_offset: bool = False,
                 dtype=None, device=None, _weight: Tensor | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0,
                 scale_grad_by_freq: bool = False, sparse: bool = False):
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"EmbeddingBag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
        if scale_grad_by_freq and mode == "max":
            raise ValueError("EmbeddingBag: scale_grad_by_freq does not go with mode='max'")
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx,
                         max_norm=max_norm, norm_type=norm_type, dtype=dtype, device=device,
                         _weight=_weight, scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)
        self.mode, self.include_last_offset = mode, bool(include_last_offset)

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True,
                        max_norm: float | None = None, norm_type: float = 2.0,
                        scale_grad_by_freq: bool = False, mode: str = "mean",
                        sparse: bool = False, include_last_offset: bool = False,
                        padding_idx: int | None = None) -> EmbeddingBag:
        """An EmbeddingBag holding a copy of ``embeddings`` (num, dim), frozen by default
        (PyTorch's signature)."""
        _check_pretrained(cls, embeddings)
        m = cls(embeddings.shape[0], embeddings.shape[1], mode=mode, padding_idx=padding_idx,
                include_last_offset=include_last_offset, max_norm=max_norm,
                norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq, sparse=sparse,
                _weight=embeddings.detach().clone())
        m.weight.requires_grad = not freeze
        return m

    def forward(self, input: Tensor, offsets=None, per_sample_weights=None) -> Tensor:
        return F.embedding_bag(input, self.weight, offsets, self.mode, per_sample_weights,
                               self.padding_idx, self.include_last_offset, self.max_norm,
                               self.norm_type, self.scale_grad_by_freq)

    def extra_repr(self) -> str:
        # PyTorch's: mode before padding_idx, and no sparse flag
        s = f"{self.num_embeddings}, {self.embedding_dim}{self._norm_repr()}, mode={self.mode!r}"
        return s + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")
