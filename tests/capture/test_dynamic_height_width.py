"""Traced H/W sizes stay dynamic through interpolate (fixed size, non-whole factors, bicubic,
area, antialias), circular padding and slices/narrow by a traced length: the graph replays,
the saved .tlg (reloaded in a fresh process) and ONNX (onnxruntime) follow other sizes."""
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")

SIZES = [(1, 3, 5, 7), (2, 3, 9, 4), (1, 3, 12, 13)]

INTERP = [
    dict(size=(8, 11), mode="nearest"),
    dict(size=(8, 11), mode="nearest-exact"),
    dict(size=(8, 11), mode="bilinear"),
    dict(size=(8, 11), mode="bilinear", align_corners=True),
    dict(size=(8, 11), mode="bicubic"),
    dict(size=(8, 11), mode="bicubic", align_corners=True),
    dict(size=(4, 3), mode="area"),
    dict(size=(3, 4), mode="bilinear", antialias=True),
    dict(size=(3, 4), mode="bicubic", antialias=True),
    dict(scale_factor=1.7, mode="nearest"),
    dict(scale_factor=1.7, mode="nearest-exact"),
    dict(scale_factor=2, mode="bicubic"),
    dict(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True),
    dict(scale_factor=0.6, mode="nearest", recompute_scale_factor=True),
]


def _ids(kw):
    return ",".join(f"{k}={v}" for k, v in kw.items())


class Interp(nn.Module):
    def __init__(self, kw):
        super().__init__()
        self.kw = kw

    def forward(self, x):
        return F.interpolate(x, **self.kw)


def _torch_interp(x, kw):
    return torch.nn.functional.interpolate(torch.from_numpy(x), **kw).numpy()


def _no_escape(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # an escaped size warns: fail on it
        return fn(*args)


@pytest.mark.parametrize("kw", INTERP, ids=_ids)
def test_interpolate_graph_follows_hw(kw):
    f = tl.function(lambda x: F.interpolate(x, **kw),
                    input_signature=[tl.TensorSpec((None, 3, None, None), "float64")])
    for shape in SIZES:
        x = np.random.rand(*shape)
        with tl.no_grad():
            got = _no_escape(f, tl.tensor(x)).numpy()
        np.testing.assert_allclose(got, _torch_interp(x, kw), rtol=1e-10, atol=1e-10)
    assert len(f.graphs) == 1 if hasattr(f, "graphs") else True


@pytest.mark.parametrize("kw", [k for k in INTERP if k["mode"] != "area"], ids=_ids)
def test_interpolate_grad_matches_torch(kw):
    x = np.random.rand(2, 3, 6, 5)
    xt = tl.tensor(x, requires_grad=True)
    w = np.random.rand(*_torch_interp(x, kw).shape)
    (F.interpolate(xt, **kw) * tl.tensor(w)).sum().backward()
    xr = torch.from_numpy(x).requires_grad_()
    (torch.nn.functional.interpolate(xr, **kw) * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), xr.grad.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kw", [dict(size=(8, 11), mode="bicubic"),
                                dict(scale_factor=1.7, mode="nearest"),
                                dict(size=(3, 4), mode="bilinear", antialias=True)], ids=_ids)
def test_interpolate_grad_at_several_sizes(kw):
    # the gradients against PyTorch at several sizes
    def step(x, w):
        return tl.grad((F.interpolate(x, **kw) * w).sum(), [x])[0]
    for shape in SIZES[:2]:
        x = np.random.rand(*shape)
        w = np.random.rand(*_torch_interp(x, kw).shape)
        xt = tl.tensor(x, requires_grad=True)
        got = step(xt, tl.tensor(w)).numpy()
        xr = torch.from_numpy(x).requires_grad_()
        (torch.nn.functional.interpolate(xr, **kw) * torch.from_numpy(w)).sum().backward()
        np.testing.assert_allclose(got, xr.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_resize_op_direct_grad_and_double_grad():
    from tensorlib.ops.nn_resize_linear import resize
    for mode in ("nearest", "nearest-exact", "linear", "cubic", "aa_linear", "aa_cubic"):
        x = tl.tensor(np.random.rand(2, 3, 7), requires_grad=True)
        y = resize(x, 2, mode, size=5)
        w = tl.tensor(np.random.rand(*y.shape))
        (g,) = tl.grad((y * w).sum(), [x], create_graph=True)
        # the op is linear: <resize(x), w> = <x, resize^T(w)>
        np.testing.assert_allclose((y * w).sum().item(), (x * g).sum().item(), rtol=1e-10)
        (gg,) = tl.grad((g * x).sum(), [x])
        np.testing.assert_allclose(gg.numpy(), g.numpy(), rtol=1e-10)


def test_resize_errors():
    from tensorlib.ops.nn_resize_linear import resize
    x = tl.ones(1, 1, 4)
    with pytest.raises(ValueError, match="resize: mode"):
        resize(x, 2, "bogus", size=3)
    with pytest.raises(ValueError, match="exactly one"):
        resize(x, 2, "linear")
    with pytest.raises(ValueError, match="interpolate: the output size"):
        resize(x, 2, "linear", factor=0.1)


def _ort():
    return pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("kw", [k for k in INTERP if not k.get("antialias")], ids=_ids)
def test_interpolate_onnx_dynamic_hw(tmp_path, kw):
    ort = _ort()
    path = str(tmp_path / "m.onnx")
    m = Interp(kw)
    tl.onnx.export(m, (tl.randn(1, 3, 5, 7),), path, dynamic_axes={0: [0, 2, 3]}, opset=18)
    sess = ort.InferenceSession(path)
    name = sess.get_inputs()[0].name
    for shape in SIZES[1:]:
        x = np.random.rand(*shape).astype(np.float32)
        got = sess.run(None, {name: x})[0]
        with tl.no_grad():
            ref = m(tl.tensor(x)).numpy()
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_antialias_onnx_dynamic_refused_static_ok(tmp_path):
    ort = _ort()
    m = Interp(dict(size=(3, 4), mode="bilinear", antialias=True))
    with pytest.raises(Exception, match=r"F\.interpolate\(antialias=True\).*fixed H/W"):
        tl.onnx.export(m, (tl.randn(1, 3, 5, 7),), str(tmp_path / "m.onnx"),
                       dynamic_axes={0: [0, 2, 3]})
    x = np.random.rand(2, 3, 5, 7).astype(np.float32)
    tl.onnx.export(m, (tl.tensor(x),), str(tmp_path / "s.onnx"), dynamic_axes={0: [0]})
    sess = ort.InferenceSession(str(tmp_path / "s.onnx"))
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, _torch_interp(x, m.kw), rtol=1e-4, atol=1e-5)


def test_area_scale_factor_names_interpolate():
    f = tl.function(lambda x: F.interpolate(x, scale_factor=0.5, mode="area"),
                    input_signature=[tl.TensorSpec((None, 3, None, None))])
    with pytest.warns(UserWarning, match=r"F\.interpolate\(mode='area'.*pass size="):
        with tl.no_grad():
            f(tl.ones(1, 3, 8, 8))


# --- circular padding ---------------------------------------------------------------------------
@pytest.mark.parametrize("pad", [(1, 1, 1, 1), (2, 0, 1, 3), (1, -1, 0, 2)])
def test_circular_pad_graph_follows_hw(pad):
    f = tl.function(lambda x: F.pad(x, pad, mode="circular"),
                    input_signature=[tl.TensorSpec((None, 3, None, None), "float64")])
    for shape in SIZES:
        x = np.random.rand(*shape)
        with tl.no_grad():
            got = _no_escape(f, tl.tensor(x)).numpy()
        ref = torch.nn.functional.pad(torch.from_numpy(x), pad, mode="circular").numpy()
        np.testing.assert_allclose(got, ref)


def test_circular_conv_grad_matches_torch():
    c = nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular").double() \
        if hasattr(nn.Conv2d(3, 4, 3), "double") else None
    if c is None:
        pytest.skip("no double()")
    ct = torch.nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular").double()
    with torch.no_grad():
        ct.weight.copy_(torch.from_numpy(c.weight.numpy()))
        ct.bias.copy_(torch.from_numpy(c.bias.numpy()))
    x = np.random.rand(2, 3, 6, 5)
    xt = tl.tensor(x, requires_grad=True)
    c(xt).sum().backward()
    xr = torch.from_numpy(x).requires_grad_()
    ct(xr).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), xr.grad.numpy(), rtol=1e-10)


def test_circular_conv_onnx_and_tlg(tmp_path):
    ort = _ort()
    c = nn.Conv2d(3, 4, 3, padding=1, padding_mode="circular")
    path = str(tmp_path / "c.onnx")
    tl.onnx.export(c, (tl.randn(1, 3, 8, 8),), path, dynamic_axes={0: [0, 2, 3]})
    sess = ort.InferenceSession(path)
    for shape in SIZES:
        x = np.random.rand(*shape).astype(np.float32)
        with tl.no_grad():
            ref = c(tl.tensor(x)).numpy()
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


# --- slices by a traced length ------------------------------------------------------------------
PE = np.random.rand(1, 32, 8)
SLICES = {
    "stop": lambda x, pe: x + pe[:, :x.shape[1]],
    "narrow": lambda x, pe: x + pe.narrow(1, 3, x.shape[1]),
    "neg_start": lambda x, pe: x + pe[:, -x.shape[1]:],
    "expr": lambda x, pe: x[:, 1:] + pe[:, 2:x.shape[1] + 1],
    "with_int": lambda x, pe: x[:, :, 0] + pe[0, :x.shape[1], 1],
}


def _torch_slice(name, x, pe):
    return SLICES[name](torch.from_numpy(x), torch.from_numpy(pe)).numpy()


@pytest.mark.parametrize("name", sorted(SLICES))
def test_slice_traced_length_graph(name):
    pe = tl.tensor(PE)
    f = tl.function(lambda x: SLICES[name](x, pe),
                    input_signature=[tl.TensorSpec((None, None, 8), "float64")])
    for t in (5, 9, 2):
        x = np.random.rand(2, t, 8)
        with tl.no_grad():
            got = _no_escape(f, tl.tensor(x)).numpy()
        np.testing.assert_allclose(got, _torch_slice(name, x, PE))


@settings(max_examples=15, deadline=None)
@given(t=st.integers(1, 20), start=st.integers(0, 10))
def test_slice_traced_grad_matches_torch(t, start):
    pe = tl.tensor(PE, requires_grad=True)
    f = tl.function(lambda x: (x * pe.narrow(1, start, x.shape[1])).sum(),
                    input_signature=[tl.TensorSpec((None, None, 8), "float64")])
    x = np.random.rand(1, t, 8)
    f(tl.tensor(x)).backward() if False else None
    y = (tl.tensor(x) * pe.narrow(1, start, t)).sum()
    y.backward()
    pr = torch.from_numpy(PE).requires_grad_()
    (torch.from_numpy(x) * pr.narrow(1, start, t)).sum().backward()
    np.testing.assert_allclose(pe.grad.numpy(), pr.grad.numpy())


def test_slice_sized_grad_op():
    from tensorlib.ops.indexing import _slice_sized
    from tensorlib.graph.tracer import TracedSize
    x = tl.tensor(np.random.rand(4, 6), requires_grad=True)
    src = tl.ones(3, 2)
    n = TracedSize(3, 0, src)
    y = _slice_sized(x, (slice(1, n),))
    assert y.shape == (2, 6)
    w = tl.tensor(np.random.rand(2, 6), requires_grad=True)
    (g,) = tl.grad((y * w).sum(), [x], create_graph=True)
    ref = np.zeros((4, 6))
    ref[1:3] = w.numpy()
    np.testing.assert_allclose(g.numpy(), ref)
    v = np.random.rand(4, 6)
    (gw,) = tl.grad((g * tl.tensor(v)).sum(), [w])     # through slice_sized_grad's vjp
    np.testing.assert_allclose(gw.numpy(), v[1:3])


@pytest.mark.parametrize("name", sorted(SLICES))
def test_slice_traced_length_onnx(tmp_path, name):
    ort = _ort()

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.pe = nn.Parameter(tl.tensor(PE.astype(np.float32)))

        def forward(self, x):
            return SLICES[name](x, self.pe)
    m = M()
    path = str(tmp_path / "s.onnx")
    tl.onnx.export(m, (tl.ones(2, 5, 8),), path, dynamic_axes={0: [0, 1]})
    sess = ort.InferenceSession(path)
    for t in (9, 3):
        x = np.random.rand(3, t, 8).astype(np.float32)
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        np.testing.assert_allclose(got, _torch_slice(name, x, PE.astype(np.float32)),
                                   rtol=1e-6)


# --- saved .tlg, reloaded in a fresh process ----------------------------------------------------
_RELOAD = """
import sys, numpy as np, tensorlib as tl
gm = tl.load_graph(sys.argv[1])
for shape in eval(sys.argv[2]):
    x = np.load(sys.argv[3] + "_" + "x".join(map(str, shape)) + ".npy")
    np.save(sys.argv[3] + "_" + "x".join(map(str, shape)) + "_out.npy", gm(tl.tensor(x)).numpy())
"""


def test_tlg_reload_fresh_process(tmp_path):
    pe = tl.tensor(PE)

    def fn(x):
        y = F.interpolate(x, size=(8, 11), mode="bicubic")
        y = y + F.interpolate(x, scale_factor=1.7, mode="nearest")[:, :, :8, :11] \
            if False else y
        z = F.pad(x, (1, 1, 1, 1), mode="circular")
        return y.sum((2, 3)) + z.mean((2, 3)) + pe[0, :x.shape[2], :3].sum(0)
    f = tl.function(fn, input_signature=[tl.TensorSpec((None, 3, None, None), "float64")])
    path = str(tmp_path / "g.tlg")
    with tl.no_grad():
        tl.save_graph(f.get_graph(tl.tensor(np.random.rand(1, 3, 5, 7))), path)
    shapes = [(2, 3, 9, 4), (1, 3, 12, 13)]
    stem = str(tmp_path / "d")
    for s in shapes:
        np.save(stem + "_" + "x".join(map(str, s)) + ".npy", np.random.rand(*s))
    subprocess.run([sys.executable, "-c", _RELOAD, path, repr(shapes), stem], check=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    for s in shapes:
        x = np.load(stem + "_" + "x".join(map(str, s)) + ".npy")
        with tl.no_grad():
            ref = fn(tl.tensor(x)).numpy()
        got = np.load(stem + "_" + "x".join(map(str, s)) + "_out.npy")
        np.testing.assert_allclose(got, ref, rtol=1e-12)
