"""``tf.nn``: activations, softmax/sigmoid cross-entropies, conv2d, max/avg pooling, dropout,
bias_add, l2_loss (NHWC images, HWIO filters)."""
from __future__ import annotations

import math

import tensorlib as _tl

from ...ops.nn_act import log_softmax as _log_softmax
from ...ops.nn_act import softmax as _softmax
from .ops import _shape_arg, sigmoid, tanh
from .tensor import Tensor, _op, _random_op


def _window(what: str, name: str, v, conv: bool = False) -> tuple[int, int]:
    """(h, w) of an NHWC ``ksize``/``strides`` list; batch and channel entries must be 1."""
    v = [int(a) for a in v]
    if len(v) == 2 and not conv:
        return v[0], v[1]
    if len(v) != 4 or v[0] != 1 or v[3] != 1:
        raise ValueError(f"{what}: {name} must be [1, h, w, 1] (NHWC; windows over the batch "
                         f"or channel dims are not supported), got {v}")
    return v[1], v[2]


def _check_padding(what: str, padding) -> str:
    if padding not in ("SAME", "VALID"):
        raise ValueError(f"{what}: padding must be 'SAME' or 'VALID', got {padding!r}")
    return padding


def _explicit_pads(what: str, padding) -> tuple:
    """((top, bottom), (left, right)) of TF's explicit NHWC padding list."""
    try:
        p = [[int(a) for a in pair] for pair in padding]
    except (TypeError, ValueError):
        p = None
    if p is None or len(p) != 4 or any(len(pair) != 2 for pair in p) \
            or p[0] != [0, 0] or p[3] != [0, 0] or min(min(pair) for pair in p) < 0:
        raise ValueError(f"{what}: explicit padding must be [[0, 0], [top, bottom], "
                         f"[left, right], [0, 0]] of non-negative ints (NHWC), got {padding!r}")
    return tuple(p[1]), tuple(p[2])


def _same_pads(size: int, k: int, stride: int) -> tuple[int, int]:
    """TF1's SAME padding (before, after): an odd total puts the extra row/column at the
    bottom/right."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def _pad_nchw(x, k: tuple, s: tuple, padding: str, value: float = 0.0):
    """``x`` (NCHW) padded for ``padding``, and the symmetric padding left for the op."""
    from ...nn import functional as F
    if padding == "VALID":
        return x, (0, 0)
    (t, b), (lft, r) = _same_pads(x.shape[2], k[0], s[0]), _same_pads(x.shape[3], k[1], s[1])
    if t == b and lft == r:
        return x, (t, lft)
    return F.pad(x, (lft, r, t, b), value=value), (0, 0)


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
    def conv2d(input, filter=None, strides=(1, 1, 1, 1), padding="SAME",
               use_cudnn_on_gpu: bool = True, data_format: str = "NHWC", dilations=None,
               name=None, filters=None) -> Tensor:
        """NHWC input, HWIO filter; SAME pads as TF1 (extra row/column bottom/right), or
        explicit ``padding=[[0, 0], [top, bottom], [left, right], [0, 0]]``;
        ``dilations=[1, dh, dw, 1]``."""
        del use_cudnn_on_gpu
        w = filter if filter is not None else filters
        st = _window("conv2d", "strides", strides, conv=True)
        dil = (1, 1) if dilations is None else _window("conv2d", "dilations", dilations,
                                                      conv=True)
        _nhwc("conv2d", data_format)
        explicit = None
        if isinstance(padding, (list, tuple)):
            explicit = _explicit_pads("conv2d", padding)
        else:
            _check_padding("conv2d", padding)

        def fn(x, k):
            from ...nn import functional as F
            x = x.permute(0, 3, 1, 2)
            if explicit is not None:
                (t, b), (lft, r) = explicit
                xp, pad = F.pad(x, (lft, r, t, b)), (0, 0)
            else:
                # a dilated kernel covers (k - 1) * d + 1 cells, which SAME pads for
                eff = ((k.shape[0] - 1) * dil[0] + 1, (k.shape[1] - 1) * dil[1] + 1)
                xp, pad = _pad_nchw(x, eff, st, padding)
            return F.conv2d(xp, k.permute(3, 2, 0, 1), stride=st, padding=pad,
                            dilation=dil).permute(0, 2, 3, 1)
        return _op(fn, [input, w], name or "Conv2D")

    @staticmethod
    def max_pool(value, ksize, strides, padding="SAME", data_format="NHWC",
                 name=None) -> Tensor:
        """NHWC max pooling; SAME pads with -inf (extra row/column bottom/right)."""
        k, st = _pool_args("max_pool", ksize, strides, padding, data_format)

        def fn(x):
            from ...nn import functional as F
            xp, pad = _pad_nchw(x.permute(0, 3, 1, 2), k, st, padding, -math.inf)
            return F.max_pool2d(xp, k, stride=st, padding=pad).permute(0, 2, 3, 1)
        return _op(fn, [value], name or "MaxPool")

    @staticmethod
    def avg_pool(value, ksize, strides, padding="SAME", data_format="NHWC",
                 name=None) -> Tensor:
        """NHWC average pooling; with SAME the padded cells are not counted (TF1)."""
        k, st = _pool_args("avg_pool", ksize, strides, padding, data_format)

        def fn(x):
            from ...nn import functional as F
            xc = x.permute(0, 3, 1, 2)
            xp, pad = _pad_nchw(xc, k, st, padding)
            y = F.avg_pool2d(xp, k, stride=st, padding=pad, count_include_pad=True)
            if padding == "SAME":       # mean over the real cells: divide by their share
                ones = _tl.ones((1, 1, *xc.shape[2:]), dtype=x.dtype)
                op, _ = _pad_nchw(ones, k, st, padding)
                y = y / F.avg_pool2d(op, k, stride=st, padding=pad, count_include_pad=True)
            return y.permute(0, 2, 3, 1)
        return _op(fn, [value], name or "AvgPool")

    @staticmethod
    def bias_add(value, bias, data_format=None, name=None) -> Tensor:
        """``value + bias`` along the last (channel) dim."""
        if data_format not in (None, "NHWC", "N...C"):
            raise ValueError(f"bias_add: only channels-last data_format, got {data_format!r}")
        return _op(lambda v, b: v + b, [value, bias], name or "BiasAdd")

    @staticmethod
    def l2_loss(t, name=None) -> Tensor:
        """``sum(t ** 2) / 2``."""
        return _op(lambda v: (v * v).sum() / 2, [t], name or "L2Loss")

    @staticmethod
    def sparse_softmax_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None,
                                                 name=None) -> Tensor:
        """Per-example ``-log softmax(logits)[label]`` (labels: int class ids, one fewer
        dim than logits)."""
        if labels is None or logits is None:
            raise ValueError("sparse_softmax_cross_entropy_with_logits needs labels= and "
                             "logits=")

        def fn(y, z):
            y = _tl.tensor(y) if not isinstance(y, _tl.Tensor) else y
            if y.dtype.kind not in "iu":
                raise ValueError("sparse_softmax_cross_entropy_with_logits: labels must be "
                                 f"int32/int64 class ids, got {y.dtype}")
            lp = _log_softmax(z, axis=-1)
            return -_tl.take_along_axis(lp, y.astype("int64")[..., None], axis=-1)[..., 0]
        return _op(fn, [labels, logits], name or "SparseSoftmaxCrossEntropyWithLogits")

    @staticmethod
    def sigmoid_cross_entropy_with_logits(_sentinel=None, labels=None, logits=None,
                                          name=None) -> Tensor:
        """Elementwise ``max(z, 0) - z * y + log(1 + exp(-|z|))`` (TF1's stable form)."""
        if labels is None or logits is None:
            raise ValueError("sigmoid_cross_entropy_with_logits needs labels= and logits=")
        return _op(lambda y, z: z.relu() - z * y + (-z.abs()).exp().log1p(),
                   [labels, logits], name or "SigmoidCrossEntropyWithLogits")

    @staticmethod
    def leaky_relu(features, alpha: float = 0.2, name=None) -> Tensor:
        return _op(lambda v: _tl.maximum(v, v * alpha), [features], name or "LeakyRelu")

    @staticmethod
    def relu6(features, name=None) -> Tensor:
        return _op(lambda v: v.clip(0.0, 6.0), [features], name or "Relu6")

    @staticmethod
    def elu(features, name=None) -> Tensor:
        return _op(lambda v: _tl.where(v > 0, v, v.exp() - 1.0), [features], name or "Elu")

    @staticmethod
    def softplus(features, name=None) -> Tensor:
        return _op(lambda v: v.relu() + (-v.abs()).exp().log1p(), [features],
                   name or "Softplus")

    @staticmethod
    def embedding_lookup(params, ids, name=None) -> Tensor:
        """Rows ``params[ids]`` (one params tensor; a list of shards is not supported)."""
        from .array_ops import gather
        return gather(params, ids, name=name or "embedding_lookup")

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


def _pool_args(op: str, ksize, strides, padding, data_format) -> tuple:
    """A pool's (kernel, strides) over H and W, its padding and layout checked."""
    k, st = _window(op, "ksize", ksize), _window(op, "strides", strides)
    _check_padding(op, padding)
    _nhwc(op, data_format)
    return k, st


def _nhwc(what: str, data_format: str) -> None:
    if data_format != "NHWC":
        raise ValueError(f"{what}: only data_format='NHWC' is supported, got {data_format!r}")


nn = _NN()
