"""Data movement is free; accumulating writes cost one add per value."""

from __future__ import annotations

import torch

from memflops.flops import rules

from ._meta import aten, flops, meta


def test_movement_and_creation_are_zero_with_a_reason() -> None:
    x = meta(2, 3, 4)
    assert flops(aten.clone.default, x) == 0
    assert flops(aten.cat.default, [x, x], 1) == 0
    assert flops(aten.constant_pad_nd.default, x, [1, 1]) == 0
    assert flops(aten.ones_like.default, x) == 0
    assert flops(aten.bernoulli_.float, x, 0.5) == 0
    for rule in rules():
        if rule.family == "data" and rule.formula.startswith("0 ("):
            assert len(rule.formula) > len("0 ()"), rule.ops  # every zero says why


def test_accumulating_writes() -> None:
    x = meta(6, 4)
    idx = meta(3, dtype=torch.long)
    values = meta(3, 4)
    # x[idx] += values: 3 rows of 4 positions = 12 adds; plain assignment is free
    assert flops(aten.index_put.default, x, [idx], values, True) == 12
    assert flops(aten.index_put.default, x, [idx], values, False) == 0
    # scatter_add of a (2, 4) index: 8 adds
    index = meta(2, 4, dtype=torch.long)
    assert flops(aten.scatter_add.default, x, 0, index, meta(2, 4)) == 8
    assert flops(aten.scatter.src, x, 0, index, meta(2, 4)) == 0
    # index_add of 3 source rows of 4: 12
    assert flops(aten.index_add.default, x, 0, idx, values) == 12


def test_padding_backward_adds_each_gradient() -> None:
    g, x = meta(1, 2, 6, 6), meta(1, 2, 4, 4)
    # 72 gradients, each added into the input element it was copied from
    assert flops(aten.reflection_pad2d_backward.default, g, x, [1, 1, 1, 1]) == 72
