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
    near = replace(handmade_report, fit=None)
    assert "batch" in _texts(_svg(charts.sweep_chart(near)))


def test_no_chart_without_its_data(handmade_report: Report) -> None:
    bare = replace(handmade_report, memory_timeline=None, sweep=None, fit=None)
    assert charts.timeline_chart(bare) is None
    assert charts.sweep_chart(bare) is None
    assert [name for name, _, _ in charts.charts(bare)] == ["modules"]


@pytest.mark.parametrize("name", ["timeline", "modules", "sweep"])
def test_charts_use_no_ids(handmade_report: Report, name: str) -> None:
    """No id: several reports in one notebook cannot clash."""
    svg = dict((n, s) for n, _, s in charts.charts(handmade_report))[name]
    assert not re.search(r"\bid=", svg)
