"""The data of a step made smaller: the batch halved (the article's first method) and the
input resolution halved (its "pooling": smaller feature maps from the start).

Neither changes the model; both change what one step trains on, so the budget search
never chooses them (`searchable=False`): the advice reports them, with the batch's
constant and per-sample terms (`advise.py`).
"""

from __future__ import annotations

from memflops.advisor.advice import ArticleClaim
from memflops.advisor.changes import Applied, NotApplicable, Step, change
from memflops.capture.inputs import InputSpecs, normalize_inputs
from memflops.memory.sweep import resized
from memflops.tensor_spec import TensorSpec

BATCH = 0

NO_BATCH = ("the inputs have no common batch dimension (dimension 0) to resize (a jagged "
            "input's sequences keep their lengths)")
"""Why a change that resizes the batch does not apply (`batch_of` is None)."""


def batch_of(inputs: InputSpecs) -> int | None:
    """The batch size: dimension 0 of the inputs, when every input has it and agrees; None
    with a jagged input, whose sequences have lengths memflops does not resize."""
    if any(spec.lengths is not None for _, spec in inputs.all()):
        return None
    sizes = {spec.shape[BATCH] for _, spec in inputs.all() if spec.shape}
    return sizes.pop() if len(sizes) == 1 else None


@change(
    "batch-halved", "batch size halved",
    kind="memory", preserves_function=True, searchable=False, copies_model=False,
    article_claim=ArticleClaim("a smaller batch: the feature maps shrink with it; params "
                               "and optimizer state do not", "peak", None),
)
def batch_halved(step: Step) -> Applied:
    batch = batch_of(step.inputs)
    if batch is None:
        raise NotApplicable(NO_BATCH)
    if batch < 2:
        raise NotApplicable(f"batch {batch} cannot be halved")
    half = batch // 2
    changed = step.with_options(**targets_resized(step, half))
    return Applied(
        Step(step.module, resized(step.inputs, half, BATCH), changed.options, step.budget),
        note=f"batch {batch} -> {half}: half the samples per optimizer step (to keep the "
        f"effective batch, see grad-accumulation)",
    )


def targets_resized(step: Step, size: int) -> dict[str, object]:
    targets = step.options.get("targets")
    if targets is None:
        return {}
    spec = normalize_inputs(targets).args[0]
    return {"targets": TensorSpec((size, *spec.shape[1:]), spec.dtype)}


@change(
    "input-resolution-halved", "input resolution halved (smaller feature maps throughout)",
    kind="both", preserves_function=False, searchable=False, copies_model=False,
    article_claim=ArticleClaim("pooling: smaller feature maps save memory", "peak", None),
)
def resolution_halved(step: Step) -> Applied:
    images = [name for name, spec in step.inputs.all() if len(spec.shape) == 4]
    if not images or len(images) != len(step.inputs.all()):
        raise NotApplicable("the inputs are not images (N, C, H, W)")

    def halve(spec: TensorSpec) -> TensorSpec:
        n, c, h, w = spec.shape
        if h < 2 or w < 2:
            raise NotApplicable(f"an input of {spec.describe()} cannot be halved")
        return TensorSpec((n, c, h // 2, w // 2), spec.dtype)

    inputs = InputSpecs(tuple(halve(s) for s in step.inputs.args),
                        tuple((k, halve(s)) for k, s in step.inputs.kwargs))
    first = step.inputs.all()[0][1].shape
    return Applied(
        Step(step.module, inputs, step.options, step.budget),
        note=f"inputs {first[2]}x{first[3]} -> {first[2] // 2}x{first[3] // 2}: the model "
        f"sees less detail (first-downsample-doubled shrinks the maps inside the model instead)",
    )
