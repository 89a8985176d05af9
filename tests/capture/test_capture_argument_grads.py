"""tl.function: the .grad of tensors passed as ARGUMENTS after a replayed step.

Each body runs three ways on the same calls: PyTorch eagerly (the reference), tensorlib
eagerly and tensorlib captured (4+ calls of one shape, so calls replay, then a new shape);
outputs, the arguments' .grad (None or its value) and results' .grad must agree.
"""
import warnings

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")


def _np(t):
    return None if t is None else t.detach().cpu().numpy()


def _same(a, b, what):
    a, b = _np(a), _np(b)
    assert (a is None) == (b is None), f"{what}: {a} vs {b}"
    if a is not None:
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=what)


def _check(body, calls, *, reuse=False, rg=None, traces=None, **fkw):
    """``body(M, *args)`` with M = torch or tensorlib; ``calls``: lists of float64 arrays.
    ``reuse``: the same argument tensors on every call of a shape (their .grad carries
    over, so eager adds into it). Returns the tl.function."""
    step = tl.function(lambda *a: body(tl, *a), **fkw)
    made: dict = {}
    for n, arrays in enumerate(calls):
        flags = rg or [True] * len(arrays)
        key = tuple(a.shape for a in arrays)
        if not reuse or key not in made:
            made[key] = ([torch.tensor(a, requires_grad=f) for a, f in zip(arrays, flags)],
                         [tl.tensor(a, requires_grad=f) for a, f in zip(arrays, flags)],
                         [tl.tensor(a, requires_grad=f) for a, f in zip(arrays, flags)])
        tt, te, tc = made[key]
        want, got_e, got_c = body(torch, *tt), body(tl, *te), step(*tc)
        for w, e, c in zip(_flat(want), _flat(got_e), _flat(got_c)):
            _same(w, e, f"call {n}: eager output")
            _same(w, c, f"call {n}: captured output")
            if isinstance(w, torch.Tensor) and (w.is_leaf or w.retains_grad):
                _same(w.grad, c.grad, f"call {n}: captured result's .grad")
        for k, (w, e, c) in enumerate(zip(tt, te, tc)):
            _same(w.grad, e.grad, f"call {n}: eager argument {k} .grad")
            _same(w.grad, c.grad, f"call {n}: captured argument {k} .grad")
    if traces is not None:
        assert step.trace_count == traces, step.retrace_reasons
    return step


def _flat(o):
    return list(o) if isinstance(o, (tuple, list)) else [o]


def _shapes(*shapes, n=4):
    rng = np.random.default_rng(0)
    return [[rng.standard_normal(s) for s in shape] for shape in shapes for _ in range(n)]


def _square(M, x):
    (x * x).sum().backward()
    return x * 1.0


def test_backward_sets_argument_grad_on_every_replay():
    # the reported case: replays left x.grad None (fails before the fix)
    _check(_square, _shapes([(7,)], [(5,)]), traces=2)


def test_grad_of_argument_accumulates_when_set_before_the_call():
    # the same tensors each call: the first call sets x.grad, later ones add into it
    step = _check(_square, _shapes([(6,)], [(3,)], n=5), reuse=True)
    # None at the call and set at the call are two graphs per shape, then replays
    assert step.trace_count == 4
    assert any(v.name == "arg0.grad" for g in step.graphs for v in g.inputs)


def test_set_grad_at_the_call_is_guarded_and_worded():
    step = tl.function(lambda x: _square(tl, x))
    x = tl.tensor(np.ones(3), requires_grad=True)
    for _ in range(3):
        step(tl.tensor(np.ones(3), requires_grad=True))
    assert step.trace_count == 1
    x.grad = tl.tensor(np.full(3, 5.0))
    step(x)
    np.testing.assert_allclose(x.grad.numpy(), 7.0)
    assert step.trace_count == 2 and ".grad set" in step.retrace_reasons[-1]


def test_argument_without_requires_grad_stays_without_grad():
    def body(M, x, w):
        (x * w).sum().backward()
        return w * 2.0
    _check(body, _shapes([(4,), (4,)], [(2,), (2,)]), rg=[False, True], traces=2)


def test_same_tensor_passed_twice():
    def body(M, a, b):
        (a * b + a).sum().backward()
        return a + b
    calls = _shapes([(5,)], [(3,)])
    step = tl.function(lambda a, b: body(tl, a, b))
    for arrays in calls:
        xt = torch.tensor(arrays[0], requires_grad=True)
        xc = tl.tensor(arrays[0], requires_grad=True)
        _same(body(torch, xt, xt), step(xc, xc), "output")
        _same(xt.grad, xc.grad, "the argument's .grad")
    assert step.trace_count == 2


def test_fgsm_reads_the_argument_grad_after_backward():
    def fgsm(M, x, w):
        loss = ((x @ w).tanh() ** 2).sum()
        loss.backward()
        return (x + 0.1 * x.grad.sign()).detach(), loss.detach()
    _check(fgsm, _shapes([(3, 4), (4, 2)], [(5, 4), (4, 2)]), traces=2)


@pytest.mark.parametrize("how", ["zero", "none", "scale"])
def test_argument_grad_changed_inside_the_step(how):
    def body(M, x):
        (x.sin() * x).sum().backward()
        if how == "zero":
            x.grad.zero_()
        elif how == "none":
            x.grad = None
        else:
            x.grad.mul_(3.0)
        return x.cos()
    _check(body, _shapes([(4,)], [(6,)], n=5), reuse=True)


def test_set_grad_zeroed_in_place_before_backward():
    # x.grad.zero_() at the start writes into the caller's gradient tensor (in place, so
    # references to it see the zeros), then backward adds
    def body(M, x):
        if x.grad is not None:
            x.grad.zero_()
        (x ** 3).sum().backward()
        return x * 2.0
    _check(body, _shapes([(4,)], [(2,)], n=5), reuse=True)
    step = tl.function(lambda x: body(tl, x))
    x = tl.tensor(np.ones(3), requires_grad=True)
    for _ in range(4):
        held = x.grad
        step(x)
        if held is not None:
            assert x.grad is held or np.all(held.numpy() == 0)


def test_retain_grad_on_a_returned_intermediate():
    def body(M, x):
        y = x * 2.0
        y.retain_grad()
        (y * y).sum().backward()
        return y
    _check(body, _shapes([(3,)], [(4,)]), traces=2)


def test_hook_registered_on_an_argument_inside_the_step():
    def body(M, x):
        x.register_hook(lambda g: g * 3.0)
        (x * x).sum().backward()
        return x * 1.0
    _check(body, _shapes([(3,)], [(5,)]), traces=2)
    # the replayed call's argument carries the hook afterwards, as eager's does
    step = tl.function(lambda x: body(tl, x))
    for _ in range(3):
        x = tl.tensor(np.ones(2), requires_grad=True)
        step(x)
    (x * 1.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2.0 * 3 + 3.0)


def test_hook_registered_outside_is_guarded():
    step = tl.function(lambda x: _square(tl, x))
    for scale in (1.0, 1.0, 5.0, 1.0):
        x = tl.tensor(np.ones(3), requires_grad=True)
        if scale != 1.0:
            x.register_hook(lambda g, s=scale: g * s)
        step(x)
        np.testing.assert_allclose(x.grad.numpy(), 2.0 * scale)
    assert step.trace_count == 2


def test_backward_twice_with_retain_graph():
    def body(M, x):
        loss = (x.exp() * x).sum()
        loss.backward(retain_graph=True)
        (2.0 * loss).backward()
        return loss.detach()
    _check(body, _shapes([(3,)], [(2,)]), traces=2)
    _check(body, _shapes([(3,)], n=5), reuse=True)


def test_autograd_grad_leaves_arguments_without_grad():
    def body(M, x):
        (g,) = M.autograd.grad((x * x * x).sum(), [x])
        return g
    _check(body, _shapes([(4,)], [(2,)]), traces=2)


@pytest.mark.parametrize("kw", [{"dynamic": True},
                                {"input_signature": [tl.TensorSpec((None, 3), "float64")]}])
def test_none_dims(kw):
    def body(M, x):
        (x.tanh() * x).sum().backward()
        return x.grad * 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        step = _check(body, _shapes([(4, 3)], [(6, 3)]), **kw)
        _check(body, _shapes([(4, 3)], [(6, 3)], n=5), reuse=True, **kw)
    assert step.trace_count == 2     # a training step: per shape


def test_argument_with_history_from_outside_runs_eagerly():
    # backward() through the view reaches its base, which no graph input stands for
    def body(M, x):
        (x * x).sum().backward()
        return x.detach() * 1.0
    step = tl.function(lambda x: body(tl, x))
    with pytest.warns(UserWarning, match="autograd history of an argument"):
        for k in range(4):
            b = tl.tensor(np.arange(5.0) + k, requires_grad=True)
            bt = torch.tensor(np.arange(5.0) + k, requires_grad=True)
            _same(body(torch, bt[1:]), step(b[1:]), "output")
            _same(bt.grad, b.grad, "the base's .grad")
    assert step.trace_count == 1
    # a leaf view of a tensor that needs no grad is a plain argument
    _check(lambda M, x: _square(M, x), [[np.arange(6.0)[1:]] for _ in range(4)], traces=1)


def test_saved_graph_takes_the_argument_grad_as_an_input():
    """A graph has no Python tensors: the .grad the call starts with is an input named
    ``<arg>.grad`` (when the step reads it), and what the replay sets on .grad is an
    output of the plan, not of the graph (return x.grad to export it)."""
    step = tl.function(lambda x: _square(tl, x))
    x = tl.tensor(np.ones(3), requires_grad=True)
    for _ in range(3):
        step(x)
    g = step.graphs[-1]
    assert [v.name for v in g.inputs] == ["x", "x.grad"]
    assert len(g.outputs) == 1
    out = g.run({0: np.full(3, 2.0), 1: np.zeros(3)})
    np.testing.assert_allclose(out.numpy(), 2.0)
