"""Scaled dot-product attention on jagged nested tensors, as a GPU runs it.

`F.scaled_dot_product_attention` on jagged nested tensors (`torch.nested`,
layout `torch.jagged`) is PyTorch's Python function
`torch.nested._internal.sdpa.jagged_scaled_dot_product_attention`. It picks
a backend by the tensors' device: on a GPU the flash kernel (half precision)
or the memory-efficient one (float32), each called once on the packed
values with the cumulative sequence offsets (`aten._flash_attention_forward`,
`aten._efficient_attention_forward`); on a CPU the math path, which splits
the values into one tensor per sequence by their lengths (data a fake tensor
has not got) and is not what the GPU the analysis stands for would run.

memflops' fake tensors are CPU fakes standing for a GPU's, so for the length
of a capture the choice is made as a GPU makes it, from the same checks
PyTorch's jagged path applies (batch, head size, no empty sequence) and the
kernels' own limits: flash takes float16 and bfloat16 without an attention
mask, the memory-efficient kernel any floating dtype without one (the jagged
path passes it no bias). Anything else is left to PyTorch's own choice. The
enabled-backend switches (`torch.nn.attention.sdpa_kernel`) are honoured.
The function is put back on exit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nested._internal.sdpa
from torch.backends.cuda import SDPAParams
from torch.nn.attention import SDPBackend

jagged: Any = torch.nested._internal.sdpa
"""PyTorch's jagged SDPA (untyped: its functions are called through `Any`)."""
backends: Any = torch.backends.cuda
"""The enabled-backend switches (`flash_sdp_enabled`, ...), untyped too."""

_NESTED_CODE = os.path.dirname(jagged.__file__)
"""Where `torch.nested`'s jagged layout is implemented."""

_FLASH_DTYPES = (torch.float16, torch.bfloat16)
"""The flash kernel's dtypes (PyTorch's `sdp_utils` checks, CUDA)."""


@contextmanager
def gpu_jagged_attention() -> Iterator[None]:
    """Choose jagged SDPA's backend as a GPU would (see the module docstring)."""
    original = jagged._select_sdp_backend

    def select(query: Any, key: Any, value: Any, attn_mask: Any, dropout: float,
               is_causal: bool, enable_gqa: bool) -> Any:
        params = SDPAParams(query, key, value, attn_mask, dropout, is_causal, enable_gqa)
        if attn_mask is None and not enable_gqa:
            if (backends.flash_sdp_enabled() and query.dtype in _FLASH_DTYPES
                    and jagged._can_use_flash_sdpa_jagged(params)):
                return SDPBackend.FLASH_ATTENTION
            if (backends.mem_efficient_sdp_enabled()
                    and jagged._can_use_efficient_sdpa_jagged(params)):
                return SDPBackend.EFFICIENT_ATTENTION
        return original(query, key, value, attn_mask, dropout, is_causal, enable_gqa)

    jagged._select_sdp_backend = select
    try:
        yield
    finally:
        jagged._select_sdp_backend = original


def in_jagged_code() -> bool:
    """Whether `torch.nested`'s jagged code is running: one of its frames is on the stack
    (an op it calls on a jagged tensor's values or offsets, not the model's own)."""
    frame: Any = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.startswith(_NESTED_CODE):
            return True
        frame = frame.f_back
    return False
