"""The Cython kernels of tensorlib/_scan_kernels.pyx through the public API: cummax/cummin,
nansum/nanmean, mode and cdist(p=1), against PyTorch (values, indices, ties, NaN, empty dims,
dtypes, gradients), finite differences, the graph file and onnxruntime; and the kernels'
Python boundary (tensorlib/ops/_scan_cpu.py)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib import _scan_kernels
from tensorlib.ops import _scan_cpu

try:
    import torch
except ImportError:         # the PyTorch comparisons skip; the rest runs
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
FLOATS = [np.float32, np.float64]
INTS = [np.int64, np.int32, np.int16, np.int8, np.uint8]


def _data(kind: str, shape, dtype, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "rand":
        x = rng.standard_normal(shape) * 10
    elif kind == "sorted":
        x = np.sort(rng.standard_normal(shape), axis=-1)
    else:   # ties, NaN: small integers
        x = rng.integers(0, 4, shape).astype(np.float64)
    if kind == "nan":
        x[rng.random(shape) < 0.15] = np.nan
    return x.astype(dtype)


# --- cummax / cummin -------------------------------------------------------------------------
SCAN_SHAPES = [((5000,), 0), ((7, 900), 1), ((900, 7), 0), ((3, 40, 600), 1),
               ((3, 40, 600), 2), ((3, 40, 600), 0), ((0, 3), 0), ((0, 3), 1), ((4, 0), 1)]


@needs_torch
@pytest.mark.parametrize("shape,dim", SCAN_SHAPES)
@pytest.mark.parametrize("kind", ["rand", "sorted", "ties", "nan"])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", ["cummax", "cummin"])
def test_cum_extreme_matches_torch(op, dtype, kind, shape, dim):
    x = _data(kind, shape, dtype)
    ours = getattr(tl, op)(tl.tensor(x), dim)
    theirs = getattr(torch, op)(torch.from_numpy(x), dim)
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
    assert ours.values.dtype == dtype and ours.indices.dtype == np.int64


@needs_torch
@pytest.mark.parametrize("dtype", INTS + [np.bool_])
@pytest.mark.parametrize("op", ["cummax", "cummin"])
def test_cum_extreme_integers_match_torch(op, dtype):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, (6, 300)).astype(dtype)
    for dim in (0, 1):
        ours = getattr(tl, op)(tl.tensor(x), dim)
        theirs = getattr(torch, op)(torch.from_numpy(x), dim)
        np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
        np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
        assert ours.values.dtype == dtype


def test_cum_extreme_nan_rule():
    """A NaN takes over and stays; its index is the latest NaN's (PyTorch's rule)."""
    x = tl.tensor([1.0, float("nan"), 5.0, float("nan"), 7.0])
    for op in (tl.cummax, tl.cummin):
        v, i = op(x, 0)
        assert np.isnan(v.numpy()[1:]).all() and v.numpy()[0] == 1.0
        assert i.numpy().tolist() == [0, 1, 1, 3, 3]
    v, i = tl.cummax(tl.tensor([2.0, 2.0, 1.0, 2.0]), 0)          # ties: the later index
    assert i.numpy().tolist() == [0, 1, 1, 3]
    v, i = tl.cummin(tl.tensor([2.0, 2.0, 3.0, 2.0]), 0)
    assert i.numpy().tolist() == [0, 1, 1, 3]


def test_cum_extreme_non_contiguous_and_scalar():
    base = np.random.default_rng(2).standard_normal((6, 8))
    x = tl.tensor(base)[:, ::2]
    v, i = tl.cummax(x.T, 1)
    ref = np.maximum.accumulate(base[:, ::2].T, axis=1)
    np.testing.assert_array_equal(v.numpy(), ref)
    v, i = tl.cummin(tl.tensor(3.0), 0)
    assert v.item() == 3.0 and i.item() == 0 and i.shape == ()


@needs_torch
@pytest.mark.parametrize("shape,dim", [((7, 30), 1), ((30, 7), 0), ((2, 9, 5), 1)])
@pytest.mark.parametrize("op", ["cummax", "cummin"])
def test_cum_extreme_gradient_matches_torch(op, shape, dim):
    """Ties included: the gradient goes to the element each value came from, summed."""
    x = _data("ties", shape, np.float64, seed=3)
    w = np.random.default_rng(4).standard_normal(shape)
    xt = tl.tensor(x, requires_grad=True)
    (getattr(tl, op)(xt, dim).values * tl.tensor(w)).sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    (getattr(torch, op)(tt, dim).values * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), tt.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", ["cummax", "cummin"])
def test_cum_extreme_gradcheck(op):
    rng = np.random.default_rng(5)
    for shape, dim in (((4, 6), 1), ((5, 3, 2), 0), ((5,), 0)):
        x = tl.tensor(rng.permutation(int(np.prod(shape))).reshape(shape) * 0.5 +
                      rng.uniform(-0.1, 0.1, shape), requires_grad=True)
        def f(t, dim=dim):
            return getattr(tl, op)(t, dim).values
        assert tl.autograd.gradcheck(f, (x,))
        assert tl.autograd.gradgradcheck(f, (x,))


def test_scatter_add_kernel_and_checks():
    # the Cython scatter-add along a dim (cummax's and gather's gradient): a full window only
    rng = np.random.default_rng(6)
    for shape, axis in (((3, 7), 1), ((3, 7), 0), ((2, 3, 4), 1)):
        g = rng.standard_normal(shape)
        idx = rng.integers(0, 5, shape)
        out_shape = list(shape)
        out_shape[axis] = 5
        out = np.zeros(out_shape)
        assert _scan_cpu.scatter_add_into(out, idx, g, axis)
        grids = list(np.indices(shape, sparse=True))
        grids[axis] = idx
        want = np.zeros(out_shape)
        np.add.at(want, tuple(grids), g)
        np.testing.assert_allclose(out, want)
        # and through the public op
        got = tl.zeros(*out_shape, dtype=tl.float64).scatter_add(axis, tl.tensor(idx),
                                                                  tl.tensor(g))
        np.testing.assert_allclose(got.numpy(), want)
    # a broadcast (strided, zero-stride) gradient is read in place
    g = np.broadcast_to(np.float32(2), (4, 6))
    out = np.zeros((4, 3), np.float32)
    assert _scan_cpu.scatter_add_into(out, np.zeros((4, 6), np.int64), g, 1)
    assert (out[:, 0] == 12).all()
    # a window smaller than out, or an integer dtype: not the kernel's
    assert not _scan_cpu.scatter_add_into(np.zeros((4, 3)), np.zeros((2, 6), np.int64),
                                          np.ones((2, 6)), 1)
    assert not _scan_cpu.scatter_add_into(np.zeros((2, 3), np.int64),
                                          np.zeros((2, 3), np.int64),
                                          np.ones((2, 3), np.int64), 1)
    with pytest.raises(IndexError, match="out of range for a dim of size 3"):
        _scan_cpu.scatter_add_into(np.zeros((2, 3)), np.full((2, 3), 3), np.ones((2, 3)), 1)


@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3),
       seed=st.integers(0, 2**31 - 1), data=st.data())
@settings(max_examples=40, deadline=None)
def test_cum_extreme_matches_reference_hypothesis(shape, seed, data):
    """Every dim and layout, against a one-element-at-a-time reference."""
    from cases.scan_kernels import _cum_ref
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, shape).astype(np.float64)
    x[rng.random(shape) < 0.2] = np.nan
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    mode = data.draw(st.sampled_from(["max", "min"]))
    got = (tl.cummax if mode == "max" else tl.cummin)(tl.tensor(x), dim)
    vals, idx = _cum_ref(x, dim % len(shape), mode)
    np.testing.assert_array_equal(got.indices.numpy(), idx)
    np.testing.assert_array_equal(got.values.numpy(), vals)


# --- nansum / nanmean ------------------------------------------------------------------------
NAN_DIMS = [None, 0, 1, -1, (0, 1), (0, 2), (1, 2), (0, 1, 2)]


@needs_torch
@pytest.mark.parametrize("dim", NAN_DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", ["nansum", "nanmean"])
def test_nan_reductions_match_torch(op, dtype, keepdim, dim):
    x = _data("nan", (6, 50, 70), dtype, seed=7) + np.linspace(-1, 1, 70).astype(dtype)
    x[0, :, 3] = np.nan                     # an all-NaN slice along dim 1
    ours = getattr(tl, op)(tl.tensor(x), dim, keepdim)
    theirs = getattr(torch, op)(torch.from_numpy(x), dim, keepdim) if dim is not None \
        else getattr(torch, op)(torch.from_numpy(x), None, keepdim)
    assert ours.shape == tuple(theirs.shape) and ours.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=tol, atol=tol * 10,
                               equal_nan=True)


def test_nan_reductions_large_float32_accuracy():
    """Blocks summed in float32 and added in double: a float32 result of 3M values within a
    rounding or two of the float64 sum (one float32 accumulator would be off by ~1e-4)."""
    x = np.random.default_rng(8).uniform(0, 1, 3_000_000).astype(np.float32)
    x[::7] = np.nan
    want = np.nansum(x.astype(np.float64))
    for dim in (None, 0):
        np.testing.assert_allclose(tl.nansum(tl.tensor(x), dim).item(), want, rtol=3e-7)
    x2 = x.reshape(3000, 1000)              # down the rows: the column kernel
    np.testing.assert_allclose(tl.nansum(tl.tensor(x2), 0).numpy(),
                               np.nansum(x2.astype(np.float64), 0), rtol=5e-7)
    cnt = (~np.isnan(x)).sum()
    np.testing.assert_allclose(tl.nanmean(tl.tensor(x)).item(), want / cnt, rtol=3e-7)


def test_nan_reductions_empty_and_int():
    e = tl.zeros(0, 3)
    assert tl.nansum(e, 0).numpy().tolist() == [0.0, 0.0, 0.0]
    assert np.isnan(tl.nanmean(e, 0).numpy()).all()
    assert tl.nansum(e, 1).shape == (0,)
    s = tl.nansum(tl.tensor([1, 2, 3]))
    assert s.item() == 6 and s.dtype == np.int64
    with pytest.raises(TypeError, match="nanmean: expects a floating point input"):
        tl.nanmean(tl.tensor([1, 2]))
    h = tl.nansum(tl.tensor(np.array([1, np.nan, 2], np.float16)))
    assert h.dtype == np.float16 and h.item() == 3.0
    assert tl.nansum(tl.tensor(float("nan"))).item() == 0.0


@needs_torch
@pytest.mark.parametrize("dim", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("op", ["nansum", "nanmean"])
def test_nan_reductions_gradient_matches_torch(op, dim):
    x = _data("nan", (5, 8), np.float64, seed=9)
    x[:, 2] = np.nan
    w = np.random.default_rng(10).standard_normal(np.shape(np.nansum(x, axis=dim)))
    xt = tl.tensor(x, requires_grad=True)
    (getattr(tl, op)(xt, dim) * tl.tensor(w)).sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    (getattr(torch, op)(tt, dim) * torch.tensor(w)).sum().backward()
    # PyTorch (and tensorlib): nanmean's gradient is NaN where a whole slice is NaN
    np.testing.assert_allclose(xt.grad.numpy(), tt.grad.numpy(), rtol=1e-12, equal_nan=True)


def test_nan_reductions_gradcheck():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 5))
    x[1, 2] = x[3, 0] = np.nan
    xt = tl.tensor(x, requires_grad=True)
    for op in (tl.nansum, tl.nanmean):
        for dim in (None, 0, 1):
            assert tl.autograd.gradcheck(lambda t: op(t, dim), (xt,))
            assert tl.autograd.gradgradcheck(lambda t: op(t, dim) ** 2, (xt,))


def test_nan_reduce_kernel_boundary():
    x = np.array([[1.0, np.nan], [np.nan, np.nan]], np.float32)
    assert _scan_cpu.nan_reduce(np.zeros(3, np.float16), None, False, False) is None
    np.testing.assert_array_equal(_scan_cpu.nan_reduce(x, (1,), False, False), [1.0, 0.0])
    got = _scan_cpu.nan_reduce(x, (0,), True, True)
    assert got.shape == (1, 2) and got[0, 0] == 1.0 and np.isnan(got[0, 1])
    with pytest.raises(ValueError):             # the kernel refuses a non-contiguous view
        _scan_kernels.nan_sum(np.zeros((2, 4, 3), np.float32)[:, ::2],
                              np.zeros((2, 3)))


# --- mode ------------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("shape,dim", [((9, 12), 1), ((12, 9), 0), ((3, 4, 16), -1),
                                       ((3, 16, 4), 1), ((16,), 0), ((5, 1), 1)])
@pytest.mark.parametrize("dtype", FLOATS + INTS + [np.bool_])
def test_mode_matches_torch_short_slices(dtype, shape, dim):
    """Up to 16 elements a slice PyTorch sorts stably: values and indices must agree."""
    x = np.random.default_rng(12).integers(0, 4, shape).astype(dtype)
    ours, theirs = tl.mode(tl.tensor(x), dim), torch.mode(torch.from_numpy(x), dim)
    np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
    np.testing.assert_array_equal(ours.indices.numpy(), theirs.indices.numpy())
    assert ours.values.dtype == dtype
    kept = tl.mode(tl.tensor(x), dim, keepdim=True)
    assert kept.values.shape == tuple(torch.mode(torch.from_numpy(x), dim, True).values.shape)


@needs_torch
@pytest.mark.parametrize("dim", [0, 1])
def test_mode_long_slices_values_match_torch(dim):
    """Longer slices: the same values as PyTorch; our index is the last occurrence (PyTorch's
    is whichever its unstable sort leaves last), an index of that value either way."""
    x = np.random.default_rng(13).integers(0, 40, (64, 2000)).astype(np.float32)
    ours, theirs = tl.mode(tl.tensor(x), dim), torch.mode(torch.from_numpy(x), dim)
    np.testing.assert_array_equal(ours.values.numpy(), theirs.values.numpy())
    xl = np.moveaxis(x, dim, -1)
    last = [np.flatnonzero(r == v)[-1] for r, v in zip(xl, ours.values.numpy())]
    np.testing.assert_array_equal(ours.indices.numpy(), last)


def test_mode_nan_and_errors():
    nan = float("nan")
    v, i = tl.mode(tl.tensor([[nan, 1.0, nan, 1.0, 2.0], [nan, nan, nan, 0.0, 0.0],
                              [nan, nan, 3.0, nan, nan]]), 1)
    # NaNs count as one value, larger than every number (scipy.stats.mode): a tie goes to
    # the number, and a NaN mode gives the first NaN's index
    np.testing.assert_array_equal(v.numpy(), [1.0, nan, nan])
    assert i.numpy().tolist() == [3, 0, 0]
    v, i = tl.mode(tl.tensor([[nan, nan]]), 1)                     # only NaN: the first
    assert np.isnan(v.item()) and i.item() == 0
    v, i = tl.mode(tl.tensor(4.0))
    assert v.item() == 4.0 and i.item() == 0 and v.shape == ()
    with pytest.raises(ValueError, match="mode: cannot reduce dim 1 of size 0"):
        tl.mode(tl.zeros(2, 0), 1)


def test_mode_gradient():
    x = tl.tensor([[3.0, 1.0, 3.0, 2.0], [5.0, 5.0, 4.0, 4.0]], requires_grad=True)
    tl.mode(x, 1).values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0, 1, 0], [0, 0, 0, 1]])
    d = tl.tensor(np.random.default_rng(14).permutation(12).reshape(3, 4) * 0.5,
                  requires_grad=True)
    assert tl.autograd.gradcheck(lambda t: tl.mode(t, 0).values, (d,))


@given(shape=st.lists(st.integers(1, 7), min_size=1, max_size=3),
       seed=st.integers(0, 2**31 - 1), data=st.data())
@settings(max_examples=40, deadline=None)
def test_mode_matches_reference_hypothesis(shape, seed, data):
    from cases.scan_kernels import _mode_ref
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, shape).astype(np.float64)
    if data.draw(st.booleans()):
        x[rng.random(shape) < 0.3] = np.nan
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    got = tl.mode(tl.tensor(x), dim)
    vals, idx = _mode_ref(x, dim)
    np.testing.assert_array_equal(got.values.numpy(), vals)
    np.testing.assert_array_equal(got.indices.numpy(), idx)


# --- cdist, p = 1 ----------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("s1,s2", [((70, 5), (80, 5)), ((2, 30, 3), (1, 40, 3)),
                                   ((3, 4), (5, 4)), ((0, 3), (4, 3)), ((3, 0), (2, 0)),
                                   ((4, 3), (0, 3)), ((2, 1, 6, 4), (3, 5, 4))])
@pytest.mark.parametrize("dtype", FLOATS)
def test_cdist_l1_matches_torch(dtype, s1, s2):
    rng = np.random.default_rng(15)
    a, b = rng.standard_normal(s1).astype(dtype), rng.standard_normal(s2).astype(dtype)
    if a.size and b.size:
        b[..., :1, :] = a[(0,) * (a.ndim - 2)][:1]                  # a zero distance
    x1, x2 = tl.tensor(a, requires_grad=True), tl.tensor(b, requires_grad=True)
    t1, t2 = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    y, ty = tl.cdist(x1, x2, p=1), torch.cdist(t1, t2, p=1)
    assert y.shape == tuple(ty.shape) and y.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=tol, atol=tol)
    if y.numel():
        w = rng.standard_normal(y.shape).astype(dtype)
        (y * tl.tensor(w)).sum().backward()
        (ty * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(x1.grad.numpy(), t1.grad.numpy(), rtol=tol, atol=tol * 10)
        np.testing.assert_allclose(x2.grad.numpy(), t2.grad.numpy(), rtol=tol, atol=tol * 10)


def test_cdist_l1_nan_and_gradcheck():
    a = np.array([[0.0, np.nan], [1.0, 2.0]])
    out = tl.cdist(tl.tensor(a), tl.tensor(np.zeros((1, 2))), p=1).numpy()
    assert np.isnan(out[0, 0]) and out[1, 0] == 3.0
    rng = np.random.default_rng(16)
    x1 = tl.tensor(rng.integers(-3, 3, (2, 3, 4)) * 0.5, requires_grad=True)
    x2 = tl.tensor(rng.integers(-3, 3, (2, 5, 4)) * 0.5 + 0.25, requires_grad=True)
    def f(p, q):
        return tl.cdist(p, q, p=1)
    assert tl.autograd.gradcheck(f, (x1, x2))
    assert tl.autograd.gradgradcheck(f, (x1, x2))


def test_cdist_l1_kernel_boundary():
    assert _scan_cpu.cdist_l1(np.zeros((2, 3), np.float16), np.zeros((2, 3), np.float16)) \
        is None
    assert _scan_cpu.cdist_l1(np.zeros((2, 3)), np.zeros((2, 4))) is None     # M differs
    assert _scan_cpu.cdist_l1(np.zeros((2, 2, 3)), np.zeros((3, 2, 3))) is None  # batch
    with pytest.raises(ValueError, match="cdist: x1 and x2 must have the same number"):
        tl.cdist(tl.zeros(2, 3), tl.zeros(2, 4), p=1)


# --- capture: native graph file and ONNX -----------------------------------------------------
def _export_cases():
    rng = np.random.default_rng(17)
    ties = rng.integers(0, 3, (4, 9)).astype(np.float32)
    nan = ties.copy()
    nan[rng.random(nan.shape) < 0.2] = np.nan
    ints = rng.integers(0, 3, (4, 9)).astype(np.int64)
    return [
        ("cummax", lambda t: tuple(tl.cummax(t, 1)), nan),
        ("cummin0", lambda t: tuple(tl.cummin(t, 0)), nan),
        ("cummax_int", lambda t: tuple(tl.cummax(t, 1)), ints),
        ("nansum", lambda t: tl.nansum(t, (0, 1)), nan),
        ("nanmean", lambda t: tl.nanmean(t, 0, True), nan),
        ("mode", lambda t: tuple(tl.mode(t, 1)), ties),
        ("mode0_nan", lambda t: tuple(tl.mode(t, 0, True)), nan),
        ("mode_int", lambda t: tuple(tl.mode(t, 1)), ints),
        ("cdist_l1", lambda t: tl.cdist(t, t[:3] + 0.25, p=1), ties),
    ]


@pytest.mark.parametrize("case", _export_cases(), ids=lambda c: c[0])
def test_capture_native_and_onnx(case, tmp_path):
    _, fn, x = case
    t = tl.tensor(x)
    with tl.capture(t) as g:
        out = fn(t)
    out = out if isinstance(out, tuple) else (out,)
    g.set_outputs(*out)
    want = [o.numpy() for o in out]
    tl.save_graph(g, tmp_path / "g.tlg")
    with tl.no_grad():
        back = tl.load_graph(tmp_path / "g.tlg")(x)
    back = back if isinstance(back, (tuple, list)) else (back,)
    for b, w in zip(back, want):
        np.testing.assert_array_equal(b.numpy(), w)
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = tl.onnx.to_model(g, opset=17)
    onnx.checker.check_model(model, full_check=True)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {model.graph.input[0].name: x})
    for gv, w in zip(got, want):
        np.testing.assert_allclose(gv, w, rtol=1e-6, atol=1e-6, equal_nan=True)
