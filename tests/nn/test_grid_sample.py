"""F.grid_sample and F.affine_grid: PyTorch parity (values and both gradients, every mode x
padding x align_corners, 4-d and 5-d, float32/float64, grids with points outside the input
and exactly on borders, pixel centres and reflection folds), finite differences in float64
(first and second order), an STN trained like PyTorch's, graph capture at two batch sizes
and symbolic gradients, native save/load, ONNX export (onnxruntime) and import, errors."""
from __future__ import annotations

import io
import itertools
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F
from tensorlib.autograd import gradcheck, gradgradcheck
from tensorlib.onnx.context import UnsupportedOpError

MODES = ["bilinear", "nearest", "bicubic"]
PADS = ["zeros", "border", "reflection"]
COMBOS_4D = list(itertools.product(MODES, PADS, [False, True]))
COMBOS_5D = list(itertools.product(["bilinear", "nearest"], PADS, [False, True]))
COMBOS = [(4, *c) for c in COMBOS_4D] + [(5, *c) for c in COMBOS_5D]


def _ids(c):
    return "-".join(str(v) for v in c)


def _to_grid(u, n: int, align: bool):
    """The normalised coordinate that unnormalises to input position ``u`` on an axis of n."""
    if align:
        return 2 * u / (n - 1) - 1 if n > 1 else np.zeros_like(u)
    return (2 * u + 1) / n - 1


def _special_positions(n: int) -> np.ndarray:
    """Input positions where the sampling changes piece: pixel centres and the edges between
    them, the borders, the folds of reflection (-0.5, n - 0.5, 0, n - 1 and beyond)."""
    k = np.arange(-2 * n - 1, 3 * n + 2)
    return np.concatenate([k, k + 0.5])


@st.composite
def _sample_case(draw, nd: int, align: bool, dtype):
    """(input, grid): small shapes, each grid coordinate either random in a range wider than
    the input or exactly one of the special positions (or -1, 0, 1, far out)."""
    sp = tuple(draw(st.integers(1, 4)) for _ in range(nd - 2))
    gsp = tuple(draw(st.integers(1, 4)) for _ in range(nd - 2))
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))
    x = rng.standard_normal((N, C) + sp)
    grid = rng.uniform(-2.2, 2.2, (N,) + gsp + (nd - 2,))
    flat = grid.reshape(-1, nd - 2)
    for d in range(nd - 2):
        n = sp[nd - 3 - d]          # grid component d walks spatial axis nd - 3 - d
        special = np.concatenate([_to_grid(_special_positions(n), n, align),
                                  [-1.0, 0.0, 1.0, -7.5, 9.25, 1e3]])
        pick = rng.random(flat.shape[0]) < draw(st.sampled_from([0.0, 0.5, 1.0]))
        flat[pick, d] = rng.choice(special, int(pick.sum()))
    return x.astype(dtype), grid.astype(dtype)


def _torch_vs_tl(x, grid, mode, pad, align, seed=0):
    tx = torch.tensor(x, requires_grad=True)
    tg = torch.tensor(grid, requires_grad=True)
    ty = torch.nn.functional.grid_sample(tx, tg, mode=mode, padding_mode=pad,
                                         align_corners=align)
    w = np.random.default_rng(seed).standard_normal(tuple(ty.shape)).astype(x.dtype)
    ty.backward(torch.tensor(w))
    lx = tl.tensor(x, requires_grad=True)
    lg = tl.tensor(grid, requires_grad=True)
    ly = F.grid_sample(lx, lg, mode=mode, padding_mode=pad, align_corners=align)
    (ly * tl.tensor(w)).sum().backward()
    return ((ly, ty), (lx.grad, tx.grad), (lg.grad, tg.grad))


def _assert_close(pairs, dtype):
    rtol, atol = (1e-9, 1e-10) if dtype == np.float64 else (2e-5, 2e-5)
    for what, (ours, theirs) in zip(("output", "input grad", "grid grad"), pairs):
        ref = theirs.detach().numpy()
        assert ours is not None, f"no {what}"
        got = ours.numpy()
        assert got.shape == ref.shape and got.dtype == ref.dtype, what
        scale = max(1.0, float(np.abs(ref).max(initial=0)))
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol * scale, equal_nan=True,
                                   err_msg=what)


# --- PyTorch parity ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_values_and_both_gradients_match_torch(combo, dtype, data):
    nd, mode, pad, align = combo
    x, grid = data.draw(_sample_case(nd, align, dtype))
    _assert_close(_torch_vs_tl(x, grid, mode, pad, align), dtype)


def test_nearest_grid_gradient_is_zeros_like_torch():
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 3))
    grid = np.random.default_rng(1).uniform(-1, 1, (1, 2, 2, 2))
    pairs = _torch_vs_tl(x, grid, "nearest", "zeros", False)
    assert pairs[2][0] is not None and not pairs[2][0].numpy().any()
    _assert_close(pairs, np.float64)


def test_large_batch_and_channels_match_torch():
    # many points per row of taps, repeated taps (the scatter adds them up), C > 64
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 70, 9, 7)).astype(np.float32)
    grid = rng.uniform(-1.1, 1.1, (3, 20, 30, 2)).astype(np.float32)
    for mode, pad in (("bilinear", "zeros"), ("bicubic", "reflection"), ("nearest", "border")):
        _assert_close(_torch_vs_tl(x, grid, mode, pad, True), np.float32)


@pytest.mark.parametrize("nd", [4, 5])
@pytest.mark.parametrize("pad", PADS)
def test_non_finite_grid_points_match_torch_forward(nd, pad):
    # PyTorch's 4-d kernel weighs NaN points (NaN output where the taps read zeros, the first
    # pixel after border/reflection clamps NaN to 0); its 5-d kernel reads nothing for them
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2) + (3,) * (nd - 2))
    grid = rng.uniform(-1, 1, (1, 5) + (1,) * (nd - 3) + (nd - 2,))
    grid[0, 0, ..., 0] = np.nan
    grid[0, 1, ..., 0] = np.inf
    grid[0, 2, ..., 0] = -np.inf
    grid[0, 3] = np.nan
    for mode in ("bilinear", "nearest") + (("bicubic",) if nd == 4 else ()):
        with torch.no_grad():
            want = torch.nn.functional.grid_sample(torch.tensor(x), torch.tensor(grid), mode=mode,
                                                   padding_mode=pad, align_corners=False).numpy()
        got = F.grid_sample(tl.tensor(x), tl.tensor(grid), mode=mode, padding_mode=pad).numpy()
        np.testing.assert_allclose(got, want, equal_nan=True, err_msg=mode)


@pytest.mark.parametrize("nd", [4, 5])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_far_points_reflect_like_torch(nd, dtype):
    # thousands of folds away (in float32 the fold arithmetic rounds: PyTorch's 4-d kernel
    # subtracts whole double spans, its 5-d one takes fmod; both are followed)
    vals = [1e4, -3.3e5, 1.7e7, -2.5e8, 12345.678] + ([1e10, -1e10] if nd == 4 else [])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2) + (3,) * (nd - 2)).astype(dtype)
    grid = rng.uniform(-1, 1, (1, len(vals)) + (1,) * (nd - 3) + (nd - 2,)).astype(dtype)
    grid[0, :, ..., 0] = np.array(vals, dtype).reshape(grid.shape[1:-1])
    for align, mode in itertools.product([False, True], ["bilinear", "nearest"]):
        _assert_close(_torch_vs_tl(x, grid, mode, "reflection", align), dtype)


# --- finite differences ------------------------------------------------------------------------
def _smooth_arrays(rng, sp, gsp, n_batch: int, channels: int, align: bool):
    """float64 (input, grid) tensors with every point away from the kinks of the sampling
    (integer and half-integer input positions: taps, borders, reflection folds), inside and
    outside the input, so central differences are exact up to rounding."""
    nd = len(sp) + 2
    x = rng.standard_normal((n_batch, channels) + tuple(sp))
    grid = np.empty((n_batch,) + tuple(gsp) + (nd - 2,))
    for d in range(nd - 2):
        n = sp[nd - 3 - d]
        u = rng.uniform(-2.4, n + 1.4, grid.shape[:-1])
        frac = u * 2 - np.floor(u * 2)                      # position within a half pixel
        u = np.floor(u * 2) / 2 + 0.1 + 0.3 * frac          # keep 0.1 from every kink
        grid[..., d] = _to_grid(u, n, align)
    return tl.tensor(x, requires_grad=True), tl.tensor(grid, requires_grad=True)


@st.composite
def _smooth_case(draw, nd: int, align: bool, small: bool = False):
    top = 3 if small else 4
    sp = tuple(draw(st.integers(2, top)) for _ in range(nd - 2))
    gsp = tuple(draw(st.integers(1, 2 if small else 3)) for _ in range(nd - 2))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 31 - 1)))
    return _smooth_arrays(rng, sp, gsp, draw(st.integers(1, 2)), draw(st.integers(1, 2)), align)


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
@settings(max_examples=4, deadline=None)
@given(data=st.data())
def test_gradcheck_float64(combo, data):
    nd, mode, pad, align = combo
    x, grid = data.draw(_smooth_case(nd, align))
    assert gradcheck(lambda a, b: F.grid_sample(a, b, mode=mode, padding_mode=pad,
                                                align_corners=align), [x, grid])


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
@settings(max_examples=2, deadline=None)
@given(data=st.data())
def test_gradgradcheck_float64(combo, data):
    # the vjps are registry ops with vjps of their own: second derivatives of the input,
    # the grid and the incoming gradient, mixed and pure (bicubic's pure grid-grid too)
    nd, mode, pad, align = combo
    x, grid = data.draw(_smooth_case(nd, align, small=True))
    assert gradgradcheck(lambda a, b: F.grid_sample(a, b, mode=mode, padding_mode=pad,
                                                    align_corners=align), [x, grid])


def test_third_order_bicubic():
    # the gradient of a gradient of a gradient: the same three ops with derivatives raised
    x, grid = _smooth_arrays(np.random.default_rng(0), (3, 3), (2, 2), 1, 2, False)

    def second(a, b):
        y = F.grid_sample(a, b, mode="bicubic", padding_mode="border")
        ga, gb = tl.grad((y * y).sum(), [a, b], create_graph=True)
        return (ga * ga).sum() + (gb * gb).sum()
    assert gradgradcheck(second, [x, grid])


# --- affine_grid -------------------------------------------------------------------------------
@pytest.mark.parametrize("align", [False, True])
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 1, 1, 3), (1, 2, 5, 1), (3, 2, 2, 3, 4),
                                  (1, 1, 1, 1, 1)], ids=str)
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_affine_grid_matches_torch(size, align, dtype):
    k = len(size) - 2
    theta = np.random.default_rng(0).standard_normal((size[0], k, k + 1)).astype(dtype)
    tt = torch.tensor(theta, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # torch warns on unit sizes with align_corners
        ty = torch.nn.functional.affine_grid(tt, size, align_corners=align)
    w = np.random.default_rng(1).standard_normal(tuple(ty.shape)).astype(dtype)
    ty.backward(torch.tensor(w))
    lt = tl.tensor(theta, requires_grad=True)
    ly = F.affine_grid(lt, size, align_corners=align)
    (ly * tl.tensor(w)).sum().backward()
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert ly.dtype == dtype and ly.shape == tuple(ty.shape)
    np.testing.assert_allclose(ly.numpy(), ty.detach().numpy(), atol=tol)
    np.testing.assert_allclose(lt.grad.numpy(), tt.grad.numpy(), atol=tol * 10)


@pytest.mark.parametrize("size", [(2, 1, 3, 4), (2, 1, 2, 3, 2)], ids=str)
def test_affine_grid_gradcheck_and_gradgradcheck(size):
    k = len(size) - 2
    theta = tl.tensor(np.random.default_rng(0).standard_normal((2, k, k + 1)),
                      requires_grad=True)
    assert gradcheck(lambda t: F.affine_grid(t, size), [theta])
    assert gradgradcheck(lambda t: F.affine_grid(t, size) ** 2, [theta])


def test_affine_grid_then_sample_matches_torch_end_to_end():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6, 5))
    theta = rng.standard_normal((2, 2, 3)) * 0.5
    tx, tt = torch.tensor(x, requires_grad=True), torch.tensor(theta, requires_grad=True)
    ref = torch.nn.functional.grid_sample(
        tx, torch.nn.functional.affine_grid(tt, tx.shape, align_corners=False),
        padding_mode="border", align_corners=False)
    ref.sum().backward()
    lx, lt = tl.tensor(x, requires_grad=True), tl.tensor(theta, requires_grad=True)
    out = F.grid_sample(lx, F.affine_grid(lt, lx.shape), padding_mode="border")
    out.sum().backward()
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(lt.grad.numpy(), tt.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(lx.grad.numpy(), tx.grad.numpy(), atol=1e-12)


# --- a spatial transformer network, trained ----------------------------------------------------
class _TorchSTN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.loc = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.MaxPool2d(2),
                                       torch.nn.ReLU(), torch.nn.Flatten(),
                                       torch.nn.Linear(4 * 3 * 3, 6))
        self.head = torch.nn.Linear(8 * 8, 3)

    def forward(self, x):
        theta = self.loc(x).view(-1, 2, 3)
        grid = torch.nn.functional.affine_grid(theta, x.size(), align_corners=False)
        x = torch.nn.functional.grid_sample(x, grid, align_corners=False)
        return self.head(x.flatten(1))


class _STN(nn.Module):
    def __init__(self):
        super().__init__()
        self.loc = nn.Sequential(nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(4 * 3 * 3, 6))
        self.head = nn.Linear(8 * 8, 3)

    def forward(self, x):
        theta = self.loc(x).reshape(-1, 2, 3)
        grid = F.affine_grid(theta, x.shape, align_corners=False)
        x = F.grid_sample(x, grid, align_corners=False)
        return self.head(x.reshape(x.shape[0], -1))


def _stn_pair():
    torch.manual_seed(0)
    theirs = _TorchSTN().double()
    with torch.no_grad():      # start at the identity transform, as STN tutorials do
        theirs.loc[-1].weight.mul_(0.1)
        theirs.loc[-1].bias.copy_(torch.tensor([1.0, 0, 0, 0, 1.0, 0]))
    ours = _STN().double()
    ours.load_state_dict({k: tl.tensor(v.detach().numpy()) for k, v in
                          theirs.state_dict().items()})
    return ours, theirs


def test_stn_trains_like_torch():
    ours, theirs = _stn_pair()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 1, 8, 8))
    y = rng.integers(0, 3, 5)
    opt_t = torch.optim.SGD(theirs.parameters(), lr=0.5)
    opt_l = tl.optim.SGD(ours.parameters(), lr=0.5)
    for _ in range(4):
        lt = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
        opt_t.zero_grad()
        lt.backward()
        opt_t.step()
        ll = F.cross_entropy(ours(tl.tensor(x)), tl.tensor(y))
        opt_l.zero_grad()
        ll.backward()
        opt_l.step()
        np.testing.assert_allclose(float(ll.item()), float(lt.item()), rtol=1e-10)
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.numpy(), q.detach().numpy(), atol=1e-10, err_msg=name)
    # the transform moved away from the identity: the grid gradient did its work
    assert abs(float(theirs.loc[-1].bias[0].detach()) - 1.0) > 1e-6


# --- graph capture -----------------------------------------------------------------------------
def _warp(x, flow):
    """Optical-flow style warping: an identity affine grid plus a per-pixel offset."""
    n = x.shape[0]
    eye = tl.tensor(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32))
    grid = F.affine_grid(eye.reshape(1, 2, 3).broadcast_to((n, 2, 3)), x.shape)
    return F.grid_sample(x, grid + flow, mode="bilinear", padding_mode="reflection")


def test_capture_replays_at_two_batch_sizes():
    rng = np.random.default_rng(0)
    f = tl.function(_warp, input_signature=[tl.TensorSpec((None, 3, 5, 6), tl.float32),
                                            tl.TensorSpec((None, 5, 6, 2), tl.float32)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # no retracing per batch size
        for n in (2, 5, 2, 3):
            x = rng.standard_normal((n, 3, 5, 6)).astype(np.float32)
            flow = (0.3 * rng.standard_normal((n, 5, 6, 2))).astype(np.float32)
            want = _warp(tl.tensor(x), tl.tensor(flow)).numpy()
            got = f(tl.tensor(x), tl.tensor(flow))
            assert got.shape == (n, 3, 5, 6)
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)
    g = f.get_graph(tl.tensor(x), tl.tensor(flow))
    assert {"grid_sample", "affine_grid"} <= {n.op for n in g.nodes}
    assert g.inputs[0].shape[0] is None and g.outputs[0].shape[0] is None


def test_stn_captured_with_dynamic_batch():
    ours, _ = _stn_pair()
    f = tl.function(ours, input_signature=[tl.TensorSpec((None, 1, 8, 8), tl.float64)])
    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in (4, 1, 6):
            x = tl.tensor(rng.standard_normal((n, 1, 8, 8)))
            with tl.no_grad():
                np.testing.assert_allclose(f(x).numpy(), ours(x).numpy(), atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_graph_gradients_equal_eager(mode):
    rng = np.random.default_rng(0)
    x = tl.tensor(rng.standard_normal((2, 2, 4, 5)), requires_grad=True)
    grid = tl.tensor(rng.uniform(-1.2, 1.2, (2, 3, 3, 2)), requires_grad=True)
    w = tl.tensor(rng.standard_normal((2, 2, 3, 3)))

    def loss_of(a, b):
        return (F.grid_sample(a, b, mode=mode, padding_mode="border") * w).sum()
    with tl.capture(x, grid) as g:
        loss = loss_of(x, grid)
    grads = g.gradients(loss, list(g.inputs))
    # new feeds: a gradient graph that froze the traced values would disagree
    x2 = rng.standard_normal((2, 2, 4, 5))
    grid2 = rng.uniform(-1.2, 1.2, (2, 3, 3, 2))
    got = g.run({0: x2, 1: grid2}, fetches=grads)
    a, b = tl.tensor(x2, requires_grad=True), tl.tensor(grid2, requires_grad=True)
    want = tl.grad(loss_of(a, b), [a, b])
    for gv, wv in zip(got, want):
        np.testing.assert_allclose(gv.numpy(), wv.numpy(), rtol=1e-10, atol=1e-12)


def test_native_graph_file_round_trip(tmp_path):
    f = tl.function(_warp, input_signature=[tl.TensorSpec((None, 3, 5, 6), tl.float32),
                                            tl.TensorSpec((None, 5, 6, 2), tl.float32)])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 6)).astype(np.float32)
    flow = (0.3 * rng.standard_normal((2, 5, 6, 2))).astype(np.float32)
    f(tl.tensor(x), tl.tensor(flow))
    tl.save_graph(f, tmp_path / "warp")
    m = tl.load_graph(tmp_path / "warp")
    x3 = rng.standard_normal((3, 3, 5, 6)).astype(np.float32)
    flow3 = (0.3 * rng.standard_normal((3, 5, 6, 2))).astype(np.float32)
    np.testing.assert_allclose(m(x3, flow3).numpy(),
                               _warp(tl.tensor(x3), tl.tensor(flow3)).numpy(), atol=1e-6)


# --- ONNX --------------------------------------------------------------------------------------
def _export(fn, arrays, opset, dynamic=True):
    specs = [tl.TensorSpec((None,) + a.shape[1:] if dynamic else a.shape, tl.float32)
             for a in arrays]
    g = tl.function(fn, input_signature=specs).get_graph(*[tl.tensor(a) for a in arrays])
    model = tl.onnx.to_model(g, opset=opset)
    import onnx
    onnx.checker.check_model(model, full_check=True)
    return model


def _ort_run(model, arrays):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: a for i, a in zip(model.graph.input, arrays)})[0]


def _grid_inputs(nd, batch, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3) + (4,) * (nd - 2)).astype(np.float32)
    grid = rng.uniform(-1.3, 1.3, (batch,) + (3,) * (nd - 2) + (nd - 2,)).astype(np.float32)
    return x, grid


@pytest.mark.parametrize("combo", COMBOS, ids=_ids)
def test_onnx_export_runs_in_onnxruntime_and_imports_back(combo):
    pytest.importorskip("onnx")
    nd, mode, pad, align = combo

    def fn(x, g):
        return F.grid_sample(x, g, mode=mode, padding_mode=pad, align_corners=align)
    for opset in ((16, 20) if nd == 4 else (20,)):
        model = _export(fn, list(_grid_inputs(nd, 2)), opset)
        node = next(n for n in model.graph.node if n.op_type == "GridSample")
        names = {a.name: a for a in node.attribute}
        want_mode = {"bilinear": "linear", "bicubic": "cubic"}.get(mode, mode) \
            if opset >= 20 else mode
        assert names["mode"].s.decode() == want_mode
        for batch in (2, 3):       # a dynamic batch axis
            arrays = list(_grid_inputs(nd, batch, seed=batch))
            want = fn(*[tl.tensor(a) for a in arrays]).numpy()
            np.testing.assert_allclose(_ort_run(model, arrays), want, atol=2e-5,
                                       err_msg=f"opset {opset} onnxruntime")
            back = tl.onnx.load(model)(*arrays).numpy()
            np.testing.assert_allclose(back, want, atol=1e-6, err_msg=f"opset {opset} import")


@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 2, 3, 4, 5)], ids=str)
@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize("align", [False, True])
def test_affine_grid_onnx_export(size, opset, align):
    pytest.importorskip("onnx")
    k = len(size) - 2
    rng = np.random.default_rng(0)
    theta = rng.standard_normal((size[0], k, k + 1)).astype(np.float32)

    def fn(t):
        return F.affine_grid(t, (t.shape[0],) + size[1:], align_corners=align)
    model = _export(fn, [theta], opset)
    ops = {n.op_type for n in model.graph.node}
    assert ("AffineGrid" in ops) == (opset >= 20) and ("MatMul" in ops) == (opset < 20)
    for n in (size[0], 4):
        th = rng.standard_normal((n, k, k + 1)).astype(np.float32)
        want = fn(tl.tensor(th)).numpy()
        np.testing.assert_allclose(_ort_run(model, [th]), want, atol=1e-5)
        np.testing.assert_allclose(tl.onnx.load(model)(th).numpy(), want, atol=1e-6)


def test_onnx_export_refusals_are_clear():
    pytest.importorskip("onnx")
    x4, g4 = _grid_inputs(4, 2)
    with pytest.raises(UnsupportedOpError, match="GridSample needs opset >= 16"):
        _export(lambda x, g: F.grid_sample(x, g), [x4, g4], 15)
    x5, g5 = _grid_inputs(5, 2)
    with pytest.raises(UnsupportedOpError, match="5-d input needs opset >= 20"):
        _export(lambda x, g: F.grid_sample(x, g), [x5, g5], 17)
    # the gradient kernels are not exported (a training graph's forward is)
    a, b = tl.tensor(x4, requires_grad=True), tl.tensor(g4, requires_grad=True)
    with tl.capture(a, b) as g:
        loss = F.grid_sample(a, b).sum()
    grads = g.gradients(loss, list(g.inputs))
    g.set_outputs(*grads)
    with pytest.raises(UnsupportedOpError, match="grid_sample_grid_grad|grid_sample_input_grad"):
        tl.onnx.to_model(g, opset=17)


def _torch_export(module, args, opset, names):
    f = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, f, opset_version=opset, dynamo=False,
                              input_names=names, dynamic_axes={n: {0: "b"} for n in names})
    except Exception as e:     # noqa: BLE001  (no TorchScript exporter in this torch build)
        pytest.skip(f"torch.onnx.export(dynamo=False) is unavailable here: {e}")
    return f.getvalue()


@pytest.mark.parametrize("opset", [16, 20])
def test_import_torch_exported_grid_sample(opset):
    pytest.importorskip("onnx")

    class M(torch.nn.Module):
        def forward(self, x, grid):
            return torch.nn.functional.grid_sample(x, grid, mode="bicubic",
                                                   padding_mode="reflection",
                                                   align_corners=True)
    x, grid = (torch.tensor(a) for a in _grid_inputs(4, 2))
    m = tl.onnx.load(_torch_export(M(), (x, grid), opset, ["x", "grid"]))
    x3, g3 = _grid_inputs(4, 3, seed=5)
    want = M()(torch.tensor(x3), torch.tensor(g3)).numpy()
    np.testing.assert_allclose(m(x3, g3).numpy(), want, atol=1e-5)


def test_import_torch_exported_affine_grid_with_dynamic_batch():
    pytest.importorskip("onnx")

    class M(torch.nn.Module):
        def forward(self, x, theta):
            grid = torch.nn.functional.affine_grid(theta, x.shape, align_corners=False)
            return torch.nn.functional.grid_sample(x, grid, padding_mode="border",
                                                   align_corners=False)
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((2, 3, 5, 6)).astype(np.float32))
    theta = torch.tensor(rng.standard_normal((2, 2, 3)).astype(np.float32))
    data = _torch_export(M(), (x, theta), 20, ["x", "theta"])
    m = tl.onnx.load(data)
    for n in (2, 5):
        xn = rng.standard_normal((n, 3, 5, 6)).astype(np.float32)
        tn = rng.standard_normal((n, 2, 3)).astype(np.float32)
        want = M()(torch.tensor(xn), torch.tensor(tn)).numpy()
        np.testing.assert_allclose(m(xn, tn).numpy(), want, atol=1e-5)


@pytest.mark.parametrize("opset, mode, ours", [(16, "bilinear", "bilinear"),
                                               (16, "bicubic", "bicubic"),
                                               (20, "linear", "bilinear"),
                                               (20, "cubic", "bicubic"),
                                               (20, "nearest", "nearest")])
def test_import_hand_built_gridsample(opset, mode, ours):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    node = helper.make_node("GridSample", ["x", "g"], ["y"], mode=mode,
                            padding_mode="border", align_corners=1)
    graph = helper.make_graph(
        [node], "gs",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2, 4, 4]),
         helper.make_tensor_value_info("g", TensorProto.FLOAT, ["n", 3, 3, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 2, 3, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 4, 4)).astype(np.float32)
    g = rng.uniform(-1.2, 1.2, (2, 3, 3, 2)).astype(np.float32)
    want = F.grid_sample(tl.tensor(x), tl.tensor(g), mode=ours, padding_mode="border",
                         align_corners=True).numpy()
    np.testing.assert_allclose(tl.onnx.load(model)(x, g).numpy(), want, atol=1e-6)


# --- the array-module-generic kernels (the CuPy path) -------------------------------------------
@pytest.mark.parametrize("combo", [(4, "bicubic", "reflection", True),
                                   (4, "bilinear", "zeros", False),
                                   (5, "nearest", "border", False)], ids=_ids)
def test_generic_kernels_equal_the_cpu_ones(combo):
    # on a GPU the ops run fwd(cupy, ...); run the same code with NumPy (the CPU kernel of the
    # input gradient scatters with Cython instead of bincount)
    from tensorlib.ops import nn_grid
    nd, mode, pad, align = combo
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3) + (4,) * (nd - 2)).astype(np.float32)
    grid = rng.uniform(-1.3, 1.3, (2,) + (3,) * (nd - 2) + (nd - 2,)).astype(np.float32)
    g = rng.standard_normal((2, 3) + (3,) * (nd - 2)).astype(np.float32)
    attrs = {"mode": mode, "padding_mode": pad, "align_corners": align,
             "deriv": (0,) * (nd - 2)}
    for op, args, extra in ((nn_grid.GRID_SAMPLE, (x, grid), {}),
                            (nn_grid.GRID_SAMPLE_INPUT_GRAD, (g, grid),
                             {"input_size": x.shape[2:]}),
                            (nn_grid.GRID_SAMPLE_GRID_GRAD, (g, x, grid), {})):
        generic = op.fwd(np, *args, **attrs, **extra)
        np.testing.assert_allclose(generic, op.cpu(*args, **attrs, **extra), atol=1e-5)
    assert not {"grid_sample", "grid_sample_input_grad", "grid_sample_grid_grad",
                "affine_grid"} & set(tl.cuda.missing_cuda_kernels())


# --- other dtypes and sizes --------------------------------------------------------------------
def test_float16_computes_in_float32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float16)
    g = rng.uniform(-1, 1, (1, 3, 3, 2)).astype(np.float16)
    out = F.grid_sample(tl.tensor(x), tl.tensor(g))
    assert out.dtype == np.float16
    want = F.grid_sample(tl.tensor(x.astype(np.float32)), tl.tensor(g.astype(np.float32)))
    np.testing.assert_allclose(out.numpy().astype(np.float32), want.numpy(), atol=2e-3)


@pytest.mark.parametrize("x_shape, g_shape", [((0, 2, 3, 3), (0, 2, 2, 2)),
                                              ((2, 0, 3, 3), (2, 2, 2, 2)),
                                              ((2, 2, 3, 3), (2, 0, 2, 2)),
                                              ((1, 2, 2, 3, 3), (1, 2, 0, 2, 3))])
def test_empty_sizes_match_torch(x_shape, g_shape):
    x, g = np.ones(x_shape), np.zeros(g_shape)
    pairs = _torch_vs_tl(x, g, "bilinear", "zeros", False)
    _assert_close(pairs, np.float64)


# --- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("x_shape, g_shape, kw, err, match", [
    ((1, 2, 3, 3), (2, 5, 5), {}, ValueError,
     r"grid_sample: grid of shape \(2, 5, 5\) must be 4-d \(N, H, W, 2\)"),
    ((1, 2, 3), (1, 2, 2, 2), {}, ValueError, r"input of shape \(1, 2, 3\) must be 4-d"),
    ((1, 2, 3, 3), (1, 2, 2, 3), {}, ValueError, r"must end in 2 coordinates.*got 3"),
    ((1, 2, 3, 3, 3), (1, 2, 2, 2, 2), {}, ValueError, r"must end in 3 coordinates"),
    ((2, 2, 3, 3), (3, 2, 2, 2), {}, ValueError, r"batch sizes differ \(2 and 3\)"),
    ((1, 2, 0, 3), (1, 2, 2, 2), {}, ValueError, r"empty spatial dimension"),
    ((1, 2, 3, 3), (1, 2, 2, 2), {"mode": "linear"}, ValueError,
     r"mode must be one of 'bilinear', 'nearest', 'bicubic', got 'linear'"),
    ((1, 2, 3, 3), (1, 2, 2, 2), {"padding_mode": "reflect"}, ValueError,
     r"padding_mode must be one of 'zeros', 'border', 'reflection', got 'reflect'"),
    ((1, 2, 3, 3, 3), (1, 2, 2, 2, 3), {"mode": "bicubic"}, ValueError,
     r"mode 'bicubic' needs a 4-d input"),
])
def test_grid_sample_errors(x_shape, g_shape, kw, err, match):
    with pytest.raises(err, match=match):
        F.grid_sample(tl.zeros(*x_shape), tl.zeros(*g_shape), **kw)


def test_grid_sample_dtype_errors():
    with pytest.raises(TypeError, match="grid has dtype float64, the input float32"):
        F.grid_sample(tl.zeros(1, 1, 2, 2), tl.zeros(1, 1, 1, 2, dtype=tl.float64))
    with pytest.raises(TypeError, match="grid_sample: input must be float32 or float64"):
        F.grid_sample(tl.zeros(1, 1, 2, 2, dtype=tl.int64), tl.zeros(1, 1, 1, 2))


@pytest.mark.parametrize("theta_shape, size, match", [
    ((1, 2, 3), (1, 1, 4), r"size \(1, 1, 4\) must be \(N, C, H, W\) or \(N, C, D, H, W\)"),
    ((1, 3, 4), (1, 1, 4, 4), r"theta of shape \(1, 3, 4\) must be \(N, 2, 3\)"),
    ((1, 2, 3), (1, 1, 2, 4, 4), r"theta of shape \(1, 2, 3\) must be \(N, 3, 4\)"),
    ((2, 2, 3), (3, 1, 4, 4), r"size \(3, 1, 4, 4\) has batch 3, theta \(2, 2, 3\) has 2"),
    ((1, 2, 3), (1, 1, 0, 4), r"must be positive"),
])
def test_affine_grid_errors(theta_shape, size, match):
    with pytest.raises(ValueError, match=match):
        F.affine_grid(tl.zeros(*theta_shape), size)
