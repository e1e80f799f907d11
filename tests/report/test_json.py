"""The JSON renderer (report.json): golden files."""

from __future__ import annotations

import json
from collections.abc import Callable

from memflops.report.json import render_json
from memflops.report.model import (
    Report,
)


def test_tiny_json(tiny_report: Report, golden: Callable[[str, str], None]) -> None:
    rendered = render_json(tiny_report)
    assert json.loads(rendered) == tiny_report.to_dict()
    golden("tiny.json", rendered)


def test_handmade_json(golden: Callable[[str, str], None], handmade_report: Report) -> None:
    golden("handmade.json", render_json(handmade_report))
