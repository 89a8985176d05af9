"""tl.profiler / tl.autograd.profiler: events, nesting, shapes, memory, traces, schedules."""
import json
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
from tensorlib.ops.registry import REGISTRY
from tensorlib.profiler import ProfilerAction, profile, record_function, schedule

torch = pytest.importorskip("torch")


def _names(prof):
    return [e.name for e in prof.events()]


def _kernels():
    return {n: (op.cpu, dict(op._cache), op.vjp) for n, op in REGISTRY.items()}


def test_forward_and_backward_events_and_nesting():
    x = tl.randn(8, 5, requires_grad=True)
    with profile() as prof:
        with record_function("block"):
            y = (x * x).sum()
        y.backward()
    names = _names(prof)
    fwd = [c.name for e in prof.events() if e.name == "block" for c in e.cpu_children]
    assert fwd == ["mul", "sum"]
    assert "autograd::engine::evaluate_function: MulBackward0" in names
    ev = {e.name: e for e in prof.events()}
    assert ev["sum"].cpu_parent is ev["block"]
    bw = ev["autograd::engine::evaluate_function: MulBackward0"]
    assert bw.cpu_children and all(c.cpu_parent is bw for c in bw.cpu_children)
    # self time is total less the children's
    blk = ev["block"]
    assert blk.self_cpu_time_total == pytest.approx(
        blk.cpu_time_total - sum(c.cpu_time_total for c in blk.cpu_children))
    ka = {a.key: a for a in prof.key_averages()}
    assert ka["mul"].count == names.count("mul") == 3     # x * x, and twice in its rule
    assert ka["block"].count == 1


def test_counts_in_a_loop_and_table():
    x = tl.randn(4, 4)
    with profile() as prof:
        for _ in range(5):
            x = (x + 1.0).exp().tanh()
    ka = {a.key: a for a in prof.key_averages()}
    assert ka["exp"].count == 5 and ka["tanh"].count == 5
    t = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=2)
    assert "Self CPU time total" in t and "# of Calls" in t
    rows = [ln for ln in t.splitlines() if ln.strip().endswith("5")]
    assert len(rows) == 2       # row_limit
    with pytest.raises(ValueError, match="table: sort_by"):
        prof.key_averages().table(sort_by="nope")


def test_record_shapes_group_by_input_shape_and_memory():
    a, b = tl.randn(3, 4), tl.randn(5, 2)
    with profile(record_shapes=True, profile_memory=True) as prof:
        a.exp()
        a.exp()
        b.exp()
        a.reshape(4, 3)     # a view: no new memory
    ev = [e for e in prof.events() if e.name == "exp"]
    assert [e.input_shapes for e in ev] == [[[3, 4]], [[3, 4]], [[5, 2]]]
    assert [e.self_cpu_memory_usage for e in ev] == [48, 48, 40]    # float32
    rs = [e for e in prof.events() if e.name == "reshape"]
    assert rs and rs[0].self_cpu_memory_usage == 0
    g = {(a.key, str(a.input_shapes)): a.count
         for a in prof.key_averages(group_by_input_shape=True)}
    assert g[("exp", "[[3, 4]]")] == 2 and g[("exp", "[[5, 2]]")] == 1
    assert "Input Shapes" in prof.key_averages(group_by_input_shape=True).table()
    assert "CPU Mem" in prof.key_averages().table()


def test_group_by_input_shape_needs_record_shapes():
    with profile() as prof:
        tl.ones(2).exp()
    with pytest.raises(ValueError, match="key_averages: group_by_input_shape"):
        prof.key_averages(group_by_input_shape=True)


def test_kernels_restored_and_nothing_recorded_outside():
    before = _kernels()
    with profile() as prof:
        tl.ones(3).exp()
        assert REGISTRY["exp"].cpu is not before["exp"][0]      # wrapped while active
    after = _kernels()
    assert all(after[n][0] is before[n][0] and after[n][2] is before[n][2] for n in before)
    assert all(after[n][1] == before[n][1] for n in before)
    from tensorlib.graph.capture import Function
    assert not hasattr(Function.__call__, "__wrapped__")
    n = len(prof.events())
    tl.ones(3).exp()
    assert len(prof.events()) == n
    # restored after an exception too
    with pytest.raises(RuntimeError):
        with profile():
            raise RuntimeError("boom")
    assert REGISTRY["exp"].cpu is before["exp"][0]


def test_nested_profiles():
    x = tl.ones(3)
    cos_cpu = REGISTRY["cos"].cpu     # NumPy's ufunc, or a vector map on CPUs without AVX-512
    with profile() as outer:
        x.exp()
        with profile() as inner:
            x.sin()
        x.cos()
        assert REGISTRY["cos"].cpu is not cos_cpu  # still wrapped
    assert _names(outer) == ["exp", "sin", "cos"]
    assert _names(inner) == ["sin"]
    assert not hasattr(REGISTRY["cos"]._cache, "orig")
    assert REGISTRY["cos"].cpu is cos_cpu


def test_threads_recorded_with_their_ids():
    x = tl.ones(3)
    with profile() as prof:
        t = threading.Thread(target=lambda: x.sin())
        t.start()
        t.join()
        x.cos()
    ev = {e.name: e for e in prof.events()}
    assert ev["sin"].thread == t.ident and ev["cos"].thread == threading.get_ident()
    assert ev["sin"].cpu_parent is None


def test_chrome_trace_json(tmp_path):
    x = tl.randn(3, 3, requires_grad=True)
    with profile(record_shapes=True) as prof:
        with record_function("fwd"):
            y = (x @ x).sum()
        y.backward()
    p = tmp_path / "trace.json"
    prof.export_chrome_trace(str(p))
    data = json.loads(p.read_text())
    evs = data["traceEvents"]
    assert len(evs) == len(prof.events())
    for e in evs:
        assert e["ph"] == "X" and e["dur"] >= 0 and isinstance(e["ts"], float)
        assert {"name", "pid", "tid", "cat"} <= set(e)
    mm = [e for e in evs if e["name"] == "matmul"][0]
    assert mm["args"]["Input Dims"] == [[3, 3], [3, 3]]
    assert [e["cat"] for e in evs if e["name"] == "fwd"] == ["user_annotation"]


def test_schedule_function_matches_torch():
    ours = schedule(wait=1, warmup=2, active=3, repeat=2, skip_first=1)
    theirs = torch.profiler.schedule(wait=1, warmup=2, active=3, repeat=2, skip_first=1)
    for s in range(20):
        assert ours(s).name == theirs(s).name, s
    with pytest.raises(ValueError, match="schedule: active"):
        schedule(wait=0, warmup=0, active=0)


def test_schedule_steps_and_on_trace_ready():
    windows = []

    def ready(p):
        windows.append([e.name for e in p.events()])

    x = tl.ones(2)
    with profile(schedule=schedule(wait=1, warmup=1, active=2, repeat=2),
                 on_trace_ready=ready) as prof:
        for i in range(10):
            x.exp()
            if i in (2, 6):
                x.sin()
            prof.step()
    assert len(windows) == 2
    # steps 2-3 and 6-7 recorded, each wrapped in its ProfilerStep range
    assert windows[0].count("exp") == 2 and windows[0].count("sin") == 1
    assert [n for n in windows[0] if n.startswith("ProfilerStep")] == ["ProfilerStep#2",
                                                                      "ProfilerStep#3"]
    assert [n for n in windows[1] if n.startswith("ProfilerStep")] == ["ProfilerStep#6",
                                                                      "ProfilerStep#7"]
    ev = {e.name: e for e in prof.events()}
    assert ev["exp"].cpu_parent.name.startswith("ProfilerStep#")
    assert prof.current_action is ProfilerAction.NONE


def test_tl_function_is_one_event_and_results_unchanged():
    w = tl.randn(4, 4)

    def step(x):
        return (x @ w).relu().sum()

    f = tl.function(step)
    x = tl.randn(3, 4)
    ref = f(x).numpy()           # traced before profiling: replays bind the plain kernels
    with profile() as prof:
        got = f(x).numpy()
    np.testing.assert_array_equal(got, ref)
    assert _names(prof) == ["tl.function: step"]


def test_record_function_decorator_and_idle_cost():
    @record_function("my_fn")
    def fn(x):
        return x.exp()

    x = tl.ones(2)
    fn(x)       # no profile: just runs
    with profile() as prof:
        fn(x)
        fn(x)
    ka = {a.key: a.count for a in prof.key_averages()}
    assert ka["my_fn"] == 2 and ka["exp"] == 2
    with pytest.raises(TypeError, match="record_function"):
        record_function(3)


def test_autograd_profiler_alias():
    x = tl.randn(3, requires_grad=True)
    with tl.autograd.profiler.profile(record_shapes=True) as prof:
        (x.exp() * 2.0).sum().backward()
    names = [e.name for e in prof.function_events]
    assert "exp" in names and "autograd::engine::evaluate_function: ExpBackward0" in names
    assert "exp" in prof.table()
    with tl.autograd.profiler.profile(enabled=False) as off:
        x.exp()
    assert len(off.function_events) == 0
    assert tl.autograd.profiler.record_function is record_function


def test_bad_arguments():
    with pytest.raises(NotImplementedError, match="profile: with_flops"):
        profile(with_flops=True)
    with pytest.raises(TypeError, match="profile: activities"):
        profile(activities=["cpu"])


def _mlp_grads(lib, profiled, x_np, w_np):
    x = lib.tensor(x_np, requires_grad=True)
    w = lib.tensor(w_np, requires_grad=True)
    cm = profiled() if profiled else None
    if cm is not None:
        cm.__enter__()
    try:
        y = lib.nn.functional.gelu(x @ w).softmax(-1).log().sum()
        y.backward()
    finally:
        if cm is not None:
            cm.__exit__(None, None, None)
    return y.detach().numpy(), x.grad.numpy(), w.grad.numpy()


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_profiling_changes_no_values_or_gradients(n, m, seed):
    rng = np.random.default_rng(seed)
    x_np, w_np = rng.standard_normal((n, m)), rng.standard_normal((m, 3))
    plain = _mlp_grads(tl, None, x_np, w_np)
    prof = _mlp_grads(tl, lambda: profile(record_shapes=True, profile_memory=True,
                                          with_stack=True), x_np, w_np)
    ref = _mlp_grads(torch, lambda: torch.profiler.profile(), x_np, w_np)
    for a, b, c in zip(plain, prof, ref):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(b, c, rtol=1e-10, atol=1e-12)


def test_op_names_match_torch_profiler_counts():
    """The same program: as many matmul and backward-node events as PyTorch records."""
    x_np = np.random.default_rng(0).standard_normal((4, 4))
    xt = torch.tensor(x_np, requires_grad=True)
    with torch.profiler.profile() as tp:
        (xt @ xt).sum().backward()
    tk = {e.key: e.count for e in tp.key_averages()}
    x = tl.tensor(x_np, requires_grad=True)
    with profile() as prof:
        (x @ x).sum().backward()
    ok = {e.key: e.count for e in prof.key_averages()}
    assert ok["autograd::engine::evaluate_function: MatmulBackward0"] == \
        tk["autograd::engine::evaluate_function: MmBackward0"]
    assert ok["autograd::engine::evaluate_function: SumBackward0"] == \
        tk["autograd::engine::evaluate_function: SumBackward0"]


def test_optimizer_step_same_with_profiler():
    def run(profiled):
        tl.manual_seed(0)
        m = tl.nn.Linear(4, 3)
        opt = tl.optim.Adam(m.parameters(), 1e-2)
        x = tl.randn(5, 4)
        cm = profile() if profiled else None
        if cm:
            cm.__enter__()
        for _ in range(3):
            opt.zero_grad()
            m(x).pow(2).mean().backward()
            opt.step()
        if cm:
            cm.__exit__(None, None, None)
        return [p.detach().numpy().copy() for p in m.parameters()]
    for a, b in zip(run(False), run(True)):
        np.testing.assert_array_equal(a, b)


def test_with_stack_and_export_stacks(tmp_path):
    with profile(with_stack=True) as prof:
        tl.ones(2).exp()
    ev = [e for e in prof.events() if e.name == "exp"][0]
    assert any("test_profiler.py" in f for f in ev.stack)
    assert not any("tensorlib/" in f and "tests" not in f for f in ev.stack[:1])
    p = tmp_path / "stacks.txt"
    prof.export_stacks(str(p))
    assert "exp" in p.read_text()


def test_a_graph_traced_while_profiling_keeps_the_plain_kernels():
    """A tl.function first traced inside a profile compiles its plan with the kernels
    themselves, not the profiler's wrappers (which would outlive the profile)."""
    f = tl.function(lambda a: (a * 2.0).exp().sum())
    x = tl.ones(3, 4)
    with tl.profiler.profile():
        with tl.no_grad():
            f(x)
    plan = f.graphs[-1]._plans
    kernels = [v for p in plan.values() for k, v in getattr(p, "_ns", {}).items()
               if k.startswith("K")]
    assert kernels and not any("timed" in getattr(k, "__qualname__", "") for k in kernels)
    with tl.no_grad():
        assert float(f(x)) == pytest.approx(12 * np.exp(2.0), rel=1e-6)
