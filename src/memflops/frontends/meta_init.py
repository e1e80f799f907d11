"""Building a model without allocating its weights.

`torch.device("meta")` makes every tensor a factory creates a meta tensor,
which is all a model needs — unless its constructor computes something from
tensor values (torchvision's RegNet derives its widths with `.tolist()`).
`empty_weights` is the fallback for those: constructors run on the CPU, and
each parameter and buffer becomes a meta tensor as it is registered, so at
most one layer's weights exist at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


@contextmanager
def empty_weights() -> Iterator[None]:
    register_parameter = nn.Module.register_parameter
    register_buffer = nn.Module.register_buffer

    def parameter_on_meta(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(self, name, param)

    def buffer_on_meta(
        self: nn.Module, name: str, tensor: torch.Tensor | None, persistent: bool = True
    ) -> None:
        if tensor is not None and tensor.device.type != "meta":
            tensor = tensor.to("meta")
        register_buffer(self, name, tensor, persistent)

    nn.Module.register_parameter = parameter_on_meta  # type: ignore[method-assign]
    nn.Module.register_buffer = buffer_on_meta  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = register_parameter  # type: ignore[method-assign]
        nn.Module.register_buffer = register_buffer  # type: ignore[method-assign]


def build_without_weights(build: Callable[[], Any]) -> Any:
    """Call `build` on the meta device, or, if its constructor needs values, with
    `empty_weights`."""
    try:
        with torch.device("meta"):
            return build()
    except (NotImplementedError, RuntimeError) as exc:
        if "meta" not in str(exc):
            raise
    with empty_weights():
        return build()
