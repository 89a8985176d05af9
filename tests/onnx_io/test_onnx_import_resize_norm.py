"""ONNX import of ``Resize`` (PyTorch's ``nn.Upsample``/``F.interpolate``) and
``InstanceNormalization`` (``nn.InstanceNorm2d``, and ``nn.GroupNorm``, which PyTorch exports
as InstanceNormalization over (N, G, -1) plus Reshape, Mul and Add).

PyTorch exports are compared with PyTorch and onnxruntime; Resize nodes built by hand (the
coordinate modes, rounding rules and opset features PyTorch does not emit) with onnxruntime.
Imported graphs must save and reload (``tl.save_graph``), export to ONNX again and
differentiate; unsupported uses are refused naming the node, the op and why."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
tnn = torch.nn
F = torch.nn.functional
helper, numpy_helper, TensorProto = onnx.helper, onnx.numpy_helper, onnx.TensorProto

RTOL, ATOL = 1e-4, 1e-5


def _ort(model_or_path, x):
    src = model_or_path.SerializeToString() if isinstance(model_or_path, onnx.ModelProto) \
        else str(model_or_path)
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def _export(m, x, path, opset, dynamic=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (torch.as_tensor(x),), str(path), dynamo=False, opset_version=opset,
                          input_names=["x"], dynamic_axes={"x": dynamic} if dynamic else None)
    return [nd.op_type for nd in onnx.load(str(path)).graph.node]


def _check(g, m, path, x):
    """g (imported) against PyTorch's module and onnxruntime on the exported file."""
    with torch.no_grad():
        want = m(torch.tensor(x)).numpy()
    with tl.no_grad():
        got = g(x).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(got, _ort(path, x), rtol=RTOL, atol=ATOL)
    return want


class Interp(tnn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.kw = kw

    def forward(self, x):
        return F.interpolate(x, **self.kw)


class UNetBlock(tnn.Module):
    """Down (strided conv, GroupNorm), up (Upsample, conv, GroupNorm), skip concatenation."""

    def __init__(self, mode="bilinear"):
        super().__init__()
        self.down = tnn.Sequential(tnn.Conv2d(3, 8, 3, stride=2, padding=1), tnn.GroupNorm(4, 8),
                                   tnn.ReLU())
        self.up = tnn.Sequential(tnn.Upsample(scale_factor=2, mode=mode),
                                 tnn.Conv2d(8, 4, 3, padding=1), tnn.GroupNorm(2, 4), tnn.SiLU())
        self.out = tnn.Conv2d(7, 2, 1)

    def forward(self, x):
        return self.out(torch.cat([self.up(self.down(x)), x], dim=1))


def _randomize_norms(m):
    torch.manual_seed(0)
    for mod in m.modules():
        if isinstance(mod, (tnn.GroupNorm, tnn.InstanceNorm2d)) and mod.affine:
            with torch.no_grad():
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)
    return m.eval()


TORCH_CASES = {
    "upsample-nearest": (lambda: tnn.Upsample(scale_factor=2, mode="nearest"), (2, 3, 4, 5)),
    "upsample-nearest-x3": (lambda: tnn.Upsample(scale_factor=3, mode="nearest"), (1, 2, 3, 4)),
    "bilinear": (lambda: tnn.Upsample(scale_factor=2, mode="bilinear"), (2, 3, 4, 5)),
    "bilinear-align-corners": (
        lambda: tnn.Upsample(scale_factor=2, mode="bilinear", align_corners=True), (2, 3, 4, 5)),
    "bicubic": (lambda: tnn.Upsample(scale_factor=2, mode="bicubic"), (2, 3, 4, 5)),
    "bicubic-align-corners": (
        lambda: tnn.Upsample(scale_factor=2, mode="bicubic", align_corners=True), (1, 2, 5, 4)),
    "interpolate-size-bilinear": (lambda: Interp(size=(5, 7), mode="bilinear"), (2, 3, 4, 6)),
    "interpolate-size-nearest": (lambda: Interp(size=(5, 7), mode="nearest"), (2, 3, 4, 6)),
    "interpolate-size-bicubic": (lambda: Interp(size=(3, 11), mode="bicubic"), (1, 2, 6, 5)),
    "interpolate-downscale": (lambda: Interp(scale_factor=0.5, mode="bilinear"), (1, 2, 8, 6)),
    "interpolate-fractional": (lambda: Interp(scale_factor=1.7, mode="bilinear",
                                              recompute_scale_factor=True), (1, 2, 5, 6)),
    "linear-1d": (lambda: Interp(scale_factor=2.5, mode="linear"), (2, 3, 7)),
    "trilinear": (lambda: Interp(scale_factor=2, mode="trilinear"), (1, 2, 3, 4, 5)),
    "unet-groupnorm": (UNetBlock, (2, 3, 8, 8)),
    "instancenorm-affine": (lambda: tnn.InstanceNorm2d(4, affine=True), (2, 4, 5, 6)),
    "instancenorm": (lambda: tnn.InstanceNorm2d(4), (2, 4, 5, 6)),
    "groupnorm-3d": (lambda: tnn.GroupNorm(2, 6), (2, 6, 7)),
}


@pytest.mark.parametrize("opset", [13, 17])
@pytest.mark.parametrize("name", list(TORCH_CASES))
def test_torch_resize_and_norm_exports_import_and_match(name, opset, tmp_path):
    make, shape = TORCH_CASES[name]
    torch.manual_seed(0)
    m = _randomize_norms(make())
    path = tmp_path / f"{name}.onnx"
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    ops = _export(m, x, path, opset)
    want_op = "InstanceNormalization" if "norm" in name else "Resize"
    assert want_op in ops
    g = tl.onnx.load(path)
    want = _check(g, m, path, x)
    saved = tmp_path / f"{name}.tlg"
    tl.save_graph(g.graph, saved)
    reloaded = tl.load_graph(saved)
    with tl.no_grad():
        np.testing.assert_allclose(reloaded(x).numpy(), want, rtol=RTOL, atol=ATOL)
    if "norm" in name and "affine" in name:    # the norms' scale and bias are parameters
        assert {k for k, _ in g.named_parameters()} >= {"weight", "bias"}


def test_group_norm_exports_as_instance_norm_and_imports_to_one_group_norm(tmp_path):
    m = _randomize_norms(tnn.GroupNorm(3, 6))
    path = tmp_path / "gn.onnx"
    x = np.random.default_rng(1).standard_normal((2, 6, 4, 4)).astype(np.float32)
    ops = _export(m, x, path, 17)
    assert "InstanceNormalization" in ops and "Mul" in ops
    g = tl.onnx.load(path)
    ops = [n.op for n in g.graph.nodes]
    # PyTorch's ones and zeros scale and bias of the InstanceNormalization apply nothing
    assert ops.count("group_norm") == 1
    norm = next(n for n in g.graph.nodes if n.op == "group_norm")
    assert norm.attrs["groups"] == 3 and norm.attrs["affine"] == ""
    _check(g, m, path, x)


@pytest.mark.parametrize("name", ["interpolate-size-bilinear", "interpolate-size-nearest",
                                  "bilinear", "unet-groupnorm"])
def test_a_dynamic_batch_imports_with_sizes_computed_from_shape(name, tmp_path):
    make, shape = TORCH_CASES[name]
    torch.manual_seed(0)
    m = _randomize_norms(make())
    path = tmp_path / f"{name}.onnx"
    ops = _export(m, np.zeros(shape, np.float32), path, 17, {0: "N"})
    if name.startswith("interpolate-size"):
        assert "Shape" in ops          # sizes = Concat(Shape(x)[:2], (5, 7)) at run time
    g = tl.onnx.load(path)
    assert g.graph.inputs[0].shape[0] is None
    saved = tmp_path / f"{name}.tlg"
    tl.save_graph(g.graph, saved)
    reloaded = tl.load_graph(saved)
    rng = np.random.default_rng(0)
    for n in (1, 3):
        x = rng.standard_normal((n,) + shape[1:]).astype(np.float32)
        want = _check(g, m, path, x)
        with tl.no_grad():
            np.testing.assert_allclose(reloaded(x).numpy(), want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
@pytest.mark.parametrize("factor", [2, (3, 2)])
def test_dynamic_height_and_width_scaled_by_integer_factors(mode, factor, tmp_path):
    m = tnn.Upsample(scale_factor=factor, mode=mode).eval()
    path = tmp_path / "up.onnx"
    _export(m, np.zeros((2, 3, 4, 5), np.float32), path, 17, {0: "N", 2: "H", 3: "W"})
    g = tl.onnx.load(path)
    assert g.graph.inputs[0].shape == (None, 3, None, None)
    saved, again = tmp_path / "up.tlg", tmp_path / "again.onnx"
    tl.save_graph(g.graph, saved)
    reloaded = tl.load_graph(saved)
    g.graph.to_onnx(again)              # the run-time sizes export as Shape arithmetic
    rng = np.random.default_rng(0)
    for shape in [(1, 3, 1, 1), (2, 3, 6, 7), (1, 3, 2, 9)]:
        x = rng.standard_normal(shape).astype(np.float32)
        want = _check(g, m, path, x)
        with tl.no_grad():
            np.testing.assert_allclose(reloaded(x).numpy(), want, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(_ort(again, x), want, rtol=RTOL, atol=ATOL)


def test_unet_block_with_dynamic_spatial_sizes(tmp_path):
    m = _randomize_norms(UNetBlock(mode="nearest"))
    path = tmp_path / "unet.onnx"
    _export(m, np.zeros((1, 3, 8, 8), np.float32), path, 17, {0: "N", 2: "H", 3: "W"})
    g = tl.onnx.load(path)
    rng = np.random.default_rng(0)
    for shape in [(1, 3, 8, 8), (2, 3, 12, 6)]:
        _check(g, m, path, rng.standard_normal(shape).astype(np.float32))


def test_gradients_through_an_imported_resize_match_torch(tmp_path):
    m = tnn.Upsample(scale_factor=2, mode="bilinear").eval()
    path = tmp_path / "up.onnx"
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 4)).astype(np.float32)
    _export(m, x, path, 17)
    g = tl.onnx.load(path)
    w = np.random.default_rng(1).standard_normal((1, 2, 6, 8)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    (m(xt) * torch.tensor(w)).sum().backward()
    xl = tl.tensor(x, requires_grad=True)
    (g(xl) * tl.tensor(w)).sum().backward()
    np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=RTOL, atol=ATOL)


def test_imported_resize_and_norm_export_to_onnx_again(tmp_path):
    m = _randomize_norms(UNetBlock(mode="bicubic"))
    path = tmp_path / "unet.onnx"
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    _export(m, x, path, 17, {0: "N"})
    g = tl.onnx.load(path)
    again = tmp_path / "again.onnx"
    g.graph.to_onnx(again)
    with torch.no_grad():
        want = m(torch.tensor(x)).numpy()
    np.testing.assert_allclose(_ort(again, x), want, rtol=RTOL, atol=ATOL)


# --- hand-built Resize nodes against onnxruntime -------------------------------------------------
def _resize_model(shape, opset, *, scales=None, sizes=None, roi=None, elem=TensorProto.FLOAT,
                  **attrs):
    inits, ins = [], ["x"]
    if 11 <= opset < 13:        # roi and scales are not optional yet: empty tensors
        roi = [] if roi is None else roi
        scales = [] if scales is None else scales
    if opset >= 11:
        ins.append("roi" if roi is not None else "")
        if roi is not None:
            inits.append(numpy_helper.from_array(np.asarray(roi, np.float32), "roi"))
    if scales is not None:
        ins.append("scales")
        inits.append(numpy_helper.from_array(np.asarray(scales, np.float32), "scales"))
    elif opset >= 11:
        ins.append("")
    if sizes is not None:
        ins.append("sizes")
        inits.append(numpy_helper.from_array(np.asarray(sizes, np.int64), "sizes"))
    node = helper.make_node("Resize", ins, ["y"], name="resize", **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", elem, shape)],
                              [helper.make_tensor_value_info("y", elem, None)],
                              initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _against_ort(model, x):
    want = _ort(model, x)
    g = tl.onnx.load(model)
    with tl.no_grad():
        got = g(x).numpy()
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    return g


SIZES = [dict(scales=[1, 1, 2, 2]), dict(scales=[1, 1, 0.6, 1.7]), dict(scales=[1, 1, 3, 0.5]),
         dict(sizes=[1, 2, 9, 4]), dict(sizes=[1, 2, 1, 13])]


@pytest.mark.parametrize("how", range(len(SIZES)))
@pytest.mark.parametrize("ctm", ["half_pixel", "pytorch_half_pixel", "align_corners",
                                 "asymmetric", "tf_half_pixel_for_nn"])
@pytest.mark.parametrize("mode,extra", [
    ("nearest", dict(nearest_mode="round_prefer_floor")),
    ("nearest", dict(nearest_mode="round_prefer_ceil")),
    ("nearest", dict(nearest_mode="floor")),
    ("nearest", dict(nearest_mode="ceil")),
    ("linear", {}),
    ("cubic", {}),
    ("cubic", dict(cubic_coeff_a=-0.5, exclude_outside=1)),
])
def test_hand_built_resize_matches_onnxruntime(ctm, mode, extra, how):
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 7)).astype(np.float32)
    model = _resize_model([1, 2, 5, 7], 13, mode=mode, coordinate_transformation_mode=ctm,
                          **SIZES[how], **extra)
    _against_ort(model, x)


@pytest.mark.parametrize("label,shape,opset,kw", [
    ("opset 10 nearest", [1, 2, 4, 5], 10, dict(scales=[1, 1, 2, 3], mode="nearest")),
    ("opset 10 nearest shrink", [1, 2, 4, 5], 10, dict(scales=[1, 1, 0.5, 0.6], mode="nearest")),
    ("opset 10 linear", [1, 2, 4, 5], 10, dict(scales=[1, 1, 2, 1.5], mode="linear")),
    ("opset 11", [1, 2, 4, 5], 11, dict(sizes=[1, 2, 7, 3], mode="linear")),
    ("axes scales", [1, 2, 4, 5], 18, dict(scales=[2, 1.5], axes=[2, 3], mode="linear")),
    ("axes sizes", [1, 2, 4, 5], 18, dict(sizes=[7, 3], axes=[-2, -1], mode="cubic")),
    ("not_larger", [1, 2, 4, 5], 18, dict(sizes=[8, 20], axes=[2, 3], mode="nearest",
                                          keep_aspect_ratio_policy="not_larger")),
    ("not_smaller", [1, 2, 4, 5], 18, dict(sizes=[8, 20], axes=[2, 3], mode="linear",
                                           keep_aspect_ratio_policy="not_smaller")),
    ("half_pixel_symmetric", [1, 2, 4, 5], 19, dict(
        scales=[1, 1, 1.7, 0.7], mode="linear", coordinate_transformation_mode=(
            "half_pixel_symmetric"))),
    ("half_pixel_symmetric nearest", [1, 2, 4, 5], 19, dict(
        sizes=[1, 2, 7, 3], mode="nearest",
        coordinate_transformation_mode="half_pixel_symmetric")),
    ("tf_crop_and_resize", [1, 2, 4, 5], 13, dict(
        sizes=[1, 2, 6, 6], roi=[0, 0, -0.2, 0.1, 1, 1, 1.2, 0.7], mode="linear",
        coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=-3.0)),
    ("tf_crop_and_resize axes", [1, 2, 4, 5], 18, dict(
        sizes=[6, 6], roi=[-0.2, 0.1, 1.2, 0.7], axes=[2, 3], mode="nearest",
        coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=7.0)),
    ("tf_crop_and_resize cubic", [1, 2, 4, 5], 13, dict(
        scales=[1, 1, 1.5, 2], roi=[0, 0, -0.2, 0.1, 1, 1, 1.2, 0.7], mode="cubic",
        coordinate_transformation_mode="tf_crop_and_resize")),
    ("3-d linear", [2, 3, 7], 13, dict(scales=[1, 1, 2.5], mode="linear")),
    ("5-d linear", [1, 2, 3, 4, 5], 13, dict(scales=[1, 1, 2, 1.5, 0.6], mode="linear",
                                             coordinate_transformation_mode="align_corners")),
    ("5-d nearest", [1, 2, 3, 4, 5], 13, dict(scales=[1, 1, 2, 1.5, 0.6], mode="nearest")),
    ("2-d cubic", [6, 5], 13, dict(scales=[1.5, 2], mode="cubic")),
    ("ties", [1, 1, 7, 11], 13, dict(sizes=[1, 1, 2, 26], mode="nearest",
                                     coordinate_transformation_mode="asymmetric",
                                     nearest_mode="round_prefer_ceil")),
])
def test_hand_built_resize_opsets_and_ranks_match_onnxruntime(label, shape, opset, kw):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    _against_ort(_resize_model(shape, opset, **kw), x)


@pytest.mark.parametrize("dtype,elem", [(np.uint8, TensorProto.UINT8),
                                        (np.int32, TensorProto.INT32)])
def test_nearest_resize_of_integer_tensors(dtype, elem):
    x = np.random.default_rng(0).integers(0, 200, (1, 2, 4, 5)).astype(dtype)
    model = _resize_model([1, 2, 4, 5], 13, sizes=[1, 2, 3, 9], mode="nearest",
                          nearest_mode="round_prefer_ceil", elem=elem)
    _against_ort(model, x)


@pytest.mark.parametrize("ctm", ["half_pixel", "asymmetric", "tf_half_pixel_for_nn",
                                 "half_pixel_symmetric"])
@pytest.mark.parametrize("mode,extra", [("nearest", dict(nearest_mode="round_prefer_ceil")),
                                        ("nearest", dict(nearest_mode="floor")),
                                        ("linear", {}), ("cubic", {})])
def test_hand_built_resize_over_dynamic_dims_matches_onnxruntime(ctm, mode, extra):
    model = _resize_model(["N", 2, "H", "W"], 19, scales=[1, 1, 3, 2], mode=mode,
                          coordinate_transformation_mode=ctm, **extra)
    g = tl.onnx.load(model)
    rng = np.random.default_rng(0)
    for shape in [(1, 2, 1, 3), (2, 2, 5, 4)]:
        x = rng.standard_normal(shape).astype(np.float32)
        with tl.no_grad():
            np.testing.assert_allclose(g(x).numpy(), _ort(model, x), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("kw,elem,why", [
    (dict(scales=[1, 1, 2, 2], mode="linear", antialias=1), TensorProto.FLOAT, "antialias=1"),
    (dict(scales=[1, 1, 2, 2], mode="linear"), TensorProto.UINT8, "mode='linear' of a uint8"),
    (dict(scales=[1, 1, 2, 2], mode="area"), TensorProto.FLOAT, "mode='area'"),
    (dict(scales=[1, 1, 2, 2], coordinate_transformation_mode="corners"), TensorProto.FLOAT,
     "coordinate_transformation_mode='corners'"),
    (dict(scales=[1, 1, 2, 2], nearest_mode="up"), TensorProto.FLOAT, "nearest_mode='up'"),
])
def test_unsupported_resize_attributes_are_refused_naming_the_node(kw, elem, why):
    opset = 18 if "antialias" in kw else 13
    model = _resize_model([1, 2, 4, 5], opset, elem=elem, **kw)
    with pytest.raises(tl.onnx.UnsupportedOpError, match=f"node 'resize' \\(Resize\\).*{why}"):
        tl.onnx.load(model)
    with pytest.raises(NotImplementedError):      # as the importer's other refusals
        tl.onnx.load(model)


def test_resize_with_scales_computed_at_run_time_is_refused():
    scale_in = helper.make_tensor_value_info("s", TensorProto.FLOAT, [4])
    node = helper.make_node("Resize", ["x", "", "s"], ["y"], name="rs", mode="nearest")
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 5]),
                      scale_in], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(tl.onnx.UnsupportedOpError, match="scales computed at run time"):
        tl.onnx.load(model)


# --- InstanceNormalization built by hand ---------------------------------------------------------
@pytest.mark.parametrize("shape", [(2, 3, 7), (2, 3, 4, 5), (1, 2, 3, 4, 2)])
def test_hand_built_instance_normalization_matches_onnxruntime(shape):
    rng = np.random.default_rng(0)
    C = shape[1]
    inits = [numpy_helper.from_array(rng.uniform(0.5, 1.5, C).astype(np.float32), "scale"),
             numpy_helper.from_array(rng.uniform(-1, 1, C).astype(np.float32), "B")]
    node = helper.make_node("InstanceNormalization", ["x", "scale", "B"], ["y"], epsilon=1e-3)
    dims = ["N", C] + list(shape[2:])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                          dims)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    g = _against_ort(model, rng.standard_normal(shape).astype(np.float32))
    assert {k for k, _ in g.named_parameters()} == {"scale", "B"}
    x = rng.standard_normal((3,) + shape[1:]).astype(np.float32)      # another batch size
    with tl.no_grad():
        np.testing.assert_allclose(g(x).numpy(), _ort(model, x), rtol=RTOL, atol=ATOL)
