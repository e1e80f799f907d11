"""Queries of the Report (report.model) that renderers read."""

from __future__ import annotations

from dataclasses import replace

from pytest import approx

from memflops.flops.registry import OpCost
from memflops.report.model import ModuleRow, Report


def test_chart_modules_cuts_the_tree(handmade_report: Report) -> None:
    """At depth 3 the only module is encoder.0.act, a GELU with no counted work, so encoder.0
    (a Linear doing its own work) stands for itself; `unused` did nothing and is left out."""
    rows, total = handmade_report.chart_modules()
    assert [r.path for r in rows] == ["encoder.0", "head"] and total == 2


def test_chart_modules_goes_shallower_when_too_many(handmade_report: Report) -> None:
    """Sixty blocks of two layers: depth 2 has 120 modules, depth 1 sixty; at most 48 shown."""
    root = handmade_report.modules[0]
    rows = [root]
    for i in range(60):
        rows.append(ModuleRow(f"b{i}", "Block", 1, 2, OpCost(1, 2), OpCost(), ((1,),), 1))
        for j in range(2):
            rows.append(ModuleRow(f"b{i}.{j}", "Linear", 2, 1, OpCost(1, 1), OpCost(), ((1,),), 1))
    report = replace(handmade_report, modules=tuple(rows))
    assert len(report.chart_modules(200)[0]) == 120
    shown, total = report.chart_modules(100)
    assert [r.path for r in shown[:2]] == ["b0", "b1"] and len(shown) == total == 60
    shown, total = report.chart_modules(48)
    assert len(shown) == 48 and total == 60


def test_roofline_of_the_handmade_step(handmade_report: Report) -> None:
    """The modules of `chart_modules` (encoder.0, head), forward and backward together, on
    Test GPU (1,000 GB/s; bf16 tensor 200 TFLOP/s, fp32 vector 20 TFLOP/s)."""
    roofline = handmade_report.roofline()
    assert roofline is not None
    assert roofline.accelerator == "Test GPU" and roofline.bandwidth == 10**12
    # The MFU's unit (bf16) first, then the fp32 vector unit; ridge = peak / bandwidth.
    assert [(r.unit, r.flops_per_s, r.ridge, r.efficiency) for r in roofline.roofs] == [
        ("bf16 tensor", 200 * 10**12, 200.0, 0.75),
        ("fp32 vector", 20 * 10**12, 20.0, 0.5),
    ]
    encoder, head = roofline.points
    # encoder.0: 4,000,000 + 8,000,000 FLOPs over 3,000,000 + 6,000,000 bytes in 3 + 6 ms.
    assert (encoder.path, encoder.flops, encoder.bytes) == ("encoder.0", 12_000_000, 9_000_000)
    assert encoder.seconds == approx(0.009) and encoder.share == approx(9 / 13)  # of 13 ms
    assert encoder.intensity == 12 / 9 and encoder.attained == approx(12_000_000 / 0.009)
    # head: 2,100,000 + 4,300,000 FLOPs over 1,000,000 + 2,000,000 bytes in 1 + 2 ms.
    assert (head.path, head.flops, head.bytes) == ("head", 6_400_000, 3_000_000)
    assert head.seconds == approx(0.003) and head.share == approx(3 / 13)
    assert head.intensity == approx(6.4 / 3) and head.attained == approx(6_400_000 / 0.003)


def test_no_roofline_without_time_or_bytes(handmade_report: Report) -> None:
    assert replace(handmade_report, timing=None).roofline() is None
    assert replace(handmade_report, bytes_priced=False).roofline() is None


def test_timing_queries(handmade_report: Report) -> None:
    timing = handmade_report.timing
    assert timing is not None
    assert timing.ridge == 200.0  # bf16 200 TFLOP/s over 1,000 GB/s
    # 8, 4 and 1 ms of a 13 ms step.
    assert dict(timing.bound_shares) == approx(
        {"compute": 8 / 13, "memory": 4 / 13, "overhead": 1 / 13})


def test_roofline_scope_follows_the_mode(handmade_report: Report) -> None:
    """Generation times its modules in the prefill (the forward phase, 4 ms here), so shares
    are of it: encoder.0's 3 + 6 ms of module time over 4 ms is not a share of 13 ms."""
    assert handmade_report.roofline().scope == "forward and backward"  # type: ignore[union-attr]
    inference = replace(handmade_report, mode="inference").roofline()
    assert inference is not None and inference.scope == "forward"
    generate = replace(handmade_report, mode="generate").roofline()
    assert generate is not None and generate.scope == "prefill"
    assert generate.points[1].share == approx(0.003 / 0.004)  # head: 1 + 2 ms over 4 ms


def test_fp32_matmuls_without_tf32_have_one_fp32_roof(handmade_report: Report) -> None:
    """Matmuls in fp32 without TF32 run at the fp32 (vector) rate: one roof, at the matmul
    efficiency the time model gives them, not two at the same height."""
    timing = handmade_report.timing
    assert timing is not None
    fp32 = replace(timing, estimate=replace(timing.estimate, peak_dtype="fp32",
                                            peak_flops=20 * 10**12))
    roofline = replace(handmade_report, timing=fp32).roofline()
    assert roofline is not None
    assert [(r.unit, r.flops_per_s, r.ridge, r.efficiency) for r in roofline.roofs] == [
        ("fp32", 20 * 10**12, 20.0, 0.75)]
