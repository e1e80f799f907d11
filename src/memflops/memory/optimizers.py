"""Optimizers by name, or as the user's instance or factory, run for real on fake tensors.

Names follow what PyTorch picks by default on a GPU, where training runs:
the foreach (multi-tensor) implementation. `-forloop` and `-fused` select
the other implementations, so their own temporaries show in the timeline.
`adam8bit` models bitsandbytes' 8-bit Adam without needing that library.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from memflops.errors import UsageError

OptimizerSpec = str | torch.optim.Optimizer | Callable[[list[nn.Parameter]], torch.optim.Optimizer]

# bitsandbytes' 8-bit optimizers keep two uint8 states per parameter, plus one
# fp32 absmax per block of 256 values for each state (blockwise quantisation),
# and keep tensors smaller than 4096 elements in fp32 (its `min_8bit_size`).
# Source: Dettmers et al., "8-bit Optimizers via Block-wise Quantization"
# (ICLR 2022) and bitsandbytes' Optimizer2State defaults.
ADAM8BIT_BLOCK = 256
ADAM8BIT_MIN_SIZE = 4096


class Adam8bit(torch.optim.Optimizer):
    """A shape-faithful stand-in for bitsandbytes' Adam8bit.

    State: `state1`/`state2` in uint8 and `absmax1`/`absmax2` in fp32 (one per
    256-value block) for tensors of at least 4096 elements, fp32 states
    otherwise. The fused 8-bit kernel updates in place with no temporaries;
    the step here likewise updates in place (one fused multiply-add per
    element for the parameter, one per state).
    """

    def __init__(self, params: Iterable[nn.Parameter], lr: float = 1e-3) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    if p.numel() >= ADAM8BIT_MIN_SIZE:
                        blocks = math.ceil(p.numel() / ADAM8BIT_BLOCK)
                        state["state1"] = torch.empty_like(p, dtype=torch.uint8)
                        state["state2"] = torch.empty_like(p, dtype=torch.uint8)
                        state["absmax1"] = torch.empty(blocks, dtype=torch.float32)
                        state["absmax2"] = torch.empty(blocks, dtype=torch.float32)
                    else:
                        state["state1"] = torch.empty_like(p, dtype=torch.float32)
                        state["state2"] = torch.empty_like(p, dtype=torch.float32)
                p.add_(p.grad, alpha=-group["lr"])


def _sgd(
    momentum: float, nesterov: bool = False, **kw: Any
) -> Callable[..., torch.optim.Optimizer]:
    return lambda ps: torch.optim.SGD(ps, lr=0.01, momentum=momentum, nesterov=nesterov, **kw)


def _make(cls: type[torch.optim.Optimizer], **kw: Any) -> Callable[..., torch.optim.Optimizer]:
    return lambda ps: cls(ps, **kw)


NAMED: dict[str, Callable[[list[nn.Parameter]], torch.optim.Optimizer]] = {
    "sgd": _sgd(0.0, foreach=True),
    "sgd-forloop": _sgd(0.0, foreach=False),
    "sgd-momentum": _sgd(0.9, foreach=True),
    "sgd-momentum-forloop": _sgd(0.9, foreach=False),
    "nesterov": _sgd(0.9, nesterov=True, foreach=True),
    "adam": _make(torch.optim.Adam, foreach=True),
    "adam-forloop": _make(torch.optim.Adam, foreach=False),
    "adam-fused": _make(torch.optim.Adam, fused=True),
    "adamw": _make(torch.optim.AdamW, foreach=True),
    "adamw-forloop": _make(torch.optim.AdamW, foreach=False),
    "adamw-fused": _make(torch.optim.AdamW, fused=True),
    "adagrad": _make(torch.optim.Adagrad, foreach=True),
    "rmsprop": _make(torch.optim.RMSprop, foreach=True),
    "adam8bit": lambda ps: Adam8bit(ps),
}
if hasattr(torch.optim, "Adafactor"):  # PyTorch >= 2.5
    NAMED["adafactor"] = _make(torch.optim.Adafactor, foreach=False)


def optimizer_label(spec: OptimizerSpec | None) -> str | None:
    if spec is None or isinstance(spec, str):
        return spec
    if isinstance(spec, torch.optim.Optimizer):
        return type(spec).__name__
    return getattr(spec, "__name__", type(spec).__name__)


def check_optimizer(spec: OptimizerSpec | None) -> None:
    """Reject an unknown name early, before any analysis work."""
    if isinstance(spec, str) and spec not in NAMED:
        import difflib

        close = difflib.get_close_matches(spec, list(NAMED), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UsageError(
            f"unknown optimizer {spec!r}{hint} (known: {', '.join(NAMED)}; or pass an "
            f"optimizer instance or a factory taking the parameter list)"
        )


def build_optimizer(spec: OptimizerSpec, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """An optimizer of the requested kind over the analysis' fake parameters."""
    if isinstance(spec, str):
        check_optimizer(spec)
        return NAMED[spec](params)
    if isinstance(spec, torch.optim.Optimizer):
        # The same class and hyper-parameters, over the stand-in parameters.
        return type(spec)(params, **spec.defaults)
    optimizer = spec(params)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise UsageError(
            f"optimizer factory returned {type(optimizer).__name__}, expected a "
            f"torch.optim.Optimizer"
        )
    return optimizer
