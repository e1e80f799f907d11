"""Values Python reads from a tensor without an op the dispatch mode sees.

Most reads of a value (`.item()`, `int(t)`, `if t:`) reach the recorder as
`aten._local_scalar_dense`, which answers known values (`values.known`,
`values.finite`). Two reads do not:

- formatting, `f"expert_{idx}"` (Switch Transformers, NLLB-MoE pick their
  expert module by name): `Tensor.__format__` formats a 0-d tensor as its
  value only when its type is exactly `torch.Tensor`; a fake tensor formats
  as its repr, which names no expert;
- `torch.tensor(data)` and `torch.as_tensor(data)` on a list holding tensors
  (Qwen3-ASR's window lengths): PyTorch copies each tensor's data in C++ with
  the Python dispatch key excluded, so a fake tensor's missing data raises.

While a capture runs (`python_reads`), both are patched, never through a
`TorchFunctionMode` (an active one turns off `nn.MultiheadAttention`'s fast
path): a 0-d fake tensor whose value is known formats as that value, and a
known fake tensor inside `data` is replaced by its real value, so the new
tensor has the dtype and values real tensors would give. Each is a value
read, counted as any other. Anything else behaves as before: an unknown
tensor formats as its repr and still cannot be copied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensor

Scalar = Callable[[torch.Tensor], Any]
"""A fake tensor -> the Python value `.item()` reads (the read counted), or None."""
Real = Callable[[torch.Tensor], "torch.Tensor | None"]
"""A fake tensor -> its real value (the read counted), or None."""


def _known_data(data: Any, real: Real) -> Any:
    """`data` with its known fake tensors (at any depth of lists and tuples) replaced by
    their real values; `data` itself when there is none."""
    if isinstance(data, FakeTensor):
        value = real(data)
        return data if value is None else value
    if not isinstance(data, (list, tuple)):
        return data
    items = [_known_data(item, real) for item in data]
    if all(new is old for new, old in zip(items, data, strict=True)):
        return data
    return type(data)(items)


@contextmanager
def python_reads(scalar: Scalar, real: Real) -> Iterator[None]:
    """Patch `Tensor.__format__`, `torch.tensor` and `torch.as_tensor` (module docstring)."""
    original_format: Callable[[Any, str], str] = torch.Tensor.__format__
    original_tensor = torch.tensor
    original_as_tensor = torch.as_tensor

    def formatted(self: torch.Tensor, format_spec: str) -> str:
        if isinstance(self, FakeTensor) and self.dim() == 0:
            value = scalar(self)
            if value is not None:
                return format(value, format_spec)
        return original_format(self, format_spec)

    def tensor(data: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        if isinstance(data, (list, tuple)):
            data = _known_data(data, real)
        return original_tensor(data, *args, **kwargs)

    def as_tensor(data: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        if isinstance(data, (list, tuple)):
            data = _known_data(data, real)
        return original_as_tensor(data, *args, **kwargs)

    torch.Tensor.__format__ = formatted  # type: ignore[method-assign]
    torch.tensor = tensor
    torch.as_tensor = as_tensor
    try:
        yield
    finally:
        torch.Tensor.__format__ = original_format  # type: ignore[method-assign]
        torch.tensor = original_tensor
        torch.as_tensor = original_as_tensor
