"""`analyze()`, the façade: one analysis read top to bottom as its pipeline.

request (options checked) -> model resolved -> (generate mode: its own
analysis) -> inputs built -> the step captured -> its memory replayed, and
through the caching allocator -> batch sweep / fit when asked -> the Report
assembled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

import torch
from torch import nn

from memflops import aggregate, flops  # noqa: F401  (flops: loads every rule)
from memflops import analyze_options as defaults
from memflops.capture.checkpointing import (
    can_turn_off,
    checkpointing_off,
    outermost,
)
from memflops.capture.costing import borrowed_warning
from memflops.capture.data_parallel import DataParallelModel, modelled_notes
from memflops.capture.inputs import (
    INTEGER_INPUT_NAMES,
    InputSpecs,
    TensorSpec,
    dtype_name,
    normalize_inputs,
)
from memflops.capture.isolation import random_state_kept
from memflops.capture.parallel import ParallelWrapper
from memflops.capture.pipeline import PipelineCapture, PipelineModel
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
from memflops.frontends.zoos import builtin_tp_plan, library_adjustments
from memflops.generation import analyze_generate
from memflops.hardware.catalog import Accelerator
from memflops.hardware.time_model import TimeConstants, TimeModel, communication_time
from memflops.memory.fit import Fit, Sweep, fewest_fitting, saturation
from memflops.memory.kinds import Kind
from memflops.memory.optimizers import OptimizerSpec, optimizer_label
from memflops.memory.parallel import kinds_at_peak
from memflops.memory.reserved import ReservedMemory, device_need, simulate_capture
from memflops.memory.seed import seed_estimate
from memflops.memory.series import capture_series
from memflops.memory.sweep import AXES, Measure, Need, fit_size, resized, sweep_batch
from memflops.memory.timeline import Timeline, replay_capture
from memflops.parallel_options import TP_STYLES
from memflops.params import ParamCounts, count_params
from memflops.progress import Progress, counting
from memflops.report.assemble import assemble_report
from memflops.report.model import (
    Checkpointing,
    CollectiveRow,
    GradAccumulation,
    MemoryTotals,
    Parallel,
    Pipeline,
    PipelineStage,
    Report,
    Timing,
)
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
    fit_dimension: Literal["batch", "seq", "ranks"] = defaults.FIT_DIMENSION,
    fit_against: Literal["allocated", "reserved"] = defaults.FIT_AGAINST,
    allocator_conf: str | None = None,
    allocator_overhead: bool = False,
    batch: int | None = None,
    seq: int | None = None,
    prompt_len: int | None = None,
    new_tokens: int | None = None,
    cache_dtype: str | torch.dtype | None = None,
    name: str | None = None,
    gpu: str | Accelerator | None = None,
    time_constants: str | dict[str, object] | TimeConstants | None = None,
    parallel: str | None = None,
    tp_plan: str | dict[str, str] | None = None,
    grad_accumulation: int | None = None,
    attention: str | None = None,
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
    size; with `fit_against="reserved"` a size fits when PyTorch's caching
    allocator, simulated with a CUDA context held aside, never fails to
    reserve memory (the report's `fit.against` says which was used).

    Every train and inference step (and generation) is also run through a
    simulation of PyTorch's CUDA caching allocator in steady state
    (`memflops.memory.reserved`): the reserved peak, fragmentation, segments
    and the device total nvidia-smi shows. `allocator_conf` sets its options
    as `PYTORCH_CUDA_ALLOC_CONF` does, e.g. "expandable_segments:True".
    `allocator_overhead`, the older approximation, rounds every allocation up
    to 512 bytes and adds a CUDA context to the peak.

    `batch` and `seq` build the inputs of targets that know their input
    form (Hugging Face text models) instead of raw shapes. `mode="generate"`
    analyses autoregressive generation of a causal LM: the prefill of
    `prompt_len` tokens, then `new_tokens` decode steps with a KV cache
    (stored in `cache_dtype`, default the model's dtype); see
    `memflops.capture.generate`.

    Every op's bytes read and written are priced beside its FLOPs. `gpu` (a
    catalog name such as "A100 80GB SXM", `custom:fp16=300T,bw=1.5T,mem=40G`
    or a JSON file of those keys) times the step on that accelerator with the
    roofline of `memflops.hardware.time_model`: time per op, module and phase,
    throughput and MFU (generate mode: prefill and decode times).
    `time_constants` ("matmul=0.6,overhead=5us", or a mapping) overrides the
    model's global constants (docs/time-model.md).
    `parallel` ("fsdp=8", "fsdp=8,reshard_after_forward=off", "tp=2"; see
    `memflops.parallel_options`) runs the step as one rank of a job over
    several GPUs, with PyTorch's own FSDP2 or DTensor tensor parallel on a
    fake process group (`memflops.capture.parallel`): `totals.memory` and
    the FLOPs are then rank 0's, with the inputs given as its batch;
    `report.parallel` holds its memory by kind, its collectives and (with
    `gpu`) their time. `tp_plan` (module name patterns to styles, or a JSON
    file of them) is the tensor-parallel plan; Hugging Face models bring
    their own.
    `grad_accumulation` (train mode; M >= 1) accumulates gradients over M
    micro-batches per optimizer step: the inputs are one micro-batch, the
    loss is divided by M, and forward and backward run M times (the second
    and later adding into the gradients) before the optimizer step. The
    capture runs micro-batches 1 and 2 and the optimizer step; FLOPs, bytes,
    calls and time are per optimizer step (micro-batch 1 + (M - 1) x
    micro-batch 2 + the optimizer), memory is the step's peak with one
    micro-batch's activations, and `report.grad_accumulation` holds the
    micro-batches, the effective batch and each micro-batch's FLOPs.
    `attention` ("sdpa", "eager" or "flex_attention") builds a Hugging Face
    target (`hf:NAME`) with that attention implementation (default: SDPA
    where the model supports it); the label says which.
    `progress(task, done, total)` is called after each analysis a batch
    sweep or a fit runs (`memflops.progress`; the command line draws it).
    """
    request = AnalysisRequest.from_arguments(
        mode=mode, convention=convention, dtype=dtype, optimizer=optimizer, autocast=autocast,
        loss=loss, targets=targets, batch_sweep=batch_sweep, fit=fit,
        fit_dimension=fit_dimension, allocator_overhead=allocator_overhead, batch=batch, seq=seq,
        prompt_len=prompt_len, new_tokens=new_tokens, cache_dtype=cache_dtype, name=name,
        fit_against=fit_against, allocator_conf=allocator_conf,
        gpu=gpu, time_constants=time_constants, parallel=parallel, tp_plan=tp_plan,
        grad_accumulation=grad_accumulation, attention=attention,
    )
    if progress is not None and not callable(progress):
        raise UsageError(f"progress: expected a callable progress(task, done, total), got "
                         f"{type(progress).__name__}")
    with random_state_kept():  # nothing drawn here changes the caller's next draw
        target = resolve_model(model, request.name, request.attention)
        with library_adjustments(target.module):
            return _analyze(target, inputs, request, progress)


def _analyze(
    target: ResolvedModel, inputs: Any, request: AnalysisRequest, progress: Progress | None
) -> Report:
    """The analysis of a resolved model (`analyze`'s steps after the request)."""
    if request.mode == "generate":
        if inputs is not None:
            raise UsageError("inputs do not apply to mode 'generate', which builds its prompt "
                             "of prompt_len tokens (and batch); leave them out")
        options = request.generate_options()
        within_positions(target, options.prompt_len + options.new_tokens,
                         f"prompt_len {options.prompt_len} + new_tokens {options.new_tokens}")
        return analyze_generate(target, request)
    specs = build_inputs(inputs, target, request)
    _jagged_kept(specs, request)
    for name, spec in token_inputs(specs):
        within_positions(target, spec.shape[1], f"input {name} of shape {spec.describe()}")
    request, run = micro_batches(request, specs)
    config = replace(_config_at(request.step_config(), specs, run),
                     wrapper=parallel_wrapper(target, request))
    params = count_params(target.module, request.cast)
    cap = capture(target.module, run, config)
    timeline = replay_capture(cap, allocator_overhead=request.allocator_overhead)
    reserved = simulate_capture(cap, request.allocator)
    timed: dict[tuple[tuple[int, ...], ...], Timing] = {}
    measure = _measure_at(target.module, config, params, request, timed, specs)
    sweep = None
    if request.sweep_sizes:
        sizes = request.sweep_sizes
        sweep = sweep_batch(specs, sizes, counting(measure, progress, "batch sweep", len(sizes)))
    fitted = None
    if request.capacity is not None and request.fit_dimension == "ranks":
        fitted = _fewest_ranks(target, specs, config, request, request.capacity)
    elif request.capacity is not None:
        need = counting(
            _need_at(target.module, config, request, request.capacity, measure, specs),
            progress, "fit", None)
        fitted = fit_size(
            specs, request.capacity, request.fit_dimension, need, request.fit_against,
            limits=_fit_limits(target),
        )
    if timed:
        sweep, fitted = _with_times(sweep, fitted, specs, request, timed)
    timing = time_step(request, cap, specs)
    checkpointed = _checkpointing(target.module, run, config, cap, request.allocator_overhead)
    return _step_report(
        target, request, specs, params, cap, timeline, reserved, sweep, fitted, checkpointed,
        timing,
    )


def micro_batches(
    request: AnalysisRequest, specs: InputSpecs
) -> tuple[AnalysisRequest, InputSpecs]:
    """Under pipeline parallel, the request with its micro-batch count (default: the batch)
    and the inputs of one micro-batch (dimension 0 divided by it); otherwise both as
    given."""
    spec = request.parallel
    if spec is None or not spec.pipelined:
        return request, specs
    first_name, first = specs.all()[0]
    if not first.shape:
        raise UsageError(f"parallel: pp splits the batch (dimension 0 of the inputs); input "
                         f"{first_name} is a scalar")
    batch = int(first.shape[0])
    count = spec.microbatches or batch
    if batch % count:
        raise UsageError(f"parallel: microbatches={count} does not divide the batch of "
                         f"{batch} (dimension 0 of input {first_name}, {first.describe()})")
    stages = spec.size("pp")
    if spec.schedule == "interleaved" and count % stages:
        raise UsageError(f"parallel: schedule=interleaved needs microbatches a multiple of "
                         f"pp={stages} (as Megatron-LM requires); got {count}")
    layout = replace(spec, microbatches=count)
    return replace(request, parallel=layout), resized(specs, batch // count, 0)


def token_inputs(specs: InputSpecs) -> list[tuple[str, TensorSpec]]:
    """The inputs holding a token sequence in dimension 1: integer inputs of two or more
    dimensions, positional or named like token indices (`input_ids`, `attention_mask`)."""
    return [
        (name, spec) for name, spec in specs.all()
        if len(spec.shape) >= 2 and spec.dtype is not None and not spec.dtype.is_floating_point
        and spec.dtype != torch.bool
        and (name.startswith("input[") or name in INTEGER_INPUT_NAMES)
    ]


def within_positions(target: ResolvedModel, length: int, what: str) -> None:
    """A sequence no longer than the model's learned positions: past them a real run fails
    (an index out of its position table) where a fake one would answer."""
    if target.max_seq is not None and length > target.max_seq:
        raise UsageError(
            f"{what}: {length} tokens, longer than {target.label}'s {target.max_seq:,} learned "
            f"positions; a real run fails past them"
        )


def _fit_limits(target: ResolvedModel) -> dict[str, tuple[int, str]]:
    """The most each fit dimension may reach, and why (`memory.sweep.fit_size`)."""
    if target.max_seq is None:
        return {}
    return {"seq": (target.max_seq, f"{target.label}'s learned positions")}


def time_step(request: AnalysisRequest, cap: Capture, specs: InputSpecs) -> Timing | None:
    """The captured step timed on the requested accelerator (None when none is asked)."""
    if request.accelerator is None:
        return None
    model = TimeModel(request.accelerator, request.time_constants)
    samples, tokens = _step_size(specs, request.grad_accumulation)
    return Timing(request.accelerator, request.time_constants, model.estimate(cap.records),
                  samples, tokens)


def _step_size(specs: InputSpecs, micro_batches: int = 1) -> tuple[int | None, int | None]:
    """(samples, tokens) one step processes: dimension 0 of the first input, and, when it
    holds integer token ids of two or more dimensions, dimensions 0 x 1 (a jagged input:
    its sequences, and their positions, whatever its dtype); times the micro-batches of
    gradient accumulation (the inputs are one)."""
    inputs = [s for _, s in specs.all()]
    if not inputs or not inputs[0].shape:
        return None, None
    first = inputs[0]
    samples = int(first.batch or 0) * micro_batches
    if first.lengths is not None:
        return samples, first.shape[0] * micro_batches
    integer = first.dtype is not None and not first.dtype.is_floating_point
    tokens = samples * int(first.shape[1]) if integer and len(first.shape) >= 2 else None
    return samples, tokens


def grad_accumulation(
    cap: Capture, timeline: Timeline, specs: InputSpecs
) -> GradAccumulation | None:
    """The micro-batches of a step with gradient accumulation (None without)."""
    costs = aggregate.micro_batch_costs(cap)
    if costs is None or cap.micro_batches is None:
        return None
    samples, _ = _step_size(specs)
    return GradAccumulation(cap.micro_batches.count, samples, *costs,
                            peak_micro_batch=timeline.peak.micro_batch)


def _jagged_kept(specs: InputSpecs, request: AnalysisRequest) -> None:
    """Refuse the options that resize the inputs when one is a jagged tensor: its
    sequences have lengths of their own, which memflops does not invent."""
    jagged = [(name, spec) for name, spec in specs.all() if spec.lengths is not None]
    if not jagged:
        return
    parallel = request.parallel
    option = ("batch_sweep" if request.sweep_sizes else "fit" if request.capacity is not None
              else "parallel" if parallel is not None and parallel.pipelined else None)
    if option is not None:
        name, spec = jagged[0]
        raise UsageError(
            f"{option}: input {name} ({spec.describe()}) is a jagged tensor, whose sequences "
            f"have lengths of their own; {option} resizes the batch of every input, which "
            f"memflops does not do for jagged ones: analyse each set of lengths you want"
        )


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
    module: nn.Module, config: StepConfig, params: ParamCounts, request: AnalysisRequest,
    timed: dict[tuple[tuple[int, ...], ...], Timing], base: InputSpecs,
) -> Measure:
    """The step analysed again on other inputs (a sweep's or a fit's): its peak, estimate
    and reserved peak. With an accelerator, each one's timing goes into `timed`, keyed by
    `_shapes`. The loss targets follow the inputs (`_config_at`)."""

    def measure(specs: InputSpecs) -> tuple[int, int, int | None]:
        cap = capture(module, specs, _config_at(config, base, specs))
        timeline = replay_capture(cap, allocator_overhead=request.allocator_overhead)
        reserved = simulate_capture(cap, request.allocator).reserved
        timing = time_step(request, cap, specs)
        if timing is not None:
            timed[_shapes(specs)] = timing
        return timeline.peak.bytes, _seed(cap, timeline, params, config.train), reserved

    return measure


def _checkpointing(
    module: nn.Module, specs: InputSpecs, config: StepConfig, cap: Capture,
    allocator_overhead: bool,
) -> Checkpointing | None:
    """The modules that ran under activation checkpointing, and the same step captured
    with checkpointing off (`memflops.capture.checkpointing`); None without any."""
    if not cap.checkpointed and not cap.recomputed:
        return None
    modules = cap.checkpointed or outermost(cap.recomputed)
    if not can_turn_off():
        return Checkpointing(modules, None, None, "this torch has no torch.utils.checkpoint."
                             "_checkpoint_impl to turn checkpointing off with")
    with checkpointing_off():
        plain = capture(module, specs, config)
    if plain.recomputed:
        return Checkpointing(modules, None, None, "a forward re-runs in backward without "
                             "torch.utils.checkpoint (a recomputation of the model's own)")
    timeline = replay_capture(plain, allocator_overhead=allocator_overhead)
    return Checkpointing(modules, timeline.bytes_of(Kind.ACTIVATIONS), timeline.peak.bytes)


def _fewest_ranks(
    target: ResolvedModel, specs: InputSpecs, config: StepConfig, request: AnalysisRequest,
    capacity: int,
) -> Fit:
    """The fewest data-parallel ranks (powers of two up to the layout's) at which rank 0's
    step fits in `capacity` (`memory.fit.fewest_fitting`), each analysed under the layout."""
    spec = request.parallel
    assert spec is not None
    dim = spec.data_parallel

    def need(ranks: int) -> int:
        layout = replace(request, parallel=spec.with_size(dim, ranks))
        cap = capture(target.module, specs,
                      replace(config, wrapper=parallel_wrapper(target, layout)))
        if request.fit_against == "reserved":
            return device_need(cap, request.allocator, capacity)
        return replay_capture(cap, allocator_overhead=request.allocator_overhead).peak.bytes

    return replace(fewest_fitting(need, capacity, spec.size(dim)), against=request.fit_against)


def _need_at(
    module: nn.Module, config: StepConfig, request: AnalysisRequest, capacity: int,
    measure: Measure, base: InputSpecs,
) -> Need:
    """What `fit` holds against the capacity: the peak, or the device need
    (`memory.reserved.device_need`)."""
    if request.fit_against == "allocated":
        return lambda specs: measure(specs)[0]
    return lambda specs: device_need(capture(module, specs, _config_at(config, base, specs)),
                                     request.allocator, capacity)


def _config_at(config: StepConfig, base: InputSpecs, specs: InputSpecs) -> StepConfig:
    """The step's config for inputs resized from `base` to `specs`: cross-entropy targets
    that share the first input's batch (and sequence) size are resized with it."""
    if config.targets is None:
        return config
    before, after = base.all()[0][1].shape, specs.all()[0][1].shape
    shape = list(config.targets.shape)
    for axis in range(min(2, len(shape), len(before), len(after))):
        if shape[axis] == before[axis]:
            shape[axis] = after[axis]
    return replace(config, targets=replace(config.targets, shape=tuple(shape)))


def _shapes(specs: InputSpecs) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(s.shape) for _, s in specs.all())


def _with_times(
    sweep: Sweep | None, fitted: Fit | None, specs: InputSpecs, request: AnalysisRequest,
    timed: dict[tuple[tuple[int, ...], ...], Timing],
) -> tuple[Sweep | None, Fit | None]:
    """The sweep's points and the fit with the step time and throughput of each size, and
    the size where the sweep's throughput saturates."""

    def at(size: int, axis: int) -> tuple[float | None, float | None]:
        timing = timed.get(_shapes(resized(specs, size, axis)))
        if timing is None:
            return None, None
        return timing.estimate.step, timing.samples_per_s

    if sweep is not None:
        points = []
        for p in sweep.points:
            step, rate = at(p.size, AXES["batch"])
            points.append(replace(p, time_step_s=step, samples_per_s=rate))
        sweep = replace(sweep, points=tuple(points), saturated_at=saturation(points))
    if fitted is not None and fitted.largest:
        step, rate = at(fitted.largest, AXES[fitted.dimension])
        fitted = replace(fitted, time_step_s=step, samples_per_s=rate)
    return sweep, fitted


def _step_report(
    target: ResolvedModel,
    request: AnalysisRequest,
    specs: InputSpecs,
    params: ParamCounts,
    cap: Capture,
    timeline: Timeline,
    reserved: ReservedMemory,
    sweep: Sweep | None,
    fitted: Fit | None,
    checkpointed: Checkpointing | None = None,
    timing: Timing | None = None,
) -> Report:
    float_dtype = default_float_dtype(target.module, request.cast)
    parallel = parallel_summary(request, cap, timing, _micro_batch(request, specs))
    return assemble_report(
        model=target.label,
        mode=request.mode,
        convention=request.convention,
        precision=_precision(float_dtype, request.autocast),
        inputs=[
            (n, TensorSpec(s.shape, input_dtype(s, float_dtype, request.cast),
                           requires_grad=s.requires_grad, lengths=s.lengths))
            for n, s in specs.all()
        ],
        params=params.total,
        trainable_params=params.trainable,
        buffers=params.buffers,
        active_params=target.active_params,
        shared_params=params.shared,
        memory=_memory_totals(timeline, _seed(cap, timeline, params, request.train), reserved),
        modules=aggregate.module_rows(target.module, cap, params, timeline),
        records=cap.records,
        uncounted=aggregate.uncounted(cap.records, cap.rule_failures),
        notes=(*target.warnings, *_shared_warnings(params), *borrowed_warning(cap.records)),
        assumptions=cap.assumptions.warnings(),
        optimizer=optimizer_label(request.step_optimizer),
        sweep=sweep,
        fit=fitted,
        memory_detail=aggregate.memory_detail(
            timeline, sum(cap.feature_map_bytes.values()), allocator=reserved
        ),
        checkpointing=checkpointed,
        timing=_with_bubble(timing, parallel),
        memory_timeline=capture_series(cap, allocator_overhead=request.allocator_overhead),
        parallel=parallel,
        grad_accumulation=grad_accumulation(cap, timeline, specs),
    )


def _with_bubble(timing: Timing | None, parallel: Parallel | None) -> Timing | None:
    """Under pipeline parallel, the rank's time inside the schedule's step: its wait in
    the bubble and for slower stages is idle time, so the step, throughput and MFU are the
    pipeline's (`pipeline_summary`)."""
    if timing is None or parallel is None or parallel.pipeline is None:
        return timing
    wall = parallel.pipeline.time_step_s
    if wall is None:
        return timing
    return replace(timing, estimate=timing.estimate.with_idle(wall))


def parallel_wrapper(
    target: ResolvedModel, request: AnalysisRequest
) -> ParallelWrapper | DataParallelModel | PipelineModel | None:
    """The distributed wrapping the step runs under (None on one GPU); tensor parallel by
    the plan given, else by the one the model's library declares; DDP and ZeRO-1 modelled
    on the one-GPU step."""
    spec = request.parallel
    if spec is None:
        return None
    if spec.pipelined:
        return PipelineModel(spec)
    if spec.modelled:
        return DataParallelModel(spec)
    plan = request.tp_plan
    if spec.tp and plan is None:
        plan = builtin_tp_plan(target.module, spec.size("tp"))
        if plan is None:
            raise UsageError(
                f"parallel: {target.label} has no built-in tensor-parallel plan; give one as "
                f"tp_plan (--tp-plan FILE.json): module name patterns to "
                f"{', '.join(TP_STYLES)}, e.g. {{\"layers.*.fc1\": \"colwise\", "
                f"\"layers.*.fc2\": \"rowwise\"}}"
            )
    return ParallelWrapper(spec, plan)


def parallel_summary(
    request: AnalysisRequest, cap: Capture, timing: Timing | None = None, micro_batch: int = 0
) -> Parallel | None:
    """The rank, memory by kind and collectives of a distributed step (None on one GPU)."""
    found = cap.parallel
    if request.parallel is None or found is None:
        return None
    rows = tuple(
        CollectiveRow(c.op, c.bytes, c.group, c.group_size, c.phase, c.module, c.sent_bytes)
        for c in found.collectives
    )
    acc = request.accelerator
    pipeline = None
    if isinstance(found, PipelineCapture):
        notes = found.notes
        pipeline = pipeline_summary(request, found, micro_batch)
    else:
        notes = modelled_notes(request.parallel) if request.parallel.modelled else ()
    summary = Parallel(
        strategy=request.parallel.label, world_size=request.parallel.world_size,
        rank=found.rank, engine="modelled" if request.parallel.modelled else "captured",
        units=found.units, by_kind=kinds_at_peak(cap), collectives=rows,
        notes=notes, pipeline=pipeline,
    )
    if acc is None:
        return summary
    comm = communication_time(summary.communication_bytes, acc)
    summary = replace(summary, interconnect=acc.interconnect or None, time_comm_s=comm)
    if comm is None or timing is None:
        return summary
    step = timing.estimate.step
    if pipeline is not None and pipeline.time_step_s is not None:
        step = pipeline.time_step_s
    return replace(summary, time_step_serial_s=step + comm,
                   time_step_overlapped_s=max(step, comm))


def pipeline_summary(
    request: AnalysisRequest, found: PipelineCapture, micro_batch: int
) -> Pipeline:
    """Every pipeline rank's share and, with an accelerator, the step with its bubble:
    M x (1 + bubble) x the slowest rank's forward and backward of one micro-batch, then the
    slowest rank's optimizer step (Narayanan et al. 2021, section 2.2: the bubble is
    (p - 1) micro-batch slots of the slowest stage, (p - 1) / v interleaved)."""
    acc = request.accelerator
    model = TimeModel(acc, request.time_constants) if acc is not None else None
    ranks = []
    for row, records, optimizer in zip(found.stages, found.stage_records,
                                       found.optimizer_records, strict=True):
        compute = model.estimate(records).step if model is not None else None
        step = model.estimate(optimizer).step if model is not None else None
        ranks.append(PipelineStage(
            rank=row.rank, blocks=row.blocks,
            params=row.params, buffers=row.buffers, grads=row.grads, optimizer=row.optimizer,
            activations=row.activations, in_flight=row.in_flight, peak=row.peak,
            send_forward=row.send_forward, send_backward=row.send_backward,
            time_microbatch_s=compute, time_optimizer_s=step,
        ))
    time_step = None
    if model is not None:
        slowest = max(r.time_microbatch_s or 0.0 for r in ranks)
        optimizer_s = max(r.time_optimizer_s or 0.0 for r in ranks)
        time_step = slowest * found.microbatches * (1 + float(found.bubble)) + optimizer_s
    spec = found.spec
    return Pipeline(
        stages=spec.size("pp"), schedule=found.schedule, microbatches=found.microbatches,
        micro_batch_size=micro_batch, virtual_stages=found.virtual_stages,
        bubble=float(found.bubble), block_list=found.block_list, ranks=tuple(ranks),
        time_step_s=time_step,
    )


def _micro_batch(request: AnalysisRequest, specs: InputSpecs) -> int:
    """The samples of one pipeline micro-batch (0 without pipeline parallel)."""
    spec = request.parallel
    if spec is None or not spec.pipelined or not spec.microbatches:
        return 0
    return int(specs.all()[0][1].shape[0]) // spec.microbatches


def _precision(float_dtype: torch.dtype, autocast: torch.dtype | None) -> str:
    precision = dtype_name(float_dtype)
    return precision if autocast is None else f"amp-{dtype_name(autocast)} ({precision} parameters)"


def _shared_warnings(params: ParamCounts) -> list[str]:
    return [f"parameter {a} is the same tensor as {b}: counted once" for a, b in params.shared]


def _memory_totals(timeline: Timeline, seed: int, reserved: ReservedMemory) -> MemoryTotals:
    return MemoryTotals(
        params=timeline.bytes_of(Kind.PARAMS),
        buffers=timeline.bytes_of(Kind.BUFFERS),
        grads=timeline.bytes_of(Kind.GRADS),
        optimizer=timeline.bytes_of(Kind.OPTIMIZER),
        activations=timeline.bytes_of(Kind.ACTIVATIONS),
        peak=timeline.peak.bytes,
        seed_estimate=seed,
        reserved=reserved.reserved,
        device_total=reserved.device_total,
    )


def _seed(cap: Capture, timeline: Timeline, params: ParamCounts, train: bool) -> int:
    return seed_estimate(
        param_bytes=params.param_bytes,
        trainable_bytes=params.trainable_bytes,
        optimizer_state_bytes=timeline.bytes_of(Kind.OPTIMIZER),
        feature_map_bytes=sum(cap.feature_map_bytes.values()),
        train=train,
    )
