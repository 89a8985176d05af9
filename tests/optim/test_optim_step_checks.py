"""The checks ``Optimizer.step`` runs on every step (gradient layout, shape) and the one-loop
fused Adam/AdamW step (``optim._fused.adam_foreach``) against PyTorch 2.13: the same values,
state and step counts; a gradient replaced between steps by a sparse one or one of the
wrong shape is still refused, before any parameter or state changes."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tensorlib as tl

torch = pytest.importorskip("torch")

SHAPES = [(4,), (3, 5), (2, 3, 4), (), (0, 3), (7,)]


def _pair(seed: int, shapes=SHAPES, dtype=np.float64):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    lp = [tl.tensor(a.copy(), requires_grad=True) for a in arrays]
    tp = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    return rng, lp, tp


def _set_grads(rng, lp, tp, skip=()):
    for i, (a, b) in enumerate(zip(lp, tp)):
        if i in skip:
            a.grad, b.grad = None, None
            continue
        g = rng.standard_normal(tuple(a.shape)).astype(np.dtype(str(a.dtype).split(".")[-1]))
        a.grad, b.grad = tl.tensor(g.copy()), torch.tensor(g.copy())


def _close(lp, tp, tol=1e-12):
    for a, b in zip(lp, tp):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=tol, atol=tol)


OPTS = [
    ("Adam", {}),
    ("Adam", {"weight_decay": 0.1}),
    ("Adam", {"weight_decay": 0.1, "amsgrad": True}),
    ("Adam", {"maximize": True}),
    ("AdamW", {}),
    ("AdamW", {"weight_decay": 0.3, "betas": (0.8, 0.9)}),
    ("SGD", {"momentum": 0.9, "weight_decay": 0.01}),
    ("SGD", {"momentum": 0.9, "nesterov": True}),
]


@pytest.mark.parametrize("name,kw", OPTS)
def test_steps_match_torch_with_gaps_and_round_trip(name, kw):
    rng, lp, tp = _pair(0)
    lo = getattr(tl.optim, name)(lp, lr=0.05, **kw)
    to = getattr(torch.optim, name)(tp, lr=0.05, **kw)
    for k in range(4):
        # a parameter without a gradient is skipped (its count does not advance)
        _set_grads(rng, lp, tp, skip={k % len(lp)})
        lo.step()
        to.step()
        _close(lp, tp)
    for i, p in enumerate(lp):
        ts = to.state.get(tp[i], {})
        if "step" in ts:
            assert float(lo.state[p]["step"]) == float(ts["step"])
            assert lo.state[p]["step"].dtype == tl.float64
        for key, v in ts.items():
            if key != "step":
                np.testing.assert_allclose(lo.state[p][key].numpy(), v.numpy(), rtol=1e-12,
                                           atol=1e-12)
    # a fresh optimizer loaded from the state dict continues the same trajectory
    lo2 = getattr(tl.optim, name)(lp, lr=0.05, **kw)
    lo2.load_state_dict(lo.state_dict())
    for _ in range(2):
        _set_grads(rng, lp, tp)
        lo2.step()
        to.step()
        _close(lp, tp)


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_mixed_dtypes_layouts_and_devices_in_one_group(name):
    """float32, float16, complex and non-contiguous parameters beside plain ones: those the
    kernel cannot take go through the per-tensor update, with the same results as torch."""
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((3, 4)).astype(np.float32),
              rng.standard_normal(5).astype(np.float16),
              (rng.standard_normal(6) + 1j * rng.standard_normal(6)).astype(np.complex128),
              rng.standard_normal((4, 3)),
              rng.standard_normal(8)]
    lp = [tl.tensor(a.copy(), requires_grad=True) for a in arrays]
    tp = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    lp[3]._data = np.asfortranarray(lp[3]._data)      # a leaf on non-contiguous storage
    assert not lp[3]._data.flags.c_contiguous
    lo = getattr(tl.optim, name)(lp, lr=0.01, weight_decay=0.05)
    to = getattr(torch.optim, name)(tp, lr=0.01, weight_decay=0.05)
    tols = [1e-6, 2e-3, 1e-12, 1e-12, 1e-12]
    for _ in range(3):
        for a, b, arr in zip(lp, tp, arrays):
            g = rng.standard_normal(arr.shape)
            if arr.dtype.kind == "c":
                g = g + 1j * rng.standard_normal(arr.shape)
            g = g.astype(arr.dtype)
            a.grad, b.grad = tl.tensor(g.copy()), torch.tensor(g.copy())
        lo.step()
        to.step()
        for a, b, tol in zip(lp, tp, tols):
            np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=tol,
                                       atol=tol)
    assert lp[2].dtype == tl.complex128 and lo.state[lp[2]]["exp_avg"].dtype == tl.complex128


@pytest.mark.parametrize("name,hint", [("Adam", ", please consider SparseAdam instead"),
                                       ("AdamW", ", please consider SparseAdam instead"),
                                       ("RMSprop", "")])
def test_sparse_grad_assigned_between_steps_is_refused_before_anything_moves(name, hint):
    rng, lp, _ = _pair(2, [(4, 3), (5,), (6, 2)])
    opt = getattr(tl.optim, name)(lp, lr=0.1)
    for p in lp:
        p.grad = tl.tensor(rng.standard_normal(tuple(p.shape)))
    opt.step()
    before = [p.detach().numpy().copy() for p in lp]
    state = {p: {k: (v.numpy().copy() if isinstance(v, tl.Tensor) else v)
                 for k, v in opt.state[p].items()} for p in lp}
    dense = tl.tensor([[0.0, 1.0]] * 6, dtype=tl.float64)
    lp[2].grad = dense.to_sparse()       # the last one: the others would move first
    with pytest.raises(RuntimeError, match=f"^{name} does not support sparse gradients"
                                           f"{hint}$"):
        opt.step()
    for p, b in zip(lp, before):
        np.testing.assert_array_equal(p.detach().numpy(), b)
    for p in lp:
        for k, v in opt.state[p].items():
            np.testing.assert_array_equal(v.numpy() if isinstance(v, tl.Tensor) else v,
                                          state[p][k])
    # back to a dense gradient: the step runs again
    lp[2].grad = dense
    opt.step()
    assert not np.array_equal(lp[0].detach().numpy(), before[0])


def test_sparse_adam_still_refuses_a_dense_grad_assigned_between_steps():
    emb = tl.nn.Embedding(10, 3, sparse=True)
    opt = tl.optim.SparseAdam(emb.parameters(), lr=0.1)
    emb(tl.tensor([1, 2])).sum().backward()
    opt.step()
    w = emb.weight.detach().numpy().copy()
    emb.weight.grad = tl.ones(10, 3)
    with pytest.raises(RuntimeError, match="SparseAdam does not support dense gradients"):
        opt.step()
    np.testing.assert_array_equal(emb.weight.detach().numpy(), w)


_RESHAPES = {
    # the same gradient object, its shape changed in place: a check keyed on the identity
    # of p.grad would miss these
    "data (3, 2)": lambda g: setattr(g, "data", tl.zeros(3, 2, dtype=tl.float64)),
    "data (7,)": lambda g: setattr(g, "data", tl.zeros(7, dtype=tl.float64)),
    "t_": lambda g: g.t_(),
    "unsqueeze_": lambda g: g.unsqueeze_(0),
}


@pytest.mark.parametrize("name", ["Adam", "AdamW", "SGD", "RMSprop"])
@pytest.mark.parametrize("how", list(_RESHAPES))
def test_grad_reshaped_between_steps_errors(name, how):
    rng, lp, _ = _pair(3, [(2, 3), (4,)])
    opt = getattr(tl.optim, name)(lp, lr=0.1, **({"momentum": 0.9} if name == "SGD" else {}))
    for p in lp:
        p.grad = tl.tensor(rng.standard_normal(tuple(p.shape)))
    opt.step()
    g = lp[0].grad
    _RESHAPES[how](g)
    assert lp[0].grad is g and tuple(g.shape) != (2, 3)
    before = lp[0].detach().numpy().copy()
    steps = float(opt.state[lp[0]]["step"]) if "step" in opt.state[lp[0]] else None
    with pytest.raises(ValueError, match=rf"^{name}: gradient of shape .* does not match its "
                                         r"parameter of shape \(2, 3\)"):
        opt.step()
    np.testing.assert_array_equal(lp[0].detach().numpy(), before)
    if steps is not None:        # the refused parameter's count did not advance
        assert float(opt.state[lp[0]]["step"]) == steps


def test_grad_data_of_another_dtype_is_cast_as_before():
    """A float32 gradient on a float64 parameter (through ``grad.data``) goes through the
    per-tensor update, cast to the parameter's dtype."""
    p = tl.tensor(np.arange(4.0), requires_grad=True)
    q = torch.tensor(np.arange(4.0), requires_grad=True)
    lo, to = tl.optim.Adam([p], lr=0.1), torch.optim.Adam([q], lr=0.1)
    g = np.array([0.5, -1.0, 2.0, 0.25], np.float32)
    for _ in range(2):
        p.grad = tl.zeros(4, dtype=tl.float64)
        p.grad.data = tl.tensor(g)
        assert p.grad.dtype == tl.float32
        q.grad = torch.tensor(g.astype(np.float64))
        lo.step()
        to.step()
    np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12)


def test_version_counters_advance_once_per_step():
    p = tl.tensor(np.ones(5), requires_grad=True)
    opt = tl.optim.AdamW([p], lr=0.1)
    p.grad = tl.ones(5, dtype=tl.float64)
    opt.step()
    st = opt.state[p]
    v = (p._version[0], st["exp_avg"]._version[0], st["exp_avg_sq"]._version[0],
         st["step"]._version[0])
    opt.step()
    assert (p._version[0], st["exp_avg"]._version[0], st["exp_avg_sq"]._version[0],
            st["step"]._version[0]) == tuple(x + 1 for x in v)


def test_tensor_lr_and_scheduler_step_the_fused_path_as_torch():
    rng, lp, tp = _pair(4, [(3,), (2, 2)])
    lo = tl.optim.Adam(lp, lr=tl.tensor(0.1, dtype=tl.float64))
    to = torch.optim.Adam(tp, lr=torch.tensor(0.1, dtype=torch.float64))
    ls = tl.optim.lr_scheduler.StepLR(lo, step_size=1, gamma=0.5)
    ts = torch.optim.lr_scheduler.StepLR(to, step_size=1, gamma=0.5)
    for _ in range(3):
        _set_grads(rng, lp, tp)
        lo.step()
        to.step()
        ls.step()
        ts.step()
        _close(lp, tp)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 12), seed=st.integers(0, 2**16), decoupled=st.booleans(),
       wd=st.sampled_from([0.0, 0.1]), steps=st.integers(1, 4))
def test_many_small_params_match_torch(n, seed, decoupled, wd, steps):
    rng = np.random.default_rng(seed)
    shapes = [tuple(rng.integers(1, 4, size=rng.integers(0, 3))) for _ in range(n)]
    rng, lp, tp = _pair(seed, shapes)
    cls = "AdamW" if decoupled else "Adam"
    lo = getattr(tl.optim, cls)(lp, lr=0.03, weight_decay=wd)
    to = getattr(torch.optim, cls)(tp, lr=0.03, weight_decay=wd)
    for k in range(steps):
        _set_grads(rng, lp, tp, skip={int(rng.integers(0, n))} if k % 2 else ())
        lo.step()
        to.step()
    _close(lp, tp)


def test_step_under_capture_matches_eager():
    """A tl.function-captured Adam step (the per-tensor ops, not the eager kernel loop)
    gives the eager trajectory, and an eager step after it continues it."""
    rng = np.random.default_rng(5)
    w0 = rng.standard_normal((3, 2))
    x = tl.tensor(rng.standard_normal((4, 3)))

    def make():
        w = tl.tensor(w0.copy(), requires_grad=True)
        return w, tl.optim.AdamW([w], lr=0.1)

    w1, o1 = make()
    w2, o2 = make()

    def train(w, opt):
        opt.zero_grad()
        (x @ w).pow(2).sum().backward()
        opt.step()

    captured = tl.function(train)
    for _ in range(3):
        captured(w1, o1)
        train(w2, o2)
    train(w1, o1)
    train(w2, o2)
    np.testing.assert_allclose(w1.detach().numpy(), w2.detach().numpy(), rtol=1e-12)
    assert float(o1.state[w1]["step"]) == float(o2.state[w2]["step"]) == 4.0
