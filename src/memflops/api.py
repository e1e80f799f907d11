"""`analyze()`, the façade: one analysis read top to bottom as its pipeline.

request (options checked) -> model resolved -> (generate mode: its own
analysis) -> inputs built -> the step captured -> its memory replayed ->
batch sweep / fit when asked -> the Report assembled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from memflops import aggregate, flops  # noqa: F401  (flops: loads every rule)
from memflops import analyze_options as defaults
from memflops.capture.inputs import InputSpecs, TensorSpec, dtype_name, normalize_inputs
from memflops.capture.step import (
    Capture,
    LossSpec,
    StepConfig,
    capture,
    default_float_dtype,
    input_dtype,
)
from memflops.conventions import Convention
from memflops.errors import SpecError, UsageError
from memflops.frontends.resolve import ResolvedModel, resolve_model
from memflops.generation import analyze_generate
from memflops.memory.fit import Fit, Sweep
from memflops.memory.kinds import Kind
from memflops.memory.optimizers import OptimizerSpec, optimizer_label
from memflops.memory.seed import seed_estimate
from memflops.memory.series import capture_series
from memflops.memory.sweep import Measure, fit_size, sweep_batch
from memflops.memory.timeline import Timeline, replay_capture
from memflops.params import ParamCounts, count_params
from memflops.progress import Progress, counting
from memflops.report.assemble import assemble_report
from memflops.report.model import MemoryTotals, Report
from memflops.request import AnalysisRequest

DEFAULT_SEQ = 128
"""Sequence length of token inputs when only a batch is given."""


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
    progress: Progress | None = None,
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

    `progress(task, done, total)` is called after each analysis a batch
    sweep or a fit runs (`memflops.progress`; the command line draws it).
    """
    request = AnalysisRequest.from_arguments(
        mode=mode, convention=convention, dtype=dtype, optimizer=optimizer, autocast=autocast,
        loss=loss, targets=targets, batch_sweep=batch_sweep, fit=fit,
        fit_dimension=fit_dimension, allocator_overhead=allocator_overhead, batch=batch, seq=seq,
        prompt_len=prompt_len, new_tokens=new_tokens, cache_dtype=cache_dtype, name=name,
    )
    target = resolve_model(model, request.name)
    if request.mode == "generate":
        return analyze_generate(target, request)
    specs = build_inputs(inputs, target, request)
    config = request.step_config()
    params = count_params(target.module, request.cast)
    cap = capture(target.module, specs, config)
    timeline = replay_capture(cap, allocator_overhead=request.allocator_overhead)
    measure = _measure_at(target.module, config, params, request.allocator_overhead)
    sweep = None
    if request.sweep_sizes:
        sizes = request.sweep_sizes
        sweep = sweep_batch(specs, sizes, counting(measure, progress, "batch sweep", len(sizes)))
    fitted = None
    if request.capacity is not None:
        measured = counting(measure, progress, "fit", None)
        fitted = fit_size(specs, request.capacity, request.fit_dimension, measured)
    return _step_report(target, request, specs, params, cap, timeline, sweep, fitted)


def build_inputs(inputs: Any, target: ResolvedModel, request: AnalysisRequest) -> InputSpecs:
    """The step's inputs: those given, else built from batch/seq, else the target's default."""
    if request.batch is not None or request.seq is not None:
        if inputs is not None:
            raise UsageError("give either inputs or batch/seq, not both")
        if target.make_inputs is None:
            raise UsageError(
                f"{target.label} takes raw input shapes, not batch/seq: pass inputs such as "
                f"(1, 3, 224, 224)"
            )
        inputs = target.make_inputs(request.batch or 1, request.seq or DEFAULT_SEQ)
    if inputs is None:
        if target.default_input is None:
            raise SpecError(
                f"no inputs given for {target.label}: pass a shape such as (1, 3, 224, 224)"
            )
        inputs = target.default_input
    return normalize_inputs(inputs)


def _measure_at(
    module: nn.Module, config: StepConfig, params: ParamCounts, allocator_overhead: bool
) -> Measure:
    """The step analysed again on other inputs (a sweep's or a fit's): its peak and estimate."""

    def measure(specs: InputSpecs) -> tuple[int, int]:
        cap = capture(module, specs, config)
        timeline = replay_capture(cap, allocator_overhead=allocator_overhead)
        return timeline.peak.bytes, _seed(cap, timeline, params, config.train)

    return measure


def _step_report(
    target: ResolvedModel,
    request: AnalysisRequest,
    specs: InputSpecs,
    params: ParamCounts,
    cap: Capture,
    timeline: Timeline,
    sweep: Sweep | None,
    fitted: Fit | None,
) -> Report:
    float_dtype = default_float_dtype(target.module, request.cast)
    return assemble_report(
        model=target.label,
        mode=request.mode,
        convention=request.convention,
        precision=_precision(float_dtype, request.autocast),
        inputs=[
            (n, TensorSpec(s.shape, input_dtype(s, float_dtype, request.cast)))
            for n, s in specs.all()
        ],
        params=params.total,
        trainable_params=params.trainable,
        buffers=params.buffers,
        active_params=target.active_params,
        shared_params=params.shared,
        memory=_memory_totals(timeline, _seed(cap, timeline, params, request.train)),
        modules=aggregate.module_rows(target.module, cap, params, timeline),
        records=cap.records,
        uncounted=aggregate.uncounted(cap.records, cap.rule_failures),
        notes=(*target.warnings, *_shared_warnings(params)),
        assumptions=cap.assumptions.warnings(),
        optimizer=optimizer_label(request.step_optimizer),
        sweep=sweep,
        fit=fitted,
        memory_detail=aggregate.memory_detail(timeline, sum(cap.feature_map_bytes.values())),
        memory_timeline=capture_series(cap, allocator_overhead=request.allocator_overhead),
    )


def _precision(float_dtype: torch.dtype, autocast: torch.dtype | None) -> str:
    precision = dtype_name(float_dtype)
    return precision if autocast is None else f"amp-{dtype_name(autocast)} ({precision} parameters)"


def _shared_warnings(params: ParamCounts) -> list[str]:
    return [f"parameter {a} is the same tensor as {b}: counted once" for a, b in params.shared]


def _memory_totals(timeline: Timeline, seed: int) -> MemoryTotals:
    return MemoryTotals(
        params=timeline.bytes_of(Kind.PARAMS),
        buffers=timeline.bytes_of(Kind.BUFFERS),
        grads=timeline.bytes_of(Kind.GRADS),
        optimizer=timeline.bytes_of(Kind.OPTIMIZER),
        activations=timeline.bytes_of(Kind.ACTIVATIONS),
        peak=timeline.peak.bytes,
        seed_estimate=seed,
    )


def _seed(cap: Capture, timeline: Timeline, params: ParamCounts, train: bool) -> int:
    return seed_estimate(
        param_bytes=params.param_bytes,
        trainable_bytes=params.trainable_bytes,
        optimizer_state_bytes=timeline.bytes_of(Kind.OPTIMIZER),
        feature_map_bytes=sum(cap.feature_map_bytes.values()),
        train=train,
    )
