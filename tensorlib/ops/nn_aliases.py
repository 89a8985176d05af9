"""The functional ops PyTorch also exposes at ``torch.*`` (``torch.conv2d``,
``torch.layer_norm``, ``torch.dropout``, ...), bound to ``tl.nn.functional``'s functions
from one table, :data:`TOP_LEVEL`. Where ``torch.<name>``'s signature differs from
``torch.nn.functional.<name>``'s, the entry is an adapter with the ``torch.*`` signature:

- ``dropout``/``alpha_dropout``/``feature_dropout``/``feature_alpha_dropout`` take
  ``(input, p, train)``;
- ``batch_norm``/``instance_norm`` take ``(input, weight, bias, running_mean, running_var,
  training, momentum, eps, cudnn_enabled)``; ``embedding`` takes ``(weight, indices, ...)``;
- losses take ``reduction`` as PyTorch's enum int (0 none, 1 mean, 2 sum) or a string;
- pools default ``stride=[]`` (the kernel size); ``adaptive_max_pool1d`` and
  ``max_pool1d_with_indices`` return ``(values, indices)``.

``threshold``, ``rrelu``, ``channel_shuffle``, ``constant_pad_nd``, ``convolution``,
``rnn_tanh_cell``/``rnn_relu_cell`` and the ``*_`` in-place forms are written here as
composites. The ``tl.nn.functional`` modules are imported when first called (this module
loads before ``tl.nn``).
"""
from __future__ import annotations

import math

import numpy as np

from .._tensor import Tensor
from . import elementwise as E
from ._util import to_tensor

_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}


def _F():
    from ..nn import functional
    return functional


def _reduction(name: str, r) -> str:
    if isinstance(r, str):
        return r
    if isinstance(r, (int, np.integer)) and int(r) in _REDUCTIONS:
        return _REDUCTIONS[int(r)]
    raise ValueError(f"{name}: reduction must be 0 (none), 1 (mean), 2 (sum) or a name, got "
                     f"{r!r}")


def _same(name: str):
    """``torch.<name>``: ``tl.nn.functional.<name>``, same signature."""
    def fn(*args, **kwargs):
        return getattr(_F(), name)(*args, **kwargs)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``torch.{name}``: ``tl.nn.functional.{name}`` (the same arguments)."
    return fn


# --- dropout family: (input, p, train) -----------------------------------------------------
_SELU_ALPHA = 1.7580993408473766        # -scale * alpha of SELU: where alpha dropout drops to


def _dropout_impl(name: str, input, p: float, train: bool, feature: bool, alpha: bool,
                  generator=None) -> Tensor:
    from ..creation import rand
    x = to_tensor(input)
    p = float(p)
    if not 0 <= p <= 1:
        raise ValueError(f"{name}: dropout probability has to be between 0 and 1, but got {p}")
    if x.dtype.kind == "c" and train and 0 < p < 1:
        # no mask is drawn for complex tensors (as PyTorch); eval mode stays the identity
        raise NotImplementedError(
            f"{name}: complex tensors are not supported in training mode (PyTorch refuses "
            "them too); in eval mode (train=False) it is the identity")
    if not train or p == 0 or x.numel() == 0:
        return x
    if feature and x.ndim < 2:
        raise ValueError(f"{name}: feature dropout needs an input of at least 2 dims (N, C, "
                         f"...), got shape {tuple(x.shape)}")
    if p == 1:
        return x * 0.0
    shape = tuple(x.shape[:2]) + (1,) * (x.ndim - 2) if feature else tuple(x.shape)
    keep = (rand(*shape, generator=generator, device=x.device) >= p).astype(x.dtype)
    if not alpha:
        return x * (keep * (1.0 / (1.0 - p)))
    a = 1.0 / math.sqrt((_SELU_ALPHA ** 2 * p + 1) * (1 - p))
    b = (keep - 1.0) * (_SELU_ALPHA * a) + _SELU_ALPHA * a * p
    return x * (keep * a) + b


def dropout(input, p: float, train: bool) -> Tensor:
    """``torch.dropout(input, p, train)``: each element zeroed with probability ``p``, the
    rest scaled by 1 / (1 - p) when ``train``."""
    return _F().dropout(input, p, bool(train))


def alpha_dropout(input, p: float, train: bool) -> Tensor:
    """``torch.alpha_dropout``: dropout for SELU networks (keeps mean and variance)."""
    return _dropout_impl("alpha_dropout", input, p, train, False, True)


def feature_dropout(input, p: float, train: bool) -> Tensor:
    """``torch.feature_dropout``: whole channels (dim 1) zeroed with probability ``p``."""
    return _dropout_impl("feature_dropout", input, p, train, True, False)


def feature_alpha_dropout(input, p: float, train: bool) -> Tensor:
    """``torch.feature_alpha_dropout``: alpha dropout of whole channels."""
    return _dropout_impl("feature_alpha_dropout", input, p, train, True, True)


# --- normalisation and embedding: torch.*'s argument orders ------------------------------
def batch_norm(input, weight, bias, running_mean, running_var, training: bool,
               momentum: float, eps: float, cudnn_enabled: bool = True) -> Tensor:
    """``torch.batch_norm`` (``cudnn_enabled`` is ignored)."""
    from .nn_norm import batch_norm as bn
    return bn(input, running_mean, running_var, weight, bias, bool(training), momentum, eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats: bool,
                  momentum: float, eps: float, cudnn_enabled: bool = True) -> Tensor:
    """``torch.instance_norm`` (``cudnn_enabled`` is ignored)."""
    from .nn_norm import instance_norm as inorm
    return inorm(input, running_mean, running_var, weight, bias, bool(use_input_stats),
                 momentum, eps)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps: float = 1e-5,
               cudnn_enable: bool = True) -> Tensor:
    """``torch.layer_norm`` (``cudnn_enable`` is ignored)."""
    from .nn_norm import layer_norm as ln
    return ln(input, normalized_shape, weight, bias, eps)


def group_norm(input, num_groups: int, weight=None, bias=None, eps: float = 1e-5,
               cudnn_enabled: bool = True) -> Tensor:
    """``torch.group_norm`` (``cudnn_enabled`` is ignored)."""
    from .nn_norm import group_norm as gn
    return gn(input, num_groups, weight, bias, eps)


def embedding(weight, indices, padding_idx: int = -1, scale_grad_by_freq: bool = False,
              sparse: bool = False) -> Tensor:
    """``torch.embedding(weight, indices)``: the rows of ``weight`` (note the order, the
    reverse of ``F.embedding``); ``padding_idx`` -1 is none. ``scale_grad_by_freq`` and
    ``sparse`` are not supported."""
    from .nn_layers import embedding as emb
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse gradients are not "
                                  "supported by tensorlib")
    w = to_tensor(weight)
    pad = None if padding_idx is None or padding_idx == -1 else int(padding_idx)
    return emb(indices, w, padding_idx=pad)


# --- losses: PyTorch's reduction enum -----------------------------------------------------
def kl_div(input, target, reduction=1, *, log_target: bool = False) -> Tensor:
    """``torch.kl_div`` (reduction 1 is the elementwise mean)."""
    from .nn_loss import kl_div as kl
    return kl(input, target, _reduction("kl_div", reduction), log_target)


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None,
                                     reduction=1) -> Tensor:
    """``torch.binary_cross_entropy_with_logits`` (``pos_weight`` before ``reduction``)."""
    from .nn_loss import binary_cross_entropy_with_logits as bce
    return bce(input, target, weight,
               _reduction("binary_cross_entropy_with_logits", reduction), pos_weight)


def cosine_embedding_loss(input1, input2, target, margin: float = 0.0,
                          reduction=1) -> Tensor:
    """``torch.cosine_embedding_loss``."""
    from .nn_loss_margin import cosine_embedding_loss as f
    return f(input1, input2, target, margin, _reduction("cosine_embedding_loss", reduction))


def margin_ranking_loss(input1, input2, target, margin: float = 0.0, reduction=1) -> Tensor:
    """``torch.margin_ranking_loss``."""
    from .nn_loss_margin import margin_ranking_loss as f
    return f(input1, input2, target, margin, _reduction("margin_ranking_loss", reduction))


def hinge_embedding_loss(input, target, margin: float = 1.0, reduction=1) -> Tensor:
    """``torch.hinge_embedding_loss``."""
    from .nn_loss_margin import hinge_embedding_loss as f
    return f(input, target, margin, _reduction("hinge_embedding_loss", reduction))


def poisson_nll_loss(input, target, log_input: bool, full: bool, eps: float,
                     reduction) -> Tensor:
    """``torch.poisson_nll_loss`` (every argument given, as PyTorch's)."""
    from .nn_loss_likelihood import poisson_nll_loss as f
    return f(input, target, log_input, full, eps, _reduction("poisson_nll_loss", reduction))


def triplet_margin_loss(anchor, positive, negative, margin: float = 1.0, p: float = 2,
                        eps: float = 1e-6, swap: bool = False, reduction=1) -> Tensor:
    """``torch.triplet_margin_loss``."""
    from .nn_loss_margin import triplet_margin_loss as f
    return f(anchor, positive, negative, margin, p, eps, swap,
             _reduction("triplet_margin_loss", reduction))


# --- pooling: stride=[] means the kernel size ----------------------------------------------
def _stride(stride):
    if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0):
        return None
    return stride


def max_pool1d(input, kernel_size, stride=(), padding=0, dilation=1,
               ceil_mode: bool = False) -> Tensor:
    """``torch.max_pool1d`` (no indices; see ``max_pool1d_with_indices``)."""
    from .nn_pool import max_pool1d as f
    return f(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool1d_with_indices(input, kernel_size, stride=(), padding=0, dilation=1,
                            ceil_mode: bool = False) -> tuple[Tensor, Tensor]:
    """``torch.max_pool1d_with_indices``: ``(values, indices)``."""
    from .nn_pool import max_pool1d as f
    return f(input, kernel_size, _stride(stride), padding, dilation, ceil_mode,
             return_indices=True)


def max_pool2d(input, kernel_size, stride=(), padding=0, dilation=1,
               ceil_mode: bool = False) -> Tensor:
    """``torch.max_pool2d``."""
    from .nn_pool import max_pool2d as f
    return f(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool3d(input, kernel_size, stride=(), padding=0, dilation=1,
               ceil_mode: bool = False) -> Tensor:
    """``torch.max_pool3d``."""
    from ..nn.pooling3d import max_pool3d as f
    return f(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def avg_pool1d(input, kernel_size, stride=(), padding=0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> Tensor:
    """``torch.avg_pool1d``."""
    from .nn_pool import avg_pool1d as f
    return f(input, kernel_size, _stride(stride), padding, ceil_mode, count_include_pad)


def adaptive_max_pool1d(input, output_size) -> tuple[Tensor, Tensor]:
    """``torch.adaptive_max_pool1d``: ``(values, indices)``, as PyTorch's."""
    from .nn_pool import adaptive_max_pool1d as f
    return f(input, output_size, return_indices=True)


# --- composites ------------------------------------------------------------------------------
def threshold(input, threshold: float, value: float) -> Tensor:
    """``value`` where ``x <= threshold``, else ``x`` (``torch.threshold``; NaN passes)."""
    x = to_tensor(input)
    return E.where(x <= threshold, value, x)


def rrelu(input, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          generator=None) -> Tensor:
    """Randomized leaky ReLU (``torch.rrelu``): negative inputs scaled by a slope drawn
    from U(lower, upper) per element in training, by ``(lower + upper) / 2`` otherwise."""
    from ..creation import uniform
    x = to_tensor(input)
    if not lower <= upper:
        raise ValueError(f"rrelu: lower bound {lower} must not exceed upper bound {upper}")
    if not training:
        return E.where(x > 0, x, x * ((lower + upper) / 2.0))   # slope's gradient at 0
    slope = uniform(float(lower), float(upper), tuple(x.shape), generator=generator,
                    dtype=x.dtype, device=x.device)
    return E.where(x > 0, x, x * slope)


def channel_shuffle(input, groups: int) -> Tensor:
    """Channels (dim 1) regrouped: (N, g * k, ...) read as (N, g, k, ...), transposed to
    (N, k, g, ...) (``torch.channel_shuffle``, ShuffleNet)."""
    x = to_tensor(input)
    if x.ndim < 3:
        raise ValueError(f"channel_shuffle: expects an input of at least 3 dims (N, C, ...), "
                         f"got shape {tuple(x.shape)}")
    if not isinstance(groups, (int, np.integer)) or groups <= 0:
        raise ValueError(f"channel_shuffle: groups must be a positive int, got {groups!r}")
    n, c = x.shape[0], x.shape[1]
    if c % groups:
        raise ValueError(f"channel_shuffle: {c} channels are not divisible by groups "
                         f"{groups}")
    rest = tuple(x.shape[2:])
    y = x.reshape((n, int(groups), c // int(groups)) + rest).swapaxes(1, 2)
    return y.reshape((n, c) + rest)


def constant_pad_nd(input, pad, value: float = 0) -> Tensor:
    """``F.pad(input, pad, value=value)`` (``torch.constant_pad_nd``; negative pads crop)."""
    from .nn_resample import pad as f
    return f(input, list(pad), "constant", value)


def convolution(input, weight, bias, stride, padding, dilation, transposed: bool,
                output_padding, groups: int) -> Tensor:
    """``torch.convolution``: the 1-, 2- or 3-d (transposed) convolution that ``input``'s
    dims call for."""
    from . import nn_conv as C
    x = to_tensor(input)
    nd = x.ndim - 2
    if transposed:
        fns = {1: C.conv_transpose1d, 2: C.conv_transpose2d}
        if nd not in fns:
            raise ValueError(f"convolution: transposed convolution of a {x.ndim}-d input is "
                             "not supported (1-d and 2-d are)")
        return fns[nd](x, weight, bias, stride, padding, output_padding, groups, dilation)
    fns = {1: C.conv1d, 2: C.conv2d, 3: C.conv3d}
    if nd not in fns:
        raise ValueError(f"convolution: expects a 3-, 4- or 5-d input (N, C, ...), got shape "
                         f"{tuple(x.shape)}")
    return fns[nd](x, weight, bias, stride, padding, dilation, groups)


def _rnn_cell(act, input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> Tensor:
    from .linalg import matmul
    h = matmul(to_tensor(input), to_tensor(w_ih).mT) + matmul(to_tensor(hx),
                                                              to_tensor(w_hh).mT)
    if b_ih is not None:
        h = h + b_ih
    if b_hh is not None:
        h = h + b_hh
    return act(h)


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> Tensor:
    """One Elman RNN step, ``tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``
    (``torch.rnn_tanh_cell``)."""
    return _rnn_cell(E.tanh, input, hx, w_ih, w_hh, b_ih, b_hh)


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> Tensor:
    """One Elman RNN step with ReLU (``torch.rnn_relu_cell``)."""
    return _rnn_cell(E.relu, input, hx, w_ih, w_hh, b_ih, b_hh)


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> tuple[Tensor, Tensor]:
    """``torch.lstm_cell(input, (h, c), w_ih, w_hh, b_ih, b_hh)``: ``(h', c')``."""
    from .nn_rnn import lstm_cell as f
    return f(input, tuple(hx), w_ih, w_hh, b_ih, b_hh)


# --- in-place forms ------------------------------------------------------------------------
def _inplace(name: str, fn):
    def method(input, *args, **kwargs):
        from .._tensor_methods import _inplace_fn
        return _inplace_fn(fn, name)(input, *args, **kwargs)
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"In-place ``torch.{name[:-1]}`` (``torch.{name}``)."
    return method


def _selu(x):
    return _F().selu(x)


def _celu(x, alpha: float = 1.0):
    return _F().celu(x, alpha)


def _relu(x):
    return E.relu(x)


#: name -> function: the ``torch.*`` functional ops, exported as ``tl.<name>``
TOP_LEVEL = {
    **{n: _same(n) for n in (
        "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "pixel_shuffle",
        "pixel_unshuffle", "selu", "celu", "prelu", "cosine_similarity", "pairwise_distance",
        "bilinear", "adaptive_avg_pool1d", "rms_norm", "gru_cell")},
    "dropout": dropout, "alpha_dropout": alpha_dropout, "feature_dropout": feature_dropout,
    "feature_alpha_dropout": feature_alpha_dropout, "batch_norm": batch_norm,
    "instance_norm": instance_norm, "layer_norm": layer_norm, "group_norm": group_norm,
    "embedding": embedding, "kl_div": kl_div,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "cosine_embedding_loss": cosine_embedding_loss, "margin_ranking_loss": margin_ranking_loss,
    "hinge_embedding_loss": hinge_embedding_loss, "poisson_nll_loss": poisson_nll_loss,
    "triplet_margin_loss": triplet_margin_loss, "max_pool1d": max_pool1d,
    "max_pool1d_with_indices": max_pool1d_with_indices, "max_pool2d": max_pool2d,
    "max_pool3d": max_pool3d,
    "avg_pool1d": avg_pool1d, "adaptive_max_pool1d": adaptive_max_pool1d,
    "threshold": threshold, "rrelu": rrelu, "channel_shuffle": channel_shuffle,
    "native_channel_shuffle": channel_shuffle, "constant_pad_nd": constant_pad_nd,
    "convolution": convolution, "rnn_tanh_cell": rnn_tanh_cell, "rnn_relu_cell": rnn_relu_cell,
    "lstm_cell": lstm_cell,
}
TOP_LEVEL.update({
    "relu_": _inplace("relu_", _relu), "selu_": _inplace("selu_", _selu),
    "celu_": _inplace("celu_", _celu), "rrelu_": _inplace("rrelu_", rrelu),
    "threshold_": _inplace("threshold_", threshold),
    "dropout_": _inplace("dropout_", dropout), "alpha_dropout_": _inplace("alpha_dropout_",
                                                                         alpha_dropout),
    "feature_dropout_": _inplace("feature_dropout_", feature_dropout),
    "feature_alpha_dropout_": _inplace("feature_alpha_dropout_", feature_alpha_dropout),
})
