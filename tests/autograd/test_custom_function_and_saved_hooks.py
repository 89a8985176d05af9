"""Autograd APIs a meta-learning port reached for, checked against PyTorch: custom Function
details, saved-tensor hooks, anomaly mode (NaN only), inference mode, orthogonal."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.autograd.graph import pack_saved
from tensorlib.autograd.mode import InferenceVersion, is_inference_tensor


# --- custom Function ----------------------------------------------------------------------
def _two_outputs(lib, materialize):
    seen = []

    class F(lib.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(materialize)
            return x.clone(), x * 2

        @staticmethod
        def backward(ctx, a, b):
            seen.append((a is None, b is None))
            return (a if a is not None else 0) + (2 * b if b is not None else 0)
    return F, seen


@pytest.mark.parametrize("materialize", [True, False])
def test_set_materialize_grads_matches_torch(materialize):
    got = []
    for lib, mk in ((torch, lambda: torch.ones(3, requires_grad=True)),
                    (tl, lambda: tl.ones(3, requires_grad=True))):
        F, seen = _two_outputs(lib, materialize)
        x = mk()
        _, b = F.apply(x)
        b.sum().backward()
        got.append((seen, np.asarray(x.grad.detach() if lib is torch else x.grad)))
    assert got[0][0] == got[1][0] == [(materialize is not True, False)]
    np.testing.assert_allclose(got[0][1], got[1][1])


def test_function_without_backward_raises_torch_message():
    class G(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2
    x = tl.ones(2, requires_grad=True)
    with pytest.raises(NotImplementedError, match="You must implement either the backward or "
                       "vjp method for your custom autograd.Function to use it with backward "
                       "mode AD."):
        G.apply(x).sum().backward()


def test_function_vjp_alias_and_both_refused():
    class V(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 3

        @staticmethod
        def vjp(ctx, g):
            return g * 3
    x = tl.ones(2, requires_grad=True)
    V.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3, 3])

    class B(V):
        @staticmethod
        def backward(ctx, g):
            return g
    with pytest.raises(RuntimeError, match="both 'backward' and 'vjp'"):
        B.apply(tl.ones(2, requires_grad=True)).sum().backward()


def test_save_for_backward_rejects_non_tensors():
    class H(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x, 3.0)
            return x * 2
    with pytest.raises(TypeError, match="save_for_backward can only save variables, but "
                       "argument 1 is of type float"):
        H.apply(tl.ones(2, requires_grad=True))


# --- saved tensors hooks -------------------------------------------------------------------
class _Exp(tl.autograd.Function):
    @staticmethod
    def forward(ctx, x, w):
        y = (x * w).exp()
        ctx.save_for_backward(x, w, y)
        return y

    @staticmethod
    def backward(ctx, g):
        x, w, y = ctx.saved_tensors
        return g * y * w, g * y * x


def test_saved_tensors_hooks_on_custom_function():
    log = []

    def pack(t):
        log.append(("pack", tuple(t.shape)))
        return t.numpy().copy()

    def unpack(a):
        log.append(("unpack", a.shape))
        return tl.tensor(a)
    x = tl.tensor([0.5, -1.0], dtype=tl.float64, requires_grad=True)
    w = tl.tensor([2.0, 0.25], dtype=tl.float64, requires_grad=True)
    with tl.autograd.graph.saved_tensors_hooks(pack, unpack):
        y = _Exp.apply(x, w)
    assert [k for k, _ in log] == ["pack"] * 3
    y.sum().backward()
    assert [k for k, _ in log] == ["pack"] * 3 + ["unpack"] * 3
    e = np.exp(x.numpy() * w.numpy())
    np.testing.assert_allclose(x.grad.numpy(), e * w.numpy())
    np.testing.assert_allclose(w.grad.numpy(), e * x.numpy())


def test_saved_tensors_hooks_innermost_wins_and_scoped():
    calls = []
    outer = tl.autograd.graph.saved_tensors_hooks(lambda t: calls.append("outer") or t,
                                                  lambda t: t)
    inner = tl.autograd.graph.saved_tensors_hooks(lambda t: calls.append("inner") or t,
                                                  lambda t: t)
    x = tl.ones(2, requires_grad=True)
    with outer:
        with inner:
            _Exp.apply(x, x)
        assert calls == ["inner"] * 3
        _Exp.apply(x, x)
    assert calls == ["inner"] * 3 + ["outer"] * 3
    _Exp.apply(x, x)
    assert len(calls) == 6


def test_save_on_cpu_and_disable():
    x = tl.tensor([0.1, 0.2], dtype=tl.float64, requires_grad=True)
    with tl.autograd.graph.save_on_cpu():
        y = _Exp.apply(x, x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() * np.exp(x.numpy() ** 2))
    with tl.autograd.graph.disable_saved_tensors_hooks("no hooks here"):
        with pytest.raises(RuntimeError, match="no hooks here"):
            _Exp.apply(x, x)


def test_unpack_must_give_a_tensor():
    x = tl.ones(2, requires_grad=True)
    with tl.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: 3):
        y = _Exp.apply(x, x)
    with pytest.raises(TypeError, match="unpack_hook must return a Tensor"):
        y.sum().backward()


def test_pack_saved_for_registry_op_node():
    """The Python half of saved-tensor hooks for registry ops (the compiled tape calls it
    once wired in): packing drops the node's copy of an intermediate, unpacking restores
    the values for the backward rule, and grad of grad still goes through."""
    x = tl.tensor([0.3, -0.7], dtype=tl.float64, requires_grad=True)
    h = x * 3.0
    y = h * h                    # mul saves both inputs (the intermediate h twice)
    node = y._node
    store = {}
    with tl.autograd.graph.saved_tensors_hooks(
            lambda t: store.setdefault(len(store), t._data.copy()) is not None and len(store) - 1,
            lambda i: tl.tensor(store[i])):
        sp = pack_saved(node, (0, 1))
    assert sp is not None and len(store) == 2
    assert all(np.all(t._data == 0) for t in node.inputs)     # edge-only placeholders
    view = sp.node_for_vjp(node)
    (g0, g1) = node.op.vjp(view, tl.ones(2, dtype=tl.float64))
    np.testing.assert_allclose(g0.numpy(), 3 * x.numpy())      # d(h*h)/dh_left = h
    # grad of grad through the unpacked values keeps h's history
    with tl.enable_grad():
        (g0, _) = node.op.vjp(view, tl.ones(2, dtype=tl.float64))
    (gg,) = tl.grad(g0.sum(), [x])
    np.testing.assert_allclose(gg.numpy(), [3.0, 3.0])


# --- anomaly mode ---------------------------------------------------------------------------
def test_anomaly_accepts_inf_gradients_as_torch():
    for f in (lambda x: x.sqrt(), lambda x: 1.0 / x):
        x = tl.tensor([0.0, 1.0], requires_grad=True)
        tx = torch.tensor([0.0, 1.0], requires_grad=True)
        with tl.autograd.detect_anomaly(), torch.autograd.detect_anomaly():
            f(x).sum().backward()
            f(tx).sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


def test_anomaly_flags_nan_and_names_the_op():
    x = tl.tensor([0.0, 1.0], requires_grad=True)
    with tl.autograd.detect_anomaly():
        y = x.sqrt() * 0            # 0 * inf: NaN made by sqrt's backward
        with pytest.raises(tl.autograd.AnomalyError,
                           match=r"(?s)Function 'SqrtBackward' returned nan values in its 0th "
                                 r"output.*test_custom_function_and_saved_hooks.py"):
            y.sum().backward()


def test_anomaly_check_nan_false_and_set_detect_anomaly():
    x = tl.tensor([0.0], requires_grad=True)
    with tl.autograd.detect_anomaly(check_nan=False):
        assert tl.autograd.is_anomaly_enabled()
        assert not tl.autograd.is_anomaly_check_nan_enabled()
        (x.sqrt() * 0).sum().backward()
    assert np.isnan(x.grad.numpy()).all()
    assert not tl.autograd.is_anomaly_enabled()
    tl.autograd.set_detect_anomaly(True)
    try:
        assert tl.autograd.is_anomaly_check_nan_enabled()
        with tl.autograd.set_detect_anomaly(False):
            assert not tl.autograd.is_anomaly_enabled()
        assert tl.autograd.is_anomaly_enabled()
    finally:
        tl.autograd.set_detect_anomaly(False)
    assert not tl.autograd.is_anomaly_enabled()


# --- inference mode -------------------------------------------------------------------------
def test_inference_mode_enable_grad_does_not_record():
    for lib in (torch, tl):
        w = lib.ones(3, requires_grad=True)
        with lib.inference_mode():
            assert lib.autograd.is_inference_mode_enabled() if lib is tl else \
                torch.is_inference_mode_enabled()
            assert not lib.is_grad_enabled()
            with lib.enable_grad():
                assert lib.is_grad_enabled()
                assert not (w * 2).requires_grad
            with lib.set_grad_enabled(True):
                assert not (w * 2).requires_grad
            with lib.inference_mode(False):
                assert lib.is_grad_enabled()
                assert (w * 2).requires_grad
        assert lib.is_grad_enabled() and (w * 2).requires_grad


def test_inference_mode_bare_decorator():
    @tl.inference_mode
    def f(w):
        return w * 2, tl.autograd.is_inference_mode_enabled()
    y, inside = f(tl.ones(2, requires_grad=True))
    assert inside and not y.requires_grad and not tl.autograd.is_inference_mode_enabled()


def test_inference_tensor_rules():
    """With an inference tensor's counter (what the compiled core gives tensors made in
    inference mode once wired in): in-place changes outside inference mode and saving it
    for backward raise, with PyTorch's messages."""
    a = tl.ones(3)
    a._version = InferenceVersion([0])
    assert is_inference_tensor(a) and not is_inference_tensor(tl.ones(3))
    with tl.inference_mode():
        a.add_(1)
    np.testing.assert_allclose(a.numpy(), 2.0)
    # (the in-place ops bump the counter after writing: the values change before it raises)
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside "
                                           "InferenceMode"):
        a.add_(1)

    class Keep(tl.autograd.Function):
        @staticmethod
        def forward(ctx, x, w):
            ctx.save_for_backward(x)
            return x * w

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return None, g * x
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        Keep.apply(a, tl.ones(3, requires_grad=True))
    Keep.apply(a, tl.ones(3))          # nothing recorded: nothing saved, no error


# --- orthogonal ----------------------------------------------------------------------------
def _pair(shape, mp, triv, seed=0):
    torch.manual_seed(seed)
    w = torch.randn(*shape, dtype=torch.float64)
    tm = torch.nn.Module()
    tm.weight = torch.nn.Parameter(w.clone())
    torch.nn.utils.parametrizations.orthogonal(tm, orthogonal_map=mp, use_trivialization=triv)
    lm = tl.nn.Module()
    lm.weight = tl.nn.Parameter(tl.tensor(w.numpy().copy()))
    tl.nn.utils.parametrizations.orthogonal(lm, orthogonal_map=mp, use_trivialization=triv)
    # a non-square base is completed at random: take PyTorch's state (its keys must load)
    lm.load_state_dict({k: v.numpy() for k, v in tm.state_dict().items()})
    return tm, lm


CASES = [(s, m, t) for s in [(4, 4), (5, 3), (3, 5), (2, 4, 3)]
         for m in ["matrix_exp", "cayley", "householder"] for t in [True, False]
         if t or m == "householder"]


@pytest.mark.parametrize("shape,mp,triv", CASES)
def test_orthogonal_matches_torch_and_trains(shape, mp, triv):
    tm, lm = _pair(shape, mp, triv)
    assert sorted(tm.state_dict()) == sorted(lm.state_dict())
    Q = lm.weight.numpy()
    np.testing.assert_allclose(Q, tm.weight.detach().numpy(), atol=1e-12)
    m, n = shape[-2:]
    G = np.swapaxes(Q, -1, -2) @ Q if m >= n else Q @ np.swapaxes(Q, -1, -2)
    np.testing.assert_allclose(G, np.broadcast_to(np.eye(min(m, n)), G.shape), atol=1e-10)
    # one SGD step through the parametrization, both libraries
    rng = np.random.default_rng(1)
    tgt = rng.standard_normal(shape)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1)
    lopt = tl.optim.SGD(list(lm.parameters()), lr=0.1)
    for _ in range(2):
        topt.zero_grad()
        ((tm.weight - torch.tensor(tgt)) ** 2).sum().backward()
        topt.step()
        lopt.zero_grad()
        ((lm.weight - tl.tensor(tgt)) ** 2).sum().backward()
        lopt.step()
    np.testing.assert_allclose(lm.weight.numpy(), tm.weight.detach().numpy(), atol=1e-10)


def test_orthogonal_gradcheck_and_errors():
    lm = tl.nn.Module()
    lm.weight = tl.nn.Parameter(tl.randn(4, 3, dtype=tl.float64))
    tl.nn.utils.parametrizations.orthogonal(lm, orthogonal_map="cayley")
    orth = lm.parametrizations.weight[0]
    assert tl.autograd.gradcheck(lambda X: orth(X), [tl.randn(4, 3, dtype=tl.float64,
                                                              requires_grad=True)])
    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices"):
        tl.nn.utils.parametrizations.orthogonal(tl.nn.Linear(3, 3), name="bias")
    with pytest.raises(ValueError, match="orthogonal_map has to be one of"):
        tl.nn.utils.parametrizations.orthogonal(tl.nn.Linear(3, 3), orthogonal_map="qr")
    m = tl.nn.utils.parametrizations.orthogonal(tl.nn.Linear(3, 3), use_trivialization=False)
    with pytest.raises(NotImplementedError, match="use_trivialization=False"):
        m.weight = tl.eye(3)


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 5), st.integers(2, 5), st.integers(0, 10_000))
def test_geqrf_matches_torch(m, n, seed):
    from tensorlib.nn.utils._orthogonal import geqrf
    a = np.random.default_rng(seed).standard_normal((m, n))
    x, tau = geqrf(a)
    X, T = torch.geqrf(torch.tensor(a))
    np.testing.assert_allclose(x, X.numpy(), atol=1e-12)
    np.testing.assert_allclose(tau, T.numpy(), atol=1e-12)


def test_ops_in_inference_mode_make_inference_tensors_as_torch():
    import torch
    w, tw = tl.randn(3, requires_grad=True), torch.randn(3, requires_grad=True)
    with tl.inference_mode(), torch.inference_mode():
        y, ty = w * 2, tw * 2
        assert y.is_inference() == ty.is_inference() is True
    assert (w * 2).is_inference() == (tw * 2).is_inference() is False
    assert (y + 1).is_inference() == (ty + 1).is_inference() is False
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved for backward"):
        (y * w).sum()
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor outside"):
        y.add_(1)
    z = y.clone()           # the documented way out
    assert not z.is_inference()
    (z * w).sum().backward()
    assert w.grad is not None


def test_saved_tensors_hooks_apply_to_every_op_as_torch():
    import torch
    for lib in (tl, torch):
        calls = []
        a = lib.ones(5, requires_grad=True)
        b = lib.ones(5, requires_grad=True) * 2
        with lib.autograd.graph.saved_tensors_hooks(
                lambda t, c=calls: (c.append("pack"), t)[1],
                lambda t, c=calls: (c.append("unpack"), t)[1]):
            y = a * b
        y.sum().backward()
        assert calls == ["pack", "pack", "unpack", "unpack"], lib
    # values through a copy to NumPy and back; first and second derivatives stay right
    xv = np.array([0.5, -1.0, 2.0])
    x = tl.tensor(xv, requires_grad=True)
    with tl.autograd.graph.saved_tensors_hooks(lambda t: t.numpy().copy(),
                                               lambda a: tl.tensor(a)):
        z = (x.exp() * x.sin()).sum()
    (g,) = tl.grad(z, [x], create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), np.exp(xv) * (np.sin(xv) + np.cos(xv)))
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(xv) * np.cos(xv))


def test_factories_inside_inference_mode_make_inference_tensors():
    with tl.inference_mode():
        made = [tl.ones(2), tl.zeros(2), tl.randn(2), tl.arange(3), tl.tensor([1.0])]
    assert all(t.is_inference() for t in made)
    assert not tl.ones(2).is_inference()
    with pytest.raises(RuntimeError, match="Inplace update to inference tensor"):
        made[0].add_(1)
    with pytest.raises(RuntimeError, match="Inference tensors cannot be saved"):
        made[0] * tl.ones(2, requires_grad=True)
