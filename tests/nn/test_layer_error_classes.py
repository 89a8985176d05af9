"""A layer's own input checks raise errors that are also RuntimeErrors (as PyTorch's), so a
port's ``except RuntimeError`` catches them; a user's forward keeps its own exceptions."""
from __future__ import annotations

import pytest

import tensorlib as tl
from tensorlib.errors import InputError, ShapeError

nn = tl.nn

BAD_CALLS = {
    "conv2d channels": lambda: nn.Conv2d(3, 2, 3)(tl.ones(1, 2, 4, 4)),
    "linear in_features": lambda: nn.Linear(3, 2)(tl.ones(1, 4)),
    "group_norm channels": lambda: nn.GroupNorm(2, 4)(tl.ones(1, 6, 4, 4)),
    "batch_norm channels": lambda: nn.BatchNorm2d(4)(tl.ones(2, 6, 4, 4)),
    "conv_transpose output_padding": lambda: nn.ConvTranspose2d(
        2, 2, 3, stride=2, output_padding=2)(tl.ones(1, 2, 4, 4)),
    "nested in Sequential": lambda: nn.Sequential(nn.Linear(3, 2), nn.Linear(3, 2))(
        tl.ones(1, 3)),
}


@pytest.mark.parametrize("name", sorted(BAD_CALLS))
def test_layer_input_errors_are_runtime_errors(name):
    with pytest.raises(RuntimeError) as ei:
        BAD_CALLS[name]()
    assert isinstance(ei.value, ValueError) and isinstance(ei.value, ShapeError)
    assert str(ei.value).split(":")[0] in ("conv2d", "linear", "group_norm", "batch_norm",
                                           "conv_transpose2d")


def test_user_forward_errors_keep_their_class():
    class Mine(nn.Module):
        def forward(self, x):
            raise ValueError("my own check")
    with pytest.raises(ValueError) as ei:
        Mine()(tl.ones(2))
    assert type(ei.value) is ValueError


def test_multinomial_invalid_distribution_is_a_runtime_error():
    with pytest.raises(RuntimeError, match="sums to 0") as ei:
        tl.multinomial(tl.tensor([0.0, 0.0]), 1, True)
    assert isinstance(ei.value, (ValueError, InputError))
