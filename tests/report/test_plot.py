"""The charts as matplotlib figures (report.plot) and as files from `--plot`."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from memflops import cli
from memflops.errors import UsageError
from memflops.layerspec.analyze import analyze_spec
from memflops.report import charts, plot
from memflops.report.model import Report

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[2]
VGG16 = str(ROOT / "examples" / "vgg16.yaml")
TINY = f"{ROOT / 'tests' / 'fixtures' / 'tiny_model.py'}:tiny"


def test_timeline_figure(handmade_report: Report) -> None:
    """The outline of the stacked kinds reaches the peak, 5.5 GiB, at the peak's op (4)."""
    ax = handmade_report.plot_timeline().axes[0]
    outline = ax.lines[0]
    assert max(outline.get_ydata()) == 5.5  # GiB
    assert ax.get_ylabel() == "bytes live (GiB)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "capacity 80.00 GiB (above the chart)" in labels
    assert "activations 3.00 GiB" in labels
    peak_line = ax.lines[1]
    assert list(peak_line.get_xdata()) == [4, 4]


def test_modules_figure_is_the_article_figure() -> None:
    """VGG-16: the longest parameter bar is classifier.0, the longest FLOP bars convolutions."""
    fig = analyze_spec(VGG16).plot_modules()
    params_ax, flops_ax = fig.axes
    names = [t.get_text() for t in params_ax.get_yticklabels()]
    params = [bar.get_width() for bar in params_ax.patches]
    flops = [bar.get_width() for bar in flops_ax.patches]
    assert names[params.index(max(params))] == "classifier.0 (Linear)"
    assert params[names.index("classifier.0 (Linear)")] == 102_764_544  # 25088 x 4096 + 4096
    assert names[flops.index(max(flops))].endswith("(Conv2d)")


def test_sweep_figure(handmade_report: Report) -> None:
    ax = handmade_report.plot_sweep().axes[0]
    peaks = ax.collections[0].get_offsets().tolist()
    assert peaks == [[8, 5.0], [16, 10.0]]  # GiB
    assert ax.get_xscale() == "log"  # sizes 8, 16 and a fit of 128: 16x apart


def test_missing_data_is_a_usage_error(handmade_report: Report) -> None:
    bare = replace(handmade_report, memory_timeline=None, sweep=None, fit=None)
    with pytest.raises(UsageError, match="give --batch-sweep or --fit"):
        plot.figure(bare, "sweep")
    with pytest.raises(UsageError, match="no memory timeline"):
        bare.plot_timeline()


def test_png_from_the_command_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A real picture: 10 x 4.6 inches at 150 dpi, mostly background, the kinds' colours drawn."""
    image = pytest.importorskip("PIL.Image")
    target = tmp_path / "timeline.png"
    code = cli.main(["analyze", TINY, "--input", "2x3x4x4", "--mode", "train",
                     "--plot", "timeline", "-o", str(target)])
    assert (code, capfd.readouterr()) == (0, ("", ""))
    assert target.stat().st_size > 20_000
    with image.open(target) as png:
        assert png.size == (1500, 690)
        colours = {c: n for n, c in png.convert("RGB").getcolors(maxcolors=1 << 24)}
    area = 1500 * 690
    assert colours.get((255, 255, 255), 0) < area * 0.95  # not blank
    for name in ("params", "activations", "grads"):
        hex_colour = charts.KIND_COLORS[name]
        rgb = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
        assert colours.get(rgb, 0) > 500, name


def test_svg_from_the_command_line_needs_no_matplotlib(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plot, "_figure", lambda *a: pytest.fail("matplotlib used for SVG"))
    target = tmp_path / "modules.svg"
    assert cli.main(["analyze", VGG16, "--plot", "modules", "-o", str(target)]) == 0
    root = ET.parse(target).getroot()
    assert root.get("data-chart") == "modules"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--plot", "timeline"], "--plot timeline: give -o FILE (.svg, .png or .pdf)"),
        (["--plot", "timeline", "-o", "x.txt"], "expected a .svg, .png or .pdf file"),
        (["--plot", "modules", "--format", "html", "-o", "x.svg"],
         "--plot modules writes a chart, not a report: leave out --format html"),
        (["--plot", "sweep", "-o", "x.svg"], "no batch sweep or fit in this report"),
    ],
)
def test_plot_usage_errors(
    argv: list[str], message: str, capfd: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code = cli.main(["analyze", VGG16, *argv])
    out, err = capfd.readouterr()
    assert (code, out) == (2, "")
    assert message in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # nothing written
