"""Graph-capture gaps from user trials 23: size comparisons recorded as predicates (nanoGPT's
``assert t <= block_size``), cache thrash under cycling shapes, edge_index's fixed leading 2
under dynamic shapes, zero_grad(set_to_none=False) steps with unused parameters."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn

torch = pytest.importorskip("torch")


def _branchy(lib):
    def f(x):
        if x.shape[0] > 3:
            return (x * 2.0).sin()
        return x.cos() - 1.0
    return f


# --- (1) size predicates ----------------------------------------------------------------
@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(1, 7), min_size=1, max_size=8))
def test_branch_on_a_size_matches_eager_with_one_trace_per_branch(sizes):
    f = tl.function(_branchy(tl), input_signature=[tl.TensorSpec((None, 3), "float64")])
    ref = _branchy(torch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # no escape warning: the size stays dynamic
        for n in sizes:
            x = np.random.default_rng(n).standard_normal((n, 3))
            got = f(tl.tensor(x)).numpy()
            np.testing.assert_allclose(got, ref(torch.tensor(x)).numpy(), rtol=1e-13)
    assert f.trace_count == len({n > 3 for n in sizes}), f.retrace_reasons
    assert all(g.inputs[0].shape == (None, 3) for g in f.graphs)


class _GPTish(nn.Module):
    def __init__(self):
        super().__init__()
        self.e = nn.Embedding(10, 4)
        self.p = nn.Embedding(8, 4)

    def forward(self, idx):
        b, t = idx.size()
        assert t <= 8
        return self.e(idx) + self.p(tl.arange(t))


def _torch_gptish(m, idx):
    e = torch.tensor(m.e.weight.numpy())
    p = torch.tensor(m.p.weight.numpy())
    t = idx.shape[1]
    assert t <= 8
    return e[idx] + p[torch.arange(t)]


def test_assert_bound_traces_once_and_raises_past_it():
    tl.manual_seed(0)
    m = _GPTish()
    f = tl.function(m, input_signature=[tl.TensorSpec((None, None), "int64")])
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tl.no_grad():
            for t in list(range(1, 9)) + [5, 2]:
                idx = rng.integers(0, 10, (2, t))
                np.testing.assert_allclose(f(tl.tensor(idx)).numpy(),
                                           _torch_gptish(m, torch.tensor(idx)).numpy(),
                                           rtol=1e-6)
    assert f.trace_count == 1, f.retrace_reasons
    assert f.graphs[0].size_predicates == [("le", ("dim", 0, 1), 8, True)]
    with pytest.raises(AssertionError), tl.no_grad():
        f(tl.zeros(2, 9, dtype=tl.int64))           # traced again: eager's error
    with tl.no_grad():                              # the first graph still serves
        f(tl.zeros(3, 4, dtype=tl.int64))
    assert f.trace_count == 2


@pytest.mark.parametrize("name, fn, branches", [
    ("min", lambda lib, x: lib.zeros(min(x.shape[0], 4), 3, dtype=x.dtype) + x.sum(),
     lambda n: n < 4),
    ("truth", lambda lib, x: x * (2.0 if x.shape[0] - 2 else 3.0), lambda n: n == 2),
    ("eq two sizes", lambda lib, x: x.sum() if x.shape[0] == x.shape[1] else x.mean(),
     lambda n: n == 3),
    ("float bound", lambda lib, x: x * 2.0 if x.shape[0] >= 2.5 else x, lambda n: n >= 3),
])
def test_other_comparisons_are_predicates(name, fn, branches):
    f = tl.function(lambda x: fn(tl, x), input_signature=[tl.TensorSpec((None, 3),
                                                                           "float64")])
    sizes = (5, 2, 3, 7, 1, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tl.no_grad():
            for n in sizes:
                x = np.random.default_rng(n).standard_normal((n, 3))
                want = fn(torch, torch.tensor(x)).numpy()
                np.testing.assert_allclose(f(tl.tensor(x)).numpy(), want, rtol=1e-13)
    assert f.trace_count == len({branches(n) for n in sizes}), f.retrace_reasons


def test_training_step_with_a_bound_matches_torch_values_and_gradients():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 2))
    wt = tl.tensor(w.copy(), requires_grad=True)
    wr = torch.tensor(w.copy(), requires_grad=True)

    def step(lib, x, w):
        assert x.shape[0] <= 8
        loss = (x @ w).tanh().pow(2).sum()
        loss.backward()
        return loss
    f = tl.function(lambda x: step(tl, x, wt), input_signature=[tl.TensorSpec((None, 3),
                                                                              "float64")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n in (4, 4, 6):
            x = rng.standard_normal((n, 3))
            wt.grad = None
            wr.grad = None
            got = f(tl.tensor(x)).item()
            want = step(torch, torch.tensor(x), wr).item()
            np.testing.assert_allclose(got, want, rtol=1e-13)
            np.testing.assert_allclose(wt.grad.numpy(), wr.grad.numpy(), rtol=1e-12)
        with pytest.raises(AssertionError):
            f(tl.zeros(9, 3, dtype="float64"))


def test_real_escapes_still_fix_the_size():
    def f(x):
        return x * float(x.shape[0])
    g = tl.function(f, input_signature=[tl.TensorSpec((None, 2), "float64")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in (2, 3):
            np.testing.assert_allclose(g(tl.ones(n, 2, dtype="float64")).numpy(), n)
    assert any("traced once per input shape" in str(w.message) for w in caught)
    assert g.trace_count == 2


def test_onnx_export_with_dynamic_axes_assumes_the_traced_outcome(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    tl.manual_seed(0)
    m = _GPTish()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tl.onnx.export(m, (tl.zeros(2, 5, dtype=tl.int64),), tmp_path / "m.onnx",
                       input_names=["idx"], dynamic_axes={"idx": {0: "B", 1: "T"}})
    said = [str(w.message) for w in caught if "assumes" in str(w.message)]
    assert len(said) == 1 and "idx.shape[1] <= 8, as traced" in said[0], said
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    idx = np.random.default_rng(3).integers(0, 10, (3, 7))
    np.testing.assert_allclose(sess.run(None, {"idx": idx})[0],
                               _torch_gptish(m, torch.tensor(idx)).numpy(), rtol=1e-6)


def test_saved_graph_keeps_and_checks_the_predicates(tmp_path):
    tl.manual_seed(0)
    m = _GPTish()
    f = tl.function(m, input_signature=[tl.TensorSpec((None, None), "int64")])
    with tl.no_grad():
        f(tl.zeros(2, 5, dtype=tl.int64))
    tl.save_graph(f, tmp_path / "g.tlg")
    g = tl.load_graph(tmp_path / "g.tlg")
    assert g.graph.size_predicates == [("le", ("dim", 0, 1), 8, True)]
    idx = np.random.default_rng(4).integers(0, 10, (3, 8))
    with tl.no_grad():
        np.testing.assert_allclose(g(tl.tensor(idx)).numpy(),
                                   _torch_gptish(m, torch.tensor(idx)).numpy(), rtol=1e-6)
        with pytest.raises(ValueError, match=r"shape\[1\] <= 8"):
            g(tl.zeros(3, 9, dtype=tl.int64))
        with pytest.raises(ValueError, match=r"shape\[1\] <= 8"):
            f.graphs[0].run({0: tl.zeros(1, 9, dtype=tl.int64)})


# --- (2) cache thrash ----------------------------------------------------------------------
def _cycle_step(max_cached):
    tl.manual_seed(0)
    lin = nn.Linear(3, 1).double()
    opt = tl.optim.SGD(lin.parameters(), lr=0.01)

    def step(x):
        opt.zero_grad()
        loss = lin(x).pow(2).mean()
        loss.backward()
        opt.step()
        return loss
    kw = {} if max_cached is None else {"max_cached": max_cached}
    return tl.function(step, **kw), lin


@pytest.mark.parametrize("max_cached", [None, 8])
def test_cycling_shapes_past_the_cache_warn_and_default_grows(max_cached):
    f, lin = _cycle_step(max_cached)
    lt = torch.nn.Linear(3, 1).double()
    with torch.no_grad():
        lt.weight.copy_(torch.tensor(lin.weight.numpy()))
        lt.bias.copy_(torch.tensor(lin.bias.numpy()))
    ot = torch.optim.SGD(lt.parameters(), lr=0.01)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for epoch in range(3):
            for n in range(2, 12):          # 10 shapes in a cycle
                x = np.random.default_rng(n + 10 * epoch).standard_normal((n, 3))
                got = f(tl.tensor(x)).item()
                ot.zero_grad()
                loss = lt(torch.tensor(x)).pow(2).mean()
                loss.backward()
                ot.step()
                np.testing.assert_allclose(got, loss.item(), rtol=1e-12)
    thrash = [str(w.message) for w in caught if "evicted" in str(w.message)]
    assert len(thrash) == 1 and "max_cached=" in thrash[0]
    if max_cached is None:
        assert f.max_cached == 16 and f.trace_count == 12, f.trace_count
    else:
        assert f.max_cached == 8 and f.trace_count > 20


# --- (3) dynamic shapes and edge_index ---------------------------------------------------
@pytest.mark.parametrize("dynamic, traces", [("auto", 2), (True, 1)])
def test_edge_index_leading_two_is_no_loop(dynamic, traces):
    w = np.random.default_rng(0).standard_normal((4, 3))
    W, Wt = tl.tensor(w), torch.tensor(w)

    def f(lib, x, ei, W):
        return lib.zeros(x.shape[0], 3, dtype=x.dtype).index_add(0, ei[1], (x @ W)[ei[0]])
    g = tl.function(lambda x, ei: f(tl, x, ei, W), dynamic=dynamic)
    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tl.no_grad():
            for n, e in [(10, 20), (12, 25), (7, 9), (15, 30)]:
                x, ei = rng.standard_normal((n, 4)), rng.integers(0, n, (2, e))
                np.testing.assert_allclose(
                    g(tl.tensor(x), tl.tensor(ei)).numpy(),
                    f(torch, torch.tensor(x), torch.tensor(ei), Wt).numpy(), rtol=1e-12)
    assert g.trace_count == traces, g.retrace_reasons
    assert all(gr.inputs[1].shape[0] == 2 for gr in g.graphs)


def test_auto_marks_only_the_dims_that_changed():
    f = tl.compile(lambda x, y: x.sum(0) + y.sum(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for n, m in [(3, 4), (5, 4), (6, 4), (6, 7), (2, 9)]:
            x, y = np.ones((n, 4)), np.ones((4, m))
            np.testing.assert_allclose(f(tl.tensor(x), tl.tensor(y)).numpy(),
                                       torch.tensor(x).sum(0) + torch.tensor(y).sum(1))
    # static, then x's dim 0 dynamic, then y's dim 1 too
    assert f.trace_count == 3, f.retrace_reasons
    assert f.graphs[-1].inputs[0].shape == (None, 4)
    assert f.graphs[-1].inputs[1].shape == (4, None)


# --- (4) zero_grad(set_to_none=False) with an unused parameter -------------------------------
@pytest.mark.parametrize("accumulate", [False, True])
def test_keep_grads_step_with_unused_parameter_traces_once(accumulate):
    rng = np.random.default_rng(2)
    w = rng.standard_normal((2, 3))
    params = [tl.tensor(w.copy(), requires_grad=True), tl.zeros(2, dtype="float64",
                                                                 requires_grad=True)]
    tparams = [torch.tensor(w.copy(), requires_grad=True),
               torch.zeros(2, dtype=torch.float64, requires_grad=True)]
    opt = tl.optim.SGD(params, lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tparams, lr=0.1, momentum=0.9)

    def step(lib, o, ps, x, flag):
        if flag:
            o.zero_grad(set_to_none=False)
        loss = (x @ ps[0].T).pow(2).sum()
        loss.backward()
        if flag:
            o.step()
        return loss
    f = tl.function(lambda x, flag: step(tl, opt, params, x, flag))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(6):
            flag = (i % 2 == 0) if accumulate else True
            x = rng.standard_normal((4, 3))
            got = f(tl.tensor(x), flag).item()
            want = step(torch, topt, tparams, torch.tensor(x), flag).item()
            np.testing.assert_allclose(got, want, rtol=1e-12)
            for p, tp in zip(params, tparams):
                np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(),
                                           rtol=1e-12)
                assert (p.grad is None) == (tp.grad is None)
                if tp.grad is not None:
                    np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12)
    assert f.trace_count == (2 if accumulate else 1), f.retrace_reasons
