"""The registry of changes: each a name, what it saves, whether it keeps the model's
function, and `apply`, which rewrites a private copy of the model or the step's options.

A change module registers its changes with `@change(...)` on a function
`apply(step: Step) -> Applied`; a change that does not fit the model raises
`NotApplicable(reason)`. `apply` may change `step.module` in place: the driver hands
every change a deep copy of its own (`advise.py`). The order of registration
(`all_changes.py`) is the order changes are tried and combined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

from memflops.advisor.advice import ArticleClaim
from memflops.api import analyze
from memflops.capture.inputs import InputSpecs
from memflops.errors import UsageError, did_you_mean
from memflops.report.model import Report


@dataclass(frozen=True)
class Step:
    """What one analysis runs: the module, its inputs, and `memflops.analyze`'s options
    (mode, dtype, optimizer, autocast, loss, targets, ...) under their own names."""

    module: nn.Module
    inputs: InputSpecs
    options: Mapping[str, Any]
    budget: int | None = None
    """The advice's budget in bytes (`advise(budget=...)`), for changes that search
    against it; None without one."""

    @property
    def train(self) -> bool:
        return self.options.get("mode") == "train"

    def with_options(self, **changed: Any) -> Step:
        return replace(self, options={**self.options, **changed})

    def analyzed(self, **extra: Any) -> Report:
        """`memflops.analyze` of this step (its module, inputs and options, and `extra`)."""
        return analyze(self.module, as_inputs(self.inputs), **{**self.options, **extra})


def as_inputs(specs: InputSpecs) -> Any:
    """`InputSpecs` back in a form `memflops.analyze` takes (names kept)."""
    return dict(specs.kwargs) if specs.kwargs else list(specs.args)


@dataclass(frozen=True)
class Applied:
    """A change made: the new step, the module paths it touched, and a sentence about it."""

    step: Step
    modules: tuple[str, ...] = ()
    note: str = ""
    preserves_function: bool | None = None
    """For this model, when it differs from the change's own `preserves_function` (None:
    the change's): gradient accumulation keeps the function unless the model has
    BatchNorm, which normalises each micro-batch by its own statistics."""


class NotApplicable(Exception):
    """The change does not fit this model or step; the message says why."""


@dataclass(frozen=True)
class Change:
    name: str
    title: str
    kind: str
    """"memory", "flops" or "both"."""
    preserves_function: bool
    apply: Callable[[Step], Applied] = field(repr=False)
    group: str = ""
    """Changes of one group exclude each other in a combination (two optimizers, two
    precisions, two rewrites of the same convolutions)."""
    article_claim: ArticleClaim | None = None
    searchable: bool = True
    """Whether the budget search may combine it (a smaller batch or input changes the
    data, so it is reported, never chosen)."""
    copies_model: bool = True
    """False: the change only sets the step's options, the model is shared."""
    architecture: bool = False
    """It rewrites the architecture (the model must be retrained): the budget search
    takes it last."""
    on_request: bool = False
    """Tried only when named in `only` (an analysis too slow to run on every advice)."""


CHANGES: dict[str, Change] = {}


def change(
    name: str, title: str, *, kind: str, preserves_function: bool, group: str = "",
    article_claim: ArticleClaim | None = None, searchable: bool = True,
    copies_model: bool = True, architecture: bool = False, on_request: bool = False,
) -> Callable[[Callable[[Step], Applied]], Callable[[Step], Applied]]:
    """Register `apply` as the change `name` (a name is registered once)."""

    def register(apply: Callable[[Step], Applied]) -> Callable[[Step], Applied]:
        if name in CHANGES:
            raise ValueError(f"change {name!r} registered twice")
        CHANGES[name] = Change(name, title, kind, preserves_function, apply, group or name,
                               article_claim, searchable, copies_model, architecture,
                               on_request)
        return apply

    return register


def select(only: Iterable[str] | None = None, skip: Iterable[str] | None = None) -> list[Change]:
    """The registered changes, restricted to `only` and without `skip`, in registry order
    (a change `on_request` only when `only` names it); an unknown name is a usage error
    with the close names."""
    wanted = (_checked(only, "only") if only is not None
              else [name for name, c in CHANGES.items() if not c.on_request])
    skipped = set(_checked(skip, "skip")) if skip is not None else set()
    return [c for name, c in CHANGES.items() if name in wanted and name not in skipped]


def _checked(names: Iterable[str], option: str) -> list[str]:
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, Iterable) or not all(isinstance(n, str) for n in names):
        raise UsageError(f"{option}: expected names of changes such as ['bn-removed'], got "
                         f"{names!r:.60}")
    listed = [n.strip() for name in names for n in name.split(",") if n.strip()]
    for name in listed:
        if name not in CHANGES:
            raise UsageError(
                f"{option}: unknown change {name!r}{did_you_mean(name, CHANGES)} "
                f"(known: {', '.join(CHANGES)})"
            )
    return listed
