"""`analyze()`: frontend -> capture -> analyses -> Report."""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from memflops import aggregate, flops  # noqa: F401  (flops: loads every rule)
from memflops.capture.inputs import TensorSpec, dtype_name, normalize_inputs, parse_dtype
from memflops.capture.run import LossSpec, StepConfig, capture, check_loss, default_float_dtype
from memflops.conventions import Convention
from memflops.errors import SpecError, UsageError
from memflops.frontends.targets import load_target
from memflops.memory.kinds import Kind
from memflops.memory.optimizers import OptimizerSpec, check_optimizer, optimizer_label
from memflops.memory.seed import seed_estimate
from memflops.memory.timeline import replay
from memflops.params import count_params
from memflops.report.model import MemoryDetail, MemoryTotals, Report, Totals

MODES = ("inference", "train")
AUTOCAST_DTYPES = (torch.float16, torch.bfloat16)


def analyze(
    model: nn.Module | str,
    inputs: Any = None,
    *,
    mode: Literal["inference", "train"] = "inference",
    convention: str | Convention = "exact",
    dtype: str | torch.dtype | None = None,
    optimizer: OptimizerSpec | None = "adam",
    autocast: str | torch.dtype | None = None,
    loss: LossSpec = "sum",
    targets: Any = None,
    name: str | None = None,
) -> Report:
    """Count parameters, FLOPs, MACs and memory of one step of `model`.

    `model` is a module or a target string (`torchvision:resnet50`,
    `path/to/file.py:factory`, `package.module:factory`). `inputs` is a
    shape tuple, a list of shapes, tensors, or a dict of keyword inputs
    (see `memflops.capture.inputs`); zoo targets have a default.

    `mode` "inference" runs one `eval()` forward under `no_grad`; "train"
    runs the steady state of a training step: `train()` forward, a scalar
    `loss` ("sum" of the outputs, "cross_entropy" against int64 `targets`
    of the given shape, or a callable `loss(output, targets)`), backward and
    the `optimizer` step ("adam" by default; a name such as "sgd",
    "sgd-momentum", "adamw", "adam8bit", an optimizer instance, a factory
    taking the parameter list, or None for no step). `dtype` casts floating
    parameters and inputs (pure fp16/bf16); `autocast` ("fp16"/"bf16") runs
    the step under automatic mixed precision with fp32 parameters. No weight
    or activation is ever materialised.
    """
    if mode not in MODES:
        raise UsageError(f"unknown mode {mode!r}; expected one of: {', '.join(MODES)}")
    conv = Convention.parse(convention)
    cast = parse_dtype(dtype) if dtype is not None else None
    if cast is not None and not cast.is_floating_point:
        raise SpecError(f"dtype {dtype_name(cast)} is not a floating dtype")
    amp = parse_dtype(autocast, field="autocast") if autocast is not None else None
    if amp is not None and amp not in AUTOCAST_DTYPES:
        raise SpecError(f"autocast: expected fp16 or bf16, got {dtype_name(amp)}")
    train = mode == "train"
    if isinstance(optimizer, str) and optimizer == "none":
        optimizer = None
    check_optimizer(optimizer)
    check_loss(loss)

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
    target_spec = normalize_inputs(targets).args[0] if targets is not None else None

    params = count_params(module, cast)
    config = StepConfig(
        train=train,
        dtype=cast,
        optimizer=optimizer if train else None,
        autocast=amp,
        loss=loss,
        targets=target_spec,
    )
    cap = capture(module, specs, config)
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
    assert cap.storages is not None
    timeline = replay(cap.storages, cap.records, cap.grads, cap.optimizer_state)
    state_bytes = timeline.bytes_of(Kind.OPTIMIZER)
    memory = MemoryTotals(
        params=timeline.bytes_of(Kind.PARAMS),
        buffers=timeline.bytes_of(Kind.BUFFERS),
        grads=timeline.bytes_of(Kind.GRADS),
        optimizer=state_bytes,
        activations=timeline.bytes_of(Kind.ACTIVATIONS),
        peak=timeline.peak.bytes,
        seed_estimate=seed_estimate(
            param_bytes=params.param_bytes,
            trainable_bytes=params.trainable_bytes,
            optimizer_state_bytes=state_bytes,
            feature_map_bytes=sum(cap.feature_map_bytes.values()),
            train=train,
        ),
    )
    specs_all = [
        (n, s if s.dtype is not None else TensorSpec(s.shape, float_dtype)) for n, s in specs.all()
    ]
    precision = dtype_name(float_dtype)
    if amp is not None:
        precision = f"amp-{dtype_name(amp)} ({precision} parameters)"
    return Report(
        model=label,
        mode=mode,
        convention=conv,
        precision=precision,
        inputs=tuple(specs_all),
        totals=Totals(
            params=params.total,
            trainable_params=params.trainable,
            buffers=params.buffers,
            costs=aggregate.phase_costs(cap.records),
            memory=memory,
        ),
        modules=aggregate.module_rows(module, cap, params, timeline),
        uncounted_ops=uncounted,
        warnings=tuple(warnings),
        shared_params=params.shared,
        optimizer=optimizer_label(config.optimizer),
        memory_detail=MemoryDetail(
            peak_phase=timeline.peak.phase,
            peak_op=timeline.peak.op,
            peak_module=timeline.peak.module,
            peak_by_kind=tuple((k.value, b) for k, b in timeline.peak.by_kind),
            baseline=timeline.baseline,
            temporaries=timeline.bytes_of(Kind.TEMPORARIES),
            inputs=timeline.bytes_of(Kind.INPUTS),
            feature_maps=sum(cap.feature_map_bytes.values()),
            top_saved_modules=timeline.saved_by_module[:10],
        ),
        records=cap.records,
    )
