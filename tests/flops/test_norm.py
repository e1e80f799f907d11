"""Normalisation rules: the article's batch norm (5 per element in training, 2 in eval,
params 2*C), layer/group/RMS norm and their backward ops."""

from __future__ import annotations

from torch import nn

import memflops
from memflops.flops.registry import Shape

from ._meta import aten, cost, flops, meta, rule_of

B, C, H, W = 2, 8, 5, 6
N = B * C * H * W  # 2 * 8 * 5 * 6 = 480 elements


def bn_row(report: memflops.Report) -> memflops.report.model.ModuleRow:
    return next(row for row in report.modules if row.path == "")


def test_batch_norm_train_is_five_per_element_and_2c_params() -> None:
    report = memflops.analyze(nn.BatchNorm2d(C), (B, C, H, W), mode="train")
    assert report.totals.params == 2 * C  # gamma and beta: 16
    # 5 * B*H*W*C = 5 * 480 = 2400; num_batches_tracked += 1 is an int64 add: 0 FLOPs
    # (was 5 * N + 1 == 2401)
    assert report.totals.costs.forward.flops == 5 * N == 2400
    assert report.totals.costs.forward.macs == 0


def test_batch_norm_without_running_stats_is_exactly_five_per_element() -> None:
    bn = nn.BatchNorm2d(C, track_running_stats=False)
    report = memflops.analyze(bn, (B, C, H, W), mode="train")
    assert report.totals.costs.forward.flops == 5 * N == 2400


def test_batch_norm_eval_is_two_per_element() -> None:
    report = memflops.analyze(nn.BatchNorm2d(C), (B, C, H, W), mode="inference")
    assert report.totals.params == 2 * C
    assert bn_row(report).forward.flops == 2 * N == 960  # sub, div per element


def test_batch_norm_backward_without_input_grad() -> None:
    # The model input needs no gradient: grad_weight (x_hat 2 + mul, add 2) + grad_bias 1.
    report = memflops.analyze(nn.BatchNorm2d(C), (B, C, H, W), mode="train")
    assert report.totals.costs.backward.flops == (4 + 1) * N == 2400


def test_native_batch_norm_overloads() -> None:
    x, c = meta(B, C, H, W), meta(C)
    assert flops(aten.native_batch_norm.default, x, c, c, c, c, True, 0.1, 1e-5) == 5 * N
    assert flops(aten.native_batch_norm.default, x, c, c, c, c, False, 0.1, 1e-5) == 2 * N
    # the no_stats overload has `training` at another position
    legit = aten._native_batch_norm_legit
    assert flops(legit.no_stats, x, c, c, True, 0.1, 1e-5) == 5 * N
    assert flops(legit.default, x, c, c, c, c, False, 0.1, 1e-5) == 2 * N
    assert flops(aten._native_batch_norm_legit_no_training.default, x, c, c, c, c, 0.1,
                 1e-5) == 2 * N
    assert flops(aten._batch_norm_with_update.default, x, c, c, c, c, 0.1, 1e-5) == 5 * N
    assert flops(aten._batch_norm_no_update.default, x, c, c, c, c, 0.1, 1e-5) == 2 * N
    # without running statistics (CPU kernels only) it normalises with the batch's
    no_update = rule_of("aten._batch_norm_no_update")
    shape = Shape((B, C, H, W))
    assert no_update(shape, None, None, None, None, 0.1, 1e-5, out=shape).flops == 5 * N


def test_batch_norm_backward_counts_per_requested_gradient() -> None:
    g, x, c = meta(B, C, H, W), meta(B, C, H, W), meta(C)
    op = aten.native_batch_norm_backward.default

    def bw(train: bool, mask: list[bool]) -> int:
        return flops(op, g, x, c, c, c, c, c, train, 1e-5, mask)

    assert bw(True, [True, True, True]) == 9 * N  # x_hat 2, two sums 3, combine 4
    assert bw(True, [False, True, True]) == 5 * N  # 4 + 1
    assert bw(True, [False, False, True]) == 1 * N
    assert bw(False, [True, True, True]) == 6 * N  # 1 + 4 + 1
    assert bw(False, [True, False, False]) == 1 * N


def test_layer_norm_forward_and_backward() -> None:
    # (4, 10, 32) normalised over 32: 1280 elements
    report = memflops.analyze(nn.LayerNorm(32), (4, 10, 32), mode="train")
    elements = 4 * 10 * 32
    assert report.totals.costs.forward.flops == 5 * elements == 6400
    # no grad_input (the input needs none): grad_weight 4 (x_hat recomputed) + grad_bias 1
    assert report.totals.costs.backward.flops == 5 * elements == 6400

    g, x, w = meta(4, 10, 32), meta(4, 10, 32), meta(32)
    stats = meta(4, 10, 1)
    op = aten.native_layer_norm_backward.default
    # grad_input 9 + 1 (g * gamma) + grad_weight 2 + grad_bias 1 = 13 per element
    assert flops(op, g, x, [32], stats, stats, w, w, [True, True, True]) == 13 * elements
    # no weight: grad_input 9 only
    assert flops(op, g, x, [32], stats, stats, None, None, [True, False, False]) == 9 * elements


def test_group_norm_forward_and_backward() -> None:
    report = memflops.analyze(nn.GroupNorm(2, C), (B, C, H, W), mode="inference")
    assert report.totals.costs.forward.flops == 5 * N == 2400
    g, x, w, stats = meta(B, C, H, W), meta(B, C, H, W), meta(C), meta(B, 2)
    op = aten.native_group_norm_backward.default
    assert flops(op, g, x, stats, stats, w, B, C, H * W, 2, [True, True, True]) == 13 * N


def test_fused_rms_norm() -> None:
    x, w = meta(3, 7, 16), meta(16)
    elements = 3 * 7 * 16  # 336
    assert flops(aten._fused_rms_norm.default, x, [16], w, 1e-6) == 3 * elements
    g, rstd = meta(3, 7, 16), meta(3, 7, 1)
    op = aten._fused_rms_norm_backward.default
    # grad_input 6 + 1 (weight) + grad_weight 2 = 9 per element
    assert flops(op, g, x, [16], rstd, w, [True, True]) == 9 * elements
    assert flops(op, g, x, [16], rstd, w, [False, True]) == 3 * elements


def test_weight_norm_counted_per_row() -> None:
    v, g = meta(8, 3, 5), meta(8, 1, 1)  # 8 rows of 15
    rows, per_row = 8, 15
    # per row: 15 squares + 14 adds + 1 root (the norm), 1 divide (g / norm), 15 multiplies
    forward = rows * (per_row + (per_row - 1) + 1 + 1 + per_row)
    assert cost(aten._weight_norm_interface.default, v, g, 0).flops == forward == 368
    w, norms = aten._weight_norm_interface.default(v, g, 0)
    # per row: grad_w * v 15, sum 14, / norm 1, g / norm 1, grad_g / norm 1, then
    # v * (grad_g / norm) 15, grad_w - that 15, times g / norm 15
    backward = rows * (15 + 14 + 1 + 1 + 1 + 15 + 15 + 15)
    got = cost(aten._weight_norm_interface_backward.default, w, v, g, norms, 0)
    assert got.flops == backward == 616
