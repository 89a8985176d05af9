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
