"""The eager fast paths of perf trial 18 (finding 3 and 6): SGD's loop over the fused kernel,
zero_grad(set_to_none=False), the NumPy steps of Adamax/NAdam/RAdam, the step counter,
stack and default_collate. Each must give what the general path gives, bit for bit, and
what PyTorch gives."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.optim import _fused

torch = pytest.importorskip("torch")


def _params(seed, shapes, dtype=np.float32):
    rng = np.random.default_rng(seed)
    vals = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(4)]
    return vals, grads


def _run_tl(cls, vals, grads, **kw):
    ps = [tl.nn.Parameter(tl.tensor(v.copy())) for v in vals]
    opt = cls(ps, **kw)
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = tl.tensor(g.copy())
        opt.step()
    return ps, opt


def _run_torch(name, vals, grads, **kw):
    ps = [torch.nn.Parameter(torch.tensor(v.copy())) for v in vals]
    opt = getattr(torch.optim, name)(ps, **kw)
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = torch.tensor(g.copy())
        opt.step()
    return ps, opt


def _no_fast(monkeypatch):
    monkeypatch.setattr(_fused, "sgd_foreach", lambda params, *a: list(params))
    monkeypatch.setattr(_fused, "eager_arrays", lambda *a: False)


SHAPES = [(3, 4), (5,), (), (2, 0), (7, 2)]

SGD_CASES = [dict(lr=0.1), dict(lr=0.1, momentum=0.9), dict(lr=0.05, weight_decay=1e-2),
             dict(lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=True),
             dict(lr=0.1, momentum=0.5, dampening=0.3), dict(lr=0.1, maximize=True),
             dict(lr=0.1, momentum=0.9, maximize=True, weight_decay=0.1)]
ADAM_CASES = [dict(lr=0.01), dict(lr=0.01, weight_decay=0.1), dict(lr=0.02, maximize=True),
              dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", SGD_CASES)
def test_sgd_fast_path_is_the_general_path(monkeypatch, kw, dtype):
    vals, grads = _params(0, SHAPES, dtype)
    fast, fopt = _run_tl(tl.optim.SGD, vals, grads, **kw)
    with monkeypatch.context() as m:
        _no_fast(m)
        slow, sopt = _run_tl(tl.optim.SGD, vals, grads, **kw)
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert a._version[0] == b._version[0]
    fs, ss = fopt.state_dict(), sopt.state_dict()
    assert fs["state"].keys() == ss["state"].keys()
    for i in fs["state"]:
        assert fs["state"][i].keys() == ss["state"][i].keys()
        for k in fs["state"][i]:
            np.testing.assert_array_equal(fs["state"][i][k].numpy(), ss["state"][i][k].numpy())


@pytest.mark.parametrize("kw", SGD_CASES)
def test_sgd_matches_torch(kw):
    vals, grads = _params(1, SHAPES, np.float64)
    ours, _ = _run_tl(tl.optim.SGD, vals, grads, **kw)
    ref, ropt = _run_torch("SGD", vals, grads, **kw)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_sgd_mixed_eligibility_and_errors():
    # a non-contiguous parameter goes the per-tensor way, the others the fused loop
    base = tl.tensor(np.arange(12.0, dtype=np.float32).reshape(3, 4))
    odd = tl.nn.Parameter(base.t())
    assert not odd._data.flags.c_contiguous
    ok = tl.nn.Parameter(tl.ones(4))
    odd.grad, ok.grad = tl.ones(4, 3), tl.ones(4)
    opt = tl.optim.SGD([ok, odd], lr=0.5, momentum=0.9)
    opt.step()
    np.testing.assert_allclose(ok.numpy(), 0.5)
    np.testing.assert_allclose(odd.numpy(), np.arange(12.0).reshape(3, 4).T - 0.5)
    assert set(opt.state) == {ok, odd}
    # a parameter whose storage changed shape after its grad was set: the general path's error
    p = tl.nn.Parameter(tl.ones(3))
    p.grad = tl.ones(3)
    p.data = tl.ones(4)
    with pytest.raises(ValueError, match="SGD: gradient of shape"):
        tl.optim.SGD([p], lr=0.1).step()
    with pytest.raises(ValueError, match="SGD: invalid momentum"):
        tl.optim.SGD([p], lr=0.1, momentum=-1.0)


def test_sgd_captured_step_matches_eager():
    def make():
        tl.manual_seed(0)
        m = tl.nn.Linear(4, 3)
        return m, tl.optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    x = tl.tensor(np.random.default_rng(2).standard_normal((8, 4)).astype(np.float32))
    me, oe = make()
    mc, oc = make()

    def step(m, o, x):
        o.zero_grad(set_to_none=False)
        loss = m(x).square().mean()
        loss.backward()
        o.step()
        return loss
    cstep = tl.function(lambda x: step(mc, oc, x))
    for _ in range(4):
        le = step(me, oe, x)
        lc = cstep(x)
        np.testing.assert_allclose(lc.numpy(), le.numpy(), rtol=1e-5)
    for a, b in zip(me.parameters(), mc.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("where", ["optimizer", "module"])
def test_zero_grad_keep(where):
    m = tl.nn.Linear(3, 2)
    ps = list(m.parameters())
    for p in ps:
        p.grad = tl.ones(*p.shape)
    old = [p.grad for p in ps]
    vers = [g._version[0] for g in old]
    opt = tl.optim.SGD(ps, lr=0.1)
    (opt if where == "optimizer" else m).zero_grad(set_to_none=False)
    for p, g, v in zip(ps, old, vers):
        assert p.grad is g                  # zeroed in place, the object kept (PyTorch's)
        assert p.grad._version[0] == v + 1
        assert not p.grad.requires_grad and p.grad.grad_fn is None
        np.testing.assert_array_equal(g.numpy(), 0.0)           # the storage is shared
    (opt if where == "optimizer" else m).zero_grad()
    assert all(p.grad is None for p in ps)


def test_zero_grad_of_graph_grad_and_read_only_grad():
    w = tl.tensor([1.0, 2.0], requires_grad=True)
    (w ** 3).sum().backward(create_graph=True)
    assert w.grad.requires_grad
    tl.optim.SGD([w], lr=0.1).zero_grad(set_to_none=False)
    assert not w.grad.requires_grad and w.grad.grad_fn is None
    np.testing.assert_array_equal(w.grad.numpy(), 0.0)
    p = tl.nn.Parameter(tl.ones(3))
    ro = np.ones(3, np.float32)
    ro.flags.writeable = False
    p.grad = g = tl.from_numpy(ro)
    tl.optim.SGD([p], lr=0.1).zero_grad(set_to_none=False)
    assert p.grad is g and g.tolist() == [0.0] * 3 and ro.tolist() == [1.0] * 3   # fresh zeros


def test_zero_grad_matches_torch():
    vals, grads = _params(3, [(4,), (2, 2)], np.float64)
    ours = [tl.nn.Parameter(tl.tensor(v)) for v in vals]
    ref = [torch.nn.Parameter(torch.tensor(v)) for v in vals]
    for a, b, g in zip(ours, ref, grads[0]):
        a.grad, b.grad = tl.tensor(g), torch.tensor(g)
    tl.optim.SGD(ours, lr=0.1).zero_grad(set_to_none=False)
    torch.optim.SGD(ref, lr=0.1).zero_grad(set_to_none=False)
    for a, b in zip(ours, ref):
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


@pytest.mark.parametrize("name", ["Adamax", "NAdam", "RAdam"])
@pytest.mark.parametrize("kw", ADAM_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_variants_fast_path_is_the_general_path(monkeypatch, name, kw, dtype):
    if name == "Adamax" and "decoupled_weight_decay" in kw:
        pytest.skip("Adamax has no decoupled weight decay")
    cls = getattr(tl.optim, name)
    vals, grads = _params(4, SHAPES, dtype)
    grads = grads * 3           # RAdam switches on its rectification after step 5
    fast, fopt = _run_tl(cls, vals, grads, **kw)
    with monkeypatch.context() as m:
        _no_fast(m)
        slow, sopt = _run_tl(cls, vals, grads, **kw)
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        assert a._version[0] == b._version[0]
    fs, ss = fopt.state_dict()["state"], sopt.state_dict()["state"]
    for i in fs:
        for k in fs[i]:
            np.testing.assert_array_equal(np.asarray(fs[i][k]), np.asarray(ss[i][k]))


@pytest.mark.parametrize("name", ["Adamax", "NAdam", "RAdam"])
@pytest.mark.parametrize("kw", ADAM_CASES)
def test_adam_variants_match_torch(name, kw):
    if name == "Adamax" and "decoupled_weight_decay" in kw:
        pytest.skip("Adamax has no decoupled weight decay")
    vals, grads = _params(5, SHAPES, np.float64)
    grads = grads * 3
    ours, _ = _run_tl(getattr(tl.optim, name), vals, grads, **kw)
    ref, _ = _run_torch(name, vals, grads, **kw)
    for a, b in zip(ours, ref):
        # (NAdam: PyTorch orders its products differently, ~1e-10 apart after 12 steps)
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-7, atol=1e-9)


def test_step_count_state_matches_torch_and_loads():
    vals, grads = _params(6, [(3,)], np.float64)
    ours, o = _run_tl(tl.optim.NAdam, vals, grads, lr=0.01)
    ref, r = _run_torch("NAdam", vals, grads, lr=0.01)
    assert float(o.state_dict()["state"][0]["step"]) == float(r.state_dict()["state"][0]["step"])
    o2 = tl.optim.NAdam(ours, lr=0.01)
    o2.load_state_dict(o.state_dict())
    ours[0].grad = tl.tensor(grads[0][0])
    o2.step()
    assert float(o2.state[ours[0]]["step"]) == 5.0


# --- stack and default_collate ----------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), shape=st.lists(st.integers(0, 3), max_size=3),
       dim=st.integers(-4, 3))
def test_stack_matches_torch(n, shape, dim):
    nd = len(shape) + 1
    if not -nd <= dim < nd:
        with pytest.raises((ValueError, IndexError)):
            tl.stack([tl.zeros(*shape)] * n, dim=dim)
        return
    rng = np.random.default_rng(n)
    xs = [rng.standard_normal(shape) for _ in range(n)]
    ts = [tl.tensor(x, requires_grad=True) for x in xs]
    rs = [torch.tensor(x, requires_grad=True) for x in xs]
    out, ref = tl.stack(ts, dim=dim), torch.stack(rs, dim=dim)
    np.testing.assert_array_equal(out.numpy(), ref.detach().numpy())
    w = rng.standard_normal(ref.shape)
    (out * tl.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for a, b in zip(ts, rs):
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


def test_stack_0d_dtypes_and_errors():
    for vals, dt in [([1, 2, 3], None), ([1.5, 2.5], np.float32), ([True, False], None),
                     ([1.5, 2.5], np.float64)]:
        out = tl.stack([tl.tensor(v, dtype=dt) for v in vals])
        ref = torch.stack([torch.tensor(np.asarray(v, dtype=dt)) for v in vals])
        assert out.numpy().dtype == ref.numpy().dtype
        np.testing.assert_array_equal(out.numpy(), ref.numpy())
    mixed = tl.stack([tl.tensor(1), tl.tensor(2.5), np.float64(3.0)])    # promoted, as cat
    assert mixed.dtype == np.float64 and mixed.tolist() == [1.0, 2.5, 3.0]
    assert tl.stack([[1, 2], np.array([3, 4])]).tolist() == [[1, 2], [3, 4]]
    with pytest.raises(ValueError, match="stack: all tensors must have the same shape"):
        tl.stack([tl.zeros(2), tl.zeros(3)])
    with pytest.raises(ValueError, match="stack: needs at least one tensor"):
        tl.stack([])


def test_default_collate_tensor_rows_match_torch():
    from torch.utils.data import default_collate as torch_collate
    X = np.random.default_rng(7).standard_normal((10, 5)).astype(np.float32)
    tX, pX = tl.tensor(X), torch.tensor(X)
    ours = tl.utils.data.default_collate([(tX[i], tl.tensor(i)) for i in range(6)])
    ref = torch_collate([(pX[i], torch.tensor(i)) for i in range(6)])
    assert isinstance(ours, list) and len(ours) == 2
    for a, b in zip(ours, ref):
        assert a.numpy().dtype == b.numpy().dtype
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(ValueError, match="default_collate: the samples of a batch must have "
                                         "equal shapes"):
        tl.utils.data.default_collate([tX[0], tX[1, :3]])
    mixed = tl.utils.data.default_collate([tX[0], X[1]])      # a tensor and an array
    np.testing.assert_array_equal(mixed.numpy(), X[:2])


def test_dataloader_over_tensor_rows():
    X = np.random.default_rng(8).standard_normal((20, 3)).astype(np.float32)
    Y = np.arange(20)

    class DS:
        def __init__(self):
            self.X, self.Y = tl.tensor(X), tl.tensor(Y)

        def __len__(self):
            return 20

        def __getitem__(self, i):
            return self.X[i], self.Y[i]
    xs, ys = zip(*tl.utils.data.DataLoader(DS(), batch_size=8))
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x in xs]), X)
    np.testing.assert_array_equal(np.concatenate([y.numpy() for y in ys]), Y)
