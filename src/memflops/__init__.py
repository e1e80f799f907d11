"""memflops: parameters, FLOPs, MACs and memory of a PyTorch model, exactly,
on meta tensors, before you rent a GPU.

The public names are loaded on first use, so that torch-free parts (the FLOP
rules, the layer-list spec frontend) import without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memflops.advisor.advice import Advice
    from memflops.advisor.advise import advise
    from memflops.api import analyze
    from memflops.conventions import Convention
    from memflops.flops.registry import OpCost
    from memflops.flops.registry import register as register_formula
    from memflops.report.model import Report
    from memflops.tensor_spec import TensorSpec

__all__ = [
    "Advice", "Convention", "OpCost", "Report", "TensorSpec", "advise", "analyze",
    "register_formula",
]
__version__ = "0.1.0"

_LAZY = {
    "analyze": ("memflops.api", "analyze"),
    "advise": ("memflops.advisor.advise", "advise"),
    "Advice": ("memflops.advisor.advice", "Advice"),
    "TensorSpec": ("memflops.tensor_spec", "TensorSpec"),
    "Convention": ("memflops.conventions", "Convention"),
    "OpCost": ("memflops.flops.registry", "OpCost"),
    "register_formula": ("memflops.flops.registry", "register"),
    "Report": ("memflops.report.model", "Report"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'memflops' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
