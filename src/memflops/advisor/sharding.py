"""Sharding the training step over several GPUs.

`fsdp-8`: FSDP2 over the 8 GPUs of one node (`--parallel fsdp=8`), parameters,
gradients and optimizer state split eight ways, each rank gathering a unit's
parameters while it runs. The numbers are rank 0's, captured by running PyTorch's own
`fully_shard` on fake tensors (`capture/parallel.py`).

`fewest-gpus`: with a budget (one GPU's memory), the fewest GPUs, and the layout,
whose rank-0 step fits it. Each strategy of `LAYOUTS` is searched with `memflops.analyze`'s
`fit_dimension="ranks"` (powers of two up to `MOST_GPUS`, each analysed under the
layout); the fewest GPUs in all wins, ties going to the first in `LAYOUTS`, which lists
them from the least communication to the most (DDP replicates and only all-reduces
gradients; ZeRO and FSDP add gathers; tensor parallel adds collectives inside every
block). The change reports the winner's analysis and names every strategy's answer.

Neither changes the model nor what a step trains on, but they take several GPUs where
the baseline takes one, so the budget search never chooses them (`searchable=False`);
the advice reports them beside the one-GPU changes. Capturing a sharded step takes
longer than a one-GPU analysis (a 70B model under FSDP2: about a minute, and
`fewest-gpus` runs several), so they are tried only when asked for: `--only fsdp-8`.
"""

from __future__ import annotations

from dataclasses import dataclass

from memflops.advisor.changes import Applied, NotApplicable, Step, change
from memflops.errors import MemflopsError

GPUS = 8
MOST_GPUS = 64
"""The most GPUs `fewest-gpus` tries (eight nodes of eight)."""
LAYOUTS = (
    ("ddp", "ddp", 1),
    ("zero=1", "ddp", 1),
    ("zero=2", "ddp", 1),
    ("fsdp", "fsdp", 1),
    ("fsdp,tp=2", "fsdp", 2),
    ("fsdp,tp=4", "fsdp", 4),
    ("fsdp,tp=8", "fsdp", 8),
)
"""(strategy, its data-parallel dimension, tensor-parallel ranks), least communication
first."""


def _trainable(step: Step) -> None:
    if not step.train:
        raise NotApplicable("inference keeps no gradients or optimizer state to shard")
    if step.options.get("parallel"):
        raise NotApplicable(f"the step is already laid out as {step.options['parallel']}")
    if not any(p.requires_grad for p in step.module.parameters()):
        raise NotApplicable("the model has no trainable parameters")


@change(
    "fsdp-8", f"sharded over {GPUS} GPUs with FSDP2 (rank 0's memory)", kind="memory",
    preserves_function=True, searchable=False, on_request=True,
)
def fsdp_8(step: Step) -> Applied:
    _trainable(step)
    return Applied(step.with_options(parallel=f"fsdp={GPUS}"),
                   note=f"one GPU -> {GPUS} (FSDP2 full shard); the numbers are one GPU's, "
                   f"and the collectives add communication time")


@dataclass(frozen=True)
class Answer:
    """One strategy's fewest GPUs under the budget: `layout` at `gpus` GPUs (0: none up to
    `MOST_GPUS`), or why it could not be laid out (`reason`)."""

    strategy: str
    gpus: int = 0
    layout: str = ""
    reason: str = ""

    def describe(self) -> str:
        if self.reason:
            return f"{self.strategy}: {self.reason}"
        if not self.gpus:
            return f"{self.strategy}: none up to {MOST_GPUS}"
        return f"{self.strategy}: {self.gpus} ({self.layout})"


def layout_at(strategy: str, dim: str, tp: int, ranks: int) -> str:
    """The `parallel` text of `strategy` with `ranks` on its data-parallel dimension."""
    if strategy.startswith("zero="):
        return f"ddp={ranks},{strategy}"
    return f"{dim}={ranks}" + (f",tp={tp}" if tp > 1 else "")


def fewest_of(step: Step, strategy: str, dim: str, tp: int) -> Answer:
    """`strategy`'s fewest GPUs whose rank-0 peak fits `step.budget`."""
    assert step.budget is not None
    try:
        report = step.analyzed(parallel=layout_at(strategy, dim, tp, MOST_GPUS // tp),
                               fit=str(step.budget), fit_dimension="ranks",
                               fit_against="allocated", batch_sweep=None)
    except MemflopsError as exc:
        reason = str(exc).split("\n")[0].split("; ")[0].removeprefix("parallel: ")
        return Answer(strategy, reason=reason)
    assert report.fit is not None
    ranks = report.fit.largest
    if not ranks:
        return Answer(strategy)
    return Answer(strategy, ranks * tp, layout_at(strategy, dim, tp, ranks))


def _listed(answers: list[Answer]) -> str:
    """Every layout's answer; consecutive layouts refused for the same reason named
    together."""
    groups: list[list[Answer]] = []
    for answer in answers:
        if groups and answer.reason and groups[-1][-1].reason == answer.reason:
            groups[-1].append(answer)
        else:
            groups.append([answer])
    return "; ".join(
        group[0].describe() if len(group) == 1
        else f"{' and '.join(a.strategy for a in group)}: {group[0].reason}"
        for group in groups)


@change(
    "fewest-gpus", "the fewest GPUs that fit the budget, and which layout", kind="memory",
    preserves_function=True, searchable=False, on_request=True,
)
def fewest_gpus(step: Step) -> Applied:
    _trainable(step)
    if step.budget is None:
        raise NotApplicable("it needs a budget: one GPU's memory (--budget \"H100 SXM\")")
    if step.analyzed().totals.memory.peak <= step.budget:
        raise NotApplicable("the step already fits the budget on one GPU")
    answers = [fewest_of(step, strategy, dim, tp) for strategy, dim, tp in LAYOUTS]
    found = [a for a in answers if a.gpus]
    listed = _listed(answers)
    if not found:
        raise NotApplicable(f"no layout fits the budget on up to {MOST_GPUS} GPUs ({listed})")
    best = min(found, key=lambda a: a.gpus)  # min keeps the first of equals: LAYOUTS order
    return Applied(step.with_options(parallel=best.layout),
                   note=f"{best.gpus} GPU(s) with {best.layout}, the fewest of: {listed}")
