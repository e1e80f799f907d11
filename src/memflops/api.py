"""`analyze()`: frontend -> capture -> analyses -> Report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

import torch
from torch import nn

from memflops import aggregate, flops  # noqa: F401  (flops: loads every rule)
from memflops import analyze_options as defaults
from memflops.analyze_options import MODES
from memflops.capture.inputs import (
    InputSpecs,
    TensorSpec,
    dtype_name,
    normalize_inputs,
    parse_dtype,
)
from memflops.capture.step import (
    Capture,
    LossSpec,
    StepConfig,
    capture,
    check_loss,
    default_float_dtype,
    input_dtype,
)
from memflops.conventions import Convention
from memflops.errors import SpecError, UsageError
from memflops.frontends.targets import load_target
from memflops.generation import analyze_generate
from memflops.hardware.catalog import find_accelerator
from memflops.memory.fit import (
    ALLOCATION_GRANULARITY,
    CUDA_CONTEXT_BYTES,
    Sweep,
    SweepPoint,
    fit_line,
    largest_fitting,
    parse_memory,
)
from memflops.memory.kinds import Kind
from memflops.memory.optimizers import OptimizerSpec, check_optimizer, optimizer_label
from memflops.memory.seed import seed_estimate
from memflops.memory.timeline import Timeline, replay
from memflops.params import ParamCounts, count_params
from memflops.report.model import MemoryTotals, Report, Totals

DEFAULT_SEQ = 128
"""Sequence length of token inputs when only a batch is given."""
DIMENSIONS = ("batch", "seq")
AUTOCAST_DTYPES = (torch.float16, torch.bfloat16)


def analyze(
    model: nn.Module | str,
    inputs: Any = None,
    *,
    mode: Literal["inference", "train", "generate"] = defaults.MODE,
    convention: str | Convention = defaults.CONVENTION,
    dtype: str | torch.dtype | None = None,
    optimizer: OptimizerSpec | None = defaults.OPTIMIZER,
    autocast: str | torch.dtype | None = None,
    loss: LossSpec = defaults.LOSS,
    targets: Any = None,
    batch_sweep: Sequence[int] | None = None,
    fit: str | int | None = None,
    fit_dimension: Literal["batch", "seq"] = defaults.FIT_DIMENSION,
    allocator_overhead: bool = False,
    batch: int | None = None,
    seq: int | None = None,
    prompt_len: int | None = None,
    new_tokens: int | None = None,
    cache_dtype: str | torch.dtype | None = None,
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

    `batch_sweep` (sizes) re-analyses the step at each batch size and fits
    peak = constant + per-sample x batch. `fit` (bytes, "24GiB", or an
    accelerator from the catalog such as "H200") finds the largest batch —
    or with `fit_dimension="seq"` the largest sequence length (dimension 1
    of the inputs) — whose peak fits, confirmed by analysing it and the next
    size. `allocator_overhead` rounds every allocation up to 512 bytes and
    adds a CUDA context, as a GPU process would see it.

    `batch` and `seq` build the inputs of targets that know their input
    form (Hugging Face text models) instead of raw shapes. `mode="generate"`
    analyses autoregressive generation of a causal LM: the prefill of
    `prompt_len` tokens, then `new_tokens` decode steps with a KV cache
    (stored in `cache_dtype`, default the model's dtype); see
    `memflops.capture.generate`.
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
    if fit_dimension not in DIMENSIONS:
        raise UsageError(
            f"unknown fit_dimension {fit_dimension!r}; expected one of: {', '.join(DIMENSIONS)}"
        )
    sizes = _check_sizes(batch_sweep)
    capacity = _capacity(fit) if fit is not None else None

    default_input: Any = None
    make_inputs = None
    frontend_warnings: tuple[str, ...] = ()
    active_params = None
    if isinstance(model, str):
        loaded = load_target(model)
        module, label, default_input = loaded.module, name or model, loaded.default_input
        make_inputs = loaded.make_inputs
        frontend_warnings, active_params = loaded.warnings, loaded.active_params_per_token
    elif isinstance(model, nn.Module):
        module, label = model, name or type(model).__name__
    else:
        raise UsageError(
            f"model: expected a torch.nn.Module or a target string, got {type(model).__name__}"
        )
    if mode == "generate":
        if prompt_len is None or new_tokens is None:
            raise UsageError("mode generate needs prompt_len and new_tokens")
        kv = parse_dtype(cache_dtype, field="cache_dtype") if cache_dtype is not None else None
        report = analyze_generate(
            module,
            label,
            batch=batch or 1,
            prompt_len=prompt_len,
            new_tokens=new_tokens,
            dtype=cast,
            cache_dtype=kv,
            convention=conv,
        )
        return replace(
            report,
            totals=replace(report.totals, active_params=active_params),
            warnings=frontend_warnings + report.warnings,
        )
    if batch is not None or seq is not None:
        if inputs is not None:
            raise UsageError("give either inputs or batch/seq, not both")
        if make_inputs is None:
            raise UsageError(
                f"{label} takes raw input shapes, not batch/seq: pass inputs such as "
                f"(1, 3, 224, 224)"
            )
        inputs = make_inputs(batch or 1, seq or DEFAULT_SEQ)
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
    cap, timeline = _run(module, specs, config, allocator_overhead)
    float_dtype = default_float_dtype(module, cast)
    uncounted = aggregate.uncounted(cap.records, cap.rule_failures)
    warnings = list(frontend_warnings) + [
        f"parameter {a} is the same tensor as {b}: counted once" for a, b in params.shared
    ]
    warnings += aggregate.uncounted_warnings(uncounted)
    warnings += cap.assumptions.warnings()
    state_bytes = timeline.bytes_of(Kind.OPTIMIZER)
    sweep = None
    if sizes:
        points = []
        for size in sizes:
            c, t = _run(module, _resized(specs, size, 0), config, allocator_overhead)
            points.append(SweepPoint(size, t.peak.bytes, _seed(c, t, params, train)))
        constant, per_item = fit_line([(p.size, p.peak) for p in points])
        sweep = Sweep("batch", tuple(points), constant, per_item)
    fitted = None
    if capacity is not None:
        axis = 0 if fit_dimension == "batch" else 1
        _check_axis(specs, axis, fit_dimension)
        fitted = largest_fitting(
            lambda n: _run(module, _resized(specs, n, axis), config, allocator_overhead)[1]
            .peak.bytes,
            capacity,
            dimension=fit_dimension,
        )
    memory = MemoryTotals(
        params=timeline.bytes_of(Kind.PARAMS),
        buffers=timeline.bytes_of(Kind.BUFFERS),
        grads=timeline.bytes_of(Kind.GRADS),
        optimizer=state_bytes,
        activations=timeline.bytes_of(Kind.ACTIVATIONS),
        peak=timeline.peak.bytes,
        seed_estimate=_seed(cap, timeline, params, train),
    )
    specs_all = [
        (n, TensorSpec(s.shape, input_dtype(s, float_dtype, cast))) for n, s in specs.all()
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
            active_params=active_params,
            costs=aggregate.phase_costs(cap.records),
            memory=memory,
        ),
        modules=aggregate.module_rows(module, cap, params, timeline),
        uncounted_ops=uncounted,
        warnings=tuple(warnings),
        shared_params=params.shared,
        optimizer=optimizer_label(config.optimizer),
        sweep=sweep,
        fit=fitted,
        memory_detail=aggregate.memory_detail(timeline, sum(cap.feature_map_bytes.values())),
        records=cap.records,
    )


def _run(
    module: nn.Module, specs: InputSpecs, config: StepConfig, allocator_overhead: bool
) -> tuple[Capture, Timeline]:
    cap = capture(module, specs, config)
    assert cap.storages is not None
    timeline = replay(
        cap.storages,
        cap.records,
        cap.grads,
        cap.optimizer_state,
        granularity=ALLOCATION_GRANULARITY if allocator_overhead else 1,
    )
    if allocator_overhead:
        peak = timeline.peak
        timeline = replace(timeline, peak=replace(peak, bytes=peak.bytes + CUDA_CONTEXT_BYTES))
    return cap, timeline


def _seed(cap: Capture, timeline: Timeline, params: ParamCounts, train: bool) -> int:
    return seed_estimate(
        param_bytes=params.param_bytes,
        trainable_bytes=params.trainable_bytes,
        optimizer_state_bytes=timeline.bytes_of(Kind.OPTIMIZER),
        feature_map_bytes=sum(cap.feature_map_bytes.values()),
        train=train,
    )


def _check_sizes(sizes: Sequence[int] | None) -> tuple[int, ...]:
    if sizes is None:
        return ()
    checked = tuple(sizes)
    if not checked or any(not isinstance(n, int) or n < 1 for n in checked):
        raise UsageError(f"batch_sweep: expected positive integers, got {list(checked)}")
    return checked


def _capacity(fit: str | int) -> int:
    """Bytes from an int, a size string ("24GiB") or an accelerator name ("H200")."""
    if isinstance(fit, int):
        if fit <= 0:
            raise UsageError(f"fit: expected a positive byte count, got {fit}")
        return fit
    if fit.strip()[:1].isdigit():
        return parse_memory(fit)
    return find_accelerator(fit).memory_bytes


def _check_axis(specs: InputSpecs, axis: int, dimension: str) -> None:
    for name, spec in specs.all():
        if len(spec.shape) <= axis:
            raise UsageError(
                f"fit_dimension={dimension}: input {name} of shape {spec.describe()} has no "
                f"dimension {axis} to vary"
            )


def _resized(specs: InputSpecs, size: int, axis: int) -> InputSpecs:
    """The same inputs with dimension `axis` (0: batch, 1: sequence) set to `size`."""

    def resize(spec: TensorSpec) -> TensorSpec:
        if len(spec.shape) <= axis:
            return spec
        shape = list(spec.shape)
        shape[axis] = size
        return TensorSpec(tuple(shape), spec.dtype)

    return InputSpecs(
        tuple(resize(s) for s in specs.args), tuple((k, resize(s)) for k, s in specs.kwargs)
    )
