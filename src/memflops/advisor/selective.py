"""Selective checkpointing under a budget, op by op: when the cheapest fit checkpoints
every repeated block whole, keep as many ops' outputs as the budget leaves room for.

Checkpointing a block whole keeps only its input and runs its whole forward again in
backward. Under PyTorch's selective checkpointing, the ops the policy keeps are not run
again, their outputs staying live instead. Which ops to keep is a 0/1 knapsack
(`knapsack.most_kept`) over the ATen ops of each block's forward in the analysis without
checkpointing, the same op of identical blocks counted as copies of one item:
- an op's weight is the bytes of its outputs, over all its calls in the block;
- its value is what re-running it costs: its exact FLOPs, or its seconds on the
  accelerator when the advice is timed.
Each block gets its own policy, so the choice spans whole blocks kept (their costly
ops) and blocks recomputed whole.
The room is the budget less the analysed peak with the blocks checkpointed whole. Kept
outputs are live together from the forward to their backward, so they add to that peak.
That is the model the knapsack optimises. Each choice is then analysed, and when the
peak overshoots, the room shrinks by the overshoot and the knapsack runs again, at most
`ROUNDS` times; when it fits with room to spare (kept outputs of late blocks are
freed before an early block's peak), the room grows by the slack and the knapsack runs
again, the fitting choice that recomputes least being the answer. In-place ops are
never kept (their outputs are inputs the policy cannot cache apart), nor the op just
before one in the block, whose output it most likely overwrites: PyTorch refuses a
cached output that changed ("Tensor cached during selective activation checkpoint has
been mutated").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from memflops.advisor.advice import FitResult, Measured
from memflops.advisor.knapsack import Choice, Item, most_kept
from memflops.capture.records import Phase
from memflops.hardware.time_model import TimeModel
from memflops.report.model import Report

ROUNDS = 4
"""Knapsack rounds, each analysed."""


Kept = dict[str, frozenset[str]]
"""The ops whose outputs each block keeps (block path -> ATen op names)."""


@dataclass(frozen=True)
class Items:
    """The knapsack's items, and which blocks each stands for."""

    items: tuple[Item, ...]
    blocks: dict[str, tuple[str, tuple[str, ...]]]
    """Item name -> (its ATen op, the blocks whose copies it counts, in model order)."""

    def kept(self, choice: Choice, every: Sequence[str]) -> Kept:
        """The kept ops of each of `every` block under `choice` (the first blocks of an
        item's copies keep it)."""
        kept: dict[str, set[str]] = {b: set() for b in every}
        for name, count in choice.kept.items():
            op, blocks = self.blocks[name]
            for block in blocks[:count]:
                kept[block].add(op)
        return {b: frozenset(ops) for b, ops in kept.items()}


def op_items(report: Report, blocks: Sequence[str]) -> Items:
    """Each op of each block's forward as a knapsack item (module docstring); the same op
    with the same bytes and cost in several blocks is one item with that many copies."""
    model = (TimeModel(report.timing.accelerator, report.timing.constants)
             if report.timing is not None else None)
    weight: dict[tuple[str, str], int] = defaultdict(int)
    value: dict[tuple[str, str], float] = defaultdict(float)
    mutated: set[tuple[str, str]] = set()
    before: tuple[str, str] | None = None
    for rec in report.records:
        if rec.phase is not Phase.FORWARD or rec.recompute or rec.cost is None:
            continue
        block = _block_of(rec.module, blocks)
        if block is None:
            before = None
            continue
        if rec.op.endswith("_"):
            # an in-place op on floats most often writes the output of the float op just
            # before it (BN then relu_): a cached output must not change, so that op is
            # not kept (an integer counter's `add_` computes nothing and writes no output)
            if rec.cost.flops and before is not None and before[0] == block:
                mutated.add(before)
            continue
        if rec.cost.flops:
            before = block, rec.op
        weight[block, rec.op] += rec.cost.bytes_written
        if model is not None:
            timed = model.op(rec)
            value[block, rec.op] += timed.total * rec.repeat if timed is not None else 0.0
        else:
            value[block, rec.op] += rec.cost.flops * rec.repeat
    if report.grad_accumulation is not None:
        # two micro-batches are captured, and one's outputs are live at a time
        weight = defaultdict(int, {key: w // 2 for key, w in weight.items()})
    copies: dict[tuple[str, int, float], list[str]] = defaultdict(list)
    for block in blocks:
        for (owner, op), w in weight.items():
            if owner == block and (owner, op) not in mutated:
                copies[op, w, value[owner, op]].append(block)
    items, named = [], {}
    for i, ((op, w, v), owners) in enumerate(sorted(copies.items())):
        name = f"{op}#{i}"
        items.append(Item(name, w, v, len(owners)))
        named[name] = (op, tuple(owners))
    return Items(tuple(items), named)


def _block_of(module: str, blocks: Sequence[str]) -> str | None:
    for block in blocks:
        if module == block or module.startswith(block + "."):
            return block
    return None


def kept_ops_fit(fitted: FitResult, items: Items, blocks: Sequence[str],
                 analyse: Callable[[Kept], Measured | None]) -> FitResult | None:
    """`fitted` (whole blocks checkpointed, fitting) with each block checkpointed
    selectively, keeping the ops the knapsack picks; None when no such choice fits or
    keeps anything (`analyse` analyses the combination with those kept ops)."""
    if fitted.measured is None:
        return None
    room = fitted.budget - fitted.measured.peak
    tried = list(fitted.tried)
    others = tuple(n for n in fitted.changes if n != "checkpoint-blocks")
    best: tuple[Measured, Kept, bool] | None = None
    seen: set[tuple[tuple[str, int], ...]] = set()
    for _ in range(ROUNDS):
        if room <= 0:
            break
        choice = most_kept(items.items, room)
        key = tuple(sorted((n, k) for n, k in choice.kept.items()))
        if key in seen or not any(i.weight > 0 and i.name in choice.kept for i in items.items):
            break
        seen.add(key)
        kept = items.kept(choice, blocks)
        measured = analyse(kept)
        if measured is None:
            break
        count = sum(len(ops) for ops in kept.values())
        tried.append(((*others, f"checkpoint-blocks[{count} ops kept]"), measured.peak))
        if measured.peak <= fitted.budget and (
                best is None or measured.flops_recompute < best[0].flops_recompute):
            best = measured, kept, choice.exact
        # over: the room shrinks by the overshoot; under (the kept outputs were not all
        # live at the peak): it grows by the slack left
        room += fitted.budget - measured.peak
    if best is None:
        return None
    measured, kept, exact = best
    bound = "" if exact else " (a greedy choice, within half the optimum)"
    return replace(
        fitted, measured=measured, tried=tuple(tried),
        kept_ops=tuple(f"{b}:{op}" for b in blocks for op in sorted(kept[b])),
        note=f"every repeated block checkpointed selectively, keeping {_summary(kept)}{bound}",
    )


def _summary(kept: Kept) -> str:
    """"the outputs of aten.convolution in 5 of 8 blocks, aten.mm in 8"."""
    counts: dict[str, int] = defaultdict(int)
    for ops in kept.values():
        for op in ops:
            counts[op] += 1
    parts = [f"{op} in {n} of {len(kept)} blocks" for op, n in sorted(counts.items())]
    return "the outputs of " + ", ".join(parts)
