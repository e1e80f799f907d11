"""Indices picked from computed values, assumed balanced so routing can run.

A mixture-of-experts router picks each token's experts with `topk` (or
`argmax`) over scores computed from activations, then finds who went where
with ops whose output size depends on the picks (`one_hot` then `nonzero`,
`torch.where`, boolean masks, `.tolist()`). Fake tensors have no values, so
the picks are unknown and the model cannot go on.

The INDICES output of such a pick over unknown floating-point values (scores; an
integer or boolean input is a mask or a position, never assumed) is made a known value
(`capture.values.known`) under one stated assumption, balanced picks: with
every dimension but the reduced one flattened into rows in order, row `r`
picks `(r * k + j) mod n` for `j` in `0 .. k-1` (`k` picks of `n`; `k = 1`
for `argmax`/`argmin`/`max.dim`/`min.dim`). The `k` indices of a row are
distinct when `k <= n`, so they are the result of `topk` on some input.
Token-expert pair `s = r * k + j` goes to expert `s mod n`: the balanced
routing `zoo.hf.moe.shares` assumes. Every token still runs through its
`k` experts, so the experts' FLOPs total those of the real active path; only
their split among experts assumes balance. The VALUES output stays unknown.

Everything computed from the picks and other known values is known in turn,
so data-dependent ops get their true sizes. `KnownValues` counts the picks
that steered the analysis (a value read, an output size), which the report's
warnings state.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import _disable_current_modes

from memflops.capture.costing import named_args

aten = torch.ops.aten

_PICKS: dict[Any, int | None] = {
    aten.topk.default: None,  # k is an argument
    aten.argmax.default: 1,
    aten.argmin.default: 1,
    aten.max.dim: 1,
    aten.min.dim: 1,
}
"""Pick ops -> picks per row (None: the op's `k`)."""


def balanced(shape: tuple[int, ...], dim: int, k: int, keepdim: bool = True) -> torch.Tensor:
    """Indices `(r * k + j) mod n` along `dim` of `shape` (n = shape[dim]), with row `r`
    the flat position of the other dimensions: shape `shape` with `shape[dim] = k` (or
    without `dim` if not `keepdim`; k = 1 then). A real tensor, even under a fake mode."""
    n = shape[dim]
    rest = shape[:dim] + shape[dim + 1:]
    rows = 1
    for size in rest:
        rows *= size
    with _disable_current_modes():
        flat = (torch.arange(rows).unsqueeze(1) * k + torch.arange(k).unsqueeze(0)) % n
        picks = flat.reshape(*rest, k).movedim(-1, dim)
        return (picks if keepdim else picks.squeeze(dim)).contiguous()


def is_pick(func: Any) -> bool:
    return func in _PICKS


def pick_indices(func: Any, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any,
                 limit: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(the fake indices output, their balanced real value) if `func` picks at most
    `limit` indices, else None. The caller checks that the picked-from values are unknown."""
    if func not in _PICKS:
        return None
    x = args[0]
    if (not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() == 0
            or x.numel() == 0):
        return None  # integer or boolean inputs are masks and positions, not scores
    indices = out[1] if isinstance(out, (tuple, list)) else out
    if not isinstance(indices, torch.Tensor) or indices.numel() > limit:
        return None
    named = named_args(func, args, kwargs)
    dim = named["dim"]
    shape = tuple(int(s) for s in x.shape)
    if dim is None:  # argmax over the flattened tensor: one row
        dim, shape = 0, (x.numel(),)
    dim = int(dim) % len(shape)
    k = _PICKS[func]
    if k is None:
        k = int(named["k"])
    if not 0 < k <= shape[dim]:
        return None
    keepdim = indices.dim() == len(shape)  # else keepdim=False dropped the picked dim
    real = balanced(shape, dim, k, keepdim)
    if tuple(real.shape) != tuple(indices.shape) or indices.dtype != torch.int64:
        return None
    return indices, real
