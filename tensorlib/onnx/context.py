"""The export context the ONNX lowering rules write into (names, nodes, initializers)."""
from __future__ import annotations

import numpy as np

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


class UnsupportedOpError(ValueError):
    """An op (or a use of it) that has no ONNX lowering."""


class OpsetTooLowError(UnsupportedOpError):
    """An op whose ONNX form needs a newer opset than the export's: ``min_opset`` is the
    lowest that has it (``opset=None`` exports retry at it)."""

    def __init__(self, message: str, min_opset: int):
        super().__init__(message)
        self.min_opset = int(min_opset)


class ExportContext:
    """Collects the ONNX nodes and initializers of one export.

    Rules call :meth:`op` to add a node and get its output name(s), :meth:`const` for a
    constant tensor, and read static shapes/dtypes from the graph Values.
    """

    def __init__(self, opset: int):
        import onnx  # noqa: F401  (fail early with a clear ImportError)
        self.opset = opset
        self.nodes: list = []
        self.initializers: list = []
        self.names: dict[int, str] = {}
        self._n = 0
        self._consts: dict = {}
        self.node = None            # the graph node being lowered (for error messages)
        self.used: set[int] = set()  # ids of Values some exported node or output reads

    def fresh(self, hint: str = "t") -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def name(self, v) -> str:
        try:
            return self.names[v.id]
        except KeyError:
            raise UnsupportedOpError(
                f"ONNX export: value {v.label()} is used but its producer made no ONNX output "
                f"for it (op {v.node.op if v.node is not None else '?'})") from None

    def ins(self, n) -> list[str]:
        return [self.name(v) for v in n.inputs]

    def op(self, op_type: str, inputs, n_out: int = 1, **attrs):
        """Add one ONNX node; returns its output name (or a list when ``n_out > 1``)."""
        from onnx import helper
        outs = [self.fresh(op_type.lower()) for _ in range(n_out)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=self.fresh("n"),
                                           **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, value, dtype=None) -> str:
        """An initializer holding ``value`` (deduplicated for small constants)."""
        from onnx import numpy_helper
        a = np.asarray(value, dtype=dtype)
        key = None
        if a.size <= 16:
            key = (a.dtype.str, a.shape, a.tobytes())
            if key in self._consts:
                return self._consts[key]
        name = self.fresh("c")
        self.initializers.append(numpy_helper.from_array(a, name))
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values) -> str:
        return self.const(np.asarray(list(values), dtype=np.int64))

    def cast(self, name: str, src, dst) -> str:
        """Cast ``name`` from NumPy dtype ``src`` to ``dst`` (no node when equal)."""
        src, dst = np.dtype(src), np.dtype(dst)
        if src == dst:
            return name
        return self.op("Cast", [name], to=tensor_type(dst))

    def unsupported(self, why: str):
        op = self.node.op if self.node is not None else "?"
        raise UnsupportedOpError(f"ONNX export: op {op!r}: {why}")

    def need_opset(self, opset: int, what: str) -> None:
        """Raise :class:`OpsetTooLowError` when the export's opset is below ``opset``, the
        lowest with ``what``; an export with ``opset=None`` then retries at ``opset``."""
        if self.opset < opset:
            op = self.node.op if self.node is not None else "?"
            raise OpsetTooLowError(f"ONNX export: op {op!r}: {what} needs opset >= {opset} "
                                   f"(opset={self.opset}); pass opset={opset} or more, or "
                                   "opset=None to pick it", opset)

    # --- opset-dependent forms -------------------------------------------------------
    def reduce(self, kind: str, x: str, axes, keepdims: bool) -> str:
        """Reduce{kind} over ``axes`` (None: all); axes are an input from opset 18 (13 for
        ReduceSum), an attribute before."""
        k = int(bool(keepdims))
        if axes is None:
            return self.op(f"Reduce{kind}", [x], keepdims=k)
        axes = [int(a) for a in axes]
        if not axes:
            return self.op("Identity", [x])
        as_input = self.opset >= (13 if kind == "Sum" else 18)
        if as_input:
            return self.op(f"Reduce{kind}", [x, self.ints(axes)], keepdims=k)
        return self.op(f"Reduce{kind}", [x], keepdims=k, axes=axes)

    def squeeze(self, x: str, axes) -> str:
        axes = [int(a) for a in axes]
        if not axes:
            return self.op("Identity", [x])
        if self.opset >= 13:
            return self.op("Squeeze", [x, self.ints(axes)])
        return self.op("Squeeze", [x], axes=axes)

    def unsqueeze(self, x: str, axes) -> str:
        axes = [int(a) for a in axes]
        if not axes:
            return self.op("Identity", [x])
        if self.opset >= 13:
            return self.op("Unsqueeze", [x, self.ints(axes)])
        return self.op("Unsqueeze", [x], axes=axes)

    def slice(self, x: str, starts, ends, axes, steps=None) -> str:
        ins = [x, self.ints(starts), self.ints(ends), self.ints(axes)]
        if steps is not None:
            ins.append(self.ints(steps))
        return self.op("Slice", ins)


def tensor_type(dtype) -> int:
    from onnx import helper
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
