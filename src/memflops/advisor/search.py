"""Make it fit: the cheapest set of changes whose analysed peak fits a budget.

Cheapest means, in this order: fewest rewrites of the architecture (removing BN, a new
head, factorised convolutions: the model must be retrained), then fewest changes of the
training recipe that alter the numbers (precision, optimizer), so function-preserving
changes are tried first; then the least recomputation and added step FLOPs, then the
fewest changes. Combinations keep at most one change of a group (one
optimizer, one precision, one rewrite of the convolutions).

Savings do not add (checkpointing shrinks the activations that bf16 would have halved),
so a combination is never judged by its parts: the sum of its parts' savings only
orders and prunes the candidates (a combination whose summed saving cannot reach the
budget is skipped), and every combination the answer names is analysed as a whole. If no
combination fits, the closest analysed one is returned with `fits` False.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

from memflops.advisor.advice import FitResult, Measured

MAX_ANALYSES = 12
"""Combinations analysed at most before the search gives up and reports the closest."""
MAX_CANDIDATES = 14
"""The candidates kept, largest saving first (2^14 combinations are ordered, not analysed)."""


@dataclass(frozen=True)
class Candidate:
    """A change measured alone: its name, group, whether it keeps the function, and its
    deltas to the baseline."""

    name: str
    group: str
    preserves_function: bool
    rewrites_model: bool
    """An architecture change that alters the function (the model must be retrained)."""
    peak_delta: int
    added_cost: float
    """What it adds to the step: seconds on the accelerator when the analyses are timed,
    else step FLOPs (recomputation included); 0 when it removes some."""
    measured: Measured


Analyse = Callable[[tuple[str, ...]], Measured | None]
"""Analyses a combination of changes (by name, in registry order); None when it failed."""


def cheapest_fit(
    baseline: Measured, capacity: int, candidates: Sequence[Candidate], analyse: Analyse,
) -> FitResult:
    """The cheapest combination of `candidates` whose analysed peak is at most `capacity`."""
    if baseline.peak <= capacity:
        return FitResult(capacity, True, (), baseline, (), "the step fits as it is")
    useful = sorted((c for c in candidates if c.peak_delta < 0), key=lambda c: c.peak_delta)
    useful = useful[:MAX_CANDIDATES]
    if not useful:
        return FitResult(capacity, False, (), None, (),
                         "no change the search may combine lowers the peak (a smaller batch "
                         "or input, and a layout over several GPUs, are reported above, never "
                         "chosen)")
    tried: list[tuple[tuple[str, ...], int]] = []
    best: tuple[tuple[str, ...], Measured] | None = None
    analyses = 0
    for combo in _by_cost(useful):
        if baseline.peak + sum(c.peak_delta for c in combo) > capacity:
            continue  # even adding the savings, it cannot reach the budget
        names = tuple(c.name for c in combo)
        if len(combo) == 1:
            measured: Measured | None = combo[0].measured
        else:
            if analyses == MAX_ANALYSES:
                break
            analyses += 1
            measured = analyse(names)
        if measured is None:
            continue
        tried.append((names, measured.peak))
        if best is None or measured.peak < best[1].peak:
            best = (names, measured)
        if measured.peak <= capacity:
            return FitResult(capacity, True, names, measured, tuple(tried))
    most = _most_saving(useful)
    if most not in (t[0] for t in tried) and len(most) > 1:
        measured = analyse(most)
        if measured is not None:
            tried.append((most, measured.peak))
            if measured.peak <= capacity:
                return FitResult(capacity, True, most, measured, tuple(tried))
            if best is None or measured.peak < best[1].peak:
                best = (most, measured)
    if best is None:
        single = useful[0]
        best = ((single.name,), single.measured)
    return FitResult(capacity, False, best[0], best[1], tuple(tried),
                     "nothing fits: the closest combination analysed is shown")


def _by_cost(candidates: Sequence[Candidate]) -> list[tuple[Candidate, ...]]:
    """Every combination with at most one candidate per group, cheapest first."""
    combos = [
        combo
        for size in range(1, len(candidates) + 1)
        for combo in combinations(candidates, size)
        if len({c.group for c in combo}) == size
    ]
    combos.sort(key=lambda combo: (
        sum(c.rewrites_model for c in combo),
        sum(not c.preserves_function for c in combo),
        sum(c.added_cost for c in combo),
        len(combo),
        sum(c.peak_delta for c in combo),
    ))
    return combos


def _most_saving(candidates: Sequence[Candidate]) -> tuple[str, ...]:
    """The largest saving of each group together."""
    best: dict[str, Candidate] = {}
    for c in candidates:
        if c.group not in best or c.peak_delta < best[c.group].peak_delta:
            best[c.group] = c
    return tuple(c.name for c in best.values())
