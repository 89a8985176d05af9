"""Checkpoints: round trips, safetensors compatibility, atomic writes, corrupt files."""
import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import tensorlib as tl
from tensorlib import nn
from tensorlib.io import CheckpointError


def test_state_dict_round_trip(tmp_path):
    m = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    p = tmp_path / "m.safetensors"
    tl.save(m.state_dict(), p)
    back = tl.load(p)
    assert list(back) == list(m.state_dict())
    for k, v in m.state_dict().items():
        assert back[k].dtype == v.dtype
        np.testing.assert_array_equal(back[k].numpy(), v.numpy())
    m2 = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    m2.load_state_dict(back)


def test_nested_structures_round_trip(tmp_path):
    obj = {
        "model": {"w": tl.randn(2, 3), "b": tl.zeros(3, dtype=tl.float64)},
        "opt": {"state": {0: {"step": 3, "m": tl.ones(2)}}, "param_groups": [
            {"lr": 1e-3, "betas": (0.9, 0.999), "params": [0], "amsgrad": False,
             "name": None}]},
        "epoch": 7, "note": "hello", "loss": float("inf"), "nan": float("nan"),
        "arr": np.arange(4, dtype=np.int16), "flags": [True, False],
        "t": (tl.tensor([1, 2]), "x"), "empty": {}, "scalar": tl.tensor(2.5),
        "odd.key": tl.zeros(0, 3), 1.5: "float key", None: "none key",
    }
    p = tmp_path / "ck.safetensors"
    tl.save(obj, p, metadata={"author": "me"})
    back = tl.load(p)
    assert back["epoch"] == 7 and back["note"] == "hello" and back["loss"] == float("inf")
    assert np.isnan(back["nan"])
    assert back["opt"]["state"][0]["step"] == 3
    assert back["opt"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["opt"]["param_groups"][0]["name"] is None
    assert isinstance(back["arr"], np.ndarray) and back["arr"].dtype == np.int16
    assert isinstance(back["model"]["w"], tl.Tensor)
    np.testing.assert_array_equal(back["model"]["w"].numpy(), obj["model"]["w"].numpy())
    assert back["model"]["b"].dtype == np.float64
    assert back["t"][1] == "x" and back["t"][0].tolist() == [1, 2]
    assert back["empty"] == {} and back["flags"] == [True, False]
    assert back["scalar"].shape == () and back["odd.key"].shape == (0, 3)
    assert back[1.5] == "float key" and back[None] == "none key"


def test_readable_by_safetensors_package(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    sd = {"a": tl.randn(3, 2), "b": tl.arange(5), "c": tl.tensor([True, False]),
          "d": tl.ones(2, dtype=tl.float16), "e": tl.zeros(0)}
    p = str(tmp_path / "x.safetensors")
    tl.save(sd, p)
    back = st.load_file(p)
    assert set(back) == set(sd)
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k].numpy())
        assert back[k].dtype == sd[k].dtype
    nested = str(tmp_path / "n.safetensors")
    tl.save({"model": {"w": tl.ones(2)}, "step": 1}, nested)
    assert list(st.load_file(nested)) == ["model.w"]


def test_reads_files_written_by_safetensors(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    arrays = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "y": np.array([1, 2], np.int64)}
    p = str(tmp_path / "ext.safetensors")
    st.save_file(arrays, p, metadata={"k": "v"})
    back = tl.load(p)
    for k, v in arrays.items():
        np.testing.assert_array_equal(back[k].numpy(), v)


def test_load_to_device_and_unsupported_objects(tmp_path):
    p = tmp_path / "x.safetensors"
    tl.save({"w": tl.ones(2)}, p)
    assert str(tl.load(p, device="cpu")["w"].device) == "cpu"
    with pytest.raises(TypeError, match="cannot store a object"):
        tl.save({"bad": object()}, p)
    with pytest.raises(TypeError, match="dict keys"):
        tl.save({(1, 2): tl.ones(1)}, p)
    with pytest.raises(TypeError, match="metadata"):
        tl.save({"w": tl.ones(1)}, p, metadata={"k": 1})
    assert tl.load(p)["w"].tolist() == [1.0, 1.0]  # failed saves left the file alone


def _write_raw(path, header: dict, data: bytes):
    hb = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb + data)


@pytest.mark.parametrize("case,match", [
    ("empty", "fewer than the 8-byte"),
    ("huge_header", "implausibly large"),
    ("header_past_end", "runs past the end"),
    ("bad_json", "not valid JSON"),
    ("bad_dtype", "unsupported dtype"),
    ("bad_shape", "invalid shape"),
    ("wrong_size", "needs 24 bytes"),
    ("truncated_data", "truncated"),
    ("gap", "expected 0"),
    ("trailing", "cover"),
    ("bad_structure", "lacks"),
])
def test_corrupt_files_give_clear_errors(tmp_path, case, match):
    p = str(tmp_path / "bad.safetensors")
    good = {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}
    if case == "empty":
        open(p, "wb").close()
    elif case == "huge_header":
        with open(p, "wb") as f:
            f.write(struct.pack("<Q", 2 ** 40) + b"{}")
    elif case == "header_past_end":
        with open(p, "wb") as f:
            f.write(struct.pack("<Q", 100) + b"{}")
    elif case == "bad_json":
        with open(p, "wb") as f:
            f.write(struct.pack("<Q", 5) + b"{nope")
    elif case == "bad_dtype":
        _write_raw(p, {"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8)
    elif case == "bad_shape":
        _write_raw(p, {"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4)
    elif case == "wrong_size":
        _write_raw(p, {"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}},
                   b"\0" * 20)
    elif case == "truncated_data":
        _write_raw(p, good, b"\0" * 10)
    elif case == "gap":
        _write_raw(p, {"w": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8)
    elif case == "trailing":
        _write_raw(p, good, b"\0" * 30)
    elif case == "bad_structure":
        _write_raw(p, {"__metadata__": {"tensorlib.structure": '{"$tensor": "missing"}'},
                       **good}, b"\0" * 24)
    with pytest.raises(CheckpointError, match=match):
        tl.load(p)


def test_truncating_a_real_checkpoint_is_detected(tmp_path):
    p = tmp_path / "m.safetensors"
    tl.save(nn.Linear(8, 8).state_dict(), p)
    data = p.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 12):
        p.write_bytes(data[:cut])
        with pytest.raises(CheckpointError):
            tl.load(p)


def test_no_code_runs_on_load(tmp_path):
    """A header that looks like a pickle or Python is only ever data."""
    p = str(tmp_path / "evil.safetensors")
    _write_raw(p, {"__metadata__": {"tensorlib.structure": '{"$eval": "__import__(\'os\')"}'}},
               b"")
    with pytest.raises(CheckpointError, match="unknown structure tag"):
        tl.load(p)


_WRITER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import tensorlib as tl
    import tensorlib.io as tio
    path, mode = sys.argv[1], sys.argv[2]
    big = {"w": tl.tensor(np.full((1024, 1024), 2.0, np.float32)),
           "v": tl.tensor(np.full((4096,), 2.0, np.float32))}
    if mode == "stall":
        def stall(fd):
            print("WRITING", flush=True)
            time.sleep(60)
        tio._fsync = stall
        tl.save(big, path)
    else:
        print("WRITING", flush=True)
        while True:
            tl.save(big, path)
""")


@pytest.mark.parametrize("mode", ["stall", "loop"])
def test_killed_writer_leaves_old_checkpoint_intact(tmp_path, mode):
    """SIGKILL a process in the middle of tl.save: the old file still loads, unchanged
    (stall: killed after writing all bytes but before the rename; loop: killed at
    arbitrary points of repeated saves)."""
    path = str(tmp_path / "ck.safetensors")
    old = {"w": tl.ones(1024, 1024), "v": tl.ones(4096)}
    tl.save(old, path)
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    for delay in ([0.0] if mode == "stall" else [0.01, 0.05, 0.13]):
        proc = subprocess.Popen([sys.executable, str(script), path, mode],
                                stdout=subprocess.PIPE, env=env)
        try:
            assert proc.stdout.readline().strip() == b"WRITING"
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        back = tl.load(path)
        w = back["w"].numpy()
        if mode == "stall":
            assert (w == 1.0).all() and (back["v"].numpy() == 1.0).all()
        else:  # either the old or a completely written new checkpoint, never a mix
            assert (w == w.flat[0]).all() and w.flat[0] in (1.0, 2.0)
            assert (back["v"].numpy() == w.flat[0]).all()


def test_saved_files_get_the_usual_permissions(tmp_path):
    """Not mkstemp's owner-only 0600: the user's umask decides, as for any file they write."""
    import stat
    old = os.umask(0o022)
    try:
        tl.save({"w": tl.ones(2)}, tmp_path / "ck.safetensors")
        mode = stat.S_IMODE(os.stat(tmp_path / "ck.safetensors").st_mode)
        assert mode == 0o644
    finally:
        os.umask(old)


def test_file_objects_and_torchs_keyword_names():
    import io
    buf = io.BytesIO()
    tl.save({"w": tl.arange(3.0), "epoch": 2}, buf)
    buf.seek(0)
    back = tl.load(buf, map_location="cpu", weights_only=True)
    np.testing.assert_array_equal(back["w"].numpy(), [0.0, 1.0, 2.0])
    assert back["epoch"] == 2
    buf.seek(0)
    assert tl.load(buf, map_location=tl.device("cpu"))["w"].device == tl.device("cpu")
    buf.seek(0)
    with pytest.raises(TypeError, match="both device= and map_location="):
        tl.load(buf, device="cpu", map_location="cpu")
    # PyTorch's other forms: a function of (tensor, location), a mapping of locations
    buf.seek(0)
    seen = []
    back = tl.load(buf, map_location=lambda s, loc: (seen.append(loc), s)[1])
    assert seen and set(seen) == {"cpu"} and isinstance(back["w"], tl.Tensor)
    buf.seek(0)
    assert tl.load(buf, map_location={"cpu": "cpu"})["w"].device == tl.device("cpu")
    buf.seek(0)
    with pytest.raises(TypeError, match="map_location returned int"):
        tl.load(buf, map_location=lambda s, loc: 3)
    with pytest.raises(CheckpointError):
        tl.load(io.BytesIO(b"not a checkpoint at all"))
    # several checkpoints in one stream read back one by one
    buf = io.BytesIO()
    tl.save({"a": tl.ones(2)}, buf)
    tl.save({"b": tl.zeros(3), "step": 7}, buf)
    buf.seek(0)
    assert list(tl.load(buf)) == ["a"]
    second = tl.load(buf)
    assert second["step"] == 7 and second["b"].shape == (3,)
