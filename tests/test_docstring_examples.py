"""The examples in the docstrings of the most-read API entries run and print what they
show (help(nn.Conv2d) is often a user's first page)."""
from __future__ import annotations

import doctest

import pytest

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F

ENTRIES = [tl.Tensor.backward, nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm2d, nn.LSTM,
           nn.Embedding, nn.MultiheadAttention, tl.optim.Adam, F.conv2d, nn.LayerNorm,
           nn.MaxPool2d, nn.ReLU, nn.init.kaiming_normal_, nn.CrossEntropyLoss]


@pytest.mark.parametrize("obj", ENTRIES, ids=lambda o: o.__qualname__)
def test_docstring_example_runs(obj):
    assert obj.__doc__ and len(obj.__doc__) > 40, f"{obj.__qualname__}: no docstring"
    tl.manual_seed(0)
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(obj, obj.__qualname__, globs={"tl": tl, "nn": nn, "F": F}):
        runner.run(test)
    assert runner.failures == 0, f"{obj.__qualname__}: {runner.failures} failing example(s)"
