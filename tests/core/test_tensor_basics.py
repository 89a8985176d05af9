"""Tensor basics: creation, dtypes and promotion, interop, printing, indexing, in place."""
from __future__ import annotations

import numpy as np
import pytest

import tensorlib as tl


def test_creation_dtypes():
    assert tl.tensor([1.0, 2.0]).dtype == tl.float32
    assert tl.tensor([1, 2]).dtype == tl.int64
    assert tl.tensor([True]).dtype == tl.bool_
    assert tl.tensor(np.zeros(3, np.float64)).dtype == tl.float64
    assert tl.tensor([1, 2], dtype="float16").dtype == tl.float16
    for d in (tl.float16, tl.float32, tl.float64, tl.int8, tl.int16, tl.int32, tl.int64,
              tl.uint8, tl.bool_):
        assert tl.zeros(2, dtype=d).dtype == d
    assert tl.zeros(2, 3).shape == (2, 3) and tl.ones((2, 3)).shape == (2, 3)
    assert tl.full((2,), 3).dtype == tl.int64 and tl.full((2,), 3.0).dtype == tl.float32
    assert tl.empty(0, 3).shape == (0, 3)
    np.testing.assert_array_equal(tl.arange(5).numpy(), np.arange(5))
    assert tl.arange(0, 1, 0.25).dtype == tl.float32
    np.testing.assert_allclose(tl.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5))
    np.testing.assert_array_equal(tl.eye(3).numpy(), np.eye(3))
    x = tl.randn(2, 3)
    for f in (tl.zeros_like, tl.ones_like, tl.empty_like):
        assert f(x).shape == (2, 3) and f(x).dtype == tl.float32
    assert tl.full_like(x, 7.0).numpy().max() == 7.0


def test_creation_errors():
    with pytest.raises(ValueError, match="negative dimension"):
        tl.zeros(-1)
    with pytest.raises(TypeError, match="not supported"):
        tl.tensor(np.zeros(2, np.uint16))
    with pytest.raises(TypeError, match="unknown dtype"):
        tl.zeros(2, dtype="float8")
    with pytest.raises(ValueError):
        tl.tensor([[1, 2], [3]])
    with pytest.raises(RuntimeError, match="floating"):
        tl.tensor([1, 2], requires_grad=True)


def test_random_seeding():
    tl.manual_seed(3)
    a = tl.randn(4)
    tl.manual_seed(3)
    b = tl.randn(4)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    g = tl.Generator().manual_seed(5)
    c = tl.rand(3, generator=g)
    g.manual_seed(5)
    np.testing.assert_array_equal(c.numpy(), tl.rand(3, generator=g).numpy())
    r = tl.randint(0, 10, (1000,))
    assert r.dtype == tl.int64 and 0 <= r.numpy().min() and r.numpy().max() < 10
    u = tl.uniform(2, 3, (1000,))
    assert 2 <= u.numpy().min() and u.numpy().max() < 3
    n = tl.normal(5, 0.1, (2000,))
    assert abs(n.numpy().mean() - 5) < 0.02
    assert sorted(tl.randperm(5).tolist()) == [0, 1, 2, 3, 4]


def test_weak_scalar_promotion():
    x = tl.ones(3)
    assert (x + 2.0).dtype == tl.float32
    assert (2.0 * x).dtype == tl.float32
    assert (x + 2).dtype == tl.float32
    i = tl.arange(3)
    assert (i + 1).dtype == tl.int64
    assert (i * 2.5).dtype == tl.float32
    assert (i / 2).dtype == tl.float32
    h = tl.ones(2, dtype=tl.float16)
    assert (h * 3.0).dtype == tl.float16
    assert (tl.ones(2, dtype=tl.float64) + tl.ones(2)).dtype == tl.float64
    assert (tl.ones(2, dtype=tl.int8) + 1).dtype == tl.int8
    # an out-of-range Python int wraps into the dtype, as PyTorch's (int8: 1 + 1000 -> -23)
    import torch
    assert (tl.ones(2, dtype=tl.int8) + 1000).tolist() == \
        (torch.ones(2, dtype=torch.int8) + 1000).tolist() == [-23, -23]
    with pytest.raises(OverflowError):
        tl.ones(2, dtype=tl.int8) + 2 ** 70


def test_numpy_interop_and_zero_copy():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = tl.from_numpy(a)
    a[0, 0] = 100
    assert t[0, 0].item() == 100
    t += 1
    assert a[0, 0] == 101
    assert np.asarray(t) is a or np.shares_memory(np.asarray(t), a)
    assert t.tolist()[1] == [4.0, 5.0, 6.0]
    with pytest.raises(ValueError, match="one-element"):
        t.item()


def test_dlpack_numpy_and_torch():
    t = tl.arange(6, dtype=tl.float32).reshape(2, 3)
    back = tl.from_dlpack(np.from_dlpack(t))
    np.testing.assert_array_equal(back.numpy(), t.numpy())
    torch = pytest.importorskip("torch")
    pt = torch.from_dlpack(t)
    assert tuple(pt.shape) == (2, 3)
    pt[0, 0] = 42
    assert t[0, 0].item() == 42  # shared memory both ways
    t2 = tl.from_dlpack(torch.ones(3))
    assert t2.dtype == tl.float32 and t2.sum().item() == 3


def test_repr():
    x = tl.tensor([[1.0, 2.0]], requires_grad=True)
    assert repr(x) == "tensor([[1., 2.]], requires_grad=True)"
    assert repr(x * 2) == "tensor([[2., 4.]], grad_fn=<Mul>)"
    assert "dtype=float64" in repr(tl.zeros(2, dtype=tl.float64))
    assert "..." in repr(tl.zeros(100, 100))
    assert "size=(0, 3)" in repr(tl.zeros(0, 3))
    assert repr(tl.tensor(3)) == "tensor(3)"


def test_float_reprs_print_as_torchs():
    # fixed digits in every column (NumPy trims to "0.1 , 2.  "), whole numbers as "1., 2."
    torch = pytest.importorskip("torch")
    for v in ([0.1, 2.0, 3.25], [1.0, 2.0, 3.0], [1e-5, 1.0], [float("nan"), 0.5],
              [[0.6, -0.6541], [1.0, 2.0]], [[-1.5, 2.25, 1e3]]):
        assert repr(tl.tensor(v)) == repr(torch.tensor(v)), v


def test_properties():
    x = tl.randn(2, 3, requires_grad=True)
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and len(x) == 2
    assert x.is_leaf and x.grad_fn is None and x.device == "cpu"
    y = x.sum()
    assert not y.is_leaf and y.grad_fn.name == "Sum"
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False
    assert x.T.shape == (3, 2)


def test_getitem_forms():
    a = np.arange(24.0).reshape(2, 3, 4)
    t = tl.tensor(a)
    for key in [(0,), (slice(None), 1), (Ellipsis, -1), (None, 0, slice(1, 3)),
                ([1, 0],), (slice(None), [0, 2], 1), (a > 10,)]:
        np.testing.assert_array_equal(t[key].numpy(), a[key])
    np.testing.assert_array_equal(t[tl.tensor([1, 0])].numpy(), a[[1, 0]])
    with pytest.raises(IndexError):
        t[5]
    with pytest.raises(IndexError, match="unsupported index"):
        t["a"]


def test_setitem_and_version():
    t = tl.zeros(3, 4)
    v0 = t._version_counter
    t[1] = 5.0
    t[:, 0] = tl.arange(3).astype(tl.float32)
    assert t._version_counter == v0 + 2
    assert t.numpy()[1, 1] == 5 and t.numpy()[2, 0] == 2


def test_setitem_differentiable():
    x = tl.randn(3, 4, requires_grad=True)
    v = tl.randn(4, requires_grad=True)
    y = x * 1.0
    y[1] = v * 2
    y.sum().backward()
    expected = np.ones((3, 4))
    expected[1] = 0
    np.testing.assert_allclose(x.grad.numpy(), expected)
    np.testing.assert_allclose(v.grad.numpy(), np.full(4, 2.0))


def test_inplace_operators():
    x = tl.ones(3)
    x += 1
    x *= 3
    x -= tl.ones(3)
    x /= 5
    np.testing.assert_allclose(x.numpy(), np.ones(3))
    i = tl.arange(3)
    with pytest.raises(TypeError, match="cannot be stored"):
        i += 1.5
    p = tl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        p += 1
    with tl.no_grad():
        p += 1
    assert p.numpy().tolist() == [2.0, 2.0] and p.requires_grad


def test_inplace_on_nonleaf_records_history():
    x = tl.randn(3, requires_grad=True)
    h = x * 2
    h += 1
    h *= 3  # mul by a constant: the old h is not needed for x's gradient
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 6.0))


def test_ops_errors_name_the_op():
    with pytest.raises(ValueError, match=r"matmul: shapes \(3, 4\) and \(5, 6\) do not align "
                                         r"\(4 != 5\)"):
        tl.ones(3, 4) @ tl.ones(5, 6)
    with pytest.raises(ValueError, match=r"add: shapes \(3,\) and \(4,\) cannot be broadcast"):
        tl.ones(3) + tl.ones(4)
    with pytest.raises(ValueError, match="reshape"):
        tl.ones(6).reshape(4, 2)
    with pytest.raises(ValueError, match="concatenate"):
        tl.concatenate([tl.ones(2, 3), tl.ones(3, 3)], axis=1)
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        tl.ones(2, 2).sum(axis=3)
    with pytest.raises(ValueError, match="max: cannot reduce a zero-size"):
        tl.zeros(0).max()
    with pytest.raises(RuntimeError, match="one device"):
        tl.ones(2) + tl.ones(2).to("cpu:1")
    with pytest.raises(TypeError, match="unsupported operand"):
        tl.ones(2) + "a"


def test_zero_size_and_noncontiguous():
    z = tl.zeros(0, 3, requires_grad=True)
    (z * 2).sum().backward()
    assert z.grad.shape == (0, 3)
    a = np.asfortranarray(np.arange(12.0).reshape(3, 4))[:, ::2]
    t = tl.tensor(a, requires_grad=True)
    (t.exp() * t).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), np.exp(a) * (1 + a), rtol=1e-6)


def test_nan_inf_propagate():
    x = tl.tensor([np.nan, np.inf, -1.0])
    out = x.exp()
    assert np.isnan(out.numpy()[0]) and np.isinf(out.numpy()[1])
    assert tl.isnan(x).tolist() == [True, False, False]


def test_device_objects():
    assert tl.device("cpu") is tl.device("cpu:0")
    assert str(tl.device("/worker:1/cuda:0")) == "/worker:1/cuda:0"
    with pytest.raises(ValueError, match="invalid device"):
        tl.device("tpu")
    x = tl.ones(2)
    y = x.to("cpu:1")
    assert y.device == "cpu:1" and y.to("cpu").device == "cpu"


def test_to_takes_a_dtype_or_a_tensor_as_pytorch_does():
    x = tl.ones(2, requires_grad=True)
    assert x.to(tl.float64).dtype == np.float64 and x.to("float16").dtype == np.float16
    assert x.to(np.int64).dtype == np.int64
    y = x.to("cpu:1", tl.float64)
    assert y.device == "cpu:1" and y.dtype == np.float64
    z = x.to(y)                       # another tensor's device and dtype
    assert z.device == "cpu:1" and z.dtype == np.float64
    x.to(tl.float64).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])
    with pytest.raises(TypeError, match="two dtypes"):
        x.to(tl.float64, tl.float16)
    with pytest.raises(ValueError, match="invalid device"):
        x.to("gpu")


def test_softmax_as_a_method_and_at_top_level():
    x = tl.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    want = np.exp(x.numpy()) / np.exp(x.numpy()).sum(1, keepdims=True)
    np.testing.assert_allclose(x.softmax(1).numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(tl.softmax(x, dim=-1).numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(x.log_softmax(axis=1).numpy(), np.log(want), rtol=1e-5)
    assert tl.log_softmax is tl.nn.functional.log_softmax


def test_linalg_failures_name_the_op():
    with pytest.raises(ValueError, match="linalg.inv: The diagonal element 2 is zero"):
        tl.linalg.inv(tl.ones(2, 2))
    with pytest.raises(ValueError, match="linalg.cholesky: .*not positive-definite"):
        tl.linalg.cholesky(-tl.eye(2))
    with pytest.raises(ValueError, match=r"solve: A \(3, 3\) and b \(2,\) do not align"):
        tl.linalg.solve(tl.eye(3), tl.ones(2))
    with pytest.raises(ValueError, match="square matrix"):
        tl.linalg.det(tl.ones(2, 3))
    with pytest.raises(TypeError, match="float32 or float64"):
        tl.linalg.inv(tl.eye(2).half())


def test_set_printoptions_controls_repr():
    x = tl.tensor(np.arange(12.0) / 3)
    try:
        tl.set_printoptions(precision=2)
        assert "0.33" in repr(x) and "0.3333" not in repr(x)
        tl.set_printoptions(threshold=5, edgeitems=1)
        assert "..." in repr(x) and repr(x).count(",") < 6
        tl.set_printoptions(sci_mode=True)
        assert "e+00" in repr(tl.tensor([1.5]))
        with pytest.raises(ValueError, match="profile must be one of"):
            tl.set_printoptions(profile="long")
        tl.set_printoptions(profile="full")
        assert "..." not in repr(tl.tensor(np.zeros(5000)))
    finally:
        tl.set_printoptions(profile="default")
    assert repr(tl.tensor([1 / 3])) == "tensor([0.3333])"


def test_set_default_dtype():
    try:
        tl.set_default_dtype(tl.float64)
        assert tl.get_default_dtype() == np.float64
        assert tl.tensor(1.5).dtype == np.float64
        assert tl.nn.Linear(2, 2).weight.dtype == np.float64
        assert tl.randn(2).dtype == np.float64 and tl.arange(0.5, 2).dtype == np.float64
        with pytest.raises(TypeError, match="only floating dtypes"):
            tl.set_default_dtype(tl.int64)
    finally:
        tl.set_default_dtype(tl.float32)
    assert tl.tensor(1.5).dtype == np.float32


def test_numpy_array_operands_give_tensors_with_gradients():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    a = np.ones(2, np.float32)
    for r in (x + a, a + x, x * a, a * x, x - a, a - x, x @ a, a @ x, x == a, a < x):
        assert isinstance(r, tl.Tensor)
    assert (x == np.array([1.0, 3.0])).tolist() == [True, False]
    (x * a + a * x).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]


def test_integer_results_never_require_grad():
    x = tl.tensor([1.5, 2.5], requires_grad=True)
    assert not x.long().requires_grad and not (x > 1).requires_grad
    w = tl.tensor([1.0, 1.0], requires_grad=True)
    (x.long() * w).sum().backward()
    assert x.grad is None and w.grad.tolist() == [1.0, 2.0]


def test_gradient_has_the_leaf_dtype():
    x = tl.tensor([1.0, 2.0], requires_grad=True)
    (x * tl.tensor([1, 2])).sum().backward()
    assert x.grad.dtype == tl.float32
    g = tl.grad((x * tl.tensor([1.0, 2.0], dtype=tl.float64)).sum(), [x])[0]
    assert g.dtype == tl.float32


def test_bitwise_operators_on_integers_and_booleans():
    i = tl.tensor([1, 2, 3])
    assert (~i).tolist() == [-2, -3, -4]
    assert (i & 1).tolist() == [1, 0, 1] and (1 & i).tolist() == [1, 0, 1]
    assert (i | 4).tolist() == [5, 6, 7] and (i ^ 1).tolist() == [0, 3, 2]
    assert (i << 2).tolist() == [4, 8, 12] and (i >> 1).tolist() == [0, 1, 1]
    m = i > 1
    assert (~m).tolist() == [True, False, False] and (m & (i < 3)).tolist() == [False, True,
                                                                                False]
    with pytest.raises(TypeError, match="integer or boolean"):
        tl.tensor([1.0]) & 1


def test_conveniences_users_expect_from_pytorch():
    loss = tl.tensor(1.23456)
    assert f"{loss:.3f}" == "1.235" and f"{tl.ones(1):.1f}" == "1.0"
    assert f"{loss}" == str(loss.item())         # a 0-d tensor formats as its number
    with pytest.raises(TypeError, match="one-element"):
        f"{tl.ones(2):.2f}"
    x = tl.randn(2, 3, 4)
    assert x.transpose(2, 0, 1).shape == (4, 2, 3) == x.transpose((2, 0, 1)).shape
    assert x.transpose().shape == (4, 3, 2)
    assert x.transpose(-2, -1).shape == (2, 4, 3)          # two ints swap (PyTorch's)
    m = tl.arange(6).reshape(2, 3)
    assert m.transpose(0, 1).shape == (3, 2) == m.transpose(1, 0).shape
    assert m.transpose((0, 1)).shape == (2, 3)             # a permutation tuple (NumPy's)
    assert tl.randint(10, (3,)).shape == (3,) and tl.randint(2, 5, (2, 2)).shape == (2, 2)
    with pytest.raises(TypeError, match="randint"):
        tl.randint(10, (3,), size=(2,))
    with pytest.raises(TypeError, match="tl.randint"):
        tl.randn(3, dtype=tl.int64)
    tl.set_printoptions(sci_mode=False)
    try:
        # PyTorch 2.13 pads every element to the widest one
        assert repr(tl.tensor([1e-8, 1e8])) == "tensor([        0.0000, 100000000.0000])"
    finally:
        tl.set_printoptions(sci_mode=None)


def test_reductions_accumulate_as_pytorch():
    """uint8 sums give int64 (NumPy's uint64 is not a tensorlib dtype); float16 statistics
    accumulate in float32 (their squares overflowed at 256); a 0-d scan stays 0-d."""
    u = tl.tensor(np.array([200, 100], np.uint8))
    for r in (tl.sum(u), tl.prod(u), tl.cumsum(u), tl.cumprod(u)):
        assert r.dtype == tl.int64
    assert tl.sum(u).item() == 300 and tl.cumprod(u).tolist() == [200, 20000]
    h = tl.tensor([1e4] * 8, dtype=tl.float16)
    assert float(h.std()) == 0.0 and float(h.var()) == 0.0 and h.std().dtype == tl.float16
    assert float(tl.tensor([300.0] * 4, dtype=tl.float16).norm()) == 600.0
    assert float(tl.ones(1000, dtype=tl.float16).sum()) == 1000.0
    assert tl.cumsum(tl.tensor(3.0)).shape == () and tl.cumprod(tl.tensor(2)).item() == 2


def test_empty_list_index_selects_nothing():
    t = tl.randn(3, 2, requires_grad=True)
    assert t[[]].shape == (0, 2) and t[:, []].shape == (3, 0)
    t[[]].sum().backward()
    assert t.grad.tolist() == [[0.0, 0.0]] * 3


def test_pytorch_spellings():
    x = tl.tensor([[1.0, 2.0], [3.0, 4.0]])
    idx = tl.tensor([[0, 0], [1, 0]])
    want = [[1.0, 1.0], [4.0, 3.0]]
    for got in (x.gather(1, idx), x.gather(idx, 1), tl.gather(x, 1, idx), tl.gather(x, idx, 1),
                x.gather(dim=1, index=idx)):
        assert got.tolist() == want
    torch = pytest.importorskip("torch")
    y = np.arange(12.0).reshape(3, 4)
    for d, i in ((1, [[1, 2]]), (0, [[2], [0]]), (1, [[1], [2]])):   # no broadcasting
        assert tl.tensor(y).gather(d, tl.tensor(i)).tolist() == \
            torch.tensor(y).gather(d, torch.tensor(i)).tolist()
    with pytest.raises(ValueError, match="does not fit"):
        tl.tensor(y).gather(1, tl.tensor([[1], [2], [0], [1]]))
    assert x.eq(1.0).tolist() == [[True, False], [False, False]] and x.ge(3.0).sum().item() == 2
    assert x.t().tolist() == [[1.0, 3.0], [2.0, 4.0]] and x.T.contiguous()._data.flags.c_contiguous
    assert x.new_zeros(2, 3).shape == (2, 3) and x.new_full((2,), 7.0).tolist() == [7.0, 7.0]
    assert x.new_ones((1,)).dtype == x.dtype
    assert float(round(tl.tensor(2.6))) == 3.0
    assert abs(float(round(tl.tensor(1.2345), 2)) - 1.23) < 1e-6
    assert tl.cat([x, x], dim=1).shape == (2, 4) and tl.stack([x, x], dim=1).shape == (2, 2, 2)
    y = -tl.ones(2)
    y.abs_()
    assert y.tolist() == [1.0, 1.0]
    p = tl.nn.Parameter(tl.ones(2))
    p.data = tl.zeros(3)
    assert p.shape == (3,) and p.requires_grad


def test_in_place_with_an_ndarray_operand():
    u = tl.ones(2) * 1
    u += np.ones(2, np.float32)
    assert u.tolist() == [2.0, 2.0]


@pytest.mark.parametrize("e", [2, 3, 4, 2.5])
def test_power_fast_paths_match_numpy(e):
    a = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose((tl.tensor(a) ** e).numpy(), np.power(a, e), rtol=2e-6)
    x = tl.tensor(a.astype(np.float64), requires_grad=True)
    (x ** 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 3 * a.astype(np.float64) ** 2, rtol=1e-6)


def test_float32_sigmoid_kernel_is_accurate():
    x = np.concatenate([np.linspace(-90, 90, 1001), np.random.default_rng(1).standard_normal(
        1000) * 8]).astype(np.float32)
    ref = 1 / (1 + np.exp(-x.astype(np.float64)))
    got = tl.sigmoid(tl.tensor(x)).numpy().astype(np.float64)
    big = ref > 1e-37
    assert (np.abs(got - ref)[big] / ref[big]).max() < 1e-6
    t = tl.tensor(x[::3].copy().reshape(-1, 1)[:100].T)     # non-contiguous view too
    with np.errstate(over="ignore"):
        want = 1 / (1 + np.exp(-t.numpy()))
    np.testing.assert_allclose(tl.sigmoid(t).numpy(), want, rtol=1e-6)


def test_float32_erf_kernel_is_accurate():
    import math
    x = np.concatenate([np.linspace(-6, 6, 20001), np.logspace(-30, 0, 300),
                        -np.logspace(-30, 0, 300), [0.0, np.inf, -np.inf]]).astype(np.float32)
    ref = np.array([math.erf(float(v)) for v in x])
    got = tl.erf(tl.tensor(x)).numpy().astype(np.float64)
    assert (np.abs(got - ref) / np.maximum(np.abs(ref), 1e-30)).max() < 5e-7
    assert np.isnan(tl.erf(tl.tensor(np.float32(np.nan))).item())


def test_float32_gelu_kernels_are_accurate():
    """The one-pass float32 GELU and its backward against the float64 formula."""
    import math
    x = np.concatenate([np.linspace(-12, 10, 4401), [0.0]]).astype(np.float32)
    xd = x.astype(np.float64)
    erf = np.vectorize(math.erf)
    cdf = 0.5 * (1 + erf(xd / math.sqrt(2)))
    a = tl.tensor(x, requires_grad=True)
    y = tl.nn.functional.gelu(a)
    np.testing.assert_allclose(y.detach().numpy(), xd * cdf, rtol=2e-6, atol=1e-7)
    # the left tail keeps its relative accuracy (Phi from erfc, not 1 + erf, which cancels)
    tail = (x < -2) & (x > -12)
    cdf_tail = 0.5 * np.vectorize(math.erfc)(-xd[tail] / math.sqrt(2))
    np.testing.assert_allclose(y.detach().numpy()[tail], xd[tail] * cdf_tail, rtol=2e-5)
    y.sum().backward()
    want = cdf + xd * np.exp(-xd * xd / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(a.grad.numpy(), want, rtol=2e-6, atol=1e-7)


def test_invalid_values_give_nan_without_numpys_warnings():
    # PyTorch is silent; NumPy's warnings pointed into tensorlib's own lines. In a fresh
    # process (pytest replaces the warning filters per test)
    import subprocess
    import sys
    code = ("import numpy as np, tensorlib as tl\n"
            "x = tl.tensor([-1.0, 0.0, 1.0], requires_grad=True)\n"
            "y = (tl.log(x) + 1 / x).sum(); y.backward()\n"
            "assert np.isnan(y.item()) and np.isnan(x.grad.numpy()[1])\n"
            "np.log(np.array([-1.0]))\n")
    out = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "tensorlib" not in out.stderr, out.stderr            # none from tensorlib
    assert "invalid value encountered in log" in out.stderr      # the user's own NumPy code


def test_a_device_block_is_the_default_device_of_created_tensors():
    # the docstring said the block pinned captured ops, and nothing read it
    with tl.device("cpu:1"):
        made = [tl.zeros(3), tl.ones(2, 2), tl.tensor([1.0]), tl.randn(2), tl.arange(3),
                tl.full((2,), 7.0), tl.eye(2), tl.linspace(0, 1, 3)]
        explicit = tl.zeros(2, device="cpu")
        like = tl.zeros_like(explicit)         # *_like keep their argument's device
        with tl.device("cpu:2"):
            inner = tl.zeros(1)
    assert all(str(t.device) == "cpu:1" for t in made)
    assert str(explicit.device) == "cpu" and str(like.device) == "cpu"
    assert str(inner.device) == "cpu:2" and str(tl.zeros(1).device) == "cpu"


def test_the_tensor_constructor_is_torch_tensor_s():
    # Tensor([0, 0, 1]) was int64, so a discounted return built in place in it truncated
    torch = pytest.importorskip("torch")
    for data in ([0, 0, 1], [True, False], np.arange(3), [[1.5, 2]]):
        t, want = tl.Tensor(data), torch.Tensor(data)
        assert t.dtype == np.float32 and t.tolist() == want.tolist()
    assert tl.Tensor(2, 3).shape == (2, 3) and tl.Tensor(5).shape == (5,)
    assert tl.Tensor().shape == tuple(torch.Tensor().shape) == (0,)
    assert tl.Tensor([1, 2], dtype="int64").dtype == np.int64
    assert tl.tensor([1, 2]).dtype == np.int64          # tl.tensor keeps the data's dtype
    assert tl.nn.Parameter(np.ones(2)).dtype == np.float64
    assert tl.Tensor(tl.tensor([1, 2])).dtype == np.int64      # a tensor keeps its dtype


def test_bitwise_augmented_assignments_are_in_place():
    # x &= m rebound x to a new tensor: the write never reached a view's base
    x = tl.tensor(np.array([1, 2, 3, 4]))
    v = x[1:3]
    v |= 8
    assert x.tolist() == [1, 10, 11, 4]
    import operator
    for op, want in ((operator.iand, [0, 2, 1, 0]), (operator.ixor, [3, 0, 2, 6]),
                     (operator.ilshift, [2, 4, 6, 8]), (operator.irshift, [0, 1, 1, 2])):
        y = tl.tensor(np.array([1, 2, 3, 4]))
        other = tl.tensor(np.array([2, 2, 1, 2])) if op in (operator.iand, operator.ixor) \
            else 1
        assert op(y, other) is y and y.tolist() == want, op
    with pytest.raises(ValueError, match="__ixor__"):
        a = tl.tensor(5)
        a ^= tl.tensor([[4, 3, 1]])


def test_a_view_or_reshape_to_the_same_shape_is_a_new_tensor_sharing_memory():
    # it was x itself: an in-place shape change of the "view" (t_, squeeze_) changed x
    x = tl.zeros(2, 3)
    for v in (x.view(2, 3), x.reshape(2, 3), x.view(x.shape)):
        assert v is not x
        v.t_()
        assert x.shape == (2, 3) and v.shape == (3, 2)
        v.add_(1.0)                          # the memory is still shared
    np.testing.assert_array_equal(x.numpy(), np.full((2, 3), 3.0))


def test_setitem_takes_arrays_and_lists_in_the_tensors_dtype():
    # PyTorch ports copy NumPy weights in with p.data[...] = array
    t = tl.zeros(2, 3)
    t[...] = np.arange(6, dtype=np.float64).reshape(2, 3)
    t[0] = [7, 8, 9]
    t[1, :2] = (5, 6)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.numpy(), [[7, 8, 9], [5, 6, 5]])
    i = tl.zeros(3, dtype=tl.int64)
    i[:] = np.array([1.7, 2.0, -3.2])
    assert i.tolist() == [1, 2, -3]
    with pytest.raises(ValueError, match="broadcast"):
        t[0] = np.ones(4)


def test_numpy_ufuncs_on_tensors_are_tensorlib_ops():
    # np.exp(w) on a tensor is tl.exp(w), on the tape (PyTorch returns a Tensor too); a ufunc
    # tensorlib lacks refuses a tensor that needs grad rather than dropping its gradient
    w = tl.tensor([0.0, 1.0], requires_grad=True)
    y = np.exp(w) * w
    assert isinstance(y, tl.Tensor)
    y.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), np.exp([0.0, 1.0]) * (1 + np.array([0.0, 1.0])),
                               rtol=1e-6)
    a = np.array([3.0, 4.0], np.float32)
    assert isinstance(np.maximum(a, w), tl.Tensor) and (a - w).requires_grad
    np.testing.assert_array_equal((a < w).numpy(), [False, False])
    with pytest.raises(TypeError, match="numpy.cbrt on a tensor that requires grad"):
        np.cbrt(w)
    np.testing.assert_allclose(np.cbrt(tl.tensor([8.0])), [2.0])     # values only: fine
    assert np.add.reduce(tl.tensor([1.0, 2.0, 3.0])) == 6.0


def test_flip_and_rot90_are_new_tensors_as_pytorch():
    # augmentation writes into flipped batches (out = img.flip(3); out.mul_(2)): the source
    # must stay as it was (a NumPy-style view changed it, and its gradient)
    x = tl.tensor(np.arange(6.0).reshape(2, 3))
    x.flip(1).mul_(2)
    tl.rot90(x, 1, (0, 1)).add_(1)
    tl.flip(x, [0])[0] = 0
    np.testing.assert_array_equal(x.numpy(), np.arange(6.0).reshape(2, 3))
    a = tl.tensor([1.0, 2.0], requires_grad=True)
    b = a * 1
    b.flip(0).mul_(3)
    b.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 1.0])
    var_pos = tl.var(tl.tensor([1.0, 2.0, 4.0]), 0, False)   # torch.var(x, dim, unbiased)
    assert var_pos.item() == pytest.approx(np.var([1.0, 2.0, 4.0]))


def test_row_write_from_numpy_casts_bumps_the_version_and_reaches_views():
    # buf[i] = obs (a replay buffer's write) takes a short path: same semantics as the rest
    buf = tl.zeros(4, 2, dtype=tl.int64)
    view = buf[1:3]
    v0 = buf._version[0]
    buf[1] = np.array([1.7, -2.5])
    assert buf[1].tolist() == [1, -2] and view[0].tolist() == [1, -2]
    assert buf._version[0] == v0 + 1
    with pytest.raises(IndexError, match="setitem: index 9 is out of bounds"):
        buf[9] = np.ones(2)
    with pytest.raises(ValueError, match="setitem: could not broadcast"):
        buf[0] = np.ones(3)
    w = tl.zeros(2, 2, requires_grad=True)        # a leaf that requires grad still refuses
    with pytest.raises(RuntimeError):
        w[0] = np.ones(2, np.float32)


def test_integer_outputs_of_a_recorded_op_are_leaves_without_grad_fn():
    # cummax's indices come from the node that makes its values; as in PyTorch they do not
    # require grad, so they show no grad_fn and are leaves
    x = tl.tensor([1.0, 3.0, 2.0], requires_grad=True)
    r = tl.cummax(x, 0)
    assert r.values.grad_fn is not None and not r.values.is_leaf
    assert r.indices.grad_fn is None and r.indices.is_leaf and not r.indices.requires_grad
    assert "grad_fn" not in repr(r.indices) and "grad_fn" in repr(r.values)


def test_input_errors_are_runtime_errors_too_as_pytorch_raises():
    # PyTorch raises RuntimeError for these; tensorlib's are ValueError/TypeError as well
    cases = [lambda: tl.ones(3, 4) / tl.ones(3), lambda: tl.ones(3, 4) @ tl.ones(5, 6),
             lambda: tl.ones(2, 3, 4).transpose(1, 2).view(2, 12),
             lambda: tl.ones(6).reshape(4, 2),
             lambda: tl.nn.Linear(3, 2)(tl.ones(2, 3, dtype=tl.int64))]
    for f in cases:
        with pytest.raises(RuntimeError) as info:
            f()
        assert isinstance(info.value, (ValueError, TypeError))
        assert isinstance(info.value, (tl.errors.ShapeError, tl.errors.DTypeError))
