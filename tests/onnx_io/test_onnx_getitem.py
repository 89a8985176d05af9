"""ONNX export of advanced indexing (``getitem``): several integer index arrays among
slices, ints, None and Ellipsis, negative indices and constant boolean masks. Each key is
exported, run in onnxruntime and read back with ``tl.onnx.load``; all must match eager
tensorlib and NumPy (or PyTorch, whose order tensorlib follows where ints sit apart from
the arrays), also with a dynamic batch axis run at another size."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorlib as tl

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


class Index(tl.nn.Module):
    def __init__(self, key):
        super().__init__()
        self.key = key

    def forward(self, z):
        return z[self.key]


def _export(key, x: np.ndarray, path, dynamic: bool):
    tl.onnx.export(Index(key), (tl.tensor(x),), path, input_names=["z"],
                   dynamic_axes={"z": {0: "batch"}} if dynamic else None)
    return onnx.load(str(path))


def _ort(model, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"z": x})[0]


def _torch_key(key):
    return tuple(torch.from_numpy(k) if isinstance(k, np.ndarray) else k for k in key)


def _without_empty_ellipsis(x: np.ndarray, key) -> tuple:
    """``key`` less an Ellipsis that stands for no dims: PyTorch (and tensorlib) then count
    the arrays on either side of it as adjacent, where NumPy would not."""
    used = sum(0 if k is None or k is Ellipsis else
               k.ndim if isinstance(k, np.ndarray) and k.dtype == np.bool_ else 1 for k in key)
    if used != x.ndim:
        return key
    return tuple(k for k in key if k is not Ellipsis)


def _reference(x: np.ndarray, key) -> np.ndarray:
    """NumPy's ``x[key]`` read with PyTorch's two differences: an empty Ellipsis does not
    split the arrays, and with ints (or 0-d integer arrays) in the key PyTorch itself gives
    it (ints apart from the arrays select first; such keys have positive slice steps)."""
    key = _without_empty_ellipsis(x, key)
    if any(isinstance(k, int) or (isinstance(k, np.ndarray) and k.ndim == 0
                                  and k.dtype.kind in "iu") for k in key):
        return torch.from_numpy(x)[_torch_key(key)].numpy()
    return x[key]


def _check_all(key, x: np.ndarray, path, dynamic: bool, other_batch: int | None = None):
    """Export on ``x``; then onnxruntime, tl.onnx.load, eager and the reference agree on
    ``x`` and, with a dynamic batch, on a batch of ``other_batch`` rows."""
    model = _export(key, x, path, dynamic)
    onnx.checker.check_model(model, full_check=True)
    back = tl.onnx.load(model)
    xs = [x]
    if dynamic and other_batch is not None:
        xs.append(np.random.default_rng(1).standard_normal(
            (other_batch,) + x.shape[1:]).astype(np.float32))
    for a in xs:
        want = _reference(a, key)
        eager = tl.tensor(a)[key].numpy()
        np.testing.assert_array_equal(eager, want)
        got = _ort(model, a)
        assert got.shape == want.shape, (key, got.shape, want.shape)
        np.testing.assert_array_equal(got, want)
        with tl.no_grad():
            np.testing.assert_array_equal(back(a).numpy(), want)
    return model


# --- hypothesis: keys of integer arrays, ints, slices, None and Ellipsis -------------------
@st.composite
def _keys(draw):
    """(input shape, key, dynamic): a key with one to four index arrays (or ints) that
    broadcast together, at drawn positions among slices, None and an Ellipsis. With a
    dynamic batch the key starts with a full slice over a leading batch axis."""
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    kinds = draw(st.lists(st.sampled_from(["array", "array", "full", "slice", "int"]),
                          min_size=ndim, max_size=ndim))
    if "array" not in kinds:
        kinds[draw(st.integers(0, ndim - 1))] = "array"
    allow_ints = draw(st.booleans())
    bshape = tuple(draw(st.lists(st.integers(1, 3), min_size=0 if allow_ints else 1,
                                 max_size=2)))
    key = []
    for d, kind in zip(shape, kinds):
        if kind == "int" and allow_ints:
            key.append(draw(st.integers(-d, d - 1)))
        elif kind in ("array", "int"):
            # a shape that broadcasts to bshape: some leading dims dropped, some set to 1
            # (0-d arrays select as ints do, PyTorch's way: only where the torch
            # reference applies, with positive slice steps)
            drop = draw(st.integers(0, len(bshape) - (0 if allow_ints or not bshape else 1)))
            ashape = tuple(1 if draw(st.booleans()) else b for b in bshape[drop:])
            vals = draw(st.lists(st.integers(-d, d - 1), min_size=int(np.prod(ashape)),
                                 max_size=int(np.prod(ashape))))
            key.append(np.asarray(vals, dtype=np.int64).reshape(ashape))
        elif kind == "full":
            key.append(slice(None))
        else:
            step = draw(st.sampled_from([1, 2] if allow_ints else [1, 2, -1, -2]))
            start = draw(st.one_of(st.none(), st.integers(-d, d)))
            stop = draw(st.one_of(st.none(), st.integers(-d, d)))
            key.append(slice(start, stop, step))
    for _ in range(draw(st.integers(0, 2))):               # new axes anywhere
        key.insert(draw(st.integers(0, len(key))), None)
    # a run of full slices (possibly none: an empty Ellipsis) as an Ellipsis, or the
    # trailing full slices left out
    form = draw(st.sampled_from(["plain", "ellipsis", "trailing"]))
    if form == "ellipsis":
        i = draw(st.integers(0, len(key)))
        j = i
        while j < len(key) and isinstance(key[j], slice) and key[j] == slice(None):
            j += 1
        key[i:j] = [Ellipsis]
    elif form == "trailing":
        while key and isinstance(key[-1], slice) and key[-1] == slice(None):
            key.pop()
    dynamic = draw(st.booleans())
    if dynamic:
        shape = (draw(st.integers(1, 3)),) + shape
        if not key or key[0] is not Ellipsis:
            key.insert(0, slice(None))
    return shape, tuple(key), dynamic


@SETTINGS
@given(case=_keys(), seed=st.integers(0, 2**16))
def test_advanced_index_exports_and_matches_eager_numpy_and_onnxruntime(case, seed,
                                                                        tmp_path):
    shape, key, dynamic = case
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    _check_all(key, x, tmp_path / "m.onnx", dynamic, other_batch=shape[0] + 2)


@st.composite
def _mask_keys(draw):
    """A constant boolean mask over one to three axes after some full slices, alone, with
    an integer array beside it or apart from it, or a 0-d boolean."""
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    at = draw(st.integers(0, ndim - 1))
    width = draw(st.integers(1, ndim - at))
    mshape = shape[at:at + width]
    mask = np.asarray(draw(st.lists(st.booleans(), min_size=int(np.prod(mshape)),
                                    max_size=int(np.prod(mshape))))).reshape(mshape)
    key = [slice(None)] * at + [mask] + [slice(None)] * (ndim - at - width)
    extra = draw(st.sampled_from(["none", "array", "scalar_bool"]))
    free = [i for i, k in enumerate(key) if isinstance(k, slice)]
    if extra == "array" and free:
        # an index array that broadcasts with the mask's nonzero count: one entry, or one
        # per selected element
        i = draw(st.sampled_from(free))
        d = shape[i if i < at else i - 1 + width]
        n = int(mask.sum()) if draw(st.booleans()) else 1
        key[i] = np.asarray(draw(st.lists(st.integers(-d, d - 1), min_size=n, max_size=n)),
                            dtype=np.int64)
    elif extra == "scalar_bool":
        # True selects a (1,) that broadcasts with the mask's indices; False a (0,), which
        # broadcasts with no more than one
        flag = draw(st.booleans()) or int(mask.sum()) > 1
        key.insert(draw(st.integers(0, len(key))), np.asarray(flag))
    return shape, tuple(key)


@SETTINGS
@given(case=_mask_keys(), dynamic=st.booleans(), seed=st.integers(0, 2**16))
def test_constant_boolean_masks_export_as_their_nonzero_indices(case, dynamic, seed,
                                                                tmp_path):
    shape, key = case
    if dynamic:
        shape, key = (2,) + shape, (slice(None),) + key
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    _check_all(key, x, tmp_path / "m.onnx", dynamic, other_batch=5)


# --- fixed cases ---------------------------------------------------------------------------
def test_user_report_two_index_tensors_after_a_full_slice(tmp_path):
    class M(tl.nn.Module):
        def forward(self, z):
            return z[:, tl.tensor([0, 0, 1]), tl.tensor([1, 2, 2])]

    x = tl.randn(2, 3, 3)
    tl.onnx.export(M(), (x,), tmp_path / "m.onnx")
    got = _ort_file(tmp_path / "m.onnx", x.numpy())
    np.testing.assert_array_equal(got, x.numpy()[:, [0, 0, 1], [1, 2, 2]])


def _ort_file(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


class Interaction(tl.nn.Module):
    """DLRM's pairwise feature interaction: the dot products of every pair of feature
    vectors, the strict lower triangle of ``T @ T^T`` picked by two index arrays."""

    def __init__(self, n_sparse: int, dim: int):
        super().__init__()
        self.bottom = tl.nn.Linear(4, dim)
        self.emb = tl.nn.Embedding(10, dim)
        li, lj = np.tril_indices(n_sparse + 1, -1)
        self.li, self.lj = tl.tensor(li), tl.tensor(lj)

    def forward(self, dense, ids):
        x = self.bottom(dense)                                   # (B, D)
        t = tl.concatenate([x[:, None, :], self.emb(ids)], axis=1)  # (B, F, D)
        z = t @ t.transpose(1, 2)                               # (B, F, F)
        return tl.concatenate([x, z[:, self.li, self.lj]], axis=1)


def test_dlrm_interaction_exports_with_a_dynamic_batch(tmp_path):
    m = Interaction(n_sparse=3, dim=5)
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((2, 4)).astype(np.float32)
    ids = rng.integers(0, 10, (2, 3))
    path = tmp_path / "dlrm.onnx"
    tl.onnx.export(m, (tl.tensor(dense), tl.tensor(ids)), path,
                   input_names=["dense", "ids"], output_names=["out"],
                   dynamic_axes={"dense": {0: "batch"}, "ids": {0: "batch"},
                                 "out": {0: "batch"}})
    model = onnx.load(str(path))
    assert "GatherND" in {n.op_type for n in model.graph.node}
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    back = tl.onnx.load(path)
    # the same interaction in PyTorch, with the weights copied over
    bottom = torch.nn.Linear(4, 5)
    emb = torch.nn.Embedding(10, 5)
    with torch.no_grad():
        bottom.weight.copy_(torch.from_numpy(m.bottom.weight.numpy()))
        bottom.bias.copy_(torch.from_numpy(m.bottom.bias.numpy()))
        emb.weight.copy_(torch.from_numpy(m.emb.weight.numpy()))
    li, lj = (torch.from_numpy(a) for a in np.tril_indices(4, -1))
    for b in (2, 7, 1):
        dense = rng.standard_normal((b, 4)).astype(np.float32)
        ids = rng.integers(0, 10, (b, 3))
        with torch.no_grad():
            x = bottom(torch.from_numpy(dense))
            t = torch.cat([x[:, None, :], emb(torch.from_numpy(ids))], dim=1)
            want = torch.cat([x, (t @ t.transpose(1, 2))[:, li, lj]], dim=1).numpy()
        assert want.shape == (b, 5 + 6)
        eager = m(tl.tensor(dense), tl.tensor(ids)).numpy()
        got = sess.run(None, {"dense": dense, "ids": ids})[0]
        with tl.no_grad():
            loaded = back(dense, ids).numpy()
        for what, v in (("eager", eager), ("onnxruntime", got), ("tl.onnx.load", loaded)):
            np.testing.assert_allclose(v, want, rtol=1e-5, atol=1e-5, err_msg=what)


@pytest.mark.parametrize("key, shape", [
    ((slice(None), np.array([0, -1]), np.array([[1], [-2]])), (2, 3, 4)),     # adjacent
    ((np.array([0, -1]), slice(None), np.array([[1], [-2]])), (2, 3, 4)),     # apart: front
    ((slice(None), np.array([0, -1]), None, np.array([1, -2])), (2, 3, 4)),   # None between
    ((np.array([-1, 0]), np.array([-3, 2])), (3, 3, 2)),    # negatives over the batch axis
])
def test_negative_indices_and_placement_with_a_dynamic_batch(key, shape, tmp_path):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    model = _check_all(key, x, tmp_path / "m.onnx", dynamic=True, other_batch=shape[0] + 3)
    # over static axes the indices are wrapped at export (runtimes that refuse negative
    # gather indices run the model too); over the dynamic batch axis they stay negative
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    idx = [inits[nd.input[1]] for nd in model.graph.node
           if nd.op_type in ("Gather", "GatherND")]
    assert idx
    over_batch = isinstance(key[0], np.ndarray)
    assert all((i >= 0).all() for i in idx) != over_batch


def test_an_empty_ellipsis_between_arrays_keeps_pytorchs_placement(tmp_path):
    # x[:, i, ..., j] on a 3-d tensor: the Ellipsis stands for no dims, and PyTorch (whom
    # tensorlib follows) keeps the arrays' dims in place; NumPy would put them first
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    key = (slice(None), np.array([0, 2]), Ellipsis, np.array([1, 3]))
    want = torch.from_numpy(x)[_torch_key(key)].numpy()
    assert want.shape == (2, 2)
    model = _export(key, x, tmp_path / "m.onnx", dynamic=False)
    np.testing.assert_array_equal(_ort(model, x), want)
    np.testing.assert_array_equal(tl.onnx.load(model)(x).numpy(), want)


def test_a_mask_over_a_dynamic_axis_is_refused_with_the_reason(tmp_path):
    x = tl.randn(5, 4)
    mask = np.array([True, False, False, True, False])
    with pytest.raises(tl.onnx.UnsupportedOpError,
                       match=r"getitem.*boolean mask.*dynamic.*mask\.nonzero"):
        _export((mask,), x.numpy(), tmp_path / "m.onnx", dynamic=True)
    assert not (tmp_path / "m.onnx").exists()
    # its nonzero indices export with the same dynamic axis
    _check_all(mask.nonzero(), x.numpy(), tmp_path / "m.onnx", dynamic=True)


def test_partial_entry_describes_the_rule():
    text = tl.onnx.rules.PARTIAL["getitem"]
    assert "boolean mask" in text and "dynamic axis" in text
    assert "not exported" not in text


# --- import: GatherND --------------------------------------------------------------------
def _gather_nd_model(data_shape, indices: np.ndarray, batch_dims: int, dyn_batch=False):
    from onnx import TensorProto, helper, numpy_helper
    dims = ["b" if dyn_batch and i == 0 else d for i, d in enumerate(data_shape)]
    node = helper.make_node("GatherND", ["x", "idx"], ["y"], batch_dims=batch_dims)
    g = helper.make_graph([node], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[numpy_helper.from_array(indices, "idx")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("data_shape, indices, batch_dims", [
    ((3, 4, 5), np.array([[0, 1], [2, -1], [-3, 3]]), 0),
    ((3, 4, 5), np.array([[[0], [2]], [[1], [-1]]]), 0),
    ((3, 4, 5), np.array([1, 2, 3]), 0),
    ((2, 4, 5), np.array([[[0, 1], [3, 4]], [[2, -1], [1, 0]]]), 1),
    ((2, 3, 4, 5), np.array([[[1], [2], [0]], [[0], [3], [-4]]]), 2),
])
def test_gather_nd_imports_as_onnxruntime_runs_it(data_shape, indices, batch_dims):
    model = _gather_nd_model(data_shape, indices.astype(np.int64), batch_dims)
    x = np.random.default_rng(0).standard_normal(data_shape).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got = tl.onnx.load(model)(x).numpy()
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_gather_nd_import_keeps_a_dynamic_leading_dim_of_the_indices_dims():
    idx = np.array([[0, 1], [-1, 2]], np.int64)
    m = tl.onnx.load(_gather_nd_model((3, 4), idx, 0))
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(m(x).numpy(), x[idx[:, 0], idx[:, 1]])
    # a dynamic trailing part of the data
    from onnx import TensorProto, helper, numpy_helper
    node = helper.make_node("GatherND", ["x", "idx"], ["y"])
    g = helper.make_graph([node], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4, "n"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[numpy_helper.from_array(idx, "idx")])
    m = tl.onnx.load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    for n in (1, 6):
        x = np.random.default_rng(n).standard_normal((3, 4, n)).astype(np.float32)
        np.testing.assert_array_equal(m(x).numpy(), x[idx[:, 0], idx[:, 1]])


def test_gather_nd_import_refuses_indices_computed_at_run_time():
    from onnx import TensorProto, helper
    node = helper.make_node("GatherND", ["x", "idx"], ["y"])
    g = helper.make_graph([node], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4]),
                           helper.make_tensor_value_info("idx", TensorProto.INT64, [2, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(NotImplementedError, match="GatherND.*run time"):
        tl.onnx.load(model)
