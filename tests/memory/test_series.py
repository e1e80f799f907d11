"""The memory timeline as a series (memory.series): its peak is the timeline's, exactly, and its
size is bounded."""

from __future__ import annotations

from functools import partial

import pytest
from torch import nn

import memflops
from memflops import api
from memflops.memory.fit import CUDA_CONTEXT_BYTES
from memflops.memory.series import capture_series

from . import nets


def test_one_linear_layer_by_hand() -> None:
    """Linear(4 -> 3) on a 2x4 float32 input, inference: before the step the weight and bias,
    (4 x 3 + 3) x 4 = 60 B, and the input, 2 x 4 x 4 = 32 B; addmm then writes its 2 x 3
    output, 24 B, a temporary (nothing is saved in inference): peak 60 + 32 + 24 = 116 B.
    When the step ends the output is freed (op index 1, after the last op): 92 B again."""
    report = memflops.analyze(nn.Linear(4, 3), (2, 4))
    series = report.memory_timeline
    assert series is not None
    by_kind = [dict(zip(series.kinds, p.bytes, strict=True)) for p in series.points]
    assert [p.op for p in series.points] == [-1, 0, 1]
    assert by_kind[0] == {**dict.fromkeys(series.kinds, 0), "params": 60, "inputs": 32}
    assert by_kind[1] == {**by_kind[0], "temporaries": 24}
    assert by_kind[2] == by_kind[0]
    assert series.peak_point == 1 and series.points[1].total == 116 == report.totals.memory.peak
    assert [(s.phase, s.first, s.last) for s in series.phases] == [("forward", 0, 0)]


def test_peak_is_the_timeline_peak_and_phases_cover_the_step() -> None:
    report = memflops.analyze(nets.cnn(), (8, 3, 32, 32), mode="train")
    series, detail = report.memory_timeline, report.memory_detail
    assert series is not None and detail is not None
    peak = series.points[series.peak_point]
    assert peak.total == report.totals.memory.peak
    assert dict(zip(series.kinds, peak.bytes, strict=True)) == dict(detail.peak_by_kind)
    assert report.records[peak.op].op == detail.peak_op
    assert series.points[0].op == -1 and series.points[0].total == detail.baseline
    assert series.ops == len(report.records)
    assert [s.phase for s in series.phases] == ["forward", "loss", "backward", "optimizer"]
    assert series.phases[0].first == 0 and series.phases[-1].last == series.ops - 1
    for before, after in zip(series.phases, series.phases[1:], strict=False):
        assert after.first == before.last + 1
    assert all(p.total <= peak.total for p in series.points)


def test_size_is_bounded_and_the_peak_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    full = memflops.analyze(nets.cnn(), (8, 3, 32, 32), mode="train").memory_timeline
    monkeypatch.setattr(api, "capture_series", partial(capture_series, max_points=10))
    few = memflops.analyze(nets.cnn(), (8, 3, 32, 32), mode="train").memory_timeline
    assert full is not None and few is not None
    assert full.ops == few.ops > 30 and len(full.points) > 20
    assert len(few.points) <= 10 + 1  # ten spans and the baseline
    assert few.points[few.peak_point] == full.points[full.peak_point]
    ops = [p.op for p in few.points]
    assert ops == sorted(ops)


def test_allocator_overhead_is_stated_beside_the_points() -> None:
    report = memflops.analyze(nets.cnn(), (2, 3, 16, 16), allocator_overhead=True)
    series = report.memory_timeline
    assert series is not None and series.overhead == CUDA_CONTEXT_BYTES
    assert series.points[series.peak_point].total + series.overhead == report.totals.memory.peak
    assert all(n % 512 == 0 for p in series.points for n in p.bytes)  # rounded allocations


def test_schema_field() -> None:
    doc = memflops.analyze(nn.Linear(4, 3), (2, 4)).to_dict()["memory_timeline"]
    assert doc == {
        "kinds": ["params", "buffers", "inputs", "optimizer", "kv_cache", "grads",
                  "activations", "temporaries"],
        "ops": 1,
        "overhead": 0,
        "phases": [{"phase": "forward", "first": 0, "last": 0}],
        "peak_point": 1,
        "points": [{"op": -1, "bytes": [60, 0, 32, 0, 0, 0, 0, 0]},
                   {"op": 0, "bytes": [60, 0, 32, 0, 0, 0, 0, 24]},
                   {"op": 1, "bytes": [60, 0, 32, 0, 0, 0, 0, 0]}],
    }
