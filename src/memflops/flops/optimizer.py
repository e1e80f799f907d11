"""Fused optimizer steps (`_fused_adam_`, `_fused_adamw_`, `_fused_sgd_`).

The multi-tensor `_foreach_X` ops are counted with their elementwise
families (elementwise.py). A fused kernel performs, per parameter element,
the arithmetic of the foreach implementation, counted the same way, so the
for-loop, foreach and fused implementations of one optimizer agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memflops.flops.registry import OpCost, Shape, numel, register


def _elements(tensors: Sequence[Shape]) -> int:
    return sum(numel(t) for t in tensors)


# Per element, as the foreach implementation computes it:
#   m.lerp_(g, 1 - b1)                 3
#   v.mul_(b2).addcmul_(g, g, 1 - b2)  1 + 3
#   denom = (v.sqrt() / bc2) + eps     1 + 1 + 1
#   p.addcdiv_(m, denom, -step)        3
ADAM_PER_ELEMENT = 13


@register(
    "aten._fused_adam_", "aten._fused_adam",
    formula=f"{ADAM_PER_ELEMENT} per parameter element (+1 weight decay, +1 amsgrad max)",
)
def fused_adam(params: Sequence[Shape], grads: Any, exp_avgs: Any, exp_avg_sqs: Any,
               max_exp_avg_sqs: Any, state_steps: Any, lr: Any, beta1: Any, beta2: Any,
               weight_decay: float, eps: Any, amsgrad: bool, *_: Any, out: Any) -> OpCost:
    per = ADAM_PER_ELEMENT + (2 if weight_decay else 0) + (1 if amsgrad else 0)
    return OpCost(flops=per * _elements(params))


@register(
    "aten._fused_adamw_",
    formula=f"{ADAM_PER_ELEMENT} + 1 (decoupled weight decay) per parameter element "
    "(+1 amsgrad max)",
)
def fused_adamw(params: Sequence[Shape], grads: Any, exp_avgs: Any, exp_avg_sqs: Any,
                max_exp_avg_sqs: Any, state_steps: Any, lr: Any, beta1: Any, beta2: Any,
                weight_decay: float, eps: Any, amsgrad: bool, *_: Any, out: Any) -> OpCost:
    per = ADAM_PER_ELEMENT + (1 if weight_decay else 0) + (1 if amsgrad else 0)
    return OpCost(flops=per * _elements(params))


@register(
    "aten._fused_sgd_",
    formula="per parameter element: 2 (p -= lr * g), +2 with momentum (buf = m * buf + g), "
    "+2 weight decay",
)
def fused_sgd(params: Sequence[Shape], grads: Any, momentum_buffers: Any,
              weight_decay: float, momentum: float, *_: Any, out: Any) -> OpCost:
    per = 2 + (2 if momentum else 0) + (2 if weight_decay else 0)
    return OpCost(flops=per * _elements(params))
