"""Guards of ``tl.function`` / ``tl.compile`` see state replaced at any depth of a model.

The state walk used to stop six attribute levels down (three modules) and skip containers of
more than 512 items, so a replaced Parameter, submodule or Python flag deeper than that left
the captured graph replaying the old object: no retrace, outputs differing from eager.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn

torch = pytest.importorskip("torch")

S = nn.Sequential


class Wrap(nn.Module):
    """A plain attribute holding the inner module."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, a):
        return self.inner(a)


class Loop(nn.Module):
    """A ModuleList iterated in forward."""

    def __init__(self, inner):
        super().__init__()
        self.blocks = nn.ModuleList([inner])

    def forward(self, a):
        for b in self.blocks:
            a = b(a)
        return a


class Dict(nn.Module):
    """A ModuleDict indexed in forward."""

    def __init__(self, inner):
        super().__init__()
        self.heads = nn.ModuleDict({"main": inner})

    def forward(self, a):
        return self.heads["main"](a)


class PlainList(nn.Module):
    """A plain Python list (not registered) holding the inner module."""

    def __init__(self, inner):
        super().__init__()
        self.hidden = [inner]

    def forward(self, a):
        return self.hidden[0](a)


KINDS = {"Sequential": lambda m: S(m), "Wrap": Wrap, "ModuleList": Loop,
         "ModuleDict": Dict, "plain list": PlainList}


class LoRA(nn.Module):
    def __init__(self):
        super().__init__()
        self.base = nn.Linear(4, 2)
        self.A = nn.Parameter(tl.randn(1, 4))
        self.B = nn.Parameter(tl.randn(2, 1))
        self.disabled = False

    def forward(self, a):
        out = self.base(a)
        if not self.disabled:
            out = out + a @ self.A.t() @ self.B.t()
        return out


def nest(kind, depth, inner=None):
    inner = nn.Linear(4, 2) if inner is None else inner
    m = inner
    for _ in range(depth):
        m = KINDS[kind](m)
    return m, inner


def torch_linear(lin, x):
    """The reference: PyTorch's linear on the same (float64) values."""
    t = torch.nn.functional.linear(torch.from_numpy(x.numpy().astype(np.float64)),
                                   torch.from_numpy(lin.weight.detach().numpy().astype(np.float64)),
                                   torch.from_numpy(lin.bias.detach().numpy().astype(np.float64)))
    return t.numpy()


def close(a, b):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=1e-5, atol=1e-6)


def _makers():
    return {
        "closure": lambda m: (lambda f: (f, f))(tl.function(lambda a: m(a))),
        "argument": lambda m: (lambda g: (lambda a: g(m, a), g))(
            tl.function(lambda mod, a: mod(a))),
        "compile": lambda m: (lambda c: (c, c._compiled))(tl.compile(m)),
    }


@pytest.mark.parametrize("how", ["closure", "argument", "compile"])
def test_repro_min_parameter_three_modules_down(how):
    x = tl.randn(3, 4)
    model = S(S(S(nn.Linear(4, 2))))
    call, fn = _makers()[how](model)
    with tl.no_grad():
        call(x)
        model[0][0][0].weight = nn.Parameter(tl.zeros(2, 4))
        got = call(x).numpy()
        close(got, model(x).numpy())
        close(got, torch_linear(model[0][0][0], x))
    assert fn.trace_count == 2


def test_submodule_four_down_swapped():
    x = tl.randn(3, 4)
    model = S(S(S(S(nn.Linear(4, 2)))))
    f = tl.function(lambda a: model(a))
    with tl.no_grad():
        f(x)
        model[0][0][0][0] = nn.Linear(4, 2)
        close(f(x).numpy(), torch_linear(model[0][0][0][0], x))
    assert f.trace_count == 2
    assert any("changed" in r for r in map(str, f.retrace_reasons))


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5, 8])
def test_flag_deep_in_wrappers(depth):
    x = tl.randn(3, 4)
    lora = LoRA()
    model, _ = nest("Sequential", depth - 1, lora)
    f = tl.function(lambda a: model(a))
    with tl.no_grad():
        f(x)
        lora.disabled = True        # PEFT-style disable_adapter()
        close(f(x).numpy(), model(x).numpy())
        close(f(x).numpy(), torch_linear(lora.base, x))
    assert f.trace_count == 2


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("depth", range(1, 11))
def test_parameter_swap_any_depth(kind, depth):
    x = tl.randn(3, 4)
    model, lin = nest(kind, depth)
    f = tl.function(lambda a: model(a))
    with tl.no_grad():
        f(x)
        lin.weight = nn.Parameter(tl.full((2, 4), 0.5))
        got = f(x).numpy()
    close(got, torch_linear(lin, x))
    assert f.trace_count == 2
    with tl.no_grad():
        for _ in range(3):
            f(x)
    assert f.trace_count == 2       # the new state is guarded as well


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("depth", [1, 4, 10])
def test_buffer_and_submodule_swap_any_depth(kind, depth):
    x = tl.randn(3, 4)
    bn = nn.BatchNorm1d(4)
    model, _ = nest(kind, depth, S(bn, nn.Linear(4, 2)))
    model.eval()
    f = tl.function(lambda a: model(a))
    with tl.no_grad():
        f(x)
        bn.running_mean = tl.ones(4)
        close(f(x).numpy(), model(x).numpy())
        assert f.trace_count == 2
        inner = model
        while not isinstance(inner, S) or inner[0] is not bn:
            inner = next(iter(inner._modules.values())) if inner._modules else inner.hidden[0]
        inner[1] = nn.Linear(4, 2)
        close(f(x).numpy(), model(x).numpy())
    assert f.trace_count == 3


@settings(max_examples=15, deadline=None)
@given(kind=st.sampled_from(list(KINDS)), depth=st.integers(1, 12),
       what=st.sampled_from(["weight", "bias", "module"]))
def test_swap_property(kind, depth, what):
    x = tl.randn(2, 4)
    model, lin = nest(kind, depth, Wrap(nn.Linear(4, 2)))
    f = tl.function(lambda a: model(a))
    with tl.no_grad():
        f(x)
        if what == "module":
            lin.inner = nn.Linear(4, 2)
        else:
            setattr(lin.inner, what, nn.Parameter(tl.randn(*getattr(lin.inner, what).shape)))
        close(f(x).numpy(), torch_linear(lin.inner, x))
    assert f.trace_count == 2


class Helper:
    """A non-Module object a module holds: its flag is read in forward."""

    def __init__(self):
        self.scale = 1.0
        self.cfg = {"on": True}


class Helped(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 2)
        self.helper = Helper()

    def forward(self, a):
        out = self.lin(a)
        if self.helper.cfg["on"]:
            out = out * self.helper.scale
        return out


@pytest.mark.parametrize("depth", [0, 3, 7])
def test_flag_in_helper_object(depth):
    x = tl.randn(3, 4)
    h = Helped()
    model, _ = nest("Wrap", depth, h)
    f = tl.function(lambda a: model(a))
    with tl.no_grad():
        f(x)
        h.helper.scale = 3.0
        close(f(x).numpy(), 3.0 * torch_linear(h.lin, x))
        assert f.trace_count == 2
        h.helper.cfg["on"] = False
        close(f(x).numpy(), torch_linear(h.lin, x))
        assert f.trace_count == 3
        h.helper = Helper()     # equal state, another object: replays the right values
        close(f(x).numpy(), 1.0 * torch_linear(h.lin, x))


def test_plain_object_chain_deep():
    class Node:
        def __init__(self, nxt=None):
            self.nxt = nxt
            self.flag = False

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 2)
            self.chain = Node(Node(Node(Node(Node(Node(Node(Node())))))))

        def forward(self, a):
            n = self.chain
            while n.nxt is not None:
                n = n.nxt
            return self.lin(a) * (2.0 if n.flag else 1.0)

    x = tl.randn(3, 4)
    m = M()
    f = tl.function(lambda a: m(a))
    with tl.no_grad():
        f(x)
        n = m.chain
        while n.nxt is not None:
            n = n.nxt
        n.flag = True
        close(f(x).numpy(), m(x).numpy())
    assert f.trace_count == 2


@pytest.mark.parametrize("kind", list(KINDS))
def test_no_retrace_when_nothing_changed(kind):
    x = tl.randn(3, 4)
    model, _ = nest(kind, 10)
    f = tl.function(lambda a: model(a))
    with tl.no_grad():
        outs = [f(x).numpy() for _ in range(5)]
    assert f.trace_count == 1
    for o in outs:
        close(o, model(x).numpy())


def test_in_place_edits_and_modes_stay_seen_deep():
    x = tl.randn(3, 4)
    lin = nn.Linear(4, 2)
    model = S(S(S(S(S(nn.Dropout(0.5), lin)))))
    model.eval()
    f = tl.function(lambda a: model(a))
    with tl.no_grad():
        f(x)
        lin.weight.data += 1.0
        close(f(x).numpy(), torch_linear(lin, x))
        lin.bias.copy_(tl.zeros(2))
        close(f(x).numpy(), torch_linear(lin, x))
        model.load_state_dict({k: v * 2 for k, v in model.state_dict().items()})
        close(f(x).numpy(), torch_linear(lin, x))
        assert f.trace_count == 1       # in-place edits need no retrace
        model.train()
        f(x)
        assert f.trace_count == 2


def test_cycle_in_state_is_safe():
    x = tl.randn(3, 4)
    model = S(S(nn.Linear(4, 2)))
    model[0].back = [model, model[0]]     # a plain attribute pointing back up the tree
    f = tl.function(lambda a: model(a))
    with tl.no_grad():
        for _ in range(3):
            f(x)
    assert f.trace_count == 1


def test_very_deep_nesting_guarded():
    x = tl.randn(2, 4)
    model, lin = nest("Sequential", 60)
    f = tl.function(lambda a: model(a))
    with tl.no_grad():
        f(x)
        f(x)
        assert f.trace_count == 1
        lin.weight = nn.Parameter(tl.zeros(2, 4))
        close(f(x).numpy(), torch_linear(lin, x))
    assert f.trace_count == 2


@pytest.mark.parametrize("shape", ["deep", "wide"])
def test_thousand_modules(shape):
    x = tl.randn(1, 1)
    if shape == "deep":
        model = S(*[nn.Linear(1, 1) for _ in range(1000)])
        layer = model[700]
    else:
        class Wide(nn.Module):
            def __init__(self):
                super().__init__()
                self.branches = nn.ModuleList([nn.Linear(1, 1) for _ in range(1000)])

            def forward(self, a):
                out = a
                for b in self.branches:
                    out = out + b(a)
                return out
        model = Wide()
        layer = model.branches[700]
    f = tl.function(lambda a: model(a))
    with tl.no_grad():
        for _ in range(3):
            f(x)
        assert f.trace_count == 1
        layer.weight = nn.Parameter(tl.full((1, 1), 3.0))   # past the old 512-item limit
        close(f(x).numpy(), model(x).numpy())
    assert f.trace_count == 2


def test_peft_merge_and_unload_via_set_submodule():
    class LoRALinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.base = nn.Linear(4, 4)
            self.lora_A = nn.Parameter(tl.randn(2, 4))
            self.lora_B = nn.Parameter(tl.randn(4, 2))

        def forward(self, a):
            return self.base(a) + a @ self.lora_A.t() @ self.lora_B.t()

    class Outer(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.base_model = nn.ModuleDict({"model": inner})

        def forward(self, a):
            return self.base_model["model"](a)

    m = Outer(S(S(LoRALinear(), nn.ReLU()), S(LoRALinear())))
    m.eval()
    f = tl.compile(m)
    x = tl.randn(3, 4)
    with tl.no_grad():
        before = f(x).numpy()
        for n, mod in list(m.named_modules()):
            if isinstance(mod, LoRALinear):
                new = nn.Linear(4, 4)
                new.weight.copy_(mod.base.weight + mod.lora_B @ mod.lora_A + 0.1)
                new.bias.copy_(mod.base.bias)
                m.set_submodule(n, new)
        got, eager = f(x).numpy(), m(x).numpy()
    assert np.abs(eager - before).max() > 1e-3
    close(got, eager)
    assert f._compiled.trace_count == 2


def test_requires_grad_toggle_deep_in_training_step():
    x = tl.randn(3, 4)
    model = S(S(S(S(nn.Linear(4, 1)))))
    opt = tl.optim.SGD(model.parameters(), lr=0.1)

    def step(a):
        opt.zero_grad()
        loss = model(a).pow(2).mean()
        loss.backward()
        opt.step()
        return loss.detach()

    f = tl.function(step)
    f(x)
    lin = model[0][0][0][0]
    lin.weight.requires_grad_(False)
    lin.weight.grad = None
    w = lin.weight.detach().numpy().copy()
    f(x)
    np.testing.assert_array_equal(lin.weight.detach().numpy(), w)
    assert f.trace_count == 2


def test_state_deeper_than_recursion_allows_warns_and_runs():
    class Node:
        def __init__(self, nxt=None):
            self.nxt = nxt

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 2)
            head = None
            for _ in range(3000):       # a linked list: deeper than the walk recurses
                head = Node(head)
            self.chain = head

        def forward(self, a):
            return self.lin(a)

    m = M()
    x = tl.randn(3, 4)
    f = tl.function(lambda a: m(a))
    with tl.no_grad(), pytest.warns(UserWarning, match="nested more than"):
        f(x)
    with tl.no_grad(), pytest.warns(UserWarning, match="nested more than"):
        f(x)
        m.lin.weight = nn.Parameter(tl.zeros(2, 4))
        close(f(x).numpy(), torch_linear(m.lin, x))     # the retrace warns again
    assert f.trace_count == 2
