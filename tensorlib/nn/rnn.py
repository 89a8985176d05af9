"""Recurrent layers: RNN, LSTM, GRU (multi-layer, batch_first, bidirectional) and their
single-step cells. Parameter names, shapes, gate orders and initialisation follow
PyTorch, so weights copy over one to one."""
from __future__ import annotations

import math

from .. import creation
from ..ops.fill import fill
from .._tensor import Tensor
from ..ops.shape import concatenate, stack
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

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

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, dtype=None, device=None):
        super().__init__()
        name = type(self).__name__
        for k, v in (("input_size", input_size), ("hidden_size", hidden_size),
                     ("num_layers", num_layers)):
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{name}: {k} must be a positive integer, got {v!r}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first = bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        g = _GATES[self.mode] * hidden_size
        dirs = 2 if bidirectional else 1
        kw = dict(dtype=dtype, device=device)
        self._names: list[list[str]] = []
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * dirs
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                names = [f"weight_ih{sfx}", f"weight_hh{sfx}"]
                setattr(self, names[0], Parameter(creation.empty(g, in_size, **kw)))
                setattr(self, names[1], Parameter(creation.empty(g, hidden_size, **kw)))
                if bias:
                    names += [f"bias_ih{sfx}", f"bias_hh{sfx}"]
                    setattr(self, names[2], Parameter(creation.empty(g, **kw)))
                    setattr(self, names[3], Parameter(creation.empty(g, **kw)))
                self._names.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden), 1/sqrt(hidden)), as PyTorch."""
        k = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -k, k)

    def _weights(self, idx: int) -> list[Tensor]:
        return [getattr(self, n) for n in self._names[idx]]

    def forward(self, input: Tensor, hx=None):
        """``input``: (L, N, in), or (N, L, in) with batch_first, or unbatched (L, in).
        ``hx``: initial state (num_layers * directions, N, hidden) (a pair (h0, c0) for
        LSTM), zeros by default. Returns (output, h_n) (``(h_n, c_n)`` for LSTM)."""
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
        if C != self.input_size:
            raise ValueError(f"{name}: expected input_size {self.input_size}, got input of "
                             f"shape {tuple(input.shape)}")
        dirs = 2 if self.bidirectional else 1
        state_shape = (self.num_layers * dirs, N, self.hidden_size)
        if hx is None:      # x's batch axis (1) at run time: see RNNCellBase._zeros
            z = fill(x, state_shape, dims=[(1, 1)])
            h0, c0 = z, (z if lstm else None)
        else:
            h0, c0 = _state(hx, lstm, name)
            if not batched:
                h0 = h0.unsqueeze(1)
                c0 = c0.unsqueeze(1) if c0 is not None else None
            for what, t in (("h0", h0), ("c0", c0)):
                if t is not None and tuple(t.shape) != state_shape:
                    want = state_shape if batched else (state_shape[0], state_shape[2])
                    raise ValueError(f"{name}: expected {what} of shape {want}, got "
                                     f"{tuple(t.shape if batched else t.squeeze(1).shape)}")
        h0s = h0.unbind(0)
        c0s = c0.unbind(0) if lstm else None
        step = _rnn_step(self.mode)
        steps = list(x.unbind(0))
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            outs_per_dir = []
            for d in range(dirs):
                idx = layer * dirs + d
                w = self._weights(idx)
                h = h0s[idx]
                c = c0s[idx] if lstm else None
                outs = []
                for t in (range(T - 1, -1, -1) if d else range(T)):
                    if lstm:
                        h, c = step(steps[t], (h, c), *w)
                    else:
                        h = step(steps[t], h, *w)
                    outs.append(h)
                if d:
                    outs.reverse()
                outs_per_dir.append(outs)
                h_n.append(h)
                if lstm:
                    c_n.append(c)
            if dirs == 2:
                out = concatenate([stack(outs_per_dir[0]), stack(outs_per_dir[1])], axis=2)
            else:
                out = None
            if self.dropout and self.training and layer < self.num_layers - 1:
                out = F.dropout(out if out is not None else stack(outs_per_dir[0]),
                                self.dropout, True)
            steps = list(out.unbind(0)) if out is not None else outs_per_dir[0]
        output = out if out is not None else stack(steps)
        if batched and self.batch_first:
            output = output.swapaxes(0, 1)
        hn = stack(h_n)
        cn = stack(c_n) if lstm else None
        if not batched:
            output, hn = output.squeeze(1), hn.squeeze(1)
            cn = cn.squeeze(1) if cn is not None else None
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
        return s


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
        h, c = F.lstm_cell(x, (h, c), *self._w())
        return (h.squeeze(0), c.squeeze(0)) if unb else (h, c)


class GRUCell(_CellBase):
    """One GRU step."""

    mode = "GRU"

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        x, unb = _batch1(x, "GRUCell")
        hx = None if hx is None else _state(hx, False, "GRUCell")[0]
        h = self._zeros(x) if hx is None else (hx.unsqueeze(0) if unb else hx)
        out = F.gru_cell(x, h, *self._w())
        return out.squeeze(0) if unb else out
