"""The JSON schema `memflops.report/1`: a `Report` as a JSON-ready dict.

docs/report-schema.md describes the document field by field; this module
implements it, and `Report.to_dict()` returns what `report_dict` builds.
Fields listed there change only with a new schema version; new fields may be
added.

The report's dataclasses are imported for type checking only: `report/model.py`
imports this module, so a run-time import back would be a cycle.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from memflops.tensor_spec import dtype_name

if TYPE_CHECKING:
    from memflops.conventions import Convention
    from memflops.flops.registry import OpCost
    from memflops.memory.fit import Fit, Sweep
    from memflops.report.model import (
        Generation,
        MemoryDetail,
        MemoryTimeline,
        ModuleRow,
        Report,
        Totals,
    )

SCHEMA = "memflops.report/1"


def report_dict(report: Report) -> dict[str, Any]:
    """The report as schema `memflops.report/1` (JSON-ready)."""
    conv = report.convention
    return {
        "schema": SCHEMA,
        "model": report.model,
        "mode": report.mode,
        "optimizer": report.optimizer,
        "precision": report.precision,
        "convention": conv.value,
        "inputs": [
            {"name": name, "shape": list(spec.shape), "dtype": dtype_name(spec.dtype)}
            for name, spec in report.inputs
        ],
        "totals": _totals(report.totals, conv),
        "modules": [_module(row, conv) for row in report.modules],
        "uncounted_ops": [
            {"op": u.op, "count": u.count, "modules": list(u.modules), "reason": u.reason}
            for u in report.uncounted_ops
        ],
        "memory_detail": _memory_detail(report.memory_detail),
        "memory_timeline": _memory_timeline(report.memory_timeline),
        "batch_sweep": _sweep(report.sweep),
        "fit": _fit(report.fit),
        "generation": _generation(report.generation, conv),
        "shared_params": [{"name": a, "shares": b} for a, b in report.shared_params],
        "warnings": list(report.warnings),
    }


def _totals(totals: Totals, conv: Convention) -> dict[str, Any]:
    costs = totals.costs
    mem = totals.memory
    return {
        "params": totals.params,
        "trainable_params": totals.trainable_params,
        "frozen_params": totals.frozen_params,
        "buffers": totals.buffers,
        "active_params": totals.active_params,
        "flops": {
            "forward": costs.forward.under(conv),
            "loss": costs.loss.under(conv),
            "backward": costs.backward.under(conv),
            "optimizer": costs.optimizer.under(conv),
            "decode": costs.decode.under(conv),
            "step": costs.step.under(conv),
        },
        "macs": {
            "forward": costs.forward.macs,
            "backward": costs.backward.macs,
            "step": costs.step.macs,
        },
        "memory": {
            "params": mem.params,
            "buffers": mem.buffers,
            "grads": mem.grads,
            "optimizer": mem.optimizer,
            "activations": mem.activations,
            "peak": mem.peak,
            "seed_estimate": mem.seed_estimate,
            "kv_cache": mem.kv_cache,
        },
    }


def _module(row: ModuleRow, conv: Convention) -> dict[str, Any]:
    return {
        "path": row.path,
        "type": row.type,
        "depth": row.depth,
        "params": row.params,
        "flops": {
            "forward": row.forward.under(conv),
            "backward": row.backward.under(conv),
        },
        "macs": {"forward": row.forward.macs, "backward": row.backward.macs},
        "output_shape": _shape_field(row.output_shape),
        "activation_bytes": row.activation_bytes,
        "calls": row.calls,
    }


def _memory_detail(detail: MemoryDetail | None) -> dict[str, Any] | None:
    if detail is None:
        return None
    return {
        "peak": {
            "phase": detail.peak_phase,
            "op": detail.peak_op,
            "module": detail.peak_module,
            "by_kind": dict(detail.peak_by_kind),
        },
        "baseline": detail.baseline,
        "temporaries": detail.temporaries,
        "inputs": detail.inputs,
        "feature_maps": detail.feature_maps,
        "top_saved_modules": [
            {"module": path, "bytes": nbytes} for path, nbytes in detail.top_saved_modules
        ],
    }


def _memory_timeline(series: MemoryTimeline | None) -> dict[str, Any] | None:
    if series is None:
        return None
    return {
        "kinds": list(series.kinds),
        "ops": series.ops,
        "overhead": series.overhead,
        "phases": [{"phase": s.phase, "first": s.first, "last": s.last} for s in series.phases],
        "peak_point": series.peak_point,
        "points": [{"op": p.op, "bytes": list(p.bytes)} for p in series.points],
    }


def _sweep(sweep: Sweep | None) -> dict[str, Any] | None:
    if sweep is None:
        return None
    return {
        "dimension": sweep.dimension,
        "points": [
            {"size": p.size, "peak": p.peak, "seed_estimate": p.seed_estimate}
            for p in sweep.points
        ],
        "constant": sweep.constant,
        "per_item": sweep.per_item,
    }


def _fit(fit: Fit | None) -> dict[str, Any] | None:
    if fit is None:
        return None
    return {
        "dimension": fit.dimension,
        "capacity": fit.capacity,
        "largest": fit.largest,
        "peak_at_largest": fit.peak_at_largest,
        "peak_at_next": fit.peak_at_next,
        "analyses": fit.analyses,
    }


def _generation(gen: Generation | None, conv: Convention) -> dict[str, Any] | None:
    if gen is None:
        return None

    def cost(c: OpCost) -> dict[str, int]:
        return {"flops": c.under(conv), "macs": c.macs}

    return {
        "batch": gen.batch,
        "prompt_len": gen.prompt_len,
        "new_tokens": gen.new_tokens,
        "cache_dtype": gen.cache_dtype,
        "prefill": cost(gen.prefill),
        "decode_first": cost(gen.decode_first),
        "decode_last": cost(gen.decode_last),
        "decode_total": cost(gen.decode_total),
        "prefill_peak": gen.prefill_peak,
        "decode_peak": gen.decode_peak,
        "kv_cache": gen.kv_cache,
    }


def _shape_field(shapes: Iterable[tuple[int, ...]]) -> list[int] | list[list[int]] | None:
    """One output tensor: its shape; several: a list of shapes; none: null."""
    listed = [list(s) for s in shapes]
    if not listed:
        return None
    return listed[0] if len(listed) == 1 else listed
