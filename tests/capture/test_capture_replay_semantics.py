"""tl.function replays give eager's results: argument overlap, grad mode, reseeding inside
the step, and namedtuple outputs (each compared with eager over calls that replay)."""
import collections
import contextlib
import warnings

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F

torch = pytest.importorskip("torch")

CALLS = 4


@contextlib.contextmanager
def _no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --- overlapping argument views -----------------------------------------------------------
def _write_then_read(a, b):
    a.mul_(2)
    return b + 0


def test_overlapping_views_after_separate_trace_never_replay_wrong():
    f = tl.function(_write_then_read)
    for _ in range(CALLS):
        f(tl.arange(4.0), tl.arange(2.0, 6.0))
    assert f.trace_count == 1
    te = tl.arange(6.0)
    want = _write_then_read(te[:4], te[2:]).tolist()
    tt = torch.arange(6.0, dtype=torch.float64)
    assert want == _write_then_read(tt[:4], tt[2:]).tolist()
    for i in range(CALLS):
        t = tl.arange(6.0)
        # the graph writes into its first argument: overlapping calls run eagerly (warned)
        with pytest.warns(UserWarning, match="overlapping") if i == 0 else _no_warning():
            got = f(t[:4], t[2:]).tolist()
        assert got == want and t.tolist() == te.tolist()
    assert f.trace_count == 1
    assert f(tl.arange(4.0), tl.arange(2.0, 6.0)).tolist() == [2.0, 3.0, 4.0, 5.0]
    assert f.trace_count == 1
    _read_only_overlap_still_replays()


def test_base_and_full_view_after_separate_trace_never_replay_wrong():
    f = tl.function(_write_then_read)
    for _ in range(CALLS):
        f(tl.arange(4.0), tl.arange(4.0) + 1)
    te = tl.arange(4.0)
    want = _write_then_read(te, te[:]).tolist()
    for _ in range(CALLS):
        t = tl.arange(4.0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert f(t, t[:]).tolist() == want
    assert f.trace_count == 1


def _read_only_overlap_still_replays():
    def diff(a, b):
        return (b - a) * 3

    f = tl.function(diff)
    for i in range(CALLS):
        x = tl.arange(7.0) ** 2 + i
        got = f(x[:-1], x[1:])
        xt = torch.arange(7.0, dtype=torch.float32) ** 2 + i
        np.testing.assert_allclose(got.numpy(), diff(xt[:-1], xt[1:]).numpy())
    assert f.trace_count == 1
    g = tl.function(diff)
    for i in range(CALLS):
        x = tl.arange(8.0) + i
        # disjoint halves of one buffer: the graph of separate tensors fits
        np.testing.assert_allclose(g(x[:4], x[4:]).numpy(), diff(x[:4], x[4:]).numpy())
    assert g.trace_count == 1


# --- grad mode ----------------------------------------------------------------------------
def _training(seed=0):
    tl.manual_seed(seed)
    lin = nn.Linear(3, 2)
    opt = tl.optim.SGD(lin.parameters(), lr=0.1)

    def step(x):
        opt.zero_grad()
        loss = lin(x).pow(2).sum()
        loss.backward()
        opt.step()
        return loss
    return lin, step


def test_training_step_under_no_grad_raises_like_eager_and_leaves_weights():
    lin, step = _training()
    lin_e, step_e = _training()
    f = tl.function(step)
    for i in range(CALLS):
        x = tl.full((4, 3), float(i + 1))
        np.testing.assert_allclose(f(x).item(), step_e(x).item(), rtol=1e-6)
    np.testing.assert_allclose(lin.weight.numpy(), lin_e.weight.numpy(), rtol=1e-6)
    w = lin.weight.numpy().copy()
    with tl.no_grad():
        with pytest.raises(RuntimeError, match="backward"):
            step_e(tl.ones(4, 3))
        with pytest.raises(RuntimeError, match="backward"):
            f(tl.ones(4, 3))
    np.testing.assert_array_equal(lin.weight.numpy(), w)
    assert "grad mode" in f.retrace_reasons[-1]


def test_branch_on_grad_mode_follows_the_call():
    def scale(x):
        return x * (2.0 if tl.is_grad_enabled() else 3.0)

    f = tl.function(scale)
    for mode in (True, False, True, False):
        for _ in range(CALLS):
            with tl.set_grad_enabled(mode):
                x = tl.ones(3)
                assert f(x).tolist() == scale(x).tolist() == [2.0 if mode else 3.0] * 3
    assert f.trace_count == 2


# --- reseeding inside the step ------------------------------------------------------------
def _after(draw):
    """The next global draw: the generator state a call leaves."""
    return tl.rand(5).tolist() if draw else None


def test_manual_seed_inside_step_replays_the_same_mask_and_state():
    def step(x):
        tl.manual_seed(123)
        return F.dropout(x, 0.5)

    f = tl.function(step)
    for _ in range(CALLS):
        want = step(tl.ones(64)).tolist()
        state_e = _after(True)
        assert f(tl.ones(64)).tolist() == want
        assert _after(True) == state_e
    assert f.trace_count == 1


def test_generator_manual_seed_inside_step_and_draws_before_it():
    gen = tl.Generator()

    def step(x):
        a = x + tl.rand(x.shape, generator=gen)       # drawn before the reseed: varies
        gen.manual_seed(7)
        b = x * tl.rand(x.shape, generator=gen)       # after it: the same every call
        c = tl.randn(x.shape)                         # the global stream: not reseeded
        return a, b, c

    f = tl.function(step)
    gen.manual_seed(0)
    tl.manual_seed(1)
    eager = [[t.tolist() for t in step(tl.ones(5))] for _ in range(CALLS)]
    gen.manual_seed(0)
    tl.manual_seed(1)
    captured = [[t.tolist() for t in f(tl.ones(5))] for _ in range(CALLS)]
    assert captured == eager
    assert f.trace_count == 1
    assert eager[1][1] == eager[2][1] and eager[0][0] != eager[1][0]


def test_reseed_after_the_last_draw_leaves_the_eager_state():
    def step(x):
        y = F.dropout(x, 0.5)
        tl.manual_seed(5)
        return y

    f = tl.function(step)
    tl.manual_seed(0)
    eager = []
    for _ in range(CALLS):
        eager.append((step(tl.ones(16)).tolist(), _after(True)))
    tl.manual_seed(0)
    captured = []
    for _ in range(CALLS):
        captured.append((f(tl.ones(16)).tolist(), _after(True)))
    assert captured == eager
    assert f.trace_count == 1


# --- namedtuple outputs -------------------------------------------------------------------
NT = collections.namedtuple("NT", "loss out")
Inner = collections.namedtuple("Inner", ["a", "b"])


def test_namedtuple_outputs_keep_their_type_nested():
    def step(x):
        return {"res": NT(x.sum(), Inner(x * 2, [x + 1, 3]))}, NT(x.mean(), None)

    f = tl.function(step)
    for i in range(CALLS):
        x = tl.arange(4.0) + i
        got, want = f(x), step(x)
        xt = torch.arange(4.0, dtype=torch.float32) + i
        assert type(got[1]) is NT and type(got[0]["res"]) is NT
        assert type(got[0]["res"].out) is Inner
        assert got[0]["res"].loss.item() == want[0]["res"].loss.item() == xt.sum().item()
        np.testing.assert_allclose(got[0]["res"].out.a.numpy(), (xt * 2).numpy())
        assert got[0]["res"].out.b[1] == 3 and got[1].out is None
        np.testing.assert_allclose(got[1].loss.item(), xt.mean().item())
    assert f.trace_count == 1
