"""Fine-tuning the head only: every parameter frozen but those of the model's last module
with parameters (its classifier or LM head). Frozen parameters need no gradient and no
optimizer state, and backward stops where no trainable parameter is left behind.

The forward is unchanged; what training learns is not (only the head adapts).
"""

from __future__ import annotations

from torch import nn

from memflops.advisor.changes import Applied, NotApplicable, Step, change


def head_of(model: nn.Module) -> str | None:
    """The path of the last module, in registration order, with parameters of its own."""
    last = None
    for path, module in model.named_modules():
        if path and any(True for _ in module.parameters(recurse=False)):
            last = path
    return last


@change("freeze-all-but-head", "fine-tune the head only (every other parameter frozen)",
        kind="memory", preserves_function=False)
def freeze_all_but_head(step: Step) -> Applied:
    if not step.train:
        raise NotApplicable("inference trains nothing")
    head = head_of(step.module)
    if head is None:
        raise NotApplicable("the model has no submodule with parameters")
    keep = {id(p) for p in step.module.get_submodule(head).parameters()}
    frozen = [p for p in step.module.parameters() if p.requires_grad and id(p) not in keep]
    if not frozen:
        raise NotApplicable(f"every parameter outside {head} is frozen already")
    for p in frozen:
        p.requires_grad_(False)
    return Applied(step, (head,), f"only {head} trains; {len(frozen)} parameter tensors frozen")
