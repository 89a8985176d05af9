"""ONNX import of ``Resize`` over dynamic axes whose output sizes are known only at run time.

tensorlib's own export of ``F.interpolate`` / ``nn.Upsample`` with dynamic H/W (scales: any
factor, align_corners; sizes: fixed sizes from a dynamic input) and hand-built Resize nodes
(constant scales, sizes from Shape arithmetic) re-import as the registry ``resize`` /
``resize_linear`` ops ``interpolate`` captures over None dims, compared at several sizes with
eager tensorlib, PyTorch and onnxruntime (values and gradients). Resizes that still need the
sizes at import are refused with an error that names ``input_shapes=``."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn.functional as TF

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
helper, numpy_helper, TensorProto = onnx.helper, onnx.numpy_helper, onnx.TensorProto

RTOL, ATOL = 1e-4, 1e-5
HW = [(6, 8), (9, 5), (13, 10)]


def _ort(model_or_path, *xs):
    src = model_or_path.SerializeToString() if isinstance(model_or_path, onnx.ModelProto) \
        else str(model_or_path)
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    return sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), xs)})[0]


def _np(y):
    y = y[0] if isinstance(y, (tuple, list)) else y
    return y.numpy()


def _resize_ops(path) -> list:
    return [nd for nd in onnx.load(str(path)).graph.node if nd.op_type == "Resize"]


class Interp(tl.nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.kw = kw

    def forward(self, x):
        return TF.interpolate(x, **self.kw)


# --- tensorlib's own export, dynamic H/W ------------------------------------------------------
CASES = [dict(scale_factor=s, mode=m, **({} if m == "nearest" else {"align_corners": ac}))
         for m, acs in (("nearest", (None,)), ("bilinear", (False, True)),
                        ("bicubic", (False, True)))
         for ac in acs for s in (2, 0.5, 1.5)]
CASES += [dict(size=(5, 7), mode="nearest"), dict(size=(5, 7), mode="bilinear"),
          dict(size=(5, 7), mode="bilinear", align_corners=True),
          dict(size=(11, 4), mode="bicubic", align_corners=False),
          dict(scale_factor=(2, 1.5), mode="bilinear", align_corners=True),
          dict(scale_factor=(1.5, 0.5), mode="nearest")]


def _ids(kw):
    return "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("kw", CASES, ids=_ids)
def test_own_export_with_dynamic_hw_reimports(kw, tmp_path):
    m = Interp(**kw).eval()
    path = tmp_path / "r.onnx"
    tl.onnx.export(m, (tl.randn(1, 2, 8, 8),), str(path), input_names=["x"],
                   dynamic_axes={"x": {0: "N", 2: "H", 3: "W"}})
    if not (kw["mode"] == "nearest" and kw.get("scale_factor") == 2):    # a repeat
        assert _resize_ops(path), "the export has no Resize: the test checks nothing"
    g = tl.onnx.load(str(path))
    assert g.graph.inputs[0].shape == (None, 2, None, None)
    tkw = {k: v for k, v in kw.items()}
    rng = np.random.default_rng(0)
    for n, (h, w) in zip((1, 2, 3), HW):
        x = rng.standard_normal((n, 2, h, w)).astype(np.float32)
        with tl.no_grad():
            got = _np(g(x))
            eager = m(tl.tensor(x)).numpy()
        want = torch.nn.functional.interpolate(torch.tensor(x), **tkw).numpy()
        assert got.shape == eager.shape == want.shape
        np.testing.assert_allclose(got, eager, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(got, _ort(path, x), rtol=RTOL, atol=ATOL)


def test_the_trial_upsample_align_corners_reimports(tmp_path):
    """The report's repro: nn.Upsample(scale_factor=2, bilinear, align_corners=True)."""
    m = tl.nn.Sequential(tl.nn.Upsample(scale_factor=2, mode="bilinear",
                                        align_corners=True)).eval()
    path = tmp_path / "u.onnx"
    tl.onnx.export(m, (tl.randn(1, 2, 8, 8),), str(path), input_names=["x"],
                   dynamic_axes={"x": {2: "H", 3: "W"}})
    g = tl.onnx.load(str(path))
    ops = [nd.op.name if hasattr(nd.op, "name") else nd.op for nd in g.graph.nodes]
    assert ops.count("resize_linear") == 2       # the nodes interpolate captures
    for h, w in HW:
        x = np.random.default_rng(h).standard_normal((1, 2, h, w)).astype(np.float32)
        with tl.no_grad():
            got = _np(g(x))
        np.testing.assert_allclose(got, m(tl.tensor(x)).detach().numpy(), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(got, _ort(path, x), rtol=RTOL, atol=ATOL)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("kw", [dict(scale_factor=1.5, mode="bilinear", align_corners=True),
                                dict(scale_factor=0.5, mode="bicubic", align_corners=False),
                                dict(scale_factor=1.5, mode="nearest"),
                                dict(size=(5, 7), mode="bilinear", align_corners=False)],
                         ids=_ids)
def test_gradients_through_the_reimported_resize_match_torch(kw, tmp_path):
    m = Interp(**kw).eval()
    path = tmp_path / "r.onnx"
    tl.onnx.export(m, (tl.randn(1, 2, 8, 8),), str(path), input_names=["x"],
                   dynamic_axes={"x": {2: "H", 3: "W"}})
    g = tl.onnx.load(str(path))
    rng = np.random.default_rng(1)
    for h, w in HW:
        x = rng.standard_normal((1, 2, h, w)).astype(np.float32)
        xt = torch.tensor(x, requires_grad=True)
        yt = torch.nn.functional.interpolate(xt, **kw)
        wgt = rng.standard_normal(tuple(yt.shape)).astype(np.float32)
        (yt * torch.tensor(wgt)).sum().backward()
        xl = tl.tensor(x, requires_grad=True)
        y = g(xl)
        y = y[0] if isinstance(y, (tuple, list)) else y
        (y * tl.tensor(wgt)).sum().backward()
        np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=RTOL,
                                   atol=ATOL)
        np.testing.assert_allclose(xl.grad.numpy(), xt.grad.numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.filterwarnings("ignore")
def test_reimported_graph_saves_and_exports_again(tmp_path):
    m = Interp(scale_factor=1.5, mode="bilinear", align_corners=True).eval()
    path, again, saved = tmp_path / "r.onnx", tmp_path / "again.onnx", tmp_path / "r.tlg"
    tl.onnx.export(m, (tl.randn(1, 2, 8, 8),), str(path), input_names=["x"],
                   dynamic_axes={"x": {2: "H", 3: "W"}})
    g = tl.onnx.load(str(path))
    g.graph.to_onnx(again)
    tl.save_graph(g.graph, saved)
    reloaded = tl.load_graph(saved)
    for h, w in HW:
        x = np.random.default_rng(w).standard_normal((1, 2, h, w)).astype(np.float32)
        want = _ort(path, x)
        np.testing.assert_allclose(_ort(again, x), want, rtol=RTOL, atol=ATOL)
        with tl.no_grad():
            np.testing.assert_allclose(_np(reloaded(x)), want, rtol=RTOL, atol=ATOL)


# --- hand-built Resize nodes against onnxruntime ----------------------------------------------
FORMS = [("nearest", "asymmetric", "floor"), ("nearest", "half_pixel", "round_prefer_ceil"),
         ("nearest", "tf_half_pixel_for_nn", "floor"), ("linear", "half_pixel", None),
         ("linear", "pytorch_half_pixel", None), ("linear", "align_corners", None),
         ("cubic", "half_pixel", -0.75), ("cubic", "pytorch_half_pixel", -0.75),
         ("cubic", "align_corners", -0.75)]
# (H, W) including 1-element outputs (pytorch_half_pixel reads row 0 there) and 1-element inputs
SIZES = [(6, 8), (9, 5), (3, 2), (1, 7), (16, 11)]


def _attrs(mode, ctm, extra):
    at = dict(mode=mode, coordinate_transformation_mode=ctm)
    if mode == "nearest":
        at["nearest_mode"] = extra
    if mode == "cubic":
        at["cubic_coeff_a"] = extra
    return at


def _model(nodes, inits=(), extra_inputs=(), opset=17):
    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, "H", "W"])]
    ins += list(extra_inputs)
    graph = helper.make_graph(nodes, "g", ins, [helper.make_tensor_value_info(
        "o", TensorProto.FLOAT, None)], initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _scales_model(form, scales, opset=17):
    sc = numpy_helper.from_array(np.asarray([1, 1, *scales], np.float32), "sc")
    return _model([helper.make_node("Resize", ["x", "", "sc"], ["o"], **_attrs(*form))],
                  [sc], opset=opset)


def _compare(model, sizes, n=2, scales=(1, 1)):
    g = tl.onnx.load(model)
    rng = np.random.default_rng(0)
    for h, w in sizes:
        if int(h * scales[0]) < 1 or int(w * scales[1]) < 1:
            continue                 # onnxruntime gives an empty axis, interpolate refuses
        x = rng.standard_normal((n, 2, h, w)).astype(np.float32)
        want = _ort(model, x)
        with tl.no_grad():
            got = _np(g(x))
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("form", FORMS, ids=lambda f: "-".join(map(str, f)))
@pytest.mark.parametrize("scales", [(2, 2), (0.5, 0.5), (1.5, 0.7), (3, 1)],
                         ids=lambda s: "x".join(map(str, s)))
def test_constant_scales_over_dynamic_axes_match_onnxruntime(form, scales):
    _compare(_scales_model(form, scales), SIZES, scales=scales)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("form", FORMS, ids=lambda f: "-".join(map(str, f)))
def test_fixed_sizes_over_dynamic_axes_match_onnxruntime(form):
    sz = numpy_helper.from_array(np.asarray([2, 2, 5, 1], np.int64), "sz")
    model = _model([helper.make_node("Resize", ["x", "", "", "sz"], ["o"], **_attrs(*form))],
                   [sz])
    _compare(model, SIZES)


def _const(name, v):
    return helper.make_node("Constant", [], [name],
                            value=numpy_helper.from_array(np.asarray(v, np.int64), name))


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("form", FORMS, ids=lambda f: "-".join(map(str, f)))
def test_sizes_from_shape_arithmetic_match_onnxruntime(form):
    """PyTorch's exporter pattern for ``interpolate(x, size=(2 * H - 1, W // 2 + 1))``:
    Shape -> Gather -> Mul/Sub/Div/Add -> Unsqueeze -> Concat -> Resize sizes."""
    nodes = [_const("i0", 0), _const("i2", 2), _const("i3", 3), _const("two", 2),
             _const("one", 1), _const("ax", [0]),
             helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "i0"], ["n"]),
             helper.make_node("Gather", ["s", "i2"], ["h"]),
             helper.make_node("Gather", ["s", "i3"], ["w"]),
             helper.make_node("Mul", ["h", "two"], ["h2"]),
             helper.make_node("Sub", ["h2", "one"], ["h3"]),
             helper.make_node("Div", ["w", "two"], ["w2"]),
             helper.make_node("Add", ["w2", "one"], ["w3"]),
             helper.make_node("Cast", ["w3"], ["w4"], to=TensorProto.INT64),
             *[helper.make_node("Unsqueeze", [a, "ax"], [a + "u"]) for a in ("n", "h3", "w4")],
             helper.make_node("Concat", ["nu", "two_1", "h3u", "w4u"], ["sz"], axis=0),
             _const("two_1", [2]),
             helper.make_node("Resize", ["x", "", "", "sz"], ["o"], **_attrs(*form))]
    # Constant nodes first (topological order)
    nodes = [nd for nd in nodes if nd.op_type == "Constant"] + \
        [nd for nd in nodes if nd.op_type != "Constant"]
    _compare(_model(nodes), SIZES)


@pytest.mark.filterwarnings("ignore")
def test_axes_attribute_with_scales_over_dynamic_axes():
    sc = numpy_helper.from_array(np.asarray([1.5, 0.5], np.float32), "sc")
    node = helper.make_node("Resize", ["x", "", "sc"], ["o"], axes=[2, 3],
                            **_attrs("linear", "align_corners", None))
    _compare(_model([node], [sc], opset=18), SIZES)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("scales", [(2, 3), (1.5, 2)])
def test_resize10_nearest_upsampling_over_dynamic_axes(scales):
    sc = numpy_helper.from_array(np.asarray([1, 1, *scales], np.float32), "sc")
    model = _model([helper.make_node("Resize", ["x", "sc"], ["o"], mode="nearest")], [sc],
                   opset=10)
    _compare(model, SIZES)



@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("kw", [dict(scale_factor=1.5, mode="bilinear"),
                                dict(scale_factor=0.7, mode="bilinear", align_corners=True),
                                dict(scale_factor=(0.5, 2.5), mode="nearest"),
                                dict(scale_factor=1.3, mode="bicubic")], ids=_ids)
def test_own_export_with_recompute_scale_factor_reimports(kw, tmp_path):
    """Sizes as data: Shape -> Cast(double) -> Mul -> Floor -> Cast(int64) -> Resize."""
    m = Interp(recompute_scale_factor=True, **kw).eval()
    path = tmp_path / "r.onnx"
    tl.onnx.export(m, (tl.randn(1, 2, 8, 8),), str(path), input_names=["x"],
                   dynamic_axes={"x": {2: "H", 3: "W"}})
    assert "Floor" in {nd.op_type for nd in onnx.load(str(path)).graph.node}
    g = tl.onnx.load(str(path))
    rng = np.random.default_rng(0)
    for h, w in HW + [(10, 20)]:
        x = rng.standard_normal((1, 2, h, w)).astype(np.float32)
        with tl.no_grad():
            got = _np(g(x))
            eager = m(tl.tensor(x)).numpy()
        want = torch.nn.functional.interpolate(torch.tensor(x), recompute_scale_factor=True,
                                               **kw).numpy()
        assert got.shape == eager.shape == want.shape
        np.testing.assert_allclose(got, eager, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(got, _ort(path, x), rtol=RTOL, atol=ATOL)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("rnd", ["Floor", "Ceil"])
@pytest.mark.parametrize("form", FORMS[::2], ids=lambda f: "-".join(map(str, f)))
def test_sizes_from_float_shape_arithmetic_match_onnxruntime(form, rnd):
    """Shape -> Cast(float) -> Mul(float32 scales) -> Floor/Ceil -> Cast(int64) -> sizes."""
    sc = numpy_helper.from_array(np.asarray([1, 1, 1.5, 0.7], np.float32), "sc")
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Cast", ["s"], ["sf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["sf", "sc"], ["m"]),
             helper.make_node(rnd, ["m"], ["r"]),
             helper.make_node("Cast", ["r"], ["sz"], to=TensorProto.INT64),
             helper.make_node("Resize", ["x", "", "", "sz"], ["o"], **_attrs(*form))]
    _compare(_model(nodes, [sc]), SIZES + [(10, 20)])


# --- refusals ---------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore")
def test_sizes_from_data_the_importer_cannot_follow_are_refused():
    """Sizes gathered per element after the float arithmetic (Gather of a data tensor):
    refused, naming the computations the importer follows (input_shapes= would not help:
    the arithmetic stays data)."""
    sc = numpy_helper.from_array(np.asarray([1, 1, 1.5, 0.7], np.float32), "sc")
    nodes = [_const("i", [0, 1, 2, 3]),
             helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Cast", ["s"], ["sf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["sf", "sc"], ["m"]),
             helper.make_node("Gather", ["m", "i"], ["mg"]),
             helper.make_node("Floor", ["mg"], ["r"]),
             helper.make_node("Cast", ["r"], ["sz"], to=TensorProto.INT64),
             helper.make_node("Resize", ["x", "", "", "sz"], ["o"],
                              **_attrs("linear", "half_pixel", None))]
    model = _model(nodes, [sc])
    with pytest.raises(tl.onnx.UnsupportedOpError,
                       match=r"\(Resize\).*run time.*follows sizes computed from Shape"):
        tl.onnx.load(model)


@pytest.mark.filterwarnings("ignore")
def test_scales_computed_from_data_are_refused():
    model = _model([helper.make_node("Resize", ["x", "", "sc"], ["o"], mode="linear")],
                   extra_inputs=[helper.make_tensor_value_info("sc", TensorProto.FLOAT, [4])])
    with pytest.raises(tl.onnx.UnsupportedOpError,
                       match=r"\(Resize\).*scales computed at run time.*constant scales"):
        tl.onnx.load(model)


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("form", [("linear", "asymmetric", None),
                                  ("nearest", "asymmetric", "round_prefer_floor"),
                                  ("cubic", "half_pixel", -0.5)],
                         ids=lambda f: "-".join(map(str, f)))
def test_forms_without_a_run_time_op_are_refused_then_load_with_input_shapes(form):
    model = _scales_model(form, (1.5, 0.5))
    with pytest.raises(tl.onnx.UnsupportedOpError,
                       match=r"\(Resize\).*dynamic.*input_shapes=\{"):
        tl.onnx.load(model)
    g = tl.onnx.load(model, input_shapes={"x": (2, 2, 6, 8)})
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 8)).astype(np.float32)
    with tl.no_grad():
        np.testing.assert_allclose(_np(g(x)), _ort(model, x), rtol=RTOL, atol=ATOL)


@pytest.mark.filterwarnings("ignore")
def test_a_zero_fixed_size_is_refused():
    sz = numpy_helper.from_array(np.asarray([2, 2, 0, 3], np.int64), "sz")
    node = helper.make_node("Resize", ["x", "", "", "sz"], ["o"],
                            **_attrs("nearest", "asymmetric", "floor"))
    with pytest.raises(ValueError, match="Resize.*size 0"):
        tl.onnx.load(_model([node], [sz]))


@pytest.mark.filterwarnings("ignore")
def test_a_scale_that_empties_an_axis_is_refused_when_it_runs():
    g = tl.onnx.load(_scales_model(("linear", "align_corners", None), (0.5, 0.5)))
    with pytest.raises(ValueError, match="empty output from size 1"):
        g(np.zeros((1, 2, 1, 4), np.float32))


def test_static_shapes_keep_the_constant_resampling(tmp_path):
    """Sizes known at import still give constant tables (no run-time resize op)."""
    m = Interp(scale_factor=1.5, mode="bilinear", align_corners=True).eval()
    path = tmp_path / "r.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tl.onnx.export(m, (tl.randn(1, 2, 8, 8),), str(path), input_names=["x"],
                       dynamic_axes={"x": {2: "H", 3: "W"}})
    g = tl.onnx.load(str(path), input_shapes={"x": (1, 2, 8, 8)})
    ops = {nd.op.name if hasattr(nd.op, "name") else nd.op for nd in g.graph.nodes}
    assert not ops & {"resize", "resize_linear"}
    x = np.random.default_rng(0).standard_normal((1, 2, 8, 8)).astype(np.float32)
    with tl.no_grad():
        np.testing.assert_allclose(_np(g(x)), _ort(path, x), rtol=RTOL, atol=ATOL)


# --- PyTorch's own export (torch.onnx.export, TorchScript exporter) ---------------------------
class TorchInterp(torch.nn.Module):
    def __init__(self, **kw):
        super().__init__()
        self.kw = kw

    def forward(self, x):
        return torch.nn.functional.interpolate(x, **self.kw)


@pytest.mark.parametrize("kw", [dict(scale_factor=2, mode="bilinear", align_corners=True),
                                dict(scale_factor=1.5, mode="nearest"),
                                dict(size=(5, 7), mode="nearest"),
                                dict(scale_factor=0.5, mode="bicubic", align_corners=False)],
                         ids=_ids)
def test_pytorch_exports_with_dynamic_hw_import(kw, tmp_path):
    """The Resizes tl.onnx.load used to refuse over dynamic H/W (they needed the size)."""
    m = TorchInterp(**kw).eval()
    path = tmp_path / "r.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (torch.zeros(1, 2, 4, 6),), str(path), dynamo=False,
                          opset_version=17, input_names=["x"],
                          dynamic_axes={"x": {0: "N", 2: "H", 3: "W"}})
    g = tl.onnx.load(str(path))
    rng = np.random.default_rng(0)
    for n, (h, w) in zip((1, 2, 3), HW):
        x = rng.standard_normal((n, 2, h, w)).astype(np.float32)
        with torch.no_grad():
            want = m(torch.tensor(x)).numpy()
        with tl.no_grad():
            got = _np(g(x))
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(got, _ort(path, x), rtol=RTOL, atol=ATOL)
