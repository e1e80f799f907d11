"""The exceptions memflops raises; the CLI maps them to exit codes.

`UsageError` (exit 2) means the user asked for something malformed: a bad
shape string, an unknown target, an unknown option value. `AnalysisError`
(exit 1) means the request was well formed but the model could not be
analysed: its factory raised, its forward failed, it needs real data.
Every message names the bad value and, where it helps, what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MemflopsError(Exception):
    """Base class of every error memflops raises on purpose."""

    exit_code = 1


class UsageError(MemflopsError):
    """A malformed request: bad shape, unknown target, unknown option value."""

    exit_code = 2


class TargetNotFoundError(UsageError):
    """A target string that names no model, file or factory."""


class SpecError(UsageError):
    """An invalid input specification (shape string, dtype, input mapping)."""


class AnalysisError(MemflopsError):
    """The model could not be analysed."""


class FactoryError(AnalysisError):
    """The user's factory raised while building the model."""


class ForwardError(AnalysisError):
    """The model's forward (or backward) failed; the message names the module."""


class DataDependentError(ForwardError):
    """An op needs real tensor values, which meta/fake tensors do not have."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """"; did you mean a, b?" for the close matches of `name`, or "" when none is close."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(close)}?" if close else ""
