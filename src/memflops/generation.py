"""Generate mode: prefill and decode costs, KV cache and the peak of a generation."""

from __future__ import annotations

import torch
from torch import nn

from memflops import aggregate
from memflops.capture.generate import CallCapture, capture_generate
from memflops.capture.inputs import TensorSpec, dtype_name
from memflops.capture.step import Capture, default_float_dtype
from memflops.conventions import Convention
from memflops.flops.registry import OpCost
from memflops.memory.kinds import Kind
from memflops.params import count_params
from memflops.report.model import (
    Generation,
    MemoryTotals,
    PhaseCosts,
    Report,
    Totals,
)


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


def _as_capture(call: CallCapture) -> Capture:
    return Capture(
        records=call.records,
        output_shapes=call.output_shapes,
        calls=call.calls,
        rule_failures=call.rule_failures,
        feature_map_bytes=call.feature_map_bytes,
    )


def _rescale_kv(nbytes: int, model_itemsize: int, cache_itemsize: int) -> int:
    return nbytes * cache_itemsize // model_itemsize


def analyze_generate(
    module: nn.Module,
    label: str,
    *,
    batch: int,
    prompt_len: int,
    new_tokens: int,
    dtype: torch.dtype | None,
    cache_dtype: torch.dtype | None,
    convention: Convention,
) -> Report:
    params = count_params(module, dtype)
    cap = capture_generate(
        module, batch=batch, prompt_len=prompt_len, new_tokens=new_tokens, dtype=dtype
    )
    float_dtype = default_float_dtype(module, dtype)
    kv_dtype = cache_dtype or float_dtype
    model_size, cache_size = float_dtype.itemsize, kv_dtype.itemsize
    first, last = _cost(cap.first_decode), _cost(cap.last_decode)
    macs, exact_macs = _arithmetic_sum(first.macs, last.macs, new_tokens)
    flops, exact_flops = _arithmetic_sum(first.flops, last.flops, new_tokens)
    decode_total = OpCost(macs, flops)
    warnings = []
    if not (exact_macs and exact_flops):
        warnings.append(
            "decode FLOPs are not affine in the cache length for this model; the total over "
            "all new tokens is interpolated from the first and last steps"
        )

    def peak(call: CallCapture) -> int:
        kv_at_peak = dict(call.timeline.peak.by_kind).get(Kind.KV_CACHE, 0)
        return call.timeline.peak.bytes - kv_at_peak + _rescale_kv(
            kv_at_peak, model_size, cache_size
        )

    prefill_peak, decode_peak = peak(cap.prefill), peak(cap.last_decode)
    kv_cache = cap.last_decode.cache_elements * cache_size
    prefill = _cost(cap.prefill)
    prefill_cap = _as_capture(cap.prefill)
    uncounted = aggregate.uncounted(cap.prefill.records, cap.prefill.rule_failures)
    warnings += aggregate.uncounted_warnings(uncounted)
    warnings += cap.assumptions().warnings()
    timeline = cap.prefill.timeline if prefill_peak >= decode_peak else cap.last_decode.timeline
    by_kind = tuple(
        (k, _rescale_kv(b, model_size, cache_size) if k is Kind.KV_CACHE else b)
        for k, b in timeline.peak.by_kind
    )
    return Report(
        model=label,
        mode="generate",
        convention=convention,
        precision=dtype_name(float_dtype),
        inputs=(("input_ids", TensorSpec((batch, prompt_len), torch.int64)),),
        totals=Totals(
            params=params.total,
            trainable_params=params.trainable,
            buffers=params.buffers,
            costs=PhaseCosts(forward=prefill, decode=decode_total),
            memory=MemoryTotals(
                params=params.param_bytes,
                buffers=params.buffer_bytes,
                peak=max(prefill_peak, decode_peak),
                seed_estimate=params.param_bytes + sum(cap.prefill.feature_map_bytes.values()),
                kv_cache=kv_cache,
            ),
        ),
        modules=aggregate.module_rows(module, prefill_cap, params),
        uncounted_ops=uncounted,
        warnings=tuple(warnings),
        shared_params=params.shared,
        generation=Generation(
            batch=batch,
            prompt_len=prompt_len,
            new_tokens=new_tokens,
            cache_dtype=dtype_name(kv_dtype),
            prefill=prefill,
            decode_first=first,
            decode_last=last,
            decode_total=decode_total,
            prefill_peak=prefill_peak,
            decode_peak=decode_peak,
            kv_cache=kv_cache,
        ),
        memory_detail=aggregate.memory_detail(
            timeline, sum(cap.prefill.feature_map_bytes.values()), by_kind
        ),
        records=cap.prefill.records + cap.first_decode.records,
    )
