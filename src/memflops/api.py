"""`analyze()`: frontend -> capture -> analyses -> Report."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from memflops import aggregate, flops  # noqa: F401  (flops: loads every rule)
from memflops.capture.inputs import dtype_name, normalize_inputs, parse_dtype
from memflops.capture.run import capture, default_float_dtype
from memflops.conventions import Convention
from memflops.errors import SpecError, UsageError
from memflops.frontends.targets import load_target
from memflops.params import count_params
from memflops.report.model import MemoryTotals, Report, Totals

MODES = ("inference", "train")


def analyze(
    model: nn.Module | str,
    inputs: Any = None,
    *,
    mode: Literal["inference", "train"] = "inference",
    convention: str | Convention = "exact",
    dtype: str | torch.dtype | None = None,
    name: str | None = None,
) -> Report:
    """Count parameters, FLOPs and MACs of one step of `model`.

    `model` is a module or a target string (`torchvision:resnet50`,
    `path/to/file.py:factory`, `package.module:factory`). `inputs` is a
    shape tuple, a list of shapes, tensors, or a dict of keyword inputs
    (see `memflops.capture.inputs`); zoo targets have a default. `mode`
    "inference" runs one `eval()` forward under `no_grad`; "train" runs a
    `train()` forward, a scalar loss and the backward. `dtype` casts the
    floating parameters and inputs for the analysis. No weight or
    activation is ever materialised.
    """
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; expected one of: {', '.join(MODES)}")
    conv = Convention.parse(convention)
    cast = parse_dtype(dtype) if dtype is not None else None
    if cast is not None and not cast.is_floating_point:
        raise SpecError(f"dtype {dtype_name(cast)} is not a floating dtype")

    default_input = None
    if isinstance(model, str):
        loaded = load_target(model)
        module, label, default_input = loaded.module, name or model, loaded.default_input
    elif isinstance(model, nn.Module):
        module, label = model, name or type(model).__name__
    else:
        raise UsageError(
            f"model: expected a torch.nn.Module or a target string, got {type(model).__name__}"
        )
    if inputs is None:
        if default_input is None:
            raise SpecError(f"no inputs given for {label}: pass a shape such as (1, 3, 224, 224)")
        inputs = default_input
    specs = normalize_inputs(inputs)

    params = count_params(module, cast)
    cap = capture(module, specs, train=mode == "train", dtype=cast)
    float_dtype = default_float_dtype(module, cast)
    uncounted = aggregate.uncounted(cap)
    warnings = [
        f"parameter {a} is the same tensor as {b}: counted once" for a, b in params.shared
    ]
    if uncounted:
        total = sum(u.count for u in uncounted)
        warnings.append(
            f"{total} op call(s) of {len(uncounted)} kind(s) have no FLOP rule and are not "
            f"counted: {', '.join(u.op for u in uncounted)}"
        )
    specs_all = [
        (n, s if s.dtype is not None else type(s)(s.shape, float_dtype)) for n, s in specs.all()
    ]
    return Report(
        model=label,
        mode=mode,
        convention=conv,
        precision=dtype_name(float_dtype),
        inputs=tuple(specs_all),
        totals=Totals(
            params=params.total,
            trainable_params=params.trainable,
            buffers=params.buffers,
            costs=aggregate.phase_costs(cap.records),
            memory=MemoryTotals(params=params.param_bytes, buffers=params.buffer_bytes),
        ),
        modules=aggregate.module_rows(module, cap, params),
        uncounted_ops=uncounted,
        warnings=tuple(warnings),
        shared_params=params.shared,
        records=cap.records,
    )
