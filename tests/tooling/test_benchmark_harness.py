"""The benchmark harness runs end to end in its quick mode (no timing is asserted)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import tensorlib as tl

ROOT = Path(__file__).resolve().parents[2]


def _script(path: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run ``path`` (relative to the repository) with ``args``; it must exit with 0."""
    proc = subprocess.run([sys.executable, str(ROOT / path), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_quick_mode_runs_every_workload(tmp_path):
    out = tmp_path / "bench.json"
    proc = _script("benchmarks/run.py", "--quick", "--json", str(out), timeout=900)
    rows = json.loads(out.read_text())
    ids = {r["id"] for r in rows}
    assert {"W1", "W1b", "W5", "W2", "W3", "W4", "W6", "W7"} <= ids
    for r in rows:
        assert r["results"].get("tensorlib"), f"{r['id']} {r['title']}: no tensorlib figure"
        for fw in r["results"].values():
            assert all(v > 0 for v in fw["values"])
    assert "| W1 " in proc.stdout and "ratio tl/torch" in proc.stdout


def test_steps_script_runs():
    proc = _script("benchmarks/steps.py", "--quick")
    assert re.search(r"W2 [0-9.]+ ms +W3 [0-9.]+ ms +W4 [0-9.]+ ms +W4c [0-9.]+ ms", proc.stdout)


def test_ops_script_runs():
    proc = _script("benchmarks/ops.py", "--quick")
    assert "| topk k=10, rows (4096x1024) |" in proc.stdout


def test_spot_checks_script_runs():
    proc = _script("benchmarks/spot_checks.py", "tl", "--quick")
    assert "Adam step" in proc.stdout and "conv3d" in proc.stdout


def test_op_counts_script_counts_w2_and_the_w4_sums():
    proc = _script("benchmarks/op_counts.py", "W2", "--every-sum", "W4")
    w2, w4 = proc.stdout.splitlines()
    # W2: three linear layers forward and backward, two relus, one loss
    assert w2.startswith("W2: 12 op calls per step: linear 3, linear_grad 3"), w2
    # W4 with every running sum handed over: the LSTM biases' column sums happen inside the
    # cell's backward (32 separate sums before) and no add makes a new gradient sum (69
    # adds before, 33 now: the loss's)
    assert re.search(r"\bsum 2\b", w4) and "add 33" in w4, w4


def test_activations_script_runs():
    proc = _script("benchmarks/activations.py", "--quick")
    assert "| elu |" in proc.stdout and "| log1p(|x|) |" in proc.stdout
    assert "| exp |" in proc.stdout and "| log2(|x|) |" in proc.stdout


def test_omp_wait_script_runs():
    proc = _script("benchmarks/omp_wait.py", "--quick", "--spin", "1000")
    assert "| op, floats, threads, calls | passive | spin 1000 |" in proc.stdout
    rows = [r for r in proc.stdout.splitlines() if r.startswith("| relu") or r.startswith("| sum")]
    assert len(rows) == 8 and all(re.search(r"\| [0-9]+ \| [0-9]+ \|$", r) for r in rows)


def test_trace_time_script_runs():
    proc = _script("benchmarks/trace_time.py", "20")
    assert re.match(r"20 Linear\(1, 1\) layers, Adam: first call \(capture\) [0-9.]+ s",
                    proc.stdout), proc.stdout


def test_w4_by_hand_bound_computes_the_same_step():
    # the W7 bound (benchmarks/w4_by_hand.py) is only meaningful if it trains the same model
    # the same way: one step from the same start gives the eager loss and weights
    proc = _script("benchmarks/w4_by_hand.py", "--quick")
    assert "by hand with the graph rewrites" in proc.stdout


def test_gpu_benchmark_harness_runs_on_the_cpu(tmp_path):
    # G1 (benchmarks/gpu.py) needs a GPU for its figures; --device cpu runs the same code
    # (the workloads_nn builders, capture, the PyTorch side, profiling) so that a GPU session
    # does not spend its minutes on a broken script
    out = tmp_path / "g1.json"
    _script("benchmarks/gpu.py", "--quick", "--device", "cpu", "--only", "W2,W2c,W4,W4c",
            "--profile", "W2", "--find-syncs", "W2,W4c", "--json", str(out))
    res = json.loads(out.read_text())
    rows = {r["id"]: r for r in res["rows"]}
    assert set(rows) == {"W2", "W2c", "W4", "W4c"}
    for r in rows.values():
        assert not [k for k in r if k.endswith("_error")], r
        assert r["tensorlib"] and all(v > 0 for v in r["tensorlib"])
    assert res["meta"]["device"] == "cpu"
    assert "tensorlib._core.apply" in res["profiles"]["W2"]
    assert set(res["syncs"]) == {"W2", "W4c"}


def test_gpu_profile_script_runs_on_the_cpu():
    # scripts/gpu_profile.py's op breakdown (the captured plan re-run with a timer after each
    # statement) on the CPU, so that a GPU session finds it working; the CUPTI part needs cuda
    proc = _script("scripts/gpu_profile.py", "--device", "cpu", "--batch", "8")
    for name, op in (("W3c", "conv2d"), ("W4c", "lstm_cell")):
        assert f"{name} breakdown:" in proc.stdout
        assert re.search(rf"{name}\s+{op}\s+\d+\.\d+ ms", proc.stdout), proc.stdout


def test_gpu_launch_benchmark_without_a_gpu_says_so():
    proc = _script("benchmarks/gpu_launch.py", timeout=300)
    if not tl.cuda.is_available():
        assert "no CUDA GPU here" in proc.stdout


def test_placement_script_runs():
    proc = _script("benchmarks/placement.py", "--quick")
    assert re.search(r"\| training step \| 1 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+x \|", proc.stdout)
