"""CPU fast paths against the general kernels / xp fallbacks they shortcut: the 2x2 max-pool
kernel, the chunked conv kernels (several chunks, uneven last chunk, groups), the float32
one-image-per-thread conv kernels, relu_grad, the
fused float32 LSTM cell and its SIMD exp/tanh, the layer, batch and group norm kernels."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib import _gemm, _ops
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


@pytest.mark.parametrize("isa", _gemm.KERNELS)
@given(n=st.integers(1, 5), c=st.sampled_from([2, 4]), groups=st.sampled_from([1, 2]),
       hw=st.tuples(st.integers(1, 9), st.integers(1, 9)), k=st.tuples(st.integers(1, 3),
       st.integers(1, 3)), stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pad=st.tuples(*[st.integers(0, 2)] * 4), dil=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       threaded=st.booleans(), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_per_image_float32_conv_matches_float64(isa, n, c, groups, hw, k, stride, pad, dil,
                                                threaded, bias, seed):
    """The one-image-per-thread float32 kernels (_ops.conv2d_*images), on one thread and on
    all (``threaded`` lowers the threading threshold), against the float64 reference."""
    geo = dict(stride=stride, padding=pad, dilation=dil, groups=groups)
    ho = nn_conv.out_size(hw[0], k[0], stride[0], pad[0], pad[1], dil[0])
    wo = nn_conv.out_size(hw[1], k[1], stride[1], pad[2], pad[3], dil[1])
    assume(ho > 0 and wo > 0)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c) + hw).astype(np.float32)
    w = rng.standard_normal((4, c // groups) + k).astype(np.float32)
    b = (rng.standard_normal(4).astype(np.float32),) if bias else ()
    g = rng.standard_normal((n, 4, ho, wo)).astype(np.float32)
    with pytest.MonkeyPatch.context() as mp, _gemm.use_isa(isa):
        mp.setattr(_gemm, "PARALLEL_WORK", 0 if threaded else 1 << 60)
        mp.setattr(_gemm, "suits", lambda *a: True)     # these kernels, whatever the shape
        t = _ops.max_threads()
        expect = 1 if not threaded else (t if n >= t else 0)   # 0: the chunked path
        assert nn_conv._image_threads(x.dtype, n, groups, 4, ho * wo, 9) == expect
        outs = (nn_conv._conv_cpu(x, w, *b, **geo),
                nn_conv._input_grad_cpu(g, w, input_hw=hw, **geo),
                nn_conv._weight_grad_cpu(x, g, kernel=k, **geo))
    x64, w64, g64 = x.astype(np.float64), w.astype(np.float64), g.astype(np.float64)
    refs = (nn_conv._conv_impl(nn_conv._im2col_xp, np, x64, w64, *(a.astype(np.float64)
                                                                    for a in b), **geo),
            nn_conv._input_grad_impl(nn_conv._col2im_xp, np, g64, w64, input_hw=hw, **geo),
            nn_conv._weight_grad_impl(nn_conv._im2col_xp, np, x64, g64, kernel=k, **geo))
    for out, ref in zip(outs, refs):
        assert out.dtype == np.float32 and out.shape == ref.shape
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


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
    np.testing.assert_array_equal(out, np.where(x <= 0, 0.0, g).astype(dtype))
    assert out.dtype == dtype


# --- the fused float32 LSTM cell and its vectorised exp/tanh (tensorlib/_simd_math.h) --------
def _ulp_error(got, x, f):
    ref = f(x.astype(np.float64))
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref) / ulp


def test_simd_sigmoid_and_tanh_accuracy_and_special_values():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(200_000) * 8, np.linspace(-90, 90, 100_001),
                        np.geomspace(1e-30, 1.0, 1001), -np.geomspace(1e-30, 1.0, 1001)])
    x = x.astype(np.float32)
    sig, tanh = np.empty_like(x), np.empty_like(x)
    _ops.sigmoid_f32(x, sig)
    _ops.tanh_f32(x, tanh)
    exact = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    normal = exact > 1e-37    # below, float32 results are subnormal: judged absolutely
    assert _ulp_error(sig[normal], x[normal], lambda v: 1 / (1 + np.exp(-v))).max() <= 4
    assert np.abs(sig[~normal]).max() < 1e-37
    assert _ulp_error(tanh, x, np.tanh).max() <= 4
    assert np.all((sig >= 0) & (sig <= 1)) and np.all(np.abs(tanh) <= 1)
    sp = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e4, -1e4], np.float32)
    s2, t2 = np.empty_like(sp), np.empty_like(sp)
    _ops.sigmoid_f32(sp, s2)
    _ops.tanh_f32(sp, t2)
    np.testing.assert_array_equal(s2, [0.5, 0.5, 1.0, 0.0, np.nan, 1.0, 0.0])
    np.testing.assert_array_equal(t2, [0.0, -0.0, 1.0, -1.0, np.nan, 1.0, -1.0])
    assert np.signbit(t2[1])


def test_relu_kernel_matches_numpy_with_special_values():
    x = np.concatenate([np.random.default_rng(0).standard_normal((1 << 20) + 5),
                        [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-45, -1e-45]]).astype(np.float32)
    out = np.empty_like(x)
    _ops.relu_f32(x, out)
    np.testing.assert_array_equal(out, np.maximum(x, np.float32(0)))
    np.testing.assert_array_equal(tl.relu(tl.tensor(x)).numpy(), out)


@pytest.mark.parametrize("n", [(1 << 20) + 777, (1 << 18) + 16384 * 3 + 5, 40_000])
def test_threaded_vectorised_maps_match_their_one_thread_results(n):
    # large arrays run in 16384-element tasks on several threads; a slice of 1000 runs on one:
    # the results must agree, chunk edges and the ragged last task included (to rounding: an
    # element can land in the vector body in one call and the scalar tail in the other)
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 3).astype(np.float32)
    g = rng.standard_normal(n).astype(np.float32)
    maps = {"gelu": (_ops.gelu_into, [x]), "gelu_grad": (_ops.gelu_grad_into, [g, x]),
            "erf": (_ops._erf_f32, [x]), "sigmoid": (_ops.sigmoid_f32, [x]),
            "relu": (_ops.relu_f32, [x]),
            "tanh": (_ops.tanh_f32, [x]), "expm1": (_ops.expm1_f32, [x]),
            "log1p": (_ops.log1p_f32, [np.abs(x)]),
            "elu": (lambda a, o: _ops.elu_into(a, o, 0.5), [x]),
            "leaky_relu": (lambda a, o: _ops.leaky_relu_f32(a, o, 0.2), [x]),
            "leaky_relu_grad": (lambda a, b, o: _ops.leaky_relu_grad_f32(a, b, o, 0.2),
                                [g, x]),
            "elu_grad": (lambda a, b, o: _ops.elu_grad_into(a, b, o, 0.5), [g, x]),
            "softplus": (lambda a, o: _ops.softplus_into(a, o, 2.0, 3.0), [x]),
            "softplus_grad": (lambda a, b, o: _ops.softplus_grad_into(a, b, o, 2.0, 3.0),
                              [g, x])}
    for name, (f, ins) in maps.items():
        out = np.full(n, np.nan, np.float32)
        f(*ins, out)
        piece = np.empty(1000, np.float32)
        for lo in list(range(0, n - 1000, 16384)) + [n - 1000]:
            f(*(a[lo:lo + 1000] for a in ins), piece)
            np.testing.assert_allclose(out[lo:lo + 1000], piece, rtol=1e-6, atol=1e-7,
                                       err_msg=f"{name} at {lo}")
        assert not np.isnan(out).any(), name
    with pytest.raises(ValueError, match="differ in length"):
        _ops.gelu_grad_into(g, x[:-1], np.empty(n, np.float32))


@given(st.integers(0, 5), st.integers(0, 37), st.booleans(), st.integers(0, 2**31 - 1))
def test_lstm_cell_kernels_match_the_numpy_formulas(n, h, with_gacts, seed):
    from tensorlib.ops import nn_rnn
    rng = np.random.default_rng(seed)

    def f32(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)
    gates, c = f32(n, 4 * h, scale=4.0), f32(n, h)
    got = nn_rnn._cell_cpu(gates, c)
    want = nn_rnn._cell_fwd(np, gates, c)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=2e-6)
    acts, c_new = want[2], want[1]
    gh, gc = f32(n, h), f32(n, h)
    gacts = f32(n, 4 * h) if with_gacts else np.zeros((n, 4 * h), np.float32)
    for ga in (gacts, None) if not with_gacts else (gacts,):
        got = nn_rnn._cell_grad_cpu(acts, c, c_new, gh, gc, ga)
        want = nn_rnn._cell_grad_fwd(np, acts, c, c_new, gh, gc, gacts)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


def test_lstm_cell_kernels_fall_back_for_other_layouts_and_dtypes():
    from tensorlib.ops import nn_rnn
    rng = np.random.default_rng(1)
    gates64, c64 = rng.standard_normal((3, 8)), rng.standard_normal((3, 2))
    for a, b in zip(nn_rnn._cell_cpu(gates64, c64), nn_rnn._cell_fwd(np, gates64, c64)):
        assert a.dtype == np.float64
        np.testing.assert_array_equal(a, b)
    gates = rng.standard_normal((8, 3)).astype(np.float32).T      # not C-contiguous
    c = np.ascontiguousarray(rng.standard_normal((3, 2)).astype(np.float32))
    for a, b in zip(nn_rnn._cell_cpu(gates, c), nn_rnn._cell_fwd(np, gates, c)):
        np.testing.assert_array_equal(a, b)
    ro = np.ascontiguousarray(gates)
    ro.flags.writeable = False                                      # read-only inputs are fine
    for a, b in zip(nn_rnn._cell_cpu(ro, c), nn_rnn._cell_fwd(np, ro, c)):
        np.testing.assert_allclose(a, b, rtol=2e-6, atol=2e-6)


def test_kernels_accept_read_only_inputs():
    # memory maps, ONNX initializers and tl.from_numpy of a read-only array share memory
    # that is not writable: the kernels read their inputs through const memoryviews
    import tensorlib as tl
    import tensorlib.nn.functional as F
    rng = np.random.default_rng(0)

    def ro(a):
        a = np.ascontiguousarray(a)
        a.flags.writeable = False
        return tl.from_numpy(a)
    x = ro(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
    w = ro(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    checks = {
        "conv2d": (lambda a, b: F.conv2d(a, b, padding=1), [x, w]),
        "max_pool2d": (lambda a: F.max_pool2d(a, 2), [x]),
        "max_pool2d 3x3": (lambda a: F.max_pool2d(a, 3, stride=2, padding=1), [x]),
        "cross_entropy": (lambda a: F.cross_entropy(a.reshape(2, -1), ro(np.array([1, 5]))),
                          [x]),
        "relu": (lambda a: F.relu(a), [x]),
        "batch_norm": (lambda a, b: F.batch_norm(a, weight=b[0, :, 0, 0], bias=b[1, :, 0, 0],
                                                 training=True), [x, w]),
    }
    for name, (fn, ins) in checks.items():
        copies = [tl.tensor(t.numpy().copy()) for t in ins]
        np.testing.assert_allclose(fn(*ins).numpy(), fn(*copies).numpy(), rtol=1e-6,
                                   err_msg=name)
    # the backward kernels read saved (read-only) inputs too
    idx = ro(np.array([0, 2, 2, 1]))
    table = tl.tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    F.embedding(idx, table).sum().backward()
    np.testing.assert_array_equal(table.grad.numpy()[:, 0], [1, 1, 2])


@given(st.integers(0, 6), st.integers(1, 9), st.sampled_from([np.float32, np.float64]),
       st.sampled_from(["mean", "sum", "none"]), st.booleans(), st.integers(0, 2**31 - 1))
def test_cross_entropy_grad_kernel_matches_the_numpy_formula(n, c, dtype, reduction, hit_ignore,
                                                             seed):
    from tensorlib.ops import nn_loss
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * 5).astype(dtype)
    t = rng.integers(0, c, n)
    ignore = int(t[0]) if hit_ignore and n else -100     # an ignored row: the NumPy path
    g = rng.standard_normal(n if reduction == "none" else ()).astype(dtype)
    got = nn_loss._ce_grad_cpu(x, t, g, ignore_index=ignore, reduction=reduction)
    want = nn_loss._ce_grad_fwd(np, x, t, g, ignore_index=ignore, reduction=reduction)
    assert got.dtype == x.dtype and got.shape == x.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_xent_kernel_masked_and_special_logits(dtype):
    # -inf logits (masked classes) are common and must give probability 0, finite loss;
    # a NaN or +inf logit makes its row NaN, as the plain formula does
    from tensorlib.ops import nn_loss
    x = np.array([[0.0, -np.inf, 2.0, -np.inf],
                  [-np.inf, -np.inf, 5.0, -np.inf],
                  [1.0, np.nan, 0.0, 0.0],
                  [1.0, np.inf, 0.0, 0.0],
                  [100.0, -100.0, 80.0, 0.0]], dtype)
    t = np.array([2, 2, 0, 0, 1])
    prob, loss, _ = nn_loss._softmax_xent_cpu(x, t, -100)
    with np.errstate(invalid="ignore"):
        xd = x.astype(np.float64)
        ref = np.exp(xd - xd.max(1, keepdims=True))
        ref /= ref.sum(1, keepdims=True)
        ref_loss = -np.log(ref[np.arange(5), t])
    np.testing.assert_allclose(prob[[0, 1, 4]], ref[[0, 1, 4]], rtol=1e-5, atol=1e-30)
    np.testing.assert_allclose(loss[[0, 1, 4]], ref_loss[[0, 1, 4]], rtol=1e-5)
    assert prob[0, 1] == 0 and prob[1, 2] == 1 and loss[1] == 0
    assert np.isnan(prob[2]).all() and np.isnan(loss[2]) and np.isnan(loss[3])


@given(st.lists(st.integers(0, 5), min_size=1, max_size=4), st.data(),
       st.sampled_from([np.float32, np.float64]), st.booleans(), st.booleans(),
       st.integers(0, 2**31 - 1))
def test_softmax_kernels_match_the_numpy_formulas(shape, data, dtype, log, transposed, seed):
    # the Cython softmax / log-softmax and their gradients along any axis (inner == 1 rows and
    # (n, inner) blocks), against the NumPy forms the other backends run
    rng = np.random.default_rng(seed)
    axis = data.draw(st.integers(0, len(shape) - 1))
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    if transposed and x.ndim >= 2:
        x = np.ascontiguousarray(x.swapaxes(0, -1)).swapaxes(0, -1)   # not C-contiguous
    x[rng.random(x.shape) < 0.1] = -np.inf                            # masked entries
    fwd = nn_act._log_softmax_fwd if log else nn_act._softmax_fwd
    gfwd = nn_act._log_softmax_grad_fwd if log else nn_act._softmax_grad_fwd
    with np.errstate(invalid="ignore", divide="ignore"):
        y, want = nn_act._softmax_cpu(log)(x, axis), fwd(np, x, axis)
    tol = 2e-6 if dtype == np.float32 else 1e-13
    assert y.dtype == x.dtype and y.shape == x.shape
    np.testing.assert_allclose(y, want, rtol=tol, atol=tol)
    g = rng.standard_normal(shape).astype(dtype)
    y = np.where(np.isfinite(y), y, -30.0).astype(dtype)   # a finite output to differentiate at
    got, want = nn_act._softmax_grad_cpu(log)(g, y, axis), gfwd(np, g, y, axis)
    np.testing.assert_allclose(got, want, rtol=10 * tol, atol=10 * tol)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [0, 1])
def test_softmax_kernel_special_rows_as_pytorch(fn, axis):
    # a -inf entry is a masked one (probability 0); a row holding NaN or +inf, or all -inf,
    # is NaN throughout, as torch.softmax gives
    rows = np.array([[0.0, -np.inf, 1.0], [-np.inf] * 3, [np.nan, 1.0, 2.0],
                     [np.inf, 1.0, 2.0], [1.0, np.inf, np.inf]], np.float32)
    x = rows if axis == 1 else np.ascontiguousarray(rows.T)
    out = getattr(tl, fn)(tl.tensor(x), axis).numpy()
    out = out if axis == 1 else out.T
    p = np.exp(np.array([0.0, 1.0]) - np.log(np.exp(0.0) + np.exp(1.0)))
    want0 = np.array([p[0], 0.0, p[1]]) if fn == "softmax" else \
        np.array([np.log(p[0]), -np.inf, np.log(p[1])])
    np.testing.assert_allclose(out[0], want0, rtol=1e-6)
    assert np.isnan(out[1:]).all()


@given(st.lists(st.integers(0, 4), min_size=0, max_size=2), st.lists(st.integers(1, 40),
       min_size=1, max_size=2), st.sampled_from(["wb", "w", "b", ""]), st.booleans(),
       st.integers(0, 2**31 - 1), st.sampled_from([np.float32, np.float64]))
def test_layer_norm_kernels_match_the_numpy_formulas(lead, ns, affine, transposed, seed, dt):
    from tensorlib.ops import nn_norm
    rng = np.random.default_rng(seed)
    shape = tuple(lead) + tuple(ns)
    x = (rng.standard_normal(shape) * 3 + 1).astype(dt)
    if transposed and x.ndim >= 2:
        x = np.ascontiguousarray(x.swapaxes(-1, -2)).swapaxes(-1, -2)   # not C-contiguous
    wb = [rng.standard_normal(tuple(ns)).astype(dt) for _ in affine]
    kw = dict(eps=1e-5, ndim=len(ns), affine=affine)
    got, want = nn_norm._ln_cpu(x, *wb, **kw), nn_norm._ln_fwd(np, x, *wb, **kw)
    tol = dict(rtol=1e-5, atol=2e-5) if dt == np.float32 else dict(rtol=1e-13, atol=1e-13)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == dt
        np.testing.assert_allclose(a, b, **tol)
    mean, rstd = want[1], want[2]
    gy = rng.standard_normal(shape).astype(dt)
    gm, gr = (rng.standard_normal(mean.shape).astype(dt) for _ in range(2))
    w = wb[:1] if "w" in affine else []
    got = nn_norm._ln_grad_cpu(x, mean, rstd, gy, gm, gr, *w, ndim=len(ns))
    want = nn_norm._ln_grad_fwd(np, x, mean, rstd, gy, gm, gr, *w, ndim=len(ns))
    tol = dict(rtol=1e-4, atol=1e-4) if dt == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == dt
        np.testing.assert_allclose(a, b, **tol)


@given(st.integers(1, 5), st.integers(1, 6), st.lists(st.integers(1, 9), min_size=1,
       max_size=2), st.sampled_from(["wb", "w", "b", ""]), st.booleans(),
       st.integers(0, 2**31 - 1))
def test_batch_norm_kernels_match_the_numpy_formulas(n, c, spatial, affine, transposed, seed):
    from tensorlib.ops import nn_norm
    rng = np.random.default_rng(seed)
    shape = (n, c) + tuple(spatial)
    # a mean far from 0 against the spread: the kernels centre before they scale
    x = (rng.standard_normal(shape) * 3 + 50).astype(np.float32)
    if transposed:
        x = np.ascontiguousarray(x.swapaxes(0, 1)).swapaxes(0, 1)   # not C-contiguous
    wb = [rng.standard_normal(c).astype(np.float32) for _ in affine]
    kw = dict(eps=1e-5, affine=affine)
    got = nn_norm._bn_cpu(x, *wb, **kw)
    want = nn_norm._bn_fwd(np, x.astype(np.float64), *(a.astype(np.float64) for a in wb), **kw)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    mean, var = got[1], got[2]
    gy = rng.standard_normal(shape).astype(np.float32)
    gm, gv = (rng.standard_normal(c).astype(np.float32) for _ in range(2))
    w = wb[:1] if "w" in affine else []
    got = nn_norm._bn_grad_cpu(x, mean, var, gy, gm, gv, *w, eps=1e-5)
    want = nn_norm._bn_grad_fwd(np, *(a.astype(np.float64) for a in (x, mean, var, gy, gm, gv,
                                                                       *w)), eps=1e-5)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)
    # inference: the running statistics' kernel
    got = nn_norm._bn_eval_cpu(x, mean, var + 0.5, *wb, **kw)
    want = nn_norm._bn_eval_fwd(np, *(a.astype(np.float64) for a in (x, mean, var + 0.5, *wb)),
                                **kw)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@given(st.integers(1, 4), st.sampled_from([(1, 1), (4, 2), (6, 3), (6, 6), (8, 1)]),
       st.lists(st.integers(1, 9), min_size=0, max_size=2), st.sampled_from(["wb", "w", "b", ""]),
       st.booleans(), st.integers(0, 2**31 - 1))
def test_group_norm_kernels_match_the_numpy_formulas(n, cg, spatial, affine, transposed, seed):
    from tensorlib.ops import nn_norm
    rng = np.random.default_rng(seed)
    (c, groups), shape = cg, (n, cg[0]) + tuple(spatial)
    x = (rng.standard_normal(shape) * 3 + 50).astype(np.float32)
    if transposed:
        x = np.ascontiguousarray(x.swapaxes(0, 1)).swapaxes(0, 1)   # not C-contiguous
    wb = [rng.standard_normal(c).astype(np.float32) for _ in affine]
    kw = dict(groups=groups, eps=1e-5, affine=affine)
    got = nn_norm._gn_cpu(x, *wb, **kw)
    want = nn_norm._gn_fwd(np, x.astype(np.float64), *(a.astype(np.float64) for a in wb), **kw)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    mean, rstd = got[1], got[2]
    gy = rng.standard_normal(shape).astype(np.float32)
    gm, gr = (rng.standard_normal((n, groups)).astype(np.float32) for _ in range(2))
    w = wb[:1] if "w" in affine else []
    got = nn_norm._gn_grad_cpu(x, mean, rstd, gy, gm, gr, *w, groups=groups)
    want = nn_norm._gn_grad_fwd(np, *(a.astype(np.float64) for a in (x, mean, rstd, gy, gm, gr,
                                                                       *w)), groups=groups)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)


@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.integers(1, 9),
       st.integers(1, 9), st.integers(1, 4), st.integers(1, 4), st.sampled_from([1, 2]),
       st.sampled_from([1, 2]), st.integers(0, 2), st.integers(0, 2),
       st.sampled_from([np.float32, np.float64]), st.booleans(), st.integers(0, 2**31 - 1))
def test_depthwise_kernels_match_the_im2col_path(n, c, m, h, w, kh, kw, stride, dil, pt, pl,
                                                 dtype, bias, seed):
    # one input channel per group: the direct loops (padded-plane taps at stride 1, output
    # rows otherwise) against im2col + GEMM, forward and both gradients
    pb, pr = (pt + 1) % 3, pl
    Ho = (h + pt + pb - dil * (kh - 1) - 1) // stride + 1
    Wo = (w + pl + pr - dil * (kw - 1) - 1) // stride + 1
    assume(Ho > 0 and Wo > 0)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((c * m, 1, kh, kw)).astype(dtype)
    b = [rng.standard_normal(c * m).astype(dtype)] if bias else []
    geo = dict(stride=(stride, stride), padding=(pt, pb, pl, pr), dilation=(dil, dil),
               groups=c)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    ref = nn_conv._conv_impl(nn_conv._im2col_xp, np, x, wt, *b, **geo)
    out = nn_conv._conv_cpu(x, wt, *b, **geo)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, ref, **tol)
    g = rng.standard_normal(out.shape).astype(dtype)
    ref = nn_conv._input_grad_impl(nn_conv._col2im_xp, np, g, wt, input_hw=(h, w), **geo)
    np.testing.assert_allclose(nn_conv._input_grad_cpu(g, wt, input_hw=(h, w), **geo), ref,
                               **tol)
    ref = nn_conv._weight_grad_impl(nn_conv._im2col_xp, np, x, g, kernel=(kh, kw), **geo)
    np.testing.assert_allclose(nn_conv._weight_grad_cpu(x, g, kernel=(kh, kw), **geo), ref,
                               **tol)


@pytest.mark.parametrize("k, stride", [(3, 2), (5, 2), (3, 1)])
def test_depthwise_kernels_on_threads_match_the_im2col_path(k, stride):
    # large enough for OpenMP: the strided loops once shared their column bounds between
    # threads (wrong sums, then heap corruption); small geometries never showed it
    rng = np.random.default_rng(k)
    x = rng.standard_normal((16, 96, 48, 48)).astype(np.float32)     # over PAR_MIN's work
    w = rng.standard_normal((96, 1, k, k)).astype(np.float32)
    geo = dict(stride=(stride, stride), padding=(k // 2,) * 4, dilation=(1, 1), groups=96)
    ref = nn_conv._conv_impl(nn_conv._im2col_xp, np, x, w, **geo)
    g = rng.standard_normal(ref.shape).astype(np.float32)
    ref_dx = nn_conv._input_grad_impl(nn_conv._col2im_xp, np, g, w, input_hw=(48, 48), **geo)
    ref_dw = nn_conv._weight_grad_impl(nn_conv._im2col_xp, np, x, g, kernel=(k, k), **geo)
    for _ in range(3):
        np.testing.assert_allclose(nn_conv._conv_cpu(x, w, **geo), ref, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(nn_conv._input_grad_cpu(g, w, input_hw=(48, 48), **geo),
                                   ref_dx, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(nn_conv._weight_grad_cpu(x, g, kernel=(k, k), **geo),
                                   ref_dw, rtol=1e-3, atol=1e-3)


@given(st.lists(st.integers(1, 40), min_size=2, max_size=4), st.randoms(),
       st.sampled_from([np.float32, np.float64, np.int32]), st.booleans())
def test_tiled_contiguous_copy_matches_numpy(shape, rnd, dtype, sliced):
    # permuted (and sliced) layouts: the tiled transpose path for large float arrays
    from tensorlib.ops.shape import contiguous_copy
    shape = [d * 6 if i < 2 else d for i, d in enumerate(shape)]     # often over 32K elements
    assume(np.prod(shape) <= 400_000)
    a = np.arange(np.prod(shape), dtype=dtype).reshape(shape)
    if sliced:
        a = a[::2]
    perm = list(range(a.ndim))
    rnd.shuffle(perm)
    v = a.transpose(perm)
    c = contiguous_copy(v)
    assert c.flags.c_contiguous and c.dtype == v.dtype
    np.testing.assert_array_equal(c, v)


@pytest.mark.parametrize("shape, perm", [
    ((300, 200), (1, 0)),                       # one plane, tiles of rows on the threads
    ((16, 64, 24, 24), (0, 2, 3, 1)),           # NCHW -> NHWC: two plane axes
    ((4, 50, 60, 70), (3, 1, 0, 2)),
    ((32, 8, 128, 64), (0, 1, 3, 2)),           # a batched transpose of the last two
    ((2, 3, 4, 50, 60), (0, 1, 2, 4, 3)),       # three plane axes: one call per plane
])
def test_tiled_copies_of_permuted_layouts(shape, perm):
    from tensorlib.ops.shape import contiguous_copy
    for dt in (np.float32, np.float64):
        a = np.random.default_rng(1).standard_normal(shape).astype(dt).transpose(perm)
        c = contiguous_copy(a)
        assert c.flags.c_contiguous
        np.testing.assert_array_equal(c, a)


def test_tiled_copy_leaves_strides_that_are_not_whole_items_to_numpy():
    # a packed record array's field has a row stride of 801 bytes: as whole float32 items
    # the tiled copy read garbage
    rec = np.zeros(300, dtype=[("v", "<f4", (200,)), ("flag", "u1")])
    rec["v"] = np.random.default_rng(0).standard_normal((300, 200))
    v = tl.from_numpy(rec["v"])
    np.testing.assert_array_equal(v.T.contiguous().numpy(), rec["v"].T)
    np.testing.assert_array_equal(v.T.reshape(-1).numpy(), rec["v"].T.reshape(-1))
    with pytest.raises(ValueError, match="multiples of the item size"):
        _ops.transpose_copy(rec["v"].T, np.empty((200, 300), np.float32))


def test_reshape_keeps_views_and_copies_transposes_in_tiles():
    base = tl.tensor(np.zeros((2048, 32), np.float32))
    v = base[::2].reshape(2, 512, 32)         # NumPy can make this a view: it stays one
    v.add_(1.0)
    assert float(base.sum()) == 1024 * 32 and float(base[1::2].sum()) == 0
    x = tl.tensor(np.random.default_rng(0).standard_normal((300, 200)).astype(np.float32))
    np.testing.assert_array_equal(x.T.reshape(-1).numpy(), x.numpy().T.reshape(-1))
    np.testing.assert_array_equal(x.T.contiguous().numpy(), x.numpy().T)


@pytest.mark.skipif(not _gemm.ENABLED, reason="no tensorlib GEMM on this CPU")
def test_per_image_conv_is_chosen_by_its_gemm_shape():
    """The per-image kernels take convolutions whose GEMMs suit the register tile, and leave
    the rest (a depthwise weight gradient: 1 x 9 results) to the chunked path; on AVX2 also
    shallow products over many columns."""
    t = _ops.max_threads()
    w3 = dict(N=64, groups=1)
    assert nn_conv._image_threads(np.float32, m=64, n=196, k=800, **w3) == t      # conv2 fwd
    assert nn_conv._image_threads(np.float32, m=800, n=196, k=64, **w3) == t      # input grad
    assert nn_conv._image_threads(np.float32, m=32, n=25, k=784, **w3) == t       # conv1 wgrad
    assert nn_conv._image_threads(np.float32, N=8, groups=1, m=32, n=25, k=784) == 1
    assert nn_conv._image_threads(np.float64, m=64, n=196, k=800, **w3) == 0
    assert nn_conv._image_threads(np.float32, N=64, groups=32, m=1, n=9, k=784) == 0
    assert nn_conv._image_threads(np.float32, N=64, groups=1, m=144, n=1024, k=4) == 0
    # (fewer images than threads: 0; with one thread one image fills them)
    assert nn_conv._image_threads(np.float32, N=1, groups=1, m=64, n=4096, k=800) == \
        (1 if t == 1 else 0)
    # few output positions per image (a DCGAN's 4x4 maps): the chunked path's GEMM spans
    # the images (2-6x faster there)
    assert nn_conv._image_threads(np.float32, N=64, groups=1, m=256, n=16, k=2048, hw=16) == 0
    assert nn_conv._image_threads(np.float32, m=64, n=196, k=800, hw=196, **w3) == t
    assert nn_conv._image_threads(np.float32, N=64, groups=1, m=_gemm.MAX_DIM + 1, n=64,
                                  k=64) == 0
    with _gemm.use_isa("avx2"):     # a 3->64 forward at 112x112: depth 27, 12544 columns
        assert nn_conv._image_threads(np.float32, N=8, groups=1, m=64, n=12544, k=27) == 0
        assert nn_conv._image_threads(np.float32, m=64, n=196, k=800, **w3) == t
        assert nn_conv._image_threads(np.float32, m=64, n=784, k=25, **w3) == t   # conv1


@pytest.mark.parametrize("subscripts,shapes", [
    ("bij,bjk->bik", [(8, 30, 40), (8, 40, 50)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 20, 16), (2, 3, 24, 16)]),
    ("i,i->", [(200_000,), (200_000,)]),
    ("bi,oij,bj->bo", [(16, 32), (8, 32, 24), (16, 24)]),
    ("ij,jk->ik", [(3, 4), (4, 5)]),
])
def test_einsum_contraction_path_matches_the_plain_loop(subscripts, shapes):
    """Large contractions take a planned path (pairwise, through BLAS); small ones NumPy's
    single loop. Values and gradients are the same either way."""
    from tensorlib.ops import linalg
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s) for s in shapes]
    plan = linalg._einsum_plan(subscripts, tuple(shapes))
    naive = 1
    for d in {c: d for sub, s in zip(subscripts.split("->")[0].split(","), shapes)
              for c, d in zip(sub, s)}.values():
        naive *= d
    assert (plan is False) == (naive < linalg.EINSUM_PLAN_MIN)
    ts = [tl.tensor(x, requires_grad=True) for x in xs]
    out = tl.einsum(subscripts, *ts)
    np.testing.assert_allclose(out.numpy(), np.einsum(subscripts, *xs), rtol=1e-10,
                               atol=1e-10)
    out.sum().backward()
    for i, t in enumerate(ts):   # d sum / d x_i: the contraction of ones with the others
        others = [np.ones(out.shape)] + [x for j, x in enumerate(xs) if j != i]
        lhs = subscripts.split("->")
        sub = ",".join([lhs[1]] + [s for j, s in enumerate(lhs[0].split(",")) if j != i])
        ref = np.einsum(f"{sub}->{lhs[0].split(',')[i]}", *others)
        np.testing.assert_allclose(t.grad.numpy(), ref, rtol=1e-9, atol=1e-9)


@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.sampled_from(["reflect", "edge"]),
       st.data(), st.sampled_from([np.float32, np.float64]))
def test_pad_planes_kernels_match_numpys_pad_and_its_adjoint(shape, mode, data, dtype):
    """F.pad's reflect/edge pads of the last two axes run in _ops.pad_planes and their
    gradient in pad_planes_grad: both against np.pad and the transpose of its Jacobian
    (sum of x * pad_grad(g) == sum of pad(x) * g)."""
    n = len(shape)
    widths = [(0, 0)] * n
    for ax in range(max(0, n - 2), n):
        hi = shape[ax] - 1 if mode == "reflect" else 3
        widths[ax] = (data.draw(st.integers(0, hi)), data.draw(st.integers(0, hi)))
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    y = tl.pad(tl.tensor(x), widths, mode=mode)
    np.testing.assert_array_equal(y.numpy(), np.pad(x, widths, mode=mode))
    g = rng.standard_normal(y.shape).astype(dtype)
    gx = tl.apply(tl.REGISTRY["pad_grad"], tl.tensor(g), pad_width=tuple(widths), mode=mode)
    assert gx.shape == x.shape
    np.testing.assert_allclose(float((x * gx.numpy()).sum()),
                               float((np.pad(x, widths, mode=mode) * g).sum()), rtol=1e-4)


def test_pad_planes_kernels_check_their_maps():
    x, out = np.zeros((1, 3, 4), np.float32), np.zeros((1, 5, 6), np.float32)
    rows, cols = np.array([1, 0, 1, 2, 1]), np.array([1, 0, 1, 2, 3, 2])
    _ops.pad_planes(x, out, rows, cols, 1)
    with pytest.raises(ValueError, match="row index out of range"):
        _ops.pad_planes(x, out, np.array([1, 0, 1, 2, 3]), cols, 1)
    with pytest.raises(ValueError, match="column index out of range"):
        _ops.pad_planes_grad(out, x, rows, np.array([1, 0, 1, 2, 3, -1]), 1)
    with pytest.raises(ValueError, match="shapes do not match"):
        _ops.pad_planes(x, out, rows, cols, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_relu_gradient_passes_at_nan_inputs_as_pytorch(dtype):
    # PyTorch's threshold backward: 0 where x <= 0, else g, so a NaN input passes g (the
    # Cython kernel, the NumPy form for float16, and the CUDA source follow one rule)
    x = tl.tensor(np.array([np.nan, -1.0, 0.0, 2.0], dtype), requires_grad=True)
    (g,) = tl.autograd.grad(tl.relu(x).sum(), [x])
    np.testing.assert_array_equal(g.numpy(), np.array([1, 0, 0, 1], dtype))
