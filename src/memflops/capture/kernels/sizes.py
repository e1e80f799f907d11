"""Outputs whose real size differs from what PyTorch's meta kernels give.

Fake tensors take their sizes from meta kernels, which are exact for almost
every op. Where a real kernel allocates a different size, one rule here says
how many bytes the real kernel allocates for that output, and the storage
tracker counts that. Each rule names what it was checked against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from memflops.capture.kernels.rnn_workspace import workspace_bytes_from_op

SizeRule = Callable[[Sequence[Any], Sequence[Any]], dict[int, int]]
_RULES: dict[str, SizeRule] = {}

_HALF = (torch.float16, torch.bfloat16)


def _fp32_statistics(*indices: int) -> SizeRule:
    """Normalisation statistics are kept in fp32 for half-precision inputs.

    Checked on CPU (torch 2.14: native_batch_norm, native_layer_norm and
    native_group_norm with bf16/fp16 input return fp32 mean and rstd) and
    in CUDA's layer_norm_kernel.cu, which writes them as the accumulation
    type; the meta kernels give them the input's dtype.
    """

    def rule(args: Sequence[Any], outputs: Sequence[Any]) -> dict[int, int]:
        sizes = {}
        for i in indices:
            t = outputs[i] if i < len(outputs) else None
            if isinstance(t, torch.Tensor) and t.dtype in _HALF:
                sizes[i] = t.numel() * 4
        return sizes

    return rule


for _name in ("aten.native_batch_norm", "aten._native_batch_norm_legit",
              "aten._native_batch_norm_legit_functional", "aten._batch_norm_with_update",
              "aten.native_layer_norm", "aten.native_group_norm"):
    _RULES[_name] = _fp32_statistics(1, 2)


def _onednn_rnn_workspace(args: Sequence[Any], outputs: Sequence[Any]) -> dict[int, int]:
    """The oneDNN workspace of a CPU LSTM layer (output 3), which autograd saves.

    PyTorch's meta kernel returns it empty; the real kernel allocates the
    size `memflops.capture.kernels.rnn_workspace` derives, whenever grad is enabled.
    """
    x = args[0]
    if len(outputs) < 4 or not isinstance(x, torch.Tensor):
        return {}
    nbytes = workspace_bytes_from_op(
        tuple(x.shape), int(args[9]), int(args[10]), x.element_size(), torch.is_grad_enabled()
    )
    return {3: nbytes} if nbytes else {}


_RULES["aten.mkldnn_rnn_layer"] = _onednn_rnn_workspace


# Outputs a meta kernel returns as one tensor where the real kernel allocates
# two: mkldnn_rnn_layer_backward's gradients of b_ih and b_hh (outputs 3 and
# 4) are the same tensor in the meta kernel (checked on torch 2.14.1: the real
# CPU kernel returns two storages of 4H values each).
_SEPARATE: dict[str, tuple[int, ...]] = {"aten.mkldnn_rnn_layer_backward": (4,)}


def separate_outputs(name: str, outputs: Any) -> Any:
    """`outputs` with each output the real kernel allocates apart given its own storage."""
    indices = _SEPARATE.get(name)
    if not indices or not isinstance(outputs, tuple):
        return outputs
    result = list(outputs)
    for i in indices:
        t = result[i] if i < len(result) else None
        if isinstance(t, torch.Tensor) and any(
            isinstance(o, torch.Tensor)
            and o.untyped_storage()._cdata == t.untyped_storage()._cdata
            for o in result[:i]
        ):
            result[i] = t.clone()
    return tuple(result)


def real_output_bytes(name: str, args: Sequence[Any], outputs: Any) -> dict[int, int]:
    """{output index: bytes the real kernel allocates} where it differs from the meta size."""
    rule = _RULES.get(name)
    if rule is None or not isinstance(outputs, (tuple, list)):
        return {}
    return rule(args, outputs)
