"""Optimizers with less state than Adam: SGD with momentum (one buffer per parameter
instead of two), 8-bit Adam (two uint8 states and a scale per 256 values), Adafactor
(factored second moment); and the fused Adam/AdamW kernel (no foreach temporaries).

Each is the same named optimizer `memflops.analyze` runs (`memory.optimizers.NAMED`).
Only training steps with an optimizer apply.
"""

from __future__ import annotations

from memflops.advisor.advice import ArticleClaim
from memflops.advisor.changes import Applied, NotApplicable, Step, change
from memflops.memory.optimizers import NAMED

ADAM_LIKE = ("adam", "adamw", "adam-forloop", "adamw-forloop", "adam-fused", "adamw-fused")
FUSED = {"adam": "adam-fused", "adamw": "adamw-fused", "adam-forloop": "adam-fused",
         "adamw-forloop": "adamw-fused"}


def _current(step: Step) -> str:
    if not step.train:
        raise NotApplicable("inference runs no optimizer")
    optimizer = step.options.get("optimizer")
    if optimizer is None or optimizer == "none":
        raise NotApplicable("the step runs no optimizer")
    if not isinstance(optimizer, str):
        raise NotApplicable("the optimizer is the user's own instance or factory")
    return optimizer


def _swap(step: Step, name: str) -> Applied:
    current = _current(step)
    if current == name:
        raise NotApplicable(f"the step already uses {name}")
    if name not in NAMED:
        raise NotApplicable(f"this torch has no {name}")
    return Applied(step.with_options(optimizer=name), note=f"optimizer {current} -> {name}")


@change("sgd-momentum", "optimizer: SGD with momentum", kind="memory",
        preserves_function=False, group="optimizer", copies_model=False,
        article_claim=ArticleClaim("parameter memory: SGD+momentum 3x, Adam 4x", "peak", None))
def sgd_momentum(step: Step) -> Applied:
    return _swap(step, "sgd-momentum")


@change("adam8bit", "optimizer: 8-bit Adam (bitsandbytes)", kind="memory",
        preserves_function=False, group="optimizer", copies_model=False)
def adam8bit(step: Step) -> Applied:
    if _current(step) not in ADAM_LIKE:
        raise NotApplicable(f"the step uses {_current(step)}, not Adam")
    return _swap(step, "adam8bit")


@change("adafactor", "optimizer: Adafactor (factored second moment)", kind="memory",
        preserves_function=False, group="optimizer", copies_model=False)
def adafactor(step: Step) -> Applied:
    return _swap(step, "adafactor")


@change("fused-optimizer", "optimizer: the fused Adam/AdamW kernel", kind="memory",
        preserves_function=True, group="optimizer", copies_model=False)
def fused_optimizer(step: Step) -> Applied:
    current = _current(step)
    if current not in FUSED:
        raise NotApplicable(f"{current} has no fused form here (adam and adamw do)")
    return _swap(step, FUSED[current])
