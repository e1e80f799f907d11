"""The SVG charts (report.charts): drawn from the report's numbers, present only with data."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from memflops.layerspec.analyze import analyze_spec
from memflops.memory.fit import Fit
from memflops.report import charts
from memflops.report.model import Report

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


def _svg(text: str | None) -> ET.Element:
    assert text is not None
    return ET.fromstring(text)  # well-formed XML, or this raises


def _texts(svg: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]


def _bars(svg: ET.Element, colour: str) -> dict[str, float]:
    """Bar width by module path (its tooltip `path: N unit`), for the bars of one colour."""
    return {
        "".join(r.itertext()).partition(":")[0]: float(r.get("width", 0))
        for r in svg.iter(f"{SVG}rect") if r.get("fill") == colour
    }


def test_vgg16_is_the_article_figure() -> None:
    """Parameters sit in the FC layers, FLOPs in the convolutions (the reference article's
    figure): the longest parameter bar is classifier.0 (25088 x 4096 + 4096 = 102,764,544),
    the longest FLOP bars are the 3x3 convolutions at 224 and 112 pixels with 64 and 128
    channels, 3.70 GFLOPs each, and no FC layer has a FLOP bar a tenth as long."""
    report = analyze_spec(ROOT / "examples" / "vgg16.yaml")
    rows, total = report.chart_modules()
    assert total == len(rows) == 36  # 13 conv, 13 relu, 5 pool, 3 fc, 2 relu; no dropout
    svg = _svg(charts.modules_chart(report))
    params = _bars(svg, charts.PARAMS_COLOR)
    flops = _bars(svg, charts.FLOPS_COLOR)
    assert len(params) == 16 and len(flops) == 36  # ReLU and pooling have no parameters
    assert max(params, key=params.__getitem__) == "classifier.0"
    longest = max(flops.values())
    assert flops["features.2"] == longest == flops["features.7"]
    for fc in ("classifier.0", "classifier.3", "classifier.6"):
        assert flops[fc] < longest / 10
    assert "classifier.0: 102,764,544 parameters" in [
        "".join(r.itertext()) for r in svg.iter(f"{SVG}rect")
    ]
    labels = _texts(svg)
    assert "102.76 M" in labels and "3.70 G" in labels


def test_timeline_annotates_the_peak(handmade_report: Report) -> None:
    texts = _texts(_svg(charts.timeline_chart(handmade_report)))
    assert "peak 5.50 GiB" in texts
    assert "backward: aten.mm" in texts and "in encoder.0" in texts
    assert "capacity 80.00 GiB" in texts and "(above the chart)" in texts  # 80 GiB >> 5.5 GiB
    for label in ("activations", "temporaries", "optimizer state", "params"):
        assert label in texts
    assert "op sequence (8 ops)" in texts


def test_timeline_draws_a_capacity_in_range(handmade_report: Report) -> None:
    fit = Fit("batch", 6 * 2**30, 8, 5 * 2**30, 7 * 2**30, 3)
    svg = _svg(charts.timeline_chart(replace(handmade_report, fit=fit)))
    texts = _texts(svg)
    assert "capacity 6.00 GiB" in texts and "(above the chart)" not in texts
    lines = [e for e in svg.iter(f"{SVG}line") if e.get("stroke") == charts.CAPACITY]
    assert any(e.get("y1") == e.get("y2") for e in lines)  # a horizontal line across the plot


def test_sweep_log_scale_when_the_fit_is_far(handmade_report: Report) -> None:
    """Sizes 8 and 16, fit 128: 16x apart, so batch runs in powers of two."""
    texts = _texts(_svg(charts.sweep_chart(handmade_report)))
    assert "batch (log scale)" in texts
    assert {"8", "16", "32", "64", "128"} <= set(texts)
    assert "largest batch that fits: 128" in texts
    # Peaks from 4 GiB (the estimate at 8) to 80.6 GiB (at 129), 20x: memory in powers of two.
    assert "peak (log scale)" in texts and {"4 GiB", "8 GiB", "64 GiB"} <= set(texts)
    near = replace(handmade_report, fit=None)
    texts = _texts(_svg(charts.sweep_chart(near)))
    assert "batch" in texts and "peak (GiB)" in texts  # 4 to 11 GiB: linear


def test_no_chart_without_its_data(handmade_report: Report) -> None:
    assert [name for name, _, _ in charts.charts(handmade_report)] == [
        "timeline", "modules", "sweep", "roofline"]
    bare = replace(handmade_report, memory_timeline=None, sweep=None, fit=None, timing=None)
    assert charts.timeline_chart(bare) is None
    assert charts.sweep_chart(bare) is None
    assert charts.roofline_chart(bare) is None
    assert [name for name, _, _ in charts.charts(bare)] == ["modules"]
    untimed = replace(handmade_report, timing=None)
    assert "roofline" not in [name for name, _, _ in charts.charts(untimed)]


def test_timeline_relates_the_allocator_to_the_capacity(handmade_report: Report) -> None:
    """Reserved 6 GiB and the device total 6.5 GiB (+ 512 MiB of CUDA context) are drawn as
    levels beside the 5.5 GiB peak; a fit judged against the device total says so."""
    texts = _texts(_svg(charts.timeline_chart(handmade_report)))
    assert "reserved peak 6.00 GiB" in texts and "device total 6.50 GiB" in texts
    assert "held against the device total" not in texts  # the fit held the peak against it
    fit = Fit("batch", 7 * 2**30, 8, 6 * 2**30, 8 * 2**30, 3, against="reserved")
    texts = _texts(_svg(charts.timeline_chart(replace(handmade_report, fit=fit))))
    assert "capacity 7.00 GiB (held against the device total)" in texts
    untimed = replace(handmade_report, totals=replace(
        handmade_report.totals, memory=replace(handmade_report.totals.memory, reserved=None,
                                               device_total=None)))
    assert not any("reserved" in t for t in _texts(_svg(charts.timeline_chart(untimed))))


def _circles(svg: ET.Element, colour: str) -> dict[str, ET.Element]:
    """Circles of one colour with a tooltip (data, not a legend's marker), by the tooltip's
    text up to the first colon."""
    return {"".join(c.itertext()).partition(":")[0]: c
            for c in svg.iter(f"{SVG}circle") if c.get("fill") == colour and len(c)}


def test_roofline_chart(handmade_report: Report) -> None:
    """encoder.0 at 12/9 = 1.33 FLOPs/B and 12e6 / 9 ms = 1.33 GFLOP/s, 9 of the 13 ms;
    head at 6.4/3 = 2.13 FLOPs/B and 6.4e6 / 3 ms = 2.13 GFLOP/s: further right, higher up
    and smaller. Both roofs are labelled with their ridge (peak / 1,000 GB/s)."""
    svg = _svg(charts.roofline_chart(handmade_report))
    texts = _texts(svg)
    assert "bf16 tensor peak 200 TFLOP/s (ridge 200.0 FLOPs/B)" in texts
    assert "fp32 vector peak 20 TFLOP/s (ridge 20.0 FLOPs/B)" in texts
    assert "memory 1,000 GB/s" in texts
    assert "encoder.0 69.2%" in texts  # head's label would overlap it: left to its tooltip
    points = _circles(svg, charts.POINT_COLOR)
    assert set(points) == {"encoder.0 (Linear)", "head (Head)"}
    tip = "".join(points["encoder.0 (Linear)"].itertext())
    assert tip == ("encoder.0 (Linear): 1.3 FLOPs/B, 1.33 GFLOP/s, 9.00 ms, 69.2% of the step")
    encoder, head = points["encoder.0 (Linear)"], points["head (Head)"]

    def at(c: ET.Element, key: str) -> float:
        return float(c.get(key, "nan"))

    assert at(head, "cx") > at(encoder, "cx") and at(head, "cy") < at(encoder, "cy")
    assert at(encoder, "r") == 11.5 and at(head, "r") < at(encoder, "r")  # area ~ time


def test_sweep_shows_reserved_and_throughput(handmade_report: Report) -> None:
    """Reserved beside allocated at each size; below, samples/s with each step time, the
    fit's throughput at 128 and the saturation at 8 (800/s within 5% of 842.1/s)."""
    svg = _svg(charts.sweep_chart(handmade_report))
    texts = _texts(svg)
    rings = _circles(svg, "#ffffff")
    assert set(rings) == {"batch 8", "batch 16"}
    assert "".join(rings["batch 8"].itertext()) == "batch 8: reserved 5,905,580,032 B"
    assert "reserved (caching allocator)" in texts
    assert "throughput on Test GPU (samples/s; step time beside each point)" in texts
    assert "800/s, 10.00 ms" in texts and "842/s, 19.00 ms" in texts
    assert "largest that fits: 853/s, 150.00 ms" in texts
    assert any(t.startswith("saturates at batch 8: within 5% of the best") for t in texts)
    untimed = replace(handmade_report, sweep=replace(handmade_report.sweep, points=tuple(
        replace(p, time_step_s=None, samples_per_s=None, reserved=None)
        for p in handmade_report.sweep.points), saturated_at=None),  # type: ignore[union-attr]
        fit=replace(handmade_report.fit, time_step_s=None, samples_per_s=None))
    texts = _texts(_svg(charts.sweep_chart(untimed)))
    assert not any("throughput" in t or "reserved" in t for t in texts)


@pytest.mark.parametrize("name", ["timeline", "modules", "sweep", "roofline"])
def test_charts_use_no_ids(handmade_report: Report, name: str) -> None:
    """No id: several reports in one notebook cannot clash."""
    svg = dict((n, s) for n, _, s in charts.charts(handmade_report))[name]
    assert not re.search(r"\bid=", svg)
