"""``x[idx]`` / ``x[idx] = v`` with index tensors that are traced values under graph capture
(tl.function / tl.capture): the index is an input of the graph's ops, not a constant, so a
replay with new index values gives eager getitem's result (it froze them, or raised)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.graph import CaptureError

# --- keys: 1-3 index tensors (broadcasting, 0-d, negative values) with ints, slices with
# steps, None and Ellipsis, on 1-4-d inputs --------------------------------------------


@st.composite
def keys(draw, max_tensors: int = 3):
    """(x's shape, the key's items: ('t', shape) for an index tensor, or a plain item)."""
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    n_t = draw(st.integers(1, min(max_tensors, ndim)))
    tensor_axes = set(draw(st.permutations(range(ndim)))[:n_t])
    base = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=2)))
    items = []
    for a in range(ndim):
        if a in tensor_axes:
            nd = draw(st.integers(0, len(base)))
            sub = base[len(base) - nd:]
            sub = tuple(1 if draw(st.booleans()) and d > 1 else d for d in sub)
            items.append(("t", sub))
        else:
            kind = draw(st.sampled_from(["int", "slice", "full"]))
            n = shape[a]
            if kind == "int":
                items.append(draw(st.integers(-n, n - 1)))
            elif kind == "slice":
                start = draw(st.none() | st.integers(-n, n))
                stop = draw(st.none() | st.integers(-n, n))
                step = draw(st.sampled_from([None, 1, 2, -1, -2]))
                items.append(slice(start, stop, step))
            else:
                items.append(slice(None))
    # an Ellipsis for a run of full slices (possibly none of them), or trailing ones dropped
    if draw(st.booleans()):
        i = draw(st.integers(0, len(items)))
        j = i
        while j < len(items) and items[j] == slice(None) and draw(st.booleans()):
            j += 1
        items[i:j] = [Ellipsis]
    else:
        while items and items[-1] == slice(None):
            items.pop()
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), None)
    return shape, items


def _dims(shape, items):
    """The size of the axis each index tensor of ``items`` indexes."""
    consumed = sum(0 if k is None or k is Ellipsis else 1 for k in items)
    out, axis = [], 0
    for k in items:
        if k is Ellipsis:
            axis += len(shape) - consumed
        elif k is not None:
            if isinstance(k, tuple):
                out.append(shape[axis])
            axis += 1
    return out


def _build(items, idx):
    it = iter(idx)
    return tuple(next(it) if isinstance(k, tuple) else k for k in items)


def _draw_values(rng, shape, items, dtype=np.float64):
    x = tl.tensor(rng.standard_normal(shape).astype(dtype))
    idx = [tl.tensor(rng.integers(-n, n, k[1])) for k, n in
           zip([k for k in items if isinstance(k, tuple)], _dims(shape, items))]
    return x, idx


def _indexer(items):
    def f(x, *idx):
        return x[_build(items, idx)]
    return f


@settings(max_examples=40)
@given(keys(), st.integers(0, 2 ** 31))
def test_captured_getitem_matches_eager_on_replays_with_new_indices(case, seed):
    shape, items = case
    rng = np.random.default_rng(seed)
    f = tl.function(_indexer(items))
    for _ in range(3):          # the first call traces, the others replay with new values
        x, idx = _draw_values(rng, shape, items)
        want = x[_build(items, idx)]
        got = f(x, *idx)
        assert tuple(got.shape) == tuple(want.shape)
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert len(f.graphs) == 1
    assert "getitem" not in [n.op for n in f.graphs[0].nodes]  # no index frozen in attrs


@settings(max_examples=20)
@given(keys(), st.integers(0, 2 ** 31))
def test_captured_gradient_of_indexing_matches_eager(case, seed):
    shape, items = case
    rng = np.random.default_rng(seed)

    def grad_of(x, w, *idx):
        x = x.detach().requires_grad_(True)
        (g,) = tl.grad((x[_build(items, idx)] * w).sum(), [x])
        return g
    f = tl.function(grad_of)
    for _ in range(3):
        x, idx = _draw_values(rng, shape, items)
        w = tl.tensor(rng.standard_normal(tuple(x[_build(items, idx)].shape)))
        np.testing.assert_allclose(f(x, w, *idx).numpy(), grad_of(x, w, *idx).numpy(),
                                   rtol=1e-12, atol=1e-12)
    assert len(f.graphs) == 1


@settings(max_examples=10)
@given(keys(), st.integers(0, 2 ** 31))
def test_saved_and_reloaded_graph_indexes_with_its_inputs(tmp_path_factory, case, seed):
    shape, items = case
    rng = np.random.default_rng(seed)
    f = tl.function(_indexer(items))
    x, idx = _draw_values(rng, shape, items)
    f(x, *idx)
    path = tmp_path_factory.mktemp("g") / "index.tlg"
    tl.save_graph(f, path)
    g = tl.load_graph(path)
    for _ in range(2):
        x, idx = _draw_values(rng, shape, items)
        np.testing.assert_array_equal(g(x, *idx).numpy(), x[_build(items, idx)].numpy())


def test_rl_action_values_follow_the_actions_of_each_call():
    # the report: q[tl.arange(B), a] in a captured step froze a (or raised)
    rng = np.random.default_rng(0)

    @tl.function
    def f(q, a):
        return q[tl.arange(8), a].sum()
    for _ in range(3):
        q, a = tl.tensor(rng.standard_normal((8, 4))), tl.tensor(rng.integers(0, 4, 8))
        np.testing.assert_allclose(f(q, a).numpy(), q.numpy()[np.arange(8), a.numpy()].sum(),
                                   rtol=1e-12)
    assert len(f.graphs) == 1


def test_a_captured_training_step_indexing_with_its_inputs_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((6, 4))
    W = tl.tensor(w0, requires_grad=True)
    opt = tl.optim.SGD([W], lr=0.1)
    tw = torch.tensor(w0, requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.1)

    @tl.function
    def step(rows, cols, target):
        loss = ((W[rows, cols] - target) ** 2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss
    for _ in range(4):
        rows, cols = rng.integers(-6, 6, (5, 1)), rng.integers(-4, 4, (3,))
        target = rng.standard_normal((5, 3))
        got = step(tl.tensor(rows), tl.tensor(cols), tl.tensor(target))
        tloss = ((tw[torch.tensor(rows), torch.tensor(cols)] - torch.tensor(target)) ** 2).mean()
        tloss.backward()
        topt.step()
        topt.zero_grad()
        np.testing.assert_allclose(got.numpy(), tloss.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(W.numpy(), tw.detach().numpy(), rtol=1e-12)
    # (a training step traces twice: once more when its parameters first hold a .grad)
    assert len(step.graphs) <= 2


def test_capture_block_feeds_new_index_values():
    x, i = tl.arange(10.0), tl.tensor([3, -1])
    with tl.capture(x, i) as g:
        y = x[i] * 2
    g.set_outputs(y)
    np.testing.assert_array_equal(y.numpy(), [6.0, 18.0])
    out = g.run({x: tl.arange(10.0), i: tl.tensor([0, -2])})
    np.testing.assert_array_equal(out.numpy(), [0.0, 16.0])


@pytest.mark.parametrize("key,shapes,sizes", [
    (lambda a: a, [(6,)], [5]),                                     # one take
    (lambda a: (0, slice(None), a), [(2,)], [5]),                   # 0-d and int first
    (lambda a, b: (a, slice(None), b), [(2, 1), (3,)], [4, 5]),     # apart: in front
    (lambda a, b: (Ellipsis, a, b), [(2,), (2,)], [3, 5]),          # adjacent
    (lambda a, b: (a, b), [(), (2,)], [4, 3]),                      # 0-d beside an array
])
def test_out_of_range_index_raises_on_replay(key, shapes, sizes):
    f = tl.function(lambda x, *idx: x[key(*idx)])
    x = tl.randn(4, 3, 5)
    f(x, *[tl.zeros(s, dtype=tl.int64) for s in shapes])
    for k, n in enumerate(sizes):
        for bad in (n, -n - 1):
            idx = [tl.zeros(s, dtype=tl.int64) for s in shapes]
            idx[k] = tl.full(shapes[k], bad, dtype=tl.int64)
            with pytest.raises(IndexError):
                x[key(*idx)]                        # eager refuses it...
            with pytest.raises(IndexError):
                f(x, *idx)                          # ...and so does the replayed graph
    assert len(f.graphs) == 1


def test_traced_bool_mask_raises_capture_error_saying_what_to_do():
    @tl.function
    def f(x):
        return x[x > 0].sum()
    with pytest.raises(CaptureError, match=r"bool mask.*tl\.where.*masked_select"):
        f(tl.randn(4, 3))

    @tl.function
    def g(x, m):
        y = x.clone()
        y[m] = tl.ones(2)       # one value per selected element: a data-dependent length
        return y
    with pytest.raises(CaptureError, match="mask"):
        g(tl.randn(4), tl.tensor([True, False, True, False]))


def test_a_mask_or_index_held_as_guarded_state_keeps_the_constant_path():
    idx = tl.tensor([2, 0])
    mask = tl.tensor([True, False, True])

    @tl.function
    def f(x):
        return x[idx] + x[mask]
    x = tl.arange(3.0)
    np.testing.assert_array_equal(f(x).numpy(), [2.0, 2.0])
    assert "getitem" in [n.op for n in f.graphs[0].nodes]     # the index is a constant
    idx[0] = 1                                                  # ... guarded by its version
    np.testing.assert_array_equal(f(x).numpy(), [1.0, 2.0])


def test_a_constant_index_beside_a_traced_one():
    @tl.function
    def f(x, a):
        return x[np.array([[0], [2]]), a] + x[tl.tensor([True, False, True]), a]
    for vals in ([1, -1], [0, 2]):
        x, a = tl.randn(3, 4), tl.tensor(vals)
        want = x.numpy()[[[0], [2]], vals] + x.numpy()[[0, 2], vals]
        np.testing.assert_allclose(f(x, a).numpy(), want, rtol=1e-6)
    assert len(f.graphs) == 1


def test_none_batch_dim_stays_dynamic():
    S = tl.TensorSpec

    @tl.function(input_signature=[S((None, 4), tl.float64), S((None,), tl.int64)])
    def f(q, a):
        return q[tl.arange(q.shape[0]), a]
    rng = np.random.default_rng(2)
    for b in (3, 7, 1):
        q, a = tl.tensor(rng.standard_normal((b, 4))), tl.tensor(rng.integers(-4, 4, b))
        np.testing.assert_array_equal(f(q, a).numpy(), q.numpy()[np.arange(b), a.numpy()])
    assert len(f.graphs) == 1


def test_vmap_inside_a_captured_function_indexes_per_example():
    @tl.function
    def f(x, a):
        return tl.vmap(lambda xi, ai: xi[ai] * 2, in_dims=(0, 0))(x, a)
    rng = np.random.default_rng(3)
    for _ in range(3):
        x, a = tl.tensor(rng.standard_normal((3, 5))), tl.tensor(rng.integers(-5, 5, (3, 2)))
        want = np.stack([x.numpy()[i][a.numpy()[i]] * 2 for i in range(3)])
        np.testing.assert_allclose(f(x, a).numpy(), want, rtol=1e-12)
    assert len(f.graphs) == 1


class _Indexer(tl.nn.Module):
    def forward(self, x, a, b):
        return x[a, 1:, None, b] * 2 + x[..., b[0]].sum()


def test_onnx_export_indexing_with_input_tensors_runs_in_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.default_rng(4)
    x = tl.tensor(rng.standard_normal((4, 3, 5)).astype(np.float32))
    path = tmp_path / "index.onnx"
    tl.onnx.export(_Indexer(), (x, tl.tensor([0, 1]), tl.tensor([[1], [2]])), path,
                   dynamic_axes={1: [0], 2: [0]})
    sess = ort.InferenceSession(str(path))
    names = [i.name for i in sess.get_inputs()]
    for a, b in (([3, -1, 0], [[4], [-5]]), ([-4], [[2], [0], [1]])):
        a, b = np.array(a), np.array(b)
        got = sess.run(None, dict(zip(names, (x.numpy(), a, b))))[0]
        want = _Indexer()(x, tl.tensor(a), tl.tensor(b)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6)


# --- x[idx] = v, x[idx] += v, index_put ---------------------------------------------


@settings(max_examples=30)
@given(keys(), st.integers(0, 2 ** 31), st.booleans())
def test_captured_setitem_matches_eager_with_repeated_positions(case, seed, add):
    shape, items = case
    rng = np.random.default_rng(seed)

    def write(x, v, *idx):
        y = x * 1.0
        if add:
            y[_build(items, idx)] += v
        else:
            y[_build(items, idx)] = v
        return y
    f = tl.function(write)
    for _ in range(3):
        x, idx = _draw_values(rng, shape, items)
        v = tl.tensor(rng.standard_normal(tuple(x[_build(items, idx)].shape)))
        np.testing.assert_array_equal(f(x, v, *idx).numpy(), write(x, v, *idx).numpy())
    assert len(f.graphs) == 1


def test_captured_setitem_last_write_wins_and_gradients_match_eager_without_repeats():
    W = tl.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    V = tl.tensor(np.ones((2, 3)), requires_grad=True)

    def step(a, w):
        y = W * 1.0
        y[a] = V * 10.0
        (y * w).sum().backward()
        return y

    f = tl.function(step)
    rng = np.random.default_rng(5)
    for a in ([1, -1], [0, 2], [-4, 1]):
        w = tl.tensor(rng.standard_normal((4, 3)))
        W.grad = V.grad = None
        got = f(tl.tensor(a), w).numpy()
        gw, gv = W.grad.numpy().copy(), V.grad.numpy().copy()
        W.grad = V.grad = None
        want = step(tl.tensor(a), w).numpy()
        np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(gw, W.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(gv, V.grad.numpy(), rtol=1e-12)
    # a repeated position: the last write wins, as in eager NumPy
    with tl.no_grad():
        g = tl.function(lambda x, a, v: tl.setitem(x, a, v))
        x = tl.zeros(3)
        g(x, tl.tensor([0, 1]), tl.tensor([1.0, 2.0]))
        np.testing.assert_array_equal(g(x, tl.tensor([2, 2]), tl.tensor([5.0, 7.0])).numpy(),
                                      [0.0, 0.0, 7.0])
        assert len(g.graphs) == 1


def test_captured_index_put_matches_eager():
    f = tl.function(lambda x, a, b, v: (tl.index_put(x, (a, b), v),
                                        tl.index_put(x, (a, b), v, accumulate=True)))
    rng = np.random.default_rng(6)
    for _ in range(3):
        x = tl.tensor(rng.standard_normal((5, 3)))
        a, b = tl.tensor(rng.integers(-5, 5, 6)), tl.tensor(rng.integers(-3, 3, 6))
        v = tl.tensor(rng.standard_normal(6))
        got = f(x, a, b, v)
        np.testing.assert_array_equal(got[0].numpy(), tl.index_put(x, (a, b), v).numpy())
        np.testing.assert_allclose(got[1].numpy(),
                                   tl.index_put(x, (a, b), v, accumulate=True).numpy(),
                                   rtol=1e-12)
    assert len(f.graphs) == 1


def test_captured_setitem_out_of_range_raises_on_replay():
    f = tl.function(lambda x, a: tl.setitem(x, a, 1.0))
    x = tl.zeros(4)
    f(x, tl.tensor([0]))
    with pytest.raises(IndexError):
        f(x, tl.tensor([4]))
