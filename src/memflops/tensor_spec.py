"""`TensorSpec`: one input tensor as the analysis sees it, its shape and dtype.

Torch-free, so that reports of torch-free frontends (layer-list specs) can
name their inputs. A dtype is a `torch.dtype` or, where torch is not
loaded, its name ("float32").
"""

from __future__ import annotations

import itertools
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
    lengths: tuple[int, ...] | None = None
    """A jagged nested tensor (`torch.nested`, layout `torch.jagged`): the length of each
    of its sequences, its ragged dimension 1. `shape` is then its packed values' shape,
    (sum(lengths), ...): the tensor is `lengths` sequences of `shape[1:]` each. None: a
    dense tensor."""

    @property
    def offsets(self) -> list[int]:
        """A jagged tensor's cumulative offsets, `[0, l0, l0 + l1, ...]` (empty if dense)."""
        return [0, *itertools.accumulate(self.lengths)] if self.lengths is not None else []

    @property
    def batch(self) -> int | None:
        """Dimension 0: the batch (a jagged tensor's sequence count); None for a scalar."""
        if self.lengths is not None:
            return len(self.lengths)
        return self.shape[0] if self.shape else None

    def dims(self) -> str:
        """`8x3x224x224`, `scalar`; a jagged tensor `[3,7]x16` (its sequences' lengths,
        then the size of each position)."""
        if self.lengths is not None:
            return "x".join([lengths_text(self.lengths), *map(str, self.shape[1:])])
        return "x".join(str(d) for d in self.shape) or "scalar"

    def describe(self) -> str:
        """`8x3x224x224:bf16:grad`, `[3,7]x16:bf16`."""
        dims = self.dims()
        text = f"{dims}:{dtype_name(self.dtype)}" if self.dtype is not None else dims
        return f"{text}:grad" if self.requires_grad else text


LISTED_LENGTHS = 8
"""The most sequence lengths `lengths_text` lists before it abbreviates."""


def lengths_text(lengths: tuple[int, ...]) -> str:
    """`[3,7]`; more than `LISTED_LENGTHS` as `[3,7,5,...,9; 64 sequences]`."""
    if len(lengths) <= LISTED_LENGTHS:
        return "[" + ",".join(map(str, lengths)) + "]"
    head = ",".join(map(str, lengths[:3]))
    return f"[{head},...,{lengths[-1]}; {len(lengths)} sequences]"
