"""The advice as GitHub-flavoured Markdown, for PR comments and design documents.

The same content as the terminal table (`advisor/table.py`), in the same words
(`advisor/text.py`): the header, the measured changes ranked as a GitHub table, then
the sections. It reads the typed `Advice` and computes nothing; bytes in binary units
(1 GiB = 2^30 B), FLOPs with decimal prefixes (1 G = 10^9).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memflops.advisor import text
from memflops.report.markdown import cell, table

if TYPE_CHECKING:
    from memflops.advisor.advice import Advice


def render_advice_markdown(advice: Advice) -> str:
    """The advice as Markdown."""
    rows = [[row[name] for name in text.COLUMNS] for row in text.ranked_rows(advice)]
    parts = [
        f"# memflops advice: `{advice.model}`",
        " · ".join(cell(fact) for fact in text.facts(advice)),
        "## Changes, measured",
        f"Every row is a real analysis of the changed model or step. {text.UNITS}",
        table(text.COLUMNS, rows, text.NUMERIC),
    ]
    for section in text.sections(advice):
        bullet = "- " if section.bulleted else ""
        lines = [f"{bullet}{cell(line)}" for line in section.lines]
        joiner = "\n" if section.bulleted else "\n\n"
        parts.append(f"## {cell(section.title)}\n\n" + joiner.join(lines))
    return "\n\n".join(parts) + "\n"
