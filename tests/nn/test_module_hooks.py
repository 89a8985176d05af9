"""Module hooks against PyTorch: forward hook options, global hooks, the old backward hook,
state-dict hooks, and full backward hooks' None / zero entries."""
import warnings

import numpy as np
import pytest
import torch

import tensorlib as tl
from tensorlib.nn import module as tl_module


def _mods():
    class T(torch.nn.Module):
        def forward(self, x, scale=1.0):
            return x * scale

    class L(tl.nn.Module):
        def forward(self, x, scale=1.0):
            return x * scale
    return T(), L()


def _run(m, lib, *hooks):
    x = lib.ones(2)
    return m(x, scale=2.0)


def test_forward_hooks_prepend_and_kwargs_match_torch():
    logs = []
    for lib, m in zip((torch, tl), _mods()):
        log = []
        m.register_forward_hook(lambda mod, a, out: log.append("a"))
        m.register_forward_hook(lambda mod, a, out: log.append("b"), prepend=True)
        m.register_forward_hook(lambda mod, a, kw, out: log.append(("kw", kw["scale"])) or
                                out + 1, with_kwargs=True)
        m.register_forward_pre_hook(lambda mod, a, kw: (a, {"scale": 3.0}), with_kwargs=True)
        m.register_forward_pre_hook(lambda mod, a: log.append("pre"), prepend=True)
        out = m(lib.ones(2), scale=2.0)
        logs.append((log, np.asarray(out)))
    assert logs[0][0] == logs[1][0] == ["pre", "b", "a", ("kw", 3.0)]
    np.testing.assert_allclose(logs[0][1], logs[1][1])


def test_pre_hook_with_kwargs_bad_return():
    _, m = _mods()
    m.register_forward_pre_hook(lambda mod, a, kw: 5, with_kwargs=True)
    with pytest.raises(RuntimeError, match="forward pre-hook must return None or a tuple"):
        m(tl.ones(2))


def test_always_call_runs_on_error_and_handle_removes_options():
    class Boom(tl.nn.Module):
        def forward(self, x):
            raise ValueError("boom")
    m = Boom()
    seen = []
    h = m.register_forward_hook(lambda mod, a, out: seen.append(out), always_call=True)
    m.register_forward_hook(lambda mod, a, out: seen.append("never"))
    with pytest.raises(ValueError, match="boom"):
        m(tl.ones(1))
    assert seen == [None]
    h.remove()
    assert not m._forward_hooks_always_called
    with pytest.raises(ValueError):
        m(tl.ones(1))
    assert seen == [None]


def test_global_hooks_run_first_and_remove():
    log = []
    m = tl.nn.Linear(2, 2)
    m.register_forward_hook(lambda mod, a, out: log.append("own"))
    hs = [tl_module.register_module_forward_pre_hook(lambda mod, a: log.append("gpre")),
          tl_module.register_module_forward_hook(lambda mod, a, out: log.append("gpost"))]
    bw = []
    hs.append(tl_module.register_module_full_backward_hook(
        lambda mod, gi, go: bw.append(type(mod).__name__)))
    try:
        x = tl.ones(1, 2, requires_grad=True)
        m(x).sum().backward()
    finally:
        for h in hs:
            h.remove()
    assert log == ["gpre", "gpost", "own"] and bw == ["Linear"]
    log.clear()
    m(tl.ones(1, 2))
    assert log == ["own"]


def _old_hook_case(lib, body):
    class S(lib.nn.Module):
        def forward(self, x):
            return body(lib, x)
    s = S()
    got = []
    s.register_backward_hook(lambda mod, gi, go: got.append(
        ([None if g is None else np.asarray(g) for g in gi], [np.asarray(g) for g in go])))
    x = lib.tensor([0.5, -1.0], requires_grad=True)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = s(x)
    out.sum().backward()
    msgs = [str(i.message) for i in w if issubclass(i.category, FutureWarning)]
    return got, msgs


@pytest.mark.parametrize("body", [lambda lib, x: lib.sigmoid(x),
                                  lambda lib, x: lib.sigmoid(x) * 3])
def test_old_backward_hook_matches_torch(body):
    (tg, tw), (lg, lw) = _old_hook_case(torch, body), _old_hook_case(tl, body)
    assert len(tg) == len(lg) == 1
    for a, b in zip(tg[0][0] + tg[0][1], lg[0][0] + lg[0][1]):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-6)
    assert tw == lw and len(lw) == 1


def test_old_and_full_backward_hooks_exclusive():
    m = tl.nn.Linear(2, 2)
    m.register_backward_hook(lambda *a: None)
    with pytest.raises(RuntimeError, match="Cannot use both regular backward hooks and full"):
        m.register_full_backward_hook(lambda *a: None)


def test_full_backward_hook_none_and_zero_entries_match_torch():
    res = []
    for lib in (torch, tl):
        class M(lib.nn.Module):
            def forward(self, x, y, k):
                return x * 2, x * y
        m = M()
        got = []
        m.register_full_backward_hook(lambda mod, gi, go: got.append((gi, go)))
        x = lib.ones(2, requires_grad=True)
        a, _ = m(x, lib.ones(2), 5)              # y needs no grad, output 1 unused
        a.sum().backward()
        gi, go = got[0]
        res.append(([None if g is None else np.asarray(g) for g in gi],
                    [None if g is None else np.asarray(g) for g in go]))
    for a, b in zip(res[0][0] + res[0][1], res[1][0] + res[1][1]):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b)


def test_state_dict_hooks_match_torch():
    out = []
    for lib in (torch, tl):
        m = lib.nn.Sequential(lib.nn.Linear(2, 2))
        log = []
        m[0].register_state_dict_pre_hook(lambda mod, prefix, keep: log.append(("pre", prefix)))

        def post(mod, sd, prefix, meta):
            log.append(("post", prefix))
            sd[prefix + "extra"] = lib.zeros(1)
        m[0]._register_state_dict_hook(post)
        keys = sorted(m.state_dict())
        out.append((log, keys))
    assert out[0] == out[1]


def test_load_state_dict_post_hook_can_forgive_keys():
    for lib in (torch, tl):
        m = lib.nn.Linear(2, 2)
        sd = {k: v.detach().clone() if lib is torch else v.clone() for k, v in
              m.state_dict().items()}
        sd["junk"] = lib.zeros(1)
        seen = []

        def hook(mod, keys):
            seen.append(list(keys.unexpected_keys))
            keys.unexpected_keys.clear()
        m.register_load_state_dict_post_hook(hook)
        m.load_state_dict(sd)           # strict, but the hook cleared the unexpected key
        assert seen == [["junk"]]
        m2 = lib.nn.Linear(2, 2)
        m2.register_load_state_dict_post_hook(lambda mod, keys: None)
        with pytest.raises(RuntimeError, match="junk"):
            m2.load_state_dict(sd)
