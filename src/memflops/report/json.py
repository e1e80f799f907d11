"""The JSON renderer: `Report.to_dict()` (schema `memflops.report/1`), indented.

The document is described field by field in docs/report-schema.md and built
by `report/schema.py`; this module only writes it out.
"""

from __future__ import annotations

import json

from memflops.report.model import Report


def render_json(report: Report) -> str:
    """The report as a JSON document (2-space indent, trailing newline)."""
    return json.dumps(report.to_dict(), indent=2) + "\n"
