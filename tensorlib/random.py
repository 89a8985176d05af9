"""Random numbers: a global seedable generator and explicit ``Generator`` objects."""
from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

import numpy as np

# get_rng_state's bytes: this header, then PCG64's 128-bit state and increment, its
# buffered 32-bit half (a flag byte and 4 bytes), and the initial seed (a flag byte, a
# 2-byte length and the seed's bytes); every integer little-endian
_MAGIC = b"TLPCG64\x01"


def _fresh_seed() -> int:
    """A non-deterministic seed below 2**63, from the OS's entropy."""
    return int.from_bytes(os.urandom(8), "little") >> 1


def _check_seed(seed) -> int:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _generator_device(device):
    """The :class:`Device` of ``Generator(device=...)``: a name, a Device, anything whose
    ``str`` is one (a ``torch.device``), or an int (``cuda:N``, as PyTorch)."""
    from ._device import Device
    if device is None:
        return Device("cpu")
    if isinstance(device, (int, np.integer)) and not isinstance(device, bool):
        spec = f"cuda:{int(device)}"
    elif isinstance(device, (str, Device)):
        spec = device
    elif isinstance(getattr(device, "type", None), str):      # torch.device and the like
        spec = str(device)
    else:
        raise TypeError(f"Generator: device must be a string such as 'cpu' or 'cuda:0', a "
                        f"tl.device or None, got {type(device).__name__}")
    try:
        d = Device(spec)
    except ValueError as e:
        raise ValueError(f"Generator: {e}") from None
    if d.type == "cuda":
        from .cuda._runtime import device_count
        n = device_count()
        if d.index >= n:
            raise RuntimeError(f"Generator: device {d} is not available ({n} CUDA device(s) "
                               "visible; CUDA needs CuPy and a GPU); use device='cpu'")
    return d


def _note_reseed(gen, seed) -> None:
    """While ``tl.function`` traces, record a reseed into the graph (replays redo it)."""
    from .autograd.mode import state
    if state.tracer is not None:
        from .graph.replay_checks import note_reseed
        note_reseed(gen, seed)


def _note_state(gen, obj, set_by: str | None = None) -> None:
    """While a capture traces, record a read of ``gen``'s state into ``obj`` (``set_by``
    None) or a ``set_state(obj)`` (``set_by``: the caller's name, for its errors), so that
    replays save and restore the state at the same points (see graph.replay_checks)."""
    from .autograd.mode import state
    if state.tracer is not None:
        from .graph.replay_checks import note_rng_save, note_rng_set
        if set_by is None:
            note_rng_save(gen, obj)
        else:
            note_rng_set(gen, obj, set_by)


class Generator:
    """A random stream (NumPy's PCG64 underneath), as ``torch.Generator(device='cpu')``.

    ``device`` (PyTorch's argument, first or by name: ``'cpu'``, ``'cuda:0'``, a
    ``tl.device`` or ``torch.device``; ``device=N`` is ``cuda:N``) is recorded in
    :attr:`device`; the draws are the same whichever device the tensors are made on. An int
    or a sequence of ints passed first (tensorlib's extension), or ``seed=``, seeds it, as
    ``manual_seed`` does; otherwise the seed comes from the OS's entropy.

    >>> g = tl.Generator(device="cpu").manual_seed(0)
    >>> tl.randn(2, generator=g)
    """

    def __init__(self, device_or_seed=None, /, *, device=None,
                 seed: int | Sequence[int] | None = None) -> None:
        if isinstance(device_or_seed, (int, np.integer, list, tuple)) \
                and not isinstance(device_or_seed, bool):
            if seed is not None:
                raise TypeError("Generator: got a seed both positionally and as seed=")
            seed = device_or_seed
        elif device_or_seed is not None:
            if device is not None:
                raise TypeError("Generator: got a device both positionally and as device=")
            device = device_or_seed
        self.device = _generator_device(device)
        if seed is None:
            seed = _fresh_seed()
        self._rng = np.random.default_rng(seed)
        self._seed = int(seed) if isinstance(seed, (int, np.integer)) else None

    def manual_seed(self, seed: int) -> Generator:
        """Reseed (``torch.Generator.manual_seed``); returns the generator. Inside a
        ``tl.function`` the reseed is part of the graph: each replay reseeds too."""
        self._seed = _check_seed(seed)
        self._rng = np.random.default_rng(self._seed)
        _note_reseed(self, self._seed)
        return self

    def seed(self) -> int:
        """Reseed from the OS's entropy; returns the new seed (PyTorch's ``seed``)."""
        s = _fresh_seed()
        self.manual_seed(s)
        _note_reseed(self, None)    # a replay draws fresh entropy too, not this seed
        return s

    def initial_seed(self) -> int:
        """The seed this generator was last seeded with (at creation, by ``manual_seed``
        or ``seed``, or restored by ``set_state``)."""
        if self._seed is None:
            raise RuntimeError("initial_seed: this generator was seeded with a "
                               "non-integer seed")
        return self._seed

    def get_state(self):
        """The generator's state as a 1-d uint8 tensor, as PyTorch's (``set_state`` and
        ``tl.set_rng_state`` restore it)."""
        from .creation import tensor
        out = tensor(np.frombuffer(self._state_bytes(), dtype=np.uint8).copy())
        _note_state(self, out)
        return out

    def _state_dict(self) -> dict:
        """NumPy's bit-generator dict: a cheap snapshot comparable with ==, for the library's
        own save/restore around a block (``set_state`` takes it back)."""
        out = self._rng.bit_generator.state
        _note_state(self, out)
        return out

    def set_state(self, st) -> None:
        """Restore a state from :meth:`get_state` or :func:`get_rng_state` (a uint8 tensor),
        or NumPy's bit-generator dict. Inside a ``tl.function`` (or ``tl.capture``) each
        replay restores it too: the state this call's ``get_state`` gave, or a fixed one."""
        if isinstance(st, dict):
            self._rng.bit_generator.state = st
        else:
            self._set_state_bytes(st)
        _note_state(self, st, "set_state")

    def _state_bytes(self) -> bytes:
        st = self._rng.bit_generator.state
        if st.get("bit_generator") != "PCG64":
            raise RuntimeError(f"get_rng_state: a {st.get('bit_generator')} bit generator "
                               "cannot be serialised (PCG64 only)")
        out = [_MAGIC, st["state"]["state"].to_bytes(16, "little"),
               st["state"]["inc"].to_bytes(16, "little"),
               bytes([int(st["has_uint32"])]), int(st["uinteger"]).to_bytes(4, "little")]
        if self._seed is None:
            out.append(b"\x00")
        else:
            n = max(1, (self._seed.bit_length() + 7) // 8)
            out += [b"\x01", n.to_bytes(2, "little"), self._seed.to_bytes(n, "little")]
        return b"".join(out)

    def _set_state_bytes(self, state) -> None:
        from ._tensor import Tensor
        if isinstance(state, Tensor):
            state = state.numpy()
        if isinstance(state, np.ndarray):
            if state.dtype != np.uint8 or state.ndim != 1:
                raise TypeError(f"set_rng_state: expected a 1-d uint8 tensor, got dtype "
                                f"{state.dtype} and {state.ndim} dims")
            state = state.tobytes()
        if not isinstance(state, (bytes, bytearray)):
            raise TypeError(f"set_rng_state: expected a uint8 tensor from get_rng_state, got "
                            f"{type(state).__name__}")
        b = bytes(state)
        bad = ValueError("set_rng_state: not a state from tl.get_rng_state (wrong header or "
                         "length)")
        if len(b) < 46 or b[:8] != _MAGIC:
            raise bad
        seed, rest = None, b[45:]
        if rest[:1] == b"\x01" and len(rest) >= 3:
            n = int.from_bytes(rest[1:3], "little")
            if len(rest) != 3 + n:
                raise bad
            seed = int.from_bytes(rest[3:], "little")
        elif rest != b"\x00":
            raise bad
        rng = np.random.default_rng(0)
        rng.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": int.from_bytes(b[8:24], "little"),
                      "inc": int.from_bytes(b[24:40], "little")},
            "has_uint32": b[40], "uinteger": int.from_bytes(b[41:45], "little")}
        self._rng, self._seed = rng, seed

    @property
    def numpy(self) -> np.random.Generator:
        return self._rng


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the global generator used by ``rand``, ``randn``, dropout and initializers."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the global generator from the OS's entropy; returns the seed (as PyTorch)."""
    return default_generator.seed()


def initial_seed() -> int:
    """The global generator's seed (random at import, unless ``manual_seed`` set one)."""
    return default_generator.initial_seed()


def get_rng_state():
    """The global generator's state as a 1-d uint8 tensor (a copy), for checkpoints:
    :func:`set_rng_state` restores it, initial seed included. Plain bytes, no pickle.

    >>> s = tl.get_rng_state(); a = tl.rand(3)
    >>> tl.set_rng_state(s); b = tl.rand(3)          # a == b
    """
    from .creation import tensor
    out = tensor(np.frombuffer(default_generator._state_bytes(), dtype=np.uint8).copy())
    _note_state(default_generator, out)
    return out


def set_rng_state(new_state) -> None:
    """Restore the global generator from a :func:`get_rng_state` tensor. Inside a
    ``tl.function`` (or ``tl.capture``) each replay restores it too: the state this call's
    ``get_rng_state`` gave (a round trip), or a fixed tensor from outside as traced; a state
    passed as an argument raises CaptureError."""
    default_generator._set_state_bytes(new_state)
    _note_state(default_generator, new_state, "set_rng_state")


@contextlib.contextmanager
def fork_rng(devices=None, enabled: bool = True, _caller: str = "fork_rng",
             _devices_kw: str = "devices", device_type: str = "cuda"):
    """Inside the block, draws from the global generator do not change the sequence outside
    it: its state is restored on exit (``torch.random.fork_rng``; the generator serves every
    device, so ``devices`` and ``device_type`` name nothing more to save).

    >>> with tl.random.fork_rng():
    ...     noise = tl.randn(3)          # the draws after the block are as without it
    """
    if not enabled:
        yield
        return
    saved = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(saved)


def rng(generator: Generator | None = None) -> np.random.Generator:
    return (generator or default_generator)._rng


def poisson(input, generator: Generator | None = None):
    """Draws from Poisson distributions with the rates in ``input`` (``torch.poisson``): a
    tensor of ``input``'s shape, dtype and device, drawn from ``generator`` (the global one
    when None). Rates must be finite and non-negative. Not differentiable (PyTorch's
    gradient of a draw is 0).

    >>> tl.poisson(tl.full((3,), 4.0), generator=tl.Generator().manual_seed(0))
    """
    from ._tensor import Tensor
    from .creation import tensor
    rates = input if isinstance(input, Tensor) else tensor(input)
    if rates.dtype.kind != "f":
        raise TypeError(f"poisson: rates must be a floating-point tensor, got {rates.dtype}")
    if generator is not None and not isinstance(generator, Generator):
        raise TypeError(f"poisson: generator must be a tl.Generator, got "
                        f"{type(generator).__name__}")
    lam = rates.detach().numpy().astype(np.float64)
    if lam.size and not (np.isfinite(lam).all() and (lam >= 0).all()):
        raise ValueError("poisson: rates must be finite and non-negative (got a negative, "
                         "inf or NaN rate)")
    draws = rng(generator).poisson(lam).astype(rates.dtype)
    return tensor(draws, device=rates.device)
