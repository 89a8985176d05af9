"""Fixes from the round-18 differential fuzzing of tensorlib.nn.functional against
torch.nn.functional (findings 1-9): values and float64 gradients compared with PyTorch."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.nn.dropout import Dropout3d

torch = pytest.importorskip("torch")
TF = torch.nn.functional

SETTINGS = settings(max_examples=25, deadline=None)


def _close(a, b, tol=1e-10):
    a = a.numpy() if hasattr(a, "numpy") and not isinstance(a, np.ndarray) else a
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else b
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def _pair(arr, grad=True):
    return (tl.tensor(arr, requires_grad=grad),
            torch.tensor(arr, requires_grad=grad))


# --- 1. embedding_bag(include_last_offset=True): the final offset ends the last bag ---------
@st.composite
def _bags(draw):
    n = draw(st.integers(0, 9))
    cuts = sorted(draw(st.lists(st.integers(0, n), min_size=1, max_size=5)))
    return n, [0] + cuts


@SETTINGS
@given(_bags(), st.sampled_from(["sum", "mean", "max"]), st.booleans(), st.booleans(),
       st.integers(0, 2**31 - 1))
def test_embedding_bag_last_offset_ends_last_bag(bags, mode, with_pad, with_psw, seed):
    n, off = bags
    rng = np.random.default_rng(seed)
    V = 7
    inp = rng.integers(0, V, n)
    W = rng.standard_normal((V, 3))
    end = off[-1]
    pad = 3 if with_pad else None
    psw = rng.standard_normal(n) if with_psw and mode == "sum" else None
    lw, tw = _pair(W)
    lp = None if psw is None else tl.tensor(psw, requires_grad=True)
    tp = None if psw is None else torch.tensor(psw[:end], requires_grad=True)
    got = F.embedding_bag(tl.tensor(inp), lw, tl.tensor(np.array(off)), mode=mode,
                          per_sample_weights=lp, padding_idx=pad, include_last_offset=True)
    # PyTorch's kernels disagree among themselves past the final offset (float64 sums and
    # max run to the input's end, float32 sums stop); on the input cut there, all agree
    want = TF.embedding_bag(torch.tensor(inp[:end]), tw, torch.tensor(off), mode=mode,
                            per_sample_weights=tp, padding_idx=pad, include_last_offset=True)
    assert tuple(got.shape) == tuple(want.shape)
    _close(got, want)
    cot = rng.standard_normal(tuple(want.shape))
    (got * tl.tensor(cot)).sum().backward()
    (want * torch.tensor(cot)).sum().backward()
    _close(lw.grad, tw.grad)
    if psw is not None:
        _close(lp.grad, np.concatenate([tp.grad.numpy(), np.zeros(n - end)]))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_report_repro(mode):
    W = np.arange(40.).reshape(10, 4)
    inp, off = np.array([1, 2, 4, 5, 4, 3, 2, 9]), np.array([0, 2, 2, 5])
    got = F.embedding_bag(tl.tensor(inp), tl.tensor(W), tl.tensor(off), mode=mode,
                          include_last_offset=True)
    want = TF.embedding_bag(torch.tensor(inp[:5]), torch.tensor(W), torch.tensor(off),
                            mode=mode, include_last_offset=True)
    _close(got, want)
    if mode == "sum":
        _close(got[2], [52., 55., 58., 61.])


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_embedding_bag_trailing_entries_ignored_with_freq_and_double_grad(mode):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((6, 3))
    inp, off = np.array([1, 2, 4, 1, 4, 3, 4, 1]), np.array([0, 2, 5])
    outs = []
    for x in (inp, inp[:5]):
        w = tl.tensor(W, requires_grad=True)
        y = F.embedding_bag(tl.tensor(x), w, tl.tensor(off), mode=mode,
                            include_last_offset=True, scale_grad_by_freq=True)
        g = tl.tensor(np.ones((2, 3)), requires_grad=True)
        (gw,) = tl.grad(y, [w], g, create_graph=True)
        (ggrad,) = tl.grad((gw * gw).sum(), [g])
        outs.append((y.numpy(), gw.numpy(), ggrad.numpy()))
    for a, b in zip(*outs):
        _close(a, b)


def test_embedding_bag_bad_last_offset_still_rejected():
    with pytest.raises(ValueError, match="embedding_bag"):
        F.embedding_bag(tl.tensor([1, 2]), tl.randn(4, 2), tl.tensor([0, 3]),
                        include_last_offset=True)


# --- 2. glu / split on an empty dim ----------------------------------------------------------
@pytest.mark.parametrize("shape,dim", [((0, 4), 0), ((0,), 0), ((3, 0), 1), ((2, 0, 4), 1)])
def test_glu_empty_dim(shape, dim):
    a = np.zeros(shape)
    lx, tx = _pair(a)
    got, want = F.glu(lx, dim=dim), TF.glu(tx, dim=dim)
    assert tuple(got.shape) == tuple(want.shape)
    got.sum().backward()
    want.sum().backward()
    assert tuple(lx.grad.shape) == tuple(tx.grad.shape)


def test_numpy_split_of_empty_axis():
    parts = tl.zeros(0, 3).split(2, axis=0)
    assert [tuple(p.shape) for p in parts] == [(0, 3), (0, 3)]
    assert [tuple(p.shape) for p in tl.zeros(6, 3).split(3, axis=0)] == [(2, 3)] * 3
    with pytest.raises(Exception, match="split"):
        tl.zeros(5, 3).split(2, axis=0)


def test_glu_odd_dim_still_rejected():
    with pytest.raises(ValueError, match="glu"):
        F.glu(tl.zeros(3, 3), dim=0)


# --- 3. batch_norm in training on an empty batch ---------------------------------------------
@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4), (2, 0), (0, 3, 2, 2)])
@pytest.mark.parametrize("affine", [False, True])
def test_batch_norm_training_empty(shape, affine):
    C = shape[1]
    if affine and C == 0:
        pytest.skip("torch 2.13 fails (IndexError) on a (0,) weight: nothing to compare")
    rm_l, rv_l = tl.ones(C) * 2, tl.ones(C) * 3
    rm_t, rv_t = torch.ones(C) * 2, torch.ones(C) * 3
    lx, tx = _pair(np.zeros(shape))
    lw, tw = _pair(np.ones(C)) if affine else (None, None)
    lb, tb = _pair(np.zeros(C)) if affine else (None, None)
    got = F.batch_norm(lx, rm_l, rv_l, lw, lb, training=True)
    want = TF.batch_norm(tx, rm_t.double(), rv_t.double(), tw, tb, training=True)
    assert tuple(got.shape) == tuple(want.shape)
    _close(rm_l, rm_t)
    _close(rv_l, rv_t)
    got.sum().backward()
    want.sum().backward()
    assert tuple(lx.grad.shape) == tuple(tx.grad.shape)
    if affine:
        _close(lw.grad, tw.grad)
        _close(lb.grad, tb.grad)


def test_batch_norm_one_value_per_channel_still_rejected():
    with pytest.raises(ValueError, match="batch_norm: expected more than 1 value"):
        F.batch_norm(tl.zeros(1, 3), None, None, training=True)
    with pytest.raises(ValueError, match="batch_norm"):
        F.batch_norm(tl.zeros(1, 0), None, None, training=True)


def test_batchnorm_module_empty_batch():
    bn = tl.nn.BatchNorm1d(3)
    assert tuple(bn(tl.zeros(0, 3)).shape) == (0, 3)
    _close(bn.running_mean, np.zeros(3))
    _close(bn.running_var, np.ones(3))


# --- 4. pad reflect / replicate / circular with an empty unpadded dim ------------------------
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape,p", [((0, 3, 4), (1, 2)), ((0, 3, 4, 5), (1, 2, 1, 1)),
                                     ((0, 3, 4), (-1, 2)), ((0, 2, 3, 4, 5), (1, 1, 2, 0, 1, 1))])
def test_pad_empty_batch(mode, shape, p):
    a = np.zeros(shape)
    lx, tx = _pair(a)
    got, want = F.pad(lx, p, mode=mode), TF.pad(tx, p, mode=mode)
    assert tuple(got.shape) == tuple(want.shape)
    got.sum().backward()
    assert tuple(lx.grad.shape) == shape


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_empty_channel_dim(mode):
    # PyTorch's kernels refuse an empty channel dim; tensorlib pads it (an empty result)
    assert tuple(F.pad(tl.zeros(2, 0, 4), (1, 2), mode=mode).shape) == (2, 0, 7)


def test_pad_empty_padded_dim_still_rejected():
    with pytest.raises(ValueError, match="pad: reflect"):
        F.pad(tl.zeros(2, 3, 0), (1, 2), mode="reflect")
    with pytest.raises(ValueError, match="pad: reflect"):
        F.pad(tl.zeros(2, 3, 2), (0, 2), mode="reflect")


# --- 5. linear: broadcasting bias, 1-d weight ------------------------------------------------
@pytest.mark.parametrize("xs,ws,bs", [((4, 5), (6, 5), (1,)), ((4, 5), (6, 5), ()),
                                      ((4, 5), (6, 5), (4, 6)), ((4, 5), (6, 5), (4, 1)),
                                      ((2, 4, 5), (6, 5), (4, 6)), ((5,), (6, 5), (1,)),
                                      ((4, 5), (5,), None), ((5,), (5,), None),
                                      ((2, 4, 5), (5,), None), ((4, 5), (6, 5), (6,))])
def test_linear_broadcast_bias_and_1d_weight(xs, ws, bs):
    rng = np.random.default_rng(1)
    lx, tx = _pair(rng.standard_normal(xs))
    lw, tw = _pair(rng.standard_normal(ws))
    lb, tb = _pair(rng.standard_normal(bs)) if bs is not None else (None, None)
    got, want = F.linear(lx, lw, lb), TF.linear(tx, tw, tb)
    assert tuple(got.shape) == tuple(want.shape)
    _close(got, want)
    cot = rng.standard_normal(tuple(want.shape))
    (got * tl.tensor(cot)).sum().backward()
    (want * torch.tensor(cot)).sum().backward()
    for lt, tt in ((lx, tx), (lw, tw), (lb, tb)):
        if lt is not None:
            _close(lt.grad, tt.grad)


@pytest.mark.parametrize("xs,ws,bs", [((4, 5), (6, 5), (3,)), ((4, 5), (6, 5), (2, 4, 6)),
                                      ((4, 5), (5,), (1,)), ((4, 5), (2, 6, 5), None),
                                      ((4, 5), (), None), ((4, 5), (6, 4), None)])
def test_linear_errors_as_torch(xs, ws, bs):
    args = [np.ones(xs), np.ones(ws)] + ([np.ones(bs)] if bs is not None else [])
    with pytest.raises(RuntimeError):
        TF.linear(*[torch.tensor(a) for a in args])
    with pytest.raises(ValueError, match="linear"):
        F.linear(*[tl.tensor(a) for a in args])


# --- 6. gaussian_nll_loss: negative variance -------------------------------------------------
def test_gaussian_nll_negative_var_raises():
    with pytest.raises(ValueError, match="var has negative"):
        TF.gaussian_nll_loss(torch.zeros(3), torch.zeros(3), -torch.ones(3))
    with pytest.raises(ValueError, match="gaussian_nll_loss: var has negative"):
        F.gaussian_nll_loss(tl.zeros(3), tl.zeros(3), tl.tensor([1.0, -1e-9, 1.0]))


def test_gaussian_nll_zero_var_still_clamped():
    x, y, v = np.array([0.5, -1.0]), np.array([0.0, 0.2]), np.array([0.0, 2.0])
    lx, tx = _pair(x)
    lv, tv = _pair(v)
    got = F.gaussian_nll_loss(lx, tl.tensor(y), lv)
    want = TF.gaussian_nll_loss(tx, torch.tensor(y), tv)
    _close(got, want, 1e-8)
    got.backward()
    want.backward()
    _close(lx.grad, tx.grad, 1e-6)


# --- 7. one_hot of an empty tensor -----------------------------------------------------------
def test_one_hot_empty_without_num_classes_raises():
    with pytest.raises(RuntimeError, match="empty tensor"):
        TF.one_hot(torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="one_hot: can not infer"):
        F.one_hot(tl.tensor(np.zeros(0, dtype=np.int64)))
    with pytest.raises(ValueError, match="one_hot"):
        F.one_hot(tl.tensor(np.zeros((2, 0), dtype=np.int64)))
    with pytest.raises(ValueError, match="one_hot"):
        tl.one_hot(tl.tensor(np.zeros(0, dtype=np.int64)))


def test_one_hot_still_works():
    idx = np.array([[0, 2], [1, 1]])
    _close(F.one_hot(tl.tensor(idx)), TF.one_hot(torch.tensor(idx)))
    got = F.one_hot(tl.tensor(np.zeros(0, dtype=np.int64)), 3)
    want = TF.one_hot(torch.zeros(0, dtype=torch.long), 3)
    assert tuple(got.shape) == tuple(want.shape) and got.dtype == np.int64


# --- 8. the mean of an empty tensor: nan, no NumPy warnings ----------------------------------
@pytest.mark.parametrize("fn", [
    lambda m: m.zeros(0).mean(),
    lambda m: m.zeros(0, 3).mean(0),
    lambda m: m.zeros(2, 0).mean(1),
])
def test_mean_of_empty_is_nan_without_warnings(fn):
    want = fn(torch).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = fn(tl).numpy()
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("loss", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
                                  "binary_cross_entropy"])
def test_mean_losses_on_empty_batch_quiet(loss):
    want = getattr(TF, loss)(torch.zeros(0, 3), torch.zeros(0, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = getattr(F, loss)(tl.zeros(0, 3), tl.zeros(0, 3))
    assert np.isnan(got.numpy()) and np.isnan(want.numpy())


# --- 9. the names PyTorch has ----------------------------------------------------------------
_INPLACE = [("relu_", ()), ("elu_", (0.7,)), ("celu_", (2.0,)), ("selu_", ()),
            ("leaky_relu_", (0.2,)), ("hardtanh_", (-0.5, 0.8)), ("threshold_", (0.1, -2.0)),
            ("rrelu_", (0.1, 0.3, False))]


@pytest.mark.parametrize("name,args", _INPLACE)
def test_inplace_activations(name, args):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 4))
    lx, tx = _pair(a)
    ly, ty = lx * 2.0, tx * 2.0
    got, want = getattr(F, name)(ly, *args), getattr(TF, name)(ty, *args)
    assert got is ly
    _close(ly, ty)
    cot = rng.standard_normal((3, 4))
    (got * tl.tensor(cot)).sum().backward()
    (want * torch.tensor(cot)).sum().backward()
    _close(lx.grad, tx.grad)
    # a leaf that requires grad is refused, as PyTorch's
    with pytest.raises(RuntimeError, match="leaf"):
        getattr(TF, name)(torch.tensor(a, requires_grad=True), *args)
    with pytest.raises(RuntimeError, match="leaf"):
        getattr(F, name)(tl.tensor(a, requires_grad=True), *args)


def test_inplace_activation_without_grad_writes_input():
    x = tl.tensor([-1.0, 2.0])
    assert F.relu_(x) is x
    assert x.tolist() == [0.0, 2.0]


def test_rrelu_inplace_training_slopes_in_range():
    x = tl.tensor(-np.ones(1000))
    F.rrelu_(x, 0.1, 0.3, True)
    v = x.numpy()
    assert (v <= -0.1 + 1e-7).all() and (v >= -0.3 - 1e-7).all() and v.std() > 0


@pytest.mark.parametrize("nd,shape,size", [(1, (2, 3, 9), 4), (2, (2, 3, 7, 6), (3, 2)),
                                           (3, (1, 2, 5, 6, 4), 2), (2, (3, 7, 6), 3)])
def test_adaptive_max_pool_with_indices(nd, shape, size):
    rng = np.random.default_rng(nd)
    lx, tx = _pair(rng.standard_normal(shape))
    name = f"adaptive_max_pool{nd}d_with_indices"
    got, gi = getattr(F, name)(lx, size)
    want, wi = getattr(TF, name)(tx, size)
    _close(got, want)
    np.testing.assert_array_equal(gi.numpy(), wi.numpy())
    cot = rng.standard_normal(tuple(want.shape))
    (got * tl.tensor(cot)).sum().backward()
    (want * torch.tensor(cot)).sum().backward()
    _close(lx.grad, tx.grad)
    assert len(getattr(F, name)(lx, size, return_indices=False)) == 2


def test_adaptive_max_pool_with_indices_errors():
    with pytest.raises(ValueError):
        F.adaptive_max_pool2d_with_indices(tl.zeros(2), 1)


@pytest.mark.parametrize("shape", [(2, 3, 2, 3, 4), (3, 2, 3, 4)])
def test_dropout3d_drops_whole_channels(shape):
    tl.manual_seed(0)
    x = tl.ones(*shape)
    y = F.dropout3d(x, 0.5, True).numpy()
    vols = y.reshape(shape[:len(shape) - 3] + (-1,))
    assert set(np.unique(vols)) <= {0.0, 2.0}
    assert (vols.min(-1) == vols.max(-1)).all()        # each volume all kept or all dropped
    assert tuple(TF.dropout3d(torch.ones(shape), 0.5, True).shape) == shape


def test_dropout3d_modes_and_grad():
    a = np.random.default_rng(0).standard_normal((2, 3, 2, 2, 2))
    lx, tx = _pair(a)
    _close(F.dropout3d(lx, 0.5, False), TF.dropout3d(tx, 0.5, False))
    _close(F.dropout3d(lx, 0.0, True), TF.dropout3d(tx, 0.0, True))
    _close(F.dropout3d(lx, 1.0, True), TF.dropout3d(tx, 1.0, True))
    tl.manual_seed(1)
    y = F.dropout3d(lx, 0.3, True)
    y.sum().backward()
    kept = (y.numpy() != 0).astype(float)
    _close(lx.grad, kept / 0.7)
    z = tl.ones(1, 2, 1, 1, 1)
    assert F.dropout3d(z, 1.0, True, True) is z and z.numpy().sum() == 0
    with pytest.raises(ValueError, match="dropout3d: p"):
        F.dropout3d(lx, 1.5)


def test_dropout3d_other_rank_warns_as_torch():
    with pytest.warns(UserWarning):
        TF.dropout3d(torch.ones(2, 3, 4), 0.5, True)
    tl.manual_seed(0)
    with pytest.warns(UserWarning, match="dropout3d"):
        y = F.dropout3d(tl.ones(6, 3, 4), 0.5, True).numpy()
    flat = y.reshape(6, -1)
    assert (flat.min(-1) == flat.max(-1)).all()


def test_dropout3d_module():
    m = Dropout3d(0.4)
    assert repr(m) == "Dropout3d(p=0.4, inplace=False)"
    x = tl.randn(1, 2, 2, 2, 2)
    m.eval()
    _close(m(x), x.numpy())
    m.train()
    tl.manual_seed(0)
    assert tuple(m(x).shape) == (1, 2, 2, 2, 2)


@pytest.mark.parametrize("shape,g", [((2, 6, 3), 3), ((1, 4, 2, 2), 2), ((2, 6, 1, 2, 1), 2),
                                     ((0, 4, 3), 4)])
def test_channel_shuffle(shape, g):
    a = np.random.default_rng(0).standard_normal(shape)
    lx, tx = _pair(a)
    got, want = F.channel_shuffle(lx, g), TF.channel_shuffle(tx, g)
    _close(got, want)
    cot = np.random.default_rng(1).standard_normal(shape)
    (got * tl.tensor(cot)).sum().backward()
    (want * torch.tensor(cot)).sum().backward()
    _close(lx.grad, tx.grad)
    _close(got, tl.nn.ChannelShuffle(g)(lx))


def test_channel_shuffle_errors():
    with pytest.raises(RuntimeError):
        TF.channel_shuffle(torch.zeros(2, 4), 2)
    with pytest.raises(ValueError, match="channel_shuffle"):
        F.channel_shuffle(tl.zeros(2, 4), 2)
    with pytest.raises(ValueError, match="channel_shuffle"):
        F.channel_shuffle(tl.zeros(2, 5, 3), 2)


def test_new_names_exported():
    for name in ["relu_", "elu_", "celu_", "selu_", "leaky_relu_", "hardtanh_", "threshold_",
                 "rrelu_", "adaptive_max_pool1d_with_indices", "adaptive_max_pool2d_with_indices",
                 "adaptive_max_pool3d_with_indices", "dropout3d", "channel_shuffle"]:
        assert name in F.__all__ and hasattr(TF, name)


def test_dropout3d_half():
    y = F.dropout3d(tl.ones(1, 2, 2, 2, 2, dtype="float16"), 0.5, False)
    assert y.dtype == np.float16
