"""Gradient accumulation: the same effective batch in smaller micro-batches.

The batch is split into M equal micro-batches (M a power of two dividing it) and the
step runs forward and backward M times before its optimizer step
(`memflops.analyze(grad_accumulation=M)`, captured, not modelled): one micro-batch's
activations are live at a time, the gradients all through, and each later micro-batch
adds into them. The samples per optimizer step stay the same, so the update is the one
the whole batch gives (the loss averaged over it), except where a layer sees the batch
itself: BatchNorm normalises each micro-batch by its own statistics and updates its
running statistics M times.

The change listed splits as finely as the batch allows (the most it can save); the
budget search then keeps the fewest micro-batches that fit (`advise._fewer_micro_batches`).
"""

from __future__ import annotations

from torch import nn

from memflops.advisor.batch import BATCH, NO_BATCH, batch_of, targets_resized
from memflops.advisor.changes import Applied, NotApplicable, Step, change
from memflops.memory.sweep import resized

NAME = "grad-accumulation"


def splits(step: Step) -> list[int]:
    """The ways to split the step's micro-batch, fewest parts first: 2, 4, 8, ... while
    the parts stay equal (and hold 2 samples at least when the model has BatchNorm, which
    needs more than one value per channel in training); raises `NotApplicable`."""
    if not step.train:
        raise NotApplicable("inference has no gradients to accumulate")
    batch = batch_of(step.inputs)
    if batch is None:
        raise NotApplicable(NO_BATCH)
    smallest = 2 if has_batchnorm(step.module) else 1
    parts = [p for p in _powers_of_two(batch) if batch // p >= smallest]
    if not parts:
        raise NotApplicable(f"a batch of {batch} does not split into equal micro-batches"
                            + (" of 2 samples or more (BatchNorm)" if smallest == 2 else ""))
    return parts


def _powers_of_two(n: int) -> list[int]:
    parts, p = [], 2
    while n % p == 0:
        parts.append(p)
        p *= 2
    return parts


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def split_step(step: Step, parts: int) -> Applied:
    """`step` with its micro-batch split into `parts`: the micro-batches per optimizer
    step multiplied by `parts`, the effective batch kept."""
    batch = batch_of(step.inputs)
    assert batch is not None and batch % parts == 0
    micro = batch // parts
    before = step.options.get("grad_accumulation") or 1
    after = before * parts
    changed = step.with_options(grad_accumulation=after, **targets_resized(step, micro))
    note = (f"micro-batch {batch} -> {micro}, {after} micro-batches per optimizer step: "
            f"the same effective batch of {micro * after}")
    batchnorm = has_batchnorm(step.module)
    if batchnorm:
        note += ("; BatchNorm normalises each micro-batch by its own statistics (and updates "
                 "its running statistics once per micro-batch): not the full batch's function")
    return Applied(Step(step.module, resized(step.inputs, micro, BATCH), changed.options,
                        step.budget),
                   note=note, preserves_function=not batchnorm)


@change(
    NAME, "gradient accumulation: the batch in micro-batches, the same effective batch",
    kind="memory", preserves_function=True, copies_model=False,
)
def grad_accumulation(step: Step) -> Applied:
    return split_step(step, splits(step)[-1])
