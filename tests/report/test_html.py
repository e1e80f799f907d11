"""The HTML renderer (report.html): self-contained, every section and chart its data calls for,
a well-formed collapsible tree, notebooks; and the page as headless Chromium renders it."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest

from memflops.layerspec.analyze import analyze_spec
from memflops.report import charts
from memflops.report.html import html_fragment, render_html
from memflops.report.model import Report

from .browser import find_chromium, open_page

ROOT = Path(__file__).resolve().parents[2]
VOID = {"meta", "br", "hr", "img", "input", "link"}


class _Tags(HTMLParser):
    """Checks that every element is closed in order; collects attributes of interest."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.charts: list[str] = []
        self.titles: list[str] = []
        self.details = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "svg":
            self.charts.append(found.get("data-chart") or "")
        if tag == "details":
            self.details += 1
        if tag == "span" and found.get("class") == "name" and found.get("title"):
            self.titles.append(found["title"] or "")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass  # <rect .../>: nothing to close

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def _parse(page: str) -> _Tags:
    tags = _Tags()
    tags.feed(page)
    tags.close()
    assert tags.errors == [] and tags.stack == []
    return tags


@pytest.fixture(scope="module")
def vgg16() -> Report:
    return analyze_spec(ROOT / "examples" / "vgg16.yaml")


def test_self_contained(handmade_report: Report) -> None:
    """Nothing is fetched: no script, stylesheet link, image, font or URL but the SVG namespace."""
    page = render_html(handmade_report)
    for needle in ("<script", "<link", "<img", "src=", "url(", "@import", "@font-face"):
        assert needle not in page
    assert set(re.findall(r"https?://[^\"'\s)]+", page)) == {"http://www.w3.org/2000/svg"}
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page


def test_every_chart_with_data_and_none_without(
    handmade_report: Report, tiny_report: Report, vgg16: Report
) -> None:
    assert _parse(render_html(handmade_report)).charts == [
        "timeline", "modules", "sweep", "roofline"]
    assert _parse(render_html(tiny_report)).charts == ["timeline", "modules"]
    assert _parse(render_html(vgg16)).charts == ["modules"]  # a layer list has no timeline
    bare = replace(handmade_report, memory_timeline=None, sweep=None, fit=None, timing=None)
    assert _parse(render_html(bare)).charts == ["modules"]


def test_the_tree_holds_every_module(handmade_report: Report) -> None:
    tags = _parse(render_html(handmade_report))
    assert tags.titles == ["(root)", "encoder", "encoder.0", "encoder.0.act", "head", "unused"]
    assert tags.details == 3  # (root), encoder and encoder.0 have children


def test_sections_state_the_report_numbers(handmade_report: Report) -> None:
    page = render_html(handmade_report)
    for shown in (
        "1.23 M", "1,234,567",  # parameters
        "18.40 M", "18,401,800",  # FLOPs per step
        "5.50 GiB", "5,905,580,032 B",  # the peak
        "backward phase, op aten.mm, module encoder.0",
        "Fitted: peak = 0 B + 640.00 MiB (671,088,640 B) x batch.",
        "batch 129", "aten.my_op", "rule failed: IndexError: tuple index",
        "parameter head.weight is the same tensor as encoder.0.weight: counted once",
    ):
        assert shown in page, shown


def test_time_allocator_and_checkpointing_sections(handmade_report: Report) -> None:
    """What the table shows with --gpu, a simulated allocator and checkpointing, in the page:
    cards, the time section, reserved memory, the checkpointing section, the sweep's and the
    fit's times, and the module tree's bytes and time columns."""
    page = render_html(handmade_report)
    for shown in (
        "step time", "13.00 ms", "on Test GPU",  # 4 + 0.1 + 8 + 0.9 ms
        "615/s",  # 8 samples / 13 ms = 615.4
        "MFU", "0.0%",  # 18e6 FLOPs / (13 ms x 200 TFLOP/s)
        "device total", "6.50 GiB",
        "Time on Test GPU (80.00 GiB, 1000 GB/s): a roofline per op",
        "compute 62%, memory 31%, overhead 8% of the time (40 kernels)",  # 8, 4, 1 of 13 ms
        "reserved (caching allocator)", "6.00 GiB (6,442,450,944 B)",
        "448.00 MiB free in 12 segments",
        "Activation checkpointing", "1: encoder", "4,000,000 (4.00 M) FLOPs in backward",
        "3.00 GiB (3,221,225,472 B) with checkpointing, 4.00 GiB (4,294,967,296 B) without",
        "of which recomputed forward",
        "<th class=\"num\">reserved</th>", "<td class=\"num\">842.1</td>",
        "Throughput saturates at batch 8", "step 150.00 ms, 853.3 samples/s",
        "bytes fwd", "time bwd", "6.00 ms",  # encoder's backward
    ):
        assert shown in page, shown


def test_no_section_without_its_data(handmade_report: Report) -> None:
    memory = replace(handmade_report.totals.memory, reserved=None, device_total=None)
    bare = replace(handmade_report, timing=None, checkpointing=None, sweep=None, fit=None,
                   memory_detail=replace(handmade_report.memory_detail, allocator=None),
                   totals=replace(handmade_report.totals, memory=memory))
    page = render_html(bare)
    for absent in ("Time on", "on Test GPU", "Activation checkpointing", "reserved (caching",
                   "device total", "time fwd", "MFU"):
        assert absent not in page, absent


def test_text_is_escaped(handmade_report: Report) -> None:
    report = replace(handmade_report, model="<script>x</script>", warnings=("a < b & c",))
    page = render_html(report)
    assert "<script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "a &lt; b &amp; c" in page


def test_notebook_display(handmade_report: Report) -> None:
    fragment = html_fragment(handmade_report)
    assert handmade_report._repr_html_() == fragment
    _, _, body = fragment.partition("</style>\n")
    assert body.startswith('<div class="memflops">') and body in render_html(handmade_report)
    styles = re.findall(r"^(\.[\w-]+)", html_fragment(handmade_report), re.MULTILINE)
    assert styles and set(styles) == {".memflops"}  # nothing outside the report is styled
    text = repr(handmade_report)
    assert text.splitlines()[:2] == [
        "<memflops Report: handmade>",
        "  mode train · optimizer adam · precision bfloat16 · convention exact · "
        "inputs input[0]=8x128:bfloat16",
    ]
    assert text.splitlines()[-1] == "  6 module(s), 2 uncounted op kind(s), 2 warning(s)"
    assert "  params 1,234,567 (1.23 M)" in text
    assert "  whole step 18,401,800 (18.40 M) FLOPs" in text
    assert "  peak memory 5.50 GiB (backward phase, op aten.mm, module encoder.0)" in text
    assert "  largest batch that fits 80.00 GiB: 128" in text


# --- in a real browser ---------------------------------------------------------------------

CHART_BOXES = """JSON.stringify([...document.querySelectorAll('svg.chart')].map(s => {
  const r = s.getBoundingClientRect();
  return {chart: s.dataset.chart, x: r.x, y: r.y + window.scrollY, w: r.width, h: r.height,
          marks: s.querySelectorAll('rect, path, circle, line').length,
          texts: s.querySelectorAll('text').length};
}))"""


DRAWN = {
    "timeline": [charts.KIND_COLORS["activations"], charts.KIND_COLORS["temporaries"]],
    "modules": [charts.PARAMS_COLOR, charts.FLOPS_COLOR],
    "sweep": [charts.PARAMS_COLOR, charts.CAPACITY, charts.THROUGHPUT_COLOR],
    "roofline": [charts.POINT_COLOR],
}
"""Colours each chart must show in the screenshot: its areas, bars, points and lines."""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs the Debian package")
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    return path


@pytest.mark.parametrize("which", ["handmade", "vgg16"])
def test_page_renders_in_chromium(
    which: str, chromium: str, handmade_report: Report, vgg16: Report, tmp_path: Path
) -> None:
    """The page as a browser draws it: every chart laid out, large and drawn (pixels that are
    not the background), no console message, no request but the page's own file."""
    image = pytest.importorskip("PIL.Image")
    import json

    report = handmade_report if which == "handmade" else vgg16
    page_path = tmp_path / f"{which}.html"
    page_path.write_text(render_html(report), encoding="utf-8")
    page = open_page(page_path, width=1200, expression=CHART_BOXES, binary=chromium)
    shot_path = Path(os.environ.get("MEMFLOPS_SCREENSHOTS", tmp_path)) / f"{which}.png"
    shot_path.write_bytes(page.screenshot)

    assert page.console == []
    assert page.requests == [page_path.resolve().as_uri()]
    boxes = json.loads(page.value)
    expected = (["timeline", "modules", "sweep", "roofline"] if which == "handmade"
                else ["modules"])
    assert [b["chart"] for b in boxes] == expected
    with image.open(shot_path) as shot:
        shot = shot.convert("RGB")
        assert shot.width == 1200 and shot.height > 1500
        for box in boxes:
            assert box["w"] > 800 and box["h"] > 80 and box["marks"] > 3, box
            crop = shot.crop((int(box["x"]), int(box["y"]), int(box["x"] + box["w"]),
                              int(box["y"] + box["h"])))
            colours = {colour: n for n, colour in crop.getcolors(maxcolors=1 << 24)}
            area = crop.width * crop.height
            ink = area - colours.get((255, 255, 255), 0)
            assert ink > area // 50, (box["chart"], ink, area)
            for colour in DRAWN[box["chart"]]:  # the data's marks, not only axes and text
                rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
                assert colours.get(rgb, 0) > 40, (box["chart"], colour)


def test_parallel_section(handmade_report: Report) -> None:
    """The Parallel section shows the rank and its communication (exact bytes)."""
    from memflops.report.model import CollectiveRow, Parallel

    # an all-gather of 2 GiB over 8 ranks: each sends 7/8 of it, 1,879,048,192 B
    rows = (CollectiveRow("all_gather", 2 * 2**30, "fsdp", 8, "forward", "layers.0",
                          1_879_048_192),)
    par = Parallel("fsdp=8", 8, 0, "captured", ("",), (("sharded_params", 2**30),), rows)
    page = render_html(replace(handmade_report, parallel=par))
    assert "Parallel" in page and "rank 0&#x27;s of 8 (captured)" in page
    assert "1.75 GiB (1,879,048,192 B) sent per step" in page
    assert "Parallel" not in render_html(replace(handmade_report, parallel=None))
