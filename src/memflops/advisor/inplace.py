"""Activations made in-place (the article's fifth method): `ReLU(inplace=True)` writes
its output over its input, so the input's feature map is not kept beside it.

Only activations whose in-place backward needs the output alone are changed (autograd
computes their gradient from the result: relu, threshold, hardtanh, leaky relu with a
non-negative slope, elu/celu/selu). Dropout is left alone: in-place, it would overwrite
the output a preceding in-place ReLU keeps for its backward. An activation whose input another op
saved for backward would make autograd refuse the step; the analysis of the changed
step then fails, naming the module.
"""

from __future__ import annotations

from torch import nn

from memflops.advisor.advice import ArticleClaim
from memflops.advisor.changes import Applied, NotApplicable, Step, change

IN_PLACE_SAFE = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.ELU, nn.CELU, nn.SELU)
"""Module classes whose `inplace=True` autograd differentiates from the output alone
(`nn.ReLU6` is a `Hardtanh`)."""


def _eligible(module: nn.Module) -> bool:
    if isinstance(module, nn.LeakyReLU):
        return module.negative_slope >= 0 and not module.inplace
    return isinstance(module, IN_PLACE_SAFE) and not getattr(module, "inplace", True)


@change(
    "inplace-activations", "activations in-place (inplace=True)",
    kind="memory", preserves_function=True,
    article_claim=ArticleClaim("in-place ops (ReLU(inplace=True)) overwrite the input and "
                               "save that feature map", "peak", None),
)
def inplace_activations(step: Step) -> Applied:
    changed = []
    already = 0
    for path, module in step.module.named_modules():
        if _eligible(module):
            module.inplace = True  # type: ignore[assignment]
            changed.append(path)
        elif getattr(module, "inplace", False) is True:
            already += 1
    if not changed:
        reason = (f"every one of the {already} activations with an inplace option is in-place "
                  "already") if already else ("no activation module with an inplace option "
                                              "that autograd allows (ReLU, ReLU6, Hardtanh, "
                                              "LeakyReLU, ELU, CELU, SELU)")
        raise NotApplicable(reason)
    return Applied(step, tuple(changed), f"{len(changed)} modules set inplace=True")
