"""Recurrent layers: RNN, LSTM, GRU (multi-layer, batch_first, bidirectional, packed
variable-length batches, LSTM projections) and their single-step cells. Parameter names,
shapes, gate orders and initialisation follow PyTorch, so weights copy over one to one.

Each layer direction of a padded batch is one whole-sequence op (``lstm_seq``, ``gru_seq``,
``rnn_seq`` in ops/nn_rnn_seq.py), so a captured graph, a saved graph file and an ONNX export
(LSTM/GRU/RNN nodes) serve every sequence length and batch. Packed batches and LSTM
projections step in Python (a captured projection is traced per sequence length)."""
from __future__ import annotations

import math
import sys
import warnings

import numpy as np

from .. import creation
from .._apply import apply
from .._state import state as _state_flags
from ..ops.fill import fill
from ..ops.indexing import take
from ..ops.nn_rnn import GRU_CELL, LSTM_CELL
from ..ops.nn_rnn_seq import GRU_SEQ, LSTM_SEQ, RNN_SEQ
from .._tensor import Tensor
from ..ops.shape import concatenate, split, stack
from . import functional as F
from . import init
from .linear import _as_int, _positive, _size
from .module import Module
from .parameter import Parameter
from .utils.rnn import PackedSequence

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _rnn_step(mode: str):
    if mode == "LSTM":
        return F.lstm_cell
    if mode == "GRU":
        return F.gru_cell
    act = F.tanh if mode == "RNN_TANH" else F.relu

    def step(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
        return act(F.linear(x, w_ih, b_ih) + F.linear(h, w_hh, b_hh))
    return step


def _packed_cell(mode: str, hidden: int):
    """A step on precomputed input gates ``gi`` (x W_ih^T + b_ih, for the active rows):
    (gi, h, c, w_hh, b_hh, w_hr) -> (h', c')."""
    if mode == "LSTM":
        def lstm(gi, h, c, w_hh, b_hh, w_hr):
            h, c, _ = apply(LSTM_CELL, gi, c, F.linear(h, w_hh),
                            *(() if b_hh is None else (b_hh,)))
            return (h if w_hr is None else F.linear(h, w_hr)), c
        return lstm
    if mode == "GRU":
        def gru(gi, h, c, w_hh, b_hh, w_hr):   # F.gru_cell's fused op
            h, _ = apply(GRU_CELL, gi, F.linear(h, w_hh, b_hh), h)
            return h, None
        return gru
    act = F.tanh if mode == "RNN_TANH" else F.relu

    def rnn(gi, h, c, w_hh, b_hh, w_hr):
        return act(gi + F.linear(h, w_hh, b_hh)), None
    return rnn


def _init_depth(obj) -> int:
    """How many ``__init__`` frames of ``obj`` (subclasses' included) the caller is in: a
    warning's stacklevel that points at the line constructing the module."""
    frame, depth = sys._getframe(2), 1
    while frame is not None and frame.f_code.co_name == "__init__" and \
            frame.f_locals.get("self") is obj:
        frame, depth = frame.f_back, depth + 1
    return depth


def _state(hx, lstm: bool, name: str):
    """``hx`` as (h, c) for an LSTM (a pair of tensors), (h, None) otherwise (one tensor)."""
    if lstm:
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2
                and all(isinstance(t, Tensor) for t in hx)):
            raise TypeError(f"{name}: hx must be a pair of tensors (h, c), got "
                            f"{type(hx).__name__}")
        return hx[0], hx[1]
    if not isinstance(hx, Tensor):
        raise TypeError(f"{name}: hx must be one tensor (h), got {type(hx).__name__}"
                        + (" (an LSTM's state is a pair; this layer's is not)"
                           if isinstance(hx, (tuple, list)) else ""))
    return hx, None

class RNNBase(Module):
    """Shared machinery of RNN, LSTM and GRU."""

    mode = "RNN_TANH"
    proj_size = 0       # a class default too, so modules pickled before it existed still run

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, dtype=None, device=None, proj_size: int = 0):
        super().__init__()
        name = type(self).__name__
        # NumPy integers too (PyTorch refuses them here, but takes them in Linear, Conv...)
        input_size = _positive("input_size", name, input_size)
        hidden_size = _positive("hidden_size", name, hidden_size)
        num_layers = _positive("num_layers", name, num_layers)
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        ps = _as_int(proj_size)
        if ps is None or ps < 0:
            raise ValueError(f"{name}: proj_size must be a positive integer, or 0 for no "
                             f"projection, got {proj_size!r}")
        proj_size = ps
        if proj_size and self.mode != "LSTM":
            raise ValueError(f"{name}: proj_size is only supported by LSTM")
        if proj_size >= hidden_size:
            raise ValueError(f"{name}: proj_size ({proj_size}) must be smaller than "
                             f"hidden_size ({hidden_size})")
        if dropout > 0 and num_layers == 1:
            # PyTorch's message: dropout only acts between layers, so here it does nothing
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}",
                          stacklevel=_init_depth(self) + 1)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        self.proj_size = proj_size
        g = _GATES[self.mode] * hidden_size
        out_size = proj_size or hidden_size      # h's features (c keeps hidden_size)
        dirs = 2 if bidirectional else 1
        kw = dict(dtype=dtype, device=device)
        # PyTorch's registration order (ih, hh, biases, hr), so state_dict orders match too
        self._names: list[list[str]] = []
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else out_size * dirs
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                names = [f"weight_ih{sfx}", f"weight_hh{sfx}"]
                setattr(self, names[0], Parameter(creation.empty(g, in_size, **kw)))
                setattr(self, names[1], Parameter(creation.empty(g, out_size, **kw)))
                if bias:
                    names += [f"bias_ih{sfx}", f"bias_hh{sfx}"]
                    setattr(self, names[2], Parameter(creation.empty(g, **kw)))
                    setattr(self, names[3], Parameter(creation.empty(g, **kw)))
                if proj_size:
                    names.append(f"weight_hr{sfx}")
                    setattr(self, names[-1],
                            Parameter(creation.empty(proj_size, hidden_size, **kw)))
                self._names.append(names)
        self.reset_parameters()

    def flatten_parameters(self) -> None:
        """Nothing to do: PyTorch packs the weights into one buffer for cuDNN; tensorlib's
        kernels read them where they are. Kept so ported models run unchanged."""

    @property
    def all_weights(self) -> list[list[Parameter]]:
        """The parameters per layer and direction, in PyTorch's order (``weight_ih``,
        ``weight_hh``, then the biases and ``weight_hr`` when present)."""
        return [[getattr(self, n) for n in names] for names in self._names]

    @property
    def _flat_weights_names(self) -> list[str]:
        """The parameter names in PyTorch's flat order (per layer and direction: ``weight_ih``,
        ``weight_hh``, the biases, ``weight_hr``); d2l's ``init_seq2seq`` walks it."""
        return [n for names in self._names for n in names]

    @property
    def _flat_weights(self) -> list[Parameter | None]:
        """The parameters named by ``_flat_weights_names``, in that order (None where one was
        set to None), as PyTorch's; read afresh, so a re-assigned weight shows."""
        return [getattr(self, n, None) for n in self._flat_weights_names]

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden), 1/sqrt(hidden)), as PyTorch."""
        k = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -k, k)

    def _weights(self, idx: int) -> list[Tensor]:
        return [getattr(self, n) for n in self._names[idx]]

    def _weights5(self, idx: int) -> tuple:
        """(w_ih, w_hh, b_ih, b_hh, w_hr), None where the layer has none."""
        w = self._weights(idx)
        b = (w[2], w[3]) if self.bias else (None, None)
        return (w[0], w[1], *b, w[-1] if self.proj_size else None)

    def forward(self, input: Tensor | PackedSequence, hx=None):
        """``input``: (L, N, in), or (N, L, in) with batch_first, or unbatched (L, in), or a
        ``PackedSequence`` (see ``nn.utils.rnn.pack_padded_sequence``).
        ``hx``: initial state (num_layers * directions, N, out) (a pair (h0, c0) for LSTM,
        c0 of (num_layers * directions, N, hidden)), zeros by default; out is proj_size for
        an LSTM with a projection, hidden_size otherwise. Returns (output, h_n)
        (``(h_n, c_n)`` for LSTM); for a packed input, output is packed too and h_n holds
        each sequence's state after its own last step.

        >>> packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        >>> out, (h_n, c_n) = lstm(packed)
        >>> out, lengths = nn.utils.rnn.pad_packed_sequence(out)
        """
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        name = type(self).__name__
        lstm = self.mode == "LSTM"
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: expected a 2-d (unbatched) or 3-d input, got shape "
                             f"{tuple(input.shape)}")
        batched = input.ndim == 3
        x = input if batched else input.unsqueeze(1)
        if batched and self.batch_first:
            x = x.swapaxes(0, 1)
        T, N, C = x.shape
        if self.proj_size and _state_flags.tracer is not None:
            # a projection's steps are unrolled in Python: under capture with a None time
            # dim the graph holds the traced number of steps, so it is traced per sequence
            # length (the batch dim stays dynamic)
            from ..graph.tracer import note_split
            note_split(x, 0, "the number of steps the loop unrolls",
                       reason=f"nn.{name} with proj_size loops over the time steps: traced "
                              "per sequence length")
        if C != self.input_size:
            raise ValueError(f"{name}: expected input_size {self.input_size}, got input of "
                             f"shape {tuple(input.shape)}")
        dirs = 2 if self.bidirectional else 1
        proj = self.proj_size
        state_shape = (self.num_layers * dirs, N, self.hidden_size)
        h_shape = (self.num_layers * dirs, N, proj) if proj else state_shape
        if hx is None:      # x's batch axis (1) at run time: see RNNCellBase._zeros
            z = fill(x, state_shape, dims=[(1, 1)])
            h0, c0 = (fill(x, h_shape, dims=[(1, 1)]) if proj else z), (z if lstm else None)
        else:
            h0, c0 = _state(hx, lstm, name)
            if not batched:
                h0 = h0.unsqueeze(1)
                c0 = c0.unsqueeze(1) if c0 is not None else None
            for what, t, shp in (("h0", h0, h_shape), ("c0", c0, state_shape)):
                if t is not None and tuple(t.shape) != shp:
                    want = shp if batched else (shp[0], shp[2])
                    raise ValueError(f"{name}: expected {what} of shape {want}, got "
                                     f"{tuple(t.shape if batched else t.squeeze(1).shape)}")
        h0s = h0.unbind(0)
        c0s = c0.unbind(0) if lstm else None
        cell = _packed_cell(self.mode, self.hidden_size)
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs_per_dir = []
            for d in range(dirs):
                idx = layer * dirs + d
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights5(idx)
                c = c0s[idx] if lstm else None
                if w_hr is None:    # one op runs all the steps: T stays dynamic in graphs
                    y, h, c = _sequence(self.mode, x, h0s[idx], c, (w_ih, w_hh, b_ih, b_hh),
                                        bool(d))
                else:
                    y, h, c = _unrolled(cell, x, T, h0s[idx], c, (w_ih, w_hh, b_ih, b_hh,
                                                                   w_hr), bool(d))
                outs_per_dir.append(y)
                h_n.append(h)
                if lstm:
                    c_n.append(c)
            x = concatenate(outs_per_dir, axis=2) if dirs == 2 else outs_per_dir[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        output = x
        if batched and self.batch_first:
            output = output.swapaxes(0, 1)
        hn = stack(h_n)
        cn = stack(c_n) if lstm else None
        if not batched:
            output, hn = output.squeeze(1), hn.squeeze(1)
            cn = cn.squeeze(1) if cn is not None else None
        return (output, (hn, cn)) if lstm else (output, hn)

    def _forward_packed(self, packed: PackedSequence, hx):
        name = type(self).__name__
        if _state_flags.tracer is not None:
            raise NotImplementedError(f"{name}: a PackedSequence input is not supported under "
                                      "graph capture (tl.function, export): its lengths "
                                      "decide the graph; capture the padded batch instead")
        lstm = self.mode == "LSTM"
        data, batch_sizes, sorted_idx, unsorted_idx = packed
        if data.ndim != 2 or data.shape[1] != self.input_size:
            raise ValueError(f"{name}: expected packed data of shape (steps, "
                             f"{self.input_size}), got {tuple(data.shape)}")
        bs = [int(b) for b in np.asarray(batch_sizes.cpu().numpy()).reshape(-1)]
        if not bs or sum(bs) != data.shape[0] or any(a < b for a, b in zip(bs, bs[1:])):
            raise ValueError(f"{name}: batch_sizes {bs} do not describe packed data of "
                             f"{data.shape[0]} rows; build the PackedSequence with "
                             "pack_padded_sequence or pack_sequence")
        N, dirs, H = bs[0], 2 if self.bidirectional else 1, self.hidden_size
        P = self.proj_size or H
        n_states = self.num_layers * dirs
        if hx is None:
            h0s = c0s = [None] * n_states
        else:
            h0, c0 = _state(hx, lstm, name)
            for what, t, shp in (("h0", h0, (n_states, N, P)), ("c0", c0, (n_states, N, H))):
                if t is not None and tuple(t.shape) != shp:
                    raise ValueError(f"{name}: expected {what} of shape {shp}, got "
                                     f"{tuple(t.shape)}")
            if sorted_idx is not None:     # hx is in the caller's batch order
                h0 = take(h0, sorted_idx, axis=1)
                c0 = take(c0, sorted_idx, axis=1) if lstm else None
            h0s = h0.unbind(0)
            c0s = c0.unbind(0) if lstm else [None] * n_states
        cell = _packed_cell(self.mode, H)
        splits = np.cumsum(bs)[:-1].tolist()
        x = data
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                idx = layer * dirs + d
                w_ih, w_hh, b_ih, b_hh, w_hr = self._weights5(idx)
                # the input half of every step's gates in one matmul over all rows
                gi = F.linear(x, w_ih, b_ih)
                gis = split(gi, splits, axis=0) if splits else (gi,)
                run = _packed_reverse if d else _packed_forward
                out, h, c = run(cell, gis, bs, h0s[idx], c0s[idx], (w_hh, b_hh, w_hr),
                                lstm, (P, H), data)
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            x = concatenate(outs, axis=1) if dirs == 2 else outs[0]
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        hn = stack(h_n)
        cn = stack(c_n) if lstm else None
        if unsorted_idx is not None:      # back to the caller's batch order
            hn = take(hn, unsorted_idx, axis=1)
            cn = take(cn, unsorted_idx, axis=1) if lstm else None
        output = PackedSequence(x, batch_sizes, sorted_idx, unsorted_idx)
        return (output, (hn, cn)) if lstm else (output, hn)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        return s


def _sequence(mode: str, x: Tensor, h0: Tensor, c0, weights: tuple, reverse: bool):
    """One layer direction through the whole-sequence op (ops/nn_rnn_seq.py): (y, h_T, c_T
    or None)."""
    w_ih, w_hh, b_ih, b_hh = weights
    ws = (w_ih, w_hh) if b_ih is None else (w_ih, w_hh, b_ih, b_hh)
    if mode == "LSTM":
        y, h, c, _, _ = apply(LSTM_SEQ, x, h0, c0, *ws, reverse=reverse)
        return y, h, c
    if mode == "GRU":
        y, h, _ = apply(GRU_SEQ, x, h0, *ws, reverse=reverse)
        return y, h, None
    y, h = apply(RNN_SEQ, x, h0, *ws, reverse=reverse,
                 nonlinearity="relu" if mode == "RNN_RELU" else "tanh")
    return y, h, None


def _unrolled(cell, x: Tensor, T: int, h: Tensor, c, weights: tuple, reverse: bool):
    """One layer direction stepped in Python (an LSTM with a projection): (y, h_T, c_T)."""
    w_ih, w_hh, b_ih, b_hh, w_hr = weights
    # the input half of every step's gates in one matmul over all steps; the loop
    # multiplies only the state
    gis = F.linear(x, w_ih, b_ih).unbind(0)
    outs = []
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        h, c = cell(gis[t], h, c, w_hh, b_hh, w_hr)
        outs.append(h)
    if reverse:
        outs.reverse()
    return stack(outs), h, c


def _zeros(like: Tensor, n: int, size: int) -> Tensor:
    return creation.zeros(n, size, dtype=like.dtype, device=like.device)


def _packed_forward(cell, gis, bs, h0, c0, w, lstm, sizes, like):
    """One forward direction over packed steps. Sequences are sorted longest first, so at
    step t only the first bs[t] rows run: the rows that end are split off (they are those
    sequences' final states) and the state shrinks; nothing is masked."""
    N = bs[0]
    h = _zeros(like, N, sizes[0]) if h0 is None else h0
    c = (_zeros(like, N, sizes[1]) if c0 is None else c0) if lstm else None
    outs, done_h, done_c = [], [], []
    for t, b in enumerate(bs):
        if b < h.shape[0]:
            h, hd = split(h, [b], axis=0)
            done_h.append(hd)
            if lstm:
                c, cd = split(c, [b], axis=0)
                done_c.append(cd)
        h, c = cell(gis[t], h, c, *w)
        outs.append(h)
    # rows that ended earlier sit further down the batch: latest-ending first
    h_n = concatenate([h] + done_h[::-1], axis=0) if done_h else h
    c_n = (concatenate([c] + done_c[::-1], axis=0) if done_c else c) if lstm else None
    return (concatenate(outs, axis=0) if len(outs) > 1 else outs[0]), h_n, c_n


def _packed_reverse(cell, gis, bs, h0, c0, w, lstm, sizes, like):
    """One reverse direction over packed steps: each sequence starts at its own last step,
    so the rows whose last step is t join the state (from h0) as the walk reaches t."""
    T = len(bs)
    h = c = None
    outs = [None] * T
    for t in range(T - 1, -1, -1):
        b = bs[t]
        cur = 0 if h is None else h.shape[0]
        if b > cur:
            hs = _zeros(like, b - cur, sizes[0]) if h0 is None else h0[cur:b]
            h = hs if h is None else concatenate([h, hs], axis=0)
            if lstm:
                cs = _zeros(like, b - cur, sizes[1]) if c0 is None else c0[cur:b]
                c = cs if c is None else concatenate([c, cs], axis=0)
        h, c = cell(gis[t], h, c, *w)
        outs[t] = h
    return (concatenate(outs, axis=0) if T > 1 else outs[0]), h, c


class RNN(RNNBase):
    """Elman RNN: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, dtype=None, device=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        object.__setattr__(self, "mode", "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, device)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory (gate order i, f, g, o as PyTorch); returns
    ``output, (h_n, c_n)``.

    >>> lstm = nn.LSTM(64, 256, num_layers=2, batch_first=True)
    >>> out, (h, c) = lstm(tl.randn(8, 32, 64))
    """

    mode = "LSTM"


class GRU(RNNBase):
    """Gated recurrent unit (gate order r, z, n as PyTorch)."""

    mode = "GRU"


class _CellBase(Module):
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=None,
                 device=None):
        super().__init__()
        name = type(self).__name__
        input_size = _size("input_size", name, input_size)
        hidden_size = _size("hidden_size", name, hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        g = _GATES[self.mode] * hidden_size
        kw = dict(dtype=dtype, device=device)
        self.weight_ih = Parameter(creation.empty(g, input_size, **kw))
        self.weight_hh = Parameter(creation.empty(g, hidden_size, **kw))
        if bias:
            self.bias_ih = Parameter(creation.empty(g, **kw))
            self.bias_hh = Parameter(creation.empty(g, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        k = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            init.uniform_(p, -k, k)

    def _zeros(self, x: Tensor) -> Tensor:
        # sized by x's batch at run time, so a captured graph follows a None batch dim
        return fill(x, (x.shape[0], self.hidden_size), dims=[(0, 0)])

    def _w(self):
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def _check(self, x: Tensor, *states: Tensor) -> None:
        """The input's and states' sizes, named as the user wrote them (the cell ops would
        blame the weights, which are not what is wrong)."""
        name = type(self).__name__

        def known(a, b):        # a None batch dim under capture is not compared
            return isinstance(a, int) and isinstance(b, int)
        if known(x.shape[1], self.input_size) and x.shape[1] != self.input_size:
            raise ValueError(f"{name}: input has {x.shape[1]} features, expected input_size="
                             f"{self.input_size}")
        for what, h in zip(("hx", "cx"), states):
            want = (x.shape[0], self.hidden_size)
            if h.ndim != 2 or any(known(a, b) and a != b for a, b in zip(h.shape, want)):
                raise ValueError(f"{name}: hidden state {what} has shape {tuple(h.shape)}, "
                                 f"expected (batch, hidden_size) = {want}")

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


def _batch1(x: Tensor, name: str):
    if x.ndim == 1:
        return x.unsqueeze(0), True
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 1-d or 2-d input, got shape {tuple(x.shape)}")
    return x, False


class RNNCell(_CellBase):
    """One Elman RNN step."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", dtype=None, device=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got "
                             f"{nonlinearity!r}")
        object.__setattr__(self, "mode", "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU")
        super().__init__(input_size, hidden_size, bias, dtype, device)

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        x, unb = _batch1(x, "RNNCell")
        hx = None if hx is None else _state(hx, False, "RNNCell")[0]
        h = self._zeros(x) if hx is None else (hx.unsqueeze(0) if unb else hx)
        self._check(x, h)
        out = _rnn_step(self.mode)(x, h, *self._w())
        return out.squeeze(0) if unb else out


class LSTMCell(_CellBase):
    """One LSTM step: ``(h', c') = cell(x, (h, c))``."""

    mode = "LSTM"

    def forward(self, x: Tensor, hx=None):
        x, unb = _batch1(x, "LSTMCell")
        if hx is None:
            h = c = self._zeros(x)
        else:
            h, c = _state(hx, True, "LSTMCell")
            if unb:
                h, c = h.unsqueeze(0), c.unsqueeze(0)
        self._check(x, h, c)
        h, c = F.lstm_cell(x, (h, c), *self._w())
        return (h.squeeze(0), c.squeeze(0)) if unb else (h, c)


class GRUCell(_CellBase):
    """One GRU step."""

    mode = "GRU"

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        x, unb = _batch1(x, "GRUCell")
        hx = None if hx is None else _state(hx, False, "GRUCell")[0]
        h = self._zeros(x) if hx is None else (hx.unsqueeze(0) if unb else hx)
        self._check(x, h)
        out = F.gru_cell(x, h, *self._w())
        return out.squeeze(0) if unb else out
