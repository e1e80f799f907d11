"""Elementwise rules: counted per output element, broadcasting included."""

from __future__ import annotations

import torch

from ._meta import aten, flops, meta


def test_add_counts_broadcast_output_and_alpha() -> None:
    a, b = meta(2, 3, 4), meta(3, 1)
    # output (2, 3, 4): 24 adds
    assert flops(aten.add.Tensor, a, b) == 24
    # alpha != 1 multiplies b first: 24 * 2 = 48
    assert flops(aten.add.Tensor, a, b, alpha=2) == 48
    assert flops(aten.sub.Tensor, a, b) == 24
    assert flops(aten.add.Scalar, a, 1.5) == 24
    assert flops(aten.rsub.Scalar, a, 1.0) == 24
    # in place: the output is `a`
    assert flops(aten.add_.Tensor, a, b) == 24


def test_one_flop_ops() -> None:
    x = meta(5, 6)  # 30 elements
    for op in (aten.mul.Tensor, aten.maximum.default, aten.pow.Tensor_Tensor, aten.eq.Tensor):
        assert flops(op, x, x) == 30, op
    for op in (aten.exp.default, aten.sqrt.default, aten.rsqrt.default, aten.neg.default,
               aten.abs.default, aten.log.default, aten.reciprocal.default):
        assert flops(op, x) == 30, op
    assert flops(aten.mul.Scalar, x, 3.0) == 30
    assert flops(aten.pow.Tensor_Scalar, x, 2) == 30
    assert flops(aten.gt.Scalar, x, 0) == 30
    assert flops(aten.logical_not.default, x) == 30  # x == 0 on 30 floats
    # on bools in and out: no floating-point operation, 0 (was 30 before FLOPs were floating-point)
    assert flops(aten.logical_not.default, meta(5, 6, dtype=torch.bool)) == 0


def test_div_rounding_mode_adds_the_rounding() -> None:
    x = meta(4, 5)  # 20 elements
    assert flops(aten.div.Tensor, x, x) == 20
    assert flops(aten.div.Tensor_mode, x, x, rounding_mode="floor") == 40
    assert flops(aten.div.Tensor_mode, x, x, rounding_mode=None) == 20


def test_clamp_counts_one_compare_per_bound() -> None:
    x = meta(4, 5)
    assert flops(aten.clamp.default, x, 0.0, 6.0) == 40
    assert flops(aten.clamp.default, x, 0.0) == 20
    assert flops(aten.clamp_min.default, x, 0.0) == 20


def test_selects_are_free_and_fused_ops_count_each_step() -> None:
    x, mask = meta(4, 5), meta(4, 5, dtype=torch.bool)
    assert flops(aten.where.self, mask, x, x) == 0
    assert flops(aten.masked_fill.Scalar, x, mask, 0.0) == 0
    # lerp: sub, mul, add = 3 per element: 60
    assert flops(aten.lerp.Scalar, x, x, 0.5) == 60
    # addcmul: mul, add = 2; with value != 1 one more multiply = 3
    assert flops(aten.addcmul.default, x, x, x) == 40
    assert flops(aten.addcmul.default, x, x, x, value=0.5) == 60
    assert flops(aten.addcdiv_.default, x, x, x, value=-0.1) == 60


def test_foreach_counts_every_list_element() -> None:
    params = [meta(3, 4), meta(5)]  # 12 + 5 = 17 elements
    assert flops(aten._foreach_add_.List, params, params, alpha=-0.01) == 2 * 17
    assert flops(aten._foreach_mul_.Scalar, params, 0.9) == 17
    assert flops(aten._foreach_sqrt.default, params) == 17
    assert flops(aten._foreach_addcmul_.Scalar, params, params, params, 0.1) == 3 * 17
    assert flops(aten._foreach_addcmul_.ScalarList, params, params, params, [1, 1]) == 2 * 17
    # only the second tensor (5 elements) has a value != 1: 2 * 12 + 3 * 5 = 39
    assert flops(aten._foreach_addcmul_.ScalarList, params, params, params, [1, 2]) == 39
