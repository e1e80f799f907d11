"""Lower precision: automatic mixed precision (fp32 parameters, fp16/bf16 compute) and
pure bf16 (parameters, gradients, optimizer state and activations in bf16).

Both change the numbers the model computes (rounding), so neither is function-preserving
in the strict sense the advisor uses; bf16 AMP is what large models train with.
"""

from __future__ import annotations

import torch

from memflops.advisor.changes import Applied, NotApplicable, Step, change
from memflops.capture.inputs import parse_dtype
from memflops.tensor_spec import dtype_name

FLOAT32 = torch.float32


def _model_dtype(step: Step) -> torch.dtype:
    dtype = step.options.get("dtype")
    if dtype is not None:
        return parse_dtype(dtype)
    for p in step.module.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def _check_fp32(step: Step) -> None:
    if step.options.get("autocast") is not None:
        raise NotApplicable(f"the step already runs under autocast {step.options['autocast']}")
    dtype = _model_dtype(step)
    if dtype != FLOAT32:
        raise NotApplicable(f"the parameters are {dtype_name(dtype)} already, not float32")


def _amp(step: Step, dtype: str) -> Applied:
    _check_fp32(step)
    return Applied(step.with_options(autocast=dtype),
                   note=f"torch.autocast({dtype}): fp32 parameters and optimizer state, "
                   f"{dtype} activations of matmuls and convolutions")


@change("amp-bf16", "automatic mixed precision, bf16", kind="both", preserves_function=False,
        group="precision", copies_model=False)
def amp_bf16(step: Step) -> Applied:
    return _amp(step, "bf16")


@change("amp-fp16", "automatic mixed precision, fp16", kind="both", preserves_function=False,
        group="precision", copies_model=False)
def amp_fp16(step: Step) -> Applied:
    return _amp(step, "fp16")


@change("bf16", "pure bf16 (parameters, gradients, state, activations)", kind="both",
        preserves_function=False, group="precision", copies_model=False)
def pure_bf16(step: Step) -> Applied:
    _check_fp32(step)
    return Applied(step.with_options(dtype="bf16"),
                   note="every floating tensor in bf16; keep an fp32 master copy or use "
                   "stochastic rounding for long runs")
