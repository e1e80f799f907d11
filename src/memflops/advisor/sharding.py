"""Sharding the training step over the GPUs of one node: FSDP2 over 8 GPUs (`--parallel
fsdp=8`), parameters, gradients and optimizer state split eight ways, each rank
gathering a unit's parameters while it runs. The numbers are rank 0's, captured by
running PyTorch's own `fully_shard` on fake tensors (`capture/parallel.py`).

It changes neither the model nor what a step trains on, but it takes eight GPUs where
the baseline takes one, so the budget search never chooses it (`searchable=False`);
the advice reports it beside the one-GPU changes. Capturing FSDP2 takes longer than a
one-GPU analysis (a 70B model: about a minute), so it is tried only when asked for:
`--only fsdp-8,...`.
"""

from __future__ import annotations

from memflops.advisor.changes import Applied, NotApplicable, Step, change

GPUS = 8


@change(
    "fsdp-8", f"sharded over {GPUS} GPUs with FSDP2 (rank 0's memory)", kind="memory",
    preserves_function=True, searchable=False, on_request=True,
)
def fsdp_8(step: Step) -> Applied:
    if not step.train:
        raise NotApplicable("inference keeps no gradients or optimizer state to shard")
    if step.options.get("parallel"):
        raise NotApplicable(f"the step is already laid out as {step.options['parallel']}")
    if not any(p.requires_grad for p in step.module.parameters()):
        raise NotApplicable("the model has no trainable parameters")
    return Applied(step.with_options(parallel=f"fsdp={GPUS}"),
                   note=f"one GPU -> {GPUS} (FSDP2 full shard); the numbers are one GPU's, "
                   f"and the collectives add communication time")
