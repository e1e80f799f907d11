"""Activation, softmax and dropout rules."""

from __future__ import annotations

import torch
from torch import nn

import memflops

from ._meta import aten, flops, meta

X = (2, 3, 5)
N = 2 * 3 * 5  # 30 elements


def test_per_element_counts() -> None:
    x = meta(*X)
    assert flops(aten.relu.default, x) == 1 * N
    assert flops(aten.relu_.default, x) == 1 * N
    assert flops(aten.threshold_backward.default, x, x, 0) == 1 * N
    assert flops(aten.sigmoid.default, x) == 4 * N  # neg, exp, add, div
    assert flops(aten.sigmoid_backward.default, x, x) == 3 * N
    assert flops(aten.tanh.default, x) == 1 * N
    assert flops(aten.tanh_backward.default, x, x) == 3 * N
    assert flops(aten.silu.default, x) == 5 * N
    assert flops(aten.silu_backward.default, x, x) == 9 * N
    assert flops(aten.hardtanh.default, x, 0.0, 6.0) == 2 * N
    assert flops(aten.hardswish.default, x) == 5 * N
    assert flops(aten.hardsigmoid.default, x) == 4 * N
    assert flops(aten.leaky_relu.default, x, 0.1) == 2 * N
    assert flops(aten.elu.default, x) == 6 * N
    assert flops(aten.mish.default, x) == 5 * N
    assert flops(aten.softplus.default, x) == 5 * N
    # two outputs (value, buffer): counted on the value
    assert flops(aten.log_sigmoid_forward.default, x) == 6 * N


def test_gelu_both_approximations() -> None:
    x = meta(*X)
    # erf form: x/sqrt2, erf, +1, *x, *0.5 = 5
    assert flops(aten.gelu.default, x) == 5 * N
    # tanh form: x^3 (2), *k1, +x, *k0, tanh, +1, *x, *0.5 = 9
    assert flops(aten.gelu.default, x, approximate="tanh") == 9 * N
    assert flops(aten.gelu_backward.default, x, x) == 11 * N
    assert flops(aten.gelu_backward.default, x, x, approximate="tanh") == 18 * N


def test_softmax_rows() -> None:
    x = meta(*X)
    # dim -1: R = 6 rows of n = 5: 6 * (5 * 5 - 2) = 138
    assert flops(aten._softmax.default, x, -1, False) == 6 * (5 * 5 - 2) == 138
    # dim 1: R = 10 rows of n = 3: 10 * (5 * 3 - 2) = 130
    assert flops(aten._softmax.default, x, 1, False) == 10 * 13 == 130
    assert flops(aten._log_softmax.default, x, -1, False) == 6 * (5 * 5 - 1) == 144
    assert flops(aten._softmax_backward_data.default, x, x, -1, torch.float32) == 6 * 19
    assert flops(aten._log_softmax_backward_data.default, x, x, -1, torch.float32) == 6 * 19


def test_softmax_module_forward_and_backward() -> None:
    model = nn.Sequential(nn.Linear(5, 5, bias=False), nn.Softmax(dim=-1))
    report = memflops.analyze(model, (6, 5), mode="train")
    softmax = next(row for row in report.modules if row.path == "1")
    assert softmax.forward.flops == 6 * (5 * 5 - 2) == 138
    assert softmax.backward.flops == 6 * (4 * 5 - 1) == 114


def test_native_dropout() -> None:
    x = meta(*X)
    assert flops(aten.native_dropout.default, x, 0.5, True) == 2 * N  # mask mul, 1/(1-p) scale
    assert flops(aten.native_dropout.default, x, 0.5, False) == 0
    mask = meta(*X, dtype=torch.bool)
    assert flops(aten.native_dropout_backward.default, x, mask, 2.0) == 2 * N


def test_dropout_in_training_and_eval() -> None:
    model = nn.Sequential(nn.Linear(5, 5, bias=False), nn.Dropout(0.5))
    # training: bernoulli_ (0), div_ by 1 - p over the mask (N), mask * x (N)
    train = memflops.analyze(model, X, mode="train")
    assert next(row for row in train.modules if row.path == "1").forward.flops == 2 * N
    # eval: nothing is dispatched
    infer = memflops.analyze(model, X)
    assert next(row for row in infer.modules if row.path == "1").forward.flops == 0
