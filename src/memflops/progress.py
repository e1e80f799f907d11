"""Progress of long work (batch sweeps, fits): a callback, and its display on a terminal.

`memflops.analyze(..., progress=callback)` calls `callback(task, done, total)`
after each analysis a batch sweep or a fit runs: `task` is "batch sweep" or
"fit", `done` the analyses run so far for it, `total` how many there will be
(None for a fit, whose search stops when it has proved its answer).

`progress_display(quiet=...)` is the command line's callback: a rich
progress bar on standard error when it is a terminal, nothing when it is
not (a pipe, a file, CI) or with `quiet`. The bar is transient: once the
work is done, the report is all that stays on the screen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from memflops.errors import MemflopsError, UsageError

Progress = Callable[[str, int, int | None], None]
"""callback(task, done, total): one more analysis of `task` has run."""


def counting(measure: Callable[..., Any], progress: Progress | None, task: str,
             total: int | None) -> Callable[..., Any]:
    """`measure`, reporting each call to `progress` as one more analysis of `task`."""
    if progress is None:
        return measure
    done = 0

    def reported(*args: Any) -> Any:
        nonlocal done
        result = measure(*args)
        done += 1
        try:
            progress(task, done, total)
        except MemflopsError:
            raise
        except Exception as exc:
            raise UsageError(f"progress: the callback raised {type(exc).__name__}: {exc}"
                             ) from exc
        return result

    return reported


@contextmanager
def progress_display(*, quiet: bool = False, stream: IO[str] | None = None
                     ) -> Iterator[Progress | None]:
    """A callback that draws progress on `stream` (stderr) if it is a terminal and not `quiet`;
    None otherwise."""
    import sys

    stream = sys.stderr if stream is None else stream
    if quiet or not stream.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn
    from rich.progress import Progress as Bar

    console = Console(file=stream)
    with Bar(TextColumn("{task.description}"), BarColumn(), console=console,
             transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(task: str, done: int, total: int | None) -> None:
            if task not in tasks:
                tasks[task] = bar.add_task(task, total=total)
            bar.update(tasks[task], completed=done, description=f"{task}: {done} analysed")

        yield update
