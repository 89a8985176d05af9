"""Loss modules: thin Module wrappers over the functional losses."""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from ..ops.nn_loss import legacy_reduction
from . import functional as F
from .module import Module


class _Loss(Module):
    """Base of the losses, as ``torch.nn.modules.loss._Loss``: the deprecated
    ``size_average`` / ``reduce`` flags, when either is given, replace ``reduction``
    (PyTorch's rule and warning, see ``F.mse_loss``)."""

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean"):
        super().__init__()
        for name, flag in (("size_average", size_average), ("reduce", reduce)):
            if flag is not None and not isinstance(flag, (bool, int, np.bool_)):
                # e.g. nn.MSELoss('sum'): PyTorch's second-to-last positional slot
                raise TypeError(f"{type(self).__name__}: {name} must be a bool or None, got "
                                f"{flag!r}; pass the reduction by keyword, e.g. "
                                f"{type(self).__name__}(reduction='sum')")
        reduction = legacy_reduction(size_average, reduce, reduction)
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or "
                             f"'none', got {reduction!r}")
        self.reduction = reduction

    # no extra_repr: PyTorch prints losses bare (MSELoss(), whatever the reduction)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of raw logits against a target, as ``torch.nn.CrossEntropyLoss``
    (log_softmax over dim 1, then the negative log-likelihood: do not softmax the input).

    Shapes: ``input`` is (N, C) scores for C classes, (N, C, d1, ...) for per-position
    classes (e.g. segmentation), or (C,) for one sample. ``target`` is either

    - class indices: an integer tensor (int64, e.g. ``labels.long()``) of shape (N,) /
      (N, d1, ...) / () with values in [0, C), never one-hot; or
    - class probabilities: a float tensor of the input's shape (soft or one-hot labels).

    Args:
        weight: a (C,) tensor rescaling each class's loss (for imbalanced classes); with
            'mean' and index targets the mean is weighted by the targets' weights.
        ignore_index: a target index whose positions add nothing to the loss or the
            mean (padding tokens); index targets only. Default -100.
        reduction: 'mean' (default), 'sum' or 'none' (one loss per sample/position).
        label_smoothing: in [0, 1]; the target becomes ``(1 - eps) * target + eps / C``.

    >>> loss_fn = nn.CrossEntropyLoss()
    >>> logits = tl.tensor([[2.0, 0.5, -1.0], [0.1, 1.5, 0.3]])
    >>> loss_fn(logits, tl.tensor([0, 1]))                     # class indices
    tensor(0.3391)
    >>> loss_fn(logits, tl.tensor([[1., 0., 0.], [0., 1., 0.]]))   # probabilities
    tensor(0.3391)
    >>> nn.CrossEntropyLoss(ignore_index=-100)(logits, tl.tensor([0, -100]))
    tensor(0.2413)
    >>> nn.CrossEntropyLoss(label_smoothing=0.1)(logits, tl.tensor([0, 1]))
    tensor(0.4574)
    """

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None,
                 ignore_index: int = -100, reduce: bool | None = None,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        if weight is not None and (getattr(weight, "ndim", 1) != 1
                                   or isinstance(size_average, Tensor)
                                   or not isinstance(ignore_index, (int, np.integer))):
            # nn.CrossEntropyLoss(logits, target): the loss was built, not called
            raise TypeError("CrossEntropyLoss: weight must be a 1-d tensor of class weights "
                            "and ignore_index an int; to compute the loss, build the module "
                            "first and call it: nn.CrossEntropyLoss()(logits, target)")
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (N, C, ...) at the target class ids."""

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None,
                 ignore_index: int = -100, reduce: bool | None = None,
                 reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class MSELoss(_Loss):
    """Squared error ``(input - target) ** 2``, reduced by ``reduction``: 'mean' (default),
    'sum' or 'none', as ``torch.nn.MSELoss``. ``target`` should have the input's shape (a
    broadcasting pair such as (N, 1) and (N,) warns).

    >>> nn.MSELoss()(tl.tensor([1., 2.]), tl.tensor([0., 4.]))
    tensor(2.5000)
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """Absolute error ``|input - target|`` (``torch.nn.L1Loss``), reduced by
    ``reduction``: "mean" (default), "sum" or "none". The gradient at ``input == target``
    is 0, as PyTorch's.

    >>> nn.L1Loss()(tl.tensor([1.0, 2.0]), tl.tensor([0.0, 4.0]))
    tensor(1.5000)
    """
    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(input, target, self.reduction)


class HuberLoss(_Loss):
    """With d = input - target: ``0.5 d**2`` where ``|d| < delta``, else
    ``delta * (|d| - delta / 2)``."""
    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.huber_loss(input, target, self.reduction, self.delta)


class SmoothL1Loss(_Loss):
    """``0.5 d**2 / beta`` where ``|d| < beta``, else ``|d| - beta / 2`` (HuberLoss / beta;
    L1Loss when beta is 0)."""
    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean", beta: float = 1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)


class KLDivLoss(_Loss):
    """KL divergence of ``target`` from log-probabilities ``input`` (see ``F.kl_div``)."""

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean", log_target: bool = False):
        super().__init__(size_average, reduce,
                         "sum" if reduction == "batchmean" else reduction)   # (validates it)
        if size_average is None and reduce is None:
            self.reduction = reduction
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.kl_div(input, target, self.reduction, self.log_target)


class BCELoss(_Loss):
    """Binary cross-entropy between probabilities and targets in [0, 1]
    (``torch.nn.BCELoss``): ``-w (y log p + (1 - y) log(1 - p))``, the logs clamped at -100
    as PyTorch's; see :func:`tl.nn.functional.binary_cross_entropy` for the gradients.
    ``weight`` rescales each element; ``reduction`` is "mean" (default), "sum" or "none".
    For logits, :class:`BCEWithLogitsLoss` is more stable.

    >>> nn.BCELoss()(tl.tensor([0.9, 0.2]), tl.tensor([1.0, 0.0]))
    tensor(0.1643)
    """

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits (``torch.nn.BCEWithLogitsLoss``): ``BCELoss`` of
    ``sigmoid(input)`` in one numerically stable expression. ``weight`` rescales each
    element, ``pos_weight`` (broadcast over the classes, last dim) the positive term;
    ``reduction`` is "mean" (default), "sum" or "none".

    >>> nn.BCEWithLogitsLoss()(tl.tensor([2.0, -1.0]), tl.tensor([1.0, 0.0]))
    tensor(0.2201)
    """

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean",
                 pos_weight: Tensor | None = None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        if self.pos_weight is None:
            return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                      self.reduction)
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction,
                                                  pos_weight=self.pos_weight)


class MarginRankingLoss(_Loss):
    """``max(0, -y * (x1 - x2) + margin)``."""

    def __init__(self, margin: float = 0.0, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        return F.margin_ranking_loss(input1, input2, target, self.margin, self.reduction)


class HingeEmbeddingLoss(_Loss):
    """``x`` for y = 1, ``max(0, margin - x)`` for y = -1."""

    def __init__(self, margin: float = 1.0, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.hinge_embedding_loss(input, target, self.margin, self.reduction)


class SoftMarginLoss(_Loss):
    """``log(1 + exp(-y x))``."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.soft_margin_loss(input, target, self.reduction)


class CosineEmbeddingLoss(_Loss):
    """``1 - cos`` for y = 1, ``max(0, cos - margin)`` for y = -1."""

    def __init__(self, margin: float = 0.0, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input1: Tensor, input2: Tensor, target: Tensor) -> Tensor:
        return F.cosine_embedding_loss(input1, input2, target, self.margin, self.reduction)


class TripletMarginLoss(_Loss):
    """``max(0, d(a, p) - d(a, n) + margin)``."""

    def __init__(self, margin: float = 1.0, p: float = 2.0, eps: float = 1e-6,
                 swap: bool = False, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return F.triplet_margin_loss(anchor, positive, negative, self.margin, self.p, self.eps,
                                     self.swap, self.reduction)


class GaussianNLLLoss(_Loss):
    """Gaussian negative log-likelihood of ``target`` under mean ``input`` and ``var``."""

    def __init__(self, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
        super().__init__(reduction=reduction)
        self.full, self.eps = full, eps

    def forward(self, input: Tensor, target: Tensor, var: Tensor) -> Tensor:
        return F.gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)


class PoissonNLLLoss(_Loss):
    """Poisson negative log-likelihood of counts ``target``."""

    def __init__(self, log_input: bool = True, full: bool = False,
                 size_average: bool | None = None, eps: float = 1e-8,
                 reduce: bool | None = None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.poisson_nll_loss(input, target, self.log_input, self.full, self.eps,
                                  self.reduction)


class MultiLabelSoftMarginLoss(_Loss):
    """One-vs-all logistic loss over C labels, averaged over the labels
    (``torch.nn.MultiLabelSoftMarginLoss``).

    >>> nn.MultiLabelSoftMarginLoss()(tl.randn(4, 3), tl.tensor([[1.0, 0, 1]] * 4))
    """

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None,
                 reduce: bool | None = None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.multilabel_soft_margin_loss(input, target, self.weight, self.reduction)


class MultiMarginLoss(_Loss):
    """Multi-class hinge loss ``sum_{i != y} max(0, margin - x[y] + x[i])**p / C``
    (``torch.nn.MultiMarginLoss``; p is 1 or 2).

    >>> nn.MultiMarginLoss()(tl.tensor([[0.1, 0.2, 0.4, 0.8]]), tl.tensor([3]))   # 0.325
    """

    def __init__(self, p: int = 1, margin: float = 1.0, weight: Tensor | None = None,
                 size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        if p not in (1, 2):
            raise ValueError(f"MultiMarginLoss: only p == 1 and p == 2 are supported, got {p}")
        self.p, self.margin = p, margin
        self.register_buffer("weight", weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.multi_margin_loss(input, target, self.p, self.margin, self.weight,
                                   self.reduction)



class CTCLoss(_Loss):
    """Connectionist temporal classification loss of log-probabilities (T, N, C) against
    unaligned label sequences (``torch.nn.CTCLoss``; see ``F.ctc_loss``).

    >>> ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    >>> lp = tl.randn(50, 2, 20).log_softmax(2)
    >>> loss = ctc(lp, tl.tensor([[1, 2, 3], [4, 5, 0]]), [50, 40], [3, 2])
    """

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False):
        super().__init__(reduction=reduction)
        self.blank, self.zero_infinity = blank, zero_infinity

    def forward(self, log_probs: Tensor, targets: Tensor, input_lengths,
                target_lengths) -> Tensor:
        return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank,
                          self.reduction, self.zero_infinity)


class MultiLabelMarginLoss(_Loss):
    """Multi-class multi-label hinge loss over targets listed up to the first -1
    (``torch.nn.MultiLabelMarginLoss``; see ``F.multilabel_margin_loss``).

    >>> nn.MultiLabelMarginLoss()(tl.tensor([[0.1, 0.2, 0.4, 0.8]]), tl.tensor([[3, 0, -1, 1]]))
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.multilabel_margin_loss(input, target, self.reduction)


class TripletMarginWithDistanceLoss(_Loss):
    """``max(0, d(a, p) - d(a, n) + margin)`` with a custom ``distance_function``
    (default: pairwise distance), as ``torch.nn.TripletMarginWithDistanceLoss``; ``margin``
    must be positive.

    >>> loss = nn.TripletMarginWithDistanceLoss(distance_function=nn.PairwiseDistance())
    """

    def __init__(self, *, distance_function=None, margin: float = 1.0, swap: bool = False,
                 reduction: str = "mean"):
        super().__init__(reduction=reduction)
        if not margin > 0:
            raise ValueError(f"TripletMarginWithDistanceLoss: margin must be greater than 0, "
                             f"got {margin}")
        if distance_function is None:
            from .distance import PairwiseDistance
            distance_function = PairwiseDistance()
        self.distance_function = distance_function
        self.margin, self.swap = margin, swap

    def forward(self, anchor: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
        return F.triplet_margin_with_distance_loss(
            anchor, positive, negative, distance_function=self.distance_function,
            margin=self.margin, swap=self.swap, reduction=self.reduction)

