"""Eager vs ``tl.function`` over several calls (the first traces, the rest replay): object
identity of ``.grad`` and of a tensor returned twice, generator state set inside the step,
and namedtuple outputs of saved graph files."""
import collections
import os

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F
from tensorlib.graph import CaptureError

torch = pytest.importorskip("torch")

NT = collections.namedtuple("NT", "loss out")


def _lin(lib, seed=0):
    rng = np.random.default_rng(seed)
    w, b = rng.standard_normal((2, 3)), rng.standard_normal(2)
    if lib is tl:
        return [tl.tensor(w, requires_grad=True), tl.tensor(b, requires_grad=True)]
    return [torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)]


def _train(lib, ps, opt, x, zero):
    if zero is not None:
        opt.zero_grad(set_to_none=zero)
    ((x @ ps[0].T + ps[1]) ** 2).sum().backward()
    opt.step()


@pytest.mark.parametrize("zero", [False, None])
@pytest.mark.parametrize("capture", [False, True])
def test_grad_is_accumulated_into_the_held_tensor_as_torch(zero, capture):
    """zero_grad(set_to_none=False) and plain accumulation keep each .grad object, so a
    reference held before the calls sees every call's gradient (PyTorch does the same)."""
    ps, tps = _lin(tl), _lin(torch)
    opt, topt = tl.optim.SGD(ps, lr=0.01), torch.optim.SGD(tps, lr=0.01)
    for p in ps:
        (p * 1.0).sum().backward()
    for p in tps:
        (p * 1.0).sum().backward()
    held = [p.grad for p in ps]
    f = tl.function(lambda x: _train(tl, ps, opt, x, zero)) if capture else \
        (lambda x: _train(tl, ps, opt, x, zero))
    rng = np.random.default_rng(1)
    for i in range(4):
        x = rng.standard_normal((4, 3))
        f(tl.tensor(x))
        _train(torch, tps, topt, torch.tensor(x), zero)
        for k, (p, tp, h) in enumerate(zip(ps, tps, held)):
            assert p.grad is h, (i, k)
            np.testing.assert_allclose(h.numpy(), tp.grad.numpy(), rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-10)
    if capture:
        assert f.trace_count == 1


def test_grad_none_still_gets_a_new_tensor():
    """set_to_none zero_grad: each call's backward installs a new .grad, as eager."""
    ps = _lin(tl)
    opt = tl.optim.SGD(ps, lr=0.01)
    f = tl.function(lambda x: _train(tl, ps, opt, x, True))
    seen = []
    for _ in range(4):
        f(tl.ones(4, 3))
        seen.append(ps[0].grad)
    assert len({id(g) for g in seen}) == 4


def test_argument_grad_is_accumulated_in_place_and_returned_as_itself():
    def step(x, y):
        (x * y).sum().backward()
        return x.grad
    x, tx = tl.ones(3, requires_grad=True), torch.ones(3, dtype=torch.float32,
                                                        requires_grad=True)
    (x * 2).sum().backward()
    (tx * 2).sum().backward()
    held = x.grad
    f = tl.function(step)
    for i in range(4):
        r = f(x, tl.full((3,), float(i)))
        (tx * float(i)).sum().backward()
        assert r is held and x.grad is held
        np.testing.assert_allclose(held.numpy(), tx.grad.numpy())


def test_a_tensor_returned_twice_is_one_object():
    def step(x):
        y = x * 2
        return y, y, {"a": y}
    f = tl.function(step)
    for i in range(4):
        a, b, d = f(tl.full((2,), float(i)))
        e = step(tl.full((2,), float(i)))
        assert a is b and d["a"] is a
        assert e[0] is e[1]
        np.testing.assert_allclose(a.numpy(), e[0].numpy())


def _draws(step, capture, n=4, size=6):
    tl.manual_seed(7)
    f = tl.function(step) if capture else step
    out = []
    for _ in range(n):
        r = f(tl.ones(size))
        r = r if isinstance(r, tuple) else (r,)
        out.append([t.tolist() for t in r] + [tl.rand(2).tolist()])
    return out


def test_get_set_rng_state_round_trip_inside_a_step():
    def step(x):
        s = tl.get_rng_state()
        a = F.dropout(x, 0.5)
        tl.set_rng_state(s)
        return a, F.dropout(x, 0.5)
    assert _draws(step, True) == _draws(step, False)


def test_generator_get_set_state_and_fork_rng_inside_a_step():
    g = tl.Generator(0)

    def step(x):
        s = g.get_state()
        a = tl.rand(6, generator=g)
        g.set_state(s)
        with tl.random.fork_rng():
            b = tl.rand(6)
        return a + x, b
    g.manual_seed(0)
    want = _draws(step, False)
    g.manual_seed(0)
    assert _draws(step, True) == want


def test_fixed_state_from_outside_and_state_argument_refused():
    tl.manual_seed(5)
    fixed = tl.get_rng_state()

    def step(x):
        tl.set_rng_state(fixed)
        return tl.rand(6) + x
    assert _draws(step, True) == _draws(step, False)
    f = tl.function(lambda x, s: (tl.set_rng_state(s), tl.rand(2) + x)[1])
    with pytest.raises(CaptureError):     # (its bytes cannot be read while tracing)
        f(tl.ones(2), tl.get_rng_state())


def test_capture_block_records_a_reseed():
    x = tl.ones(6)
    with tl.capture(x) as g:
        tl.manual_seed(3)
        y = F.dropout(x, 0.5)
    g.set_outputs(y)
    tl.manual_seed(3)
    want = F.dropout(tl.ones(6), 0.5).tolist()
    for _ in range(3):
        assert g.run({x: tl.ones(6)}).tolist() == want


def test_saved_graph_returns_the_namedtuple(tmp_path):
    def step(x):
        return NT(x.sum(), x * 2)
    f = tl.function(step)
    for _ in range(4):
        r = f(tl.ones(2))
        assert type(r) is NT and r.loss.item() == 2.0
    path = os.path.join(tmp_path, "g.tlg")
    tl.save_graph(f.get_graph(tl.ones(2)), path)
    out = tl.load_graph(path)(tl.ones(2))
    assert type(out) is NT
    np.testing.assert_allclose(out.out.numpy(), [2.0, 2.0])


def test_saved_graph_namedtuple_type_not_loaded_keeps_field_names(tmp_path):
    from tensorlib.export import tree_json, tree_template
    Local = collections.namedtuple("Local", "a b")
    tree = tree_json(("U", (("T", 0), ("T", 1)), Local), 2)
    tree["namedtuple"]["type"] = "no_such_module_xyz:Local"
    t = tree_template(tree, 2)
    from tensorlib.graph.signature import rebuild
    out = rebuild(t, [1, 2])
    assert out.a == 1 and out.b == 2 and type(out) is not Local
    tree["namedtuple"]["fields"] = ["a"]
    with pytest.raises(Exception, match="namedtuple"):
        tree_template(tree, 2)


def test_saved_graph_with_a_tensor_returned_twice(tmp_path):
    f = tl.function(lambda x: (x * 2, x * 2 + 0) if False else ((y := x * 2), y))
    f(tl.ones(2))
    path = os.path.join(tmp_path, "g.tlg")
    tl.save_graph(f.get_graph(tl.ones(2)), path)
    a, b = tl.load_graph(path)(tl.ones(2))
    assert a is b
    np.testing.assert_allclose(a.numpy(), [2.0, 2.0])


def test_module_step_keeps_grad_objects():
    tl.manual_seed(0)
    lin = nn.Linear(3, 2)
    opt = tl.optim.SGD(lin.parameters(), lr=0.1)
    lin(tl.ones(1, 3)).sum().backward()
    g = lin.weight.grad

    def step(x):
        opt.zero_grad(set_to_none=False)
        lin(x).pow(2).sum().backward()
        opt.step()
    f = tl.function(step)
    for i in range(4):
        f(tl.full((4, 3), float(i + 1)))
        assert lin.weight.grad is g


def _bias_step(lib, ps, opt, x, zero):
    # the bias's gradient of a sum is a constant of the graph (x.shape[0] in every entry)
    if zero:
        opt.zero_grad()
    (x @ ps[0].T + ps[1]).sum().backward()
    if zero:
        opt.step()


@pytest.mark.parametrize("accumulate_eagerly", [False, True])
def test_a_constant_gradient_is_not_the_graph_constant(accumulate_eagerly):
    """A replay sets a bias's constant-folded gradient: later in-place adds into that .grad
    (an eager backward, or a traced call accumulating) must not change what the graph
    sets on the next replay."""
    ps, tps = _lin(tl), _lin(torch)
    opt, topt = tl.optim.SGD(ps, lr=0.1), torch.optim.SGD(tps, lr=0.1)
    f = tl.function(lambda x, zero: _bias_step(tl, ps, opt, x, zero))
    rng = np.random.default_rng(0)
    for i, zero in enumerate([True, True, False, True, False, True]):
        x = rng.standard_normal((4, 3))
        if accumulate_eagerly and not zero:
            _bias_step(tl, ps, opt, tl.tensor(x), zero)
        else:
            f(tl.tensor(x), zero)
        _bias_step(torch, tps, topt, torch.tensor(x), zero)
        for p, tp in zip(ps, tps):
            np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-12,
                                       err_msg=f"call {i}")
            np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=1e-12,
                                       err_msg=f"call {i}")


def test_two_equal_gradients_are_two_arrays():
    """Two biases with the same (constant) gradient: each .grad a replay sets is its own
    array, so adding into one leaves the other as it was."""
    a = tl.zeros(3, requires_grad=True)
    b = tl.zeros(3, requires_grad=True)
    opt = tl.optim.SGD([a, b], lr=0.1)

    def step(x):
        opt.zero_grad()
        (x + a + b).sum().backward()
        opt.step()
    f = tl.function(step)
    for _ in range(3):
        f(tl.ones(2, 3))
    assert not np.shares_memory(a.grad.numpy(), b.grad.numpy())
    a.grad.add_(tl.ones(3))
    np.testing.assert_allclose(b.grad.numpy(), [2.0] * 3)
