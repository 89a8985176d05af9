"""The deployment end of a training run: capture, export, reload elsewhere, compare.

:func:`export_and_verify` captures a trained model's inference graph (batch dim
dynamic), writes it as a tensorlib graph file and as ONNX, then starts a fresh Python
process that imports no model code (``python -m tensorlib.deploy DIR``), which loads
the native file with ``tl.load_graph`` and runs the ONNX file in onnxruntime. The
parent compares both against eager predictions and prints the result.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

NATIVE, ONNX, EXAMPLE = "model.tlg", "model.onnx", "example.npy"


def export(model, example, out_dir: str | os.PathLike) -> dict:
    """Capture ``model`` on ``example`` (eval mode) and write the native file and ONNX."""
    from . import TensorSpec, function, no_grad, save_graph
    from ._tensor import Tensor
    from .creation import tensor
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    x = example if isinstance(example, Tensor) else tensor(np.asarray(example))
    x = x.to("cpu")
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad():
            eager = model(x).numpy()
        fn = function(lambda t: model(t),
                      input_signature=[TensorSpec((None,) + tuple(x.shape[1:]), x.dtype)])
        g = fn.get_graph(x)
    finally:
        if was_training:
            model.train()
    save_graph(g, out / NATIVE)
    paths = {"native": str(out / NATIVE), "example": str(out / EXAMPLE)}
    np.save(out / EXAMPLE, x.numpy())
    try:
        from .onnx import export_graph
        export_graph(g, out / ONNX, input_names=["x"], output_names=["logits"],
                     dim_names={(0, 0): "batch"})
        paths["onnx"] = str(out / ONNX)
    except ImportError:
        pass
    return {"eager": eager, "paths": paths}


def reload_in_fresh_process(out_dir: str | os.PathLike, timeout: float = 300) -> dict:
    """Run ``python -m tensorlib.deploy DIR`` and read back its predictions."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-m", "tensorlib.deploy", str(out_dir)],
                       capture_output=True, text=True, timeout=timeout, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"the fresh process failed:\n{r.stderr[-2000:]}")
    info = json.loads(r.stdout.strip().splitlines()[-1])
    res = {k: np.load(v) for k, v in info["outputs"].items()}
    res["model_modules"] = info["model_modules"]
    return res


def export_and_verify(model, example, out_dir: str | os.PathLike, atol: float = 1e-4,
                      verbose: bool = True) -> dict:
    """Export ``model`` (native + ONNX), reload both in a fresh process, and compare with
    eager predictions. Returns ``{"ok", "native_max_diff", "onnx_max_diff", ...}``."""
    ex = export(model, example, out_dir)
    eager = ex["eager"]
    got = reload_in_fresh_process(out_dir)
    report: dict = {"paths": ex["paths"], "ok": True}
    for kind in ("native", "onnxruntime"):
        if kind not in got:
            report[f"{kind}_max_diff"] = None
            continue
        d = float(np.max(np.abs(got[kind] - eager))) if eager.size else 0.0
        same = bool(np.array_equal(got[kind].argmax(-1), eager.argmax(-1)))
        report[f"{kind}_max_diff"] = d
        report[f"{kind}_same_predictions"] = same
        report["ok"] &= d <= atol and same
    if verbose:
        n = len(eager)
        for kind, label in (("native", "tensorlib graph file"), ("onnxruntime", "ONNX")):
            if report.get(f"{kind}_max_diff") is None:
                print(f"deploy: {label}: skipped (onnx/onnxruntime not installed)", flush=True)
                continue
            print(f"deploy: eager vs {label} in a fresh process: max |diff| "
                  f"{report[f'{kind}_max_diff']:.2e}, predictions on {n} digits "
                  f"{'agree' if report[f'{kind}_same_predictions'] else 'DIFFER'}", flush=True)
        print(f"deploy: wrote {', '.join(report['paths'].values())}; eager, native and "
              f"onnxruntime {'agree' if report['ok'] else 'DISAGREE'}", flush=True)
    return report


def _child(out_dir: str) -> int:
    """In the fresh process: load and run both files; print where the outputs are."""
    import tensorlib as tl
    out = Path(out_dir)
    x = np.load(out / EXAMPLE, allow_pickle=False)
    outputs = {}
    g = tl.load_graph(out / NATIVE)
    with tl.no_grad():
        np.save(out / "pred_native.npy", g(x).numpy())
    outputs["native"] = str(out / "pred_native.npy")
    if (out / ONNX).exists():
        try:
            import onnxruntime as ort
        except ImportError:
            ort = None
        if ort is not None:
            sess = ort.InferenceSession(str(out / ONNX), providers=["CPUExecutionProvider"])
            np.save(out / "pred_onnx.npy", sess.run(None, {"x": x})[0])
            outputs["onnxruntime"] = str(out / "pred_onnx.npy")
    mods = sorted(m for m in sys.modules if m.startswith(("tensorlib.demo", "__main__"))
                  and m != "__main__")
    print(json.dumps({"outputs": outputs, "model_modules": mods}))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m tensorlib.deploy DIR", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(_child(sys.argv[1]))
