"""Checkpoints: ``tl.save(obj, path)`` / ``tl.load(path)`` in the safetensors format.

A safetensors file is an 8-byte little-endian header length N, N bytes of JSON
(``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}``)
and then the raw little-endian tensor bytes, packed without gaps. Any safetensors
reader opens the files written here: a flat ``{name: tensor}`` dict is stored under
its own names. Nested dicts, lists, tuples, numbers, strings and None are kept in
the metadata as JSON (key ``"tensorlib.structure"``) that refers to tensors by name.

Loading never runs code from the file (no pickle): a checkpoint from a stranger is
data only. Writes are atomic: the bytes go to a temporary file in the same folder,
are flushed to disk (fsync), and the temporary file is renamed over the target, so
a crash mid-save leaves the previous checkpoint intact.
"""
from __future__ import annotations

import json
import math
import os
import struct
import tempfile
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from ._tensor import Tensor, _internal

__all__ = ["CheckpointError", "load", "save"]

# (U16/U32/U64: NumPy arrays in a checkpoint, e.g. np.random.get_state()'s key; tensors have
# no such dtypes)
_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I8": np.int8,
           "I16": np.int16, "I32": np.int32, "I64": np.int64, "U8": np.uint8, "BOOL": np.bool_,
           "U16": np.uint16, "U32": np.uint32, "U64": np.uint64,
           # safetensors' name for complex64 (interleaved real, imaginary float32 pairs); C128
           # follows it for complex128
           "C64": np.complex64, "C128": np.complex128}
_CODES = {np.dtype(v): k for k, v in _DTYPES.items()}
_STRUCT_KEY = "tensorlib.structure"
_FORMAT_KEY = "format"
_MAX_HEADER = 100 * 1024 * 1024  # the limit the safetensors reference reader applies


# NumPy's limit on dimensions (64 since NumPy 2, 32 before)
_MAX_NDIM = 64 if int(np.__version__.split(".")[0]) >= 2 else 32


class CheckpointError(ValueError):
    """A file is not a valid checkpoint (corrupt, truncated, or not safetensors)."""


# --- save --------------------------------------------------------------------------------
def save(obj: Any, path, metadata: Mapping[str, str] | None = None) -> None:
    """Write ``obj`` to ``path`` atomically in safetensors format (or into a binary file
    object such as ``io.BytesIO``, which gets the bytes as they are).

    ``obj`` is a Tensor, NumPy array, or a (nested) dict/list/tuple of those, numbers,
    strings, bools and None; dict keys are strings, ints, floats, bools or None.
    ``metadata`` adds free-form string pairs to the header.

    A tensor of a user Tensor subclass is saved as a plain tensor, with a warning: unlike
    ``torch.save``, which pickles the class, the checkpoint holds no class or attributes, so
    ``load`` gives a plain ``Tensor`` (re-make it with ``t.as_subclass(cls)``).

    >>> tl.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": 3}, "ck.st")
    """
    fileobj = path if hasattr(path, "write") else None
    path = "<file object>" if fileobj is not None else os.fspath(path)
    tensors: dict[str, np.ndarray] = {}
    flat = _flat_tensor_dict(obj)
    if flat is not None:
        for k, v in flat.items():
            tensors[k] = _host(v)
        structure = None
    else:
        structure = _encode(obj, "", tensors, set())
    meta = {_FORMAT_KEY: "pt" if structure is None else "tensorlib"}
    if structure is not None:
        try:
            meta[_STRUCT_KEY] = json.dumps(structure, separators=(",", ":"), allow_nan=False)
        except RecursionError:
            raise ValueError("save: the object is nested too deeply for the checkpoint's JSON "
                             "structure (lists nest to about 900 levels, dicts and tuples "
                             "to about a third of that): flatten it") from None
    _warn_subclasses(obj if flat is None else flat)
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError("save: metadata must map strings to strings, got "
                                f"{k!r}: {type(v).__name__}")
            if k in (_STRUCT_KEY,):
                raise ValueError(f"save: metadata key {k!r} is reserved")
            meta[k] = v
    if fileobj is not None:
        _write_chunks(fileobj, _serialize(tensors, meta))
        return
    _atomic_write(path, _serialize(tensors, meta))


def _warn_subclasses(obj) -> None:
    """One warning naming the user Tensor subclasses in ``obj`` (saved as plain tensors)."""
    found: set = set()
    stack, seen = [obj], set()
    while stack:
        o = stack.pop()
        if isinstance(o, Tensor):
            tp = type(o)
            if tp is not Tensor and not _internal(tp):
                found.add(tp.__qualname__)
        elif isinstance(o, (list, tuple, Mapping)) and id(o) not in seen:
            seen.add(id(o))     # (_encode reports a container that holds itself)
            stack.extend(o.values() if isinstance(o, Mapping) else o)
    if found:
        warnings.warn(f"save: tensors of Tensor subclass(es) {', '.join(sorted(found))} are "
                      "saved as plain tensors: the subclass and its attributes are not saved, "
                      "and load gives plain Tensors (re-make them with .as_subclass(cls))",
                      UserWarning, stacklevel=3)


def _flat_tensor_dict(obj) -> dict | None:
    """``obj`` when it is a plain {str: tensor} dict (a state_dict), else None."""
    if isinstance(obj, Mapping) and obj and all(
            isinstance(k, str) and k != "__metadata__" and isinstance(v, (Tensor, np.ndarray))
            for k, v in obj.items()):
        # (a sparse tensor is two arrays and a size: stored through the structure)
        if all(isinstance(v, Tensor) and not v.is_sparse for v in obj.values()):
            return dict(obj)
    return None


def _host(t) -> np.ndarray:
    a = t._host() if isinstance(t, Tensor) else np.asarray(t)
    if a.dtype not in _CODES:
        raise TypeError(f"save: dtype {a.dtype} cannot be stored; supported: "
                        + ", ".join(str(np.dtype(d)) for d in _DTYPES.values()))
    return a


# the JSON nesting a checkpoint's structure may reach: json.loads must read it back in a
# fresh process at the default recursion limit (a list adds one level, a tuple two, a dict
# three); deeper is a container that holds itself, or beyond what any process can load
_MAX_DEPTH = 800


def _scalar(obj):
    """A number, string, bool or None as JSON; NumPy scalars keep their dtype
    (``{"$scalar": [code, value]}``); non-finite floats are ``{"$float": "nan"}``."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.generic) and not isinstance(obj, np.ndarray):
        code = _CODES.get(obj.dtype)
        if code is None:
            raise TypeError(f"save: a NumPy {obj.dtype} scalar cannot be stored; supported: "
                            + ", ".join(str(np.dtype(d)) for d in _DTYPES.values()))
        return {"$scalar": [code, _scalar(obj.item())]}
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        f = float(obj)
        return f if math.isfinite(f) else {"$float": repr(f)}
    if isinstance(obj, complex):        # {"$complex": [real, imag]}, parts as floats
        return {"$complex": [_scalar(obj.real), _scalar(obj.imag)]}
    return _NOT_SCALAR


_NOT_SCALAR = object()


def _encode(obj, path: str, tensors: dict, used: set):
    """JSON-able structure with tensors replaced by ``{"$tensor": name}``."""
    root: list = [None]
    # iterative (depth-first, in order, so tensor names are as a recursive walk gives
    # them): deeply nested lists must not hit Python's recursion limit
    stack = [(obj, path, root, 0, 0)]
    while stack:
        obj, path, dst, i, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise ValueError(f"save: the object is nested too deeply for the checkpoint's JSON "
                             f"structure at {path[:200] or '<root>'!r} (lists nest to "
                             f"{_MAX_DEPTH} levels, tuples to half and dicts to a third of "
                             f"that; does a list or dict contain itself?)")
        if isinstance(obj, (Tensor, np.ndarray)):
            if isinstance(obj, Tensor) and obj.is_sparse:
                # {"$sparse_coo": [indices' name, values' name, size, coalesced]}
                d = obj._data
                names = [_fresh(f"{path or 'tensor'}.{part}", used) for part in
                         ("indices", "values")]
                tensors[names[0]] = _host(np.ascontiguousarray(d.indices, np.int64))
                tensors[names[1]] = _host(d.values)
                dst[i] = {"$sparse_coo": names + [list(d.shape), bool(d.coalesced)]}
                continue
            name = _fresh(path or "tensor", used)
            tensors[name] = _host(obj)
            dst[i] = {"$ndarray" if isinstance(obj, np.ndarray) else "$tensor": name}
            continue
        enc = _scalar(obj)
        if enc is not _NOT_SCALAR:
            dst[i] = enc
        elif isinstance(obj, (list, tuple)):
            items: list = [None] * len(obj)
            dst[i] = items if isinstance(obj, list) else {"$tuple": items}
            step = 1 if isinstance(obj, list) else 2        # {"$tuple": [...]}
            stack += [(v, f"{path}.{j}" if path else str(j), items, j, depth + step)
                      for j, v in reversed(list(enumerate(obj)))]
        elif isinstance(obj, Mapping):
            pairs = []
            todo = []
            for k, v in obj.items():
                if not (k is None or isinstance(k, (str, int, float, bool, np.bool_,
                                                        np.integer, np.floating))):
                    raise TypeError(f"save: dict keys must be str, int, float, bool or None, "
                                    f"got {type(k).__name__} at {path or '<root>'!r}")
                pair = [_scalar(k), None]
                pairs.append(pair)
                # {"$dict": [[key, value], ...]}: three JSON levels
                todo.append((v, f"{path}.{k}" if path else str(k), pair, 1, depth + 3))
            dst[i] = {"$dict": pairs}
            stack += reversed(todo)
        else:
            raise TypeError(f"save: cannot store a {type(obj).__name__} at "
                            f"{path or '<root>'!r}; checkpoints hold tensors, arrays, numbers, "
                            "strings, None and dicts/lists/tuples of them (no pickle)")
    return root[0]


def _fresh(name: str, used: set) -> str:
    """``name``, or ``name#k`` when taken (tensor names are unique in a file)."""
    base, k = name, 1
    while name in used or name == "__metadata__":
        name = f"{base}#{k}"
        k += 1
    used.add(name)
    return name


def _serialize(tensors: dict[str, np.ndarray], meta: dict[str, str]) -> list:
    header: dict[str, Any] = {"__metadata__": meta}
    header.update({name: None for name in tensors})  # keep the caller's key order
    chunks = []
    offset = 0
    # the largest alignment first keeps every tensor naturally aligned in the file
    order = sorted(tensors, key=lambda k: -tensors[k].dtype.itemsize)
    for name in order:
        a = tensors[name]
        n = a.nbytes
        header[name] = {"dtype": _CODES[a.dtype], "shape": list(a.shape),
                        "data_offsets": [offset, offset + n]}
        offset += n
        le = a.astype(a.dtype.newbyteorder("<"), copy=False)
        chunks.append(np.ascontiguousarray(le))
    hb = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hb += b" " * (-len(hb) % 8)  # pad so the data starts 8-byte aligned, as safetensors does
    return [struct.pack("<Q", len(hb)), hb] + chunks


def _umask() -> int:
    try:   # Linux: read it without changing it (os.umask both sets and returns)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync(fd: int) -> None:
    os.fsync(fd)


def _write_chunks(f, chunks: list) -> None:
    for c in chunks:
        f.write(c.reshape(-1).view(np.uint8).data if isinstance(c, np.ndarray) else c)


def _atomic_write(path: str, chunks: list) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save: folder {folder!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_chunks(f, chunks)
            f.flush()
            _fsync(f.fileno())
        # mkstemp makes the file owner-only; a saved model should get the permissions of
        # any file the user writes (a server running as another user reads it)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        _fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# --- load --------------------------------------------------------------------------------
def load(path, device=None, *, map_location=None, weights_only: bool | None = None,
         mmap: bool | None = None) -> Any:
    """Read a checkpoint written by ``save`` (or any safetensors file) from a path or a
    binary file object.

    Returns what was saved: tensors come back as Tensors (on ``device`` if given), NumPy
    arrays as arrays. A plain safetensors file gives a ``{name: Tensor}`` dict.
    ``map_location`` is PyTorch's name for ``device``: a device or its name, a mapping from
    the saved location to a device (tensors are saved from host memory: ``"cpu"`` is the
    key read), or a function ``f(tensor, "cpu")`` returning each tensor where it should
    be (PyTorch's ``lambda storage, loc: storage`` keeps them on the CPU). The format holds
    data only, so ``weights_only`` is accepted and changes nothing.
    ``mmap=True`` (a path only, as PyTorch's) maps the file instead of reading it: the CPU
    tensors are views of the mapping, so pages are read when first touched, and writes to
    them are copy-on-write (private to this process, never written to the file), as
    PyTorch's default ``MAP_PRIVATE``. Tensors moved to another device are copies.
    Raises ``CheckpointError`` for corrupt or truncated files.
    """
    if map_location is not None:
        if device is not None:
            raise TypeError("load: got both device= and map_location=; pass one")
        if isinstance(map_location, Mapping):
            device = map_location.get("cpu")
        elif not callable(map_location):
            device = map_location
    if hasattr(path, "read"):
        if mmap:
            raise TypeError("load: mmap=True needs a file path (a file object cannot be "
                            "mapped); pass the path, or mmap=False")
        data, path = _read_one(path), "<file object>"
    else:
        path = os.fspath(path)
        data = _map(path) if mmap else None
        if data is None:
            with open(path, "rb") as f:
                # into a writable buffer the tensors then view: no second copy per tensor
                # (np.empty: a bytearray would first zero-fill every page)
                data = np.empty(os.fstat(f.fileno()).st_size, np.uint8)
                got = f.readinto(data)
                if got != data.size:        # the file changed size while being read
                    data = data[:got]
    tensors, meta = _parse(data, path)
    from .creation import from_numpy
    dev = device

    move = map_location if callable(map_location) and not isinstance(map_location, Mapping) \
        else None

    def wrap(a: np.ndarray, as_array: bool):
        if as_array:
            return a
        t = from_numpy(a)
        if move is not None:
            t = move(t, "cpu")
            if not isinstance(t, Tensor):
                raise TypeError(f"load: map_location returned {type(t).__name__}, not a "
                                "Tensor")
            return t
        return t.to(dev) if dev is not None else t

    structure = meta.get(_STRUCT_KEY)
    if structure is None:
        return {k: wrap(v, False) for k, v in tensors.items()}
    try:
        tree = json.loads(structure)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"load: {path!r}: the tensorlib structure in the metadata is "
                              f"not valid JSON ({e})") from None
    except RecursionError:
        raise _bad(path, "the tensorlib structure in the metadata is nested too deeply") \
            from None
    return _decode(tree, tensors, wrap, path)


def _map(path: str):
    """The file mapped copy-on-write (``np.memmap`` mode 'c'), as bytes; None for an empty
    file (which cannot be mapped; :func:`_parse` names what is wrong with it)."""
    if os.path.getsize(path) == 0:
        return None
    return np.memmap(path, dtype=np.uint8, mode="c")


def _bad(path: str, why: str) -> CheckpointError:
    return CheckpointError(f"load: {path!r} is not a valid checkpoint: {why}")


def _foreign(data: bytes, path: str) -> CheckpointError | None:
    """A file in another library's format (PyTorch's ``torch.save``, NumPy's), recognised by
    its first bytes: the error says how to load it, instead of reading its first 8 bytes as
    a safetensors header length. Nothing is unpickled."""
    head = bytes(data[:8])
    if head[:4] == b"PK\x03\x04":        # a zip archive: torch.save (since 1.6) or np.savez
        import io
        import zipfile
        try:
            members = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except (zipfile.BadZipFile, ValueError, OSError):
            members = []
        if members and all(m.endswith(".npy") for m in members):
            return CheckpointError(
                f"load: {path!r} is a NumPy .npz archive, not a safetensors checkpoint: read "
                "it with np.load(path) and wrap the arrays with tl.from_numpy")
        if "graph.json" in members and "weights.safetensors" in members:
            return CheckpointError(
                f"load: {path!r} is a graph file written by tl.save_graph, not a checkpoint: "
                "load it with tl.load_graph(path)")
        if members and not any(m == "data.pkl" or m.endswith("/data.pkl") for m in members):
            return CheckpointError(
                f"load: {path!r} is a zip archive, not a safetensors checkpoint (tl.save "
                "writes safetensors)")
        return CheckpointError(_TORCH_HELP.format(
            path=path, what="a PyTorch file (torch.save's zip format)"))
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:     # a pickle's PROTO op
        if bytes(data[2:14]) == _TORCH_LEGACY:
            return CheckpointError(_TORCH_HELP.format(
                path=path, what="a PyTorch file (torch.save's legacy pickle format)"))
        return CheckpointError(_TORCH_HELP.format(
            path=path, what="a Python pickle (as torch.save's legacy format and pickle.dump "
                            "write)"))
    if head[:6] == b"\x93NUMPY":
        return CheckpointError(
            f"load: {path!r} is a NumPy .npy file, not a safetensors checkpoint: read it with "
            "np.load(path) and wrap the array with tl.from_numpy")
    return None


# torch.save's legacy format opens with a pickled magic number: LONG1, 10 bytes
_TORCH_LEGACY = b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_TORCH_HELP = (
    "load: {path!r} is {what}, not a safetensors checkpoint; tensorlib never unpickles files "
    "(unpickling can run code). Load it with PyTorch and pass the state_dict to "
    "load_state_dict: model.load_state_dict(torch.load({path!r}, map_location='cpu')) "
    "(tensorlib's modules take PyTorch's parameter names and tensors). To keep a file "
    "tl.load reads, convert it once: safetensors.torch.save_file(state_dict, "
    "'model.safetensors').")


def _read_one(f) -> bytes:
    """One checkpoint's bytes from file object ``f``, leaving it just past them (so several
    saved one after another read back one by one); what is not a checkpoint is read to the
    end, for :func:`_parse` to name."""
    head = f.read(8)
    if len(head) < 8:
        return head
    (n,) = struct.unpack("<Q", head)
    if n > _MAX_HEADER:
        return head + f.read()
    text = f.read(n)
    try:
        header = json.loads(text.decode("utf-8"))
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, TypeError,
            ValueError, IndexError, RecursionError):
        return head + text + f.read()
    return head + text + f.read(max(ends, default=0))


def _parse(data, path: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors and metadata of a checkpoint's bytes (bytes, a bytearray or a memmap).
    The arrays view ``data`` where it is writable, aligned and in native byte order, and
    are copies otherwise."""
    data = memoryview(data).cast("B")
    size = len(data)
    n = struct.unpack("<Q", data[:8])[0] if size >= 8 else 0
    if size < 8 or n > _MAX_HEADER or 8 + n > size or bytes(data[8:9]) != b"{":
        foreign = _foreign(data, path)      # not a safetensors header: another format?
        if foreign is not None:
            raise foreign
    if size < 8:
        raise _bad(path, f"the file has {size} bytes, fewer than the 8-byte header length "
                         "(empty or truncated file?)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER:
        raise _bad(path, f"header length {n} is implausibly large (not a safetensors file?)")
    if 8 + n > size:
        raise _bad(path, f"header length {n} runs past the end of the {size}-byte file "
                         "(truncated file?)")
    try:
        header = json.loads(bytes(data[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _bad(path, f"the header is not valid JSON ({e})") from None
    except RecursionError:
        raise _bad(path, "the header's JSON is nested too deeply") from None
    if not isinstance(header, dict):
        raise _bad(path, "the header is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in meta.items()):
        raise _bad(path, "__metadata__ must map strings to strings")
    body = memoryview(data)[8 + n:]
    spans = []
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= set(info):
            raise _bad(path, f"entry {name!r} lacks dtype, shape or data_offsets")
        code, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if code not in _DTYPES:
            raise _bad(path, f"tensor {name!r} has unsupported dtype {code!r}")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool)
                                                  and d >= 0 for d in shape):
            raise _bad(path, f"tensor {name!r} has an invalid shape {shape!r}")
        if not (isinstance(offs, list) and len(offs) == 2
                and all(isinstance(o, int) and o >= 0 for o in offs) and offs[0] <= offs[1]):
            raise _bad(path, f"tensor {name!r} has invalid data_offsets {offs!r}")
        dt = np.dtype(_DTYPES[code]).newbyteorder("<")
        if len(shape) > _MAX_NDIM:
            raise _bad(path, f"tensor {name!r} has {len(shape)} dimensions, more than the "
                             f"{_MAX_NDIM} NumPy supports")
        # NumPy refuses a shape whose nonzero dims overflow its index type even when a zero
        # dim makes the tensor empty ("array is too big"): checked here, by name
        if math.prod(d for d in shape if d) * dt.itemsize > np.iinfo(np.intp).max:
            raise _bad(path, f"tensor {name!r} has a shape {shape} too large to index")
        need = math.prod(shape) * dt.itemsize
        if offs[1] - offs[0] != need:
            raise _bad(path, f"tensor {name!r} of shape {tuple(shape)} and dtype {code} needs "
                             f"{need} bytes but its data_offsets span {offs[1] - offs[0]}")
        if offs[1] > len(body):
            raise _bad(path, f"tensor {name!r} ends at byte {offs[1]} of the data but the data "
                             f"has only {len(body)} bytes (truncated file?)")
        spans.append((offs[0], offs[1], name))
        try:
            arr = np.frombuffer(body[offs[0]:offs[1]], dtype=dt).reshape(shape)
        except ValueError as e:     # a NumPy limit the checks above do not foresee
            raise _bad(path, f"tensor {name!r} of shape {shape}: {e}") from None
        # the canonical dtype object (not an equal '<f8' one), so `t.dtype is tl.float64` holds
        canon = np.dtype(_DTYPES[code])
        if not (arr.flags.writeable and arr.flags.aligned and dt.isnative):
            arr = arr.astype(canon, copy=True)   # writable, native order
        elif arr.dtype is not canon:
            arr = arr.view(canon)
        out[name] = arr
    spans.sort()
    end = 0
    for b, e, name in spans:
        if b != end:
            raise _bad(path, f"tensor {name!r} starts at byte {b}, expected {end} (overlapping "
                             "or gapped data)")
        end = e
    if end != len(body):
        raise _bad(path, f"the data section has {len(body)} bytes but the tensors cover {end} "
                         "(truncated or padded file?)")
    return out, meta


def _decode(node, tensors: dict, wrap, path: str):
    root: list = [None]
    stack = [(node, root, 0)]
    done = []       # (destination, index, tag, items): tuples/dicts built after their items
    # iterative, as _encode: a deep (or hostile) structure must not exhaust the stack
    while stack:
        node, dst, i = stack.pop()
        if isinstance(node, list):
            items: list = [None] * len(node)
            dst[i] = items
            stack += [(v, items, j) for j, v in enumerate(node)]
            continue
        if not isinstance(node, dict):
            dst[i] = node
            continue
        if len(node) != 1:
            raise _bad(path, f"unexpected structure node {str(node)[:200]}")
        (tag, v), = node.items()
        if tag in ("$tensor", "$ndarray"):
            if not isinstance(v, str) or v not in tensors:
                raise _bad(path, f"the structure refers to tensor {str(v)[:200]!r}, which "
                                 "the file lacks")
            dst[i] = wrap(tensors[v], tag == "$ndarray")
        elif tag == "$sparse_coo":
            dst[i] = _sparse(v, tensors, wrap, path)
        elif tag == "$tuple" and isinstance(v, list):
            items = [None] * len(v)
            done.append((dst, i, tag, items))
            stack += [(x, items, j) for j, x in enumerate(v)]
        elif tag == "$dict" and isinstance(v, list):
            if not all(isinstance(kv, list) and len(kv) == 2 for kv in v):
                raise _bad(path, "a $dict entry is not a [key, value] pair")
            items = [None] * (2 * len(v))
            done.append((dst, i, tag, items))
            stack += [(x, items, j) for j, x in enumerate(x for kv in v for x in kv)]
        elif tag == "$float" and v in ("inf", "-inf", "nan"):
            dst[i] = float(v)
        elif tag == "$complex":
            dst[i] = _complex(v, path)
        elif tag == "$scalar":
            dst[i] = _np_scalar(v, path)
        else:
            raise _bad(path, f"unknown structure tag {str(tag)[:80]!r}")
    for dst, i, tag, items in reversed(done):      # innermost first
        if tag == "$tuple":
            dst[i] = tuple(items)
        else:
            try:
                dst[i] = dict(zip(items[::2], items[1::2]))
            except TypeError:
                raise _bad(path, "a dict key is not a number, string, bool or None") from None
    return root[0]


def _sparse(v, tensors: dict, wrap, path: str):
    """A sparse COO tensor from its ``[indices' name, values' name, size, coalesced]``."""
    ok = (isinstance(v, list) and len(v) == 4 and all(isinstance(n, str) for n in v[:2])
          and isinstance(v[2], list) and all(type(s) is int and s >= 0 for s in v[2])
          and isinstance(v[3], bool))
    if not ok:
        raise _bad(path, f"bad sparse tensor entry {str(v)[:200]}")
    for n in v[:2]:
        if n not in tensors:
            raise _bad(path, f"the structure refers to tensor {n[:200]!r}, which the file "
                             "lacks")
    ind = tensors[v[0]]
    if ind.dtype != np.int64:
        raise _bad(path, f"sparse tensor {v[0][:200]!r}: indices must be int64, got "
                         f"{ind.dtype}")
    from .sparse import sparse_coo_tensor
    try:
        return sparse_coo_tensor(np.array(ind), wrap(tensors[v[1]], False), tuple(v[2]),
                                 is_coalesced=v[3])
    except (ValueError, IndexError, TypeError, RuntimeError) as e:
        raise _bad(path, f"sparse tensor {v[1][:200]!r} is inconsistent: {e}") from None


def _part(x, path: str) -> float:
    if isinstance(x, dict) and len(x) == 1 and x.get("$float") in ("inf", "-inf", "nan"):
        return float(x["$float"])
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    raise _bad(path, f"bad complex number part {str(x)[:100]}")


def _complex(v, path: str) -> complex:
    """A Python complex from its ``[real, imag]`` JSON (parts as ``_scalar`` writes floats)."""
    if not (isinstance(v, list) and len(v) == 2):
        raise _bad(path, f"bad complex number {str(v)[:100]}")
    return complex(_part(v[0], path), _part(v[1], path))


def _np_scalar(v, path: str):
    ok = isinstance(v, list) and len(v) == 2 and v[0] in _DTYPES
    if ok and np.dtype(_DTYPES[v[0]]).kind == "c":
        if isinstance(v[1], dict) and set(v[1]) == {"$complex"}:
            return np.dtype(_DTYPES[v[0]]).type(_complex(v[1]["$complex"], path))
        ok = False
    if ok:
        x = float(v[1]["$float"]) if isinstance(v[1], dict) and v[1].get("$float") in (
            "inf", "-inf", "nan") else v[1]
        kind = np.dtype(_DTYPES[v[0]]).kind
        ok = (isinstance(x, bool) if kind == "b" else
              isinstance(x, int) and not isinstance(x, bool) if kind in "iu" else
              isinstance(x, (int, float)) and not isinstance(x, bool))
    if ok:
        try:
            return np.dtype(_DTYPES[v[0]]).type(x)
        except (OverflowError, ValueError):
            pass
    raise _bad(path, f"bad NumPy scalar {str(v)[:100]}")
