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


def test_sweep_figure_with_reserved_and_throughput(handmade_report: Report) -> None:
    """Reserved rings beside the allocated dots (5.5 and 11 GiB); below, samples/s (800 and
    842.1), the fit's 853.3/s at 128 and the saturation line at 8."""
    memory_ax, throughput_ax = handmade_report.plot_sweep().axes
    reserved = [c for c in memory_ax.collections if c.get_label() == "reserved (caching allocator)"]
    assert reserved[0].get_offsets().tolist() == [[8, 5.5], [16, 11.0]]
    line = throughput_ax.lines[0]
    assert list(line.get_xdata()) == [8, 16] and list(line.get_ydata()) == [800.0, 16 / 0.019]
    assert list(throughput_ax.lines[1].get_xdata()) == [8, 8]  # saturates at 8
    labels = [t.get_text() for t in throughput_ax.get_legend().get_texts()]
    assert "largest that fits: 853/s" in labels and "saturates at batch 8" in labels


def test_roofline_figure(handmade_report: Report) -> None:
    """The points at (12/9 FLOPs/B, 12e6 / 9 ms) and (6.4/3, 6.4e6 / 3 ms), log-log."""
    ax = handmade_report.plot_roofline().axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    (x0, y0), (x1, y1) = ax.collections[0].get_offsets().tolist()
    assert [x0, y0, x1, y1] == pytest.approx([12 / 9, 12e6 / 0.009, 6.4 / 3, 6.4e6 / 0.003])
    labels = [t.get_text() for t in ax.texts]
    assert "bf16 tensor peak 200 TFLOP/s" in labels and "fp32 vector peak 20 TFLOP/s" in labels


def test_missing_data_is_a_usage_error(handmade_report: Report) -> None:
    bare = replace(handmade_report, memory_timeline=None, sweep=None, fit=None)
    with pytest.raises(UsageError, match="give --batch-sweep or --fit"):
        plot.figure(bare, "sweep")
    with pytest.raises(UsageError, match="no memory timeline"):
        bare.plot_timeline()
    with pytest.raises(UsageError, match=r"no time model in this report: give --gpu NAME"):
        replace(handmade_report, timing=None).plot_roofline()


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
    monkeypatch.setattr(plot, "new_figure", lambda *a: pytest.fail("matplotlib used for SVG"))
    target = tmp_path / "modules.svg"
    assert cli.main(["analyze", VGG16, "--plot", "modules", "-o", str(target)]) == 0
    root = ET.parse(target).getroot()
    assert root.get("data-chart") == "modules"


def test_roofline_svg_from_the_command_line(tmp_path: Path) -> None:
    """The tiny model timed on an A100: its conv and fc on the roofline, the roofs labelled."""
    target = tmp_path / "roofline.svg"
    assert cli.main(["analyze", TINY, "--input", "2x3x4x4", "--gpu", "A100 80GB SXM",
                     "--plot", "roofline", "-o", str(target)]) == 0
    root = ET.parse(target).getroot()
    assert root.get("data-chart") == "roofline"
    tips = ["".join(c.itertext()) for c in root.iter("{http://www.w3.org/2000/svg}circle")]
    assert sorted(t.partition(":")[0] for t in tips) == ["conv (Conv2d)", "fc (Linear)"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--plot", "timeline"], "--plot timeline: give -o FILE (.svg, .png or .pdf)"),
        (["--plot", "timeline", "-o", "x.txt"], "expected a .svg, .png or .pdf file"),
        (["--plot", "modules", "--format", "html", "-o", "x.svg"],
         "--plot modules writes a chart, not a report: leave out --format html"),
        (["--plot", "sweep", "-o", "x.svg"], "no batch sweep or fit in this report"),
        (["--plot", "roofline", "-o", "x.svg"], "no time model in this report: give --gpu"),
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
