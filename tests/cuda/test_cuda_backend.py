"""The CUDA backend: device plumbing everywhere; every registry case on a GPU.

Without a GPU the GPU tests skip with a reason and the CPU-side checks (clean
errors, zero memory statistics, the registry audit) still run.
"""
from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import tensorlib as tl
from cases import draw_inputs, load_all

CUDA = tl.cuda.is_available()
gpu = pytest.mark.skipif(not CUDA, reason="no CUDA GPU (tl.cuda.is_available() is False)")
DEVICES = ["cpu", pytest.param("cuda", marks=[gpu, pytest.mark.gpu])]

CASES = load_all()
BY_ID = {c.id: c for c in CASES}


def _import_all_ops():
    import tensorlib.ops as ops
    for m in pkgutil.iter_modules(ops.__path__):
        importlib.import_module(f"tensorlib.ops.{m.name}")
    for mod in ("tensorlib.nn", "tensorlib.nn.functional", "tensorlib.optim"):
        try:
            importlib.import_module(mod)
        except ImportError:
            pass


# --- everywhere ------------------------------------------------------------------------------
def test_every_op_has_a_cuda_kernel():
    _import_all_ops()
    tl.cuda.install_kernels()
    missing = tl.cuda.missing_cuda_kernels()
    assert not missing, f"registered ops without a CUDA kernel: {missing}"


def test_bound_kernels_are_installed():
    _import_all_ops()
    tl.cuda.install_kernels()
    from tensorlib.cuda.bindings import BINDINGS
    for name, k in BINDINGS.items():
        if name in tl.REGISTRY:
            assert tl.REGISTRY[name].kernels.get("cuda") is k, name


def test_device_parsing():
    d = tl.device("cuda:1")
    assert (d.type, d.index, str(d)) == ("cuda", 1, "cuda:1")
    assert tl.device("cuda") is tl.device("cuda:0")


@pytest.mark.skipif(CUDA, reason="checks the behaviour without a GPU")
def test_without_gpu_queries_answer_cleanly():
    assert tl.cuda.is_available() is False
    assert tl.cuda.device_count() == 0
    assert tl.cuda.memory_allocated() == 0
    assert tl.cuda.max_memory_allocated() == 0
    assert tl.cuda.memory_stats()["reserved_bytes"] == 0
    tl.cuda.reset_peak_memory_stats()
    tl.cuda.empty_cache()


def test_bf16_is_never_reported_supported():
    # (no bfloat16 dtype anywhere: nanoGPT-style code must take its float16/float32 path)
    assert tl.cuda.is_bf16_supported() is False
    assert tl.cuda.is_bf16_supported(including_emulation=False) is False


@pytest.mark.skipif(CUDA, reason="checks the behaviour without a GPU")
def test_without_gpu_cuda_use_raises_a_clear_error():
    x = tl.ones(3)
    for call in (lambda: x.to("cuda"), lambda: x.cuda(), lambda: tl.zeros(2, device="cuda"),
                 lambda: tl.tensor([1.0], device="cuda:0"), tl.cuda.synchronize,
                 lambda: tl.cuda.pin_memory(x)):
        # (.to goes through the to_device op, whose error wrapper makes it a ValueError)
        with pytest.raises((RuntimeError, ValueError), match="no CUDA GPU|CuPy is not"):
            call()


@pytest.mark.parametrize("make_opt", [
    lambda o, ps: o.SGD(ps, lr=0.1, momentum=0.9),
    lambda o, ps: o.Adam(ps, lr=1e-2, weight_decay=0.1),
    lambda o, ps: o.AdamW(ps, lr=1e-2)], ids=["sgd", "adam", "adamw"])
def test_optimizers_route_cuda_parameters_to_the_cuda_kernels(make_opt, monkeypatch):
    """Runs anywhere: a parameter that says it is on cuda goes to tensorlib.cuda.optim
    (a CPU array stands in for the device array; the stand-in kernels record the call)."""
    from tensorlib.cuda import optim as cuda_optim
    optim = pytest.importorskip("tensorlib.optim")
    calls = []
    monkeypatch.setattr(cuda_optim, "sgd", lambda p, g, buf, lr, *a: calls.append(
        ("sgd", p, g, lr)) or True)
    monkeypatch.setattr(cuda_optim, "adam", lambda p, g, m, v, step, lr, *a: calls.append(
        ("adam", p, g, lr, step)) or True)
    cuda0 = tl.device("cuda:0")

    def on_cuda(t):
        t._device = cuda0
        return t
    from tensorlib import creation   # Adam's state buffers: CPU stand-ins too
    monkeypatch.setattr(creation, "zeros_like",
                        lambda t: on_cuda(tl.zeros(tuple(t.shape), dtype=t.dtype)))
    p = on_cuda(tl.ones(3, requires_grad=True))
    p.grad = on_cuda(tl.full((3,), 2.0))
    opt = make_opt(optim, [p])
    opt.step()
    opt.step()
    assert [c[1] for c in calls] == [p, p] and calls[0][2] is p.grad
    assert calls[-1][0] == ("sgd" if isinstance(opt, optim.SGD) else "adam")
    if calls[-1][0] == "adam":
        assert [c[4] for c in calls] == [1, 2]    # eager steps reach the kernel as ints
    np.testing.assert_array_equal(p.numpy(), 1.0)   # only the (stand-in) kernel may update


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_sum_in_two_passes_equals_one_sum(data):
    # the CUDA sum binding's plan, run with NumPy: same values as one sum, any axes it takes
    from tensorlib.cuda.bindings import sum_in_two_passes
    shape = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=5), label="shape")
    nd = len(shape)
    axes = data.draw(st.one_of(st.none(), st.integers(-nd, nd - 1),
                               st.sets(st.integers(0, nd - 1), min_size=1).map(tuple)),
                     label="axis")
    keep = data.draw(st.booleans(), label="keepdims")
    dtype = data.draw(st.sampled_from([np.float32, np.float64]), label="dtype")
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    got = sum_in_two_passes(np, x, axes, keep)
    want = x.sum(axis=axes, keepdims=keep)
    ax = set(range(nd)) if axes is None else {a % nd for a in np.atleast_1d(axes)}
    if got is None:    # declined: the last axis is kept, or the axes are one trailing run
        assert nd - 1 not in ax or ax == set(range(min(ax), nd))
        return
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_layer_norm_bindings_glue_with_stand_in_kernels(data, monkeypatch):
    """Runs anywhere: the CUDA bindings of layer_norm / layer_norm_grad (reshapes, argument
    order, which arrays reach the kernel) on NumPy arrays, with stand-ins that keep the
    contract of tensorlib.cuda.kernels: rows are the trailing ``n_last`` dims, statistics
    come one per row. test_kernel_layer_norm checks the real kernels against that contract."""
    from tensorlib.cuda import bindings, kernels
    fwd, bwd = BY_ID["layer_norm"], BY_ID["layer_norm_grad"]

    def stat_shape(x, n_last):
        return x.shape[:x.ndim - n_last] + (1,) * n_last

    def layer_norm(x, w, b, eps, n_last=1):
        wb = [a for a in (w, b) if a is not None]
        affine = ("w" if w is not None else "") + ("b" if b is not None else "")
        y, mean, rstd = fwd.ref(x, *wb, eps=eps, ndim=n_last, affine=affine)
        return y, mean.reshape(-1), rstd.reshape(-1)

    def layer_norm_backward_input(x, g, w, mean, rstd, n_last=1, gmean=None, grstd=None):
        stat = stat_shape(x, n_last)
        gm, gr = (np.zeros(stat) if v is None else v.reshape(stat) for v in (gmean, grstd))
        return bwd.ref(x, mean.reshape(stat), rstd.reshape(stat), g, gm, gr,
                       *([] if w is None else [w]), ndim=n_last)[0]
    with monkeypatch.context() as mp:   # undone after each example, not after the test
        mp.setattr(kernels, "layer_norm", layer_norm)
        mp.setattr(kernels, "layer_norm_backward_input", layer_norm_backward_input)
        for case, bound in ((fwd, bindings._layer_norm), (bwd, bindings._layer_norm_grad)):
            arrays, params = draw_inputs(case, data.draw)
            got, want = bound(*arrays, **params), case.ref(*arrays, **params)
            assert len(got) == len(want) == 3
            for g, w in zip(got, want):
                assert g.shape == w.shape and g.dtype == w.dtype
                np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


class _HostArray:
    """A NumPy array dressed as a CuPy one for :func:`tensorlib.cuda.kernels.add_product`:
    ``data.ptr`` is its host address, which the cuBLAS stand-in below reads."""

    def __init__(self, v):
        self.dtype, self.ndim, self.shape, self.flags = v.dtype, v.ndim, v.shape, v.flags
        self.data = type("Ptr", (), {"ptr": v.ctypes.data})()


def _col_major(ptr, rows, cols, ld, dtype):
    """The column-major (rows, cols) matrix with leading dimension ``ld`` at host ``ptr``."""
    import ctypes
    size = np.dtype(dtype).itemsize
    n = ld * (cols - 1) + rows
    flat = np.frombuffer((ctypes.c_char * (n * size)).from_address(ptr), dtype, n)
    return np.lib.stride_tricks.as_strided(flat, (rows, cols), (size, ld * size))


class _CublasModel:
    """cuBLAS's gemm as its documentation defines it (column-major, op N = 0, T = 1)."""
    CUBLAS_POINTER_MODE_HOST = 0

    def setPointerMode(self, handle, mode):
        assert mode == 0

    def _gemm(self, dtype, h, ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
        assert lda >= (m if ta == 0 else k) and ldb >= (k if tb == 0 else n) and ldc >= m
        a = _col_major(A, *((m, k) if ta == 0 else (k, m)), lda, dtype)
        b = _col_major(B, *((k, n) if tb == 0 else (n, k)), ldb, dtype)
        c = _col_major(C, m, n, ldc, dtype)
        al, be = (_col_major(p, 1, 1, 1, dtype)[0, 0] for p in (alpha, beta))
        c[...] = al * ((a if ta == 0 else a.T) @ (b if tb == 0 else b.T)) + be * c

    def sgemm(self, *args):
        self._gemm(np.float32, *args)

    def dgemm(self, *args):
        self._gemm(np.float64, *args)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mkn", [(1, 1, 1), (3, 4, 5), (6, 1, 2), (1, 7, 1), (5, 0, 3)])
def test_add_product_passes_cublas_the_right_layouts(monkeypatch, dtype, mkn):
    """Without a GPU: the operands, leading dimensions and sizes that add_product gives
    cuBLAS, run through a model of cuBLAS's column-major GEMM on host memory, add a @ b
    into c for every memory order of a and b."""
    from tensorlib.cuda import kernels as K
    monkeypatch.setattr(K, "_CUBLAS", [_CublasModel(), lambda: 0])
    m, k, n = mkn
    rng = np.random.default_rng(4)
    for fa in (False, True):
        for fb in (False, True):
            a = rng.standard_normal((m, k)).astype(dtype)
            b = rng.standard_normal((k, n)).astype(dtype)
            c = rng.standard_normal((m, n)).astype(dtype)
            want = c + a @ b
            av = np.asfortranarray(a) if fa else a
            bv = np.asfortranarray(b) if fb else b
            assert K.add_product(_HostArray(c), _HostArray(av), _HostArray(bv))
            np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-5)
    if m > 1 and k > 1:     # every other column: neither C- nor F-contiguous
        strided = np.zeros((m, 2 * k), dtype)[:, ::2]
        assert not K.add_product(_HostArray(np.zeros((m, n), dtype)), _HostArray(strided),
                                 _HostArray(b))


# --- on a GPU ----------------------------------------------------------------------------------
def _cmp(got, want, rtol, atol, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if want.dtype.kind in "fc":
        assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
        wide = np.complex128 if want.dtype.kind == "c" else np.float64
        np.testing.assert_allclose(got.astype(wide), want.astype(wide), rtol=rtol,
                                   atol=atol, equal_nan=True, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _run(case, arrays, params, device, dtype):
    """Forward, then one backward with a fixed random cotangent per float or complex output.

    Returns (outputs, gradients of the differentiable inputs) as NumPy arrays.
    """
    diff = case.diff if case.diff is not None else tuple(
        k for k, a in enumerate(arrays) if np.asarray(a).dtype.kind == "f")
    ts = []
    for i, a in enumerate(arrays):
        a = np.asarray(a)
        if a.dtype.kind == "f":
            a = a.astype(dtype)
        t = tl.tensor(a, device=device)
        if case.grad and i in diff and a.dtype.kind == "f":
            t.requires_grad_(True)
        ts.append(t)
    tl.manual_seed(0)
    outs = _as_tuple(case.fn(*ts, **params))
    moves = tl.REGISTRY[case.op].out_device is not None   # a transfer op's case picks its own
    for o in outs if not moves else ():
        assert o.device == tl.device(device), f"{case.id}: output on {o.device}, not {device}"
    grads = None
    fouts = [o for o in outs if o.requires_grad]
    if fouts:
        rng = np.random.default_rng(1)   # the same cotangents on both devices
        loss = None
        for o in fouts:
            w = rng.standard_normal(o.shape)
            if o.is_complex():   # a real loss of a complex output: Re(sum(o * w))
                w = w + 1j * rng.standard_normal(o.shape)
            term = (o * tl.tensor(w.astype(o.dtype), device=o.device)).sum()
            if o.is_complex():
                term = term.real
            loss = term if loss is None else loss + term
        loss.backward()
        grads = [t.grad for t in ts if t.requires_grad]
    return [o.numpy() for o in outs], None if grads is None else [
        None if g is None else g.numpy() for g in grads]


# The device the registry cases are compared on against the CPU. A dry run of this
# harness without a GPU can point it at a second CPU device (scripts/gpu_check.sh does not).
CASE_DEVICE = "cuda"


def check_case_matches_cpu(cid: str, dtype, draw, device: str = CASE_DEVICE) -> None:
    """One case, one input draw: outputs and input gradients on ``device`` vs the CPU."""
    case = BY_ID[cid]
    arrays, params = draw_inputs(case, draw)
    want, want_g = _run(case, arrays, params, "cpu", dtype)
    got, got_g = _run(case, arrays, params, device, dtype)
    tol = 1e-9 if dtype == np.float64 else 2e-4
    rtol, atol = max(tol, case.rtol), max(tol, case.atol)
    assert len(got) == len(want), f"{cid}: {len(got)} outputs on {device}, {len(want)} on cpu"
    for i, (g, w) in enumerate(zip(got, want)):
        _cmp(g, w, rtol, atol, f"{cid} output {i}")
    assert (got_g is None) == (want_g is None), f"{cid}: gradients on one device only"
    for i, (g, w) in enumerate(zip(got_g or [], want_g or [])):
        assert (g is None) == (w is None), f"{cid}: grad {i} missing on one device"
        if g is not None:
            _cmp(g, w, rtol * 10, atol * 10, f"{cid} grad {i}")


# One derandomized example per case and dtype, no shrinking: 2 x every case must fit the
# few minutes of a GPU run (the CPU registry tests do the thorough gradchecks).
ONE_EXAMPLE = settings(max_examples=1, derandomize=True, deadline=None, database=None,
                       phases=[Phase.generate],
                       suppress_health_check=list(HealthCheck))


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("cid", sorted(BY_ID))
@ONE_EXAMPLE
@given(data=st.data())
def test_case_on_cuda_matches_cpu(cid, dtype, data):
    check_case_matches_cpu(cid, dtype, data.draw)


@gpu
@pytest.mark.gpu
def test_to_round_trip_and_gradient_flows_back():
    x = tl.randn(3, 4, requires_grad=True)
    y = x.to("cuda")
    assert y.device == tl.device("cuda:0") and y.requires_grad
    z = (y * y).sum()
    z.backward()
    assert x.grad.device == tl.device("cpu")
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy(), rtol=1e-6)
    back = y.cpu()
    np.testing.assert_array_equal(back.numpy(), x.detach().numpy())
    with pytest.raises(RuntimeError, match="one device"):
        x + y


@gpu
@pytest.mark.gpu
def test_creation_on_cuda():
    for t in (tl.zeros(2, 3, device="cuda"), tl.ones(2, device="cuda"),
              tl.randn(4, device="cuda"), tl.arange(5, device="cuda"),
              tl.tensor([1.0, 2.0], device="cuda:0")):
        assert t.device == tl.device("cuda:0")
        assert type(t._data).__module__.startswith("cupy")


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("op", ["add", "mul", "exp", "tanh", "sigmoid", "relu", "matmul",
                                "sum"])
def test_float16_on_cuda(op):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((16, 16)).astype(np.float16)
    b = rng.standard_normal((16, 16)).astype(np.float16)
    fns = {"add": lambda x, y: x + y, "mul": lambda x, y: x * y, "exp": lambda x, y: x.exp(),
           "tanh": lambda x, y: x.tanh(), "sigmoid": lambda x, y: tl.sigmoid(x),
           "relu": lambda x, y: tl.relu(x), "matmul": lambda x, y: x @ y,
           "sum": lambda x, y: x.sum(axis=1)}
    f = fns[op]
    got = f(tl.tensor(a, device="cuda"), tl.tensor(b, device="cuda"))
    assert got.dtype == np.float16
    want = f(tl.tensor(a.astype(np.float32)), tl.tensor(b.astype(np.float32)))
    np.testing.assert_allclose(got.numpy().astype(np.float32), want.numpy(), rtol=2e-2,
                               atol=2e-2)


@gpu
@pytest.mark.gpu
def test_memory_statistics():
    tl.cuda.synchronize()
    tl.cuda.reset_peak_memory_stats()
    base = tl.cuda.memory_allocated()
    x = tl.zeros(1 << 20, device="cuda")   # 4 MiB
    assert tl.cuda.memory_allocated() >= base + 4 * 2**20
    peak = tl.cuda.max_memory_allocated()
    assert peak >= base + 4 * 2**20
    del x
    assert tl.cuda.memory_allocated() <= base + 1024
    assert tl.cuda.max_memory_allocated() == peak
    assert tl.cuda.memory_reserved() >= peak - 1024
    tl.cuda.reset_peak_memory_stats()
    assert tl.cuda.max_memory_allocated() < peak
    tl.cuda.empty_cache()
    props = tl.cuda.get_device_properties(0)
    assert props["total_memory"] > 0 and props["name"]
    assert tl.cuda.device_count() >= 1 and tl.cuda.current_device() == 0


@gpu
@pytest.mark.gpu
def test_pin_memory():
    x = tl.randn(64, 32)
    p = tl.cuda.pin_memory(x)
    from tensorlib.cuda._runtime import is_pinned
    assert is_pinned(p) and not is_pinned(x)
    np.testing.assert_array_equal(p.numpy(), x.numpy())
    np.testing.assert_array_equal(p.to("cuda").cpu().numpy(), x.numpy())


OPTIMIZERS = {   # the CUDA-fused SGD/Adam steps (tensorlib/cuda/optim.py) against the CPU
    "sgd_momentum": lambda o, ps: o.SGD(ps, lr=0.1, momentum=0.9),
    "sgd_nesterov_wd": lambda o, ps: o.SGD(ps, lr=0.1, momentum=0.9, nesterov=True,
                                           weight_decay=0.01),
    "sgd_plain_dampening": lambda o, ps: o.SGD(ps, lr=0.1, momentum=0.5, dampening=0.3),
    "sgd_no_momentum": lambda o, ps: o.SGD(ps, lr=0.1),
    "adam": lambda o, ps: o.Adam(ps, lr=1e-2),
    "adam_wd": lambda o, ps: o.Adam(ps, lr=1e-2, weight_decay=0.1),
    "adamw": lambda o, ps: o.AdamW(ps, lr=1e-2, weight_decay=0.1),
}


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("make_opt", list(OPTIMIZERS.values()), ids=list(OPTIMIZERS))
def test_module_and_optimizer_on_cuda(make_opt, monkeypatch):
    nn = pytest.importorskip("tensorlib.nn")
    optim = pytest.importorskip("tensorlib.optim")
    from tensorlib.cuda import kernels
    launches = []   # the fused CUDA update must do the step, not the tensor-op fallback
    for name in ("sgd_update_", "adam_update_"):
        real = getattr(kernels, name)
        monkeypatch.setattr(kernels, name, lambda *a, _f=real, _n=name, **k: (
            launches.append(_n), _f(*a, **k))[1])
    tl.manual_seed(0)
    m_cpu = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    m_gpu = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    m_gpu.load_state_dict(m_cpu.state_dict())
    m_gpu.to("cuda")
    assert all(p.device == tl.device("cuda:0") for p in m_gpu.parameters())
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    for m, dev in ((m_cpu, "cpu"), (m_gpu, "cuda")):
        opt = make_opt(optim, m.parameters())
        for _ in range(3):
            opt.zero_grad()
            loss = (m(tl.tensor(x, device=dev)) ** 2).mean()
            loss.backward()
            opt.step()
    for a, b in zip(m_cpu.parameters(), m_gpu.parameters()):
        assert b.device == tl.device("cuda:0")
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5)
    assert len(launches) == 3 * 4, launches     # 3 steps x 4 parameters, one kernel each


@gpu
@pytest.mark.gpu
def test_dataloader_to_cuda():
    data = pytest.importorskip("tensorlib.data")
    xs = np.arange(40, dtype=np.float32).reshape(10, 4)
    ds = data.TensorDataset(tl.tensor(xs), tl.arange(10))
    for pin in (False, True):
        batches = list(data.DataLoader(ds, batch_size=4, device="cuda", pin_memory=pin))
        assert batches[0][0].device == tl.device("cuda:0")
        np.testing.assert_array_equal(batches[0][0].numpy(), xs[:4])
        np.testing.assert_array_equal(batches[2][1].numpy(), [8, 9])
    pinned = next(iter(data.DataLoader(ds, batch_size=4, pin_memory=True)))
    assert pinned[0].device == tl.device("cpu")
    np.testing.assert_array_equal(pinned[0].numpy(), xs[:4])


# --- tensorlib/cuda kernels against NumPy references ----------------------------------------------
def _np_softmax(x, axis, log=False):
    m = x.max(axis=axis, keepdims=True)
    s = x - m
    lse = np.log(np.exp(s).sum(axis=axis, keepdims=True))
    return s - lse if log else np.exp(s - lse)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((7, 33), -1), ((3, 1000), 1), ((4, 5, 6), 1),
                                        ((2, 3, 700), -1), ((5,), 0)])
@pytest.mark.parametrize("log", [False, True])
def test_kernel_softmax(dtype, shape, axis, log):
    import cupy as cp

    from tensorlib.cuda import kernels as K
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    tol = {np.float16: 2e-2, np.float32: 1e-5, np.float64: 1e-12}[dtype]
    y = K.softmax(cp.asarray(x), axis, log=log)
    assert y.dtype == dtype
    want = _np_softmax(x.astype(np.float64), axis, log)
    np.testing.assert_allclose(y.get().astype(np.float64), want, rtol=tol, atol=tol)
    g = rng.standard_normal(shape).astype(dtype)
    gx = K.softmax_backward(y, cp.asarray(g), axis, log=log).get().astype(np.float64)
    g64, y64 = g.astype(np.float64), want
    ref = (g64 - np.exp(y64) * g64.sum(axis, keepdims=True) if log
           else y64 * (g64 - (g64 * y64).sum(axis, keepdims=True)))
    np.testing.assert_allclose(gx, ref, rtol=tol * 10, atol=tol * 10)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_cross_entropy(dtype):
    import cupy as cp

    from tensorlib.cuda import kernels as K
    rng = np.random.default_rng(0)
    x = rng.standard_normal((37, 10)).astype(dtype)
    t = rng.integers(0, 10, 37)
    t[3] = -100
    loss, lse = K.cross_entropy(cp.asarray(x), cp.asarray(t), -100)
    logp = _np_softmax(x.astype(np.float64), 1, log=True)
    want = -logp[np.arange(37), np.where(t < 0, 0, t)] * (t >= 0)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss.get(), want, rtol=tol, atol=tol)
    gl = rng.standard_normal(37).astype(dtype)
    gx = K.cross_entropy_backward(cp.asarray(x), cp.asarray(t), lse, cp.asarray(gl), -100).get()
    onehot = np.eye(10)[np.where(t < 0, 0, t)]
    ref = (np.exp(logp) - onehot) * (gl * (t >= 0))[:, None]
    np.testing.assert_allclose(gx, ref, rtol=tol * 10, atol=tol * 10)
    # the reduced forms, one block over 1000+ rows (more than a block's threads)
    x = rng.standard_normal((1100, 10)).astype(dtype)
    t = rng.integers(0, 10, 1100)
    t[::7] = -100
    logp = _np_softmax(x.astype(np.float64), 1, log=True)
    rows = -logp[np.arange(1100), np.where(t < 0, 0, t)] * (t >= 0)
    for reduction, want in (("sum", rows.sum()), ("mean", rows.sum() / (t >= 0).sum())):
        got = K.cross_entropy_reduced(cp.asarray(x), cp.asarray(t), -100, reduction)
        assert got.shape == () and got.dtype == dtype
        np.testing.assert_allclose(got.get(), want, rtol=tol, atol=tol)
    allign = cp.full(4, -100)
    assert np.isnan(K.cross_entropy_reduced(cp.asarray(x[:4]), allign, -100, "mean").get())
    assert K.cross_entropy_reduced(cp.asarray(x[:4]), allign, -100, "sum").get() == 0


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("act", ["none", "relu", "tanh", "sigmoid", "gelu_tanh", "gelu"])
def test_kernel_bias_act(act):
    import math

    import cupy as cp

    from tensorlib.cuda import kernels as K
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 5, 6))
    b = rng.standard_normal(3)
    v = x + b.reshape(1, 3, 1, 1)
    erf = np.vectorize(math.erf)
    fs = {"none": lambda v: v, "relu": lambda v: np.maximum(v, 0), "tanh": np.tanh,
          "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
          "gelu_tanh": lambda v: 0.5 * v * (1 + np.tanh(0.7978845608028654
                                                        * (v + 0.044715 * v**3))),
          "gelu": lambda v: 0.5 * v * (1 + erf(v / math.sqrt(2)))}
    y = K.bias_act(cp.asarray(x), cp.asarray(b), act, channel_axis=1).get()
    np.testing.assert_allclose(y, fs[act](v), rtol=1e-12, atol=1e-12)
    # derivative by central differences of the reference
    g = rng.standard_normal(v.shape)
    h = 1e-6
    d = (fs[act](v + h) - fs[act](v - h)) / (2 * h)
    at = v if act in ("none", "gelu_tanh", "gelu") else fs[act](v)
    gx = K.act_backward(cp.asarray(g), cp.asarray(at), act).get()
    np.testing.assert_allclose(gx, g * d, rtol=1e-5, atol=1e-6)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("geo", [((3, 3), (1, 1), (1, 1, 1, 1), (1, 1)),
                                 ((5, 5), (2, 2), (2, 2, 2, 2), (1, 1)),
                                 ((2, 3), (2, 1), (0, 1, 1, 0), (2, 1)),
                                 ((3, 2), (2, 3), (2, 0, 0, 3), (2, 2))])
@pytest.mark.parametrize("index", ["int", "long long"])
def test_kernel_im2col_col2im(geo, index, monkeypatch):
    import cupy as cp

    from tensorlib.cuda import kernels as K
    from tensorlib.ops import nn_conv
    if index == "long long":    # the path for arrays of 2**31 elements or more
        monkeypatch.setattr(K, "_conv_index", lambda *sizes: ("long long", np.int64))
    (kh, kw), stride, pad, dil = geo
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 8))
    Ho = nn_conv.out_size(9, kh, stride[0], pad[0], pad[1], dil[0])
    Wo = nn_conv.out_size(8, kw, stride[1], pad[2], pad[3], dil[1])
    want = nn_conv._im2col_xp(np, x, kh, kw, stride, pad, dil, Ho, Wo)
    got = K.im2col(cp.asarray(x), kh, kw, stride, pad, dil, Ho, Wo).get()
    np.testing.assert_array_equal(got, want)
    cols = rng.standard_normal(want.shape)
    want_x = nn_conv._col2im_xp(np, cols, x.shape, kh, kw, stride, pad, dil, Ho, Wo)
    got_x = K.col2im(cp.asarray(cols), x.shape, kh, kw, stride, pad, dil, Ho, Wo).get()
    np.testing.assert_allclose(got_x, want_x, rtol=1e-12, atol=1e-12)


@gpu
@pytest.mark.gpu
def test_kernel_maxpool():
    import cupy as cp

    from tensorlib.cuda import kernels as K
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 7))
    y, arg = K.maxpool2d(cp.asarray(x), (2, 2), (2, 2), (1, 1))
    xp_ = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    OH, OW = y.shape[2:]
    want = np.empty((2, 3, OH, OW))
    for i in range(OH):
        for j in range(OW):
            want[:, :, i, j] = xp_[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].max(axis=(2, 3))
    np.testing.assert_array_equal(y.get(), want)
    flat = x.reshape(2, 3, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, arg.get().reshape(2, 3, -1), 2),
                                  want.reshape(2, 3, -1))
    g = rng.standard_normal(y.shape)
    gx = K.maxpool2d_backward(cp.asarray(g), arg, x.shape).get().reshape(2, 3, -1)
    ref = np.zeros_like(flat)
    for n in range(2):
        for c in range(3):
            np.add.at(ref[n, c], arg.get()[n, c].ravel(), g[n, c].ravel())
    np.testing.assert_allclose(gx, ref, rtol=1e-12)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("affine", [True, False])
def test_kernel_layer_norm(affine):
    import cupy as cp

    from tensorlib.cuda import kernels as K
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 50)) * 2 + 1
    w = rng.standard_normal(50) if affine else None
    b = rng.standard_normal(50) if affine else None
    y, mean, rstd = K.layer_norm(cp.asarray(x), None if w is None else cp.asarray(w),
                                 None if b is None else cp.asarray(b), 1e-5)
    xhat = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    want = xhat * (w if affine else 1) + (b if affine else 0)
    np.testing.assert_allclose(y.get(), want, rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(x.shape)
    gx = K.layer_norm_backward_input(cp.asarray(x), cp.asarray(g),
                                     None if w is None else cp.asarray(w), mean, rstd).get()
    gw_ = g * (w if affine else 1)
    r = 1 / np.sqrt(x.var(1, keepdims=True) + 1e-5)
    ref = r * (gw_ - gw_.mean(1, keepdims=True) - xhat * (gw_ * xhat).mean(1, keepdims=True))
    np.testing.assert_allclose(gx, ref, rtol=1e-9, atol=1e-9)
    # the statistics are outputs too: their gradients add (gmean - grstd rstd^2 xhat) / D
    gm, gr = rng.standard_normal(6), rng.standard_normal(6)
    gx2 = K.layer_norm_backward_input(cp.asarray(x), cp.asarray(g),
                                      None if w is None else cp.asarray(w), mean, rstd,
                                      gmean=cp.asarray(gm), grstd=cp.asarray(gr)).get()
    ref2 = ref + (gm[:, None] - gr[:, None] * r ** 2 * xhat) / x.shape[1]
    np.testing.assert_allclose(gx2, ref2, rtol=1e-9, atol=1e-9)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_embedding_forward(dtype):
    import cupy as cp

    from tensorlib.cuda import kernels as K
    rng = np.random.default_rng(0)
    w = rng.standard_normal((7, 3)).astype(dtype)
    idx = rng.integers(0, 7, (5, 4))
    got = K.embedding_forward(cp.asarray(w), cp.asarray(idx)).get()
    assert got.shape == (5, 4, 3) and got.dtype == dtype
    np.testing.assert_array_equal(got, w[idx])
    got = K.embedding_forward(cp.asarray(w)[:, ::2], cp.asarray(np.array([-1, 7, 6]))).get()
    assert np.isnan(got[:2]).all()
    np.testing.assert_array_equal(got[2], w[6, ::2])


@gpu
@pytest.mark.gpu
def test_kernel_embedding_backward():
    import cupy as cp

    from tensorlib.cuda import kernels as K
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 7, (5, 4))
    g = rng.standard_normal((5, 4, 3))
    gw = K.embedding_backward(cp.asarray(idx), cp.asarray(g), 7, padding_idx=2).get()
    ref = np.zeros((7, 3))
    np.add.at(ref, idx.ravel(), g.reshape(-1, 3))
    ref[2] = 0
    np.testing.assert_allclose(gw, ref, rtol=1e-12, atol=1e-12)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_read_index_columns_in_place(dtype):
    """Strided int64 index vectors (a column ``y[:, t]``, a reversed one) give the results
    of their contiguous copies; int32 ones are converted."""
    import cupy as cp

    from tensorlib.cuda import kernels as K
    rng = np.random.default_rng(1)
    C, N = 10, 37
    idx_m = rng.integers(0, C, (N, 6))
    idx_m[3, 2] = -100
    x = cp.asarray(rng.standard_normal((N, C)).astype(dtype))
    w = cp.asarray(rng.standard_normal((C, 4)).astype(dtype))
    g = cp.asarray(rng.standard_normal((N, 4)).astype(dtype))
    dev = cp.asarray(idx_m)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for col in (dev[:, 2], dev[::-1, 2], dev[:, 2].astype(np.int32)):
        ref = cp.ascontiguousarray(col, dtype=np.int64)
        assert col.dtype != np.int64 or not col.flags.c_contiguous
        emb = cp.clip(col, 0, C - 1)
        np.testing.assert_array_equal(K.embedding_forward(w, emb).get(),
                                      K.embedding_forward(w, cp.ascontiguousarray(emb)).get())
        np.testing.assert_allclose(K.embedding_backward(emb, g, C).get(),
                                   K.embedding_backward(cp.ascontiguousarray(emb), g, C).get(),
                                   rtol=tol, atol=tol)
        loss, lse = K.cross_entropy(x, col, -100)
        want_loss, want_lse = K.cross_entropy(x, ref, -100)
        np.testing.assert_array_equal(loss.get(), want_loss.get())
        for red in ("mean", "sum"):
            np.testing.assert_allclose(K.cross_entropy_reduced(x, col, -100, red).get(),
                                       K.cross_entropy_reduced(x, ref, -100, red).get(),
                                       rtol=tol, atol=tol)
        gl = cp.asarray(rng.standard_normal(N).astype(dtype))
        np.testing.assert_allclose(K.cross_entropy_backward(x, col, lse, gl, -100).get(),
                                   K.cross_entropy_backward(x, ref, want_lse, gl, -100).get(),
                                   rtol=tol, atol=tol)
        for red, up in (("mean", cp.asarray(dtype(0.7))), ("sum", cp.asarray(dtype(0.7))),
                        ("none", gl)):
            np.testing.assert_allclose(K.cross_entropy_grad(x, col, up, -100, red).get(),
                                       K.cross_entropy_grad(x, ref, up, -100, red).get(),
                                       rtol=tol, atol=tol)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("rows", [1, 5, 4096, 4097])
def test_kernel_cross_entropy_grad_mean_counts_the_rows_kept(rows):
    """'mean' divides by the rows not ignored: counted inside the kernel up to 4096 rows, by
    a reduction beyond; both against NumPy."""
    import cupy as cp

    from tensorlib.cuda import kernels as K
    rng = np.random.default_rng(2)
    x = rng.standard_normal((rows, 7))
    t = rng.integers(0, 7, rows)
    t[::3] = -100
    g = 1.5
    got = K.cross_entropy_grad(cp.asarray(x), cp.asarray(t), cp.asarray(g), -100, "mean").get()
    p = np.exp(x - x.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    keep = t != -100
    want = (p - np.eye(7)[np.where(keep, t, 0)]) * (keep * g / max(keep.sum(), 1))[:, None]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(0, 5), (1, 1), (37, 33), (4096, 3), (4097, 70), (8, 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_sums_and_bias_add(shape, dtype):
    """``x.sum(0)`` of a matrix, a linear layer's bias and its gradient on the GPU's
    column-sum and in-place bias kernels, against NumPy (and CuPy's reduction past 4096
    rows)."""
    import cupy as cp

    from tensorlib.cuda import kernels as K
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    t = tl.tensor(x, device="cuda")
    np.testing.assert_allclose(t.sum(0).cpu().numpy(), x.sum(0), rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(t.sum(0, keepdim=True).cpu().numpy(), x.sum(0, keepdims=True),
                               rtol=tol, atol=tol * 10)
    if shape[0] <= 4096:
        np.testing.assert_allclose(K.col_sum(cp.asarray(x)).get(), x.sum(0), rtol=tol,
                                   atol=tol * 10)
    b = rng.standard_normal(shape[1]).astype(dtype)
    y = cp.asarray(x)
    K.add_bias_(y, cp.asarray(b))
    np.testing.assert_array_equal(y.get(), x + b)
    w = rng.standard_normal((shape[1], 4)).T.astype(dtype)     # (4, in), not contiguous
    bias = rng.standard_normal(4).astype(dtype)
    for dev in ("cpu", "cuda"):
        xt = tl.tensor(x, device=dev, requires_grad=True)
        wt = tl.tensor(w, device=dev, requires_grad=True)
        bt = tl.tensor(bias, device=dev, requires_grad=True)
        out = tl.nn.functional.linear(xt, wt, bt)
        (out * out).sum().backward()
        if dev == "cpu":
            want = [out.numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()]
        else:
            for got, ref in zip((out, xt.grad, wt.grad, bt.grad), want):
                np.testing.assert_allclose(got.cpu().numpy(), ref, rtol=tol * 10,
                                           atol=tol * 100)


@gpu
@pytest.mark.gpu
def test_kernel_lstm_cell():
    import cupy as cp

    from tensorlib.cuda import kernels as K
    rng = np.random.default_rng(0)
    B, H = 3, 5
    gates = rng.standard_normal((B, 4 * H))
    c0 = rng.standard_normal((B, H))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731

    def ref(gates, c0):
        i, f, gg, o = np.split(gates, 4, axis=1)
        c = sig(f) * c0 + sig(i) * np.tanh(gg)
        return sig(o) * np.tanh(c), c
    h, c, acts = K.lstm_cell(cp.asarray(gates), cp.asarray(c0))
    hr, cr = ref(gates, c0)
    np.testing.assert_allclose(h.get(), hr, rtol=1e-12)
    np.testing.assert_allclose(c.get(), cr, rtol=1e-12)
    dh, dc = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    dg, dc0 = K.lstm_cell_backward(cp.asarray(dh), cp.asarray(dc), acts, cp.asarray(c0), c)
    eps = 1e-6

    def L(gates, c0):
        h, c = ref(gates, c0)
        return (h * dh).sum() + (c * dc).sum()
    num = np.zeros_like(gates)
    for k in np.ndindex(gates.shape):
        e = np.zeros_like(gates)
        e[k] = eps
        num[k] = (L(gates + e, c0) - L(gates - e, c0)) / (2 * eps)
    np.testing.assert_allclose(dg.get(), num, rtol=1e-5, atol=1e-7)
    numc = np.zeros_like(c0)
    for k in np.ndindex(c0.shape):
        e = np.zeros_like(c0)
        e[k] = eps
        numc[k] = (L(gates, c0 + e) - L(gates, c0 - e)) / (2 * eps)
    np.testing.assert_allclose(dc0.get(), numc, rtol=1e-5, atol=1e-7)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_lstm_cell_adds_its_addends_in_the_kernel(dtype):
    """F.lstm_cell's op form (x W_ih^T, c, h W_hh^T, b_ih, b_hh) on the kernel: equal to
    the CPU (which adds in the same order), the biases' gradients too; an addend order the
    kernel does not take goes to the generic code with the same result."""
    from tensorlib.ops import nn_rnn
    from tensorlib._apply import apply
    rng = np.random.default_rng(5)
    B, H = 4, 6
    arrays = [rng.standard_normal(s).astype(dtype) for s in
              [(B, 4 * H), (B, H), (B, 4 * H), (4 * H,), (4 * H,)]]
    tol = {np.float16: 1e-2, np.float32: 1e-6, np.float64: 1e-13}[dtype]
    for order in ((0, 1, 2, 3, 4), (0, 1, 3, 2, 4), (0, 1, 3)):
        res = {}
        for dev in ("cpu", "cuda"):
            ts = [tl.tensor(arrays[k], device=dev, requires_grad=True) for k in order]
            h, c, _ = apply(nn_rnn.LSTM_CELL, *ts)
            (h * 2 + c).sum().backward()
            res[dev] = [h.numpy(), c.numpy()] + [t.grad.numpy() for t in ts]
        for got, want in zip(res["cuda"], res["cpu"]):
            np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                       rtol=tol, atol=tol)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("nesterov", [False, True])
def test_kernel_sgd_and_adam(nesterov):
    import cupy as cp

    from tensorlib.cuda import kernels as K
    rng = np.random.default_rng(0)
    p = rng.standard_normal(100).astype(np.float32)
    gs = [rng.standard_normal(100).astype(np.float32) for _ in range(3)]
    pd, buf = cp.asarray(p), cp.zeros(100, np.float32)
    pr, br = p.copy(), None
    for k, g in enumerate(gs):
        K.sgd_update_(pd, cp.asarray(g), buf, 0.1, 0.9, 0.0, 0.01, nesterov, k == 0)
        d = g + 0.01 * pr
        br = d.copy() if br is None else 0.9 * br + d
        pr = pr - 0.1 * (d + 0.9 * br if nesterov else br)
    np.testing.assert_allclose(pd.get(), pr, rtol=1e-5, atol=1e-6)
    pd, m, v = cp.asarray(p), cp.zeros(100, np.float32), cp.zeros(100, np.float32)
    pr, mr, vr = p.astype(np.float64), np.zeros(100), np.zeros(100)
    for k, g in enumerate(gs, 1):
        K.adam_update_(pd, cp.asarray(g), m, v, k, 1e-2, weight_decay=0.1, decoupled=nesterov)
        gg = g.astype(np.float64)
        if nesterov:
            pr = pr - 1e-2 * 0.1 * pr
        else:
            gg = gg + 0.1 * pr
        mr = 0.9 * mr + 0.1 * gg
        vr = 0.999 * vr + 0.001 * gg * gg
        pr = pr - 1e-2 * (mr / (1 - 0.9**k)) / (np.sqrt(vr / (1 - 0.999**k)) + 1e-8)
    np.testing.assert_allclose(pd.get(), pr, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="contiguous"):
        K.sgd_update_(cp.zeros((4, 4), np.float32)[:, ::2], cp.zeros((4, 2), np.float32), None,
                      0.1)


# --- fused / vectorised kernels added for per-step overheads (issue 7, G1) ----------------------
@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 1023, 4099])
@pytest.mark.parametrize("op", ["add", "sub", "mul"])
def test_kernel_binary_vec(op, n, dtype):
    import cupy as cp

    from tensorlib.cuda import kernels as K
    rng = np.random.default_rng(n)
    a, b = rng.standard_normal(n).astype(dtype), rng.standard_normal(n).astype(dtype)
    ca, cb = cp.asarray(a), cp.asarray(b)
    assert K.binary_ok(ca, cb)
    ref = {"add": np.add, "sub": np.subtract, "mul": np.multiply}[op](a, b)
    np.testing.assert_array_equal(K.binary(ca, cb, op).get(), ref)
    if n > 4:   # a view 4 bytes off alignment is not taken; the binding falls back to CuPy
        assert not K.binary_ok(ca[1:], cb[1:])
        ta, tb = tl.tensor(a[1:], device="cuda"), tl.tensor(b[1:], device="cuda")
        got = {"add": ta + tb, "sub": ta - tb, "mul": ta * tb}[op]
        np.testing.assert_array_equal(got.numpy(), ref[1:])


@gpu
@pytest.mark.gpu
def test_bound_elementwise_kernels_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 40)) * 30   # large |x|: the logistic must not overflow
    g = rng.standard_normal((6, 40))
    g[0, :5] = np.nan
    for dtype in (np.float32, np.float64):
        xd, gd = x.astype(dtype), g.astype(dtype)
        tx, tg = tl.tensor(xd, device="cuda"), tl.tensor(gd, device="cuda")
        s = tl.sigmoid(tx).numpy()
        np.testing.assert_allclose(s, tl.sigmoid(tl.tensor(xd)).numpy(), rtol=1e-6, atol=1e-30)
        s_nc = tl.sigmoid(tx[:, 3:17]).numpy()   # a strided view
        np.testing.assert_allclose(s_nc, s[:, 3:17], rtol=1e-6)
        from tensorlib.ops.registry import REGISTRY as R
        y = np.tanh(xd / 30)
        for name, ref in (("tanh_grad", gd * (1 - y * y)), ("sigmoid_grad", gd * y * (1 - y))):
            out = tl._apply.apply(R[name], tg, tl.tensor(y, device="cuda")).numpy()
            np.testing.assert_allclose(out, ref, rtol=1e-6, equal_nan=True)
        if "relu_grad" in R:   # NaN upstream where x <= 0 gives 0, as where() does
            out = tl._apply.apply(R["relu_grad"], tg, tx).numpy()
            np.testing.assert_array_equal(out, np.where(xd <= 0, 0, gd))


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_backward_kernel_matches_cpu(reduction):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((9, 7)).astype(np.float32)
    t = rng.integers(0, 7, 9)
    t[2] = -100
    grads = []
    for dev in ("cpu", "cuda"):
        xt = tl.tensor(x, device=dev, requires_grad=True)
        loss = tl.nn.functional.cross_entropy(xt, tl.tensor(t, device=dev), reduction=reduction)
        (loss.sum() if reduction == "none" else loss).backward()
        grads.append(xt.grad.numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-5, atol=1e-6)


@gpu
@pytest.mark.gpu
def test_out_of_range_indices_on_cuda_poison_instead_of_syncing():
    F = tl.nn.functional
    x = tl.randn(4, 5, device="cuda", requires_grad=True)
    bad = tl.tensor([0, 7, 1, 2], device="cuda")
    loss = F.cross_entropy(x, bad)
    assert np.isnan(loss.item())
    loss.backward()
    if "cross_entropy_grad" in tl.REGISTRY:   # the fused backward poisons the bad row too
        assert np.isnan(x.grad.numpy()[1]).all()
    assert np.isfinite(x.grad.numpy()[[0, 2, 3]]).all()
    assert np.isnan(F.cross_entropy(x.detach(), bad, reduction="none").numpy()[1])
    assert np.isnan(F.cross_entropy(x.detach(), bad, label_smoothing=0.1).item())
    assert np.isnan(F.nll_loss(x.detach(), bad).item())
    w = tl.randn(5, 3, device="cuda")
    e = F.embedding(tl.tensor([[1, 9]], device="cuda"), w).numpy()
    assert np.isfinite(e[0, 0]).all() and np.isnan(e[0, 1]).all()
    out = tl.index_add(tl.zeros(3, 2, device="cuda"), tl.tensor([0, 5], device="cuda"),
                       tl.ones(2, 2, device="cuda"))
    assert np.isnan(out.numpy()).all()
    with pytest.raises(IndexError, match="out of range"):   # the CPU still raises
        F.cross_entropy(x.detach().cpu(), bad.cpu())
    p = tl.tensor([0.2, 1.5], device="cuda")              # not a probability
    assert np.isnan(F.binary_cross_entropy(p, tl.ones(2, device="cuda")).item())
    ok = F.binary_cross_entropy(tl.tensor([0.2, 0.5], device="cuda"), tl.ones(2, device="cuda"))
    np.testing.assert_allclose(ok.item(), -(np.log(0.2) + np.log(0.5)) / 2, rtol=1e-6)


@gpu
@pytest.mark.gpu
def test_captured_index_checks_on_cuda_poison_instead_of_syncing():
    # a replayed graph checks class targets and embedding indices as eager code does on a GPU:
    # on the device (NaN), never by reading them on the host at every call
    import warnings

    import cupyx
    F = tl.nn.functional
    w = tl.randn(5, 3, device="cuda")

    @tl.function
    def f(x, t, idx):
        return F.cross_entropy(x, t), F.embedding(idx, w)
    x = tl.randn(4, 5, device="cuda")
    good, bad = tl.tensor([0, 4, 1, 2], device="cuda"), tl.tensor([0, 7, 1, 2], device="cuda")
    idx_good, idx_bad = tl.tensor([[1, 2]], device="cuda"), tl.tensor([[1, 9]], device="cuda")
    f(x, good, idx_good)
    tl.cuda.synchronize()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with cupyx.allow_synchronize(False):
            loss, e = f(x, bad, idx_bad)
    assert f.trace_count == 1
    assert np.isnan(loss.item())
    e = e.numpy()
    assert np.isfinite(e[0, 0]).all() and np.isnan(e[0, 1]).all()
    loss, e = f(x, good, idx_good)
    assert np.isfinite(loss.item()) and np.isfinite(e.numpy()).all()


@gpu
@pytest.mark.gpu
def test_loaded_graphs_and_onnx_imports_run_on_cuda(tmp_path):
    pytest.importorskip("onnx")
    tl.manual_seed(0)
    m = tl.nn.Sequential(tl.nn.Linear(4, 8), tl.nn.ReLU(), tl.nn.Linear(8, 3))
    x = tl.randn(5, 4)
    f = tl.function(lambda a: tl.nn.functional.softmax(m(a), -1))
    want = f(x).numpy()
    tl.save_graph(f, tmp_path / "m.tlg")
    gm = tl.load_graph(tmp_path / "m.tlg", device="cuda")
    assert all(t.device.type == "cuda" for t in gm.parameters())
    np.testing.assert_allclose(gm(x).numpy(), want, rtol=1e-4, atol=1e-6)
    tl.onnx.export(m, (x,), tmp_path / "m.onnx")
    om = tl.onnx.load(tmp_path / "m.onnx", device="cuda")
    assert all(t.device.type == "cuda" for t in om.parameters())
    with tl.no_grad():
        np.testing.assert_allclose(om(x).numpy(), m(x).numpy(), rtol=1e-4, atol=1e-5)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-10), ("float32", 2e-5)])
def test_captured_lstm_training_step_on_cuda_equals_eager(dtype, rtol):
    # the W4 shape of step with every rewrite of the optimize pipeline (re-derived backward,
    # batched losses, projected tables, one scatter-add), run by the executor on cuda
    import os as _os
    import sys as _sys
    # test_graph_rederive lives in tests/graph/
    _sys.path.insert(0, _os.path.join(_os.path.dirname(_os.path.abspath(__file__)), "..",
                                      "graph"))
    from test_graph_rederive import _run_both
    f = _run_both(dtype=dtype, rtol=rtol, device="cuda")
    g = f.graphs[-1]
    assert g._rederive_why is None and g.op_counts()["cross_entropy"] == 1
    assert "sgd_gemm" not in g.op_counts()     # the BLAS-fused update is CPU-only


@gpu
@pytest.mark.gpu
def test_captured_mlp_and_convnet_steps_on_cuda_equal_eager():
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from workloads_nn import tl_convnet, tl_mlp
    for make in (lambda: tl_mlp(16, "cuda"), lambda: tl_convnet(4, "cuda")):
        eager, captured = make(), make()
        f = tl.function(captured)
        for _ in range(3):
            np.testing.assert_allclose(f().numpy(), eager().numpy(), rtol=1e-4, atol=1e-5)
        assert f.trace_count == 1
        updates = [a.attrs.get("update") for a in f.graphs[-1].assigns
                   if a.attrs.get("slot") == "data"]
        assert updates and set(updates) == {"sgd"}, updates   # one SGD kernel per parameter


@gpu
@pytest.mark.gpu
def test_a_0d_cpu_tensor_acts_as_a_scalar_beside_cuda_tensors():
    # PyTorch's rule (a distribution's float parameters, `x.cuda() / torch.tensor(2.0)`)
    x = tl.tensor([1.0, 2.0], device="cuda", requires_grad=True)
    s = tl.tensor(2.0, requires_grad=True)
    y = x / s
    assert y.device == tl.device("cuda")
    y.sum().backward()
    assert x.grad.device == tl.device("cuda") and s.grad.device == tl.device("cpu")
    np.testing.assert_allclose(x.grad.numpy(), [0.5, 0.5])
    np.testing.assert_allclose(s.grad.numpy(), -3.0 / 4.0)
    with pytest.raises(RuntimeError, match="expected all tensors on one device"):
        x + tl.tensor([1.0, 2.0])


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scatter_extreme_kernel_is_exact_lets_nan_win_and_skips_bad_targets(dtype):
    # CuPy's float64 maximum.at was not exact (an H200, CuPy 14.2): ties went missing
    import cupy as cp
    from tensorlib.cuda.kernels import scatter_extreme_
    r = np.random.default_rng(0)
    lin = r.integers(0, 50, 4000)
    v = r.standard_normal(4000).astype(dtype)
    v[::97] = np.nan
    for mx in (True, False):
        ref = np.full(50, -np.inf if mx else np.inf, dtype)
        with np.errstate(invalid="ignore"):      # NaN meeting NaN
            (np.maximum if mx else np.minimum).at(ref, lin, v)
        out = cp.full(50, -np.inf if mx else np.inf, dtype)
        scatter_extreme_(out, cp.asarray(lin), cp.asarray(v), mx)
        np.testing.assert_array_equal(out.get(), ref)
    out = cp.zeros(3, dtype)
    scatter_extreme_(out, cp.asarray([0, 5, -1]), cp.asarray([1.0, 9.0, 9.0], dtype), True)
    assert out.get().tolist() == [1.0, 0.0, 0.0]


# --- this session's composites (F.pad, interpolate, unfold/fold, utilities, distributions) ----
def _composite_cases():
    """(name, fn(tensors) -> tensor or tuple, input arrays): each is run on the CPU and on a
    device and must agree; gradients of the float inputs are compared too."""
    import tensorlib.nn.functional as F
    from tensorlib import distributions as D
    r = np.random.default_rng(0)
    x4 = r.standard_normal((2, 3, 6, 5))
    return [
        ("pad-reflect", lambda x: F.pad(x, (1, 2, 2, 1), mode="reflect"), [x4]),
        ("pad-circular", lambda x: F.pad(x, (1, 1), mode="circular"), [x4]),
        ("interpolate-bilinear", lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear",
                                                         align_corners=True), [x4]),
        ("interpolate-nearest", lambda x: F.interpolate(x, size=(4, 7)), [x4]),
        ("pixel_shuffle", lambda x: F.pixel_shuffle(x, 2), [r.standard_normal((2, 8, 3, 3))]),
        ("unfold", lambda x: F.unfold(x, (3, 2), padding=1, stride=2), [x4]),
        ("fold", lambda c: F.fold(c, (6, 5), 2), [r.standard_normal((2, 12, 20))]),
        ("instance_norm", lambda x: F.instance_norm(x), [x4]),
        ("quantile", lambda x: tl.quantile(x, [0.2, 0.5], axis=2), [x4]),
        ("diag-trace", lambda m: tl.diag(m, 1).sum() + tl.trace(m), [r.standard_normal((4, 4))]),
        ("repeat_interleave", lambda x: tl.repeat_interleave(x, [1, 0, 2], axis=1), [x4]),
        ("glu-hardswish", lambda x: F.hardswish(F.glu(x, 2)), [x4]),
        ("normal-log_prob-kl", lambda m, s: D.Normal(m, s.exp()).log_prob(m * 0.5).sum()
         + D.kl_divergence(D.Normal(m, s.exp()), D.Normal(0.0, 1.0)).sum(),
         [r.standard_normal(5), r.standard_normal(5)]),
        ("categorical-entropy", lambda z: D.Categorical(logits=z).entropy(),
         [r.standard_normal((3, 4))]),
        ("unique", lambda i: tl.unique(i, return_counts=True), [r.integers(0, 4, 12)]),
    ]


def check_composites_on(device: str) -> None:
    for name, fn, arrays in _composite_cases():
        outs = []
        grads = []
        for dev in ("cpu", device):
            ts = [tl.tensor(a, device=dev, requires_grad=a.dtype.kind == "f") for a in arrays]
            out = fn(*ts)
            out = out if isinstance(out, tuple) else (out,)
            outs.append([o.numpy() for o in out])
            fl = [o for o in out if o.dtype.kind == "f"]
            if fl:
                sum((o * o).sum() for o in fl).backward()
            grads.append([t.grad.numpy() if t.grad is not None else None for t in ts])
        for a, b in zip(*outs):
            np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9, err_msg=name)
        for a, b in zip(*grads):
            if a is not None:
                np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9, err_msg=name)


def test_composite_harness_runs_on_the_cpu():
    # the harness of the GPU test below, cpu against cpu: every case and its gradients run
    check_composites_on("cpu")


@gpu
@pytest.mark.gpu
def test_composites_on_cuda_match_cpu():
    check_composites_on("cuda")


# --- the backward pass's running sums on a GPU (tensorlib.ops.accumulate) ---------------------
@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mkn", [(1, 1, 1), (32, 64, 1024), (1024, 32, 256), (7, 0, 5),
                                 (33, 17, 1)])
def test_add_product_is_one_gemm_into_c(dtype, mkn):
    """``c += a @ b`` by cuBLAS with beta = 1 for every memory order of a and b (a
    transposed view is read in place), against NumPy; other layouts are refused."""
    import cupy as cp

    from tensorlib.cuda import kernels as K
    m, k, n = mkn
    rng = np.random.default_rng(5)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    for fa in (False, True):
        for fb in (False, True):
            a = rng.standard_normal((m, k)).astype(dtype)
            b = rng.standard_normal((k, n)).astype(dtype)
            c = rng.standard_normal((m, n)).astype(dtype)
            ga = cp.asarray(a.T.copy()).T if fa else cp.asarray(a)    # F- or C-contiguous
            gb = cp.asarray(b.T.copy()).T if fb else cp.asarray(b)
            gc = cp.asarray(c)
            assert K.add_product(gc, ga, gb)
            np.testing.assert_allclose(gc.get(), c + a @ b, rtol=tol, atol=tol * max(k, 1))
    strided = cp.asarray(rng.standard_normal((m, 2 * max(k, 1))).astype(dtype))[:, ::2][:, :k]
    if m > 1 and k > 1:
        assert not K.add_product(cp.zeros((m, n), dtype), strided, cp.asarray(b))
    assert not K.add_product(cp.zeros((m, n), np.float16), cp.asarray(a).astype(np.float16),
                             cp.asarray(b).astype(np.float16))


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_sums_added_into_one_or_two_arrays(dtype):
    import cupy as cp

    from tensorlib.cuda import kernels as K
    rng = np.random.default_rng(6)
    x = rng.standard_normal((37, 70)).astype(dtype)
    s1, s2 = (rng.standard_normal(70).astype(dtype) for _ in range(2))
    g1, g2 = cp.asarray(s1), cp.asarray(s2)
    assert K.col_sum(cp.asarray(x), g1) is g1
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(g1.get(), s1 + x.sum(0), rtol=tol, atol=tol)
    K.col_sum(cp.asarray(x), g1, g2)
    np.testing.assert_allclose(g1.get(), s1 + 2 * x.sum(0), rtol=tol, atol=tol)
    np.testing.assert_allclose(g2.get(), s2 + x.sum(0), rtol=tol, atol=tol)
    g3 = cp.asarray(s1)
    K.col_sum(cp.asarray(x), g3, g3)     # one bias passed twice: both contributions
    np.testing.assert_allclose(g3.get(), s1 + 2 * x.sum(0), rtol=tol, atol=tol)


@gpu
@pytest.mark.gpu
def test_embedding_backward_added_into_a_running_sum():
    import cupy as cp

    from tensorlib.cuda import kernels as K
    rng = np.random.default_rng(7)
    idx = rng.integers(0, 9, (6, 4))
    g = rng.standard_normal((6, 4, 5))
    base = rng.standard_normal((9, 5))
    out = cp.asarray(base)
    assert K.embedding_backward(cp.asarray(idx), cp.asarray(g), 9, 2, out=out) is out
    want = base.copy()
    for i, row in zip(idx.reshape(-1), g.reshape(-1, 5)):
        if i != 2:
            want[i] += row
    np.testing.assert_allclose(out.get(), want, rtol=1e-12, atol=1e-12)


@gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_recurrent_step_gradients_through_running_sums_match_cpu(dtype):
    """A char-RNN step (W4's ops: embedding, lstm_cell, linear, cross_entropy, every weight
    used at each step) on cuda, whose backward adds into running sums, against the CPU."""
    F = tl.nn.functional
    rng = np.random.default_rng(8)
    V, E, H, T, N = 11, 6, 8, 7, 5
    shapes = [(V, E), (4 * H, E), (4 * H, H), (4 * H,), (4 * H,), (V, H), (V,)]
    base = [rng.standard_normal(s).astype(dtype) * 0.3 for s in shapes]
    xs, ys = rng.integers(0, V, (N, T)), rng.integers(0, V, (N, T))
    grads = {}
    for dev in ("cpu", "cuda"):
        ps = [tl.tensor(b, device=dev, requires_grad=True) for b in base]
        x, y = tl.tensor(xs, device=dev), tl.tensor(ys, device=dev)
        h = c = tl.zeros(N, H, device=dev, dtype=ps[0].dtype)
        loss = 0
        for t in range(T):
            h, c = F.lstm_cell(F.embedding(x[:, t], ps[0]), (h, c), *ps[1:5])
            loss = loss + F.cross_entropy(F.linear(h, ps[5], ps[6]), y[:, t])
        loss.backward()
        grads[dev] = [p.grad.numpy() for p in ps]
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for a, b in zip(grads["cuda"], grads["cpu"]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
