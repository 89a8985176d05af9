"""tl.function gaps: a training step with a parameter the loss never reaches traced on every
call; SGD with dampening traced twice; size refusals without the user's line."""
import copy
import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.graph import TensorSpec
from tensorlib.onnx.context import UnsupportedOpError

torch = pytest.importorskip("torch")

HERE = os.path.basename(__file__)


class Net(tl.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = tl.nn.Linear(4, 1)
        self.b = tl.nn.Linear(4, 1)
        self.unused = tl.nn.Linear(4, 4)
        self.use_b = False

    def forward(self, x):
        y = self.a(x)
        if self.use_b:
            y = y + self.b(x)
        return y


OPTS = {
    "adamw": lambda ps: tl.optim.AdamW(ps, lr=1e-2),
    "sgd": lambda ps: tl.optim.SGD(ps, lr=1e-2),
    "sgd_momentum": lambda ps: tl.optim.SGD(ps, lr=1e-2, momentum=0.9),
    "sgd_dampening": lambda ps: tl.optim.SGD(ps, lr=1e-2, momentum=0.9, dampening=0.5),
}


def _batches(n):
    return [tl.tensor(np.random.RandomState(i).randn(8, 4).astype(np.float32))
            for i in range(n)]


def _step_zero_first(m, opt, clip):
    def step(x):
        loss = m(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        if clip:
            tl.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss
    return step


def _step_keep(m, opt, flag):
    def step(x):
        loss = m(x).pow(2).mean()
        opt.zero_grad(set_to_none=flag)
        loss.backward()
        opt.step()
        return loss
    return step


def _step_keep_const(m, opt):
    def step(x):
        loss = m(x).pow(2).mean()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        return loss
    return step


def _step_accum(m, opt):
    def step(x, i):
        loss = m(x).pow(2).mean() / 2
        loss.backward()
        if i % 2 == 1:
            opt.step()
            opt.zero_grad()
        return loss
    return step


def _run(make, opt_name, n=6, use_b=lambda i: False, accum=False):
    """The same steps eagerly and captured, from equal models: (eager, captured) as
    (losses, params, grads), and the captured function."""
    tl.manual_seed(0)
    m = Net()
    twin = copy.deepcopy(m)
    out, fn = [], None
    for model, captured in ((twin, False), (m, True)):
        opt = OPTS[opt_name](model.parameters())
        body = make(model, opt)
        f = tl.function(body) if captured else body
        losses = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, x in enumerate(_batches(n)):
                model.use_b = use_b(i)
                losses.append(float(f(x, i % 2) if accum else f(x)))
        out.append((losses, [p.detach().numpy().copy() for p in model.parameters()],
                    [None if p.grad is None else p.grad.numpy().copy()
                     for p in model.parameters()]))
        fn = f
    return out[0], out[1], fn


def _assert_same(eager, captured):
    np.testing.assert_allclose(captured[0], eager[0], rtol=1e-6, atol=1e-7)
    for a, b in zip(eager[1], captured[1]):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)
    for a, b in zip(eager[2], captured[2]):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


# --- (1) a parameter the loss never reaches --------------------------------------------------

@pytest.mark.parametrize("opt_name", list(OPTS))
@pytest.mark.parametrize("clip", [True, False])
def test_unused_parameter_traces_once(opt_name, clip):
    eager, captured, f = _run(lambda m, o: _step_zero_first(m, o, clip), opt_name)
    assert f.trace_count == 1, f.retrace_reasons
    _assert_same(eager, captured)
    assert captured[2][-1] is None      # unused.bias: still no gradient, as eagerly


def test_issue_repro_five_calls_one_trace():
    m = Net()
    opt = tl.optim.AdamW(m.parameters(), lr=1e-3)

    @tl.function
    def step(x):
        loss = m(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        tl.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        return loss
    for _ in range(5):
        step(tl.randn(8, 4))
    assert step.trace_count == 1
    assert m.unused.weight.grad is None


@pytest.mark.parametrize("opt_name", ["adamw", "sgd_momentum"])
def test_zero_grad_keep_tensors_stable(opt_name):
    # set_to_none=False keeps zeroed tensors: unused parameters keep None, as eagerly
    eager, captured, f = _run(_step_keep_const, opt_name, n=8)
    _assert_same(eager, captured)
    assert f.trace_count <= 2, f.retrace_reasons
    before = f.trace_count
    for x in _batches(3):
        f(x)
    assert f.trace_count == before


@pytest.mark.parametrize("flag", [True, False])
def test_zero_grad_set_to_none_from_a_variable(flag):
    # a flag the code cannot read before the call may keep the tensors: the unused
    # parameters' .grad stays None (it came back as zeros when taken for a drop)
    eager, captured, f = _run(lambda m, o: _step_keep(m, o, flag), "sgd_momentum", n=6)
    _assert_same(eager, captured)
    assert f.trace_count <= 2, f.retrace_reasons


@pytest.mark.parametrize("opt_name", ["adamw", "sgd"])
def test_parameter_used_on_some_calls(opt_name):
    pattern = lambda i: i in (2, 3, 5, 8, 9)    # noqa: E731
    eager, captured, f = _run(lambda m, o: _step_zero_first(m, o, False), opt_name, n=12,
                              use_b=pattern)
    _assert_same(eager, captured)
    # one graph per value of use_b: b's .grad, set or not, is dropped unread by zero_grad()
    assert f.trace_count == 2, f.retrace_reasons
    assert all("use_b" in r for r in f.retrace_reasons)


@pytest.mark.parametrize("opt_name", ["adamw", "sgd_momentum"])
def test_gradient_accumulation_with_unused_parameter(opt_name):
    eager, captured, f = _run(_step_accum, opt_name, n=10, accum=True)
    _assert_same(eager, captured)
    assert f.trace_count <= 3, f.retrace_reasons
    before = f.trace_count
    for i, x in enumerate(_batches(4)):
        f(x, i % 2)
    assert f.trace_count == before


# --- (2) SGD with momentum and dampening ------------------------------------------------------

def _sgd_runs(kw, steps=5, captured=True, unused=False):
    rs = np.random.RandomState(0)
    W = rs.randn(3, 4)
    X = [rs.randn(5, 4) for _ in range(steps)]
    w = tl.tensor(W.copy(), requires_grad=True)
    v = tl.tensor(np.ones(2), requires_grad=True)
    opt = tl.optim.SGD([w, v] if unused else [w], lr=0.1, **kw)

    def step(x):
        opt.zero_grad()
        loss = (x @ w.T).tanh().sum()
        loss.backward()
        opt.step()
        return loss
    f = tl.function(step) if captured else step
    losses = [float(f(tl.tensor(x))) for x in X]
    tw = torch.tensor(W.copy(), requires_grad=True)
    tv = torch.ones(2, dtype=torch.float64, requires_grad=True)
    topt = torch.optim.SGD([tw, tv] if unused else [tw], lr=0.1, **kw)
    tlosses = []
    for x in X:
        topt.zero_grad()
        loss = (torch.tensor(x) @ tw.T).tanh().sum()
        loss.backward()
        topt.step()
        tlosses.append(float(loss))
    return f, w, opt, losses, tw, topt, tlosses


@settings(max_examples=6, deadline=None)
@given(mom=st.sampled_from([0.5, 0.9]), damp=st.sampled_from([0.1, 0.3, 0.9]),
       wd=st.sampled_from([0.0, 0.01]), maximize=st.booleans())
def test_sgd_dampening_traces_once_and_matches_torch(mom, damp, wd, maximize):
    kw = dict(momentum=mom, dampening=damp, weight_decay=wd, maximize=maximize)
    f, w, _, losses, tw, _, tlosses = _sgd_runs(kw)
    assert f.trace_count == 1, f.retrace_reasons
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(losses, tlosses, rtol=0, atol=1e-12)
    _, we, _, elosses, _, _, _ = _sgd_runs(kw, captured=False)
    np.testing.assert_allclose(w.detach().numpy(), we.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(losses, elosses, rtol=0, atol=1e-12)


def test_sgd_dampening_state_dict_keys_as_torch():
    kw = dict(momentum=0.9, dampening=0.3)
    f, _, opt, _, _, topt, _ = _sgd_runs(kw, unused=True)
    assert f.trace_count == 1
    sd, tsd = opt.state_dict(), topt.state_dict()
    mine = {k: sorted(v) for k, v in sd["state"].items() if v}
    theirs = {k: sorted(v) for k, v in tsd["state"].items() if v}
    assert mine == theirs == {0: ["momentum_buffer"]}
    np.testing.assert_allclose(sd["state"][0]["momentum_buffer"].numpy(),
                               tsd["state"][0]["momentum_buffer"].numpy(), atol=1e-12)


def test_sgd_dampening_round_trip_with_torch():
    kw = dict(momentum=0.9, dampening=0.4)
    f, w, opt, _, tw, topt, _ = _sgd_runs(kw, steps=3)
    # torch's state into a fresh tensorlib SGD whose captured step starts from it
    w2 = tl.tensor(tw.detach().numpy().copy(), requires_grad=True)
    opt2 = tl.optim.SGD([w2], lr=0.1, **kw)
    tsd = topt.state_dict()
    opt2.load_state_dict({"state": {0: {"momentum_buffer": tl.tensor(
        tsd["state"][0]["momentum_buffer"].numpy())}}, "param_groups": opt2.state_dict()[
        "param_groups"]})

    @tl.function
    def step2(x):
        opt2.zero_grad()
        loss = (x @ w2.T).tanh().sum()
        loss.backward()
        opt2.step()
        return loss
    # and this tensorlib state into torch
    tw3 = torch.tensor(w.detach().numpy().copy(), requires_grad=True)
    topt3 = torch.optim.SGD([tw3], lr=0.1, **kw)
    sd = opt.state_dict()
    topt3.load_state_dict({"state": {0: {"momentum_buffer": torch.tensor(
        sd["state"][0]["momentum_buffer"].numpy())}}, "param_groups": topt3.state_dict()[
        "param_groups"]})
    for x in np.random.RandomState(1).randn(3, 5, 4):
        step2(tl.tensor(x))
        f(tl.tensor(x))
        for o, p in ((topt, tw), (topt3, tw3)):
            o.zero_grad()
            (torch.tensor(x) @ p.T).tanh().sum().backward()
            o.step()
    assert step2.trace_count == 1
    np.testing.assert_allclose(w2.detach().numpy(), tw.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(w.detach().numpy(), tw3.detach().numpy(), atol=1e-12)


def test_sgd_dampening_eager_step_after_capture_primed():
    # a capture that primed the state but whose graph never stepped: an eager first step
    # still takes the gradient undamped
    kw = dict(momentum=0.9, dampening=0.5)
    w = tl.tensor(np.ones(3), requires_grad=True)
    opt = tl.optim.SGD([w], lr=0.1, **kw)
    st = opt._prime_first_step(w)
    opt.state[w] = st
    w.grad = tl.tensor(np.array([1.0, 2.0, 3.0]))
    opt.step()
    tw = torch.ones(3, dtype=torch.float64, requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.1, **kw)
    tw.grad = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    topt.step()
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), atol=1e-12)


def test_sgd_nesterov_with_dampening_still_refused():
    with pytest.raises(ValueError, match="SGD: Nesterov"):
        tl.optim.SGD([tl.zeros(2, requires_grad=True)], momentum=0.9, dampening=0.1,
                     nesterov=True)


# --- (3) the user's line in size refusals ------------------------------------------------------

def _line_of(marker: str) -> int:
    with open(__file__) as fh:
        for k, text in enumerate(fh, 1):
            if text.rstrip().endswith(f"# {marker}"):
                return k
    raise AssertionError(marker)


def test_structural_retrace_warning_names_the_line():
    @tl.function(input_signature=[TensorSpec((None, 3))])
    def f(x):
        h = x + 1
        return h * (1.0 / x.shape[0])      # MARK-structural
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        a = f(tl.ones(2, 3))
        b = f(tl.ones(4, 3))
    msgs = [str(m.message) for m in w if "built another graph" in str(m.message)]
    assert msgs, [str(m.message) for m in w]
    assert f"at {HERE}:{_line_of('MARK-structural')}" in msgs[0]
    np.testing.assert_allclose(a.numpy(), np.full((2, 3), 1.0))
    np.testing.assert_allclose(b.numpy(), np.full((4, 3), 0.5))


class _Scaled(tl.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = tl.nn.Linear(4, 4)

    def forward(self, x):
        h = self.lin(x).relu()
        return h * (1.0 / x.shape[0])      # MARK-onnx


class _Escaped(tl.nn.Module):
    def forward(self, x):
        return x * x.shape[0]      # MARK-escape


@pytest.mark.parametrize("cls, mark", [(_Scaled, "MARK-onnx"), (_Escaped, "MARK-escape")])
def test_onnx_export_refusal_names_the_line(tmp_path, cls, mark):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UnsupportedOpError) as ei:
            tl.onnx.export(cls(), tl.randn(3, 4), str(tmp_path / "m.onnx"), input_names=["x"],
                           dynamic_axes={"x": {0: "n"}})
    assert f"at {HERE}:{_line_of(mark)}" in str(ei.value)


def test_structural_get_graph_keeps_the_line_in_size_specialized():
    @tl.function(input_signature=[TensorSpec((None, 3))])
    def f(x):
        return x * float(str(x.shape[0]))      # MARK-fromstr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = f.get_graph(tl.ones(2, 3))
    assert f"at {HERE}:{_line_of('MARK-fromstr')}" in (g.size_specialized or "")
    assert g.inputs[0].shape == (2, 3)


class _NumpyEscaped(tl.nn.Module):
    def forward(self, x):
        return x * int(np.prod(x.shape))      # MARK-numpy


def test_size_escaped_inside_numpy_names_the_users_line(tmp_path):
    # the innermost frame is NumPy's (fromnumeric.py); the message names the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(UnsupportedOpError) as ei:
            tl.onnx.export(_NumpyEscaped(), tl.randn(3, 4), str(tmp_path / "m.onnx"),
                           input_names=["x"], dynamic_axes={"x": {0: "n"}})
    assert f"at {HERE}:{_line_of('MARK-numpy')}" in str(ei.value)
