"""Fractional max pooling, CrossMapLRN2d and AdaptiveLogSoftmaxWithLoss against PyTorch:
values, indices, gradients (float64), state_dict loading, errors and graph capture."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _np(t):
    return np.asarray(t.detach().numpy() if hasattr(t, "detach") else t)


# --- fractional max pooling -------------------------------------------------------------------
@st.composite
def _frac_case(draw):
    nd = draw(st.sampled_from([2, 3]))
    sp = tuple(draw(st.integers(2, 9)) for _ in range(nd))
    k = tuple(draw(st.integers(1, s - 1 if nd == 3 else s)) for s in sp)
    # PyTorch's bound: out + k - 1 <= in (strictly < in for 3-d)
    out = tuple(draw(st.integers(1, s - kk + (1 if nd == 2 else 0))) for s, kk in zip(sp, k))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return dict(nd=nd, sp=sp, k=k, out=out, n=n, c=c, unbatched=draw(st.booleans()),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                ties=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)))


def _frac_pair(nd):
    return ((F.fractional_max_pool2d, TF.fractional_max_pool2d) if nd == 2 else
            (F.fractional_max_pool3d, TF.fractional_max_pool3d))


@settings(max_examples=80, deadline=None)
@given(_frac_case())
def test_fractional_max_pool_values_and_indices_equal_torch(case):
    rs = np.random.RandomState(case["seed"])
    nd, n, c = case["nd"], case["n"], case["c"]
    x = rs.randn(n, c, *case["sp"]).astype(case["dtype"])
    if case["ties"]:
        x = np.round(x)                              # many equal maxima: the first must win
    u = rs.rand(n, c, nd).astype(case["dtype"])
    if case["unbatched"]:
        x, u = x[0], u[:1]
    ours, theirs = _frac_pair(nd)
    ty, ti = theirs(torch.from_numpy(x), case["k"], case["out"], return_indices=True,
                    _random_samples=torch.from_numpy(u))
    y, i = ours(tl.tensor(x), case["k"], case["out"], return_indices=True,
                _random_samples=tl.tensor(u))
    assert y.dtype == x.dtype and i.dtype == np.int64
    np.testing.assert_array_equal(_np(y), ty.numpy())
    np.testing.assert_array_equal(_np(i), ti.numpy())


@pytest.mark.parametrize("nd", [2, 3])
def test_fractional_max_pool_float32_interval_rounding(nd):
    # samples near the places where float32 (PyTorch computes the starts in the input's
    # dtype) and float64 arithmetic land on different ints
    rs = np.random.RandomState(1)
    sp = (31,) * nd
    x = rs.randn(2, 4, *sp).astype(np.float32)
    u = rs.rand(2, 4, nd).astype(np.float32)
    u[0, 0] = 0.0
    u[1, 1] = np.nextafter(np.float32(1), np.float32(0))
    ours, theirs = _frac_pair(nd)
    for out in (7, 13, 29 if nd == 2 else 28):
        ty, ti = theirs(torch.from_numpy(x), 2, out, return_indices=True,
                        _random_samples=torch.from_numpy(u))
        y, i = ours(tl.tensor(x), 2, out, return_indices=True, _random_samples=tl.tensor(u))
        np.testing.assert_array_equal(_np(y), ty.numpy())
        np.testing.assert_array_equal(_np(i), ti.numpy())


@pytest.mark.parametrize("nd", [2, 3])
def test_fractional_max_pool_nan_picks_last_nan_as_torch(nd):
    rs = np.random.RandomState(2)
    x = rs.randn(1, 2, *(6,) * nd)
    x.reshape(-1)[rs.choice(x.size, x.size // 4, replace=False)] = np.nan
    u = rs.rand(1, 2, nd)
    ours, theirs = _frac_pair(nd)
    ty, ti = theirs(torch.from_numpy(x), 3, 3, return_indices=True,
                    _random_samples=torch.from_numpy(u))
    y, i = ours(tl.tensor(x), 3, 3, return_indices=True, _random_samples=tl.tensor(u))
    np.testing.assert_array_equal(_np(y), ty.numpy())
    np.testing.assert_array_equal(_np(i), ti.numpy())


@pytest.mark.parametrize("nd,unbatched", [(2, False), (2, True), (3, False), (3, True)])
def test_fractional_max_pool_gradients_equal_torch(nd, unbatched):
    rs = np.random.RandomState(3)
    x = np.round(rs.randn(2, 3, *(7,) * nd) * 2) / 2       # ties: gradient to the first
    u = rs.rand(2, 3, nd)
    if unbatched:
        x, u = x[0], u[:1]
    go = rs.randn(*x.shape[:-nd], *(3,) * nd)
    ours, theirs = _frac_pair(nd)
    xt = torch.tensor(x, requires_grad=True)
    got = torch.tensor(go, requires_grad=True)
    yt = theirs(xt, 2, output_ratio=(0.5,) * nd, _random_samples=torch.from_numpy(u))
    gt, = torch.autograd.grad(yt, xt, got, create_graph=True)
    xl = tl.tensor(x, requires_grad=True)
    gol = tl.tensor(go, requires_grad=True)
    yl = ours(xl, 2, output_ratio=0.5, _random_samples=tl.tensor(u))
    np.testing.assert_array_equal(_np(yl), yt.detach().numpy())
    gl, = tl.grad(yl, xl, gol, create_graph=True)
    np.testing.assert_array_equal(_np(gl), gt.detach().numpy())
    # grad of grad: d/d(grad_output) of sum(grad_x * w)
    w = rs.randn(*x.shape)
    ggt, = torch.autograd.grad((gt * torch.from_numpy(w)).sum(), got)
    ggl, = tl.grad((gl * tl.tensor(w)).sum(), gol)
    np.testing.assert_allclose(_np(ggl), ggt.numpy(), rtol=1e-12, atol=1e-12)


def test_fractional_max_pool_gradcheck():
    rs = np.random.RandomState(4)
    x = tl.tensor(rs.randn(1, 2, 6, 7), requires_grad=True)     # distinct values: smooth
    u = tl.tensor(rs.rand(1, 2, 2))
    assert tl.autograd.gradcheck(lambda t: F.fractional_max_pool2d(t, 2, (3, 4),
                                                                   _random_samples=u), (x,))


def test_fractional_max_pool_output_ratio_and_module_match_torch():
    rs = np.random.RandomState(5)
    x = rs.randn(2, 3, 10, 9).astype(np.float32)
    u = rs.rand(2, 3, 2).astype(np.float32)
    tm = torch.nn.FractionalMaxPool2d((2, 3), output_ratio=(0.5, 0.6), return_indices=True,
                                      _random_samples=torch.from_numpy(u))
    m = nn.FractionalMaxPool2d((2, 3), output_ratio=(0.5, 0.6), return_indices=True,
                               _random_samples=tl.tensor(u))
    (ty, ti), (y, i) = tm(torch.from_numpy(x)), m(tl.tensor(x))
    np.testing.assert_array_equal(_np(y), ty.numpy())
    np.testing.assert_array_equal(_np(i), ti.numpy())
    assert "_random_samples" in dict(m.named_buffers())
    x3 = rs.randn(1, 2, 8, 9, 10)
    u3 = rs.rand(1, 2, 3)
    tm3 = torch.nn.FractionalMaxPool3d(2, output_size=(3, 4, 5),
                                       _random_samples=torch.from_numpy(u3))
    m3 = nn.FractionalMaxPool3d(2, output_size=(3, 4, 5), _random_samples=tl.tensor(u3))
    np.testing.assert_array_equal(_np(m3(tl.tensor(x3))), tm3(torch.from_numpy(x3)).numpy())


def test_fractional_max_pool_draws_from_tensorlib_generator():
    x = tl.randn(2, 3, 11, 11)
    tl.manual_seed(7)
    y, i = F.fractional_max_pool2d(x, 2, 5, return_indices=True)
    tl.manual_seed(7)
    u = tl.rand(2, 3, 2)
    y2, i2 = F.fractional_max_pool2d(x, 2, 5, return_indices=True, _random_samples=u)
    np.testing.assert_array_equal(_np(y), _np(y2))
    np.testing.assert_array_equal(_np(i), _np(i2))
    ty = TF.fractional_max_pool2d(torch.from_numpy(_np(x)), 2, 5,
                                  _random_samples=torch.from_numpy(_np(u)))
    np.testing.assert_array_equal(_np(y), ty.numpy())
    # a second draw moves the regions (with overwhelming probability for 3 x 2 planes)
    ys = [_np(F.fractional_max_pool2d(x, 2, 5, return_indices=True)[1]) for _ in range(4)]
    assert any(not np.array_equal(ys[0], o) for o in ys[1:])


def test_fractional_max_pool_errors():
    x = tl.randn(2, 3, 7, 8)
    with pytest.raises(ValueError, match="either an output_size or an output_ratio"):
        F.fractional_max_pool2d(x, 2)
    with pytest.raises(RuntimeError, match="pool height 5 too large relative to input height 7"):
        F.fractional_max_pool2d(x, 5, output_size=4)
    with pytest.raises(RuntimeError, match="pool time 2 too large"):
        F.fractional_max_pool3d(tl.randn(1, 1, 4, 4, 4), 2, output_size=3)  # strict in 3-d
    with pytest.raises(RuntimeError, match=r"size\(2\) equals to 2"):
        F.fractional_max_pool2d(x, 2, 3, _random_samples=tl.rand(2, 3, 3))
    with pytest.raises(RuntimeError, match=r"size\(1\) equals to input channel"):
        F.fractional_max_pool2d(x, 2, 3, _random_samples=tl.rand(2, 2, 2))
    with pytest.raises(RuntimeError, match="no less than the input batch size"):
        F.fractional_max_pool2d(x, 2, 3, _random_samples=tl.rand(1, 3, 2))
    with pytest.raises(RuntimeError, match="3 dimensions"):
        F.fractional_max_pool2d(x, 2, 3, _random_samples=tl.rand(2, 3))
    with pytest.raises(TypeError, match="same dtype as input"):
        F.fractional_max_pool2d(x, 2, 3, _random_samples=tl.rand(2, 3, 2, dtype=tl.float64))
    with pytest.raises(ValueError, match="3D or 4D input"):
        F.fractional_max_pool2d(tl.randn(7, 8), 2, 3)
    with pytest.raises(ValueError, match="non-zero size"):
        F.fractional_max_pool2d(tl.randn(2, 0, 7, 8), 2, 3)
    with pytest.raises(TypeError, match="floating point"):
        F.fractional_max_pool2d(tl.tensor(np.ones((1, 1, 5, 5), np.int64)), 2, 3)
    with pytest.raises(ValueError, match="kernel_size must be greater than 0"):
        nn.FractionalMaxPool3d(0, output_size=2)
    with pytest.raises(ValueError, match=r"output_ratio must be between 0 and 1 \(got 1.5\)"):
        nn.FractionalMaxPool2d(2, output_ratio=1.5)
    with pytest.raises(ValueError, match="only one of output_size and output_ratio"):
        nn.FractionalMaxPool2d(2, output_size=3, output_ratio=0.5)
    with pytest.raises(ValueError, match="FractionalMaxPool2d requires specifying either"):
        nn.FractionalMaxPool2d(2)


def test_fractional_max_pool_capture_matches_eager():
    rs = np.random.RandomState(6)
    u = tl.tensor(rs.rand(2, 3, 2).astype(np.float32))
    pool = nn.FractionalMaxPool2d(3, output_size=(5, 4), return_indices=True, _random_samples=u)

    @tl.function
    def f(x):
        return pool(x)

    for _ in range(3):
        x = tl.tensor(rs.randn(2, 3, 12, 10).astype(np.float32))
        with tl.no_grad():
            y, i = f(x)
        ey, ei = pool(x)
        np.testing.assert_array_equal(_np(y), _np(ey))
        np.testing.assert_array_equal(_np(i), _np(ei))

    @tl.function
    def g(x):
        return F.fractional_max_pool2d(x, 2, 3)

    with pytest.raises(RuntimeError, match="_random_samples"):
        with tl.no_grad():
            g(tl.randn(1, 1, 6, 6))


# --- CrossMapLRN2d ---------------------------------------------------------------------------
def _lrn_torch_reference(x, size, alpha, beta, k):
    """PyTorch's CrossMapLRN2d forward, written in torch ops (so torch autograd gives the
    formula's gradient: PyTorch's own hand-written backward is not it, see below)."""
    c = x.shape[1]
    p = int((size - 1) / 2 + 1)
    sq = x * x
    cols = []
    for ch in range(c):
        js = set(range(max(0, ch - p + 1), min(c - 1, ch + p - 1) + 1)) | {0}
        cols.append(sum(sq[:, j] for j in sorted(js)))
    return x * (torch.stack(cols, 1) * (alpha / size) + k) ** -beta


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 7), c=st.integers(1, 9), seed=st.integers(0, 2**31 - 1),
       alpha=st.floats(1e-4, 2.0), beta=st.floats(0.1, 1.5), k=st.floats(0.5, 3.0))
def test_cross_map_lrn2d_matches_torch(size, c, seed, alpha, beta, k):
    rs = np.random.RandomState(seed)
    x = rs.randn(2, c, 3, 4)
    tm = torch.nn.CrossMapLRN2d(size, alpha, beta, k)
    m = nn.CrossMapLRN2d(size, alpha, beta, k)
    xt = torch.tensor(x, requires_grad=True)
    yt = tm(xt)
    xl = tl.tensor(x, requires_grad=True)
    yl = m(xl)
    np.testing.assert_allclose(_np(yl), yt.detach().numpy(), rtol=1e-12, atol=1e-14)
    go = rs.randn(*x.shape)
    ref = _lrn_torch_reference(xt, size, alpha, beta, k)
    np.testing.assert_allclose(ref.detach().numpy(), yt.detach().numpy(), rtol=1e-12)
    gt, = torch.autograd.grad(ref, xt, torch.from_numpy(go))
    gl, = tl.grad(yl, xl, tl.tensor(go))
    np.testing.assert_allclose(_np(gl), gt.numpy(), rtol=1e-10, atol=1e-12)
    if c == 1 and size > 1:      # where PyTorch's hand-written backward is right, it agrees
        gtm, = torch.autograd.grad(yt, xt, torch.from_numpy(go))
        np.testing.assert_allclose(_np(gl), gtm.numpy(), rtol=1e-10, atol=1e-12)


def test_cross_map_lrn2d_float32_gradcheck_and_gradgradcheck():
    rs = np.random.RandomState(8)
    x = rs.randn(2, 6, 3, 3).astype(np.float32)
    np.testing.assert_allclose(_np(nn.CrossMapLRN2d(5, 0.1, 0.75, 2.0)(tl.tensor(x))),
                               torch.nn.CrossMapLRN2d(5, 0.1, 0.75, 2.0)(torch.from_numpy(x))
                               .numpy(), rtol=1e-6, atol=1e-7)
    m = nn.CrossMapLRN2d(4, 0.5, 0.6, 1.5)
    xd = tl.tensor(rs.randn(1, 5, 2, 2), requires_grad=True)
    assert tl.autograd.gradcheck(m, (xd,))
    assert tl.autograd.gradgradcheck(m, (xd,))


def test_cross_map_lrn2d_errors_and_repr():
    with pytest.raises(ValueError, match="Expected input to be 4D, got 3D instead"):
        nn.CrossMapLRN2d(3)(tl.randn(2, 3, 4))
    with pytest.raises(ValueError, match="size must be a positive int"):
        nn.CrossMapLRN2d(0)
    assert repr(nn.CrossMapLRN2d(3, 1e-3)) == repr(torch.nn.CrossMapLRN2d(3, 1e-3))


def test_cross_map_lrn2d_capture_matches_eager():
    m = nn.CrossMapLRN2d(5, 0.3, 0.75, 1.0)
    f = tl.function(lambda x: m(x))
    rs = np.random.RandomState(9)
    for _ in range(2):
        x = tl.tensor(rs.randn(2, 7, 4, 4).astype(np.float32))
        with tl.no_grad():
            np.testing.assert_allclose(_np(f(x)), _np(m(x)), rtol=1e-6)


# --- AdaptiveLogSoftmaxWithLoss ----------------------------------------------------------------
def _asm_pair(in_features=16, n_classes=20, cutoffs=(4, 10, 15), div_value=2.0,
              head_bias=True, seed=0):
    torch.manual_seed(seed)
    tm = torch.nn.AdaptiveLogSoftmaxWithLoss(in_features, n_classes, list(cutoffs), div_value,
                                             head_bias).double()
    m = nn.AdaptiveLogSoftmaxWithLoss(in_features, n_classes, cutoffs, div_value, head_bias,
                                      dtype=tl.float64)
    m.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, m


def test_adaptive_softmax_parameters_match_torch_names_and_shapes():
    for kw in (dict(head_bias=False, div_value=4.0), dict(head_bias=True, div_value=2.0)):
        tm = torch.nn.AdaptiveLogSoftmaxWithLoss(32, 50, [5, 20, 40], **kw)
        m = nn.AdaptiveLogSoftmaxWithLoss(32, 50, [5, 20, 40], **kw)
        assert {k: tuple(v.shape) for k, v in m.state_dict().items()} == \
            {k: tuple(v.shape) for k, v in tm.state_dict().items()}
        assert isinstance(m.head, nn.Linear) and isinstance(m.tail, nn.ModuleList)
        assert all(isinstance(s, nn.Sequential) for s in m.tail)
        assert (m.shortlist_size, m.n_clusters, m.head_size, m.cutoffs) == \
            (tm.shortlist_size, tm.n_clusters, tm.head_size, tm.cutoffs)


@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 12), seed=st.integers(0, 2**31 - 1), head_bias=st.booleans())
def test_adaptive_softmax_forward_and_gradients_match_torch(batch, seed, head_bias):
    rs = np.random.RandomState(seed)
    tm, m = _asm_pair(head_bias=head_bias, seed=seed % 1000)
    x = rs.randn(batch, 16)
    t = rs.randint(0, 20, size=batch)
    xt = torch.tensor(x, requires_grad=True)
    xl = tl.tensor(x, requires_grad=True)
    rt = tm(xt, torch.from_numpy(t))
    r = m(xl, tl.tensor(t))
    assert type(r).__name__ == "_ASMoutput" and r._fields == ("output", "loss")
    np.testing.assert_allclose(_np(r.output), rt.output.detach().numpy(), rtol=1e-12,
                               atol=1e-13)
    np.testing.assert_allclose(float(r.loss), rt.loss.item(), rtol=1e-12)
    rt.loss.backward()
    r.loss.backward()
    np.testing.assert_allclose(_np(xl.grad), xt.grad.numpy(), rtol=1e-10, atol=1e-13)
    tp, lp = dict(tm.named_parameters()), dict(m.named_parameters())
    assert tp.keys() == lp.keys()
    for name, p in lp.items():
        tg = tp[name].grad
        want = np.zeros(p.shape) if tg is None else tg.numpy()   # unused cluster: no grad
        got = np.zeros(p.shape) if p.grad is None else _np(p.grad)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13, err_msg=name)


def test_adaptive_softmax_unbatched_log_prob_and_predict():
    tm, m = _asm_pair()
    rs = np.random.RandomState(10)
    x = rs.randn(16)
    rt = tm(torch.from_numpy(x), torch.tensor(12))
    r = m(tl.tensor(x), tl.tensor(12))
    assert r.output.shape == tuple(rt.output.shape) == ()
    np.testing.assert_allclose(float(r.output), rt.output.item(), rtol=1e-12)
    xb = rs.randn(10, 16)
    lp = m.log_prob(tl.tensor(xb))
    np.testing.assert_allclose(_np(lp), tm.log_prob(torch.from_numpy(xb)).detach().numpy(),
                               rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(np.exp(_np(lp)).sum(1), 1.0, rtol=1e-12)
    # predict through each of its branches: none, some and all rows' head best a cluster
    for bias in (0.0, 3.0, 50.0):
        with torch.no_grad():
            tm.head.bias[tm.shortlist_size:] = bias
        m.head.bias.data[m.shortlist_size:] = bias
        want = tm.predict(torch.from_numpy(xb)).numpy()
        got = _np(m.predict(tl.tensor(xb)))
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.int64
    assert (want >= tm.shortlist_size).all()


def test_adaptive_softmax_errors():
    msg = "cutoffs should be a sequence of unique, positive integers sorted"
    for cutoffs in ([5, 3], [0, 4], [4, 20], [4, 4, 8], [2.5, 6]):
        with pytest.raises(ValueError, match=msg):
            torch.nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs)
        with pytest.raises(ValueError, match=msg):
            nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs)
    with pytest.raises(ValueError, match="cutoffs should be a sequence of length larger than 0"):
        nn.AdaptiveLogSoftmaxWithLoss(8, 20, [])
    m = nn.AdaptiveLogSoftmaxWithLoss(8, 20, [4, 10])
    x = tl.randn(3, 8)
    with pytest.raises(RuntimeError, match=r"Target values should be in \[0, 19\], but values "
                       r"in range \[-1, 20\] were found"):
        m(x, tl.tensor([-1, 5, 20]))
    with pytest.raises(RuntimeError, match="same size in the batch dimension"):
        m(x, tl.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="1D target tensor expects 2D input"):
        m(tl.randn(3, 2, 8), tl.tensor([1, 2, 3]))
    with pytest.raises(RuntimeError, match="0D target tensor expects 1D input"):
        m(x, tl.tensor(1))
    with pytest.raises(RuntimeError, match="multi-target not supported"):
        m(x, tl.tensor([[1, 2, 3]]))


def test_adaptive_softmax_capture_matches_eager():
    _, m = _asm_pair()
    fwd = tl.function(lambda x, t: m(x, t))
    lp = tl.function(lambda x: m.log_prob(x))
    pred = tl.function(lambda x: m.predict(x))
    rs = np.random.RandomState(11)
    with tl.no_grad():
        for _ in range(2):
            x = tl.tensor(rs.randn(9, 16))
            t = tl.tensor(rs.randint(0, 20, size=9))
            out, loss = fwd(x, t)
            e = m(x, t)
            np.testing.assert_allclose(_np(out), _np(e.output), rtol=1e-12)
            np.testing.assert_allclose(float(loss), float(e.loss), rtol=1e-12)
            np.testing.assert_allclose(_np(lp(x)), _np(m.log_prob(x)), rtol=1e-12)
            np.testing.assert_array_equal(_np(pred(x)), _np(m.predict(x)))


def test_fractional_max_pool_capture_follows_changed_samples():
    """The samples are module state: a captured graph reads them when it runs (changing
    them in place changes the windows, with no retrace and no stale result)."""
    rs = np.random.RandomState(7)
    u = tl.tensor(rs.rand(2, 3, 2).astype(np.float32))
    pool = nn.FractionalMaxPool2d(3, output_size=(5, 4), _random_samples=u)
    f = tl.function(lambda x: pool(x))
    x = tl.tensor(rs.randn(2, 3, 12, 10).astype(np.float32))
    with tl.no_grad():
        f(x)
        pool._random_samples.copy_(tl.tensor(rs.rand(2, 3, 2).astype(np.float32)))
        got = f(x)
    np.testing.assert_array_equal(_np(got), _np(pool(x)))
    assert f.trace_count == 1
