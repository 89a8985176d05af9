"""Trial 17 (nn.Module system, library-author persona): F1-F12, compared with PyTorch."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib import nn

torch = pytest.importorskip("torch")
LIBS = [tl, torch]


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


# --- F1: train()/eval() call each child's own train(mode) ------------------------------------
def _frozen_net(lib):
    class FrozenBN(lib.nn.BatchNorm1d):
        def train(self, mode=True):
            return super().train(False)

    class Net(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = FrozenBN(3)
            self.drop = lib.nn.Dropout(0.5)
    return Net()


@pytest.mark.parametrize("lib", LIBS, ids=["tl", "torch"])
def test_train_calls_child_override(lib):
    n = _frozen_net(lib)
    n.train()
    assert (n.training, n.bn.training, n.drop.training) == (True, False, True)
    before = _np(n.bn.running_mean).copy()
    n.bn(lib.ones(4, 3) * 5)
    np.testing.assert_array_equal(_np(n.bn.running_mean), before)   # frozen: not updated
    n.eval()
    assert (n.training, n.bn.training, n.drop.training) == (False, False, False)


def test_train_call_order_matches_torch():
    def calls(lib):
        log = []

        class Rec(lib.nn.Module):
            def __init__(self, name, kids=()):
                super().__init__()
                self.name = name
                self.kids = lib.nn.ModuleList(kids)

            def train(self, mode=True):
                log.append((self.name, mode))
                return super().train(mode)
        m = Rec("root", [Rec("a", [Rec("a1")]), Rec("b")])
        m.eval()
        m.train()
        return log
    assert calls(tl) == calls(torch)


@pytest.mark.parametrize("lib", LIBS, ids=["tl", "torch"])
def test_train_non_bool_raises_value_error(lib):
    with pytest.raises(ValueError, match="boolean"):
        lib.nn.Linear(2, 2).train(1)


# --- F2/F3: _load_from_state_dict overrides and load pre-hooks --------------------------------
def _remap_model(lib, log):
    class Old(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = lib.nn.Linear(2, 2)

        def _load_from_state_dict(self, sd, prefix, local_metadata, strict, missing,
                                  unexpected, errors):
            log.append((prefix, dict(local_metadata), strict))
            if prefix + "fc.weight" in sd:
                sd[prefix + "proj.weight"] = sd.pop(prefix + "fc.weight")
                sd[prefix + "proj.bias"] = sd.pop(prefix + "fc.bias")
            super()._load_from_state_dict(sd, prefix, local_metadata, strict, missing,
                                          unexpected, errors)

    class Wrap(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = Old()
    return Wrap()


def test_load_from_state_dict_override_remaps_keys():
    w = np.arange(4.0).reshape(2, 2)
    b = np.array([5.0, 6.0])
    results = []
    for lib in LIBS:
        log = []
        m = _remap_model(lib, log)
        sd = {"enc.fc.weight": lib.tensor(w, dtype=lib.float32),
              "enc.fc.bias": lib.tensor(b, dtype=lib.float32)}
        res = m.load_state_dict(sd)
        assert list(sd) == ["enc.fc.weight", "enc.fc.bias"]     # the caller's dict untouched
        assert (res.missing_keys, res.unexpected_keys) == ([], [])
        np.testing.assert_array_equal(_np(m.enc.proj.weight), w)
        np.testing.assert_array_equal(_np(m.enc.proj.bias), b)
        # a state_dict() carries _metadata: each module sees its own version
        log.clear()
        m.load_state_dict(m.state_dict())
        results.append(log)
    assert results[0] == results[1] == [("enc.", {"version": 1}, True)]


def test_load_override_sees_assign_flag_and_strict_false_as_torch():
    logs = []
    for lib in LIBS:
        log = []
        m = _remap_model(lib, log)
        sd = {"enc.fc.weight": lib.ones(2, 2), "enc.fc.bias": lib.ones(2), "x": lib.ones(1)}
        res = m.load_state_dict(sd, strict=False, assign=True)
        assert (res.missing_keys, res.unexpected_keys) == ([], ["x"])
        logs.append(log)
    assert logs[0] == logs[1] == [("enc.", {"assign_to_params_buffers": True}, True)]


def test_load_pre_hook_signature_and_order_match_torch():
    def run(lib):
        log = []
        m = lib.nn.Sequential(lib.nn.Linear(2, 2), lib.nn.Sequential(lib.nn.Linear(2, 1)))

        def hook(module, sd, prefix, local_metadata, strict, missing, unexpected, errors):
            log.append((type(module).__name__, prefix, sorted(sd), dict(local_metadata),
                        strict, list(missing), list(unexpected), list(errors)))
            if prefix + "old_w" in sd:
                sd[prefix + "weight"] = sd.pop(prefix + "old_w")
        handles = [mod.register_load_state_dict_pre_hook(hook) for mod in m.modules()]
        sd = {k: v for k, v in m.state_dict().items()}
        sd["1.0.old_w"] = sd.pop("1.0.weight") * 0 + 3
        m.load_state_dict(sd)
        assert float(m[1][0].weight.sum()) == 6.0
        for h in handles:
            h.remove()
        n = len(log)
        m.load_state_dict(m.state_dict())
        assert len(log) == n
        return log
    assert run(tl) == run(torch)


@pytest.mark.parametrize("lib", LIBS, ids=["tl", "torch"])
def test_private_load_pre_hook_without_module(lib):
    seen = []
    m = lib.nn.Linear(2, 2)
    m._register_load_state_dict_pre_hook(lambda *a: seen.append(len(a)))
    m.load_state_dict(m.state_dict())
    assert seen == [7]


# --- F4: get_extra_state / set_extra_state ------------------------------------------------------
def _extra(lib, with_set=True):
    class E(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.cfg = {"a": 1}
            self.l = lib.nn.Linear(1, 1)

        def get_extra_state(self):
            return self.cfg
    if with_set:
        E.set_extra_state = lambda self, state: setattr(self, "cfg", state)
    return E()


def test_extra_state_round_trip_and_errors():
    for lib in LIBS:
        sd = _extra(lib).state_dict()
        assert list(sd) == ["_extra_state", "l.weight", "l.bias"]
        assert sd["_extra_state"] == {"a": 1}
        e = _extra(lib)
        sd["_extra_state"] = {"b": 2}
        e.load_state_dict(sd)
        assert e.cfg == {"b": 2}
        del sd["_extra_state"]
        with pytest.raises(RuntimeError, match='Missing key.*"_extra_state"'):
            _extra(lib).load_state_dict(sd)
        nested = lib.nn.Sequential(_extra(lib))
        assert list(nested.state_dict()) == ["0._extra_state", "0.l.weight", "0.l.bias"]
        # a module that cannot load extra state reports the key as unexpected
        with pytest.raises(RuntimeError, match='Unexpected key.*"_extra_state"'):
            _extra(lib, with_set=False).load_state_dict(_extra(lib).state_dict())


# --- F5: _apply is what to/half/double/float/type go through -----------------------------------
def _cached(lib):
    class Ap(lib.nn.Module):
        def __init__(self):
            super().__init__()
            self.l = lib.nn.Linear(2, 1)
            self.bn = lib.nn.BatchNorm1d(2)
            self.cache = lib.zeros(2)

        def _apply(self, fn, *a, **k):
            self.cache = fn(self.cache)
            return super()._apply(fn, *a, **k)
    return Ap()


@pytest.mark.parametrize("conv", ["double", "half", "float", "to64", "type64"])
def test_apply_override_respected(conv):
    got = []
    for lib in LIBS:
        m = _cached(lib)
        w = m.l.weight
        m.l(lib.ones(3, 2)).sum().backward()
        step = {"double": lambda: m.double(), "half": lambda: m.half(),
                "float": lambda: m.double().float(),
                "to64": lambda: m.to(lib.float64), "type64": lambda: m.type(lib.float64)}
        assert step[conv]() is m
        assert m.l.weight is w                              # identity kept (optimizers)
        got.append(tuple(str(t.dtype).replace("torch.", "") for t in
                         (m.cache, m.l.weight, m.l.weight.grad, m.bn.running_mean,
                          m.bn.num_batches_tracked)))
    assert got[0] == got[1]


def test_to_keeps_values_and_grads_float64():
    for lib in LIBS:
        m = lib.nn.Linear(3, 2)
        x = lib.tensor(np.arange(6.0).reshape(2, 3), dtype=lib.float32)
        m(x).sum().backward()
        w, g = _np(m.weight).copy(), _np(m.weight.grad).copy()
        m.double()
        np.testing.assert_array_equal(_np(m.weight), w.astype(np.float64))
        np.testing.assert_array_equal(_np(m.weight.grad), g.astype(np.float64))
        out = m(lib.tensor(np.arange(6.0).reshape(2, 3)))
        assert str(out.dtype).endswith("float64")


# --- F6: set_submodule, to_empty, type, share_memory, _metadata, _version ----------------------
def test_set_submodule_matches_torch():
    for lib in LIBS:
        nn_ = lib.nn
        n = nn_.Sequential(nn_.Linear(2, 2), nn_.Sequential(nn_.ReLU()))
        n.set_submodule("0", nn_.Identity())
        n.set_submodule("1.0", nn_.Tanh(), strict=True)
        n.set_submodule("1.1", nn_.ReLU())
        assert [type(m).__name__ for m in n.modules()] == [
            "Sequential", "Identity", "Sequential", "Tanh", "ReLU"]
        with pytest.raises(ValueError, match="target name"):
            n.set_submodule("", nn_.ReLU())
        with pytest.raises(ValueError, match="not an nn.Module"):
            n.set_submodule("0", 3)
        with pytest.raises(AttributeError):
            n.set_submodule("1.5", nn_.ReLU(), strict=True)
        with pytest.raises(AttributeError):
            n.set_submodule("x.y", nn_.ReLU())
        lin = nn_.Sequential(nn_.Linear(2, 2))
        with pytest.raises(AttributeError, match="not an nn.Module"):
            lin.set_submodule("0.weight", nn_.ReLU())


def test_to_empty_type_share_memory():
    shapes = []
    for lib in LIBS:
        m = lib.nn.BatchNorm1d(3)
        w = m.weight
        assert m.to_empty(device="cpu") is m and m.weight is w
        assert m.share_memory() is m
        m.type(lib.float64)
        shapes.append([(k, tuple(v.shape), str(v.dtype).replace("torch.", ""))
                       for k, v in m.state_dict().items()])
    assert shapes[0] == shapes[1]


def test_state_dict_metadata_and_version_match_torch():
    def meta(lib):
        nn_ = lib.nn
        m = nn_.Sequential(nn_.Conv2d(1, 2, 3), nn_.BatchNorm2d(2),
                           nn_.Sequential(nn_.LayerNorm(2), nn_.GroupNorm(1, 2)))
        sd = m.state_dict()
        pre = m.state_dict(prefix="p.")
        return (type(sd._metadata).__name__, dict(sd._metadata), dict(pre._metadata),
                nn_.Linear(1, 1)._version, nn_.BatchNorm1d(1)._version)
    assert meta(tl) == meta(torch)


def test_batchnorm_version_1_checkpoint_without_num_batches_tracked():
    for lib in LIBS:
        src = lib.nn.BatchNorm1d(2)
        sd = {k: v for k, v in src.state_dict().items() if k != "num_batches_tracked"}
        dst = lib.nn.BatchNorm1d(2)
        dst.load_state_dict(sd)              # a plain dict: no version, PyTorch fills it in
        assert int(dst.num_batches_tracked) == 0
        sd2 = src.state_dict()
        del sd2["num_batches_tracked"]       # version 2 metadata: it must be there
        with pytest.raises(RuntimeError, match='Missing key.*"num_batches_tracked"'):
            dst.load_state_dict(sd2)


def test_failed_load_changes_nothing():
    m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    before = {k: _np(v).copy() for k, v in m.state_dict().items()}
    bad = {k: tl.ones(*v.shape) * 7 for k, v in m.state_dict().items()}
    bad["1.weight"] = tl.ones(5)
    with pytest.raises(RuntimeError, match="size mismatch for 1.weight"):
        m.load_state_dict(bad)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(_np(v), before[k])


# --- F7: bias=False for BatchNorm / GroupNorm -----------------------------------------------
NORMS = {
    "bn1d": (lambda lib, **k: lib.nn.BatchNorm1d(3, **k), (4, 3, 5)),
    "bn2d": (lambda lib, **k: lib.nn.BatchNorm2d(3, **k), (2, 3, 4, 4)),
    "bn3d": (lambda lib, **k: lib.nn.BatchNorm3d(3, **k), (2, 3, 2, 3, 2)),
    "gn": (lambda lib, **k: lib.nn.GroupNorm(3, 6, **k), (2, 6, 5)),
    "in1d": (lambda lib, **k: lib.nn.InstanceNorm1d(3, affine=True, **k), (2, 3, 5)),
}


@pytest.mark.parametrize("name", list(NORMS))
@pytest.mark.parametrize("bias", [False, True])
def test_norm_bias_kwarg_values_and_grads_match_torch(name, bias):
    make, shape = NORMS[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    w = rng.standard_normal(shape[1]) + 1
    outs = []
    for lib in LIBS:
        m = make(lib, bias=bias).double()
        assert [n for n, _ in m.named_parameters()] == (["weight", "bias"] if bias
                                                        else ["weight"])
        with lib.no_grad():
            m.weight.copy_(lib.tensor(w))
        xt = lib.tensor(x, requires_grad=True)
        y = m(xt)
        (y * lib.tensor(np.linspace(-1, 1, y.numel()).reshape(shape))).sum().backward()
        outs.append((_np(y), _np(xt.grad), _np(m.weight.grad), repr(m)))
    for a, b in zip(outs[0][:3], outs[1][:3]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)
    assert outs[0][3] == outs[1][3]


@pytest.mark.parametrize("make", [
    lambda lib: lib.nn.BatchNorm2d(2), lambda lib: lib.nn.BatchNorm1d(2, affine=False),
    lambda lib: lib.nn.LayerNorm(3), lambda lib: lib.nn.LayerNorm(3, bias=False),
    lambda lib: lib.nn.LayerNorm(3, elementwise_affine=False),
    lambda lib: lib.nn.GroupNorm(2, 4, affine=False), lambda lib: lib.nn.InstanceNorm2d(3),
    lambda lib: lib.nn.InstanceNorm2d(3, affine=True, bias=False)])
def test_norm_reprs_match_torch(make):
    assert repr(make(tl)) == repr(make(torch))


def test_norm_bias_false_state_dict_keys_match_torch():
    for make in (lambda lib: lib.nn.BatchNorm1d(3, bias=False),
                 lambda lib: lib.nn.GroupNorm(1, 2, bias=False)):
        assert list(make(tl).state_dict()) == list(make(torch).state_dict())
    bn = nn.BatchNorm1d(3, bias=False)
    bn.reset_parameters()
    assert bn.bias is None


# --- F8/F9: ModuleList pop/+/+=, ModuleDict.update, ParameterDict | ------------------------------
def _names(ml):
    return [type(m).__name__ for m in ml]


OPS = st.lists(st.tuples(st.sampled_from(["pop", "popneg", "add", "iadd", "iaddml", "del"]),
                         st.integers(0, 5)), max_size=6)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 5), ops=OPS)
def test_module_list_ops_match_torch(n, ops):
    def run(lib):
        kinds = [lib.nn.ReLU, lib.nn.Tanh, lib.nn.Sigmoid, lib.nn.Identity, lib.nn.Softsign]
        ml = lib.nn.ModuleList([kinds[i % 5]() for i in range(n)])
        trace = []
        for op, k in ops:
            try:
                if op == "pop":
                    trace.append(type(ml.pop(k)).__name__)
                elif op == "popneg":
                    trace.append(type(ml.pop(-1 - k)).__name__)
                elif op == "add":
                    new = ml + [kinds[k % 5]()]
                    assert type(new).__name__ == "ModuleList" and all(
                        a is b for a, b in zip(new, ml))
                    trace.append(_names(new))
                elif op == "iadd":
                    ml += [kinds[k % 5]()]
                elif op == "iaddml":
                    ml += lib.nn.ModuleList([kinds[k % 5]()])
                else:
                    del ml[k]
            except IndexError:
                trace.append("IndexError")
            trace.append((_names(ml), list(ml._modules)))
        return trace
    assert run(tl) == run(torch)


@pytest.mark.parametrize("lib", LIBS, ids=["tl", "torch"])
def test_module_list_extend_errors(lib):
    ml = lib.nn.ModuleList([lib.nn.ReLU()])
    with pytest.raises(TypeError, match="iterable"):
        ml += 3
    with pytest.raises(TypeError, match="iterable"):
        ml.extend(lib.nn.ReLU())
    assert len(ml) == 1


def test_module_list_repr_collapses_like_torch():
    def mk(lib):
        r = lib.nn.ReLU()
        return lib.nn.ModuleList([lib.nn.ReLU(), lib.nn.ReLU(), lib.nn.ReLU(),
                                  lib.nn.Linear(2, 2), lib.nn.Linear(2, 2), lib.nn.Tanh(), r,
                                  lib.nn.Sequential(lib.nn.ReLU()),
                                  lib.nn.Sequential(lib.nn.ReLU())])
    assert repr(mk(tl)) == repr(mk(torch))
    assert repr(tl.nn.ModuleList()) == repr(torch.nn.ModuleList())


def test_module_dict_update_matches_torch():
    def run(lib):
        nn_ = lib.nn
        md = nn_.ModuleDict({"a": nn_.ReLU()})
        md.update(nn_.ModuleDict({"b": nn_.Tanh(), "cd": nn_.Tanh()}))
        md.update([("x", nn_.ReLU()), ["w", nn_.Tanh()]])
        md.update({"z": nn_.ReLU(), "e": nn_.ReLU()})          # a dict: in its order
        md.update(OrderedDict(q=nn_.ReLU()))
        errs = []
        for bad in (3, nn_.ReLU(), [("a",)], [("a", nn_.ReLU(), 1)], [3]):
            try:
                md.update(bad)
            except (TypeError, ValueError) as e:
                errs.append(type(e).__name__)
        return list(md.keys()), errs
    assert run(tl) == run(torch)


def test_parameter_dict_or_matches_torch():
    def run(lib):
        nn_ = lib.nn
        pd = nn_.ParameterDict({"w": nn_.Parameter(lib.ones(2))})
        other = nn_.ParameterDict({"k": nn_.Parameter(lib.ones(1)), "w": lib.zeros(3)})
        merged = pd | other
        assert type(merged).__name__ == "ParameterDict" and merged["k"] is other["k"]
        assert pd["w"].shape == (2,)
        left = {"a": lib.ones(1)} | pd
        pd |= {"b": lib.ones(4), "a": lib.ones(1)}
        pd |= nn_.ParameterDict({"c": lib.ones(1)})
        return (list(merged.keys()), tuple(merged["w"].shape), type(left).__name__,
                sorted(left), list(pd.keys()), [n for n, _ in pd.named_parameters()])
    assert run(tl) == run(torch)


# --- F10/F11: non-tensor entries and ParameterList repr ------------------------------------------
def test_parameter_list_non_tensor_entries_match_torch():
    def run(lib):
        nn_ = lib.nn
        pl = nn_.ParameterList([nn_.Parameter(lib.ones(1)), "a"])
        pl.append("str").append(3).append(lib.ones(2)).append(None)
        pl[1] = lib.ones(3)
        errs = []
        try:
            pl[0] = "x"
        except TypeError as e:
            errs.append("cannot assign" in str(e))
        try:
            pl.extend(lib.ones(2))
        except TypeError as e:
            errs.append("iterable" in str(e))
        kinds = [type(v).__name__ for v in pl]
        return (len(pl), kinds, [n for n, _ in pl.named_parameters()], list(pl.state_dict()),
                pl[2], pl[-1], len(pl[1:4]), errs, repr(pl).replace("torch.", ""))
    assert run(tl) == run(torch)


def test_parameter_dict_non_tensor_entries_match_torch():
    def run(lib):
        nn_ = lib.nn
        pd = nn_.ParameterDict()
        pd["name"] = "hello"
        pd["w"] = lib.ones(2)
        pd["n"] = None
        errs = []
        try:
            pd["w"] = "x"
        except TypeError as e:
            errs.append("cannot assign" in str(e))
        pd["name"] = lib.ones(1)             # an object replaced by a tensor
        pd["s"] = "s"
        out = [list(pd.keys()), [n for n, _ in pd.named_parameters()], list(pd.state_dict()),
               pd["s"], pd.get("zz", "d"), pd.setdefault("q"), errs]
        out.append(pd.popitem())
        del pd["s"]
        out.append(pd.pop("n"))
        out.append((list(pd), [type(v).__name__ for v in pd.values()]))
        cp = pd.copy()
        out.append(cp["w"] is pd["w"])
        out.append(list(nn_.ParameterDict().fromkeys(["x", "y"], "z").items()))
        pd.clear()
        out.append((len(pd), list(pd.named_parameters())))
        return out
    assert run(tl) == run(torch)


def test_parameter_list_repr_matches_torch():
    def mk(lib):
        return lib.nn.ParameterList([lib.nn.Parameter(lib.ones(2)),
                                     lib.nn.Parameter(lib.ones(2, 3, dtype=lib.float64))])
    assert repr(mk(tl)).replace("torch.", "") == repr(mk(torch)).replace("torch.", "")
    one = [lib.nn.ParameterList([lib.nn.Parameter(lib.ones(2))]) for lib in LIBS]
    assert repr(one[0]) == repr(one[1]).replace("torch.", "")
    assert repr(tl.nn.ParameterList()) == "ParameterList()"

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.ParameterList([nn.Parameter(tl.ones(2))])
    assert "(0): Parameter containing: [float32 of size 2]" in repr(M())


# --- F12 -----------------------------------------------------------------------------------------
def test_custom_function_grad_fn_class_name_matches_torch():
    def run(lib):
        class Sq(lib.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x * x

            @staticmethod
            def backward(ctx, g):
                x, = ctx.saved_tensors
                return 2 * x * g
        x = lib.tensor([1.5, -2.0], dtype=lib.float64, requires_grad=True)
        y = Sq.apply(x)
        gf = y.grad_fn
        same_cls = type(Sq.apply(x).grad_fn) is type(gf)
        (gx,) = lib.autograd.grad(y.sum(), x, create_graph=True)
        (ggx,) = lib.autograd.grad(gx.sum(), x)
        return type(gf).__name__, gf.name(), same_cls, _np(gx).tolist(), _np(ggx).tolist()
    assert run(tl) == run(torch)


@pytest.mark.parametrize("lib", LIBS, ids=["tl", "torch"])
def test_assign_module_over_parameter_raises(lib):
    lin = lib.nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign .*ReLU.* as parameter 'bias'"):
        lin.bias = lib.nn.ReLU()
    assert isinstance(lin.bias, lib.nn.Parameter)
    lin.register_buffer("buf", lib.ones(1))
    lin.buf = lib.nn.ReLU()                 # over a buffer: allowed, as PyTorch
    assert "buf" not in dict(lin.named_buffers()) and isinstance(lin.buf, lib.nn.Module)


def test_deepcopy_drops_parameter_grad_as_torch():
    import copy
    out = []
    for lib in LIBS:
        m = lib.nn.Sequential(lib.nn.Linear(2, 2))
        m.append(m[0])                                      # tied: stays tied
        m[0].weight.requires_grad_(False)
        m(lib.ones(1, 2)).sum().backward()
        c = copy.deepcopy(m)
        out.append((c[0].bias.grad is None, c[0] is c[1], c[0].weight.requires_grad,
                    type(c[0].weight).__name__, c[0].bias is not m[0].bias,
                    _np(c[0].bias).tolist() == _np(m[0].bias).tolist()))
    assert out[0] == out[1] == (True, True, False, "Parameter", True, True)
