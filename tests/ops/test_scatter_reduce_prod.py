"""GNN trial 19: scatter_reduce('prod') keeps segments independent (a NaN/inf in one
target's values reaches no other target's gradients), prod stays dynamic under capture and
exports as ScatterElements(reduction='mul'), and ONNX export without an opset picks the one
amax/amin needs."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")


def _both(fn, *arrays, grads=(0, 1)):
    """fn run on tensorlib and torch tensors: (values, grads) of each."""
    res = []
    for M in (tl, torch):
        ts = [M.tensor(a, requires_grad=i in grads) if a.dtype.kind == "f" else M.tensor(a)
              for i, a in enumerate(arrays)]
        out = fn(M, *ts)
        w = M.tensor(np.linspace(0.5, 2.0, int(np.prod(out.shape))).reshape(tuple(out.shape)),
                     dtype=out.dtype)
        (out * w).sum().backward()
        res.append((out.detach().numpy(), [ts[i].grad.numpy() for i in grads]))
    return res


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("include_self", [True, False])
def test_prod_nonfinite_value_stays_in_its_segment(dtype, bad, include_self):
    src = np.array([5., bad, 2., 3., 7.], dtype)
    base = np.array([1., 1., 1., -2.], dtype)
    idx = np.array([0, 0, 2, 2, 1])
    res = []
    for M in (tl, torch):
        s, b = M.tensor(src, requires_grad=True), M.tensor(base, requires_grad=True)
        out = b.scatter_reduce(0, M.tensor(idx), s, "prod", include_self=include_self)
        out[1:].sum().backward()
        res.append((s.grad.numpy(), b.grad.numpy()))
    (sg, bg), (tsg, tbg) = res
    assert np.isfinite(sg[2:]).all() and np.isfinite(bg[1:]).all()
    np.testing.assert_allclose(sg, tsg, equal_nan=True)
    np.testing.assert_allclose(bg, tbg, equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), dim=st.integers(0, 1), include_self=st.booleans(),
       zeros=st.integers(0, 3), reduce=st.sampled_from(["prod", "amax", "amin"]))
def test_scatter_reduce_matches_torch(seed, dim, include_self, zeros, reduce):
    r = np.random.default_rng(seed)
    x = r.standard_normal((4, 5))
    src = r.standard_normal((6, 5)) if dim == 0 else r.standard_normal((4, 6))
    src.flat[r.integers(0, src.size, zeros)] = 0.0
    if reduce != "prod":
        src = np.round(src)                        # ties
    idx = r.integers(0, 4 if dim == 0 else 5, src.shape)
    (a, ga), (b, gb) = _both(lambda M, x, s, i: x.scatter_reduce(dim, i, s, reduce,
                                                                include_self=include_self),
                             x, src, idx)
    np.testing.assert_allclose(a, b, rtol=1e-12)
    for u, v in zip(ga, gb):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-12)


def test_prod_grad_of_grad_matches_torch():
    r = np.random.default_rng(3)
    x, src, idx = r.standard_normal(3), r.standard_normal(7), np.array([0, 0, 1, 1, 1, 2, 0])
    res = []
    for M in (tl, torch):
        a, s = M.tensor(x, requires_grad=True), M.tensor(src, requires_grad=True)
        out = a.scatter_reduce(0, M.tensor(idx), s, "prod")
        (gs,) = (tl.grad if M is tl else torch.autograd.grad)((out ** 2).sum(), [s],
                                                             create_graph=True)
        ga, gs2 = (tl.grad if M is tl else torch.autograd.grad)((gs ** 3).sum(), [a, s])
        res.append((ga.numpy(), gs2.numpy()))
    for u, v in zip(*res):
        np.testing.assert_allclose(u, v, rtol=1e-10)


def _prod_fn(x, dst):
    return tl.ones_like(x).scatter_reduce(0, dst.unsqueeze(1).expand(-1, x.shape[1]), x,
                                          "prod", include_self=False)


def test_prod_stays_dynamic_under_capture():
    f = tl.function(_prod_fn, input_signature=[tl.TensorSpec((None, 2)),
                                               tl.TensorSpec((None,), "int64")])
    r = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for e in (4, 9, 17):
            x = tl.tensor(r.standard_normal((e, 2)).astype("f4"))
            d = tl.tensor(r.integers(0, 3, e))
            with tl.no_grad():
                got = f(x, d)
            np.testing.assert_allclose(got.numpy(), _prod_fn(x, d).numpy(), rtol=1e-6)
        g = f.get_graph(tl.randn(4, 2), tl.tensor([0, 0, 1, 1]))
    assert not g.size_specialized


class _Prod(tl.nn.Module):
    def forward(self, x, dst):
        return _prod_fn(x, dst)


class _Max(tl.nn.Module):
    def forward(self, x, dst):
        return tl.zeros_like(x).scatter_reduce(0, dst.unsqueeze(1).expand(-1, x.shape[1]), x,
                                               "amax", include_self=False)


def _onnx_run(path, x, d):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, {names[0]: x, names[1]: d})[0]


@pytest.mark.parametrize("opset", [16, 18])
def test_prod_exports_dynamic(tmp_path, opset):
    onnx = pytest.importorskip("onnx")
    p = tmp_path / "prod.onnx"
    tl.onnx.export(_Prod(), (tl.randn(4, 2), tl.tensor([0, 0, 1, 1])), p,
                   dynamic_axes={0: [0], 1: [0]}, opset=opset)
    ops = {n.op_type for n in onnx.load(str(p)).graph.node}
    assert "ScatterElements" in ops
    r = np.random.default_rng(1)
    for e in (1, 6, 11):
        x, d = r.standard_normal((e, 2)).astype("f4"), r.integers(0, 5, e)
        want = _prod_fn(tl.tensor(x), tl.tensor(d)).numpy()
        np.testing.assert_allclose(_onnx_run(p, x, d), want, rtol=1e-6)


def test_prod_refuses_opset_15_naming_16():
    pytest.importorskip("onnx")
    with pytest.raises(tl.onnx.UnsupportedOpError, match=r"opset >= 16.*pass opset=16"):
        tl.onnx.export(_Prod(), (tl.randn(4, 2), tl.tensor([0, 0, 1, 1])), "/dev/null",
                       opset=15)


def test_export_without_opset_picks_18_for_amax(tmp_path):
    onnx = pytest.importorskip("onnx")
    p = tmp_path / "max.onnx"
    tl.onnx.export(_Max(), (tl.randn(4, 2), tl.tensor([0, 2, 1, 1])), p,
                   dynamic_axes={0: [0], 1: [0]})
    m = onnx.load(str(p))
    assert [o.version for o in m.opset_import if o.domain == ""] == [18]
    x, d = np.random.default_rng(2).standard_normal((7, 2)).astype("f4"), np.arange(7) % 3
    want = _Max()(tl.tensor(x), tl.tensor(d)).numpy()
    np.testing.assert_allclose(_onnx_run(p, x, d), want, rtol=1e-6)
    # a model that needs nothing newer stays at the default opset 17
    q = tmp_path / "prod.onnx"
    tl.onnx.export(_Prod(), (tl.randn(4, 2), tl.tensor([0, 0, 1, 1])), q)
    assert [o.version for o in onnx.load(str(q)).opset_import if o.domain == ""] == [17]


def test_explicit_opset_17_still_refuses_amax():
    pytest.importorskip("onnx")
    with pytest.raises(tl.onnx.UnsupportedOpError, match=r"opset >= 18.*pass opset=18"):
        tl.onnx.export(_Max(), (tl.randn(4, 2), tl.tensor([0, 2, 1, 1])), "/dev/null",
                       opset=17)


def test_prod_index_out_of_range_refused():
    with pytest.raises(IndexError, match="scatter_reduce"):
        tl.ones(3).scatter_reduce(0, tl.tensor([0, 3]), tl.tensor([1., 2.]), "prod")


@pytest.mark.parametrize("model", [_Prod, _Max])
def test_exported_scatter_reductions_load_back(tmp_path, model):
    """tl.onnx.load maps ScatterElements reduction='mul'/'max' on 2-d data back to the ops."""
    pytest.importorskip("onnx")
    p = tmp_path / "m.onnx"
    tl.onnx.export(model(), (tl.randn(4, 2), tl.tensor([0, 0, 1, 1])), p,
                   dynamic_axes={0: [0], 1: [0]}, opset=18)
    loaded = tl.onnx.load(p)
    r = np.random.default_rng(2)
    for e in (3, 8):
        x, d = r.standard_normal((e, 2)).astype("f4"), r.integers(0, e, e)
        want = model()(tl.tensor(x), tl.tensor(d)).numpy()
        np.testing.assert_allclose(loaded(tl.tensor(x), tl.tensor(d)).numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_flat_writes_match_torch(dim):
    """scatter with a number or tensor src writes at linear positions (one fancy
    assignment): values, repeated targets' last write, gradients, vs PyTorch."""
    rng = np.random.default_rng(dim + 5)
    x = rng.standard_normal((6, 9))
    idx = rng.integers(0, x.shape[dim], (4, 5))
    src = rng.standard_normal((4, 5))
    t, tt = tl.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    s, ts = tl.tensor(src, requires_grad=True), torch.tensor(src, requires_grad=True)
    np.testing.assert_array_equal(t.scatter(dim, tl.tensor(idx), 2.5).detach().numpy(),
                                  tt.scatter(dim, torch.tensor(idx), 2.5).detach().numpy())
    uniq = np.argsort(rng.random((4, 5)), axis=dim)[:, :5] if dim else None
    if uniq is not None:     # unique targets along the dim: gradients are defined
        w = rng.standard_normal((6, 9))
        (t.scatter(dim, tl.tensor(uniq), s) * tl.tensor(w)).sum().backward()
        (tt.scatter(dim, torch.tensor(uniq), ts) * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy())
        np.testing.assert_allclose(s.grad.numpy(), ts.grad.numpy())
