"""Building a model without allocating its weights.

`torch.device("meta")` makes every tensor a factory creates a meta tensor,
which is all a model needs — unless its constructor computes something from
tensor values (torchvision's RegNet derives its widths with `.tolist()`).
`empty_weights` is the fallback for those: constructors run on the CPU, and
each parameter and buffer becomes a meta tensor as it is registered, so at
most one layer's weights exist at a time.

`small_constants_on_cpu` keeps the small constants a constructor makes with
`torch.tensor(...)` (a conv's stride or padding, kept as buffers by audio
codecs) real CPU tensors inside a meta build: a forward that reads their
values then can (capture treats small real buffers as known values), and
they cost a few bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_unflatten

SMALL_CONSTANT = 64
"""Elements of the largest constant `small_constants_on_cpu` keeps real."""
_CONSTANT_MAKERS = frozenset({torch.tensor, torch.as_tensor, torch.scalar_tensor})


class _SmallConstantsOnCpu(TorchFunctionMode):
    def __torch_function__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        kwargs = dict(kwargs or {})
        if func is torch.Tensor.to and args and _is_meta(args[0]):
            return _stay_on_meta(args[0], args[1:], kwargs)
        if func in _CONSTANT_MAKERS and kwargs.get("device") is None:
            data = args[0] if args else kwargs.get("data")
            if not isinstance(data, torch.Tensor) and _small(data):
                kwargs["device"] = "cpu"
            return func(*args, **kwargs)
        args, kwargs = _constants_beside_meta(args, kwargs)
        return func(*args, **kwargs)


def _constants_beside_meta(args: Any, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Where an op mixes a kept CPU constant with meta tensors (LayoutLMv3 concatenates its
    `cls_token_box` constant with meta boxes), the constant joins them on meta, as it would
    have been without `small_constants_on_cpu`; a 0-d CPU tensor mixes with any device."""
    flat, spec = tree_flatten((args, kwargs))
    tensors = [x for x in flat if isinstance(x, torch.Tensor)]
    if not any(t.is_meta for t in tensors) or not any(
        t.device.type == "cpu" and t.dim() > 0 for t in tensors
    ):
        return args, kwargs
    moved = [
        x.to("meta") if isinstance(x, torch.Tensor) and x.device.type == "cpu" and x.dim() > 0
        else x
        for x in flat
    ]
    args, kwargs = tree_unflatten(moved, spec)
    return args, kwargs


def _is_meta(value: Any) -> bool:
    return isinstance(value, torch.Tensor) and value.is_meta


def _stay_on_meta(tensor: torch.Tensor, args: Any, kwargs: dict[str, Any]) -> torch.Tensor:
    """`tensor.to(...)` of a meta tensor that stays on meta: its dtype changes as asked, but
    a move to a small constant's CPU (FastSpeech 2's position table, made `.to(x.device)` of
    a CPU scalar) keeps it on meta, which has no data to copy."""
    with torch.device("cpu"):
        probe = torch.empty(0, dtype=tensor.dtype).to(*args, **kwargs)
    return tensor.to(dtype=probe.dtype)


def _small(data: Any) -> bool:
    """Python numbers or (nested) lists of at most SMALL_CONSTANT of them."""
    if isinstance(data, (int, float, bool)):
        return True
    if isinstance(data, (list, tuple)):
        flat: list[Any] = list(data)
        count = 0
        while flat:
            item = flat.pop()
            if isinstance(item, (list, tuple)):
                flat.extend(item)
            elif isinstance(item, (int, float, bool)):
                count += 1
            else:
                return False
            if count > SMALL_CONSTANT:
                return False
        return True
    return False


@contextmanager
def small_constants_on_cpu() -> Iterator[None]:
    """Inside a meta build: `torch.tensor` of a few Python numbers stays on the CPU."""
    with _SmallConstantsOnCpu():
        yield


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
        with torch.device("meta"), small_constants_on_cpu():
            return build()
    except (NotImplementedError, RuntimeError) as exc:
        if "meta" not in str(exc):
            raise
    with empty_weights():
        return build()
