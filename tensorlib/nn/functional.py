"""Stateless neural-network functions (``import tensorlib.nn.functional as F``).

Each is a registry op or a short composite of registry ops (see tensorlib/ops/nn_*.py).
The functions with float32/float64 kernels also take float16 tensors, as PyTorch's CPU
ops do: they compute in float32 and return float16 (``half_via_float32``).
"""
from __future__ import annotations

import numpy as np

from .._tensor import Tensor
from ..ops.elementwise import elu, gelu, leaky_relu, relu, sigmoid, silu, softplus, tanh
from ..ops.indexing import one_hot
from ..ops.nn_act import (celu, glu, gumbel_softmax, hardsigmoid, hardswish, hardtanh, log_softmax,
                          logsigmoid, mish, prelu, relu6, selu, softmax, softsign)
from ..ops.nn_attention import scaled_dot_product_attention
from ..ops.nn_mha import multi_head_attention_forward
from ..ops.nn_conv import (conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d,
                           conv_transpose3d)
from ..ops.nn_distance import cosine_similarity, normalize, pairwise_distance
from ..ops.nn_grid import affine_grid, grid_sample
from ..ops.nn_layers import (bilinear, dropout, dropout1d, dropout2d, dropout3d, embedding,
                             embedding_bag, linear)
from ..ops.nn_loss import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,
                           huber_loss, kl_div, l1_loss, mse_loss, nll_loss, smooth_l1_loss)
from ..ops.nn_loss_ctc import ctc_loss  # noqa: F401  (public: F.ctc_loss)
from ..ops.nn_loss_likelihood import gaussian_nll_loss, poisson_nll_loss
from ..ops.nn_loss_margin import (cosine_embedding_loss, hinge_embedding_loss, margin_ranking_loss,
                                  multi_margin_loss, multilabel_margin_loss,
                                  multilabel_soft_margin_loss, soft_margin_loss,
                                  triplet_margin_loss, triplet_margin_with_distance_loss)
from ..ops.nn_norm import batch_norm, group_norm, instance_norm, layer_norm, rms_norm
from ..ops.nn_pool import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d,
                           adaptive_max_pool2d, avg_pool1d, avg_pool2d,
                           max_pool1d, max_pool2d)
from ..ops.nn_unfold import fold, unfold
from ..ops.nn_resample import interpolate, pad, pixel_shuffle, pixel_unshuffle
from ..ops.nn_util import half_activation
from ..ops.nn_rnn import gru_cell, lstm_cell

__all__ = [
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "affine_grid", "avg_pool1d", "avg_pool2d", "batch_norm",
    "bilinear", "binary_cross_entropy", "binary_cross_entropy_with_logits", "celu", "conv1d",
    "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "cosine_embedding_loss",
    "cosine_similarity", "cross_entropy", "dropout",
    "dropout1d", "dropout2d", "dropout3d", "elu", "embedding", "embedding_bag", "fold",
    "gaussian_nll_loss",
    "gelu", "glu", "grid_sample", "group_norm", "gru_cell", "gumbel_softmax", "hardsigmoid",
    "hardswish",
    "hardtanh", "hinge_embedding_loss", "huber_loss", "instance_norm", "interpolate", "kl_div",
    "l1_loss", "layer_norm", "leaky_relu", "linear", "log_softmax", "logsigmoid", "lstm_cell",
    "margin_ranking_loss", "max_pool1d", "max_pool2d", "mish", "mse_loss",
    "multi_head_attention_forward", "multi_margin_loss",
    "multilabel_margin_loss", "multilabel_soft_margin_loss", "nll_loss", "normalize",
    "one_hot", "pad", "pairwise_distance", "pixel_shuffle", "pixel_unshuffle", "poisson_nll_loss",
    "prelu", "relu", "relu6", "rms_norm", "scaled_dot_product_attention", "selu", "sigmoid",
    "silu",
    "smooth_l1_loss", "soft_margin_loss", "softmax", "softplus", "softsign", "tanh",
    "triplet_margin_loss", "triplet_margin_with_distance_loss", "unfold",
]


def _accept_half() -> None:
    """Rebind this module's functions whose kernels take only float32/float64 so that they
    accept float16 (computed in float32). The elementwise activations (relu, tanh, ...) run in
    float16 as they are."""
    from ..ops.nn_util import half_via_float32
    g = globals()
    for name in __all__:
        if getattr(g[name], "__module__", "").startswith("tensorlib.ops.nn_"):
            g[name] = half_via_float32(g[name])


_accept_half()


# --- PyTorch spellings over the functions above ---------------------------------------------
# (defined after _accept_half, so they wrap the float16-accepting forms)

# float16 activations compute in float32 and round once (as PyTorch's CPU kernels; F16C casts)
_relu, _relu6, _elu, _celu, _selu, _leaky_relu = (
    half_activation(f) for f in (relu, relu6, elu, celu, selu, leaky_relu))
_hardtanh, _hardsigmoid, _hardswish, _silu, _mish = (
    half_activation(f) for f in (hardtanh, hardsigmoid, hardswish, silu, mish))
gelu, sigmoid, softplus, tanh = (half_activation(f) for f in (gelu, sigmoid, softplus, tanh))
_dropout, _dropout1d, _dropout2d, _dropout3d = dropout, dropout1d, dropout2d, dropout3d


def _act(fn, name: str, x, inplace: bool, *args) -> Tensor:
    """``fn(x, *args)``; with ``inplace`` (PyTorch's ``inplace=True``) the result is written
    into ``x``, which is returned: its version counter is bumped and, under autograd, the op
    becomes its history (the in-place rules of ``x.relu_()``: a leaf that requires grad is
    refused, and a tensor saved for a backward pass then fails that backward)."""
    if not inplace:
        return fn(x, *args)
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: inplace=True needs a tensor input, got {type(x).__name__}")
    from .._tensor_methods import _inplace_fn
    return _inplace_fn(fn, f"{name}_")(x, *args)


def relu(input, inplace: bool = False) -> Tensor:
    """``max(x, 0)``; ``inplace=True`` writes the result into ``input`` and returns it."""
    return _act(_relu, "relu", input, inplace)


def relu6(input, inplace: bool = False) -> Tensor:
    """``min(max(x, 0), 6)`` (``torch.nn.functional.relu6``); ``inplace`` as relu's.

    As PyTorch's: the gradient is 1 strictly inside (0, 6) and 0 at 0, at 6 and beyond;
    NaN stays NaN with gradient 0 (PyTorch's vectorised CPU kernel's; never NaN).

    >>> F.relu6(tl.tensor([-1.0, 3.0, 8.0]))
    tensor([0., 3., 6.])
    """
    return _act(_relu6, "relu6", input, inplace)


def elu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` for x > 0, else ``alpha * (exp(x) - 1)``; ``inplace`` as relu's."""
    return _act(_elu, "elu", input, inplace, alpha)


def celu(input, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``; ``inplace`` as relu's."""
    return _act(_celu, "celu", input, inplace, alpha)


def selu(input, inplace: bool = False) -> Tensor:
    """Self-normalising ``scale * elu(x, alpha)``; ``inplace`` as relu's."""
    return _act(_selu, "selu", input, inplace)


def leaky_relu(input, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x`` for x > 0, else ``negative_slope * x``; ``inplace`` as relu's."""
    if inplace and _direct_inplace(input, "leaky_relu_"):
        from ..ops.elementwise import leaky_relu_into
        leaky_relu_into(input._data, float(negative_slope))
        input._version[0] += 1
        return input
    return _act(_leaky_relu, "leaky_relu", input, inplace, negative_slope)


def _direct_inplace(x, name: str) -> bool:
    """Whether an in-place activation may write ``x``'s NumPy array directly: a float32/64
    CPU tensor that neither autograd nor a capture would record (then the general path's
    out-of-place result and copy back only cost time). Raises the in-place errors."""
    from .._tensor_methods import _check_leaf
    from ..autograd.mode import state
    if not isinstance(x, Tensor):
        return False
    _check_leaf(x, name)
    return (state.tracer is None and state.fwd_ad is None and not (state.grad_enabled and x._rg)
            and isinstance(x._data, np.ndarray) and x._data.dtype in (np.float32, np.float64))


def hardtanh(input, min_val: float = -1.0, max_val: float = 1.0,
             inplace: bool = False) -> Tensor:
    """``x`` clipped to [min_val, max_val] (``torch.nn.functional.hardtanh``);
    ``inplace=True`` writes the result into ``input`` and returns it.

    As PyTorch's: the gradient is 1 strictly inside (min_val, max_val) and 0 at the kinks
    and beyond them (+-inf included); NaN stays NaN with gradient 0 (PyTorch's vectorised
    CPU kernel's; its scalar tail passes the gradient through; never NaN).

    >>> F.hardtanh(tl.tensor([-2.0, 0.5, 2.0]))
    tensor([-1.0000,  0.5000,  1.0000])
    >>> F.hardtanh(tl.tensor([-2.0, 0.5, 2.0]), min_val=0.0, max_val=1.0)
    tensor([0.0000, 0.5000, 1.0000])
    """
    return _act(_hardtanh, "hardtanh", input, inplace, min_val, max_val)


def hardsigmoid(input, inplace: bool = False) -> Tensor:
    """``relu6(x + 3) / 6``; ``inplace`` as relu's."""
    return _act(_hardsigmoid, "hardsigmoid", input, inplace)


def hardswish(input, inplace: bool = False) -> Tensor:
    """``x * hardsigmoid(x)`` (MobileNetV3); ``inplace`` as relu's."""
    return _act(_hardswish, "hardswish", input, inplace)


def silu(input, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)``; ``inplace`` as relu's."""
    return _act(_silu, "silu", input, inplace)


def mish(input, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))``; ``inplace`` as relu's."""
    return _act(_mish, "mish", input, inplace)


def _dropout_act(fn, name, input, p, training, inplace, generator):
    if not isinstance(inplace, (bool, np.bool_, int)):
        # a generator in the fourth place (where tensorlib had it before torch's inplace)
        if generator is not None:
            raise TypeError(f"{name}: generator given twice (the fourth positional argument "
                            "is inplace, as PyTorch's; pass generator= by keyword)")
        inplace, generator = False, inplace
    if inplace and not training:    # the identity: nothing to write (PyTorch returns input)
        return input
    return _act(lambda x: fn(x, p, training, generator), name, input, inplace)


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False, *,
            generator=None) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p) in
    training; the identity otherwise. ``inplace=True`` writes into ``input``. PyTorch's
    signature (``F.dropout(x, p, training, inplace)``, as ``nn.Dropout.forward`` calls it);
    ``generator=`` is a keyword."""
    return _dropout_act(_dropout, "dropout", input, p, training, inplace, generator)


def dropout1d(input, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              generator=None) -> Tensor:
    """Zero whole channels of (N, C, L) in training; ``inplace`` as dropout's."""
    return _dropout_act(_dropout1d, "dropout1d", input, p, training, inplace, generator)


def dropout2d(input, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              generator=None) -> Tensor:
    """Zero whole channels of (N, C, H, W) in training; ``inplace`` as dropout's."""
    return _dropout_act(_dropout2d, "dropout2d", input, p, training, inplace, generator)


def dropout3d(input, p: float = 0.5, training: bool = True, inplace: bool = False, *,
              generator=None) -> Tensor:
    """Zero whole channels of (N, C, D, H, W) or (C, D, H, W) in training; ``inplace`` as
    dropout's. Another rank warns and drops slices along dim 0, as PyTorch's."""
    return _dropout_act(_dropout3d, "dropout3d", input, p, training, inplace, generator)


def softmin(input, dim: int | None = None, dtype=None) -> Tensor:
    """``softmax(-input)`` along ``dim`` (PyTorch's; without ``dim``, its rule for layers
    built without one: 0 for 0-, 1- and 3-d input, else 1)."""
    from ..ops._util import to_tensor
    from .modules_extra import _legacy_softmax_dim
    x = to_tensor(input)
    return softmax(-x, dim=_legacy_softmax_dim(x.ndim) if dim is None else dim, dtype=dtype)


__all__.append("softmin")     # (after _accept_half: composed of functions it wrapped)

from ..ops.torch_linalg import pdist  # noqa: E402,F401  (F.pdist, as torch.nn.functional.pdist)

__all__.append("pdist")


# --- torch.nn.functional names added in round 14 (composites of the ops above) --------------
from ..ops import nn_aliases as _NA  # noqa: E402
from ..ops.elementwise import where as _where  # noqa: E402
from ..ops.torch_math import hardshrink as _hardshrink  # noqa: E402
from .pooling3d import (adaptive_avg_pool3d, adaptive_max_pool3d, avg_pool3d,  # noqa: E402
                        lp_pool1d, lp_pool2d, lp_pool3d, max_pool1d_with_indices,
                        max_pool2d_with_indices, max_pool3d, max_pool3d_with_indices,
                        max_unpool1d, max_unpool2d, max_unpool3d)
from .pooling3d import __all__ as _POOL3D  # noqa: E402


def _pool3d_accept_half() -> None:
    """The 3-d pools take float16 as the 2-d ones do (computed in float32)."""
    from ..ops.nn_util import half_via_float32
    g = globals()
    for name in _POOL3D:
        g[name] = half_via_float32(g[name])


_pool3d_accept_half()

def hardshrink(input, lambd: float = 0.5) -> Tensor:
    """``x`` where ``|x| > lambd``, else 0 (``torch.nn.functional.hardshrink``).

    >>> F.hardshrink(tl.tensor([-1.0, 0.2, 0.7])).tolist()
    [-1.0, 0.0, 0.699999988079071]
    """
    return _hardshrink(input, lambd)


def softshrink(input, lambd: float = 0.5) -> Tensor:
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0
    (``torch.nn.functional.softshrink``; ``lambd`` must be non-negative).

    >>> F.softshrink(tl.tensor([-1.0, 0.2, 0.75])).tolist()
    [-0.5, 0.0, 0.25]
    """
    from ..ops._util import to_tensor
    if not lambd >= 0:
        raise ValueError(f"softshrink: lambd must be greater or equal to 0, got {lambd}")
    x = to_tensor(input)
    # NaN fails every test: it takes the x branch (value NaN, gradient 1, as PyTorch's)
    band = _where(x.abs() <= lambd, x * 0.0, x)
    return _where(x > lambd, x - lambd, _where(x < -lambd, x + lambd, band))


def tanhshrink(input) -> Tensor:
    """``x - tanh(x)`` (``torch.nn.functional.tanhshrink``)."""
    from ..ops._util import to_tensor
    x = to_tensor(input)
    return x - tanh(x)


def threshold(input, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``value`` where ``x <= threshold``, else ``x`` (``torch.nn.functional.threshold``; NaN
    stays NaN); ``inplace`` as relu's.

    >>> F.threshold(tl.tensor([0.5, 2.0]), 1.0, -3.0).tolist()
    [-3.0, 2.0]
    """
    # the test is x <= threshold, not x > threshold, so that NaN stays NaN (as PyTorch)
    return _act(lambda x: _where(x <= threshold, value, x), "threshold", input, inplace)


def rrelu(input, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False,
          inplace: bool = False) -> Tensor:
    """Randomized leaky ReLU (``torch.nn.functional.rrelu``): in training each negative
    element is scaled by its own slope drawn from U(lower, upper); otherwise by the mean
    slope ``(lower + upper) / 2``. ``inplace`` as relu's."""
    return _act(lambda x: _NA.rrelu(x, lower, upper, bool(training)), "rrelu", input, inplace)


def alpha_dropout(input, p: float = 0.5, training: bool = False,
                  inplace: bool = False) -> Tensor:
    """Dropout for SELU networks (``torch.nn.functional.alpha_dropout``): dropped elements
    go to SELU's negative saturation and an affine map keeps mean 0 and variance 1; the
    identity unless ``training``. ``inplace`` as dropout's."""
    if inplace and not training:
        return input
    return _act(lambda x: _NA.alpha_dropout(x, p, bool(training)), "alpha_dropout", input,
                inplace)


def feature_alpha_dropout(input, p: float = 0.5, training: bool = False,
                          inplace: bool = False) -> Tensor:
    """Alpha dropout of whole channels (dim 1) of (N, C, ...) input
    (``torch.nn.functional.feature_alpha_dropout``)."""
    if inplace and not training:
        return input
    return _act(lambda x: _NA.feature_alpha_dropout(x, p, bool(training)),
                "feature_alpha_dropout", input, inplace)


def local_response_norm(input, size: int, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 1.0) -> Tensor:
    """``x / (k + alpha * mean of x**2 over `size` neighbouring channels) ** beta`` over
    (N, C, ...) input (``torch.nn.functional.local_response_norm``, AlexNet's; the window
    runs from ``c - size//2`` to ``c + (size-1)//2``, zero-padded)."""
    from ..ops._util import to_tensor
    from ..ops.shape import pad as _pad_w
    x = to_tensor(input)
    if x.ndim < 3:
        raise ValueError(f"local_response_norm: expects 3-D or higher input (N, C, ...), got "
                         f"shape {tuple(x.shape)}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive int, got {size!r}")
    if x.numel() == 0:
        return x
    c = x.shape[1]
    widths = [(0, 0)] * x.ndim
    widths[1] = (size // 2, (size - 1) // 2)
    sq = _pad_w(x * x, widths)
    win = sq[:, 0:c]
    for i in range(1, size):
        win = win + sq[:, i:i + c]
    return x / (win * (alpha / size) + k) ** beta


__all__ += ["adaptive_avg_pool3d", "adaptive_max_pool3d", "alpha_dropout", "avg_pool3d",
            "feature_alpha_dropout", "hardshrink", "local_response_norm", "lp_pool1d",
            "lp_pool2d", "lp_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
            "max_pool3d", "max_pool3d_with_indices", "max_unpool1d", "max_unpool2d",
            "max_unpool3d", "rrelu", "softshrink", "tanhshrink", "threshold"]


# --- PyTorch's deprecated aliases of interpolate (older GAN / pix2pix code calls them) -----
def _warn_upsample(name: str) -> None:
    import warnings
    warnings.warn(f"`nn.functional.{name}` is deprecated. Use `nn.functional.interpolate` "
                  "instead.", UserWarning, stacklevel=3)


def upsample(input: Tensor, size=None, scale_factor=None, mode: str = "nearest",
             align_corners: bool | None = None) -> Tensor:
    """Deprecated alias of :func:`interpolate` (``torch.nn.functional.upsample``): the same
    resize, with a UserWarning as PyTorch's."""
    _warn_upsample("upsample")
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Deprecated: ``interpolate(input, size, scale_factor, mode='nearest')``, with a
    UserWarning (``torch.nn.functional.upsample_nearest``)."""
    _warn_upsample("upsample_nearest")
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size=None, scale_factor=None) -> Tensor:
    """Deprecated: ``interpolate(input, size, scale_factor, mode='bilinear',
    align_corners=True)`` (note align_corners=True, unlike interpolate's default), with a
    UserWarning (``torch.nn.functional.upsample_bilinear``); 4-D input."""
    _warn_upsample("upsample_bilinear")
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


__all__ += ["upsample", "upsample_bilinear", "upsample_nearest"]


# --- PyTorch's in-place activations and the rest of its names (round 18) --------------------
def relu_(input: Tensor) -> Tensor:
    """In-place :func:`relu`: ``input`` overwritten and returned (``F.relu_``; refused on a
    leaf that requires grad, as PyTorch)."""
    return relu(input, inplace=True)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """In-place :func:`elu` (``F.elu_``)."""
    return elu(input, alpha, inplace=True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """In-place :func:`celu` (``F.celu_``)."""
    return celu(input, alpha, inplace=True)


def selu_(input: Tensor) -> Tensor:
    """In-place :func:`selu` (``F.selu_``)."""
    return selu(input, inplace=True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """In-place :func:`leaky_relu` (``F.leaky_relu_``)."""
    return leaky_relu(input, negative_slope, inplace=True)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """In-place :func:`hardtanh` (``F.hardtanh_``)."""
    return hardtanh(input, min_val, max_val, inplace=True)


_threshold = threshold      # threshold_'s argument of that name (PyTorch's) hides it


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    """In-place :func:`threshold` (``F.threshold_``)."""
    return _threshold(input, threshold, value, inplace=True)


def rrelu_(input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3,
           training: bool = False) -> Tensor:
    """In-place :func:`rrelu` (``F.rrelu_``)."""
    return rrelu(input, lower, upper, training, inplace=True)


def adaptive_max_pool1d_with_indices(input, output_size, return_indices: bool = False):
    """``adaptive_max_pool1d(..., return_indices=True)``: ``(values, indices)`` whatever
    ``return_indices`` says (as PyTorch's)."""
    return adaptive_max_pool1d(input, output_size, True)


def adaptive_max_pool2d_with_indices(input, output_size, return_indices: bool = False):
    """``adaptive_max_pool2d(..., return_indices=True)``: ``(values, indices)``."""
    return adaptive_max_pool2d(input, output_size, True)


def adaptive_max_pool3d_with_indices(input, output_size, return_indices: bool = False):
    """``adaptive_max_pool3d(..., return_indices=True)``: ``(values, indices)``."""
    return adaptive_max_pool3d(input, output_size, True)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """(N, g * k, ...) channels read as (N, g, k, ...) and transposed to (N, k, g, ...)
    (``torch.nn.functional.channel_shuffle``, ShuffleNet's; as ``nn.ChannelShuffle``)."""
    return _NA.channel_shuffle(input, groups)


__all__ += ["adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices",
            "adaptive_max_pool3d_with_indices", "celu_", "channel_shuffle", "elu_",
            "hardtanh_", "leaky_relu_", "relu_", "rrelu_", "selu_", "threshold_"]

from .pooling_fractional import (fractional_max_pool2d,  # noqa: E402,F401
                                 fractional_max_pool2d_with_indices, fractional_max_pool3d,
                                 fractional_max_pool3d_with_indices)

__all__ += ["fractional_max_pool2d", "fractional_max_pool2d_with_indices",
            "fractional_max_pool3d", "fractional_max_pool3d_with_indices"]
