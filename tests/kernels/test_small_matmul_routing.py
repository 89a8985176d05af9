"""Small matrix products: the routing between tensorlib's SGEMM and NumPy's BLAS (every route
and transpose against NumPy in float64, across the crossovers), matmul/linear against PyTorch
on values and gradients, and autograd.grad's check of grad_outputs' shapes."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib import _blas, _gemm, _ops
from tensorlib.errors import ShapeError

torch = pytest.importorskip("torch")

needs_avx512 = pytest.mark.skipif(_ops.SGEMM_ISA != "avx512" or _gemm.ISA != "avx512",
                                  reason="the routes measured on the AVX-512 kernel")
SIZES = [8, 16, 31, 32, 48, 63, 64, 65, 96, 128, 130, 200]


def _operands(rng, shape_a, shape_b, dtype, ta: bool, tb: bool, strided: bool = False):
    """a (..., m, k) and b (..., k, n), each a transposed view when asked, or every other row
    and column of a larger array (strides not 1 in either dim)."""
    def make(shape, t):
        shape = tuple(shape)
        if t:
            shape = shape[:-2] + shape[-2:][::-1]
        if strided:
            big = rng.standard_normal(shape[:-2] + (2 * shape[-2], 2 * shape[-1]))
            x = big.astype(dtype)[..., ::2, ::2]
        else:
            x = rng.standard_normal(shape).astype(dtype)
        return np.swapaxes(x, -1, -2) if t else x
    return make(shape_a, ta), make(shape_b, tb)


def _check(c, a, b):
    ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert c.shape == ref.shape and c.dtype == np.result_type(a, b)
    k = a.shape[-1]
    tol = 1e-5 * np.sqrt(k) if a.dtype == np.float32 else 1e-12 * np.sqrt(k)
    np.testing.assert_allclose(c, ref, rtol=tol, atol=tol * 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans", ["NN", "NT", "TN", "TT"])
@pytest.mark.parametrize("n", SIZES)
def test_square_products_match_numpy(n, trans, dtype):
    rng = np.random.default_rng(n)
    a, b = _operands(rng, (n, n), (n, n), dtype, trans[0] == "T", trans[1] == "T")
    _check(_gemm.matmul(a, b), a, b)


@pytest.mark.parametrize("trans", ["NN", "NT", "TN"])
@pytest.mark.parametrize("shape", [(64, 64, 64), (128, 128, 128), (96, 200, 64), (300, 48, 40),
                                   (128, 512, 10), (2048, 16, 64)])
@pytest.mark.parametrize("strided", [False, True])
def test_rectangular_and_strided_products_match_numpy(shape, trans, strided):
    m, k, n = shape
    rng = np.random.default_rng(m + k + n)
    a, b = _operands(rng, (m, k), (k, n), np.float32, trans[0] == "T", trans[1] == "T",
                     strided)
    _check(_gemm.matmul(a, b), a, b)
    out = np.full((m, n), np.nan, np.float32)
    assert _gemm.matmul(a, b, out=out) is out
    _check(out, a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans", ["NN", "NT", "TN"])
@pytest.mark.parametrize("n", [8, 32, 64, 96, 128])
@pytest.mark.parametrize("batch", [(3,), (2, 2)])
def test_batched_products_match_numpy(batch, n, trans, dtype):
    rng = np.random.default_rng(n)
    a, b = _operands(rng, batch + (n, n), batch + (n, n), dtype, trans[0] == "T",
                     trans[1] == "T")
    _check(_gemm.matmul(a, b), a, b)
    _check(_gemm.matmul(a, b[0]), a, np.broadcast_to(b[0], b.shape))   # one b for the stack


@needs_avx512
@pytest.mark.parametrize("route", ["kernel", "numpy"])
@pytest.mark.parametrize("trans", ["NN", "NT", "TN", "TT"])
@pytest.mark.parametrize("n", [16, 64, 130])
@pytest.mark.parametrize("batched", [False, True])
def test_each_route_matches_numpy(route, trans, n, batched, monkeypatch):
    """The same products forced onto the kernel (thresholds of 1) and onto NumPy."""
    if route == "kernel":
        monkeypatch.setattr(_gemm, "MIN_WORK", 1)
        monkeypatch.setattr(_gemm, "suits", lambda *a: True)
    else:
        monkeypatch.setattr(_gemm, "MIN_WORK", 1 << 62)
    calls = []
    for name in ("sgemm", "sgemm_batched"):
        real = getattr(_ops, name)
        monkeypatch.setattr(_ops, name, lambda *a, _r=real, _n=name: calls.append(_n) or _r(*a))
    rng = np.random.default_rng(7)
    lead = (3,) if batched else ()
    a, b = _operands(rng, lead + (n, n + 3), lead + (n + 3, n), np.float32, trans[0] == "T",
                     trans[1] == "T")
    _check(_gemm.matmul(a, b), a, b)
    assert bool(calls) == (route == "kernel")


@needs_avx512
@pytest.mark.parametrize("m,k,n,b_transposed,route", [
    (32, 32, 32, False, None), (32, 32, 32, True, None),    # one OpenBLAS thread: NumPy's
    (64, 64, 64, False, None),      # B read in place: OpenBLAS is faster below 128^3
    (96, 96, 96, False, None),
    (64, 64, 64, True, "direct"),   # x @ w.T: OpenBLAS packs the transposed B slower
    (96, 96, 96, True, "direct"),
    (128, 128, 128, False, "direct"), (256, 256, 256, False, "direct"),
    (128, 512, 10, False, "transposed")])
def test_small_products_go_to_the_faster_gemm(m, k, n, b_transposed, route):
    a = np.zeros((m, k), np.float32)
    b = np.zeros((n, k), np.float32).T if b_transposed else np.zeros((k, n), np.float32)
    assert _gemm._route(a, b) == route


@needs_avx512
def test_small_stacks_go_to_numpy_and_large_ones_to_the_kernel(monkeypatch):
    calls = []
    real = _ops.sgemm_batched
    monkeypatch.setattr(_ops, "sgemm_batched", lambda *a: calls.append(a[0].shape) or real(*a))
    for n in (8, 64, 96):
        x = np.ones((4, n, n), np.float32)
        assert (_gemm.matmul(x, x) == n).all()
    assert calls == []
    x = np.ones((4, 128, 128), np.float32)
    assert (_gemm.matmul(x, x) == 128).all()
    assert calls == [(4, 128, 128)]


@pytest.mark.parametrize("case", ["int", "complex", "mismatch", "float16", "mixed"])
def test_the_fast_path_keeps_numpys_behaviour(case):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((40, 30)), rng.standard_normal((30, 20))
    if case == "int":
        a, b = (a * 10).astype(np.int32), (b * 10).astype(np.int32)
    elif case == "complex":
        a, b = a + 1j * a[::-1], (b + 2j * b).astype(np.complex64)
    elif case == "float16":
        a, b = a.astype(np.float16), b.astype(np.float16)
    elif case == "mixed":
        a = a.astype(np.float32)
    elif case == "mismatch":
        with pytest.raises(ValueError):
            _gemm.matmul(a, b.T)
        return
    got, want = _gemm.matmul(a, b), np.matmul(a, b)
    assert got.dtype == want.dtype
    tol = 1e-2 if case == "float16" else 1e-6
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


@pytest.mark.skipif(_blas._threads is None, reason="NumPy's BLAS is not OpenBLAS")
def test_one_thread_nests_and_threaded_reports_the_count():
    get, set_ = _blas._threads
    before = get()
    try:
        for count in (1, 2):
            set_(count)
            now = get()         # (a library built for one thread stays at 1)
            assert _blas.threaded() == (now != 1)
            with _blas.one_thread():
                assert get() == 1 and not _blas.threaded()
                with _blas.one_thread():
                    assert get() == 1
                assert get() == 1
            assert get() == now
    finally:
        set_(before)
    assert get() == before


@pytest.mark.skipif(_blas._threads is None, reason="NumPy's BLAS is not OpenBLAS")
def test_one_thread_restores_a_count_above_one():
    get, set_ = _blas._threads
    before = get()
    try:
        set_(2)
        two = get()             # (a library built for one thread stays at 1)
        with _blas.one_thread():
            assert get() == 1
        assert get() == two
    finally:
        set_(before)


# --- tensors, against PyTorch --------------------------------------------------------------
def _pair(rng, shape, dtype, requires_grad=True):
    x = rng.standard_normal(shape).astype(dtype)
    return (tl.tensor(x, requires_grad=requires_grad),
            torch.tensor(x, requires_grad=requires_grad))


def _close(t, p, dtype):
    tol = 1e-4 if dtype == np.float32 else 1e-10
    want = p.detach().numpy()
    # absolute error on the scale of the largest entry (1% of it): an entry that is a
    # cancelling sum of terms in the hundreds carries float32 rounding of ~1e-4 (seen: OpenBLAS's
    # AVX2 kernels and PyTorch's summing in different orders, 1.06e-4 beside entries of 654)
    np.testing.assert_allclose(t.numpy(), want, rtol=tol,
                               atol=tol * max(1.0, 0.01 * float(np.abs(want).max(initial=0.0))))


@settings(max_examples=25, deadline=None)
@given(m=st.sampled_from([1, 8, 33, 64, 96, 130]), k=st.sampled_from([2, 16, 64, 128]),
       n=st.sampled_from([1, 10, 32, 64, 129]), trans=st.sampled_from(["NN", "NT", "TN"]),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_matmul_values_and_grads_match_torch(m, k, n, trans, dtype):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    ta, pa = _pair(rng, (k, m) if trans[0] == "T" else (m, k), dtype)
    tb, pb = _pair(rng, (n, k) if trans[1] == "T" else (k, n), dtype)
    xa, xpa = (ta.T, pa.T) if trans[0] == "T" else (ta, pa)
    xb, xpb = (tb.T, pb.T) if trans[1] == "T" else (tb, pb)
    out, pout = xa @ xb, xpa @ xpb
    _close(out, pout, dtype)
    g = rng.standard_normal((m, n)).astype(dtype)
    out.backward(tl.tensor(g))
    pout.backward(torch.tensor(g))
    _close(ta.grad, pa.grad, dtype)
    _close(tb.grad, pb.grad, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [32, 64, 128])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_values_and_grads_match_torch(n, dtype, bias):
    rng = np.random.default_rng(n)
    tx, px = _pair(rng, (n, n), dtype)
    tw, pw = _pair(rng, (n, n), dtype)
    tb, pb = _pair(rng, (n,), dtype) if bias else (None, None)
    out, pout = F.linear(tx, tw, tb), torch.nn.functional.linear(px, pw, pb)
    _close(out, pout, dtype)
    (out * out).sum().backward()
    (pout * pout).sum().backward()
    for t, p in ((tx, px), (tw, pw)) + (((tb, pb),) if bias else ()):
        _close(t.grad, p.grad, dtype)


@pytest.mark.parametrize("n", [32, 64])
def test_batched_matmul_grads_match_torch(n):
    rng = np.random.default_rng(1)
    ta, pa = _pair(rng, (4, n, n), np.float64)
    tb, pb = _pair(rng, (4, n, n), np.float64)
    out, pout = ta @ tb.transpose(-1, -2), pa @ pb.transpose(-1, -2)
    _close(out, pout, np.float64)
    out.sum().backward()
    pout.sum().backward()
    _close(ta.grad, pa.grad, np.float64)
    _close(tb.grad, pb.grad, np.float64)


def test_transpose_backward_is_a_view_of_the_gradient():
    """The gradient through w.T is w's gradient transposed back (no copy is needed: the next
    product reads transposed operands in place)."""
    rng = np.random.default_rng(2)
    tw = tl.tensor(rng.standard_normal((64, 64)).astype(np.float32), requires_grad=True)
    g = tl.tensor(rng.standard_normal((64, 64)).astype(np.float32))
    (gw,) = tl.autograd.grad(tw.T, tw, grad_outputs=g)
    np.testing.assert_array_equal(gw.numpy(), g.numpy().T)
    assert np.shares_memory(gw.numpy(), g.numpy())


# --- grad_outputs of the wrong shape ----------------------------------------------------------
def test_grad_outputs_of_the_wrong_shape_raise_a_shape_error():
    x = tl.ones(3, requires_grad=True)
    y, z = x * 2, x * 3
    with pytest.raises(ShapeError, match=r"grad_outputs\[1\] has shape \(2,\) and "
                                         r"output\[1\] has shape \(3,\)"):
        tl.autograd.grad([y, z], [x], grad_outputs=[tl.ones(3), tl.ones(2)])
    with pytest.raises(RuntimeError, match="Mismatch in shape"):     # PyTorch's type and words
        tl.autograd.grad(y, x, grad_outputs=tl.ones(1, 3))
    with pytest.raises(ValueError, match=r"grad_outputs\[0\]"):      # and still a ValueError
        tl.autograd.grad(y, x, grad_outputs=tl.ones(4))
    px = torch.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        torch.autograd.grad(px * 2, px, grad_outputs=torch.ones(2))


def test_backward_gradient_of_the_wrong_shape_raises_a_shape_error():
    x = tl.ones(3, requires_grad=True)
    with pytest.raises(ShapeError, match=r"gradient has shape \(2,\) and output\[0\] has "
                                         r"shape \(3,\)"):
        (x * 2).backward(tl.ones(2))
    (gx,) = tl.autograd.grad(x * 2, x, grad_outputs=tl.tensor([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(gx.numpy(), [2.0, 4.0, 6.0])
