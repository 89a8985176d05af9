"""A process forked after tensorlib ran threaded kernels (multiprocessing's default start
method on Linux) can still run them: GNU OpenMP's thread pool does not survive fork, and
without tensorlib's at-fork hook the child's first threaded region waits forever."""
import subprocess
import sys

import pytest

CODE = """
import multiprocessing as mp
import numpy as np
import tensorlib as tl
import tensorlib.nn.functional as F

def work(seed):
    g = np.random.default_rng(seed)
    a = tl.tensor(g.standard_normal((512, 512)).astype(np.float32))
    x = tl.tensor(g.standard_normal((16, 8, 14, 14)).astype(np.float32))
    w = tl.tensor(g.standard_normal((16, 8, 5, 5)).astype(np.float32))
    return float((a @ a).sum().item() + F.conv2d(x, w, padding=2).sum().item()
                 + tl.tensor(g.standard_normal(1 << 20)).relu().sum().item())

if __name__ == "__main__":
    before = [work(s) for s in range(2)]        # the parent's thread team now exists
    with mp.get_context("fork").Pool(2) as pool:
        after = pool.map(work, range(2))
    assert np.allclose(before, after, rtol=1e-4), (before, after)
    assert tl._kernels.max_threads() >= 1
    print("ok")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork start method")
def test_forked_children_run_threaded_kernels(tmp_path):
    script = tmp_path / "fork_check.py"
    script.write_text(CODE)
    try:
        proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("a forked child hung in an OpenMP region")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")
