"""Ops whose real kernel refuses operands of different dtypes that their meta kernel
accepts.

A meta kernel computes the output's shape and does not compare its operands' dtypes, so
on fake tensors `nn.Linear(10, 5)` runs on an int64 or bool input and memflops would
answer for a model PyTorch cannot run. The real CPU and CUDA kernels of the matrix
products and the convolution refuse it (torch 2.14.1, checked: `nn.Linear(10, 5)(x)`
with `x` int64 raises "mat1 and mat2 must have the same dtype, but got Long and Float").
Each rule names the two operands that must agree; the recorder raises the real
kernel's error before running the op, and the forward's error names the module.
"""

from __future__ import annotations

from typing import Any

import torch

aten = torch.ops.aten

SAME_DTYPE: dict[Any, tuple[int, int, str]] = {
    aten.mm.default: (0, 1, "mat1 and mat2"),
    aten.addmm.default: (1, 2, "mat1 and mat2"),
    aten.bmm.default: (0, 1, "batch1 and batch2"),
    aten.baddbmm.default: (1, 2, "batch1 and batch2"),
    aten.convolution.default: (0, 1, "input and weight"),
}
"""op -> (positional index of one operand, of the other, their names in the error)."""


def check_dtypes(func: Any, args: tuple[Any, ...]) -> None:
    """Raise the real kernel's error when `func`'s operands of `SAME_DTYPE` differ."""
    rule = SAME_DTYPE.get(func)
    if rule is None:
        return
    first, second, names = rule
    a, b = args[first], args[second]
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype != b.dtype:
        raise RuntimeError(
            f"{names} must have the same dtype, but got {_name(a.dtype)} and {_name(b.dtype)} "
            f"(a real run refuses this; e.g. an integer or bool input into a float layer)"
        )


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")
