"""Numerics trial 19 fixes, each compared against PyTorch: integer fmod/gcd/lcm at INT_MIN,
cross_entropy/nll_loss ignored rows with -inf, median of infinities, lgamma near 1 and 2,
big Python ints into float tensors, NaN through threshold/hardshrink, entr(-inf), margin
losses at the hinge, leaky_relu (out of place and truly in place)."""
import itertools
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")
F = tl.nn.functional
TF = torch.nn.functional
inf, nan = math.inf, math.nan
INTS = [(np.int8, torch.int8), (np.int16, torch.int16), (np.int32, torch.int32),
        (np.int64, torch.int64), (np.uint8, torch.uint8)]


def _edge_values(dt):
    ii = np.iinfo(dt)
    if ii.min == 0:
        return [0, 1, 2, 6, 12, 100, 128, 254, 255]
    return [ii.min, ii.min + 1, -7, -6, -1, 0, 1, 5, 6, 12, 100, ii.max - 1, ii.max]


def _pairs(dt):
    a, b = map(np.array, zip(*itertools.product(_edge_values(dt), repeat=2)))
    return a.astype(dt), b.astype(dt)


# --- F1: fmod -------------------------------------------------------------------------------
def test_fmod_int_min_trial_case():
    a, b = [-2**31, 1, -2**31, -7], [7, -2**31, 3, -2**31]
    got = tl.fmod(tl.tensor(a, dtype=tl.int32), tl.tensor(b, dtype=tl.int32)).tolist()
    assert got == [-2, 1, -2, -7]


@pytest.mark.parametrize("dt,tdt", INTS)
def test_fmod_integers_grid_matches_torch(dt, tdt):
    a, b = _pairs(dt)
    nz = b != 0
    a, b = a[nz], b[nz]
    got = tl.fmod(tl.tensor(a), tl.tensor(b)).numpy()
    want = torch.fmod(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-2**63, 2**63 - 1), st.integers(-2**63, 2**63 - 1)
                          .filter(lambda v: v != 0)), min_size=1, max_size=8))
def test_fmod_int64_property(pairs):
    a = np.array([p[0] for p in pairs], np.int64)
    b = np.array([p[1] for p in pairs], np.int64)
    got = tl.fmod(tl.tensor(a), tl.tensor(b)).numpy()
    want = torch.fmod(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_array_equal(got, want)


def test_fmod_float_and_scalar_unchanged():
    x = np.array([-7.5, 7.5, -0.0, 3.0], np.float64)
    got = tl.fmod(tl.tensor(x), -2.0).numpy()
    want = torch.fmod(torch.from_numpy(x), -2.0).numpy()
    np.testing.assert_array_equal(got, want)
    assert np.signbit(got[2])
    assert tl.fmod(tl.tensor([-2**63]), 7).tolist() == [-1]


# --- F2: gcd / lcm --------------------------------------------------------------------------
@pytest.mark.parametrize("dt,tdt", INTS)
def test_gcd_grid_matches_torch(dt, tdt):
    a, b = _pairs(dt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = tl.gcd(tl.tensor(a), tl.tensor(b)).numpy()
    want = torch.gcd(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_array_equal(got, want)


def test_gcd_trial_cases():
    i32 = tl.int32
    assert tl.gcd(tl.tensor([1, 100], dtype=i32), tl.tensor([-2**31, -2**31], dtype=i32)) \
        .tolist() == [1, 4]
    assert tl.gcd(tl.tensor([1], dtype=tl.int8), tl.tensor([-128], dtype=tl.int8)).tolist() == [1]


@pytest.mark.parametrize("dt,tdt", INTS)
def test_lcm_grid_matches_torch(dt, tdt):
    a, b = _pairs(dt)
    g = torch.gcd(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    if np.iinfo(dt).min < 0:
        # PyTorch divides INT_MIN by gcd = -1 there: SIGFPE, not a result to compare
        keep = ~((g == -1) & ((a == np.iinfo(dt).min) | (b == np.iinfo(dt).min)))
        a, b = a[keep], b[keep]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = tl.lcm(tl.tensor(a), tl.tensor(b)).numpy()
    want = torch.lcm(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)


def test_gcd_rejects_floats():
    with pytest.raises(TypeError, match="gcd"):
        tl.gcd(tl.tensor([1.0]), tl.tensor([2.0]))


# --- F5: cross_entropy / nll_loss with ignore_index -----------------------------------------
def _both(fn_name, x, t, requires_grad=True, **kw):
    out = []
    for lib in (tl, torch):
        xt = lib.tensor(x, dtype=lib.float64, requires_grad=requires_grad)
        k = dict(kw)
        if k.get("weight") is not None:
            k["weight"] = lib.tensor(k["weight"], dtype=lib.float64)
        loss = getattr(lib.nn.functional, fn_name)(xt, lib.tensor(t), **k)
        (g,) = lib.autograd.grad(loss.sum(), [xt])
        out.append((loss.detach().numpy(), g.detach().numpy()))
    return out


ROWS = [[-inf, 0.0, 1.0], [0.0, 1.0, 2.0], [1.0, -inf, 0.5]]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("extra", [{}, {"label_smoothing": 0.1}, {"weight": [1.0, 2.0, 3.0]},
                                   {"weight": [1.0, 2.0, 3.0], "label_smoothing": 0.25}])
def test_cross_entropy_ignored_inf_row(reduction, extra):
    (lt, gt), (lo, go) = _both("cross_entropy", ROWS, [0, 1, 0], ignore_index=0,
                               reduction=reduction, **extra)
    assert np.all(np.isfinite(lt))
    np.testing.assert_allclose(lt, lo, rtol=1e-12)
    np.testing.assert_allclose(gt, go, rtol=1e-12, atol=1e-15)


def test_cross_entropy_trial_cases():
    x = [[-inf, 0.0, 1.0], [0.0, 1.0, 2.0]]
    got = F.cross_entropy(tl.tensor(x), tl.tensor([2, 1]), ignore_index=2).item()
    want = TF.cross_entropy(torch.tensor(x), torch.tensor([2, 1]), ignore_index=2).item()
    assert got == pytest.approx(want, rel=1e-6)
    got = F.cross_entropy(tl.tensor(x), tl.tensor([0, 1]), ignore_index=0, reduction="none")
    assert got.tolist()[0] == 0.0 and math.isfinite(got.tolist()[1])


def test_cross_entropy_ignored_row_of_all_neg_inf():
    # the loss as PyTorch's; the gradient of the ignored row is 0 (PyTorch: NaN from its
    # log_softmax backward), with and without create_graph
    x = [[-inf, -inf, -inf], [0.0, 1.0, 2.0]]
    for cg in (False, True):
        xt = tl.tensor(x, dtype=tl.float64, requires_grad=True)
        loss = F.cross_entropy(xt, tl.tensor([0, 1]), ignore_index=0, label_smoothing=0.1)
        (g,) = tl.autograd.grad(loss, [xt], create_graph=cg)
        xo = torch.tensor(x, dtype=torch.float64)
        want = TF.cross_entropy(xo, torch.tensor([0, 1]), ignore_index=0, label_smoothing=0.1)
        assert loss.item() == pytest.approx(want.item(), rel=1e-12)
        assert g.numpy()[0].tolist() == [0.0, 0.0, 0.0]
        assert np.all(np.isfinite(g.numpy()))


def test_cross_entropy_spatial_ignored_inf():
    x = np.zeros((2, 3, 2))
    x[0, :, 1] = [-inf, 0.0, 3.0]
    t = [[1, 0], [2, 2]]
    (lt, gt), (lo, go) = _both("cross_entropy", x.tolist(), t, ignore_index=0)
    np.testing.assert_allclose(lt, lo, rtol=1e-12)
    np.testing.assert_allclose(gt, go, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weight", [None, [2.0, 3.0]])
def test_nll_loss_ignored_inf_row(reduction, weight):
    x = [[-inf, 0.0], [-1.0, -2.0], [-inf, inf]]
    (lt, gt), (lo, go) = _both("nll_loss", x, [0, 1, 0], ignore_index=0, reduction=reduction,
                               weight=weight)
    assert np.all(np.isfinite(lt))
    np.testing.assert_allclose(lt, lo, rtol=1e-12)
    np.testing.assert_allclose(gt, go, rtol=1e-12)


def test_nll_loss_bad_target_still_raises():
    with pytest.raises(IndexError, match="nll_loss"):
        F.nll_loss(tl.tensor([[0.0, 1.0]]), tl.tensor([5]), ignore_index=0)


# --- F6: median -----------------------------------------------------------------------------
@pytest.mark.parametrize("v", [[inf, inf], [-inf, -inf], [-inf, 1.0], [1.0, inf],
                               [-inf, inf], [1.0, 2.0, 3.0, 4.0], [3.0, inf, 1.0]])
def test_median_infinities_numpy(v):
    got = tl.tensor(v, dtype=tl.float64).median().item()
    np.testing.assert_equal(got, np.median(v))


def test_median_inf_pair_matches_torch_and_gradient():
    assert tl.tensor([inf, inf]).median().item() == torch.tensor([inf, inf]).median().item()
    x = np.array([[inf, inf, 1.0, 2.0], [-inf, 0.0, -inf, 5.0]])
    np.testing.assert_equal(tl.tensor(x).median(axis=1).numpy(), np.median(x, axis=1))
    np.testing.assert_equal(tl.tensor(x).median(axis=0).numpy(), np.median(x, axis=0))
    xt = tl.tensor([1.0, 2.0, 5.0, 7.0], dtype=tl.float64, requires_grad=True)
    xt.median().backward()
    assert xt.grad.tolist() == [0.0, 0.5, 0.5, 0.0]


# --- F7: lgamma -----------------------------------------------------------------------------
LG_POINTS = [0.9999999, 1.0000001, 1 - 1e-12, 2 - 1e-9, 2 + 1e-7, 0.5, 1.5, 2.5, 1.0, 2.0,
             0.75, 1.25, 1.9, 2.2, 0.3, 3.0, 10.5, -0.5, -2.5]


def test_lgamma_float64_near_roots_matches_torch():
    x = np.array(LG_POINTS)
    got = tl.lgamma(tl.tensor(x)).numpy()
    want = torch.lgamma(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=4e-15, atol=0)


@settings(max_examples=40, deadline=None)
@given(st.floats(0.5, 2.5))
def test_lgamma_property_relative(v):
    got = tl.lgamma(tl.tensor([v], dtype=tl.float64)).item()
    want = torch.lgamma(torch.tensor([v], dtype=torch.float64)).item()
    assert got == pytest.approx(want, rel=1e-14, abs=1e-300)


def test_lgamma_gradient_and_float32():
    x = np.array([0.9999999, 1.5, 2.0000001])
    xt = tl.tensor(x, requires_grad=True)
    tl.lgamma(xt).sum().backward()
    xo = torch.tensor(x, requires_grad=True)
    torch.lgamma(xo).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), xo.grad.numpy(), rtol=1e-12)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(tl.lgamma(tl.tensor(x32)).numpy(),
                               torch.lgamma(torch.from_numpy(x32)).numpy(), rtol=1e-5,
                               atol=1e-7)
    assert tl.lgamma(tl.tensor([0.0, -1.0, -inf])).tolist() == [inf, inf, inf]


def test_digamma_polygamma_near_root():
    root = 1.4616321449683622
    x = np.array([root, root + 1e-6, 0.9999999, 2.0000001])
    got = tl.digamma(tl.tensor(x)).numpy()
    want = torch.digamma(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-15)
    got = tl.polygamma(1, tl.tensor(x)).numpy()
    want = torch.polygamma(1, torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9)


# --- F8: big Python ints into float tensors -------------------------------------------------
@pytest.mark.parametrize("v,dt,tdt", [([2**64], tl.float32, torch.float32),
                                      ([-2**63 - 1, 1.5], tl.float64, torch.float64),
                                      ([[2**70, 1], [2, 3]], tl.float16, torch.float16)])
def test_tensor_from_big_int(v, dt, tdt):
    got = tl.tensor(v, dtype=dt)
    want = torch.tensor(v, dtype=tdt)
    assert got.dtype == dt
    np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_tensor_big_int_errors():
    with pytest.raises(OverflowError, match="tensor"):
        tl.tensor([10**400], dtype=tl.float64)
    with pytest.raises(TypeError, match="tensor"):
        tl.tensor([2**64])


# --- F9: NaN through threshold / hardshrink and friends -------------------------------------
@pytest.mark.parametrize("name,args", [("threshold", (1.0, -7.0)), ("hardshrink", ()),
                                       ("softshrink", ()), ("hardtanh", ()), ("relu6", ()),
                                       ("rrelu", ()), ("leaky_relu", (0.2,))])
def test_activations_propagate_nan(name, args):
    v = [nan, 2.0, 0.5, -3.0, 1.0, -0.5]
    xt = tl.tensor(v, dtype=tl.float64, requires_grad=True)
    xo = torch.tensor(v, dtype=torch.float64, requires_grad=True)
    yt = getattr(F, name)(xt, *args)
    yo = getattr(TF, name)(xo, *args)
    np.testing.assert_array_equal(yt.detach().numpy(), yo.detach().numpy())
    yt.sum().backward()
    yo.sum().backward()
    gt, go = xt.grad.numpy(), xo.grad.numpy()
    if name in ("hardtanh", "relu6"):
        # (their gradient at NaN, 0 here and 1 in PyTorch, lives in ops/nn_act.py)
        gt, go = gt[1:], go[1:]
    np.testing.assert_array_equal(gt, go)


def test_threshold_inplace_and_modules_nan():
    x = tl.tensor([nan, 2.0, 0.0])
    assert F.threshold(x, 1.0, 5.0, inplace=True) is x
    np.testing.assert_array_equal(x.numpy(), [nan, 2.0, 5.0])
    np.testing.assert_array_equal(tl.nn.Hardshrink()(tl.tensor([nan, 0.1])).numpy(), [nan, 0.0])
    assert F.threshold(tl.tensor([1, 2, 3]), 1, 0).tolist() == [0, 2, 3]


# --- F11: entr ------------------------------------------------------------------------------
def test_entr_neg_inf():
    v = [-inf, -1.0, -1e-300, 0.0, 0.5, inf, nan]
    xt = tl.tensor(v, dtype=tl.float64, requires_grad=True)
    xo = torch.tensor(v, dtype=torch.float64, requires_grad=True)
    yt, yo = tl.special.entr(xt), torch.special.entr(xo)
    np.testing.assert_array_equal(yt.detach().numpy(), yo.detach().numpy())
    yt.sum().backward()
    yo.sum().backward()
    np.testing.assert_array_equal(xt.grad.numpy(), xo.grad.numpy())


# --- F12: margin losses at the hinge --------------------------------------------------------
@pytest.mark.parametrize("p", [1, 2])
def test_multi_margin_loss_hinge_gradient(p):
    x = [[1.0, 0.0, 1.0], [0.5, 0.5, -0.5], [0.2, 1.2, 0.0]]
    t = [0, 1, 1]
    (lt, gt), (lo, go) = _both("multi_margin_loss", x, t, p=p)
    np.testing.assert_allclose(lt, lo, rtol=1e-12)
    np.testing.assert_allclose(gt, go, rtol=1e-12)


def test_multilabel_margin_loss_hinge_gradient():
    x = [[1.0, 0.0, 1.0], [0.5, 0.5, -0.5]]
    t = [[0, -1, -1], [1, 2, -1]]
    (lt, gt), (lo, go) = _both("multilabel_margin_loss", x, t)
    np.testing.assert_allclose(lt, lo, rtol=1e-12)
    np.testing.assert_allclose(gt, go, rtol=1e-12)


def test_multi_margin_loss_errors():
    with pytest.raises(ValueError, match="multi_margin_loss"):
        F.multi_margin_loss(tl.tensor([[1.0, 2.0]]), tl.tensor([0]), p=3)


# --- leaky_relu -----------------------------------------------------------------------------
@pytest.mark.parametrize("slope", [0.2, 0.01, 1.0, 1.5, 0.0, -0.3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_leaky_relu_values_and_grad(slope, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 5)).astype(dtype)
    x[0, :3] = [nan, -inf, inf]
    xt = tl.tensor(x, requires_grad=True)
    xo = torch.tensor(x, requires_grad=True)
    yt, yo = F.leaky_relu(xt, slope), TF.leaky_relu(xo, slope)
    np.testing.assert_array_equal(yt.detach().numpy(), yo.detach().numpy())
    yt.sum().backward()
    yo.sum().backward()
    np.testing.assert_array_equal(xt.grad.numpy(), xo.grad.numpy())


@pytest.mark.parametrize("slope", [0.2, 1.5, -0.3])
@pytest.mark.parametrize("shape,order", [((600, 1000), "C"), ((600, 1000), "F"), ((9, 7), "C")])
def test_leaky_relu_inplace_writes_the_same_memory(shape, order, slope):
    rng = np.random.default_rng(1)
    x = np.asarray(rng.standard_normal(shape), dtype=np.float32, order=order)
    x[0, :3] = [nan, -inf, inf]
    want = TF.leaky_relu(torch.from_numpy(x.copy()), slope).numpy()
    t = tl.from_numpy(x)
    v0 = t._version[0]
    with tl.no_grad():
        out = F.leaky_relu(t, slope, inplace=True)
    assert out is t and t._version[0] == v0 + 1
    np.testing.assert_array_equal(x, want)       # the caller's array itself was written


def test_leaky_relu_inplace_views_and_autograd():
    base = tl.tensor(np.arange(-6.0, 6.0).reshape(3, 4))
    F.leaky_relu(base[:, 1:3], 0.5, inplace=True)
    want = torch.arange(-6.0, 6.0, dtype=torch.float64).reshape(3, 4)
    TF.leaky_relu(want[:, 1:3], 0.5, inplace=True)
    np.testing.assert_array_equal(base.numpy(), want.numpy())
    # recorded under autograd: through the general path, gradient as PyTorch's
    a = tl.tensor([-2.0, 3.0], requires_grad=True)
    h = a * 1.0
    F.leaky_relu_(h, 0.1).sum().backward()
    assert a.grad.tolist() == [pytest.approx(0.1), 1.0]
    with pytest.raises(RuntimeError, match="leaky_relu_"):
        F.leaky_relu(tl.tensor([1.0], requires_grad=True), inplace=True)


@pytest.mark.parametrize("slope", [0.1, 2.0, -0.5])
def test_leaky_relu_zero_dim(slope):
    for v in (-2.0, 3.0):
        got = F.leaky_relu(tl.tensor(v, dtype=tl.float64), slope).item()
        assert got == TF.leaky_relu(torch.tensor(v, dtype=torch.float64), slope).item()


def test_tl_threshold_passes_nan():
    x = [float("nan"), 0.5, 1.0, 2.0]
    got = tl.threshold(tl.tensor(x), 1.0, -1.0).numpy()
    want = torch.threshold(torch.tensor(x), 1.0, -1.0).numpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ignore", [False, True])
def test_label_smoothing_fast_paths_match_torch(reduction, ignore):
    """cross_entropy(label_smoothing=) through the one-pass kernel and the fused first-order
    gradient (LLM trial: 2-2.8x PyTorch before), with and without ignored rows, and the
    differentiable path for a second derivative."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((16, 10))
    t = rng.integers(0, 10, 16)
    if ignore:
        t[[2, 5]] = -100
    X, T = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    F, TF = tl.nn.functional, torch.nn.functional
    l = F.cross_entropy(X, tl.tensor(t), label_smoothing=0.2, reduction=reduction)
    lt = TF.cross_entropy(T, torch.tensor(t), label_smoothing=0.2, reduction=reduction)
    np.testing.assert_allclose(l.detach().numpy(), lt.detach().numpy(), rtol=1e-12)
    g = np.linspace(0.5, 1.5, l.numel() if l.ndim else 1).reshape(l.shape)
    (gx,) = tl.autograd.grad(l, X, tl.tensor(g), create_graph=True)
    (tgx,) = torch.autograd.grad(lt, T, torch.tensor(g), create_graph=True)
    np.testing.assert_allclose(gx.detach().numpy(), tgx.detach().numpy(), rtol=1e-10,
                               atol=1e-14)
    (ggx,) = tl.autograd.grad((gx * gx).sum(), X)
    (tggx,) = torch.autograd.grad((tgx * tgx).sum(), T)
    np.testing.assert_allclose(ggx.numpy(), tggx.numpy(), rtol=1e-9, atol=1e-12)
    X.grad = None
    F.cross_entropy(X, tl.tensor(t), label_smoothing=0.2, reduction=reduction).backward(
        tl.tensor(g))
    T.grad = None
    TF.cross_entropy(T, torch.tensor(t), label_smoothing=0.2, reduction=reduction).backward(
        torch.tensor(g))
    np.testing.assert_allclose(X.grad.numpy(), T.grad.numpy(), rtol=1e-10, atol=1e-14)
