"""Every way of changing a captured model's state retraces (or raises), never replays stale.

Session 23 made the per-call guard check cheaper (a tensor reached twice checked once, keys
compared in one C loop, dict values read through ``dict.values`` / ``OrderedDict.values``).
These tests mutate a model after its graph was captured, through every write path (module
``__setattr__`` / ``__delattr__``, registration, container mutation, parametrize, lazy
modules, ``load_state_dict``, ``.data`` / ``requires_grad_``, and writes that bypass
``__setattr__``: ``object.__setattr__``, ``__dict__``, containers mutated in place,
``OrderedDict.move_to_end``), and compare the captured call against eager (and eager against
PyTorch) after each one.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn as nn
from tensorlib.nn.utils import parametrize

torch = pytest.importorskip("torch")


def close(a, b) -> None:
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                               rtol=1e-5, atol=1e-6)


def torch_ref(model, x) -> np.ndarray:
    """PyTorch's forward (float64) of a tensorlib Sequential of Linear / ReLU / Tanh, read
    through its modules' current parameters (and hooks' scale, see ``Scale``)."""
    t = torch.from_numpy(x.numpy().astype(np.float64))
    for m in model:
        if isinstance(m, nn.Linear):
            w = torch.from_numpy(m.weight.detach().numpy().astype(np.float64))
            b = None if m.bias is None else \
                torch.from_numpy(m.bias.detach().numpy().astype(np.float64))
            t = torch.nn.functional.linear(t, w, b)
        elif isinstance(m, (nn.ReLU, _ReLULike)):
            t = torch.relu(t)
        elif isinstance(m, nn.Tanh):
            t = torch.tanh(t)
        else:
            raise AssertionError(type(m))
        for h in m._forward_hooks.values():
            t = t * h.k
    return t.numpy()


class Scale:
    """A forward hook scaling the output (a plain object: its ``k`` is guarded state)."""

    def __init__(self, k: float) -> None:
        self.k = k

    def __call__(self, mod, inp, out):
        return out * self.k


def mlp(n: int = 3, width: int = 4) -> nn.Sequential:
    layers: list = []
    for _ in range(n):
        layers += [nn.Linear(width, width), nn.Tanh()]
    return nn.Sequential(*layers)


def captured(model):
    return tl.function(lambda a: model(a))


def settle(f, x) -> None:
    with tl.no_grad():
        f(x)
        f(x)
    assert f.trace_count == 1, f.retrace_reasons


def agree(f, model, x, traces: int | None = None, ref=None) -> None:
    """The captured call equals eager (and PyTorch, ``ref``) now; ``traces``: the expected
    trace count after the call."""
    with tl.no_grad():
        got = f(x).numpy()
        want = model(x).numpy()
    close(got, want)
    if ref is not None:
        close(want, ref(model, x))
    if traces is not None:
        assert f.trace_count == traces, f.retrace_reasons


def new_linear(w: float) -> nn.Linear:
    lin = nn.Linear(4, 4)
    with tl.no_grad():
        lin.weight.fill_(w)
        lin.bias.fill_(-w / 2)
    return lin


# --- mutations of a Sequential MLP: (name, function of the model) ---------------------------
def _set_param(m):
    m[2].weight = nn.Parameter(tl.full((4, 4), 0.25))


def _register_param(m):
    m[0].register_parameter("bias", nn.Parameter(tl.full((4,), 3.0)))


def _del_bias(m):
    del m[0].bias
    m[0].bias = None


def _object_setattr(m):
    object.__setattr__(m[2], "weight", nn.Parameter(tl.full((4, 4), -0.5)))


def _dict_write_param(m):
    m[4]._parameters["weight"] = nn.Parameter(tl.full((4, 4), 0.75))


def _instance_dict_write(m):
    # a plain attribute that shadows nothing: then a Python flag the forward reads
    m[0].__dict__["_parameters"] = OrderedDict(
        weight=nn.Parameter(tl.full((4, 4), 0.1)), bias=m[0].bias)


def _hook_register(m):
    m[1].register_forward_hook(Scale(2.0))


def _hook_dict_write(m):
    m[3]._forward_hooks[12345] = Scale(-1.0)


def _hook_state_in_place(m):
    for h in m[1]._forward_hooks.values():
        h.k = 5.0
    if not m[1]._forward_hooks:
        m[1]._forward_hooks[777] = Scale(5.0)


def _seq_setitem(m):
    m[2] = new_linear(0.3)


def _seq_delitem(m):
    del m[4]
    del m[4]


def _seq_append(m):
    m.append(new_linear(-0.2))


def _seq_insert(m):
    m.insert(0, nn.ReLU())


def _seq_move_to_end(m):
    # the order Sequential runs its layers, changed without any Module method
    m._modules.move_to_end("0")


def _seq_modules_swap(m):
    mods = m._modules
    mods["0"], mods["2"] = mods["2"], mods["0"]


def _data_assign(m):
    m[0].weight.data = tl.full((4, 4), 0.05)


def _in_place(m):
    with tl.no_grad():
        m[2].weight.mul_(-1.0)


def _load_state_dict(m):
    sd = {k: tl.full(tuple(v.shape), 0.2) for k, v in m.state_dict().items()}
    m.load_state_dict(sd)


def _class_swap(m):
    m[1].__class__ = _ReLULike


class _ReLULike(nn.Tanh):
    """A Tanh whose class was swapped in place (``obj.__class__ = ...``)."""

    def forward(self, a):
        return a.relu()


def _submodule_replace_object_setattr(m):
    object.__setattr__(m, "_modules", OrderedDict(
        (k, (new_linear(0.4) if k == "0" else v)) for k, v in m._modules.items()))


MUTATIONS = {f.__name__[1:]: f for f in (
    _set_param, _register_param, _del_bias, _object_setattr, _dict_write_param,
    _instance_dict_write, _hook_register, _hook_dict_write, _hook_state_in_place,
    _seq_setitem, _seq_delitem, _seq_append, _seq_insert, _seq_move_to_end,
    _seq_modules_swap, _data_assign, _in_place, _load_state_dict, _class_swap,
    _submodule_replace_object_setattr)}
# those that change only tensor values in place: the graph reads them, no retrace
IN_PLACE = {"in_place", "load_state_dict", "data_assign"}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_each_mutation_matches_eager(name):
    tl.manual_seed(0)
    model = mlp()
    x = tl.randn(2, 4)
    f = captured(model)
    settle(f, x)
    MUTATIONS[name](model)
    agree(f, model, x, ref=torch_ref)
    if name not in IN_PLACE:
        assert f.trace_count == 2, f.retrace_reasons
    # and it settles again: the new state replays
    agree(f, model, x, traces=f.trace_count)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=5),
       st.sampled_from(["closure", "compile"]))
def test_mutation_sequences_never_replay_stale(names, how):
    tl.manual_seed(1)
    model = mlp()
    x = tl.randn(3, 4)
    f = captured(model) if how == "closure" else tl.compile(model)
    for name in names:
        try:
            MUTATIONS[name](model)
        except (IndexError, KeyError, AttributeError):
            pass        # an index an earlier mutation removed: the model is as it is now
        with tl.no_grad():
            got = f(x).numpy()
            close(got, model(x).numpy())
            close(f(x).numpy(), got)        # a replay (or another trace) agrees too
        close(got, torch_ref(model, x))


class Holder(nn.Module):
    """State the forward reads through plain Python containers and attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.cfg = {"scale": 1.0, "act": True}
        self.order = [1.0, 2.0]
        self.table = {"w": nn.Parameter(tl.ones(4))}
        self.flag = False

    def forward(self, a):
        out = self.lin(a) * self.cfg["scale"] * self.order[0]
        if self.cfg["act"]:
            out = out.tanh()
        if self.flag:
            out = out + 1.0
        return out * self.table["w"]


PLAIN = {
    "dict in place": lambda h: h.cfg.__setitem__("scale", 3.0),
    "dict key flag": lambda h: h.cfg.update(act=False),
    "list in place": lambda h: h.order.reverse(),
    "tensor table": lambda h: h.table.__setitem__("w", nn.Parameter(tl.full((4,), 2.0))),
    "object.__setattr__ flag": lambda h: object.__setattr__(h, "flag", True),
    "__dict__ flag": lambda h: h.__dict__.__setitem__("flag", True),
    "setattr flag": lambda h: setattr(h, "flag", True),
    "delattr flag": lambda h: (delattr(h, "flag"), setattr(type(h), "flag", True)),
    "requires_grad_": lambda h: h.lin.weight.requires_grad_(False),
    "deep parameter": lambda h: setattr(h.lin, "bias", nn.Parameter(tl.full((4,), 1.5))),
    "parametrize": lambda h: parametrize.register_parametrization(h.lin, "weight", Double()),
}


class Double(nn.Module):
    def forward(self, w):
        return w * 2


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_plain_state_mutations(name):
    tl.manual_seed(2)
    h = Holder()
    x = tl.randn(2, 4)
    f = captured(h)
    settle(f, x)
    try:
        PLAIN[name](h)
        agree(f, h, x)
        if name != "requires_grad_":    # under no_grad it changes no value
            assert f.trace_count == 2, f.retrace_reasons
        agree(f, h, x, traces=f.trace_count)
    finally:
        if "flag" in vars(Holder):
            del Holder.flag


def test_module_list_dict_and_parameter_list_mutations():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(4, 4) for _ in range(3)])
            self.heads = nn.ModuleDict({"a": nn.Linear(4, 4)})
            self.scales = nn.ParameterList([nn.Parameter(tl.ones(4))])

        def forward(self, a):
            for b in self.blocks:
                a = b(a).tanh()
            for hd in self.heads.values():
                a = hd(a)
            for s in self.scales:
                a = a * s
            return a

    tl.manual_seed(3)
    net = Net()
    x = tl.randn(2, 4)
    f = captured(net)
    settle(f, x)
    steps = [
        lambda: net.blocks.append(new_linear(0.1)),
        lambda: net.blocks.__setitem__(0, new_linear(-0.1)),
        lambda: net.blocks.__delitem__(1),
        lambda: net.blocks.insert(0, new_linear(0.2)),
        lambda: net.blocks.extend([new_linear(0.05)]),
        lambda: net.blocks.pop(0),
        lambda: net.heads.__setitem__("b", new_linear(0.3)),
        lambda: net.heads.pop("a"),
        lambda: net.heads.update({"c": new_linear(-0.3)}),
        lambda: net.scales.append(nn.Parameter(tl.full((4,), 0.5))),
        lambda: net.scales.__setitem__(0, nn.Parameter(tl.full((4,), 2.0))),
        lambda: net.blocks._modules.move_to_end("0"),
        lambda: net.heads.clear(),
    ]
    for i, step in enumerate(steps):
        before = f.trace_count
        step()
        agree(f, net, x)
        assert f.trace_count == before + 1, (i, f.retrace_reasons)


def test_lazy_module_materialised_then_swapped():
    tl.manual_seed(4)
    model = nn.Sequential(nn.LazyLinear(4), nn.Tanh())
    x = tl.randn(2, 3)
    f = captured(model)
    with tl.no_grad():
        close(f(x).numpy(), model(x).numpy())    # materialises eagerly, then traces
        close(f(x).numpy(), model(x).numpy())
        n = f.trace_count
        model[0].weight = nn.Parameter(tl.full((4, 3), 0.5))
        close(f(x).numpy(), model(x).numpy())
    assert f.trace_count == n + 1


def test_rnn_weight_replaced():
    tl.manual_seed(5)
    rnn = nn.GRU(3, 4, batch_first=True)
    x = tl.randn(2, 5, 3)
    f = tl.function(lambda a: rnn(a)[0])
    with tl.no_grad():
        f(x)
        f(x)
        assert f.trace_count == 1
        rnn.weight_hh_l0 = nn.Parameter(tl.full(tuple(rnn.weight_hh_l0.shape), 0.1))
        close(f(x).numpy(), rnn(x)[0].numpy())
    assert f.trace_count == 2


def _step_for(model, opt):
    def step(a):
        opt.zero_grad()
        loss = model(a).pow(2).sum()
        loss.backward()
        opt.step()
        return loss
    return step


def test_training_step_after_mutations_matches_eager_and_torch():
    tl.manual_seed(6)
    x = tl.randn(3, 4)

    def run(capture: bool):
        tl.manual_seed(7)
        model = mlp(2)
        opt = tl.optim.SGD(model.parameters(), lr=0.1)
        step = _step_for(model, opt)
        f = tl.function(step) if capture else step
        losses = [f(x).item() for _ in range(3)]
        with tl.no_grad():
            model[0].weight.data = tl.full((4, 4), 0.1)        # .data assignment
        losses += [f(x).item() for _ in range(2)]
        model[2] = new_linear(0.2)                              # a new layer, not optimised
        losses += [f(x).item() for _ in range(2)]
        return losses, [p.detach().numpy() for p in model.parameters()], f

    eager, pe, _ = run(False)
    cap, pc, f = run(True)
    close(cap, eager)
    for a, b in zip(pe, pc):
        close(a, b)
    assert f.trace_count >= 2          # the new layer retraced
    # PyTorch's first loss on the same starting weights
    tl.manual_seed(7)
    model = mlp(2)
    close(eager[0], float((torch.from_numpy(torch_ref(model, x)) ** 2).sum()))


def test_thousand_linears_deep_swap_still_retraces():
    x = tl.randn(1, 1)
    model = nn.Sequential(*[nn.Linear(1, 1) for _ in range(1000)])
    f = captured(model)
    with tl.no_grad():
        f(x)
        f(x)
        assert f.trace_count == 1
        object.__setattr__(model[700], "weight", nn.Parameter(tl.full((1, 1), 2.0)))
        close(f(x).numpy(), model(x).numpy())
        assert f.trace_count == 2
        model[900]._forward_hooks[1] = Scale(3.0)
        close(f(x).numpy(), model(x).numpy())
        assert f.trace_count == 3


def test_shared_tensor_checked_once_still_sees_grad_and_shape():
    # a parameter reached from the model and from a list of groups: one check covers both
    tl.manual_seed(8)
    model = mlp(1)
    groups = [{"params": list(model.parameters()), "lr": 0.1}]

    def fn(a):
        return model(a) * groups[0]["lr"]
    f = tl.function(fn)
    x = tl.randn(2, 4)
    settle(f, x)
    plan = next(iter(f._cache.values()))[0].guards.plan
    assert len({id(t) for t in plan.f_tensors}) == len(plan.f_tensors)
    with tl.no_grad():
        model[0].weight.data = tl.full((4, 4), 0.5)
        close(f(x).numpy(), fn(x).numpy())
        assert f.trace_count == 1
        groups[0]["params"][0].requires_grad_(False)
        close(f(x).numpy(), fn(x).numpy())
        assert f.trace_count == 2, f.retrace_reasons
    x.requires_grad_(False)
    groups[0]["params"][1].grad = tl.ones(4)      # .grad None -> set, on the shared tensor
    with tl.no_grad():
        close(f(x).numpy(), fn(x).numpy())
    assert f.trace_count == 3, f.retrace_reasons


def test_tensor_keyed_dict_swap_retraces():
    # keys that are tensors compare by identity (their == is elementwise)
    tl.manual_seed(9)
    k1, k2 = tl.ones(1), tl.ones(1)
    table = {k1: 1.0}

    def fn(a):
        return a * next(iter(table.values())) + next(iter(table)).sum()
    f = tl.function(fn)
    x = tl.randn(3)
    with tl.no_grad():
        f(x)
        f(x)
        assert f.trace_count == 1
        del table[k1]
        table[k2] = 1.0
        k2.mul_(5.0)
        close(f(x).numpy(), fn(x).numpy())
    assert f.trace_count == 2


def test_ordered_dict_reordered_in_place_retraces():
    tl.manual_seed(10)
    od = OrderedDict(a=2.0, b=3.0)

    def fn(a):
        for v in od.values():
            a = a * v + 1.0
        return a
    f = tl.function(fn)
    x = tl.randn(3)
    with tl.no_grad():
        f(x)
        f(x)
        od.move_to_end("a")
        close(f(x).numpy(), fn(x).numpy())
        assert f.trace_count == 2
        od["a"], od["b"] = od["b"], od["a"]       # values swapped, keys in the same order
        close(f(x).numpy(), fn(x).numpy())
        assert f.trace_count == 3
