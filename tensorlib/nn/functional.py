"""Stateless neural-network functions (``import tensorlib.nn.functional as F``).

Each is a registry op or a short composite of registry ops (see tensorlib/ops/nn_*.py).
The functions with float32/float64 kernels also take float16 tensors, as PyTorch's CPU
ops do: they compute in float32 and return float16 (``half_via_float32``).
"""
from __future__ import annotations

from ..ops.elementwise import elu, gelu, leaky_relu, relu, sigmoid, silu, softplus, tanh
from ..ops.indexing import one_hot
from ..ops.nn_act import (celu, glu, gumbel_softmax, hardsigmoid, hardswish, hardtanh, log_softmax,
                          logsigmoid, mish, prelu, relu6, selu, softmax, softsign)
from ..ops.nn_attention import scaled_dot_product_attention
from ..ops.nn_conv import (conv1d, conv2d, conv3d, conv_transpose1d,
                           conv_transpose2d)
from ..ops.nn_distance import cosine_similarity, normalize, pairwise_distance
from ..ops.nn_layers import (bilinear, dropout, dropout1d, dropout2d, embedding, embedding_bag,
                             linear)
from ..ops.nn_loss import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,
                           huber_loss, kl_div, l1_loss, mse_loss, nll_loss, smooth_l1_loss)
from ..ops.nn_loss_likelihood import gaussian_nll_loss, poisson_nll_loss
from ..ops.nn_loss_margin import (cosine_embedding_loss, hinge_embedding_loss, margin_ranking_loss,
                                  multi_margin_loss, multilabel_soft_margin_loss,
                                  soft_margin_loss, triplet_margin_loss)
from ..ops.nn_norm import batch_norm, group_norm, instance_norm, layer_norm
from ..ops.nn_pool import (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_max_pool1d,
                           adaptive_max_pool2d, avg_pool1d, avg_pool2d,
                           max_pool1d, max_pool2d)
from ..ops.nn_unfold import fold, unfold
from ..ops.nn_resample import interpolate, pad, pixel_shuffle, pixel_unshuffle
from ..ops.nn_rnn import gru_cell, lstm_cell

__all__ = [
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    "avg_pool1d", "avg_pool2d", "batch_norm",
    "bilinear", "binary_cross_entropy", "binary_cross_entropy_with_logits", "celu", "conv1d",
    "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "cosine_embedding_loss",
    "cosine_similarity", "cross_entropy", "dropout",
    "dropout1d", "dropout2d", "elu", "embedding", "embedding_bag", "fold", "gaussian_nll_loss",
    "gelu", "glu", "group_norm", "gru_cell", "gumbel_softmax", "hardsigmoid", "hardswish",
    "hardtanh", "hinge_embedding_loss", "huber_loss", "instance_norm", "interpolate", "kl_div",
    "l1_loss", "layer_norm", "leaky_relu", "linear", "log_softmax", "logsigmoid", "lstm_cell",
    "margin_ranking_loss", "max_pool1d", "max_pool2d", "mish", "mse_loss", "multi_margin_loss",
    "multilabel_soft_margin_loss", "nll_loss", "normalize",
    "one_hot", "pad", "pairwise_distance", "pixel_shuffle", "pixel_unshuffle", "poisson_nll_loss",
    "prelu", "relu", "relu6", "scaled_dot_product_attention", "selu", "sigmoid", "silu",
    "smooth_l1_loss", "soft_margin_loss", "softmax", "softplus", "softsign", "tanh",
    "triplet_margin_loss", "unfold",
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
