"""The examples in the docstrings of the most-read API entries run and print what they
show (help(nn.Conv2d) is often a user's first page)."""
from __future__ import annotations

import doctest

import numpy as np
import pytest

import tensorlib as tl
import tensorlib.nn as nn
import tensorlib.nn.functional as F

ENTRIES = [tl.Tensor.backward, nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm2d, nn.LSTM,
           nn.Embedding, nn.MultiheadAttention, tl.optim.Adam, F.conv2d, nn.LayerNorm,
           nn.MaxPool2d, nn.ReLU, nn.init.kaiming_normal_, nn.CrossEntropyLoss,
           # creation, shape, math and reductions
           tl.zeros, tl.ones, tl.empty, tl.full, tl.zeros_like, tl.ones_like, tl.full_like,
           tl.linspace, tl.eye, tl.rand, tl.randn, tl.cat, tl.stack, tl.exp, tl.log,
           tl.unsqueeze, tl.Tensor.unsqueeze, tl.permute, tl.Tensor.permute, tl.reshape,
           tl.Tensor.view, tl.transpose, tl.Tensor.detach, tl.sum, tl.mean, tl.max, tl.min,
           tl.argmax, tl.clamp, tl.softmax,
           # layers, losses, optimisers, data
           nn.Flatten, nn.Identity, nn.Dropout, nn.Sequential, nn.ModuleDict, nn.Conv1d,
           nn.BatchNorm1d, nn.Sigmoid, nn.Tanh, nn.GELU, nn.Softmax, nn.LeakyReLU,
           nn.Hardtanh, nn.ReLU6, nn.BCELoss, nn.BCEWithLogitsLoss, nn.L1Loss,
           nn.AdaptiveAvgPool2d, F.hardtanh, F.relu6, F.binary_cross_entropy,
           tl.optim.SGD, tl.optim.AdamW, tl.optim.lr_scheduler.StepLR, tl.data.DataLoader]


@pytest.mark.parametrize("obj", ENTRIES, ids=lambda o: f"{o.__module__}.{o.__qualname__}")
def test_docstring_example_runs(obj):
    assert obj.__doc__ and len(obj.__doc__) > 40, f"{obj.__qualname__}: no docstring"
    tl.manual_seed(0)
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(obj, obj.__qualname__, globs={"tl": tl, "nn": nn, "F": F, "np": np}):
        runner.run(test)
    assert runner.failures == 0, f"{obj.__qualname__}: {runner.failures} failing example(s)"
