"""Generate mode: prefill and decode costs, KV cache and the peak of a generation."""

from __future__ import annotations

from dataclasses import replace

import torch

from memflops import aggregate
from memflops.capture.generate import CallCapture, GenerateCapture, capture_generate
from memflops.capture.inputs import TensorSpec, dtype_name
from memflops.capture.step import Capture, default_float_dtype
from memflops.flops.registry import OpCost
from memflops.frontends.resolve import ResolvedModel
from memflops.hardware.time_model import PhaseTimes, TimeEstimate, TimeModel
from memflops.memory.kinds import Kind
from memflops.memory.reserved import ReservedMemory
from memflops.memory.timeline import Timeline
from memflops.params import count_params
from memflops.report.assemble import assemble_report
from memflops.report.model import (
    Generation,
    GenerationTime,
    MemoryTotals,
    PhaseCosts,
    Report,
    Timing,
)
from memflops.request import AnalysisRequest, GenerateOptions

INTERPOLATED = (
    "decode FLOPs are not affine in the cache length for this model; the total over "
    "all new tokens is interpolated from the first and last steps"
)


def analyze_generate(model: ResolvedModel, request: AnalysisRequest) -> Report:
    """Prefill, then `new_tokens` KV-cached decode steps (see `memflops.capture.generate`)."""
    options = request.generate_options()
    params = count_params(model.module, request.cast)
    cap = capture_generate(
        model.module,
        batch=options.batch,
        prompt_len=options.prompt_len,
        new_tokens=options.new_tokens,
        dtype=request.cast,
        allocator=request.allocator,
    )
    float_dtype = default_float_dtype(model.module, request.cast)
    kv_dtype = options.cache_dtype or float_dtype
    sizes = (float_dtype.itemsize, kv_dtype.itemsize)
    generation, affine = _generation(cap, options, dtype_name(kv_dtype), sizes)
    timing = None
    if request.accelerator is not None:
        timing, gen_time = _timed(cap, options, request)
        generation = replace(generation, time=gen_time)
    timeline = _peak_timeline(cap, generation)
    reserved = _reserved(cap)
    feature_maps = sum(cap.prefill.feature_map_bytes.values())
    return assemble_report(
        model=model.label,
        mode="generate",
        convention=request.convention,
        precision=dtype_name(float_dtype),
        inputs=(("input_ids", TensorSpec((options.batch, options.prompt_len), torch.int64)),),
        params=params.total,
        trainable_params=params.trainable,
        buffers=params.buffers,
        active_params=model.active_params,
        shared_params=params.shared,
        costs=PhaseCosts(forward=generation.prefill, decode=generation.decode_total),
        memory=MemoryTotals(
            params=params.param_bytes,
            buffers=params.buffer_bytes,
            peak=max(generation.prefill_peak, generation.decode_peak),
            seed_estimate=params.param_bytes + feature_maps,
            kv_cache=generation.kv_cache,
            reserved=reserved.reserved if reserved else None,
            device_total=reserved.device_total if reserved else None,
        ),
        modules=aggregate.module_rows(model.module, _as_capture(cap.prefill), params),
        records=cap.prefill.records + cap.first_decode.records,
        uncounted=aggregate.uncounted(cap.prefill.records, cap.prefill.rule_failures),
        priced=cap.prefill.records,
        notes=(*model.warnings, *(() if affine else (INTERPOLATED,))),
        assumptions=cap.assumptions().warnings(),
        generation=generation,
        timing=timing,
        memory_detail=aggregate.memory_detail(
            timeline, feature_maps, _rescaled_by_kind(timeline, sizes), allocator=reserved
        ),
    )


def _generation(
    cap: GenerateCapture, options: GenerateOptions, cache_dtype: str, sizes: tuple[int, int]
) -> tuple[Generation, bool]:
    """The generation's costs and peaks; False when the decode total is interpolated."""
    first, last = _cost(cap.first_decode), _cost(cap.last_decode)
    macs, exact_macs = _arithmetic_sum(first.macs, last.macs, options.new_tokens)
    flops, exact_flops = _arithmetic_sum(first.flops, last.flops, options.new_tokens)
    read, _ = _arithmetic_sum(first.bytes_read, last.bytes_read, options.new_tokens)
    written, _ = _arithmetic_sum(first.bytes_written, last.bytes_written, options.new_tokens)
    generation = Generation(
        batch=options.batch,
        prompt_len=options.prompt_len,
        new_tokens=options.new_tokens,
        cache_dtype=cache_dtype,
        prefill=_cost(cap.prefill),
        decode_first=first,
        decode_last=last,
        decode_total=OpCost(macs, flops, bytes_read=read, bytes_written=written),
        prefill_peak=_peak(cap.prefill, sizes),
        decode_peak=_peak(cap.last_decode, sizes),
        kv_cache=cap.last_decode.cache_elements * sizes[1],
    )
    return generation, exact_macs and exact_flops


def _timed(
    cap: GenerateCapture, options: GenerateOptions, request: AnalysisRequest
) -> tuple[Timing, GenerationTime]:
    """The generation on the requested accelerator: prefill, first and last decode steps
    timed op by op; all decode steps as new_tokens x (first + last) / 2, as their FLOPs.

    The report's step is the whole generation: `totals.time.forward` the prefill,
    `totals.time.decode` every decode step; its throughput counts the batch (samples)
    and the tokens generated.
    """
    assert request.accelerator is not None
    model = TimeModel(request.accelerator, request.time_constants)
    prefill = model.estimate(cap.prefill.records)
    first = model.estimate(cap.first_decode.records)
    last = model.estimate(cap.last_decode.records)
    n = options.new_tokens

    def steps(a: float, b: float) -> float:
        return n * (a + b) / 2

    decode_total = steps(first.step, last.step)
    bounds = dict(prefill.by_bound)
    for (name, a), (_, b) in zip(first.by_bound, last.by_bound, strict=True):
        bounds[name] += steps(a, b)
    first_flops, last_flops = first.model_flops, last.model_flops
    estimate = TimeEstimate(
        phases=PhaseTimes(forward=prefill.step, decode=decode_total),
        modules=prefill.modules,
        by_bound=tuple(bounds.items()),
        kernels=prefill.kernels + round(steps(first.kernels, last.kernels)),
        model_flops=prefill.model_flops + n * (first_flops + last_flops) // 2,
        peak_dtype=prefill.peak_dtype,
        peak_flops=prefill.peak_flops,
        warnings=tuple(dict.fromkeys(prefill.warnings + last.warnings)),
    )
    generated = options.batch * n
    time = GenerationTime(
        prefill_s=prefill.step,
        decode_step_first_s=first.step,
        decode_step_last_s=last.step,
        decode_total_s=decode_total,
        decode_tokens_per_s=generated / decode_total if decode_total > 0 else 0.0,
        prefill_bound=prefill.bound,
        decode_bound=last.bound,
    )
    timing = Timing(request.accelerator, request.time_constants, estimate,
                    samples=options.batch, tokens=generated)
    return timing, time


def _cost(call: CallCapture) -> OpCost:
    total = OpCost()
    for rec in call.records:
        if rec.cost is not None:
            total += rec.cost
    return total


def _arithmetic_sum(first: int, last: int, count: int) -> tuple[int, bool]:
    """first + ... + last over `count` evenly spaced terms; False if not integral."""
    doubled = count * (first + last)
    return doubled // 2, doubled % 2 == 0


def _rescale_kv(nbytes: int, sizes: tuple[int, int]) -> int:
    """KV cache bytes captured in the model's dtype, stored in the cache's: sizes =
    (model itemsize, cache itemsize)."""
    model_itemsize, cache_itemsize = sizes
    return nbytes * cache_itemsize // model_itemsize


def _peak(call: CallCapture, sizes: tuple[int, int]) -> int:
    kv_at_peak = dict(call.timeline.peak.by_kind).get(Kind.KV_CACHE, 0)
    return call.timeline.peak.bytes - kv_at_peak + _rescale_kv(kv_at_peak, sizes)


def _reserved(cap: GenerateCapture) -> ReservedMemory | None:
    """The larger reserved peak of the prefill and the last decode step, each simulated
    on its own: a lower bound for the whole generation, whose cache grows token by token
    through the same allocator (and whose KV cache is taken in the model's dtype)."""
    runs = [c.reserved for c in (cap.prefill, cap.last_decode) if c.reserved is not None]
    return max(runs, key=lambda r: r.reserved, default=None)


def _peak_timeline(cap: GenerateCapture, generation: Generation) -> Timeline:
    """The timeline of the call with the higher peak (the prefill on a tie)."""
    if generation.prefill_peak >= generation.decode_peak:
        return cap.prefill.timeline
    return cap.last_decode.timeline


def _rescaled_by_kind(timeline: Timeline, sizes: tuple[int, int]) -> tuple[tuple[Kind, int], ...]:
    return tuple(
        (k, _rescale_kv(b, sizes) if k is Kind.KV_CACHE else b) for k, b in timeline.peak.by_kind
    )


def _as_capture(call: CallCapture) -> Capture:
    return Capture(
        records=call.records,
        output_shapes=call.output_shapes,
        calls=call.calls,
        rule_failures=call.rule_failures,
        feature_map_bytes=call.feature_map_bytes,
    )
