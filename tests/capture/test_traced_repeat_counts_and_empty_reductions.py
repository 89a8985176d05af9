"""Detection trial 23 fixes. (1) ``repeat``/``tile``/``repeat_interleave(n)``/``linspace`` with a
count read from a None dim follow it: eager == captured graph at other sizes == tl.load_graph'ed
file == ONNX in onnxruntime == the ONNX re-imported by tensorlib, and PyTorch, values and
gradients. (5) empty max/min/amax/argmax raise a class that catches as PyTorch's, and
cross_entropy refuses ignore_index with a probability target, as PyTorch."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F
from tensorlib.errors import EmptyReductionError

torch = pytest.importorskip("torch")

SET = settings(max_examples=25, deadline=None)
A = np.arange(1.0, 7.0).reshape(2, 3)

# name -> (tensorlib fn, torch fn) of x with both dims dynamic
CASES = {
    "repeat_batch": (lambda x: x.sum(1, keepdim=True)
                     + tl.tensor(A[:1, :2]).repeat(x.shape[0], 1),
                     lambda x: x.sum(1, keepdim=True)
                     + torch.tensor(A[:1, :2]).repeat(x.shape[0], 1)),
    "repeat_expr": (lambda x: tl.tensor(A).repeat(2, x.shape[1] // 2 + 1, x.shape[0]),
                    lambda x: torch.tensor(A).repeat(2, x.shape[1] // 2 + 1, x.shape[0])),
    "repeat_own_dims": (lambda x: x.repeat(x.shape[1], 2),
                        lambda x: x.repeat(x.shape[1], 2)),
    "tile": (lambda x: tl.tile(tl.tensor(A[0]), (x.shape[0], 1)),
             lambda x: torch.tile(torch.tensor(A[0]), (x.shape[0], 1))),
    "tile_dims_kw": (lambda x: tl.tensor(A).tile(dims=(x.shape[0] * x.shape[1],)),
                     lambda x: torch.tensor(A).tile(dims=(x.shape[0] * x.shape[1],))),
    "repeat_interleave": (
        lambda x: tl.tensor(A).repeat_interleave(x.shape[0], dim=0),
        lambda x: torch.tensor(A).repeat_interleave(x.shape[0], dim=0)),
    "repeat_interleave_own": (lambda x: x.repeat_interleave(x.shape[0] + 1, dim=1),
                              lambda x: x.repeat_interleave(x.shape[0] + 1, dim=1)),
    "repeat_interleave_flat": (lambda x: tl.tensor(A).repeat_interleave(x.shape[1]),
                               lambda x: torch.tensor(A).repeat_interleave(x.shape[1])),
    "linspace": (lambda x: tl.linspace(-1.5, 2.0, x.shape[1], dtype=tl.float64),
                 lambda x: torch.linspace(-1.5, 2.0, x.shape[1], dtype=torch.float64)),
    "linspace_f32": (lambda x: tl.linspace(0, 1, x.shape[1] * 7 + 1, dtype=tl.float32),
                     lambda x: torch.linspace(0, 1, x.shape[1] * 7 + 1, dtype=torch.float32)),
    "linspace_batch": (lambda x: tl.linspace(3.0, -2.0, x.shape[0], dtype=tl.float64),
                       lambda x: torch.linspace(3.0, -2.0, x.shape[0], dtype=torch.float64)),
    "logspace": (lambda x: tl.logspace(-1.0, 2.0, x.shape[1] + 1, base=2.0, dtype=tl.float64),
                 lambda x: torch.logspace(-1.0, 2.0, x.shape[1] + 1, base=2.0,
                                          dtype=torch.float64)),
    # the detector's anchors: a grid over (H, W) read from the input, one row per location
    "anchors": (lambda x: _anchors(tl, x), lambda x: _anchors(torch, x)),
}
SIZES = ((4, 6), (1, 2), (3, 5), (2, 1), (5, 3))
ZERO_SIZES = ((0, 3), (3, 0), (1, 1))


def _anchors(L, x):
    h, w = x.shape
    ys = L.linspace(0.0, 1.0, h, dtype=L.float64)
    xs = L.linspace(0.0, 1.0, w, dtype=L.float64)
    centers = L.stack([ys.repeat_interleave(w), xs.repeat(h)], 1)
    wh = L.tensor([[0.1, 0.2], [0.3, 0.1]], dtype=L.float64)
    return L.cat([centers.repeat_interleave(2, dim=0), wh.repeat(h * w, 1)], 1)


class _Fn(tl.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _same(got, want, what):
    got = np.asarray(got.numpy() if isinstance(got, tl.Tensor) else got)
    want = np.asarray(want.numpy() if isinstance(want, tl.Tensor) else want)
    assert got.shape == want.shape, f"{what}: {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: {got.dtype} != {want.dtype}"
    np.testing.assert_array_equal(got, want, err_msg=what)


def _close(got, want, what):
    got = np.asarray(got.numpy() if isinstance(got, tl.Tensor) else got)
    assert got.shape == tuple(want.shape) and got.dtype == want.numpy().dtype, what
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-13, atol=1e-15, err_msg=what)


def _torch_close(got, want, what):
    got, want = got.numpy(), want.detach().numpy()
    assert got.shape == want.shape, f"{what}: {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-15, err_msg=what)


@pytest.mark.parametrize("name", sorted(CASES))
def test_captured_file_onnx_and_reimport_follow_the_count(name, tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    fn, tfn = CASES[name]
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, None), tl.float64)])
    path = tmp_path / "m.onnx"
    example = tl.tensor(_x((4, 6)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no size escapes, no retracing
        f(example)
        tl.save_graph(f, tmp_path / "m.tlg")
        tl.onnx.export(_Fn(fn), (example,), path, dynamic_axes={0: {0: "N", 1: "M"}})
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    loaded, back = tl.load_graph(tmp_path / "m.tlg"), tl.onnx.load(path)
    for i, shape in enumerate(SIZES + ZERO_SIZES):
        x = _x(shape, i + 1)
        eager = fn(tl.tensor(x))
        _torch_close(eager, tfn(torch.from_numpy(x)), f"{name} eager vs torch {shape}")
        _same(f(tl.tensor(x)), eager, f"{name} captured {shape}")
        _same(loaded(tl.tensor(x)), eager, f"{name} graph file {shape}")
        # (onnxruntime and the re-import may sum in another order: an ulp)
        _close(sess.run(None, {sess.get_inputs()[0].name: x})[0], eager,
               f"{name} onnxruntime {shape}")
        _close(back(x), eager, f"{name} re-imported {shape}")
    assert f.trace_count == 1


def test_repeat_exports_a_tile_fed_by_shape(tmp_path):
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "r.onnx"
    tl.onnx.export(_Fn(CASES["repeat_batch"][0]), (tl.tensor(_x((4, 6))),), path,
                   dynamic_axes={0: [0]})
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert "Tile" in ops and "Shape" in ops, ops


def test_pytorch_tile_fed_by_shape_imports(tmp_path):
    pytest.importorskip("onnx")

    class Anc(torch.nn.Module):
        def forward(self, x):
            return x[:, :2] + torch.tensor([[0.5, -1.0]]).repeat(x.shape[0], 1)

    path = tmp_path / "t.onnx"
    torch.onnx.export(Anc(), (torch.randn(4, 3),), str(path), dynamo=False,
                      input_names=["x"], dynamic_axes={"x": {0: "N"}})
    g = tl.onnx.load(path)
    for n in (4, 1, 7, 0):
        x = _x((n, 3)).astype(np.float32)
        np.testing.assert_array_equal(g(x).numpy(), Anc()(torch.from_numpy(x)).numpy())


# --- gradients, float64, against PyTorch ------------------------------------------------------
GRAD_CASES = {
    "repeat": (lambda a, x: (a.repeat(x.shape[0] // 2, 2) * x).sum(),
               lambda a, x: (a.repeat(x.shape[0] // 2, 2) * x).sum()),
    "tile": (lambda a, x: (tl.tile(a, (x.shape[0] // 2, 2)) ** 2 * x[: 2 * (x.shape[0] // 2)])
             .sum(),
             lambda a, x: (torch.tile(a, (x.shape[0] // 2, 2)) ** 2 * x[: 2 * (x.shape[0] // 2)])
             .sum()),
    "repeat_interleave": (lambda a, x: (a.repeat_interleave(x.shape[0], dim=1).sin()).sum(),
                          lambda a, x: (a.repeat_interleave(x.shape[0], dim=1).sin()).sum()),
}


@pytest.mark.parametrize("name", sorted(GRAD_CASES))
@pytest.mark.filterwarnings("ignore:tl.function grad_of")    # (a training step: per shape)
def test_gradients_follow_the_count_when_captured(name):
    fn, tfn = GRAD_CASES[name]
    rng = np.random.default_rng(1)
    a0 = rng.standard_normal((2, 3))

    def grad_of(a, x):
        a = a.detach().requires_grad_(True)
        with tl.enable_grad():
            (g,) = tl.grad(fn(a, x), [a])
        return g
    spec = [tl.TensorSpec((2, 3), tl.float64), tl.TensorSpec((None, 6), tl.float64)]
    f = tl.function(grad_of, input_signature=spec)
    for n in (4, 2, 6, 8):
        x = rng.standard_normal((n * (2 if name == "repeat" else 1), 6))
        if name == "repeat_interleave":
            x = x[:, :3]
            f = f if n != 4 else tl.function(grad_of, input_signature=[
                spec[0], tl.TensorSpec((None, 3), tl.float64)])
        ta = torch.tensor(a0, requires_grad=True)
        (want,) = torch.autograd.grad(tfn(ta, torch.from_numpy(x)), [ta])
        eager = grad_of(tl.tensor(a0), tl.tensor(x))
        _torch_close(eager, want, f"{name} eager grad n={n}")
        np.testing.assert_allclose(f(tl.tensor(a0), tl.tensor(x)).numpy(), eager.numpy(),
                                   rtol=1e-13, atol=1e-13, err_msg=f"{name} captured n={n}")


@SET
@given(st.lists(st.integers(1, 3), min_size=1, max_size=3),
       st.lists(st.integers(0, 3), min_size=1, max_size=4), st.integers(0, 10 ** 6))
def test_tile_and_repeat_match_torch_values_and_grads(shape, reps, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    reps = reps + [1] * (len(shape) - len(reps))
    t = torch.tensor(x, requires_grad=True)
    want = t.repeat(*reps)
    w = np.random.default_rng(seed + 1).standard_normal(tuple(want.shape))
    (tg,) = torch.autograd.grad((want * torch.from_numpy(w)).sum(), [t])
    a = tl.tensor(x, requires_grad=True)
    got = a.repeat(*reps)
    _torch_close(got, want, f"repeat {shape} {reps}")
    (g,) = tl.grad((got * tl.tensor(w)).sum(), [a])
    _torch_close(g, tg, f"repeat grad {shape} {reps}")
    _torch_close(tl.tile(tl.tensor(x), reps[:1]), torch.tile(torch.tensor(x), reps[:1]),
                 "tile")


@SET
@given(st.integers(0, 5), st.integers(0, 40), st.floats(-5, 5), st.floats(-5, 5))
def test_linspace_captured_equals_eager_and_torch(n0, n, start, end):
    spec = [tl.TensorSpec((None,), tl.float32)]
    for dt, tdt in ((tl.float32, torch.float32), (tl.float64, torch.float64)):
        f = tl.function(lambda x: tl.linspace(start, end, x.shape[0], dtype=dt),
                        input_signature=spec)
        f(tl.zeros(n0 + 2))                      # traced at another length
        got, eager = f(tl.zeros(n)), tl.linspace(start, end, n, dtype=dt)
        _same(got, eager, f"linspace({start}, {end}, {n}) {dt} captured")
        _torch_close(eager, torch.linspace(start, end, n, dtype=tdt), "linspace vs torch")


def test_traced_counts_raise_when_negative_at_replay():
    spec = [tl.TensorSpec((None, 2), tl.float64)]
    f = tl.function(lambda x: tl.tensor(A).repeat(x.shape[0] - 3, 1), input_signature=spec)
    f(tl.zeros(5, 2, dtype=tl.float64))
    with pytest.raises(RuntimeError, match="tile: reps must be non-negative"):
        f(tl.zeros(2, 2, dtype=tl.float64))          # replayed: the count is -1
    assert f.trace_count == 1
    with pytest.raises(RuntimeError):
        torch.tensor(A).repeat(-1, 1)
    with pytest.raises(RuntimeError, match="tile: reps must be non-negative"):
        tl.tensor(A).repeat(-1, 1)
    h = tl.function(lambda x: tl.tensor(A).repeat_interleave(x.shape[0] - 3),
                    input_signature=spec)
    with pytest.raises(ValueError, match="repeat_interleave: repeats must not be negative"):
        h(tl.zeros(2, 2, dtype=tl.float64))


# --- 5. error classes as PyTorch's ----------------------------------------------------------
EMPTY = {
    "max_dim0": lambda L, z: z.max(dim=0), "min_dim0": lambda L, z: z.min(dim=0),
    "max_pos0": lambda L, z: z.max(0), "max_all": lambda L, z: z.max(),
    "min_all": lambda L, z: z.min(), "amax_dim0": lambda L, z: z.amax(dim=0),
    "amin_dim0": lambda L, z: z.amin(dim=0), "amax_all": lambda L, z: z.amax(),
    "amin_all": lambda L, z: z.amin(), "argmax_all": lambda L, z: z.argmax(),
    "argmin_all": lambda L, z: z.argmin(), "argmax_dim0": lambda L, z: z.argmax(dim=0),
    "argmin_dim0": lambda L, z: z.argmin(dim=0, keepdim=True),
    "max_1d": lambda L, z: z[:, 0].max(), "max_1d_dim": lambda L, z: z[:, 0].max(dim=-1),
    "iou_matching": lambda L, z: (z @ L.ones(5, 7, dtype=z.dtype)).max(dim=0),
}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_empty_reductions_raise_as_torch(name):
    case = EMPTY[name]
    with pytest.raises(Exception) as want:
        case(torch, torch.zeros(0, 5))
    with pytest.raises(EmptyReductionError) as got:
        case(tl, tl.zeros(0, 5))
    assert isinstance(got.value, type(want.value)), (type(got.value), type(want.value))
    assert isinstance(got.value, (IndexError, RuntimeError, ValueError))
    # PyTorch's text is in the message, after tensorlib's
    key = str(want.value).split(": ", 1)[1].split(". Specify")[0].split(" to have")[0]
    assert key.rstrip(".") in str(got.value), (str(got.value), str(want.value))


@pytest.mark.parametrize("name", ["max_dim1", "amax_dim1", "argmax_dim1"])
def test_reductions_over_a_non_empty_dim_of_an_empty_tensor_still_work(name):
    op = name.split("_")[0]
    got, want = getattr(tl.zeros(0, 5), op)(dim=1), getattr(torch.zeros(0, 5), op)(dim=1)
    got = got[0] if isinstance(got, tuple) else got
    want = want[0] if isinstance(want, tuple) else want
    assert tuple(got.shape) == tuple(want.shape) == (0,)


@pytest.mark.parametrize("ignore_index", [255, 0, 3])
@pytest.mark.parametrize("shape", [(3, 4), (2, 4, 5)])
def test_cross_entropy_probability_target_refuses_ignore_index(ignore_index, shape):
    x, p = _x(shape), np.random.default_rng(2).dirichlet(np.ones(4), shape[:1] + shape[2:])
    p = np.moveaxis(p, -1, 1) if len(shape) == 3 else p
    with pytest.raises(RuntimeError, match="ignore_index is not supported for floating point"):
        torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(p),
                                          ignore_index=ignore_index)
    with pytest.raises(RuntimeError, match="cross_entropy: ignore_index is not supported "
                                           "for floating point target"):
        F.cross_entropy(tl.tensor(x), tl.tensor(p), ignore_index=ignore_index)


@pytest.mark.parametrize("ignore_index", [-100, -1])
def test_cross_entropy_probability_target_with_a_negative_ignore_index_works(ignore_index):
    x, p = _x((3, 4)), np.random.default_rng(3).dirichlet(np.ones(4), 3)
    t = torch.tensor(x, requires_grad=True)
    want = torch.nn.functional.cross_entropy(t, torch.tensor(p), ignore_index=ignore_index)
    (tg,) = torch.autograd.grad(want, [t])
    a = tl.tensor(x, requires_grad=True)
    got = F.cross_entropy(a, tl.tensor(p), ignore_index=ignore_index)
    (g,) = tl.grad(got, [a])
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-12, atol=1e-15)
    # integer targets keep ignoring
    ti = np.array([1, 255, 2])
    np.testing.assert_allclose(
        F.cross_entropy(tl.tensor(x), tl.tensor(ti), ignore_index=255).numpy(),
        torch.nn.functional.cross_entropy(torch.tensor(x), torch.tensor(ti),
                                          ignore_index=255).numpy(), rtol=1e-12)


def test_onnx_reshape_reads_a_computed_zero_as_zero(tmp_path):
    """From opset 14 reshape exports with allowzero=1 and copied dims read from the input's
    shape: a size computed at run time that comes out 0 stays 0 (ONNX's default reads 0
    as "copy the input's dim")."""
    ort = pytest.importorskip("onnxruntime")

    class M(tl.nn.Module):
        def forward(self, x):
            return x.reshape(x.shape[0] * 2, 2), x.reshape(x.shape[0], 2, 2) + 1

    for opset in (13, 17):
        path = tmp_path / f"r{opset}.onnx"
        tl.onnx.export(M(), (tl.randn(3, 4),), path, dynamic_axes={0: [0]}, opset=opset)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        back = tl.onnx.load(path)
        for n in (3, 1, 0):
            x = np.arange(4.0 * n, dtype=np.float32).reshape(n, 4)
            want = [t.numpy() for t in M()(tl.tensor(x))]
            for got in (sess.run(None, {sess.get_inputs()[0].name: x}),
                        [t.numpy() for t in back(tl.tensor(x))]):
                for g, w in zip(got, want):
                    assert g.shape == w.shape
                    np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("name", ["median", "nanmedian", "aminmax", "mode", "kthvalue"])
def test_empty_dim_reductions_raise_index_errors_as_torch(name):
    call = {"median": lambda L, x: x.median(0), "nanmedian": lambda L, x: x.nanmedian(0),
            "aminmax": lambda L, x: L.aminmax(x, dim=0), "mode": lambda L, x: x.mode(0),
            "kthvalue": lambda L, x: x.kthvalue(1, 0)}[name]
    with pytest.raises(IndexError):
        call(torch, torch.zeros(0, 3))
    with pytest.raises(tl.errors.EmptyReductionError,
                       match=rf"{name}: cannot reduce dim 0 of size 0.*non-zero size"):
        call(tl, tl.zeros(0, 3))
