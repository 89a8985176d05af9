"""tensorlib's float32 GEMM (tensorlib/_sgemm.h through _ops.sgemm and tensorlib._gemm)
against NumPy in float64: every edge of the register tile and the packing blocks, transposed
and strided operands, alpha/beta, threads, and the fallbacks to NumPy."""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib import _blas, _gemm, _ops

needs_sgemm = pytest.mark.skipif(not _ops.SGEMM_SUPPORTED,
                                 reason="CPU with neither AVX-512 nor AVX2")
needs_avx512 = pytest.mark.skipif(_ops.SGEMM_ISA != "avx512", reason="CPU without AVX-512")
needs_sgemv = pytest.mark.skipif(not _ops.SGEMV_SUPPORTED, reason="CPU without AVX-512")


def _operand(rng, rows, cols, layout):
    """A (rows, cols) float32 matrix: C order, a transposed view, a strided slice or a
    view with negative strides."""
    if layout == "r":
        return rng.standard_normal((rows, cols), dtype=np.float32)[::-1, ::-1]
    if layout == "t":
        return rng.standard_normal((cols, rows), dtype=np.float32).T
    if layout == "s":
        return rng.standard_normal((rows * 2, cols * 3), dtype=np.float32)[::2, 1::3]
    return rng.standard_normal((rows, cols), dtype=np.float32)


def _close(c, ref, k):
    scale = max(1.0, float(np.abs(ref).max())) if ref.size else 1.0
    np.testing.assert_allclose(c, ref, rtol=1e-5, atol=2e-6 * scale * max(1, k) ** 0.5)


@pytest.mark.parametrize("isa", _gemm.KERNELS)   # the AVX2 one on AVX-512 CPUs too
@given(m=st.integers(0, 70), k=st.integers(0, 70), n=st.integers(0, 100),
       la=st.sampled_from("ntsr"), lb=st.sampled_from("ntsr"),
       alpha=st.sampled_from([1.0, -0.5]), beta=st.sampled_from([0.0, 1.0, 2.5]),
       threads=st.sampled_from([1, 2]), seed=st.integers(0, 2**16))
def test_sgemm_matches_numpy(isa, m, k, n, la, lb, alpha, beta, threads, seed):
    with _gemm.use_isa(isa):
        rng = np.random.default_rng(seed)
        a, b = _operand(rng, m, k, la), _operand(rng, k, n, lb)
        c0 = rng.standard_normal((m, n), dtype=np.float32)
        c = c0.copy()
        _ops.sgemm(a, b, c, alpha, beta, threads)
        ref = alpha * (a.astype(np.float64) @ b.astype(np.float64)) + beta * c0
        _close(c, ref, k)


@pytest.mark.parametrize("isa", _gemm.KERNELS)
@pytest.mark.parametrize("m,k,n", [(300, 600, 2100), (513, 257, 33), (7, 1000, 4500),
                                   (900, 40, 5), (64, 800, 1568), (64, 300, 4096)])
@pytest.mark.parametrize("la,lb", [("n", "n"), ("t", "t"), ("n", "t"), ("t", "n")])
def test_sgemm_across_blocks_and_threads(isa, m, k, n, la, lb):
    """Sizes past every block (MC=240 rows, KC=256 deep, NC=2048 columns), a narrow C that
    splits rows between threads, W3's convolution shape and a power-of-two row stride."""
    with _gemm.use_isa(isa):
        rng = np.random.default_rng(m + n)
        a, b = _operand(rng, m, k, la), _operand(rng, k, n, lb)
        ref = a.astype(np.float64) @ b.astype(np.float64)
        for threads in (1, 2):
            c = np.full((m, n), np.nan, np.float32)
            _ops.sgemm(a, b, c, 1.0, 0.0, threads)
            _close(c, ref, k)


@pytest.mark.parametrize("isa", _gemm.KERNELS)
def test_sgemm_nan_semantics(isa):
    """beta = 0 never reads C (garbage NaN stays out); NaN and inf in A propagate as in BLAS."""
    with _gemm.use_isa(isa):
        a = np.ones((9, 5), np.float32)
        b = np.ones((5, 33), np.float32)
        c = np.full((9, 33), np.nan, np.float32)
        _ops.sgemm(a, b, c)
        assert (c == 5).all()
        a[3, 2] = np.nan
        a[4, 1] = np.inf
        _ops.sgemm(a, b, c)
        assert np.isnan(c[3]).all() and np.isposinf(c[4]).all()
        assert (c[[0, 1, 2, 5, 6, 7, 8]] == 5).all()


@pytest.mark.parametrize("isa", _gemm.KERNELS)
def test_sgemm_k_zero_scales_c(isa):
    with _gemm.use_isa(isa):
        c = np.full((3, 4), 2.0, np.float32)
        _ops.sgemm(np.ones((3, 0), np.float32), np.ones((0, 4), np.float32), c, 1.0, 0.5)
        assert (c == 1.0).all()
        _ops.sgemm(np.ones((3, 0), np.float32), np.ones((0, 4), np.float32), c, 1.0, 0.0)
        assert (c == 0.0).all()


@needs_sgemm
def test_sgemm_checks_shapes():
    with pytest.raises(ValueError, match="sgemm"):
        _ops.sgemm(np.ones((3, 4), np.float32), np.ones((5, 6), np.float32),
                   np.ones((3, 6), np.float32))
    with pytest.raises(ValueError, match="sgemm"):   # C must have unit column stride
        _ops.sgemm(np.ones((3, 4), np.float32), np.ones((4, 6), np.float32),
                   np.ones((6, 3), np.float32).T)


@needs_sgemv
@given(m=st.integers(0, 80), k=st.integers(0, 80), layout=st.sampled_from("ntsr"),
       threads=st.sampled_from([1, 2, 3]), seed=st.integers(0, 2**16))
def test_sgemv_matches_numpy(m, k, layout, threads, seed):
    """Both loops (rows of the matrix contiguous, or its columns), every tail of the 16-lane
    vectors, the four-row and eight-row groups, and more threads than work."""
    rng = np.random.default_rng(seed)
    a = _operand(rng, m, k, layout)
    x = rng.standard_normal(k, dtype=np.float32)
    y = np.full(m, np.nan, np.float32)
    if 4 not in a.strides and m > 1 and k > 1:
        with pytest.raises(ValueError, match="unit stride"):
            _ops.sgemv(a, x, y, threads)
        return
    _ops.sgemv(a, x, y, threads)
    _close(y, a.astype(np.float64) @ x, k)


@needs_sgemv
@pytest.mark.parametrize("m,k", [(5000, 3001), (3001, 5000), (1, 9000), (9000, 1)])
@pytest.mark.parametrize("layout", ["n", "t"])
def test_sgemv_across_blocks_and_threads(m, k, layout):
    rng = np.random.default_rng(m + k)
    a = _operand(rng, m, k, layout)
    x = rng.standard_normal(k, dtype=np.float32)
    y = np.empty(m, np.float32)
    _ops.sgemv(a, x, y, 2)
    _close(y, a.astype(np.float64) @ x, k)


@needs_sgemv
@pytest.mark.parametrize("layout", ["n", "t"])
def test_sgemv_nan_semantics(layout):
    """inf and NaN reach exactly the results they should: no padding lane or zero weight
    multiplies them."""
    rng = np.random.default_rng(4)
    a = _operand(rng, 70, 37, layout)
    a[3, 36], a[9, 0], a[69, 20] = np.inf, np.nan, -np.inf
    x = rng.uniform(0.5, 1.0, 37).astype(np.float32)
    y = np.empty(70, np.float32)
    _ops.sgemv(a, x, y, 2)
    assert y[3] == np.inf and np.isnan(y[9]) and y[69] == -np.inf
    assert np.isfinite(np.delete(y, [3, 9, 69])).all()


@needs_sgemv
@pytest.mark.parametrize("case", ["matrix_vector", "matrix_column", "vector_matrix",
                                  "row_matrix", "transposed", "given_out"])
def test_large_matrix_vector_products_take_the_loops(case, monkeypatch):
    """_gemm.matmul sends a large matrix times a vector (however it is written) to
    _ops.sgemv, with NumPy's result shape."""
    monkeypatch.setattr(_gemm, "GEMV_PARALLEL", 1000)
    calls = []
    real = _ops.sgemv
    monkeypatch.setattr(_ops, "sgemv", lambda *a: calls.append(a[0].shape) or real(*a))
    rng = np.random.default_rng(5)
    m = rng.standard_normal((60, 50), dtype=np.float32)
    v = rng.standard_normal(50, dtype=np.float32)
    w = rng.standard_normal(60, dtype=np.float32)
    a, b = {"matrix_vector": (m, v), "matrix_column": (m, v[:, None]),
            "vector_matrix": (w, m), "row_matrix": (w[None], m),
            "transposed": (m.T, w), "given_out": (m, v)}[case]
    ref = a.astype(np.float64) @ b
    out = np.empty(ref.shape, np.float32) if case == "given_out" else None
    res = _gemm.matmul(a, b, out=out)
    assert res.shape == ref.shape and (out is None or res is out)
    _close(res, ref, 60)
    assert len(calls) == 1


@pytest.mark.parametrize("isa", _gemm.KERNELS)
@given(batch_a=st.sampled_from([(), (1,), (3,), (2, 1), (2, 3)]),
       batch_b=st.sampled_from([(), (1,), (3,), (4, 1, 3)]),
       m=st.integers(1, 40), k=st.integers(1, 40), n=st.integers(1, 70),
       ta=st.booleans(), tb=st.booleans(), threads=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_batched_matmul_matches_numpy(isa, batch_a, batch_b, m, k, n, ta, tb, threads, seed):
    """Stacks with broadcast batch dimensions (stride-0 views) and transposed matrices, each
    thread taking whole products or (more threads than products) all threads on each."""
    with _gemm.use_isa(isa):
        if not batch_a and not batch_b:
            batch_a = (2,)
        rng = np.random.default_rng(seed)

        def stack(batch, r, c, t):
            x = rng.standard_normal(batch + ((c, r) if t else (r, c)), dtype=np.float32)
            return np.swapaxes(x, -1, -2) if t else x
        a, b = stack(batch_a, m, k, ta), stack(batch_b, k, n, tb)
        ref = np.matmul(a.astype(np.float64), b.astype(np.float64))
        batch = ref.shape[:-2]
        nb = int(np.prod(batch))
        a3, b3 = _gemm._stack(a, batch, nb), _gemm._stack(b, batch, nb)
        if a3 is not None and b3 is not None:    # else a copy would be needed: NumPy's
            c = np.empty((nb, m, n), np.float32)
            _ops.sgemm_batched(a3, b3, c, threads)
            _close(c.reshape(ref.shape), ref, k)
        with pytest.MonkeyPatch.context() as mp, _gemm.use_isa(isa, owns=True):   # via matmul
            mp.setattr(_gemm, "MIN_WORK", 1)
            mp.setattr(_gemm, "PARALLEL_WORK", 0)
            mp.setattr(_gemm, "suits", lambda *a: True)
            c = _gemm.matmul(a, b)
        assert c.shape == ref.shape and c.dtype == np.float32
        _close(c, ref, k)


@needs_avx512
@pytest.mark.parametrize("m,k,n,route", [
    (512, 512, 512, "direct"), (64, 3136, 1024, "direct"), (256, 256, 256, "direct"),
    (50000, 784, 10, "transposed"),    # 10 of each tile's 32 columns: swap the roles
    (2048, 16, 64, "direct"),          # shallow, but one core of ours beats one of OpenBLAS
    (32, 32, 32, None),                # OpenBLAS runs this on one thread: no spinning
    (4096, 4096, 1, None), (1, 4096, 4096, None),   # matrix-vector products
    (100000, 4, 64, None),             # depth 4: the tile's store costs more than its sums
    (100000, 10, 10, None),            # shallow: the tile's stores dominate either way
    (100000, 16, 10, None),            # a transposed copy of the result costs more than it saves
    (128, 512, 10, "transposed"),      # W2's classifier: 10 of 32 columns, or 10 of 16 rows
    (256, 4096, 16, "transposed"),     # half the tile one way, all of it the other
    (512, 128, 784, "direct")])        # W2's first weight gradient: 98% full, not worth a copy
def test_products_go_where_the_kernel_wins(m, k, n, route):
    a = np.zeros((m, k), np.float32)
    b = np.zeros((k, n), np.float32)
    assert _gemm._route(a, b) == route


@needs_avx512
@pytest.mark.parametrize("given_out", [False, True])
def test_transposed_route_matches_numpy(given_out):
    """A tall product with few columns runs as (b.T @ a.T).T."""
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3000, 200), dtype=np.float32)
    b = rng.standard_normal((10, 200), dtype=np.float32).T
    assert _gemm._route(a, b) == "transposed"
    out = np.empty((3000, 10), np.float32) if given_out else None
    c = _gemm.matmul(a, b, out=out)
    assert c.flags.c_contiguous and (c is out or not given_out)
    _close(c, a.astype(np.float64) @ b, 200)


def test_batched_matmul_that_needs_a_copy_falls_back():
    """A stack whose batch axes cannot merge into one strided axis goes to NumPy."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 4, 40, 50), dtype=np.float32)[:, ::2].transpose(1, 0, 2, 3)
    b = rng.standard_normal((50, 60), dtype=np.float32)
    assert _gemm._stack(a, a.shape[:-2], 6) is None
    np.testing.assert_allclose(_gemm.matmul(a, b), np.matmul(a, b), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("case", ["float64", "vector", "tiny", "int"])
def test_matmul_falls_back_to_numpy(case):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((40, 50))
    b = rng.standard_normal((50, 60))
    if case == "float64":
        pass
    elif case == "vector":
        a, b = a.astype(np.float32), b[:, 0].astype(np.float32)
    elif case == "tiny":
        a, b = a[:3, :3].astype(np.float32), b[:3, :3].astype(np.float32)
    else:
        a, b = (a * 10).astype(np.int64), (b * 10).astype(np.int64)
    out = _gemm.matmul(a, b)
    np.testing.assert_array_equal(out, np.matmul(a, b))
    assert out.dtype == np.matmul(a, b).dtype


@pytest.mark.parametrize("out", ["fresh", "given", "overlapping", "column_major", "readonly"])
def test_matmul_out_argument(out, monkeypatch):
    """Every ``out`` works: the kernel writes the ones it can, NumPy takes the rest."""
    monkeypatch.setattr(_gemm, "MIN_WORK", 1)   # a product this small is NumPy's else
    rng = np.random.default_rng(1)
    buf = rng.standard_normal((64, 64), dtype=np.float32)
    a = buf[:, :48]
    b = rng.standard_normal((48, 40), dtype=np.float32)
    ref = a.astype(np.float64) @ b
    if out == "fresh":
        res = _gemm.matmul(a, b)
    elif out == "given":
        o = np.empty((64, 40), np.float32)
        res = _gemm.matmul(a, b, out=o)
        assert res is o
    elif out == "overlapping":          # out aliases a: NumPy copies first
        res = _gemm.matmul(a, b, out=buf[:, 24:])
    elif out == "column_major":
        res = _gemm.matmul(a, b, out=np.empty((40, 64), np.float32).T)
    else:
        o = np.empty((64, 40), np.float32)
        o.flags.writeable = False
        with pytest.raises(ValueError):
            _gemm.matmul(a, b, out=o)
        return
    _close(res, ref, 48)


@pytest.mark.parametrize("isa", _gemm.KERNELS)
def test_add_product_accumulates_or_declines(isa, monkeypatch):
    monkeypatch.setattr(_gemm, "MIN_WORK", 1)
    monkeypatch.setattr(_gemm, "PARALLEL_WORK", 1)
    with _gemm.use_isa(isa, owns=True):
        rng = np.random.default_rng(2)
        a = rng.standard_normal((50, 30), dtype=np.float32)
        b = rng.standard_normal((50, 70), dtype=np.float32)
        c = rng.standard_normal((30, 70), dtype=np.float32)
        ref = c.astype(np.float64) - 0.1 * (a.T.astype(np.float64) @ b)
        assert _gemm.add_product(c, a.T, b, -0.1)
        _close(c, ref, 50)
        assert not _gemm.add_product(c.astype(np.float64), a.T, b, 1.0)
        assert not _gemm.add_product(a[:30, :30], a.T[:, :30], a[:30, :30], 1.0)   # aliases


@needs_sgemm
@pytest.mark.parametrize("m,k,n,route", [
    (512, 512, 512, "direct"), (64, 3136, 1024, "direct"),   # threaded: the kernel
    (256, 256, 256, None), (128, 512, 128, None),            # one thread: OpenBLAS's
    (50000, 784, 10, "direct"),     # 10 of 16 columns; flipped, 10 of 12 rows: not worth it
    (4096, 4096, 1, None)])
def test_avx2_products_go_to_the_kernel_only_when_threaded(m, k, n, route):
    """On AVX2 one OpenBLAS thread beats one of the kernel's, so once tensorlib runs the
    threads (after a convolution) the kernel takes only the products worth both cores, with
    its 6 x 16 tile's occupancy."""
    with _gemm.use_isa("avx2", owns=True):
        assert _ops.sgemm_tile() == (6, 16) and (_gemm._MR, _gemm._NR) == (6, 16)
        assert _gemm._route(np.zeros((m, k), np.float32), np.zeros((k, n), np.float32)) == route
    assert (_gemm._MR, _gemm._NR) == _ops.sgemm_tile()


@needs_sgemm
def test_avx2_products_stay_with_openblas_until_a_convolution_claims_the_threads(monkeypatch):
    import tensorlib.nn.functional as F
    calls = []
    real = _ops.sgemm
    monkeypatch.setattr(_ops, "sgemm", lambda *a: calls.append(a[0].shape) or real(*a))
    a = np.ones((512, 512), np.float32)
    before = _gemm.OWNS
    with _gemm.use_isa("avx2"):
        assert not _gemm.OWNS
        assert (_gemm.matmul(a, a) == 512).all() and calls == []
        x = tl.tensor(np.ones((8, 8, 16, 16), np.float32))
        F.conv2d(x, tl.tensor(np.ones((16, 8, 3, 3), np.float32)), padding=1)
        assert _gemm.OWNS                 # the per-image kernels ran and claimed the threads
        assert (_gemm.matmul(a, a) == 512).all() and calls == [(512, 512)]
    assert _gemm.OWNS == before


@needs_sgemm
def test_use_isa_checks_and_restores():
    before = (_gemm.ISA, _gemm.ENABLED, _ops.sgemm_tile())
    with pytest.raises(ValueError, match="'avx512' or 'avx2'"):
        with _gemm.use_isa("sse"):
            pass
    if _ops.SGEMM_ISA != "avx512":
        with pytest.raises(RuntimeError, match="cannot run the avx512 kernel"):
            with _gemm.use_isa("avx512"):
                pass
    with pytest.raises(KeyError):
        with _gemm.use_isa("avx2"):
            assert _gemm.ISA == "avx2" and _gemm.ENABLED
            raise KeyError("restored all the same")
    assert (_gemm.ISA, _gemm.ENABLED, _ops.sgemm_tile()) == before


def test_sgemm_can_be_switched_off():
    code = "import tensorlib._gemm as g; print(g.ENABLED)"
    env = dict(os.environ, TENSORLIB_SGEMM="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(_blas._threads is None, reason="NumPy's BLAS is not OpenBLAS")
def test_openblas_runs_on_one_thread_for_what_tensorlib_leaves_it(monkeypatch):
    """Products tensorlib leaves to NumPy (a matrix-vector product here) run on one OpenBLAS
    thread when they are large enough for OpenBLAS to thread, so that its spinning workers
    do not slow the next OpenMP kernel; its thread count is restored afterwards."""
    get = _blas._threads[0]
    before = get()
    seen = []
    real = np.matmul

    def spy(*args, **kwargs):
        seen.append(get())
        return real(*args, **kwargs)
    monkeypatch.setattr(np, "matmul", spy)
    big = _gemm.matmul(np.ones((4096, 64), np.float32), np.ones((64, 1), np.float32))
    small = _gemm.matmul(np.ones((8, 8), np.float32), np.ones((8, 8), np.float32))
    assert (big == 64).all() and (small == 8).all()
    assert seen == ([1] if _gemm.OWNS else [before]) + [before]
    assert get() == before
    with _blas.one_thread():
        assert get() == 1
    assert get() == before


@pytest.mark.skipif(_blas._threads is None, reason="NumPy's BLAS is not OpenBLAS")
def test_one_thread_blocks_overlapping_in_python_threads_restore_the_count():
    """Blocks that overlap (nested, or in several Python threads) keep OpenBLAS on one thread
    while any is open and leave its count as it was once the last one closes, whatever
    order they close in."""
    import threading
    get = _blas._threads[0]
    before = get()
    other_in, main_done = threading.Event(), threading.Event()
    inside = []

    def other():
        with _blas.one_thread():
            other_in.set()
            main_done.wait(10)          # closes after the main thread's block has closed
            inside.append(get())

    t = threading.Thread(target=other)
    with _blas.one_thread():
        t.start()
        other_in.wait(10)
        with _blas.one_thread():
            assert get() == 1
    main_done.set()
    t.join(10)
    assert inside == [1]                # still one thread after the main block closed
    assert get() == before


def test_set_num_threads_controls_the_kernels():
    """tl.set_num_threads sets the threads of tensorlib's CPU kernels (the per-image
    convolutions and the GEMM follow it) and results do not depend on it."""
    import tensorlib as tl
    import tensorlib.nn.functional as F
    from tensorlib.ops import nn_conv
    before = tl.get_num_threads()
    rng = np.random.default_rng(5)
    a = tl.tensor(rng.standard_normal((512, 512)).astype(np.float32))
    x = tl.tensor(rng.standard_normal((8, 8, 12, 12)).astype(np.float32))
    w = tl.tensor(rng.standard_normal((16, 8, 3, 3)).astype(np.float32))
    try:
        results = []
        for n in (1, 2):
            tl.set_num_threads(n)
            assert tl.get_num_threads() == n
            if _gemm.ENABLED:   # a large float32 convolution takes as many threads
                assert nn_conv._image_threads(np.float32, 64, 1, 64, 196, 800) == n
            results.append(((a @ a).numpy(), F.conv2d(x, w, padding=1).numpy()))
        for r1, r2 in zip(*results):
            np.testing.assert_allclose(r1, r2, rtol=1e-5, atol=1e-4)
        with pytest.raises(ValueError, match="at least 1"):
            tl.set_num_threads(0)
        with pytest.raises(TypeError, match="integer"):
            tl.set_num_threads(1.5)
        with pytest.raises(TypeError, match="integer"):
            tl.set_num_threads(True)
    finally:
        tl.set_num_threads(before)
    assert tl.get_num_threads() == before


def test_float16_products_are_float32_products_rounded_once():
    # NumPy's float16 matmul has no BLAS (8x slower than PyTorch): tensorlib computes the
    # product in float32, as PyTorch's CPU matmul accumulates it, and rounds it once
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 40, 33)).astype(np.float16)
    b = rng.standard_normal((33, 17)).astype(np.float16)
    want = np.matmul(a.astype(np.float32), b.astype(np.float32)).astype(np.float16)
    got = _gemm.matmul(a, b)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, want)
    out = np.empty((3, 40, 17), np.float16)
    assert _gemm.matmul(a, b, out=out) is out
    np.testing.assert_array_equal(out, want)
    x = tl.tensor(a[0], requires_grad=True)
    (x @ tl.tensor(b)).sum().backward()
    assert x.grad.dtype == tl.float16


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sa,sb", [((256, 64, 1), (256, 1, 64)), ((64, 1), (3, 1, 5)),
                                   ((2, 3, 4, 1), (3, 1, 7)), ((5, 1), (1, 6)), ((1, 1), (1, 1)),
                                   ((3, 0, 1), (1, 4))])
def test_inner_dimension_one_is_broadcast_products_with_matmuls_values(sa, sb, dtype):
    # outer products (vmap(hessian), MAML) take the broadcast multiply: the same values
    r = np.random.default_rng(0)
    a, b = r.standard_normal(sa).astype(dtype), r.standard_normal(sb).astype(dtype)
    want = np.matmul(a, b)
    np.testing.assert_array_equal(_gemm.matmul(a, b), want)
    out = np.empty(want.shape, dtype)
    assert _gemm.matmul(a, b, out=out) is out
    np.testing.assert_array_equal(out, want)
    with pytest.raises(ValueError):             # batch dims that do not broadcast, as NumPy
        _gemm.matmul(np.ones((2, 3, 4, 1), dtype), np.ones((4, 1, 7), dtype))
