"""The ``tensorlib`` command: inspect and run graph files (native ``.tlg`` and ONNX).

    tensorlib inspect FILE
    tensorlib run FILE --input NAME=x.npy [--input ...] --output out.npy [--runtime ort]

Also ``python -m tensorlib.cli``. Arrays are read with ``allow_pickle=False``.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

import numpy as np


_FORMATS = {"native": "tensorlib graph file (.tlg)", "onnx": "ONNX model",
            "checkpoint": "tensorlib checkpoint (safetensors, written by tl.save)"}


def _safetensors_header(path: str) -> dict | None:
    """The JSON header of a safetensors file (what ``tl.save`` writes), or None when the
    file does not start like one. Only the header is read, however large the file."""
    import json
    import struct
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(9)
        if len(head) < 9 or head[8:9] != b"{":
            return None
        (n,) = struct.unpack("<Q", head[:8])
        if n > min(size - 8, 100 << 20):
            return None
        text = head[8:] + f.read(n - 1)
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return header if isinstance(header, dict) else None


def _kind(path: str) -> str:
    """The file's format: by its extension (``.tlg`` native, ``.onnx`` ONNX), by its content
    for other names (a zip archive is a native file). An empty or broken file is reported
    as a bad file of that format."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".tlg":
        kind = "native"
    elif ext == ".onnx":
        kind = "onnx"
    else:
        with open(path, "rb") as f:
            head = f.read(4)
        kind = ("native" if head.startswith(b"PK") else
                "checkpoint" if _safetensors_header(path) is not None else "onnx")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path} is empty, not a valid {_FORMATS[kind]}")
    if kind == "native":
        import zipfile
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path} is not a valid {_FORMATS[kind]}: it is not a zip "
                             "archive (a .tlg file is written by tl.save_graph)")
    return kind


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _shape(dims) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def inspect_file(path: str) -> str:
    """A readable summary: format, signature, ops, parameters (count and sizes), opset."""
    lines = []
    kind = _kind(path)
    if kind == "checkpoint":
        return _inspect_checkpoint(path)
    if kind == "native":
        from .export import read_archive
        doc, _ = read_archive(path)
        g = doc["graph"]
        sig = doc.get("signature", {})
        lines.append(f"{path}: tensorlib graph file, format version {doc['version']} "
                     f"(written by tensorlib {doc.get('tensorlib_version', '?')})")
        params = [(o["name"], o["shape"], o["dtype"]) for o in doc.get("owners", [])]
        ops = Counter(n["op"] for n in g["nodes"])
        devices = sorted({n["device"] for n in g["nodes"]})
        ins = [(s["name"], s["shape"], s["dtype"]) for s in sig.get("inputs", [])]
        outs = [(s["name"], s["shape"], s["dtype"]) for s in sig.get("outputs", [])]
        extra = [f"devices: {', '.join(devices)}",
                 f"training step: {'yes' if ops.get('assign') else 'no'}"]
        opset = None
    else:
        import onnx
        from onnx import helper
        m = _load_onnx(onnx, path)
        inits = {t.name: t for t in m.graph.initializer}
        opset = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in m.opset_import)
        lines.append(f"{path}: ONNX model, IR version {m.ir_version}, producer "
                     f"{m.producer_name or '?'} {m.producer_version}".rstrip())

        def spec(v):
            tt = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                    for d in tt.shape.dim] if tt.HasField("shape") else []
            return (v.name, dims, np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type)).name
                    if tt.elem_type else "?")
        ins = [spec(v) for v in m.graph.input if v.name not in inits]
        outs = [spec(v) for v in m.graph.output]
        params = [(t.name, list(t.dims),
                   np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).name)
                  for t in m.graph.initializer]
        ops = Counter(n.op_type for n in m.graph.node)
        extra = []
    lines.append("inputs:")
    lines += [f"  {n}: {dt}{_shape(s)}" for n, s, dt in ins]
    lines.append("outputs:")
    lines += [f"  {n}: {dt}{_shape(s)}" for n, s, dt in outs]
    if opset:
        lines.append(f"opset: {opset}")
    lines += extra
    total = sum(int(np.prod(s, dtype=np.int64)) for _, s, _ in params)
    nbytes = sum(int(np.prod(s, dtype=np.int64)) * np.dtype(dt).itemsize for _, s, dt in params)
    lines.append(f"parameters: {len(params)} tensors, {total:,} values, {_fmt_bytes(nbytes)}")
    for name, s, dt in params[:50]:
        lines.append(f"  {name}: {dt}{_shape(s)}")
    if len(params) > 50:
        lines.append(f"  ... {len(params) - 50} more")
    lines.append(f"ops ({sum(ops.values())} nodes):")
    lines += [f"  {op}: {k}" for op, k in sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))]
    return "\n".join(lines)


def _inspect_checkpoint(path: str) -> str:
    """A checkpoint's tensors (name, dtype, shape) from its header, without loading them."""
    header = _safetensors_header(path) or {}
    meta = header.pop("__metadata__", None)
    meta = meta if isinstance(meta, dict) else {}
    nested = "tensorlib.structure" in meta
    what = ("tensorlib checkpoint" if meta.get("format") == "tensorlib" or nested
            else "safetensors checkpoint")
    how = ", which rebuilds its nested structure" if nested else ""
    lines = [f"{path}: {what} (safetensors; read it with tl.load(path){how})"]
    from .io import _DTYPES
    tensors = [(k, v.get("shape", []), np.dtype(_DTYPES[v.get("dtype")]).name
                if v.get("dtype") in _DTYPES else "?") for k, v in header.items()
               if isinstance(v, dict)]
    extra = sorted(k for k in meta if k not in ("format", "tensorlib.structure"))
    if extra:
        lines.append(f"metadata: {', '.join(extra[:20])}")
    total = sum(int(np.prod(s, dtype=np.int64)) for _, s, _ in tensors)
    lines.append(f"tensors: {len(tensors)}, {total:,} values")
    lines += [f"  {n}: {dt}{_shape(s)}" for n, s, dt in tensors[:50]]
    if len(tensors) > 50:
        lines.append(f"  ... {len(tensors) - 50} more")
    return "\n".join(lines)


def _load_onnx(onnx, path: str):
    """onnx.load with a user's mistakes (an empty or non-ONNX file) as ValueError."""
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path} is empty, not a valid {_FORMATS['onnx']}")
    try:
        m = onnx.load(path)
    except Exception as e:      # protobuf's DecodeError and friends
        raise ValueError(f"{path} is not an {_FORMATS['onnx']} ({type(e).__name__}: {e})") \
            from None
    if not m.graph.node and not m.graph.output:   # bytes protobuf happens to accept
        raise ValueError(f"{path} is not an {_FORMATS['onnx']}: it holds no graph")
    return m


def _inputs(specs: list[str]) -> dict[str, np.ndarray]:
    out = {}
    for s in specs:
        if "=" not in s:
            raise SystemExit(f"tensorlib run: --input must be NAME=FILE.npy, got {s!r}")
        name, f = s.split("=", 1)
        out[name] = np.load(f, allow_pickle=False)
    return out


def run_file(path: str, inputs: dict[str, np.ndarray], runtime: str = "tensorlib") -> dict:
    """Run a native or ONNX file on named inputs; returns {output name: array}."""
    kind = _kind(path)
    if kind == "checkpoint":
        raise ValueError(f"{path} is a {_FORMATS[kind]}, not a model graph: it holds weights "
                         "only (save a runnable graph with tl.save_graph or tl.onnx.export)")
    if kind == "native" and runtime in ("ort", "onnxruntime"):
        raise ValueError(f"--runtime {runtime} runs ONNX models, and {path} is a "
                         f"{_FORMATS[kind]}: run it with --runtime tensorlib, or export it to "
                         "ONNX first (tl.load_graph(path).to_onnx('model.onnx'))")
    if kind == "onnx" and runtime in ("ort", "onnxruntime"):
        import onnxruntime as ort
        try:
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            names = [o.name for o in sess.get_outputs()]
            return dict(zip(names, sess.run(None, inputs)))
        except Exception as e:  # onnxruntime's own error types (bad model, bad input)
            raise ValueError(f"onnxruntime: {str(e).strip()}") from None
    from . import no_grad
    if kind == "native":
        from .export import load_graph
        g = load_graph(path)
    else:
        import onnx

        from .onnx import load
        g = load(_load_onnx(onnx, path))    # an empty or broken file, named as such
        g.source = path
    names = g.input_names
    given: dict[int, str] = {}
    unknown = []
    for n in inputs:
        try:        # argK names input K too (what older graph files called it)
            given.setdefault(g.input_index(n), n)
        except TypeError:
            unknown.append(n)
    missing = [n for i, n in enumerate(names) if i not in given]
    if missing or unknown:
        raise SystemExit(f"tensorlib run: inputs {names} expected; missing {missing}, "
                         f"unknown {unknown}")
    for n, a in inputs.items():
        v = g.graph.inputs[g.input_index(n)]
        if a.dtype != v.dtype:
            # the library casts within a kind (float64 -> float32) for callers that asked
            # for it; a file on the command line is data whose precision would silently drop
            raise ValueError(f"input {n!r} expects {v.dtype}, got {a.dtype} (from the .npy "
                             f"file); save it as {v.dtype} (np.save(f, a.astype('{v.dtype}')))")
    with no_grad():
        res = g(**inputs)
    sig = g.signature
    if "tree" in sig:       # nested outputs: named by their path, as out["a"][0] -> a.0
        return _flat_outputs(res)
    if isinstance(res, dict):       # a function that returned {name: tensor}
        return {n: np.asarray(r.numpy()) for n, r in res.items()}
    res = res if isinstance(res, (tuple, list)) else (res,)
    out_names = [s["name"] for s in sig["outputs"]]
    return {n: np.asarray(r.numpy()) for n, r in zip(out_names, res)}


def _flat_outputs(res) -> dict:
    """The tensors of a nested output by dotted path (Python values and None are left out:
    a .npz holds arrays)."""
    from ._tensor import Tensor
    out = {}
    stack = [("", res)]
    while stack:
        path, r = stack.pop()
        if isinstance(r, Tensor):
            out[path or "output0"] = np.asarray(r.numpy())
        elif isinstance(r, dict):
            stack += [(f"{path}.{k}" if path else str(k), v) for k, v in r.items()]
        elif isinstance(r, (list, tuple)):
            stack += [(f"{path}.{i}" if path else str(i), v) for i, v in enumerate(r)]
    return dict(sorted(out.items()))


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tensorlib", description="Inspect and run tensorlib graph "
                                "files (.tlg) and ONNX models; show the configuration.")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("config", help="versions, CPU kernels, threads, BLAS and GPUs "
                                  "(tl.show_config)")
    pi = sub.add_parser("inspect", help="signature, ops, parameters and opset of a file")
    pi.add_argument("file")
    pr = sub.add_parser("run", help="run a file on .npy inputs")
    pr.add_argument("file")
    pr.add_argument("--input", "-i", action="append", default=[], metavar="NAME=FILE.npy")
    pr.add_argument("--output", "-o", required=True,
                    help="a .npy file (one output) or .npz (all outputs by name)")
    pr.add_argument("--runtime", default="tensorlib", choices=["tensorlib", "ort",
                                                               "onnxruntime"],
                    help="for ONNX files: run in tensorlib (import) or onnxruntime; "
                         ".tlg files run in tensorlib only")
    args = p.parse_args(argv)
    if args.cmd == "config":
        from ._config import show_config
        show_config()
        return 0
    if not os.path.exists(args.file):
        print(f"tensorlib: no such file {args.file!r}", file=sys.stderr)
        return 2
    if args.cmd == "run" and not args.output.endswith((".npy", ".npz")):
        print(f"tensorlib run: --output must end in .npy (one output) or .npz (all outputs), "
              f"got {args.output!r}", file=sys.stderr)
        return 2
    try:
        if args.cmd == "inspect":
            print(inspect_file(args.file))
            return 0
        outs = run_file(args.file, _inputs(args.input), args.runtime)
    except (ValueError, TypeError, NotImplementedError, OSError) as e:
        print(f"tensorlib {args.cmd}: {_one_line(e)}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"tensorlib {args.cmd}: out of memory running {args.file!r} (a tensor larger "
              "than this machine's memory)", file=sys.stderr)
        return 1
    if not args.output.endswith(".npz") and len(outs) != 1:
        print(f"tensorlib run: the graph has {len(outs)} outputs {list(outs)}; write them "
              "to a .npz file", file=sys.stderr)
        return 1
    try:
        if args.output.endswith(".npz"):
            np.savez(args.output, **outs)
        else:
            np.save(args.output, next(iter(outs.values())))
    except OSError as e:
        print(f"tensorlib run: cannot write {args.output!r}: {e.strerror or e}", file=sys.stderr)
        return 1
    for name, a in outs.items():
        print(f"{name}: {a.dtype}{list(a.shape)}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
