"""The ``tensorlib`` command tells formats by extension first (``.tlg`` native, ``.onnx``
ONNX; content only for other names), reports an empty or broken file by its format's name,
and an ONNX model whose constant shapes are too large as one line (no traceback, nothing
allocated)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import cli, nn

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _main(capsys, *args):
    rc = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.fixture()
def native(tmp_path):
    tl.manual_seed(0)
    model = nn.Linear(4, 2).eval()
    f = tl.function(lambda x: model(x), input_signature=[tl.TensorSpec((None, 4))])
    x = np.ones((3, 4), np.float32)
    with tl.no_grad():
        f(tl.tensor(x))
    tl.save_graph(f, tmp_path / "m.tlg")
    np.save(tmp_path / "x.npy", x)
    return tmp_path / "m.tlg"


@pytest.mark.parametrize("cmd", ["inspect", "run"])
@pytest.mark.parametrize("name,content,words", [
    ("x.tlg", b"", "x.tlg is empty, not a valid tensorlib graph file (.tlg)"),
    ("x.tlg", bytes(range(7, 107)), "not a valid tensorlib graph file (.tlg): it is not a zip"),
    ("x.onnx", b"", "x.onnx is empty, not a valid ONNX model"),
    ("x.onnx", b"\xff\xff\xff\xff\xff\x01garbage", "not an ONNX model"),
    ("x.onnx", b"PK\x03\x04 a zip header in a file named .onnx", "not an ONNX model"),
])
def test_empty_and_broken_files_are_named_by_their_format(tmp_path, capsys, cmd, name,
                                                          content, words):
    p = tmp_path / name
    p.write_bytes(content)
    args = [cmd, p] + (["-o", tmp_path / "o.npy"] if cmd == "run" else [])
    rc, out, err = _main(capsys, *args)
    assert rc == 1 and words in err, err
    assert "inputs [] expected" not in err and "outputs []" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_native_file_under_another_name_is_read_by_content(tmp_path, capsys, native):
    other = tmp_path / "model.bin"
    other.write_bytes(native.read_bytes())
    rc, out, err = _main(capsys, "inspect", other)
    assert rc == 0 and "tensorlib graph file" in out, err
    rc, out, err = _main(capsys, "run", other, "-i", f"arg0={tmp_path / 'x.npy'}", "-o",
                         tmp_path / "o.npy")
    assert rc == 0, err
    # the same bytes named .onnx are an ONNX file that is not valid
    misnamed = tmp_path / "model.onnx"
    misnamed.write_bytes(native.read_bytes())
    rc, out, err = _main(capsys, "inspect", misnamed)
    assert rc == 1 and "not an ONNX model" in err


def _constant_of_shape(path, dims):
    shape = numpy_helper.from_array(np.array(dims, np.int64), "s")
    g = helper.make_graph([helper.make_node("ConstantOfShape", ["s"], ["y"], name="big")], "g",
                          [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[shape])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_a_too_large_constant_shape_is_one_line_from_tensorlib_run(tmp_path):
    path = tmp_path / "big.onnx"
    _constant_of_shape(path, [10 ** 6] * 3)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-m", "tensorlib.cli", "run", str(path), "-o",
                        str(tmp_path / "o.npy")], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "node 'big' (ConstantOfShape)" in r.stderr and "elements" in r.stderr
