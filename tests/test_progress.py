"""Progress of batch sweeps and fits (memflops.progress): the callback, and its display."""

from __future__ import annotations

import io
from pathlib import Path

import memflops
from memflops.progress import progress_display

TINY = f"{Path(__file__).parent / 'fixtures' / 'tiny_model.py'}:tiny"


def test_each_analysis_of_a_sweep_and_a_fit_is_reported() -> None:
    calls: list[tuple[str, int, int | None]] = []
    report = memflops.analyze(
        TINY, (2, 3, 4, 4), batch_sweep=[1, 2, 4], fit="1MiB",
        progress=lambda task, done, total: calls.append((task, done, total)),
    )
    assert report.fit is not None
    sweep = [c for c in calls if c[0] == "batch sweep"]
    fit = [c for c in calls if c[0] == "fit"]
    assert sweep == [("batch sweep", 1, 3), ("batch sweep", 2, 3), ("batch sweep", 3, 3)]
    # one call per analysis the fit says it ran
    assert fit == [("fit", n, None) for n in range(1, report.fit.analyses + 1)]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_drawn_on_a_terminal_only() -> None:
    with progress_display(stream=io.StringIO()) as callback:
        assert callback is None  # a pipe or a file: nothing
    with progress_display(quiet=True, stream=_Terminal()) as callback:
        assert callback is None
    terminal = _Terminal()
    with progress_display(stream=terminal) as callback:
        assert callback is not None
        callback("batch sweep", 1, 2)
        callback("batch sweep", 2, 2)
    assert "batch sweep: 2 analysed" in terminal.getvalue()
