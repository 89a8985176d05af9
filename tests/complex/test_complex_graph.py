"""Complex tensors through graph capture and replay, graph files (JSON), symbolic
gradients of graphs, forward-mode AD, custom Functions, tl.func, vmap and ONNX export:
values and gradients against eager tensorlib and PyTorch (complex128 unless stated)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.autograd.forward_ad as fwAD
from tensorlib.graph.ir import Graph, decode_attr, encode_attr

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)


def _c(*shape, rng=RNG):
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def _close(a, b, tol=1e-9):
    a = a.numpy() if hasattr(a, "numpy") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# functions of a complex z (and a complex w), written once for both libraries
def _f_mix(m, z, w):
    return (m.exp(z) * w * (1 + 2j) + z.conj()).abs().sum() + (z * w).real.sum()


def _f_angle(m, z, w):
    return (m.angle(z) * (z @ w.T).imag.sum()).sum() + m.sgn(w).real.sum()


def _f_parts(m, z, w):
    v = m.view_as_real(z * w)
    return (v * v).sum() + m.sin(z).imag.sum()


FUNS = [_f_mix, _f_angle, _f_parts]


def _torch_grad(fn, zn, wn):
    z = torch.tensor(zn, requires_grad=True)
    fn(torch, z, torch.tensor(wn)).backward()
    return z.grad


# --- (1) capture and replay -------------------------------------------------------------
@pytest.mark.parametrize("fn", FUNS)
@pytest.mark.parametrize("dt", [tl.complex64, tl.complex128])
def test_function_replay_matches_eager(fn, dt):
    zn, wn = _c(2, 3), _c(2, 3)
    z, w = tl.tensor(zn, dtype=dt), tl.tensor(wn, dtype=dt)
    ff = tl.function(lambda z, w: fn(tl, z, w))
    tol = 1e-4 if dt == tl.complex64 else 1e-10
    _close(ff(z, w), fn(tl, z, w), tol)
    z2 = tl.tensor(zn * 1.5 - 0.5j, dtype=dt)
    out = ff(z2, w)        # the replay, fed new values
    assert out.dtype == fn(tl, z2, w).dtype
    _close(out, fn(tl, z2, w), tol)
    _close(out, fn(torch, torch.tensor(zn * 1.5 - 0.5j), torch.tensor(wn)), tol * 10)


@given(st.lists(st.floats(-3, 3), min_size=6, max_size=6))
def test_replay_hypothesis(vals):
    zn = np.asarray(vals[:3]) + 1j * np.asarray(vals[3:])
    wn = _c(3)
    ff = tl.function(lambda z, w: _f_mix(tl, z, w))
    ff(tl.tensor(_c(3)), tl.tensor(wn))
    _close(ff(tl.tensor(zn), tl.tensor(wn)), _f_mix(torch, torch.tensor(zn), torch.tensor(wn)))


def test_graph_json_round_trip_with_complex_constants():
    zn, wn = _c(3), _c(3)
    z, w = tl.tensor(zn), tl.tensor(wn)
    with tl.capture(z, w) as g:
        y = (z * (2 - 1j) + tl.tensor(np.array([1j, np.inf + 1j, 2]))).real * 1 + (z * w).imag
    g.set_outputs(y)
    doc = g.to_json(allow_nan=True)
    assert "complex128" in doc
    g2 = Graph.from_json(doc)
    feeds = {g2.inputs[0]: zn, g2.inputs[1]: wn}
    _close(g2.run(feeds), g.run({g.inputs[0]: zn, g.inputs[1]: wn}))
    assert [v.dtype for v in g2.values] == [v.dtype for v in g.values]


@pytest.mark.parametrize("a", [1 + 2j, np.complex64(0.5 - 1j), complex(np.inf, -np.nan)])
def test_encode_complex_scalar(a):
    d = decode_attr(json.loads(json.dumps(encode_attr(a))))
    assert isinstance(d, complex)
    np.testing.assert_equal(d, complex(a))


@pytest.mark.parametrize("dt", [np.complex64, np.complex128])
def test_encode_complex_array(dt):
    a = np.array([[1 + 2j, np.inf - 1j], [np.nan * 1j, -0.5]], dt)
    d = decode_attr(json.loads(json.dumps(encode_attr(a))))
    assert d.dtype == dt and d.shape == a.shape
    np.testing.assert_equal(d.real, a.real)
    np.testing.assert_equal(d.imag, a.imag)


def test_graph_file_save_load_complex(tmp_path):
    zn, wn = _c(3), _c(3)
    ff = tl.function(lambda z, w: _f_mix(tl, z, w))
    ff(tl.tensor(zn), tl.tensor(wn))
    tl.save_graph(ff, tmp_path / "c.tlg")
    m = tl.load_graph(tmp_path / "c.tlg")
    _close(m(tl.tensor(zn), tl.tensor(wn)), _f_mix(tl, tl.tensor(zn), tl.tensor(wn)))


@pytest.mark.parametrize("dt", [tl.complex64, tl.complex128])
def test_captured_training_step_matches_eager(dt):
    a, xn = _c(4, 3), _c(5, 4)
    res = []
    for captured in (False, True):
        W = tl.tensor(a.copy(), dtype=dt, requires_grad=True)
        x = tl.tensor(xn, dtype=dt)

        def step(x, W=W):
            loss = (x @ W).abs().sum()
            loss.backward()
            with tl.no_grad():      # SGD (tl.optim.SGD refuses complex parameters)
                W.sub_(W.grad * 0.01)
                W.grad.zero_()
            return loss

        s = tl.function(step) if captured else step
        res.append(([float(s(x)) for _ in range(4)], W.detach().numpy().copy()))
    tol = 1e-4 if dt == tl.complex64 else 1e-10
    np.testing.assert_allclose(res[0][0], res[1][0], rtol=tol)
    np.testing.assert_allclose(res[0][1], res[1][1], rtol=tol, atol=tol)


def test_captured_training_step_first_update_is_torch():
    a, xn = _c(4, 3), _c(5, 4)
    W = tl.tensor(a.copy(), requires_grad=True)

    @tl.function
    def step(x):
        loss = (x @ W).abs().sum()
        loss.backward()
        with tl.no_grad():
            W.sub_(W.grad * 0.1)
            W.grad.zero_()
        return loss

    step(tl.tensor(xn))
    Wt = torch.tensor(a, requires_grad=True)
    (torch.tensor(xn) @ Wt).abs().sum().backward()
    _close(W.detach(), torch.tensor(a) - 0.1 * Wt.grad)


# --- (2) symbolic gradients of captured graphs -------------------------------------------
@pytest.mark.parametrize("fn", FUNS)
def test_graph_gradients_match_eager_and_torch(fn):
    zn, wn = _c(2, 3), _c(2, 3)
    z = tl.tensor(zn, requires_grad=True)
    w = tl.tensor(wn)
    with tl.capture(z, w) as g:
        y = fn(tl, z, w)
    gz = g.gradients(y, g.inputs[0])
    g.set_outputs(y, gz)
    _, got = g.run({g.inputs[0]: zn, g.inputs[1]: wn})
    assert got.dtype == tl.complex128
    fn(tl, z, w).backward()
    _close(got, z.grad)
    _close(got, _torch_grad(fn, zn, wn))
    # the graph is right for other feeds too
    _, got2 = g.run({g.inputs[0]: zn * 2, g.inputs[1]: wn})
    _close(got2, _torch_grad(fn, zn * 2, wn))


def test_graph_gradients_refuse_complex_loss():
    z = tl.tensor(_c(3))
    with tl.capture(z) as g:
        y = (z * z).sum()
    with pytest.raises(TypeError, match="complex loss"):
        g.gradients(y, g.inputs[0])


def test_graph_gradient_real_input_of_complex_op_is_real():
    xn, zn = RNG.normal(size=3), _c(3)
    x, z = tl.tensor(xn), tl.tensor(zn)
    with tl.capture(x, z) as g:
        y = (tl.exp(x * z) * (1 - 1j)).abs().sum()
    gx, gz = g.gradients(y, [g.inputs[0], g.inputs[1]])
    g.set_outputs(gx, gz)
    got_x, got_z = g.run({g.inputs[0]: xn, g.inputs[1]: zn})
    assert got_x.dtype == tl.float64 and got_z.dtype == tl.complex128
    xt, zt = torch.tensor(xn, requires_grad=True), torch.tensor(zn, requires_grad=True)
    (torch.exp(xt * zt) * (1 - 1j)).abs().sum().backward()
    _close(got_x, xt.grad)
    _close(got_z, zt.grad)


def test_graph_gradients_refuse_op_without_complex_gradient(monkeypatch):
    from tensorlib.ops.registry import REGISTRY
    zn = _c(4)
    z = tl.tensor(zn)
    # an op that computes complex values but has no complex gradient rule (yet)
    monkeypatch.setattr(REGISTRY["sin"], "complex", "forward")
    with tl.capture(z) as g:
        y = tl.sin(z).real.sum()
    with pytest.raises(NotImplementedError, match="sin: gradients through complex"):
        g.gradients(y, g.inputs[0])


# --- (3) forward-mode AD ------------------------------------------------------------------
def _conj(m, z):
    return z.conj() * 1 if m is tl else torch.conj_physical(z)


JVP_CASES = {
    "holomorphic": lambda m, z: m.exp(z) * z * (1 - 2j),
    "conj": _conj,
    "abs": lambda m, z: z.abs(),
    "real_imag": lambda m, z: z.real * 2 + z.imag,
    "angle": lambda m, z: m.angle(z),
    "sgn": lambda m, z: m.sgn(z),
    "abs_times_z": lambda m, z: z.abs() * m.sin(z),
    "var": lambda m, z: m.var(z),
    "view_as_real": lambda m, z: m.view_as_real(z * 1),
    "matmul": lambda m, z: z @ z.T.conj() if m is tl else z @ z.T.conj(),
    "fft": lambda m, z: m.fft.fft(z, dim=-1),
}


@pytest.mark.parametrize("name", sorted(JVP_CASES))
def test_forward_ad_matches_torch(name):
    f = JVP_CASES[name]
    zn, tn = _c(2, 3), _c(2, 3)
    with fwAD.dual_level():
        d = fwAD.make_dual(tl.tensor(zn), tl.tensor(tn))
        out = f(tl, d)
        got = fwAD.unpack_dual(out).tangent
    ref = torch.func.jvp(lambda z: f(torch, z), (torch.tensor(zn),), (torch.tensor(tn),))[1]
    assert got.dtype == out.dtype
    _close(got, ref)


@pytest.mark.parametrize("name", ["complex", "times_complex", "polar"])
def test_forward_ad_real_to_complex(name):
    f = {"complex": lambda m, x: m.complex(x, x * x),
         "times_complex": lambda m, x: m.exp(x * (1 + 1j)),
         "polar": lambda m, x: m.polar(x.abs() + 1, x)}[name]
    xn, tn = RNG.normal(size=4), RNG.normal(size=4)
    with fwAD.dual_level():
        got = fwAD.unpack_dual(f(tl, fwAD.make_dual(tl.tensor(xn), tl.tensor(tn)))).tangent
    _close(got, torch.func.jvp(lambda x: f(torch, x), (torch.tensor(xn),),
                               (torch.tensor(tn),))[1])


def test_forward_ad_refuses_complex_tangent_of_real_primal():
    with fwAD.dual_level():
        with pytest.raises(ValueError, match="make_dual: a complex tangent"):
            fwAD.make_dual(tl.tensor([1.0, 2.0]), tl.tensor([1j, 2.0]))


def test_forward_ad_refuses_op_without_complex_gradient(monkeypatch):
    from tensorlib.ops.registry import REGISTRY
    monkeypatch.setattr(REGISTRY["sin"], "complex", "forward")
    with fwAD.dual_level():
        d = fwAD.make_dual(tl.tensor(_c(4)), tl.tensor(_c(4)))
        with pytest.raises(NotImplementedError, match="sin: gradients through complex"):
            tl.sin(d)


def test_reverse_over_forward_complex():
    zn, tn = _c(3), _c(3)
    z = tl.tensor(zn, requires_grad=True)
    with fwAD.dual_level():
        d = fwAD.make_dual(z, tl.tensor(tn))
        t = fwAD.unpack_dual((tl.exp(d) * d.conj()).abs()).tangent
    t.sum().backward()
    zt = torch.tensor(zn, requires_grad=True)
    _, tt = torch.func.jvp(lambda z: (torch.exp(z) * z.conj()).abs(), (zt,),
                           (torch.tensor(tn),))
    tt.sum().backward()
    _close(z.grad, zt.grad)


# --- (4) custom Functions, tl.func, vmap ------------------------------------------------
def _square_fn(lib):
    class Sq(lib.autograd.Function):
        @staticmethod
        def forward(ctx, z):
            ctx.save_for_backward(z)
            return z * z

        @staticmethod
        def backward(ctx, g):
            (z,) = ctx.saved_tensors
            return g * (2 * z).conj()
    return Sq


def test_custom_function_complex_output():
    zn, wn = _c(3), _c(3)
    z = tl.tensor(zn, requires_grad=True)
    y = _square_fn(tl).apply(z)
    assert y.requires_grad and y.dtype == tl.complex128
    (y * tl.tensor(wn)).real.sum().backward()
    zt = torch.tensor(zn, requires_grad=True)
    (_square_fn(torch).apply(zt) * torch.tensor(wn)).real.sum().backward()
    _close(z.grad, zt.grad)


def test_func_grad_vjp_jvp():
    zn, wn = _c(3), _c(3)

    def loss(m):
        return lambda z: (m.exp(z) * (m.tensor(wn) if m is tl else torch.tensor(wn))).abs().sum()

    _close(tl.func.grad(loss(tl))(tl.tensor(zn)), torch.func.grad(loss(torch))(torch.tensor(zn)))
    _, v = tl.func.vjp(lambda z: tl.sin(z) * z, tl.tensor(zn))
    _, vt = torch.func.vjp(lambda z: torch.sin(z) * z, torch.tensor(zn))
    _close(v(tl.tensor(wn))[0], vt(torch.tensor(wn))[0])
    _, t = tl.func.jvp(lambda z: tl.sin(z) * z.conj(), (tl.tensor(zn),), (tl.tensor(wn),))
    _, tt = torch.func.jvp(lambda z: torch.sin(z) * z.conj(), (torch.tensor(zn),),
                           (torch.tensor(wn),))
    _close(t, tt)


VMAP_CASES = {
    "exp": lambda m, z: m.exp(z),
    "abs": lambda m, z: z.abs(),
    "conj": lambda m, z: z.conj() * 1,
    "parts": lambda m, z: z.real * 2 + z.imag,
    "angle": lambda m, z: m.angle(z),
    "sgn": lambda m, z: m.sgn(z),
    "sum": lambda m, z: (z * z).sum(),
    "var": lambda m, z: m.var(z),
    "view_as_real": lambda m, z: m.view_as_real(z * 1),
    "outer": lambda m, z: z[:, None] * z.conj()[None, :],
    "fft": lambda m, z: m.fft.fft(z),
}


@pytest.mark.parametrize("name", sorted(VMAP_CASES))
def test_vmap_matches_torch(name):
    f = VMAP_CASES[name]
    zn = _c(4, 3)
    got = tl.vmap(lambda z: f(tl, z))(tl.tensor(zn))
    ref = torch.vmap(lambda z: f(torch, z))(torch.tensor(zn))
    assert got.dtype == tl.float64 if ref.dtype == torch.float64 else got.dtype == tl.complex128
    _close(got, ref)


def test_vmap_matmul_and_grad():
    zn, wn = _c(4, 3), _c(3, 2)
    _close(tl.vmap(lambda z: z @ tl.tensor(wn))(tl.tensor(zn)),
           torch.vmap(lambda z: z @ torch.tensor(wn))(torch.tensor(zn)))
    got = tl.vmap(tl.func.grad(lambda z: tl.exp(z).abs().sum()))(tl.tensor(zn))
    ref = torch.vmap(torch.func.grad(lambda z: torch.exp(z).abs().sum()))(torch.tensor(zn))
    _close(got, ref)


# --- (5) ONNX ------------------------------------------------------------------------------
def test_onnx_refuses_complex_graph(tmp_path):
    z = tl.tensor(_c(3))
    with tl.capture(z) as g:
        y = tl.exp(z).abs()
    g.set_outputs(y)
    with pytest.raises(tl.onnx.UnsupportedOpError, match=r"complex tensors.*\(exp\)"):
        g.to_onnx(tmp_path / "c.onnx")


def test_onnx_refuses_complex_inside_real_graph(tmp_path):
    x = tl.tensor(RNG.normal(size=8))
    with tl.capture(x) as g:
        y = tl.fft.rfft(x).abs().sum()
    g.set_outputs(y)
    with pytest.raises(tl.onnx.UnsupportedOpError, match=r"%1 complex128\[5\] \(fft_r2c\)"):
        g.to_onnx(tmp_path / "c.onnx")


@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize("norm", ["backward", "ortho", "forward"])
@pytest.mark.parametrize("dim", [-1, 0])
@pytest.mark.parametrize("dt", [tl.float32, tl.float64])
def test_onnx_exports_view_as_real_rfft_as_dft(tmp_path, opset, norm, dim, dt):
    ort = pytest.importorskip("onnxruntime")
    xn = RNG.normal(size=(3, 8))
    x = tl.tensor(xn, dtype=dt)
    with tl.capture(x) as g:
        y = tl.view_as_real(tl.fft.rfft(x, dim=dim, norm=norm)) * 2
    g.set_outputs(y)
    g.to_onnx(tmp_path / "r.onnx", opset=opset)
    s = ort.InferenceSession(str(tmp_path / "r.onnx"))
    got = s.run(None, {s.get_inputs()[0].name: x.numpy()})[0]
    ref = torch.view_as_real(torch.fft.rfft(torch.tensor(xn), dim=dim, norm=norm)) * 2
    assert got.dtype == x.numpy().dtype
    tol = 1e-5 if dt == tl.float32 else 1e-10
    np.testing.assert_allclose(got, ref.numpy(), rtol=tol, atol=tol)


def test_onnx_rfft_read_as_complex_too_is_refused(tmp_path):
    x = tl.tensor(RNG.normal(size=8))
    with tl.capture(x) as g:
        f = tl.fft.rfft(x)
        y = tl.view_as_real(f).sum() + f.abs().sum()
    g.set_outputs(y)
    with pytest.raises(tl.onnx.UnsupportedOpError, match="fft_r2c"):
        g.to_onnx(tmp_path / "c.onnx")


def test_onnx_unsupported_lists_complex_ops():
    from pathlib import Path

    from tensorlib.onnx.rules import unsupported_ops
    from tensorlib.ops.registry import REGISTRY
    names = ["conj", "real", "imag", "view_as_real", "view_as_complex", "complex",
             "angle_complex", "sgn_complex", "fft_c2c", "fft_r2c", "fft_c2r", "fft_resize"]
    table = unsupported_ops()
    doc = (Path(tl.__file__).resolve().parents[1] / "docs" / "onnx_ops.md").read_text()
    for n in names:
        if n in REGISTRY:
            assert "complex" in table[n], n
            assert f"`{n}`" in doc, n
