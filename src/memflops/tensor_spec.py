"""`TensorSpec`: one input tensor as the analysis sees it, its shape and dtype.

Torch-free, so that reports of torch-free frontends (layer-list specs) can
name their inputs. A dtype is a `torch.dtype` or, where torch is not
loaded, its name ("float32").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def dtype_name(dtype: Any) -> str:
    """`float32` for torch.float32 or "float32"; `default` for None."""
    return "default" if dtype is None else str(dtype).removeprefix("torch.")


@dataclass(frozen=True)
class TensorSpec:
    """One input tensor: its shape and dtype (None: the analysis dtype)."""

    shape: tuple[int, ...]
    dtype: Any = None
    """A torch.dtype (or its name in torch-free frontends); None: the analysis dtype."""
    values: Any = None
    """Known contents, for an input whose values steer the model (a vision tower's grid
    sizes): a number every element equals, or nested lists of the tensor's shape. None:
    unknown, the usual case (only the shape matters). See `capture.values.known`."""
    requires_grad: bool = False
    """Whether the step needs this input's gradient (adversarial training, inversion, a
    model fed another model's output): in train mode backward computes it, its FLOPs and
    its memory counted. Only a floating-point input can require grad."""

    def describe(self) -> str:
        dims = "x".join(str(d) for d in self.shape) or "scalar"
        text = f"{dims}:{dtype_name(self.dtype)}" if self.dtype is not None else dims
        return f"{text}:grad" if self.requires_grad else text
