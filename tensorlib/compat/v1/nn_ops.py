"""``tf.nn``: activations, softmax (cross-entropy), conv2d, max_pool, dropout (NHWC images,
HWIO filters)."""
from __future__ import annotations

import math

import tensorlib as _tl

from ...ops.nn_act import log_softmax as _log_softmax
from ...ops.nn_act import softmax as _softmax
from .ops import _shape_arg, sigmoid, tanh
from .tensor import Tensor, _op, _random_op


def _same_pads(size: int, k: int, stride: int, what: str) -> int:
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k - size, 0)
    if total % 2:
        raise ValueError(f"{what}: padding='SAME' needs asymmetric padding here (input "
                         f"{size}, kernel {k}, stride {stride}); tensorlib.compat.v1 supports "
                         "only symmetric SAME padding")
    return total // 2


class _NN:
    """``tf.nn``: NHWC images, HWIO filters, as in TF1."""

    @staticmethod
    def softmax(logits, axis=-1, name=None) -> Tensor:
        return _op(lambda v: _softmax(v, axis=axis), [logits], name or "Softmax")

    @staticmethod
    def log_softmax(logits, axis=-1, name=None) -> Tensor:
        return _op(lambda v: _log_softmax(v, axis=axis), [logits], name or "LogSoftmax")

    @staticmethod
    def relu(x, name=None) -> Tensor:
        return _op(lambda v: v.relu(), [x], name or "Relu")

    @staticmethod
    def sigmoid(x, name=None) -> Tensor:
        return sigmoid(x)

    @staticmethod
    def tanh(x, name=None) -> Tensor:
        return tanh(x)

    @staticmethod
    def softmax_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None, dim=-1,
                                          name=None) -> Tensor:
        if labels is None or logits is None:
            raise ValueError("softmax_cross_entropy_with_logits needs labels= and logits=")
        return _op(lambda y, z: -(y * _log_softmax(z, axis=dim)).sum(axis=dim),
                   [labels, logits], name or "SoftmaxCrossEntropyWithLogits")

    softmax_cross_entropy_with_logits_v2 = softmax_cross_entropy_with_logits

    @staticmethod
    def conv2d(input, filter=None, strides=(1, 1, 1, 1), padding="SAME", name=None,
               filters=None) -> Tensor:
        w = filter if filter is not None else filters
        if list(strides)[0] != 1 or list(strides)[3] != 1:
            raise ValueError("conv2d: strides must be [1, sh, sw, 1] (NHWC)")
        sh, sw = int(strides[1]), int(strides[2])

        def fn(x, k):
            from ...nn import functional as F
            kh, kw = k.shape[0], k.shape[1]
            if padding == "SAME":
                pad = (_same_pads(x.shape[1], kh, sh, "conv2d"),
                       _same_pads(x.shape[2], kw, sw, "conv2d"))
            elif padding == "VALID":
                pad = (0, 0)
            else:
                raise ValueError(f"conv2d: padding must be 'SAME' or 'VALID', got {padding!r}")
            y = F.conv2d(x.permute(0, 3, 1, 2), k.permute(3, 2, 0, 1), stride=(sh, sw),
                         padding=pad)
            return y.permute(0, 2, 3, 1)
        return _op(fn, [input, w], name or "Conv2D")

    @staticmethod
    def max_pool(value, ksize, strides, padding="SAME", name=None) -> Tensor:
        kh, kw = int(ksize[1]), int(ksize[2])
        sh, sw = int(strides[1]), int(strides[2])

        def fn(x):
            from ...nn import functional as F
            if padding == "SAME":
                pad = (_same_pads(x.shape[1], kh, sh, "max_pool"),
                       _same_pads(x.shape[2], kw, sw, "max_pool"))
            else:
                pad = (0, 0)
            y = F.max_pool2d(x.permute(0, 3, 1, 2), (kh, kw), stride=(sh, sw), padding=pad)
            return y.permute(0, 2, 3, 1)
        return _op(fn, [value], name or "MaxPool")

    @staticmethod
    def dropout(x, keep_prob=None, noise_shape=None, seed=None, name=None, rate=None) -> Tensor:
        """Keep each element with probability ``keep_prob`` (a number or a fed placeholder)
        and scale kept ones by 1 / keep_prob; the draw is redone on every run (``seed``: a
        reproducible sequence of draws, restarted by each Session)."""
        if keep_prob is None:
            keep_prob = 1.0 - rate
        ns = None if noise_shape is None else _shape_arg(noise_shape)

        def fn(g, v, kp):
            kp = kp if isinstance(kp, _tl.Tensor) else _tl.tensor(float(kp))
            kp = kp.astype(v.dtype)
            u = _tl.rand(*(v.shape if ns is None else ns), dtype=v.dtype, generator=g)
            return v * (u < kp).astype(v.dtype) / kp
        return _random_op(fn, [x, keep_prob], name or "dropout", None, None, seed,
                          static=False)


nn = _NN()
