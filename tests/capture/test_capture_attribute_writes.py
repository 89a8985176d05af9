"""tl.function: attributes a forward sets (``self.aux = ...``) are outputs of the graph."""
import warnings

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")


class Aux(tl.nn.Module):
    def __init__(self, init="missing"):
        super().__init__()
        self.lin = tl.nn.Linear(4, 4)
        if init == "none":
            self.aux = None
        elif init == "tensor":
            self.aux = tl.zeros(())

    def forward(self, x):
        y = self.lin(x)
        self.aux = (y ** 2).mean()
        return y


class TAux(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4).double()

    def forward(self, x):
        y = self.lin(x)
        self.aux = (y ** 2).mean()
        return y


def _pair(seed=0):
    m = Aux()
    m.lin.weight = tl.nn.Parameter(m.lin.weight.double())
    m.lin.bias = tl.nn.Parameter(m.lin.bias.double())
    tm = TAux()
    with torch.no_grad():
        tm.lin.weight.copy_(torch.from_numpy(m.lin.weight.numpy()))
        tm.lin.bias.copy_(torch.from_numpy(m.lin.bias.numpy()))
    return m, tm


@pytest.mark.parametrize("read", [True, False])
def test_train_step_matches_torch_and_traces_once(read):
    m, tm = _pair()
    opt = tl.optim.SGD(m.parameters(), lr=0.05)
    topt = torch.optim.SGD(tm.parameters(), lr=0.05)

    @tl.function
    def step(x):
        loss = m(x).sum() + (m.aux if read else 0.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    rng = np.random.default_rng(0)
    for _ in range(6):
        xn = rng.standard_normal((8, 4))
        loss = step(tl.tensor(xn))
        tl_aux = float(m.aux)
        tloss = tm(torch.from_numpy(xn)).sum() + (tm.aux if read else 0.0)
        topt.zero_grad()
        tloss.backward()
        topt.step()
        np.testing.assert_allclose(float(loss), tloss.item(), rtol=1e-10)
        np.testing.assert_allclose(tl_aux, tm.aux.item(), rtol=1e-10)
    np.testing.assert_allclose(m.lin.weight.numpy(), tm.lin.weight.detach().numpy(),
                               rtol=1e-10)
    # (a second trace may come from the known .grad settling, never from the attribute)
    assert step.trace_count <= 2, step.retrace_reasons
    assert not any("aux" in r for r in step.retrace_reasons), step.retrace_reasons


@pytest.mark.parametrize("init", ["missing", "none", "tensor"])
def test_initial_value_does_not_matter(init):
    m = Aux(init)
    opt = tl.optim.SGD(m.parameters(), lr=0.1)

    @tl.function
    def step(x):
        loss = m(x).sum() + m.aux
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    x = tl.randn(8, 4)
    seen = []
    for _ in range(5):
        step(x)
        seen.append(m.aux)
    assert step.trace_count == 1, step.retrace_reasons
    # each call leaves a new tensor (as eager does), holding that call's value
    assert len({id(a) for a in seen}) == 5
    with tl.no_grad():
        want = float((m.lin(x) ** 2).mean())
    step(x)
    assert abs(float(m.aux) - want) < 1e-5
    # the replayed value has no autograd history (documented)
    assert not m.aux.requires_grad


def test_read_before_write_stays_an_input():
    m = Aux("none")
    opt = tl.optim.SGD(m.parameters(), lr=0.1)

    @tl.function(max_retraces=100)
    def step(x):
        prev = m.aux.detach() if m.aux is not None else 0.0
        loss = m(x).sum() + 0.5 * prev
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    m2 = Aux("none")
    m2.load_state_dict(m.state_dict())
    opt2 = tl.optim.SGD(m2.parameters(), lr=0.1)
    x = tl.randn(8, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(4):
            got = float(step(x))
            prev = m2.aux.detach() if m2.aux is not None else 0.0
            loss = m2(x).sum() + 0.5 * prev
            opt2.zero_grad()
            loss.backward()
            opt2.step()
            assert abs(got - float(loss)) < 1e-4
    # the value read is an input: every call whose value differs traces (never a stale replay)
    assert any("aux" in r for r in step.retrace_reasons)


class Inner(tl.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = tl.nn.Parameter(tl.ones(3))

    def forward(self, x):
        self.kl = (self.w ** 2).sum()
        self.parts = [self.w.sum(), None, (self.w * 2).sum()]
        return x * self.w


def test_nested_submodules_and_fresh_containers():
    m = tl.nn.Sequential(Inner(), Inner())
    opt = tl.optim.SGD(m.parameters(), lr=0.1)

    @tl.function
    def step(x):
        opt.zero_grad()
        loss = m(x).sum() + m[0].kl + m[1].kl
        loss.backward()
        opt.step()
        return loss

    for _ in range(5):
        before = [layer.w.detach().clone() for layer in m]    # kl is taken before the step
        step(tl.ones(3))
        for layer, w in zip(m, before):
            assert abs(float(layer.kl) - float((w ** 2).sum())) < 1e-5
            assert layer.parts[1] is None
            assert abs(float(layer.parts[2]) - 2 * float(w.sum())) < 1e-5
    assert step.trace_count == 1, step.retrace_reasons


class Appender(tl.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = tl.nn.Linear(2, 2)
        self.losses = []

    def forward(self, x):
        y = self.lin(x)
        self.losses.append(y.sum())
        return y


def test_list_appended_in_place_retraces_never_stale():
    m = Appender()

    @tl.function(max_retraces=100)
    def f(x):
        return m(x)

    x = tl.randn(3, 2)
    with tl.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(4):
            f(x)
    assert len(m.losses) == 4          # every call appended, as eager
    with tl.no_grad():
        want = float(m.lin(x).sum())
    assert all(abs(float(v) - want) < 1e-5 for v in m.losses)


def test_unread_attribute_change_still_one_retrace():
    class Cfg(tl.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = tl.nn.Linear(2, 2)
            self.note = 0

        def forward(self, x):
            return self.lin(x)

    m = Cfg()

    @tl.function
    def f(x):
        return m(x)

    x = tl.randn(3, 2)
    with tl.no_grad():
        f(x)
        f(x)
        m.note = 1          # known: an attribute the code never reads changes -> retrace
        f(x)
        f(x)
    assert f.trace_count == 2


def test_compile_module_sets_attribute():
    m = Aux()
    cm = tl.compile(m)
    x = tl.randn(5, 4)
    with tl.no_grad():
        for _ in range(3):
            cm(x)
        want = float((m.lin(x) ** 2).mean())
        m.lin.weight.data = m.lin.weight.data * 2
        cm(x)
        want2 = float((m.lin(x) ** 2).mean())
    assert abs(float(m.aux) - want2) < 1e-5 and abs(want - want2) > 1e-3
    assert cm._compiled.trace_count == 1


def test_value_read_through_dict_guard_restored():
    # the watch is removed after the trace: the class has no descriptor left
    m = Aux()

    @tl.function
    def f(x):
        return m(x)

    with tl.no_grad():
        f(tl.randn(2, 4))
    assert "aux" not in type(m).__dict__
    assert "aux" in m.__dict__
