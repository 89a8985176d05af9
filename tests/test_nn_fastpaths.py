"""CPU fast paths against the general kernels / xp fallbacks they shortcut: the 2x2 max-pool
kernel, the chunked conv kernels (several chunks, uneven last chunk, groups), relu_grad."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tensorlib import _ops
from tensorlib.ops import nn_act, nn_conv


@given(st.integers(1, 3), st.integers(1, 3), st.integers(2, 9), st.integers(2, 9),
       st.sampled_from([np.float32, np.float64]), st.integers(0, 2**31 - 1))
def test_max_pool_2x2_matches_general_kernel(n, c, h, w, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, (n, c, h, w)).astype(dtype)   # many ties
    x[rng.random(x.shape) < 0.1] = np.nan
    x[rng.random(x.shape) < 0.05] = -np.inf
    Ho, Wo = h // 2, w // 2
    o1, o2 = np.empty((n, c, Ho, Wo), dtype), np.empty((n, c, Ho, Wo), dtype)
    i1, i2 = np.empty((n, c, Ho, Wo), np.int64), np.empty((n, c, Ho, Wo), np.int64)
    _ops.max_pool2d_2x2(x, o1, i1)
    _ops.max_pool2d(x, o2, i2, 2, 2, 2, 2, 0, 0, 1, 1)
    np.testing.assert_array_equal(o1, o2)
    np.testing.assert_array_equal(i1, i2)


@pytest.mark.parametrize("groups,stride,pad,dil", [(1, (1, 1), (2, 2, 2, 2), (1, 1)),
                                                   (2, (2, 1), (1, 0, 2, 1), (1, 2)),
                                                   (1, (1, 2), (0, 0, 0, 0), (2, 1))])
@pytest.mark.parametrize("chunk_bytes", [1, 3000, 1 << 20])
def test_chunked_conv_matches_xp_path(monkeypatch, groups, stride, pad, dil, chunk_bytes):
    monkeypatch.setattr(nn_conv, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(nn_conv, "MAX_CHUNKS", 3)   # 5 images: chunks of 2, 2, 1
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4, 7, 6))
    w = rng.standard_normal((6, 4 // groups, 3, 2))
    b = rng.standard_normal(6)
    geo = dict(stride=stride, padding=pad, dilation=dil, groups=groups)
    ref = nn_conv._conv_impl(nn_conv._im2col_xp, np, x, w, b, **geo)
    out = nn_conv._conv_cpu(x, w, b, **geo)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(out.shape)
    ref = nn_conv._input_grad_impl(nn_conv._col2im_xp, np, g, w, input_hw=(7, 6), **geo)
    np.testing.assert_allclose(nn_conv._input_grad_cpu(g, w, input_hw=(7, 6), **geo), ref,
                               rtol=1e-12, atol=1e-12)
    ref = nn_conv._weight_grad_impl(nn_conv._im2col_xp, np, x, g, kernel=(3, 2), **geo)
    np.testing.assert_allclose(nn_conv._weight_grad_cpu(x, g, kernel=(3, 2), **geo), ref,
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_grad_kernel_special_values(dtype):
    rng = np.random.default_rng(1)
    n = 3 * (1 << 14) + 7   # several blocks and a ragged tail
    x = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    x[:4] = [np.nan, 0.0, -0.0, np.inf]
    g[4:8] = [np.inf, np.nan, -np.inf, 1.0]
    x[4:8] = [-1.0, -1.0, 2.0, -np.inf]
    out = nn_act._relu_grad_cpu(g, x)
    np.testing.assert_array_equal(out, np.where(x > 0, g, 0.0).astype(dtype))
    assert out.dtype == dtype
