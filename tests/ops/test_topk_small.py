"""topk and sort as one op giving (values, indices): values, indices and gradients against
PyTorch, ties and NaN, 0-d input, k=0, integer dtypes, double backward, capture with dynamic
dims, ONNX export, errors, and that one call is one op (the small-input speed fix)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")


def _stable_order(a, axis, largest):
    """Reference order: the stable sort, NaN counting as the largest value."""
    a = np.moveaxis(a, axis, -1)
    if a.dtype.kind == "f":
        nan = np.isnan(a)
        key = np.where(nan, -np.inf, -a) if largest else np.where(nan, np.inf, a)
        # NaN after +-inf: rank them past every finite or infinite value
        key = np.stack([nan.astype(np.int8) * (-1 if largest else 1), key], 0)
        order = np.lexsort((key[1], key[0]), axis=-1)
    else:
        order = np.argsort(-a.astype(np.float64) if largest else a, axis=-1, kind="stable")
    return np.moveaxis(order, -1, axis)


@st.composite
def _case(draw, ties=False, nan=False):
    nd = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=nd, max_size=nd)))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    size = int(np.prod(shape))
    if ties:
        a = rng.integers(-2, 3, size).astype(np.float64)
    else:     # distinct and apart, so finite differences and tie orders do not matter
        a = rng.permutation(size) * 0.5 + rng.uniform(-0.1, 0.1, size)
    a = a.reshape(shape)
    if nan:
        a[rng.random(shape) < 0.2] = np.nan
    axis = draw(st.integers(-nd, nd - 1))
    k = draw(st.integers(0, shape[axis]))
    return a, axis, k, draw(st.booleans())


@settings(max_examples=60, deadline=None)
@given(_case())
def test_topk_values_indices_and_grads_match_torch(c):
    a, axis, k, largest = c
    g = np.random.default_rng(0).standard_normal(a.shape)
    x = tl.tensor(a, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    v, i = tl.topk(x, k, dim=axis, largest=largest)
    tv, ti = torch.topk(tx, k, dim=axis, largest=largest)
    np.testing.assert_array_equal(v.numpy(), tv.detach().numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    assert i.dtype == tl.int64 and v.dtype == tl.float64
    w = np.take(g, range(k), axis=axis)     # an upstream gradient of the values' shape
    (v * tl.tensor(w)).sum().backward()
    (tv * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=0, atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(_case(ties=True, nan=True))
def test_topk_ties_and_nan(c):
    # values as PyTorch's (NaN the largest); indices: the stable order (ONNX TopK's; the
    # order PyTorch's CPU topk gives among equal values is unspecified and varies)
    a, axis, k, largest = c
    for dt in (np.float32, np.float64):
        v, i = tl.topk(tl.tensor(a.astype(dt)), k, dim=axis, largest=largest)
        tv, _ = torch.topk(torch.tensor(a.astype(dt)), k, dim=axis, largest=largest)
        np.testing.assert_array_equal(v.numpy(), tv.numpy())
        want = np.take(_stable_order(a, axis, largest), range(k), axis=axis)
        np.testing.assert_array_equal(i.numpy(), want)


@settings(max_examples=40, deadline=None)
@given(_case(ties=True, nan=True))
def test_sort_matches_torch_stable_sort(c):
    a, axis, _, descending = c
    x = tl.tensor(a, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    v, i = tl.sort(x, dim=axis, descending=descending)
    tv, ti = torch.sort(tx, dim=axis, descending=descending, stable=True)
    np.testing.assert_array_equal(v.detach().numpy(), tv.detach().numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    w = np.random.default_rng(1).standard_normal(a.shape)
    (v * tl.tensor(w)).sum().backward()
    (tv * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


@pytest.mark.parametrize("shape,k,dim", [((160, 4), 2, -1), ((4, 1000), 4, -1),
                                         ((1, 4000), 8, 1), ((6, 5, 7), 3, 1),
                                         ((7, 300), 130, -1), ((9, 6), 4, 0)])
@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_topk_sizes_and_paths(shape, k, dim, largest, dt):
    # the row scan (last axis, another axis), the partition path (k > 128), float32/64
    a = np.random.default_rng(2).standard_normal(shape).astype(dt)
    v, i = tl.topk(tl.tensor(a), k, dim=dim, largest=largest)
    tv, ti = torch.topk(torch.tensor(a), k, dim=dim, largest=largest)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    assert v.dtype == tl.tensor(a).dtype


def test_topk_non_contiguous_input():
    a = np.random.default_rng(3).standard_normal((8, 5))
    x = tl.tensor(a).T              # (5, 8), a transposed view
    v, i = tl.topk(x, 3, dim=-1)
    tv, ti = torch.topk(torch.tensor(a).T, 3, dim=-1)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())


@pytest.mark.parametrize("dt", ["int64", "int32", "int16", "uint8"])
@pytest.mark.parametrize("largest", [True, False])
def test_topk_integer_dtypes(dt, largest):
    a = np.random.default_rng(4).permutation(60).reshape(6, 10).astype(dt)
    v, i = tl.topk(tl.tensor(a), 4, largest=largest)
    tv, ti = torch.topk(torch.tensor(a), 4, largest=largest)
    np.testing.assert_array_equal(v.numpy(), tv.numpy())
    np.testing.assert_array_equal(i.numpy(), ti.numpy())
    assert v.numpy().dtype == np.dtype(dt)


def test_topk_zero_d_and_k_zero():
    v, i = tl.topk(tl.tensor(3.5), 1)
    tv, ti = torch.topk(torch.tensor(3.5), 1)
    assert v.shape == tuple(tv.shape) == () and i.shape == tuple(ti.shape) == ()
    assert float(v) == 3.5 and int(i) == 0
    # PyTorch's topk of a 0-d tensor with k=0 still gives the element (0-d), gradient 1
    x = tl.tensor(3.5, requires_grad=True)
    tx = torch.tensor(3.5, requires_grad=True)
    (v, i), (tv, ti) = tl.topk(x, 0), torch.topk(tx, 0)
    assert v.shape == tuple(tv.shape) == () and i.shape == tuple(ti.shape) == ()
    assert float(v) == tv.item() and int(i) == int(ti)
    v.backward()
    tv.backward()
    assert float(x.grad) == float(tx.grad) == 1.0
    x = tl.tensor(np.ones((3, 4)), requires_grad=True)
    v, i = tl.topk(x, 0)
    assert v.shape == i.shape == (3, 0)
    v.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((3, 4)))
    v, i = tl.sort(tl.tensor(2.0))
    assert v.shape == i.shape == () and float(v) == 2.0 and int(i) == 0


def test_topk_double_backward_matches_torch():
    a = np.random.default_rng(5).standard_normal((4, 6))
    x = tl.tensor(a, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    y = (tl.topk(x * x, 3).values ** 3).sum()
    ty = (torch.topk(tx * tx, 3).values ** 3).sum()
    (gx,) = tl.grad(y, [x], create_graph=True)
    (tgx,) = torch.autograd.grad(ty, [tx], create_graph=True)
    np.testing.assert_allclose(gx.numpy(), tgx.detach().numpy(), rtol=1e-12)
    (ggx,) = tl.grad((gx * gx).sum(), [x])
    (tggx,) = torch.autograd.grad((tgx * tgx).sum(), [tx])
    np.testing.assert_allclose(ggx.numpy(), tggx.numpy(), rtol=1e-12)


def test_topk_is_one_op():
    # values and indices from one registry op: no argsort and no second gather op (each
    # was ~40 us of a small call)
    x = tl.tensor(np.random.default_rng(6).standard_normal((16, 4)).astype(np.float32))
    for fn in (lambda t: tl.topk(t, 2), lambda t: tl.sort(t, descending=True)):
        with tl.capture(x) as g:
            fn(x)
        names = [n.op for n in g.nodes]
        assert names.count("topk_indices") == 1, names
        assert "take_along_axis" not in names and "argsort" not in names, names


def test_topk_captured_with_a_dynamic_dim(tmp_path):
    def fn(x):
        v, i = tl.topk(x, 2, dim=1)
        s = tl.sort(x, dim=0, descending=True).values
        return v * 2, i, s

    f = tl.function(fn, input_signature=[tl.TensorSpec((None, 5), tl.float32)])
    rng = np.random.default_rng(7)
    with tl.no_grad():
        for rows in (3, 1, 8):
            x = tl.tensor(rng.standard_normal((rows, 5)).astype(np.float32))
            for got, want in zip(f(x), fn(x)):
                assert got.shape == want.shape
                np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert f.trace_count == 1
    # the saved graph (k=None, sort's whole axis, as an attribute) replays at a new size
    tl.save_graph(f, tmp_path / "g")
    g = tl.load_graph(tmp_path / "g")
    x = tl.tensor(rng.standard_normal((6, 5)).astype(np.float32))
    with tl.no_grad():
        for got, want in zip(g(x), fn(x)):
            np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_topk_and_sort_export_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")

    def fn(x):
        v, i = tl.topk(x, 3, dim=-1, largest=False)
        s, j = tl.sort(x, dim=0)
        return v, i, s, j

    rng = np.random.default_rng(8)
    ex = tl.tensor(rng.standard_normal((4, 6)).astype(np.float32))
    tl.onnx.export(fn, [ex], tmp_path / "m.onnx", dynamic_axes={0: [0]})
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    for rows in (4, 2, 9):
        x = rng.standard_normal((rows, 6)).astype(np.float32)
        got = sess.run(None, {"input0": x})
        with tl.no_grad():
            want = fn(tl.tensor(x))
        for g_, w in zip(got, want):
            np.testing.assert_array_equal(g_, w.numpy())


def test_topk_errors():
    x = tl.tensor(np.zeros((2, 3)))
    with pytest.raises(Exception, match="topk: selected index k=4 is out of range"):
        tl.topk(x, 4)
    with pytest.raises(Exception, match="topk: selected index k=-1"):
        tl.topk(x, -1)
    with pytest.raises(TypeError, match="topk: k must be an int"):
        tl.topk(x, 1.5)
    with pytest.raises(TypeError, match="topk: axis must be an int"):
        tl.topk(x, 1, dim=0.5)
    with pytest.raises(Exception, match="topk"):
        tl.topk(x, 1, dim=2)
    with pytest.raises(Exception, match="complex"):
        tl.topk(tl.tensor(np.ones(3, np.complex64)), 1)
    with pytest.raises(torch.IndexError if hasattr(torch, "IndexError") else Exception):
        torch.topk(torch.zeros(2, 3), 1, dim=2)    # PyTorch refuses the same dim


# --- the lean eager path: short-axis sorts by the scan, kthvalue through it, gathers ---------
@pytest.mark.parametrize("shape,dim", [((5, 8), -1), ((3, 32), 1), ((40, 32), -1),
                                       ((20, 3, 4), 0), ((2, 7, 3), 1), ((6,), 0)])
@pytest.mark.parametrize("descending", [True, False])
def test_short_axis_sort_matches_torch_stable_sort(shape, dim, descending):
    # below and above the scan's size limits; small integers and NaN: ties keep input order
    rng = np.random.default_rng(9)
    a = rng.integers(-3, 4, shape).astype(np.float64)
    a[rng.random(shape) < 0.15] = np.nan
    for dt in (np.float32, np.float64):
        v, i = tl.sort(tl.tensor(a.astype(dt)), dim=dim, descending=descending)
        tv, ti = torch.sort(torch.tensor(a.astype(dt)), dim=dim, descending=descending,
                            stable=True)
        np.testing.assert_array_equal(v.numpy(), tv.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())


@pytest.mark.parametrize("shape,dim", [((100,), 0), ((16, 32), -1), ((32, 16), 0),
                                       ((4, 5, 6), 1), ((3, 40), 1)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_kthvalue_values_indices_and_grads_match_torch(shape, dim, keepdim):
    rng = np.random.default_rng(10)
    a = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.5    # distinct
    n = shape[dim]
    for k in sorted({1, 2, n // 2 + 1, n - 1, n} - {0}):     # the k smallest / largest scans
        x = tl.tensor(a, requires_grad=True)
        tx = torch.tensor(a, requires_grad=True)
        v, i = tl.kthvalue(x, k, dim, keepdim)
        tv, ti = torch.kthvalue(tx, k, dim, keepdim)
        np.testing.assert_array_equal(v.detach().numpy(), tv.detach().numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
        g = rng.standard_normal(tuple(tv.shape))
        (v * tl.tensor(g)).sum().backward()
        (tv * torch.tensor(g)).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())
        # without grad (the path that slices the array rather than recording a slice op)
        with tl.no_grad():
            v2, i2 = tl.kthvalue(tl.tensor(a.astype(np.float32)), k, dim, keepdim)
        np.testing.assert_array_equal(v2.numpy(), tv.detach().numpy().astype(np.float32))
        np.testing.assert_array_equal(i2.numpy(), ti.numpy())
        assert not v2.requires_grad and not i2.requires_grad


def test_kthvalue_zero_d_and_errors():
    v, i = tl.kthvalue(tl.tensor(2.5), 1)
    tv, ti = torch.kthvalue(torch.tensor(2.5), 1)
    assert v.shape == tuple(tv.shape) == () and i.shape == tuple(ti.shape) == ()
    assert float(v) == 2.5 and int(i) == 0
    v, i = tl.kthvalue(tl.tensor(2.5), 1, keepdim=True)
    assert v.shape == i.shape == ()
    x = tl.tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="kthvalue: k=4 is out of range"):
        tl.kthvalue(x, 4)
    with pytest.raises(ValueError, match="kthvalue: k=0 is out of range"):
        tl.kthvalue(x, 0)
    with pytest.raises(TypeError, match="kthvalue: k must be an int"):
        tl.kthvalue(x, 1.0)
    with pytest.raises(TypeError, match="kthvalue: k must be an int"):
        tl.kthvalue(x, True)


def test_topk_gathers_do_not_share_state_between_calls():
    # the values come from a cached table of row starts: results of one shape must not leak
    # into another's, nor an in-place change of a result into the next call
    rng = np.random.default_rng(11)
    for shape in [(5, 7), (7, 5), (5, 7), (1, 9), (35, 1)]:
        a = rng.standard_normal(shape)
        v, i = tl.topk(tl.tensor(a), 1)
        tv, ti = torch.topk(torch.tensor(a), 1)
        np.testing.assert_array_equal(v.numpy(), tv.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
        v.numpy()[...] = 0.0
        i.numpy()[...] = 0


@pytest.mark.parametrize("kind", ["unaligned", "readonly", "strided"])
def test_topk_unusual_memory_layouts(kind):
    a = np.random.default_rng(12).standard_normal((6, 9))
    if kind == "unaligned":
        buf = np.zeros(a.size * 8 + 1, np.uint8)
        x = np.ndarray(a.shape, np.float64, buf[1:].data)
        x[...] = a
    elif kind == "readonly":
        x = a.copy()
        x.flags.writeable = False
    else:
        x = np.repeat(a, 2, axis=1)[:, ::2]
    t = tl.from_numpy(x)
    for dim in (0, 1):
        v, i = tl.topk(t, 3, dim=dim)
        tv, ti = torch.topk(torch.tensor(a), 3, dim=dim)
        np.testing.assert_array_equal(v.numpy(), tv.numpy())
        np.testing.assert_array_equal(i.numpy(), ti.numpy())
