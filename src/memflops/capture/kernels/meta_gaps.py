"""Ops whose meta kernel refuses inputs that a real kernel of theirs accepts.

Fake tensors take their outputs from meta kernels. A meta kernel that
checks only what one backend supports makes a model fail on fake tensors
although it runs for real. Each rule here gives such an op's output for the
inputs its meta kernel refuses; the op is recorded and costed as usual.

- `aten._grouped_mm` (the grouped GEMM that transformers 5 runs mixture-of-
  experts layers with): the meta kernel implements the CUDA kernel's checks
  and accepts only bf16/fp16, while the CPU kernel (torch 2.14.1, checked
  with float32 inputs) and transformers' own fallback take float32 too. The
  output is the meta kernel's shape in the input's dtype, contiguous:
  (M,K)x(G,K,N) -> (M,N); (G,M,K)x(K,N) -> (M,N); (G,M,K)x(G,K,N) -> (G,M,N);
  (M,K)x(K,N) with K split into G groups -> (G,M,N).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

GapRule = Callable[[tuple[Any, ...], dict[str, Any]], Any]
"""(args, kwargs) -> the op's output, or None when the meta kernel accepts the inputs."""


def _grouped_mm(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    a, b = args[0], args[1]
    if a.dtype in (torch.bfloat16, torch.float16):
        return None  # the meta kernel's own case
    offs = args[2] if len(args) > 2 else kwargs.get("offs")
    out_dtype = (args[4] if len(args) > 4 else kwargs.get("out_dtype")) or a.dtype
    size: tuple[int, ...]
    if a.dim() == 2 and b.dim() == 2:
        if offs is None:
            raise RuntimeError("_grouped_mm of two 2D matrices needs offs")
        size = (offs.shape[0], a.shape[0], b.shape[1])
    elif a.dim() == 2:
        size = (a.shape[0], b.shape[-1])
    elif b.dim() == 2:
        size = (a.shape[1], b.shape[1])
    else:
        size = (a.shape[0], a.shape[1], b.shape[-1])
    return torch.empty(size, dtype=out_dtype, device=a.device)


RULES: dict[Any, GapRule] = {aten._grouped_mm.default: _grouped_mm}


def output_for(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The op's output where its meta kernel refuses the inputs, else None."""
    rule = RULES.get(func)
    return None if rule is None else rule(args, kwargs)


class MetaGaps(TorchDispatchMode):  # type: ignore[no-untyped-call,misc]
    """Runs the ops of `RULES` where their meta kernel would refuse (outside the recorder,
    which applies the same rules itself)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def __torch_dispatch__(
        self,
        func: Any,
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        out = output_for(func, args, kwargs)
        return func(*args, **kwargs) if out is None else out
