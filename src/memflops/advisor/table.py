"""The advice as text: the baseline, the measured changes ranked by peak saved, the
article's claims beside the measurements, what did not apply and why, and the fit.

It reads the typed `Advice` and computes nothing: the words and numbers are
`advisor/text.py`'s, shared with the Markdown and HTML renderers; bytes in binary
units (1 GiB = 2^30 B), FLOPs with decimal prefixes (1 G = 10^9), as the header says.
"""

from __future__ import annotations

import io

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from memflops.advisor import text
from memflops.advisor.advice import Advice
from memflops.report.text import columns_left_out

MIN_WIDTH = 100
UNLIMITED = 10_000


def render_advice(advice: Advice, *, width: int | None = None, color: bool = False) -> str:
    """The advice as a ranked table and its sections; `width` None: as wide as needed."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width or UNLIMITED, force_terminal=color,
                      color_system="standard" if color else None, no_color=not color,
                      highlight=False, markup=False, emoji=False, legacy_windows=False)
    ranked = _ranked_table(advice)
    left_out: list[str] = []
    if width is None:
        console.width = max(MIN_WIDTH, console.measure(ranked).maximum)
    else:  # a terminal narrower than the table: leave out columns rather than cut them
        unbounded = console.options.update_width(UNLIMITED)
        for name in _optional_columns(advice):
            if console.measure(ranked, options=unbounded).maximum <= width:
                break
            left_out.append(name)
            ranked = _ranked_table(advice, frozenset(left_out))
    parts: list[RenderableType] = [_header(advice), Text(""), ranked]
    if left_out:
        parts.append(Text(columns_left_out(width, left_out), style="dim"))
    for section in text.sections(advice):
        bullet = "- " if section.bulleted else ""
        parts += [Text(""), Text("\n".join([section.title,
                                            *(bullet + line for line in section.lines)]))]
    console.print(Group(*parts))
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def _header(advice: Advice) -> Text:
    head = Text()
    head.append("memflops advice: ", style="bold")
    head.append(advice.model, style="bold cyan")
    head.append("\n" + " · ".join(text.facts(advice)))
    head.append("\nEvery row is a real analysis of the changed model or step. " + text.UNITS)
    return head


def _optional_columns(advice: Advice) -> list[str]:
    """The columns a narrow terminal goes without, first to last: those with nothing in
    them, then the least asked for."""
    done = [advice.baseline, *(c.measured for c in text.measured(advice) if c.measured)]
    empty = []
    if all(m.time_step is None for m in done):
        empty.append("time/step")
    if not any(m.flops_recompute for m in done):
        empty.append("recompute")
    rest = ["saves", "saved for bwd", "params", "time/step", "recompute", "FLOPs step"]
    return empty + [name for name in rest if name not in empty]


def _ranked_table(advice: Advice, left_out: frozenset[str] = frozenset()) -> Table:
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False, show_edge=False)
    shown = [(name, numeric) for name, numeric in zip(text.COLUMNS, text.NUMERIC, strict=True)
             if name not in left_out]
    for name, numeric in shown:
        table.add_column(name, no_wrap=True, justify="right" if numeric else "left")
    for i, row in enumerate(text.ranked_rows(advice)):
        table.add_row(*(row[name] for name, _ in shown), style="bold" if i == 0 else None)
    return table
