"""ONNX export of signed shifts, the automatic opset choice, and EmbeddingBag over offsets
(1-d input), each run in onnxruntime against eager tensorlib and PyTorch."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorlib as tl
import tensorlib.nn.functional as F

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")


def _run(path_or_model, *arrays):
    m = path_or_model
    if not isinstance(m, onnx.ModelProto):
        m = onnx.load(str(m))
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {i.name: a for i, a in zip(m.graph.input, arrays)})


def _opset(path):
    return [o.version for o in onnx.load(str(path)).opset_import if o.domain == ""][0]


# --- shifts -------------------------------------------------------------------------------
_TORCH = {np.int8: torch.int8, np.int16: torch.int16, np.int32: torch.int32,
          np.int64: torch.int64, np.uint8: torch.uint8}


@pytest.mark.parametrize("dt", [np.int8, np.int16, np.int32, np.int64, np.uint8])
@pytest.mark.parametrize("op", ["left_shift", "right_shift"])
@pytest.mark.parametrize("opset", [13, 17])
def test_shift_matches_numpy_and_torch(dt, op, opset):
    info = np.iinfo(dt)
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.integers(info.min, info.max, 60, dtype=dt, endpoint=True),
                        np.array([info.min, info.max, 0, 1, info.min + 1], dt)])
    # counts past the width and (signed) negative: 0, or the sign for an arithmetic >>
    b = rng.integers(-3 if info.min < 0 else 0, 2 * info.bits + 3, a.size).astype(dt)
    x, y = tl.tensor(a), tl.tensor(b)
    with tl.capture(x, y) as g:
        out = getattr(tl, op)(x, y)
    g.set_outputs(out)
    m = tl.onnx.to_model(g, opset=opset)
    assert "BitShift" in {n.op_type for n in m.graph.node}
    got = _run(m, a, b)[0]
    ta, tb = torch.tensor(a, dtype=_TORCH[dt]), torch.tensor(b, dtype=_TORCH[dt])
    want = getattr(torch, f"bitwise_{op}")(ta, tb).numpy()
    assert got.dtype == np.dtype(dt)
    np.testing.assert_array_equal(out.numpy(), want)
    np.testing.assert_array_equal(got, want)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.integers(-2**63, 2**63 - 1), min_size=1, max_size=8),
       st.integers(0, 70), st.booleans())
def test_shift_by_scalar_int64(vals, k, left):
    class S(tl.nn.Module):
        def forward(self, ids):
            return ids << k if left else ids >> k
    a = np.array(vals, np.int64)
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        tl.onnx.export(S(), (tl.tensor(a),), f"{d}/s.onnx", dynamic_axes={0: [0]})
        got = _run(f"{d}/s.onnx", a)[0]
    t = torch.tensor(a)
    want = (t << k if left else t >> k).numpy()
    np.testing.assert_array_equal(got, want)


# --- the automatic opset -----------------------------------------------------------------
class _Hash(tl.nn.Module):
    def forward(self, ids):
        return (((ids * 31) ^ 12345) & 0xFFFF | 7) % 1000


def test_integer_bitwise_picks_opset_18(tmp_path):
    x = np.array([2**40 + 7, -5, 77], np.int64)
    p = tmp_path / "h.onnx"
    tl.onnx.export(_Hash(), (tl.tensor(x),), p, dynamic_axes={0: [0]})
    assert _opset(p) == 18
    y = np.array([-(2**62), 3, 0, 123456789, -1], np.int64)
    t = torch.tensor(y)
    np.testing.assert_array_equal(_run(p, y)[0], ((((t * 31) ^ 12345) & 0xFFFF | 7) % 1000))
    # named opset: the error names the one it needs
    with pytest.raises(tl.onnx.UnsupportedOpError, match=r"opset >= 18.*pass opset=18"):
        tl.onnx.export(_Hash(), (tl.tensor(x),), tmp_path / "h17.onnx", opset=17)


def test_bool_bitwise_stays_at_17(tmp_path):
    class B(tl.nn.Module):
        def forward(self, a):
            return (a > 0) ^ (a < 2)
    p = tmp_path / "b.onnx"
    tl.onnx.export(B(), (tl.tensor(np.array([0.0, 1.0, 3.0], np.float32)),), p)
    assert _opset(p) == 17


def test_every_opset_error_carries_its_minimum():
    """Rules in tensorlib.onnx state a newer opset through ctx.need_opset: the error carries
    min_opset, which the automatic choice reads."""
    import inspect

    from tensorlib.onnx import rules
    src = inspect.getsource(rules)
    assert "ctx.unsupported(f\"{bitwise}" not in src
    import re
    assert not re.search(r"unsupported\([^)]*opset >=", src)
    from tensorlib.onnx.context import ExportContext, OpsetTooLowError
    ctx = ExportContext(15)
    with pytest.raises(OpsetTooLowError) as e:
        ctx.need_opset(16, "thing")
    assert e.value.min_opset == 16 and "opset >= 16" in str(e.value)
    ctx.need_opset(15, "thing")


# --- EmbeddingBag over offsets -----------------------------------------------------------
class _Bag(tl.nn.Module):
    def __init__(self, mode, padding_idx=None, last=False, psw=False, V=12, D=3):
        super().__init__()
        self.b = tl.nn.EmbeddingBag(V, D, mode=mode, padding_idx=padding_idx,
                                    include_last_offset=last)
        self.psw = psw

    def forward(self, i, o, *p):
        return self.b(i, o, per_sample_weights=p[0] if p else None)


def _torch_bag(m, ids, off, psw=None):
    b = m.b
    tb = torch.nn.EmbeddingBag(b.weight.shape[0], b.weight.shape[1], mode=b.mode,
                               padding_idx=b.padding_idx,
                               include_last_offset=b.include_last_offset,
                               _weight=torch.tensor(b.weight.numpy().astype(np.float64)))
    with torch.no_grad():
        return tb(torch.tensor(ids), torch.tensor(off),
                  per_sample_weights=None if psw is None else torch.tensor(psw, dtype=torch.float64)
                  ).numpy()


def _bags(rng, V, n_bags, max_len=4, last=False):
    lens = rng.integers(0, max_len + 1, n_bags)
    ids = rng.integers(0, V, lens.sum())
    off = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    if last:
        off = np.append(off, ids.size)
    return ids, off


CONFIGS = [(mode, pad, last, psw) for mode in ("sum", "mean", "max") for pad in (None, 2)
           for last in (False, True) for psw in (False, True) if not (psw and mode != "sum")]


@pytest.mark.parametrize("mode,pad,last,psw", CONFIGS)
def test_embedding_bag_offsets_export(mode, pad, last, psw, tmp_path):
    rng = np.random.default_rng(1)
    m = _Bag(mode, pad, last, psw).eval()
    ids, off = _bags(rng, 12, 4, last=last)
    ex = [tl.tensor(ids), tl.tensor(off)]
    names, dyn = ["i", "o"], {"i": [0], "o": [0]}
    if psw:
        ex.append(tl.tensor(rng.standard_normal(ids.size).astype(np.float32)))
        names.append("p")
        dyn["p"] = [0]
    p = tmp_path / "bag.onnx"
    tl.onnx.export(m, tuple(ex), p, input_names=names, dynamic_axes=dyn)
    assert _opset(p) == (18 if mode == "max" else 17)
    # new bag counts and lengths, an empty bag, a padding entry, trailing entries past a
    # final offset
    for k, n_bags in enumerate((1, 3, 7)):
        ids, off = _bags(np.random.default_rng(10 + k), 12, n_bags, last=last)
        ids[: min(2, ids.size)] = pad if pad is not None else ids[: min(2, ids.size)]
        if last and k == 2:
            ids = np.append(ids, [1, 5])        # in no bag
        feeds = [ids, off]
        pw = None
        if psw:
            pw = np.random.default_rng(k).standard_normal(ids.size).astype(np.float32)
            feeds.append(pw)
        got = _run(p, *feeds)[0]
        with tl.no_grad():
            eager = m(*[tl.tensor(a) for a in feeds]).numpy()
        np.testing.assert_allclose(got, eager, rtol=1e-5, atol=1e-6)
        if not (last and k == 2):   # PyTorch's float64 kernels put those in the last bag
            np.testing.assert_allclose(got, _torch_bag(m, ids, off, pw), rtol=1e-5, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(["sum", "mean", "max"]), st.integers(0, 9), st.integers(0, 99))
def test_embedding_bag_offsets_float64_hypothesis(mode, n_bags, seed):
    rng = np.random.default_rng(seed)
    V, D = 7, 2
    w = rng.standard_normal((V, D))
    ids, off = _bags(rng, V, max(n_bags, 1), max_len=5)
    fn = tl.function(lambda i, o, w: F.embedding_bag(i, w, o, mode=mode),
                     input_signature=[tl.TensorSpec((None,), np.int64),
                                      tl.TensorSpec((None,), np.int64),
                                      tl.TensorSpec((V, D), np.float64)])
    g = fn.get_graph(tl.tensor(ids), tl.tensor(off), tl.tensor(w))
    model = tl.onnx.to_model(g, opset=18)
    onnx.checker.check_model(model, full_check=True)
    got = _run(model, ids, off, w)[0]
    want = torch.nn.functional.embedding_bag(torch.tensor(ids), torch.tensor(w),
                                             torch.tensor(off), mode=mode).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_embedding_bag_max_keeps_nan_and_inf(tmp_path):
    m = _Bag("max").eval()
    w = m.b.weight.numpy().copy()
    w[3, 0], w[4, 1] = np.nan, -np.inf
    m.b.weight.data.copy_(tl.tensor(w))
    ids, off = np.array([3, 1, 4, 4, 0]), np.array([0, 2, 3, 5])
    p = tmp_path / "m.onnx"
    tl.onnx.export(m, (tl.tensor(ids), tl.tensor(off)), p, dynamic_axes={0: [0], 1: [0]})
    with tl.no_grad():
        eager = m(tl.tensor(ids), tl.tensor(off)).numpy()
    got = _run(p, ids, off)[0]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(eager))
    np.testing.assert_allclose(got, eager)


def test_embedding_bag_offsets_named_old_opset_refused(tmp_path):
    ids, off = tl.tensor(np.arange(4)), tl.tensor(np.array([0, 2]))
    with pytest.raises(tl.onnx.UnsupportedOpError, match=r"embedding_bag_sum.*opset >= 16"):
        tl.onnx.export(_Bag("sum").eval(), (ids, off), tmp_path / "a.onnx", opset=15)
    with pytest.raises(tl.onnx.UnsupportedOpError, match=r"embedding_bag_max.*opset >= 18"):
        tl.onnx.export(_Bag("max").eval(), (ids, off), tmp_path / "b.onnx", opset=17)


def test_embedding_bag_offsets_imports_back(tmp_path):
    rng = np.random.default_rng(3)
    m = _Bag("mean", padding_idx=0).eval()
    ids, off = _bags(rng, 12, 5)
    p = tmp_path / "bag.onnx"
    tl.onnx.export(m, (tl.tensor(ids), tl.tensor(off)), p, dynamic_axes={0: [0], 1: [0]})
    back = tl.onnx.load(str(p))
    ids, off = _bags(np.random.default_rng(4), 12, 8)
    with tl.no_grad():
        np.testing.assert_allclose(back(ids, off).numpy(),
                                   m(tl.tensor(ids), tl.tensor(off)).numpy(), rtol=1e-5)
