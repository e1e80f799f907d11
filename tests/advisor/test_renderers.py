"""The advice's Markdown, HTML page, savings chart (SVG and matplotlib), notebook display
and `memflops advise --format/-o/--plot`: each states what the typed advice holds."""

from __future__ import annotations

import json
import os
import re
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import pytest

import memflops
from advisor.nets import small_net
from memflops import cli
from memflops.advisor import chart, text
from memflops.advisor.advice import Advice
from memflops.advisor.html import render_advice_html
from memflops.advisor.markdown import render_advice_markdown
from memflops.errors import UsageError
from memflops.report.charts import CAPACITY
from memflops.units import format_bytes
from report.browser import find_chromium, open_page

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "tiny_model.py"
TINY = f"{FIXTURE}:tiny"
CHANGES = ["bn-removed", "bf16", "checkpoint-blocks", "inplace-activations", "batch-halved",
           "bn-folded"]


@pytest.fixture(scope="module")
def advice() -> Advice:
    return memflops.advise(small_net(), (4, 3, 16, 16), mode="train", budget="300KiB",
                           only=CHANGES)


def _measured(advice: Advice) -> list[str]:
    return [c.name for c in advice.changes if c.measured is not None]


def test_the_savings_chart_draws_every_analysis_and_the_budget(advice: Advice) -> None:
    svg = chart.savings_chart(advice)
    assert svg is not None and 'data-chart="savings"' in svg
    names = _measured(advice)
    assert len(names) >= 4 and advice.fit is not None and advice.fit.measured is not None
    for c in advice.changes:
        if c.measured is None or c.delta is None:
            assert f">{c.name}<" not in svg  # not applicable: no row
            continue
        assert f">{c.name}<" in svg
        assert f"{format_bytes(c.measured.peak)} ({text.percent(-c.delta.peak_saved)})" in svg
        colour = (chart.SAVES if c.delta.peak < 0 else chart.COSTS if c.delta.peak > 0
                  else chart.UNCHANGED)
        assert f'fill="{colour}"><title>{c.name}: ' in svg
    assert f">{' + '.join(advice.fit.changes)}<" in svg  # the combination, analysed whole
    assert f'fill="{chart.COMBINED}">' in svg and f'stroke="{CAPACITY}"' in svg
    assert f"budget 300KiB ({format_bytes(300 * 1024)})" in svg


def test_no_chart_when_nothing_was_measured() -> None:
    nothing = memflops.advise(small_net(), (4, 3, 16, 16), mode="train", only=["bn-folded"])
    assert chart.savings_chart(nothing) is None
    with pytest.raises(UsageError, match="no change was analysed"):
        nothing.plot_savings()


class _Balanced(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag not in ("meta", "br"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_the_page_is_self_contained_and_says_what_the_table_says(advice: Advice) -> None:
    page = render_advice_html(advice)
    assert page.startswith("<!DOCTYPE html>")
    for needle in ("<script", "<link", "<img", "src=", "url(", "@import"):
        assert needle not in page
    assert set(re.findall(r"https?://[^\"'\s)]+", page)) == {"http://www.w3.org/2000/svg"}
    tags = _Balanced()
    tags.feed(page)
    assert tags.errors == [] and tags.stack == []
    for row in text.ranked_rows(advice):  # every cell of the ranked table
        for value in row.values():
            assert f">{value}<" in page.replace("&#x27;", "'") or value == ""
    for section in text.sections(advice):
        assert f"<h2>{escape(section.title)}</h2>" in page
    assert "Not applicable" in page and "bn-folded: training: BN normalises" in page
    assert "schema memflops.advice/1" in page and 'data-chart="savings"' in page
    assert advice._repr_html_().startswith("<style>") and 'data-chart="savings"' in \
        advice._repr_html_()


def test_markdown_is_a_github_table_and_the_sections(advice: Advice) -> None:
    md = render_advice_markdown(advice)
    lines = md.splitlines()
    assert lines[0] == f"# memflops advice: `{advice.model}`"
    assert "| # | change | saves | function | params | FLOPs step | recompute | peak | Δ peak " \
           "| saved for bwd | time/step |" in lines
    assert "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |" in lines
    rows = [line for line in lines if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 1 + len(_measured(advice))  # header, baseline, each change
    bn = advice.change("bn-removed")
    assert bn.delta is not None
    assert f"({-bn.delta.peak_saved:+.1%})" in md
    assert "(-0.0%)" not in md and "±0 B (+0.0%)" in md  # in-place saves nothing here
    assert "## Make it fit in 300KiB (300.00 KiB)" in md
    assert "- bn-folded: training: BN normalises" in md


def test_repr_is_a_few_readable_lines(advice: Advice) -> None:
    lines = repr(advice).splitlines()
    assert lines[0] == f"<memflops Advice: {advice.model}>"
    assert lines[1].startswith("  mode train · convention exact · baseline: ")
    best = text.best(advice)
    assert best is not None and best.delta is not None
    assert f"  largest saving: {best.name}, {best.delta.peak_saved:.1%} of the peak" in lines[3]
    assert lines[4].startswith("  Make it fit in 300KiB (300.00 KiB): fits: ")


def test_the_matplotlib_figure_has_a_bar_per_analysis(advice: Advice) -> None:
    pytest.importorskip("matplotlib")
    figure = advice.plot_savings()
    memory, work = figure.axes[:2]
    count = 1 + len(_measured(advice)) + 1  # baseline, each change, the fit's combination
    assert len(memory.patches) == len(work.patches) == count
    assert memory.patches[0].get_width() * 1 > 0


def run(capfd: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capfd.readouterr()
    return code, out, err


BASE = ("advise", TINY, "--input", "2x3x4x4", "--mode", "train", "--only", "sgd-momentum,bf16")


def test_cli_formats_by_option_and_by_extension(capfd: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    code, out, err = run(capfd, *BASE, "--format", "markdown")
    assert (code, err) == (0, "") and out.startswith("# memflops advice: ")
    page = tmp_path / "advice.html"
    code, out, err = run(capfd, *BASE, "-o", str(page))
    assert (code, out, err) == (0, "", "")
    assert page.read_text().startswith("<!DOCTYPE html>")
    doc = tmp_path / "advice.json"
    assert run(capfd, *BASE, "-o", str(doc))[0] == 0
    assert json.loads(doc.read_text())["schema"] == "memflops.advice/1"
    code, out, err = run(capfd, *BASE, "-o", str(tmp_path / "advice.csv"))
    assert code == 2 and "advise: -o" in err and "not csv" in err


def test_cli_plots_the_savings(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    svg = tmp_path / "savings.svg"
    code, out, err = run(capfd, *BASE, "--plot", "savings", "-o", str(svg))
    assert (code, out, err) == (0, "", "")
    assert svg.read_text().startswith('<?xml version="1.0" encoding="utf-8"?>\n<svg class="chart" '
                                      'data-chart="savings"')
    code, _, err = run(capfd, *BASE, "--plot", "savings")
    assert code == 2 and "--plot savings: give -o FILE" in err
    pytest.importorskip("matplotlib")
    png = tmp_path / "savings.png"
    assert run(capfd, *BASE, "--plot", "savings", "-o", str(png))[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_the_page_renders_in_chromium(advice: Advice, tmp_path: Path) -> None:
    """Drawn by a browser: the chart laid out large, the bars in their colours, no console
    message, no request but the page itself."""
    binary = find_chromium()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs the Debian package")
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    image = pytest.importorskip("PIL.Image")
    path = tmp_path / "advice.html"
    path.write_text(render_advice_html(advice), encoding="utf-8")
    box = ("JSON.stringify((() => { const r = document.querySelector('svg.chart')"
           ".getBoundingClientRect(); return {x: r.x, y: r.y + window.scrollY, w: r.width, "
           "h: r.height}; })())")
    page = open_page(path, width=1200, expression=box, binary=binary)
    shot = Path(os.environ.get("MEMFLOPS_SCREENSHOTS", tmp_path)) / "advice.png"
    shot.write_bytes(page.screenshot)
    assert page.console == [] and page.requests == [path.resolve().as_uri()]
    b = json.loads(page.value)
    assert b["w"] > 800 and b["h"] > 150
    with image.open(shot) as picture:
        crop = picture.convert("RGB").crop((int(b["x"]), int(b["y"]), int(b["x"] + b["w"]),
                                            int(b["y"] + b["h"])))
        colours = {colour: n for n, colour in crop.getcolors(maxcolors=1 << 24)}
    for colour in (chart.SAVES, chart.BASELINE, chart.COMBINED):
        rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
        assert colours.get(rgb, 0) > 100, colour
