"""ONNX export of a captured graph's random draws (MC dropout, a VAE's reparameterised sample,
noise injection, ``tl.rand``/``randint``/``randperm``) and their import back.

The draws are unseeded in ONNX, so the checks are on shapes, on fresh values per run and on
the statistics of large samples, with tolerances of 6 standard errors (no seed is fixed, and
a false failure is then about one in 10^8); the deterministic parts of the same graphs must
match eager tensorlib (and PyTorch where it has the same model)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

Z = 6.0        # standard errors of every statistical check


def _mean_ok(a, mean, var):
    a = np.asarray(a, np.float64).reshape(-1)
    assert abs(a.mean() - mean) <= Z * math.sqrt(var / a.size), (a.mean(), mean)


def _var_ok(a, var, kurtosis=3.0):
    # the sample variance's standard error: sqrt((kurtosis - 1) / n) * var
    a = np.asarray(a, np.float64).reshape(-1)
    se = math.sqrt((kurtosis - 1.0) / a.size) * var
    assert abs(a.var() - var) <= Z * se, (a.var(), var)


def _rate_ok(hits, n, p):
    assert abs(hits / n - p) <= Z * math.sqrt(p * (1 - p) / n), (hits / n, p)


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _capture(fn, specs, *example):
    """``fn``'s graph as traced (modules keep their train/eval mode), without autograd."""
    f = tl.function(fn, input_signature=specs)
    with tl.no_grad():
        return f.get_graph(*example)


def _export_graph(g, tmp_path, opset=None, name="m.onnx"):
    path = tmp_path / name
    tl.onnx.export_graph(g, path, opset=opset)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return path


def _ops(path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


# --- MC dropout -----------------------------------------------------------------------------
class MCNet(tl.nn.Module):
    """Linear, ReLU, Dropout, Linear: returns the deterministic hidden layer too."""

    def __init__(self, p=0.3):
        super().__init__()
        self.l1, self.l2 = tl.nn.Linear(6, 16), tl.nn.Linear(16, 3)
        self.drop = tl.nn.Dropout(p)

    def forward(self, x):
        h = self.l1(x).relu()
        return h, self.l2(self.drop(h))


def test_mc_dropout_train_mode_graph_runs_in_onnxruntime(tmp_path):
    m = MCNet().train()
    spec = [tl.TensorSpec((None, 6), tl.float32)]
    g = _capture(lambda x: m(x), spec, tl.randn(2, 6))
    path = _export_graph(g, tmp_path)
    ops = _ops(path)
    assert "RandomUniformLike" in ops and "ConstantOfShape" in ops   # follows the batch
    sess = _session(path)
    name = sess.get_inputs()[0].name
    m.eval()
    for b in (1, 3, 7):
        x = np.random.default_rng(b).standard_normal((b, 6)).astype(np.float32)
        h1, y1 = sess.run(None, {name: x})
        h2, y2 = sess.run(None, {name: x})
        assert h1.shape == (b, 16) and y1.shape == (b, 3)
        h_eager = m(tl.tensor(x))[0].numpy()
        np.testing.assert_allclose(h1, h_eager, rtol=1e-6, atol=1e-6)   # deterministic part
        np.testing.assert_array_equal(h1, h2)
        # fresh masks on every run: one row has ~8 live units after the ReLU, so two runs'
        # masks agree on all of them ~1% of the time; five more runs make that ~1e-10
        assert any(not np.array_equal(y1, sess.run(None, {name: x})[1]) for _ in range(5))
    # the MC predictive mean converges to the eval-mode output (dropout is unbiased)
    x = np.ones((1, 6), np.float32)
    big = np.repeat(x, 20000, axis=0)
    _, ys = sess.run(None, {name: big})
    y_eval = m(tl.tensor(x))[1].numpy()[0]
    sd = ys.std(axis=0)
    assert np.all(np.abs(ys.mean(axis=0) - y_eval) <= Z * sd / math.sqrt(len(ys)) + 1e-6)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_keep_rate_and_scale(tmp_path, p):
    drop = tl.nn.Dropout(p).train()
    g = _capture(lambda x: drop(x), [tl.TensorSpec((None, 100), tl.float32)],
                 tl.ones(2, 100))
    sess = _session(_export_graph(g, tmp_path))
    x = np.full((1000, 100), 2.0, np.float32)
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    kept = y != 0
    _rate_ok(int(kept.sum()), y.size, 1 - p)
    # the kept values are scaled by 1 / (1 - p), as PyTorch's dropout
    ty = torch.nn.functional.dropout(torch.full((1000, 100), 2.0), p, training=True).numpy()
    np.testing.assert_allclose(np.unique(y[kept]), np.unique(ty[ty != 0]), rtol=1e-6)


def test_functional_dropout_training_true_exports_with_tl_onnx_export(tmp_path):
    # the trial's case: tl.onnx.export puts modules in eval mode, but F.dropout(training=True)
    # draws regardless (an MC-dropout predictive)
    class MC(tl.nn.Module):
        def __init__(self):
            super().__init__()
            self.l = tl.nn.Linear(4, 8)

        def forward(self, x):
            return F.dropout(self.l(x), 0.5, training=True)

    path = tmp_path / "mc.onnx"
    tl.onnx.export(MC(), (tl.randn(2, 4),), path, dynamic_axes={0: [0]})
    sess = _session(path)
    for b in (1, 3, 7):
        y = sess.run(None, {"input0": np.ones((b, 4), np.float32)})[0]
        assert y.shape == (b, 8)
    y = sess.run(None, {"input0": np.ones((5000, 4), np.float32)})[0]
    _rate_ok(int((y == 0).sum()), y.size, 0.5)


# --- VAE sampler, randn_like on a dynamic batch ---------------------------------------------
class VAE(tl.nn.Module):
    def __init__(self, d=5, k=8):
        super().__init__()
        self.mu, self.logvar, self.dec = tl.nn.Linear(d, k), tl.nn.Linear(d, k), tl.nn.Linear(k, d)

    def forward(self, x):
        mu, logvar = self.mu(x), self.logvar(x)
        std = (0.5 * logvar).exp()
        z = mu + std * tl.randn_like(std)          # the reparameterisation trick
        return mu, std, z, self.dec(z)


def test_vae_reparameterised_sampler(tmp_path):
    m = VAE()
    path = tmp_path / "vae.onnx"
    tl.onnx.export(m, (tl.randn(3, 5),), path, dynamic_axes={0: [0]},
                   output_names=["mu", "std", "z", "recon"])
    assert "RandomNormalLike" in _ops(path)
    sess = _session(path)
    for b in (1, 3, 7):
        x = np.random.default_rng(b).standard_normal((b, 5)).astype(np.float32)
        mu, std, z, rec = sess.run(None, {"input0": x})
        assert mu.shape == std.shape == z.shape == (b, 8) and rec.shape == (b, 5)
        emu, estd, _, _ = m(tl.tensor(x))
        np.testing.assert_allclose(mu, emu.numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(std, estd.numpy(), rtol=1e-6, atol=1e-6)
        assert not np.array_equal(z, sess.run(None, {"input0": x})[2])
    # the decoder is deterministic given z: recon == dec(z) as eager computes it
    x = np.random.default_rng(0).standard_normal((10000, 5)).astype(np.float32)
    mu, std, z, rec = sess.run(None, {"input0": x})
    np.testing.assert_allclose(rec, m.dec(tl.tensor(z)).numpy(), rtol=1e-5, atol=1e-5)
    eps = (z.astype(np.float64) - mu) / std
    _mean_ok(eps, 0.0, 1.0)
    _var_ok(eps, 1.0)


def test_randn_like_noise_injection_dynamic_batch(tmp_path):
    def noisy(x):
        return x + 0.5 * tl.randn_like(x)

    g = _capture(noisy, [tl.TensorSpec((None, 4), tl.float64)], tl.zeros(2, 4, dtype=tl.float64))
    sess = _session(_export_graph(g, tmp_path))
    name = sess.get_inputs()[0].name
    for b in (1, 3, 7):
        y = sess.run(None, {name: np.zeros((b, 4))})[0]
        assert y.shape == (b, 4) and y.dtype == np.float64
    y = sess.run(None, {name: np.full((25000, 4), 3.0)})[0]
    _mean_ok(y, 3.0, 0.25)
    _var_ok(y, 0.25)


# --- static shapes, other distributions ---------------------------------------------------------
def _draws(fn, tmp_path, opset=None):
    """The graph of ``fn(x)`` (``x`` a dummy (2,) input), exported and run twice in ORT."""
    g = _capture(fn, [tl.TensorSpec((2,), tl.float32)], tl.zeros(2))
    path = _export_graph(g, tmp_path, opset)
    sess = _session(path)
    feed = {sess.get_inputs()[0].name: np.zeros(2, np.float32)}
    return sess.run(None, feed), sess.run(None, feed), path


def test_rand_static_shape(tmp_path):
    (a,), (b,), path = _draws(lambda x: tl.rand(200, 500) + x.sum(), tmp_path)
    assert "RandomUniform" in _ops(path)
    assert a.shape == (200, 500) and a.dtype == np.float32 and not np.array_equal(a, b)
    assert a.min() >= 0 and a.max() < 1
    _mean_ok(a, 0.5, 1 / 12)
    _var_ok(a, 1 / 12, kurtosis=1.8)


@pytest.mark.parametrize("dtype", [tl.float32, tl.float64, tl.float16])
@pytest.mark.parametrize("low,high", [(-2.0, 3.0), (0.1, 0.7), (2.0, 2.0)])
def test_uniform_params_and_dtypes(tmp_path, dtype, low, high):
    # 0.1 is not a float32: a float64 draw keeps it exactly (affine of a standard draw)
    (a,), _, _ = _draws(lambda x: tl.uniform(low, high, (100000,), dtype=dtype), tmp_path)
    assert a.dtype == np.dtype(dtype)
    assert a.min() >= low - 1e-3 and a.max() <= high + 1e-3
    w = high - low
    if w == 0:
        np.testing.assert_array_equal(a, np.asarray(low, a.dtype))
        return
    _mean_ok(a, (low + high) / 2, w * w / 12)
    _var_ok(a, w * w / 12, kurtosis=1.8)


@pytest.mark.parametrize("mean,std", [(1.5, 0.25), (0.1, 0.3), (-4.0, 0.0)])
def test_normal_params(tmp_path, mean, std):
    (a,), _, _ = _draws(lambda x: tl.normal(mean, std, (100000,), dtype=tl.float64), tmp_path)
    if std == 0:
        np.testing.assert_array_equal(a, mean)
        return
    _mean_ok(a, mean, std * std)
    _var_ok(a, std * std)


def test_zero_dim_draw(tmp_path):
    (a, b), (c, _), _ = _draws(lambda x: (tl.rand(()), tl.randn(())), tmp_path)
    assert a.shape == () and b.shape == () and 0 <= a < 1 and a != c


def test_randint_frequencies_and_dtype(tmp_path):
    (a, b), _, path = _draws(
        lambda x: (tl.randint(3, 9, (60000,)), tl.randint(-5, 2, (10,), dtype=tl.int32)),
        tmp_path)
    assert a.dtype == np.int64 and b.dtype == np.int32
    assert a.min() >= 3 and a.max() <= 8 and b.min() >= -5 and b.max() <= 1
    counts = np.bincount(a - 3, minlength=6)
    for c in counts:
        _rate_ok(int(c), a.size, 1 / 6)


def test_randint_over_2_53_values_is_refused(tmp_path):
    g = _capture(lambda x: tl.randint(0, 2 ** 60, (3,)), [tl.TensorSpec((2,), tl.float32)],
                 tl.zeros(2))
    with pytest.raises(tl.onnx.UnsupportedOpError, match="randint over"):
        tl.onnx.export_graph(g, tmp_path / "m.onnx")


def test_randperm_is_a_uniform_permutation(tmp_path):
    (a, e), (b, _), _ = _draws(lambda x: (tl.randperm(10), tl.randperm(0)), tmp_path)
    assert sorted(a.tolist()) == list(range(10)) and a.dtype == np.int64 and e.shape == (0,)
    g = _capture(lambda x: tl.randperm(4), [tl.TensorSpec((2,), tl.float32)], tl.zeros(2))
    sess = _session(_export_graph(g, tmp_path, name="p.onnx"))
    firsts = np.array([sess.run(None, {sess.get_inputs()[0].name: np.zeros(2, np.float32)})[0][0]
                       for _ in range(4000)])
    for k in range(4):
        _rate_ok(int((firsts == k).sum()), firsts.size, 0.25)


def test_bernoulli_and_multinomial_draw_through_uniforms(tmp_path):
    def fn(p):
        return tl.bernoulli(p), tl.bernoulli(tl.zeros(5000, 4), 0.3)

    g = _capture(fn, [tl.TensorSpec((None, 3), tl.float32)], tl.full((2, 3), 0.5))
    sess = _session(_export_graph(g, tmp_path))
    probs = np.tile(np.array([[0.05, 0.5, 0.9]], np.float32), (20000, 1))
    d, e = sess.run(None, {sess.get_inputs()[0].name: probs})
    assert d.shape == (20000, 3) and set(np.unique(d)) <= {0.0, 1.0}
    for j, p in enumerate((0.05, 0.5, 0.9)):
        _rate_ok(int(d[:, j].sum()), 20000, p)
    _rate_ok(int(e.sum()), e.size, 0.3)
    # multinomial without replacement: Gumbel top-k over uniforms exports (TopK)
    g = _capture(lambda w: tl.multinomial(w, 2), [tl.TensorSpec((None, 4), tl.float32)],
                 tl.ones(2, 4))
    sess = _session(_export_graph(g, tmp_path, name="mn.onnx"))
    w = np.tile(np.array([[0.0, 1.0, 1.0, 2.0]], np.float32), (5, 1))
    s = sess.run(None, {sess.get_inputs()[0].name: w})[0]
    assert s.shape == (5, 2) and (s != 0).all() and (s[:, 0] != s[:, 1]).all()


def test_low_opset_exports(tmp_path):
    (a,), _, _ = _draws(lambda x: tl.rand(1000) < 0.25, tmp_path, opset=13)
    assert a.dtype == np.bool_


def test_unknown_distribution_is_refused_by_name(tmp_path):
    g = _capture(lambda x: x + tl.rand(2), [tl.TensorSpec((2,), tl.float32)], tl.zeros(2))
    [n] = [n for n in g.nodes if n.op == "random"]
    n.attrs["dist"] = "gamma"
    with pytest.raises(tl.onnx.UnsupportedOpError, match="'gamma'.*no ONNX form"):
        tl.onnx.export_graph(g, tmp_path / "m.onnx")


# --- import ---------------------------------------------------------------------------------------
def test_round_trip_through_tensorlib_importer(tmp_path):
    m = MCNet(p=0.5).train()
    g = _capture(lambda x: m(x), [tl.TensorSpec((None, 6), tl.float32)], tl.randn(2, 6))
    gm = tl.onnx.load(str(_export_graph(g, tmp_path)))
    m.eval()
    for b in (1, 3, 7):
        x = tl.randn(b, 6)
        (h1, y1), (h2, y2) = gm(x), gm(x)
        assert tuple(y1.shape) == (b, 3)
        np.testing.assert_allclose(h1.numpy(), m(x)[0].numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(h1.numpy(), h2.numpy())
        assert not np.array_equal(y1.numpy(), y2.numpy())
    # the imported draw reads the batch from the graph's values (no filled tensor made)
    assert sum(n.op == "random" for n in gm.graph.nodes) == 1
    assert not any(n.op == "fill" for n in gm.graph.nodes)
    # the dropout statistics survive the round trip
    drop = tl.nn.Dropout(0.25).train()
    g = _capture(lambda x: drop(x), [tl.TensorSpec((None, 50), tl.float32)], tl.ones(2, 50))
    gm = tl.onnx.load(str(_export_graph(g, tmp_path, name="d.onnx")))
    y = gm(tl.ones(2000, 50)).numpy()
    _rate_ok(int((y != 0).sum()), y.size, 0.75)
    np.testing.assert_allclose(np.unique(y[y != 0]), [1 / 0.75], rtol=1e-6)


def test_round_trip_vae_and_static_draws(tmp_path):
    path = tmp_path / "vae.onnx"
    m = VAE()
    tl.onnx.export(m, (tl.randn(3, 5),), path, dynamic_axes={0: [0]})
    gm = tl.onnx.load(str(path))
    x = tl.randn(8000, 5)
    mu, std, z, _ = gm(x)
    emu, estd, _, _ = m(x)
    np.testing.assert_allclose(mu.numpy(), emu.numpy(), rtol=1e-6, atol=1e-6)
    eps = (z.numpy().astype(np.float64) - mu.numpy()) / std.numpy()
    _mean_ok(eps, 0.0, 1.0)
    _var_ok(eps, 1.0)
    (a, b), _, p2 = _draws(lambda x: (tl.normal(0.1, 0.3, (50000,), dtype=tl.float64),
                                      tl.randint(3, 9, (50000,))), tmp_path)
    ga, gb = tl.onnx.load(str(p2))(tl.zeros(2))
    _mean_ok(ga.numpy(), 0.1, 0.09)
    assert gb.numpy().min() >= 3 and gb.numpy().max() <= 8 and gb.dtype == tl.int64


def _model(nodes, inputs, outputs, inits=(), opset=17):
    from onnx import helper
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, elem, shape):
    from onnx import helper
    return helper.make_tensor_value_info(name, elem, shape)


@pytest.mark.parametrize("training", [True, False])
def test_import_dropout_training_mode(training):
    from onnx import TensorProto as T
    from onnx import helper, numpy_helper
    nodes = [helper.make_node("Dropout", ["x", "r", "t"], ["y", "mask"])]
    inits = [numpy_helper.from_array(np.asarray(0.4, np.float32), "r"),
             numpy_helper.from_array(np.asarray(training), "t")]
    model = _model(nodes, [_vi("x", T.FLOAT, ["B", 50])],
                   [_vi("y", T.FLOAT, None), _vi("mask", T.BOOL, None)], inits)
    gm = tl.onnx.load(model)
    x = np.full((2000, 50), 3.0, np.float32)
    y, mask = (v.numpy() for v in gm(tl.tensor(x)))
    ref_y, ref_mask = _session_of(model).run(None, {"x": x})
    if not training:          # inference: the identity and an all-true mask, as onnxruntime
        np.testing.assert_array_equal(y, x)
        np.testing.assert_array_equal(mask, ref_mask)
        assert mask.all()
        return
    _rate_ok(int(mask.sum()), mask.size, 0.6)
    _rate_ok(int(ref_mask.sum()), ref_mask.size, 0.6)
    np.testing.assert_array_equal(y != 0, mask)
    np.testing.assert_allclose(np.unique(y[mask]), np.unique(ref_y[ref_mask]), rtol=1e-6)


def _session_of(model):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_import_dropout_run_time_training_mode_is_refused():
    from onnx import TensorProto as T
    from onnx import helper
    nodes = [helper.make_node("Dropout", ["x", "", "t"], ["y"])]
    model = _model(nodes, [_vi("x", T.FLOAT, [4]), _vi("t", T.BOOL, [])],
                   [_vi("y", T.FLOAT, None)])
    with pytest.raises(NotImplementedError, match="training_mode is computed at run time"):
        tl.onnx.load(model)


def test_import_random_ops_match_onnxruntime_statistics():
    from onnx import TensorProto as T
    from onnx import helper
    nodes = [helper.make_node("RandomNormal", [], ["n"], shape=[40000], mean=2.0, scale=0.5,
                              dtype=T.DOUBLE),
             helper.make_node("RandomUniformLike", ["x"], ["u"], low=-1.0, high=3.0),
             helper.make_node("Bernoulli", ["p"], ["b"]),
             helper.make_node("RandomNormalLike", ["x"], ["z"], dtype=T.DOUBLE)]
    model = _model(nodes, [_vi("x", T.FLOAT, ["B", 20]), _vi("p", T.FLOAT, ["B", 20])],
                   [_vi(k, t, None) for k, t in (("n", T.DOUBLE), ("u", T.FLOAT),
                                                 ("b", T.FLOAT), ("z", T.DOUBLE))])
    gm = tl.onnx.load(model)
    x = np.zeros((2000, 20), np.float32)
    p = np.full((2000, 20), 0.2, np.float32)
    mine = [v.numpy() for v in gm(tl.tensor(x), tl.tensor(p))]
    ref = _session_of(model).run(None, {"x": x, "p": p})
    for got in (mine, ref):
        n, u, b, z = got
        assert n.shape == (40000,) and n.dtype == np.float64
        assert u.shape == b.shape == z.shape == (2000, 20)
        assert u.dtype == b.dtype == np.float32 and z.dtype == np.float64
        _mean_ok(n, 2.0, 0.25)
        _var_ok(n, 0.25)
        assert u.min() >= -1 and u.max() < 3
        _mean_ok(u, 1.0, 16 / 12)
        _mean_ok(z, 0.0, 1.0)
    # Bernoulli: 1 with probability p, as the ONNX reference evaluator draws (onnxruntime 1.32's
    # CPU kernel draws 1 with probability 1 - p, which is why the exporter writes
    # RandomUniform + Less for tl.bernoulli rather than the Bernoulli op)
    from onnx.reference import ReferenceEvaluator
    spec = ReferenceEvaluator(model).run(None, {"x": x, "p": p})[2]
    for b in (mine[2], spec):
        _rate_ok(int(b.sum()), b.size, 0.2)
    small = gm(tl.zeros(3, 20), tl.zeros(3, 20))
    assert tuple(small[1].shape) == (3, 20) and not small[2].numpy().any()
