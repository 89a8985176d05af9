"""Review 23b: a captured step whose unused parameters' .grad changes between None and set,
size predicates past a graph file's bound, and ONNX export with partial input_names."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.graph.sizes import MAX_PREDICATES

torch = pytest.importorskip("torch")


# --- (1) a parameter some calls reach and others do not ------------------------------------
def _params(lib, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(3, 3), (3,), (1, 3), (1,)]
    vals = [rng.standard_normal(s) * 0.5 for s in shapes]
    if lib is tl:
        return [tl.tensor(v.copy(), requires_grad=True) for v in vals]
    return [torch.tensor(v.copy(), requires_grad=True) for v in vals]


def _opt(lib, ps, kind):
    o = tl.optim if lib is tl else torch.optim
    if kind == "adam":
        return o.Adam(ps, lr=0.05)
    return o.SGD(ps, lr=0.1, momentum=0.9, nesterov=kind == "nesterov",
                 weight_decay=0.01 if kind == "nesterov" else 0.0)


def _step(opt, ps, x, use_b, flag, *, keep, mode):
    """keep: zero_grad(set_to_none=False); mode: "plain", "twice" (two backward calls
    before step) or "accumulate" (zero_grad and step only when ``flag``)."""
    def loss_of(xs):
        h = xs @ ps[0].T + ps[1]
        return (h @ ps[2].T + ps[3]).sum() if use_b else h.sum()
    if mode != "accumulate" or flag:
        opt.zero_grad(set_to_none=not keep)
    if mode == "twice":
        loss = loss_of(x[:2])
        loss.backward()
        loss2 = loss_of(x[2:])
        loss2.backward()
        loss = loss + loss2
    else:
        loss = loss_of(x)
        loss.backward()
    if mode != "accumulate" or flag:
        opt.step()
    return loss


def _compare(calls, kind, keep, mode):
    ps, tps = _params(tl), _params(torch)
    opt, topt = _opt(tl, ps, kind), _opt(torch, tps, kind)
    # each flag a constant of the closure the graph reads, as the review's repro's use_b
    f = tl.function(lambda x, use_b, flag: _step(opt, ps, x, use_b, flag, keep=keep,
                                                   mode=mode))
    rng = np.random.default_rng(1)
    for i, (use_b, flag) in enumerate(calls):
        x = rng.standard_normal((4, 3))
        got = f(tl.tensor(x), use_b, flag).item()
        want = _step(topt, tps, torch.tensor(x), use_b, flag, keep=keep, mode=mode).item()
        np.testing.assert_allclose(got, want, rtol=1e-10, err_msg=f"call {i}")
        for k, (p, tp) in enumerate(zip(ps, tps)):
            assert (p.grad is None) == (tp.grad is None), (i, k, f.retrace_reasons)
            if tp.grad is not None:
                np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-10,
                                           atol=1e-12, err_msg=f"call {i} grad {k}")
            np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-10,
                                       atol=1e-12, err_msg=f"call {i} param {k}")
    return f


def test_review_sequence_keep_grads_momentum_matches_torch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = _compare([(u, True) for u in (False, True, False, True, True, False, False)],
                     "momentum", keep=True, mode="plain")
    # one graph per (use_b, .grad state of b): the state seen so far is None, then set
    assert f.trace_count <= 3, f.retrace_reasons


@settings(max_examples=12, deadline=None)
@given(calls=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=6),
       kind=st.sampled_from(["momentum", "nesterov", "adam"]), keep=st.booleans(),
       mode=st.sampled_from(["plain", "twice", "accumulate"]))
def test_captured_step_matches_torch_for_any_sequence(calls, kind, keep, mode):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _compare(calls, kind, keep, mode)


@pytest.mark.parametrize("kind", ["momentum", "adam"])
@pytest.mark.parametrize("mode", ["plain", "twice", "accumulate"])
def test_unused_then_used_then_unused_every_mode(kind, mode):
    calls = [(False, True), (True, False), (True, True), (False, True), (False, False),
             (True, True), (False, True)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _compare(calls, kind, True, mode)
        _compare(calls, kind, False, mode)


def test_dead_parameters_are_held_weakly_by_their_graph():
    import gc
    import weakref
    ps = _params(tl)
    opt = _opt(tl, ps, "momentum")
    f = tl.function(lambda x: _step(opt, ps, x, False, True, keep=True, mode="plain"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f(tl.ones(4, 3))
    dead = [r for es in f._cache.values() for e in es for r in e.dead]
    assert {id(r()) for r in dead} == {id(ps[2]), id(ps[3])}
    assert all(isinstance(r, weakref.ref) for r in dead)
    assert not hasattr(f, "_call_dead")
    gc.collect()


# --- (3) many size predicates ---------------------------------------------------------------
def test_loop_of_comparisons_keeps_two_predicates_and_saves(tmp_path):
    def g(x):
        return x * sum(1 for i in range(5000) if x.shape[0] > i)
    f = tl.function(g, input_signature=[tl.TensorSpec((None,), "float64")])
    np.testing.assert_array_equal(f(tl.ones(3, dtype="float64")).numpy(), [3.0] * 3)
    preds = f.graphs[0].size_predicates
    assert sorted(preds) == [("ge", ("dim", 0, 0), 3, True), ("le", ("dim", 0, 0), 3, True)]
    # another size takes the other branches: traced again, eager's value
    np.testing.assert_array_equal(f(tl.ones(5, dtype="float64")).numpy(), [5.0] * 5)
    tl.save_graph(f.graphs[0], tmp_path / "g.tlg")
    loaded = tl.load_graph(tmp_path / "g.tlg")
    np.testing.assert_array_equal(loaded(tl.ones(3, dtype="float64")).numpy(), [3.0] * 3)
    with pytest.raises(ValueError, match=r"shape\[0\] <= 3"):
        loaded(tl.ones(4, dtype="float64"))
    with pytest.raises(ValueError, match=r"shape\[0\] >= 3"):
        loaded(tl.ones(2, dtype="float64"))


@pytest.mark.parametrize("cmp", ["lt", "le", "gt", "ge"])
@pytest.mark.parametrize("n", [0, 2, 7])
def test_bounds_match_each_comparison(cmp, n):
    ops = {"lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "gt": lambda a, b: a > b,
           "ge": lambda a, b: a >= b}

    def g(x):
        c = sum(1 for i in range(-2, 10) if ops[cmp](x.shape[0], i))
        return x.sum() + c
    f = tl.function(g, input_signature=[tl.TensorSpec((None,), "float64")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in (n, n, n + 1, n, 9, 10, 11, n):
            want = sum(1 for i in range(-2, 10) if ops[cmp](m, i))
            assert f(tl.zeros(m, dtype="float64")).item() == want, m
    assert all(len(gr.size_predicates) <= 2 for gr in f.graphs)


def test_more_distinct_predicates_than_a_file_holds_escape_the_size(tmp_path):
    def g(x):
        return x * sum(1 for i in range(MAX_PREDICATES + 100) if x.shape[0] != i)
    f = tl.function(g, input_signature=[tl.TensorSpec((None,), "float64")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = f(tl.ones(3, dtype="float64")).numpy()
        np.testing.assert_array_equal(out, [MAX_PREDICATES + 99.0] * 3)
        assert len(f.graphs[0].size_predicates) <= MAX_PREDICATES
        tl.save_graph(f.graphs[0], tmp_path / "g.tlg")
    loaded = tl.load_graph(tmp_path / "g.tlg")
    np.testing.assert_array_equal(loaded(tl.ones(3, dtype="float64")).numpy(), out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(f(tl.ones(2, dtype="float64")).numpy(),
                                      [MAX_PREDICATES + 99.0] * 2)


def test_save_refuses_more_predicates_than_load_accepts(tmp_path):
    f = tl.function(lambda x: x * 2, input_signature=[tl.TensorSpec((None,), "float64")])
    f(tl.ones(3, dtype="float64"))
    g = f.graphs[0]
    g.size_predicates = [("ne", ("dim", 0, 0), i, True) for i in range(10, MAX_PREDICATES + 11)]
    with pytest.raises(ValueError, match="more than a graph file holds"):
        tl.save_graph(g, tmp_path / "g.tlg")
    assert not (tmp_path / "g.tlg").exists()
    g.size_predicates = g.size_predicates[:MAX_PREDICATES]
    tl.save_graph(g, tmp_path / "g.tlg")
    assert len(tl.load_graph(tmp_path / "g.tlg").graph.size_predicates) == MAX_PREDICATES


# --- (2) ONNX export with fewer input_names than inputs -------------------------------------
class _Two(tl.nn.Module):
    def forward(self, x, y):
        assert y.shape[0] <= 8
        return x.sum() + y.sum()


@pytest.mark.parametrize("names", [None, ["a"], ["a", "b"]])
def test_onnx_partial_input_names_label_the_model_inputs(tmp_path, names):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tl.onnx.export(_Two(), (tl.ones(3), tl.ones(4)), path, dynamic_axes={1: [0]},
                       input_names=names)
    inputs = [i.name for i in onnx.load(str(path)).graph.input]
    said = [str(w.message) for w in caught if "assumes" in str(w.message)]
    assert len(said) == 1 and f"{inputs[1]}.shape[0] <= 8, as traced" in said[0], said
    if names:
        assert inputs[:len(names)] == names
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x, y = np.ones(3, np.float32), np.arange(6, dtype=np.float32)
    got = sess.run(None, {inputs[0]: x, inputs[1]: y})[0]
    want = (torch.tensor(x).sum() + torch.tensor(y).sum()).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)
