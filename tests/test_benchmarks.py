"""The benchmark harness runs end to end in its quick mode (no timing is asserted)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_mode_runs_every_workload(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick",
                           "--json", str(out)], capture_output=True, text=True, timeout=900,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    ids = {r["id"] for r in rows}
    assert {"W1", "W1b", "W5", "W2", "W3", "W4", "W6", "W7"} <= ids
    for r in rows:
        assert r["results"].get("tensorlib"), f"{r['id']} {r['title']}: no tensorlib figure"
        for fw in r["results"].values():
            assert all(v > 0 for v in fw["values"])
    assert "| W1 " in proc.stdout and "ratio tl/torch" in proc.stdout


def test_w4_by_hand_bound_computes_the_same_step():
    # the W7 bound (benchmarks/w4_by_hand.py) is only meaningful if it trains the same model
    # the same way: one step from the same start gives the eager loss and weights
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "w4_by_hand.py"),
                           "--quick"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "by hand with the graph rewrites" in proc.stdout


def test_gpu_benchmark_harness_runs_on_the_cpu(tmp_path):
    # G1 (benchmarks/gpu.py) needs a GPU for its figures; --device cpu runs the same code
    # (the workloads_nn builders, capture, the PyTorch side, profiling) so that a GPU session
    # does not spend its minutes on a broken script
    out = tmp_path / "g1.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--quick",
                           "--device", "cpu", "--only", "W2,W2c,W4,W4c", "--profile", "W2",
                           "--find-syncs", "W2,W4c",
                           "--json", str(out)], capture_output=True, text=True, timeout=600,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    rows = {r["id"]: r for r in res["rows"]}
    assert set(rows) == {"W2", "W2c", "W4", "W4c"}
    for r in rows.values():
        assert not [k for k in r if k.endswith("_error")], r
        assert r["tensorlib"] and all(v > 0 for v in r["tensorlib"])
    assert res["meta"]["device"] == "cpu"
    assert "tensorlib._core.apply" in res["profiles"]["W2"]
    assert set(res["syncs"]) == {"W2", "W4c"}
