"""The advice as one self-contained HTML page (and a notebook fragment).

The page of `render_advice_html(advice)` works offline as the report's does (styles
inline, the chart as static SVG, no script): the baseline, the savings chart
(`advisor/chart.py`), the measured changes ranked as in the terminal table, the
article's claims beside the measurements, what each change did, the changes that failed
or do not apply and why, and the combination that fits the budget. It reads the typed
`Advice` and computes nothing; bytes in binary units (1 GiB = 2^30 B), FLOPs with
decimal prefixes (1 G = 10^9), every exact number in the JSON document.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from memflops import __version__
from memflops.advisor import text
from memflops.advisor.chart import savings_chart
from memflops.advisor.schema import SCHEMA
from memflops.report.html import STYLE, card, grid_table, page, section
from memflops.units import format_bytes, format_count, format_int

if TYPE_CHECKING:
    from memflops.advisor.advice import Advice


def render_advice_html(advice: Advice) -> str:
    """The advice as one self-contained HTML document."""
    return page(f"memflops advice: {advice.model}", _body(advice))


def advice_fragment(advice: Advice) -> str:
    """The page body with its (scoped) styles, for a notebook cell."""
    return f"<style>{STYLE}</style>\n{_body(advice)}"


def _body(advice: Advice) -> str:
    parts = [
        '<div class="memflops">',
        f"<h1>memflops advice: <code>{escape(advice.model)}</code></h1>",
        '<p class="facts">' + " · ".join(escape(f) for f in text.facts(advice)) + "</p>",
        _cards(advice),
    ]
    chart = savings_chart(advice)
    if chart is not None:
        parts.append('<figure class="chart-box" data-chart="savings"><figcaption>What each '
                     f"change saves</figcaption>\n{chart}\n</figure>")
    rows = [[row[name] for name in text.COLUMNS] for row in text.ranked_rows(advice)]
    ranked = grid_table(text.COLUMNS, rows, text.NUMERIC)
    parts.append(section("Changes, measured", f'<div class="wide">{ranked}</div>',
                         "Every row is a real analysis of the changed model or step. "
                         + text.UNITS))
    for s in text.sections(advice):
        if s.bulleted:
            items = "".join(f"<li>{escape(line)}</li>" for line in s.lines)
            body = f'<ul class="warnings">{items}</ul>'
        else:
            body = "".join(f"<p>{escape(line)}</p>" for line in s.lines)
        parts.append(section(s.title, body))
    parts.append(
        f"<footer>memflops {escape(__version__)} · schema {SCHEMA} · every number is exact "
        "in the JSON document (<code>memflops advise --format json</code>)</footer>"
    )
    parts.append("</div>")
    return "\n".join(parts)


def _cards(advice: Advice) -> str:
    b = advice.baseline
    cards = [
        card("baseline peak", format_bytes(b.peak), f"{format_int(b.peak)} B"),
        card("parameters", format_count(b.params), format_int(b.params)),
        card("FLOPs per step", format_count(b.flops_step), format_int(b.flops_step)),
    ]
    best = text.best(advice)
    if best is not None and best.delta is not None:
        cards.append(card("largest saving", f"{best.delta.peak_saved:.1%} of the peak",
                          best.name))
    fit = advice.fit
    if fit is not None:
        peak = fit.measured.peak if fit.measured is not None else None
        cards.append(card("fits the budget" if fit.fits else "nothing fits the budget",
                          format_bytes(peak) if peak is not None else "-",
                          " + ".join(fit.changes) or "no change saves memory"))
    return '<div class="cards">' + "".join(cards) + "</div>"
