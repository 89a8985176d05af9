"""The ``tensorlib`` command (via ``python -m tensorlib.cli``) on native and ONNX files."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args, cwd):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "tensorlib.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=env)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    tl.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)).eval()
    f = tl.function(lambda x: model(x), input_signature=[tl.TensorSpec((None, 4))])
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    want = model(tl.tensor(x)).numpy()
    f(tl.tensor(x))
    tl.save_graph(f, tmp / "m.tlg")
    out = {"native": tmp / "m.tlg", "want": want, "x": tmp / "x.npy", "dir": tmp}
    np.save(out["x"], x)
    try:
        import onnx  # noqa: F401
    except ImportError:
        return out
    tl.onnx.export(model, (tl.tensor(x),), tmp / "m.onnx", dynamic_axes={0: [0]})
    out["onnx"] = tmp / "m.onnx"
    return out


def test_inspect_native(files):
    r = _cli("inspect", files["native"], cwd=files["dir"])
    assert r.returncode == 0, r.stderr
    assert "format version 1" in r.stdout and "x: float32[?, 4]" in r.stdout
    assert "parameters: 4 tensors, 44 values" in r.stdout and "linear: 2" in r.stdout


def test_inspect_onnx(files):
    if "onnx" not in files:
        pytest.skip("onnx not installed")
    r = _cli("inspect", files["onnx"], cwd=files["dir"])
    assert r.returncode == 0, r.stderr
    assert "ONNX model" in r.stdout and "opset: ai.onnx 17" in r.stdout
    assert "input0: float32[input0_dim0, 4]" in r.stdout and "Gemm: 2" in r.stdout
    assert "parameters: 4 tensors, 44 values" in r.stdout


@pytest.mark.parametrize("kind,runtime", [("native", "tensorlib"), ("onnx", "tensorlib"),
                                          ("onnx", "ort")])
def test_run(files, kind, runtime):
    if kind not in files:
        pytest.skip("onnx not installed")
    name = "arg0" if kind == "native" else "input0"
    out = files["dir"] / f"out_{kind}_{runtime}.npy"
    r = _cli("run", files[kind], "--input", f"{name}={files['x']}", "--output", out,
             "--runtime", runtime, cwd=files["dir"])
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(out), files["want"], rtol=1e-5, atol=1e-6)


def test_run_errors(files):
    r = _cli("run", files["native"], "--input", f"nope={files['x']}", "--output", "o.npy",
             cwd=files["dir"])
    assert r.returncode != 0 and "missing ['x']" in r.stderr
    bad = files["dir"] / "bad.tlg"
    bad.write_bytes(b"PK\x03\x04 not really")
    r = _cli("inspect", bad, cwd=files["dir"])
    assert r.returncode == 1 and "not a valid tensorlib graph file" in r.stderr
    r = _cli("inspect", files["dir"] / "missing.tlg", cwd=files["dir"])
    assert r.returncode == 2
    r = _cli("run", files["native"], "-i", f"arg0={files['x']}", "-o", files["dir"] / "o.txt",
             cwd=files["dir"])
    assert r.returncode == 2 and "must end in .npy" in r.stderr
    r = _cli("run", files["native"], "-i", f"arg0={files['x']}", "-o",
             files["dir"] / "nowhere" / "o.npy", cwd=files["dir"])
    assert r.returncode == 1 and "cannot write" in r.stderr and "Traceback" not in r.stderr


def test_onnx_user_errors_have_no_traceback(files):
    if "onnx" not in files:
        pytest.skip("onnx not installed")
    junk, empty = files["dir"] / "junk.onnx", files["dir"] / "empty.onnx"
    junk.write_text("not a model")
    empty.write_bytes(b"")
    for f, why in ((junk, "not an ONNX model"), (empty, "is empty")):
        r = _cli("inspect", f, cwd=files["dir"])
        assert r.returncode == 1 and why in r.stderr and "Traceback" not in r.stderr
    wrong = files["dir"] / "wrong.npy"
    np.save(wrong, np.zeros((3, 5), np.float32))
    r = _cli("run", files["onnx"], "-i", f"input0={wrong}", "-o", files["dir"] / "o.npy",
             "--runtime", "ort", cwd=files["dir"])
    assert r.returncode == 1 and "onnxruntime:" in r.stderr and "Traceback" not in r.stderr


def test_python_dash_m_tensorlib(files):
    r = subprocess.run([sys.executable, "-m", "tensorlib", "inspect", files["native"]],
                       capture_output=True, text=True, timeout=120, cwd=files["dir"],
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0 and "tensorlib graph file" in r.stdout


def test_config_command_and_show_config(tmp_path, capsys):
    """``tensorlib config`` and ``tl.show_config`` report the same facts, and the float32
    GEMM line follows TENSORLIB_SGEMM."""
    from tensorlib import _gemm, _ops
    cfg = tl.show_config(mode="dicts")
    assert set(cfg) == {"tensorlib", "python", "cpu", "numpy", "cuda"}
    assert cfg["tensorlib"]["version"] == tl.__version__
    assert cfg["cpu"]["avx512"] == (_ops.SGEMM_ISA == "avx512")
    assert cfg["cpu"]["threads"] == tl.get_num_threads() >= 1
    assert cfg["cpu"]["float32 matmul"].startswith("tensorlib") == _gemm.ENABLED
    assert ({"avx512": "AVX-512", "avx2": "AVX2"}.get(_gemm.ISA, "NumPy")
            in cfg["cpu"]["float32 matmul"])
    assert cfg["cuda"]["available"] is tl.cuda.is_available()
    assert tl.show_config() is None
    assert "float32 matmul:" in capsys.readouterr().out
    with pytest.raises(ValueError, match="mode"):
        tl.show_config(mode="json")
    env = dict(os.environ, TENSORLIB_SGEMM="0",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "tensorlib.cli", "config"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "float32 matmul: NumPy's BLAS" in proc.stdout
    assert f"version: {tl.__version__}" in proc.stdout
